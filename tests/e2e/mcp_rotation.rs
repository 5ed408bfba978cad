//! MCP connections follow the credential, not the key: after `keys.rotate`, the old secret and
//! the new one are two credentials. A stream opened with the old secret ends when the rotation's
//! grace window ends (a timer at the secret's end, not the periodic re-check), while a stream
//! and session of the new secret stay open — whichever of the two was opened first.

use crate::approvals::serve_with;
use crate::mcp::{client, command, url};
use crate::support::{Sandbox, api_key_of};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// How long a step may take before the test gives up (a hang guard, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// The client's `stream` scenario (a 2025-11-25 session and its SSE stream), read on a thread
/// so the test can ask whether the stream has ended yet without blocking.
struct Stream {
    child: Child,
    lines: Receiver<Value>,
    session: String,
}

impl Stream {
    #[track_caller]
    fn open(key: &str, addr: &str) -> Self {
        let mut child = command(&["stream", "--key", key, "--url", &url(addr)])
            .spawn()
            .expect("start the MCP client");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let mut s = Self {
            child,
            lines,
            session: String::new(),
        };
        let open = s.next("the stream to open");
        assert_eq!(open["step"], "open", "{open}");
        assert_eq!(open["status"], 200, "{open}");
        s.session = open["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned();
        s
    }

    #[track_caller]
    fn next(&mut self, what: &str) -> Value {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(v) => {
                assert_ne!(v["step"], "exception", "client failed: {v}");
                v
            }
            Err(RecvTimeoutError::Timeout) => panic!("waited {PATIENCE:?} for {what}"),
            Err(RecvTimeoutError::Disconnected) => {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                panic!("the client ended before {what}:\n{err}")
            }
        }
    }

    /// Whether the client has reported anything since (for a held stream: that it ended).
    fn still_open(&self) -> bool {
        matches!(self.lines.try_recv(), Err(TryRecvError::Empty))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tools/list` on `session` with `key`: the status.
fn list_on_session(addr: &str, key: &str, session: &str) -> u16 {
    let auth = format!("Bearer {key}");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#;
    crate::support::http(
        addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Authorization", &auth),
            ("Mcp-Session-Id", session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        body,
    )
    .0
}

/// `tool` called over MCP by `key`; its structured output.
#[track_caller]
fn mcp_call(addr: &str, key: &str, tool: &str, arguments: Value) -> Value {
    let out = client(&[
        "call",
        "--key",
        key,
        "--url",
        &url(addr),
        "--tool",
        tool,
        "--arguments",
        &arguments.to_string(),
    ]);
    assert_eq!(out[0]["is_error"], false, "{tool}: {}", out[0]);
    out[0]["structured"].clone()
}

/// The old secret's stream ends at the end of the grace window and its session answers 401
/// from then on; the new secret's stream is still open and its session still serves.
#[track_caller]
fn old_ends_new_stays(addr: &str, old: &mut Stream, new: &Stream, new_key: &str) {
    let ended = old.next("the old secret's stream to end at the end of the grace window");
    assert_eq!(ended["step"], "ended", "{ended}");
    let after = old.next("the old stream's epilogue");
    assert_eq!(
        after["session_status"], 401,
        "the old secret is refused: {after}"
    );
    assert!(
        new.still_open(),
        "the new secret's stream ended with the old one"
    );
    assert_eq!(
        list_on_session(addr, new_key, &new.session),
        200,
        "the new secret's session was closed with the old secret"
    );
    assert!(
        new.still_open(),
        "the new secret's stream ended with the old one"
    );
}

#[test]
fn after_a_rotation_each_stream_ends_exactly_when_its_own_secret_does() {
    // A re-check interval far longer than the test: only the timer at the end of the grace
    // window can end the old stream in time. Then a short one, where the re-check races it.
    for recheck in ["1h", "300ms"] {
        let sb = Sandbox::new();
        let admin = sb.create_tenant("acme").api_key;
        sb.call_ok(
            &admin,
            "members.create_persona",
            json!({"handle": "claude", "kind": "agent", "roles": ["ai-agent"]}),
        );
        let issue = |name: &str| {
            api_key_of(&sb.call_ok(
                &admin,
                "keys.issue",
                json!({"persona": "claude", "name": name, "expires_in": "1d",
                       "scopes": ["keys:read", "members:read"]}),
            ))
        };
        let (mut server, addr) = serve_with(&sb, &[("TENANTOPS_MCP_REVOCATION_CHECK", recheck)]);

        // The old secret's stream opened first, the new one's after the rotation.
        let old_key = issue("desktop");
        let mut old = Stream::open(&old_key, &addr);
        let rotated = mcp_call(
            &addr,
            &admin,
            "keys.rotate",
            json!({"key": "desktop", "grace": "5s"}),
        );
        let new_key = api_key_of(&rotated);
        let mut new = Stream::open(&new_key, &addr);
        old_ends_new_stays(&addr, &mut old, &new, &new_key);
        // The new stream was open all along: it ends when its own credential does.
        mcp_call(&addr, &admin, "keys.revoke", json!({"key": "desktop"}));
        let ended = new.next("the new secret's stream to end on revocation");
        assert_eq!(ended["step"], "ended", "{ended}");

        // The new secret's stream opened first, the old one's after it.
        let old_key = issue("laptop");
        let rotated = mcp_call(
            &addr,
            &admin,
            "keys.rotate",
            // Long enough to open both streams on a busy machine before it ends.
            json!({"key": "laptop", "grace": "10s"}),
        );
        let new_key = api_key_of(&rotated);
        let new = Stream::open(&new_key, &addr);
        let mut old = Stream::open(&old_key, &addr);
        old_ends_new_stays(&addr, &mut old, &new, &new_key);

        let _ = server.kill();
        let _ = server.wait();
    }
}
