//! Several `serve` replicas on one PostgreSQL database behave as one service: approvals clicked
//! on either replica (and redelivered to the other) execute once and edit their message once
//! per change; a replica killed mid-burst leaves nothing unfinished; MCP works behind a
//! round-robin balancer; a revocation on one replica closes streams held by the other.
//!
//! These run in the PostgreSQL pass of `.ci/test` (`TENANTOPS_TEST_POSTGRES` set): replicas
//! need a shared server database. On SQLite they say so and return.

use crate::approvals::serve_with;
use crate::fake_slack::{BOT_TOKEN, SIGNING_SECRET};
use crate::mcp::{Running, client, url};
use crate::slack::{APPROVALS, World, world_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

fn on_postgres() -> bool {
    let on = std::env::var_os("TENANTOPS_TEST_POSTGRES").is_some();
    if !on {
        eprintln!(
            "replicas share a PostgreSQL database: run with TENANTOPS_TEST_POSTGRES (.ci/test does)"
        );
    }
    on
}

/// A replica, killed (SIGKILL) when dropped.
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long a dead replica's claim on an execution holds (short, so the test sees the takeover).
const LEASE: &str = "2s";

/// A second replica of `w`'s service: the same database and Slack app.
fn second_replica(w: &World) -> (Replica, String) {
    let api = w.fake.api_url();
    let (child, addr) = serve_with(
        &w.sb,
        &[
            ("TENANTOPS_SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("TENANTOPS_SLACK_BOT_TOKEN", BOT_TOKEN),
            ("TENANTOPS_SLACK_API_URL", &api),
            ("TENANTOPS_EXECUTION_LEASE", LEASE),
        ],
    );
    (Replica(child), addr)
}

/// The approval messages posted so far: request id → number of posts.
fn posts(w: &World) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in w.fake.of("chat.postMessage") {
        if c.body["channel"] != APPROVALS || c.body.get("thread_ts").is_some_and(|t| !t.is_null()) {
            continue;
        }
        let text = c.body.to_string();
        if let Some(at) = text.find("approve:") {
            let id: String = text[at + "approve:".len()..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Requests `n` deletions of service personas `{prefix}0…`; returns their request ids.
fn raise(w: &World, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let handle = format!("{prefix}{i}");
            w.sb.call_ok(
                &w.admin,
                "members.create_persona",
                json!({"handle": handle, "kind": "service", "roles": ["developer"]}),
            );
            let run = w.sb.call(
                &w.admin,
                "members.delete_persona",
                json!({"persona": handle, "reason": "decommissioned"}),
            );
            assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
            run.json()["request_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn state_of(w: &World, id: &str) -> String {
    w.sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Executions of deletions, from the ledger (every page).
fn executions(w: &World) -> usize {
    let mut count = 0;
    let mut before: Option<u64> = None;
    loop {
        let mut input = json!({"op": "members.delete_persona", "limit": 200});
        if let Some(b) = before {
            input["before"] = json!(b);
        }
        let page = w.sb.call_ok(&w.admin, "audit.list", input);
        let entries = page["entries"].as_array().unwrap();
        count += entries
            .iter()
            .filter(|e| e["outcome"] == "done" && !e["detail"]["request_id"].is_null())
            .count();
        match entries.last().and_then(|e| e["seq"].as_u64()) {
            Some(seq) if entries.len() == 200 => before = Some(seq),
            _ => return count,
        }
    }
}

#[test]
fn approvals_clicked_on_either_replica_execute_once_and_a_sigkilled_replica_leaves_nothing_unfinished()
 {
    if !on_postgres() {
        return;
    }
    let w = world_with(&[("TENANTOPS_EXECUTION_LEASE", LEASE)]);
    let (b, b_addr) = second_replica(&w);
    let mut b = Some(b);
    w.person("alice", "security-admin");
    w.link("U0ALICE", "alice");
    let addrs = [w.addr.clone(), b_addr.clone()];

    // Fifty destructive requests, each posted once to the approval channel (by either replica).
    let ids = raise(&w, "svc", 50);
    wait_until("50 approval messages", 60, || posts(&w).len() >= 50);

    // Each click goes to one replica, and Slack's redelivery of it to the other.
    for (i, id) in ids.iter().enumerate() {
        let action_ts = format!("1700000100.{i:06}");
        for r in [i % 2, (i + 1) % 2] {
            let status = crate::slack::click_at(
                &w.fake,
                &addrs[r],
                "U0ALICE",
                &format!("approve:{id}"),
                &action_ts,
            );
            assert_eq!(status, 200);
        }
    }
    wait_until("every request to succeed", 60, || {
        ids.iter().all(|id| state_of(&w, id) == "succeeded")
    });
    assert_eq!(executions(&w), 50, "exactly one execution per request");
    let posted = posts(&w);
    assert!(
        ids.iter().all(|id| posted.get(id) == Some(&1)),
        "each request posted exactly once: {posted:?}"
    );
    // Every message shows the outcome, and no change was edited in twice (two replicas syncing
    // the same change would send the same edit twice).
    wait_until("the messages to show the outcome", 30, || {
        let updates = w.fake.of("chat.update");
        ids.iter().all(|id| {
            updates
                .iter()
                .rfind(|u| u.body.to_string().contains(id.as_str()))
                .is_some_and(|u| !u.body.to_string().contains("approve:"))
        })
    });
    let mut seen = BTreeSet::new();
    for u in w.fake.of("chat.update") {
        let key = (u.body["ts"].to_string(), u.body["blocks"].to_string());
        assert!(seen.insert(key), "an edit was sent twice: {}", u.body);
    }
    w.sb.run(&["audit", "verify", "--tenant", &w.tenant])
        .code(0);

    // A second burst, clicks in flight on both replicas, and one replica killed (SIGKILL) in the
    // middle of it: a click it cannot answer is retried by Slack, through the balancer, on the
    // survivor.
    let more = raise(&w, "job", 20);
    wait_until("20 more approval messages", 60, || posts(&w).len() >= 70);
    let fake = &w.fake;
    std::thread::scope(|s| {
        let clicks: Vec<_> = more
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let addrs = &addrs;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(25 * i as u64));
                    let (action, ts) = (format!("approve:{id}"), format!("1700000200.{i:06}"));
                    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        crate::slack::click_at(fake, &addrs[i % 2], "U0ALICE", &action, &ts)
                    }));
                    if !matches!(first, Ok(200)) {
                        let retried =
                            crate::slack::click_at(fake, &addrs[0], "U0ALICE", &action, &ts);
                        assert_eq!(retried, 200);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(250));
        drop(b.take());
        for c in clicks {
            c.join().expect("a click thread");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states: Vec<String> = more.iter().map(|id| state_of(&w, id)).collect();
        if states.iter().all(|s| s == "succeeded") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor left requests unfinished: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(executions(&w), 70, "nothing ran twice after the kill");
    w.sb.run(&["audit", "verify", "--tenant", &w.tenant])
        .code(0);
    let health = crate::support::http(&w.addr, "GET", "/healthz", &[], "");
    let health: Value = serde_json::from_str(crate::support::body_of(&health.1)).unwrap();
    assert_eq!(health["engine"], "postgres", "{health}");
    assert_eq!(
        health["holds_lease"], true,
        "the survivor holds the worker: {health}"
    );
}

#[test]
fn mcp_works_behind_a_round_robin_balancer_and_a_revocation_closes_streams_on_every_replica() {
    if !on_postgres() {
        return;
    }
    // An admin, and an AI agent whose key `claude-desktop` reads members.
    let crate::mcp::Team {
        sb, admin, agent, ..
    } = crate::mcp::team();
    // Periodic re-checks off: only the bus between replicas can close the stream in time.
    let quiet = [("TENANTOPS_MCP_REVOCATION_CHECK", "1h")];
    let (a, a_addr) = serve_with(&sb, &quiet);
    let _a = Replica(a);
    let (b, b_addr) = serve_with(&sb, &quiet);
    let _b = Replica(b);

    let lines = client(&[
        "balanced",
        "--key",
        &agent,
        "--url",
        &url(&a_addr),
        "--also",
        &url(&b_addr),
    ]);
    let stateless: Vec<&Value> = lines.iter().filter(|l| l["step"] == "stateless").collect();
    assert_eq!(stateless.len(), 10);
    for l in &stateless {
        assert_eq!(
            l["handle"], "claude",
            "2026-07-28 requests work on either replica: {l}"
        );
    }
    let legacy = lines.iter().find(|l| l["step"] == "legacy").unwrap();
    assert_eq!(legacy["session"], true, "{legacy}");
    assert_eq!(legacy["same_status"], 200, "{legacy}");
    // A 2025-11-25 session lives where it was opened: such clients need sticky routing.
    assert_eq!(legacy["other_status"], 404, "{legacy}");

    // The agent holds a stream on replica A; the key is revoked through replica B.
    let mut c = Running::start(&["stream", "--key", &agent, "--url", &url(&a_addr)]);
    let open = c.next();
    assert_eq!(open["status"], 200, "{open}");
    let revoke = crate::mcp::client(&[
        "call",
        "--key",
        &admin,
        "--url",
        &url(&b_addr),
        "--tool",
        "keys.revoke",
        "--arguments",
        &json!({"key": "claude-desktop"}).to_string(),
    ]);
    assert_eq!(revoke[0]["is_error"], false, "{revoke:?}");
    let ended = c.next();
    assert_eq!(ended["step"], "ended", "{ended}");
    assert_eq!(
        ended["how"], "closed",
        "replica A closed the stream on replica B's revocation: {ended}"
    );
    eprintln!(
        "stream closed {} s after the revocation on the other replica",
        ended["after_s"]
    );
}
