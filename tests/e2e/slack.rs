//! Slack end to end: the real binary (`serve` with Slack configured) against a fake Slack Web API
//! on 127.0.0.1, with requests signed the way Slack signs them.

use crate::approvals::serve_with;
use crate::fake_slack::{self, BOT_TOKEN, FakeSlack, SIGNING_SECRET};
use crate::mcp::{Running, url};
use crate::support::{Person, Sandbox, api_key_of, console_token};
use serde_json::{Value, json};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};

static TRIGGER: AtomicU64 = AtomicU64::new(1);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A raw HTTP/1.1 POST; returns (status, the JSON object of the body or the body).
fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", content_type)];
    all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (status, text) = crate::support::http(addr, "POST", path, &all, body);
    let body = crate::support::body_of(&text);
    // Chunked bodies: keep the JSON object.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b > a => body[a..=b].to_owned(),
        _ => body.to_owned(),
    };
    (status, body)
}

pub(crate) struct World {
    pub(crate) sb: Sandbox,
    pub(crate) fake: FakeSlack,
    pub(crate) server: Child,
    pub(crate) addr: String,
    pub(crate) admin: String,
    pub(crate) tenant: String,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub(crate) const TEAM: &str = "T0ACME";
pub(crate) const APPROVALS: &str = "C0APPROVE";

/// The Slack user who administers the fake workspace (it binds it).
const WORKSPACE_ADMIN: &str = "U0ADMIN";

fn world() -> World {
    world_with(&[])
}

/// [`world`] with more settings for `serve`.
pub(crate) fn world_with(extra: &[(&str, &str)]) -> World {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let admin = t.api_key;
    sb.links_decide_at_once(&admin);
    let fake = FakeSlack::start();
    fake.user(WORKSPACE_ADMIN, TEAM, true);
    let api = fake.api_url();
    let mut env = vec![
        ("TENANTOPS_SLACK_SIGNING_SECRET", SIGNING_SECRET),
        ("TENANTOPS_SLACK_BOT_TOKEN", BOT_TOKEN),
        ("TENANTOPS_SLACK_API_URL", &api),
    ];
    env.extend_from_slice(extra);
    let (server, addr) = serve_with(&sb, &env);
    let w = World {
        sb,
        fake,
        server,
        addr,
        admin,
        tenant: t.tenant_id,
    };
    w.bind(TEAM, json!({"approval_channel": APPROVALS}));
    w
}

impl World {
    /// Sends a signed slash command; returns (status, JSON answer).
    pub(crate) fn command(&self, user: &str, command: &str, text: &str) -> (u16, Value) {
        self.command_in(TEAM, user, command, text)
    }

    fn command_in(&self, team: &str, user: &str, command: &str, text: &str) -> (u16, Value) {
        let n = TRIGGER.fetch_add(1, Ordering::SeqCst);
        let body = serde_urlencoded::to_string([
            ("token", "legacy"),
            ("team_id", team),
            ("team_domain", "acme"),
            ("channel_id", "C0GENERAL"),
            ("channel_name", "general"),
            ("user_id", user),
            ("user_name", user),
            ("command", command),
            ("text", text),
            ("api_app_id", "A0APP"),
            ("response_url", &self.fake.response_url(&format!("cmd{n}"))),
            ("trigger_id", &format!("trigger.{n}")),
        ])
        .unwrap();
        let (status, text) = self.signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
            now(),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn signed(&self, path: &str, ct: &str, body: &str, ts: i64) -> (u16, String) {
        post(
            &self.addr,
            path,
            ct,
            &fake_slack::sign(body, ts, SIGNING_SECRET),
            body,
        )
    }

    /// Clicks a button (a signed block_actions interaction).
    pub(crate) fn click(
        &self,
        user: &str,
        action_id: &str,
        channel: &str,
        message_ts: &str,
        action_ts: &str,
    ) -> u16 {
        click_on(
            &self.fake, &self.addr, user, action_id, channel, message_ts, action_ts,
        )
    }

    /// Links Slack user `user` to persona `handle` with the one-time code that person asks for
    /// from their own sign-in.
    pub(crate) fn link(&self, user: &str, handle: &str) {
        let id = self.sb.call_ok(
            &self.admin,
            "members.get_persona",
            json!({"persona": handle}),
        )["persona"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let own = console_token(&self.tenant, &id);
        let code = self.sb.call_ok(&own, "members.chat_link_code", json!({}))["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, answer) = self.command(user, "/tenant", &format!("link {code}"));
        assert_eq!(status, 200);
        assert!(answer.to_string().contains(handle), "{answer}");
    }

    /// A human of the tenant (approved by a second person when it changes who decides).
    pub(crate) fn person(&self, handle: &str, role: &str) -> Person {
        self.sb.person(&self.admin, &self.tenant, handle, &[role])
    }

    /// Binds `team` the way a workspace admin does: a code from `tenant.chat_install_link`,
    /// typed as `/tenant bind CODE` by an admin of the workspace; then `channels` (e.g. a digest
    /// channel) through `tenant.chat_bind`.
    fn bind(&self, team: &str, channels: Value) {
        let mut input = json!({"platform": "slack"});
        if let Some(c) = channels.get("approval_channel") {
            input["approval_channel"] = c.clone();
        }
        let link = self
            .sb
            .call_ok(&self.admin, "tenant.chat_install_link", input);
        let state = link["state"].as_str().unwrap();
        let (status, answer) =
            self.command_in(team, WORKSPACE_ADMIN, "/tenant", &format!("bind {state}"));
        assert_eq!(status, 200);
        assert!(answer.to_string().contains("Connected"), "{answer}");
        if channels.get("digest_channel").is_some() {
            let mut update = channels.clone();
            update["platform"] = json!("slack");
            update["workspace_id"] = json!(team);
            self.sb.call_ok(&self.admin, "tenant.chat_bind", update);
        }
    }
}

/// A click on a button of an approval message, delivered to the replica at `addr`.
pub(crate) fn click_at(
    fake: &FakeSlack,
    addr: &str,
    user: &str,
    action_id: &str,
    action_ts: &str,
) -> u16 {
    click_on(
        fake,
        addr,
        user,
        action_id,
        APPROVALS,
        "1700000000.000001",
        action_ts,
    )
}

fn click_on(
    fake: &FakeSlack,
    addr: &str,
    user: &str,
    action_id: &str,
    channel: &str,
    message_ts: &str,
    action_ts: &str,
) -> u16 {
    let payload = json!({
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "team_id": TEAM, "username": user, "name": user},
        "api_app_id": "A0APP",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": format!("click.{action_ts}"),
        "channel": {"id": channel, "name": "approvals"},
        "response_url": fake.response_url(&format!("click{action_ts}")),
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": action_id,
                     "action_ts": action_ts}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    post(
        addr,
        "/slack/interactions",
        "application/x-www-form-urlencoded",
        &fake_slack::sign(&body, now(), SIGNING_SECRET),
        &body,
    )
    .0
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

#[test]
fn signatures_are_checked_before_anything_and_unbound_or_unlinked_callers_are_told_what_to_do() {
    let w = world();
    let body = "team_id=T0ACME&user_id=U1&command=%2Ftenant&text=whoami";
    // No signature, a wrong one, a stale one: 401, nothing parsed or done.
    let (s, _) = post(
        &w.addr,
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &[],
        body,
    );
    assert_eq!(s, 401);
    let (s, _) = post(
        &w.addr,
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &fake_slack::sign(body, now(), "wrong-secret"),
        body,
    );
    assert_eq!(s, 401);
    let (s, text) = w.signed(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        body,
        now() - 301,
    );
    assert_eq!(s, 401);
    assert!(text.contains("stale"), "{text}");
    // A workspace bound to no tenant gets a short how-to, not an error page.
    let (s, answer) = w.command_in("T0OTHER", "U1", "/tenant", "whoami");
    assert_eq!(s, 200);
    assert!(
        text_of(&answer).contains("tenant.chat_install_link"),
        "{answer}"
    );
    // An unlinked user is told how to link.
    let (s, answer) = w.command("U0NOBODY", "/tenant", "whoami");
    assert_eq!(s, 200);
    assert!(text_of(&answer).contains("/tenant link"), "{answer}");
    // A replayed request (the same signed body, within the window) is not acted on twice.
    w.person("rita", "billing-viewer");
    w.link("U0RITA", "rita");
    let body = serde_urlencoded::to_string([
        ("team_id", TEAM),
        ("channel_id", "C0GENERAL"),
        ("user_id", "U0RITA"),
        ("command", "/tenant"),
        ("text", "whoami"),
        ("api_app_id", "A0APP"),
        ("response_url", &w.fake.response_url("replay")),
        ("trigger_id", "trigger.replayed"),
    ])
    .unwrap();
    let ts = now();
    let (s1, first) = w.signed(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &body,
        ts,
    );
    let (s2, again) = w.signed(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &body,
        ts,
    );
    assert_eq!((s1, s2), (200, 200));
    assert!(first.contains("rita"), "{first}");
    assert!(
        !again.contains("rita"),
        "a replay is acknowledged, not answered again: {again}"
    );
    let whoamis =
        w.sb.call_ok(&w.admin, "audit.list", json!({"limit": 100}))
            .to_string()
            .matches("\"whoami\"")
            .count();
    assert_eq!(whoamis, 1, "the replay did not run the operation again");
    assert!(w.fake.of("chat.postMessage").is_empty());
}

#[test]
fn an_agents_destructive_mcp_call_is_approved_by_a_second_linked_human_with_one_click() {
    let w = world();
    let sb = &w.sb;
    w.person("alice", "security-admin");
    w.link("U0ALICE", "alice");
    sb.call_ok(
        &w.admin,
        "members.create_persona",
        json!({"handle": "exporter", "kind": "agent", "roles": ["tenant-admin"]}),
    );
    let agent = api_key_of(&sb.call_ok(
        &w.admin,
        "keys.issue",
        json!({"persona": "exporter", "expires_in": "1d", "scopes": ["tenant:export"]}),
    ));

    // The agent asks over MCP; it gets the pending request at once.
    let mut c = Running::start(&[
        "approval",
        "--key",
        &agent,
        "--url",
        &url(&w.addr),
        "--tool",
        "tenant.export_all",
    ]);
    let pending = c.next();
    let id = pending["result"]["request_id"].as_str().unwrap().to_owned();

    // The request appears in the approval channel with both buttons.
    let calls = w.fake.wait_for("the approval request", |c| {
        c.iter()
            .any(|x| x.method == "chat.postMessage" && x.body["channel"] == APPROVALS)
    });
    let posted = calls
        .iter()
        .find(|x| x.method == "chat.postMessage" && x.body["channel"] == APPROVALS)
        .unwrap();
    let text = posted.body.to_string();
    assert!(
        text.contains(&format!("approve:{id}")) && text.contains(&format!("reject:{id}")),
        "{text}"
    );
    assert!(text.contains("Export"), "{text}");
    let ts = "1700000000.000001";

    // Alice taps Approve — twice (a double tap), and Slack redelivers the first.
    assert_eq!(
        w.click(
            "U0ALICE",
            &format!("approve:{id}"),
            APPROVALS,
            ts,
            "1700000001.000001"
        ),
        200
    );
    assert_eq!(
        w.click(
            "U0ALICE",
            &format!("approve:{id}"),
            APPROVALS,
            ts,
            "1700000001.000001"
        ),
        200
    );
    assert_eq!(
        w.click(
            "U0ALICE",
            &format!("approve:{id}"),
            APPROVALS,
            ts,
            "1700000001.000002"
        ),
        200
    );

    // The agent's poll sees it executed; the archive exists once.
    let fin = c.next();
    assert_eq!(fin["request"]["state"], "succeeded", "{fin}");
    let exports = std::fs::read_dir(sb.dir().join("exports"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exports, 1, "executed exactly once");

    // The message was edited in place (same channel and ts), and the outcome posted in its thread.
    w.fake.wait_for("the edit and the thread reply", |c| {
        c.iter().any(|x| {
            x.method == "chat.update" && x.body["channel"] == APPROVALS && x.body["ts"] == ts
        }) && c
            .iter()
            .any(|x| x.method == "chat.postMessage" && x.body["thread_ts"] == ts)
    });
    let last_update = w.fake.of("chat.update").into_iter().last().unwrap();
    assert!(
        !last_update.body.to_string().contains("approve:"),
        "no buttons once decided: {}",
        last_update.body
    );
}

#[test]
fn a_human_request_is_rejected_with_a_comment_and_the_requester_is_told_by_dm() {
    let w = world();
    let sb = &w.sb;
    w.person("alice", "security-admin");
    w.person("bob", "tenant-admin");
    w.link("U0ALICE", "alice");
    w.link("U0BOB", "bob");
    // Bob asks from Slack.
    let (s, answer) = w.command("U0BOB", "/tenant", "export_all reason=\"annual DSAR\"");
    assert_eq!(s, 200);
    let text = text_of(&answer);
    assert!(text.contains("apr_"), "{text}");
    let id = text[text.find("apr_").unwrap()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>();
    w.fake.wait_for("the approval request", |c| {
        c.iter()
            .any(|x| x.method == "chat.postMessage" && x.body["channel"] == APPROVALS)
    });
    // Alice taps Reject: a modal asks why.
    assert_eq!(
        w.click(
            "U0ALICE",
            &format!("reject:{id}"),
            APPROVALS,
            "1700000000.000001",
            "1700000002.000001"
        ),
        200
    );
    w.fake.wait_for("the reject modal", |c| {
        c.iter().any(|x| x.method == "views.open")
    });
    let payload = json!({
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": "U0ALICE", "team_id": TEAM, "username": "alice", "name": "alice"},
        "view": {"id": "V1", "team_id": TEAM, "type": "modal", "callback_id": "reject", "private_metadata": id,
                 "title": {"type": "plain_text", "text": "Reject request"}, "blocks": [],
                 "state": {"values": {"comment": {"comment": {"type": "plain_text_input", "value": "not during the freeze"}}}},
                 "hash": "h", "app_id": "A0APP", "bot_id": "B1"}
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let (s, _) = w.signed(
        "/slack/interactions",
        "application/x-www-form-urlencoded",
        &body,
        now(),
    );
    assert_eq!(s, 200);
    let view = sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut state = view["state"].as_str().unwrap().to_owned();
    while state != "rejected" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        state = sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}))["state"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    assert_eq!(state, "rejected");
    // Bob hears it directly.
    w.fake.wait_for("a DM to bob", |c| {
        c.iter().any(|x| {
            x.method == "chat.postMessage"
                && x.body["channel"] == "DU0BOB"
                && x.body.to_string().contains("not during the freeze")
        })
    });
}

#[test]
fn on_call_revokes_a_persona_with_one_tap_and_its_keys_stop_at_once() {
    let w = world();
    let sb = &w.sb;
    w.person("oncall", "tenant-admin");
    w.link("U0ONCALL", "oncall");
    let bot = sb.service_key(&w.admin, "ci-bot", &["developer"], &["keys:read"]);
    sb.call_ok(&bot, "whoami", json!({}));
    let (s, preview) = w.command("U0ONCALL", "/members", "revoke ci-bot");
    assert_eq!(s, 200);
    let text = text_of(&preview);
    assert_eq!(preview["response_type"], "ephemeral");
    assert!(text.contains("revoke:ps_"), "one confirm button: {text}");
    assert!(text.contains("ci-bot"), "{text}");
    // Nothing is cut off before the tap.
    sb.call_ok(&bot, "whoami", json!({}));
    let action = text[text.find("revoke:ps_").unwrap()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>();
    assert_eq!(
        w.click(
            "U0ONCALL",
            &action,
            "C0GENERAL",
            "1700000000.000009",
            "1700000003.000001"
        ),
        200
    );
    let calls = w.fake.wait_for("the revoke answer", |c| {
        c.iter().any(|x| {
            x.method == "response_url"
                && x.body.to_string().contains("ci-bot")
                && x.body["replace_original"] == true
        })
    });
    let answer = calls
        .iter()
        .rev()
        .find(|x| x.method == "response_url")
        .unwrap();
    assert!(
        answer.body.to_string().to_lowercase().contains("revoked"),
        "{}",
        answer.body
    );
    assert_eq!(
        sb.call(&bot, "whoami", json!({})).code,
        3,
        "the bot's key is refused now"
    );
}

#[test]
fn billing_for_finance_and_secrets_only_to_the_person_who_asked() {
    let w = world();
    let sb = &w.sb;
    w.person("fin", "tenant-admin");
    w.link("U0FIN", "fin");
    sb.call_ok(&w.admin, "billing.set_prices", json!({"currency": "USD", "prices": [
        {"sku": "api.requests", "unit": "request", "unit_price": "0.0004", "description": "API requests"}]}));
    let (s, summary) = w.command("U0FIN", "/billing", "");
    assert_eq!(s, 200);
    assert!(text_of(&summary).contains("USD"), "{summary}");
    let (s, posted) = w.command("U0FIN", "/billing", "post <#C0FINANCE|finance>");
    assert_eq!(s, 200, "{posted}");
    w.fake.wait_for("the summary and chart in #finance", |c| {
        c.iter()
            .any(|x| x.method == "chat.postMessage" && x.body["channel"] == "C0FINANCE")
            && c.iter()
                .any(|x| x.method == "upload" && x.body["png"] == true)
            && c.iter().any(|x| {
                x.method == "files.completeUploadExternal"
                    && x.body.to_string().contains("C0FINANCE")
            })
    });
    // A new API key: shown once, only to the person who asked.
    let (s, issued) = w.command(
        "U0FIN",
        "/keys",
        "issue persona=fin scopes=billing:read expires=30d",
    );
    assert_eq!(s, 200);
    assert_eq!(issued["response_type"], "ephemeral");
    assert!(text_of(&issued).contains("tops_"), "{issued}");
    for c in w.fake.calls() {
        if c.method == "chat.postMessage" || c.method == "chat.update" {
            assert!(
                !c.body.to_string().contains("tops_"),
                "a secret reached a channel: {}",
                c.body
            );
        }
    }
    // Help and a wrong argument.
    let (_, help) = w.command("U0FIN", "/keys", "help");
    assert!(text_of(&help).contains("issue"), "{help}");
    let (_, wrong) = w.command(
        "U0FIN",
        "/keys",
        "issue persona=fin scopes=billing:read colour=blue",
    );
    assert!(text_of(&wrong).contains("colour"), "{wrong}");
}

#[test]
fn socket_mode_needs_no_public_url_and_a_redelivered_envelope_acts_once() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let oncall = sb.person(&t.api_key, &t.tenant_id, "oncall", &["tenant-admin"]);
    let code = sb.call_ok(&oncall.token, "members.chat_link_code", json!({}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let fake = FakeSlack::start();
    fake.user(WORKSPACE_ADMIN, TEAM, true);
    let api = fake.api_url();
    // Socket Mode only: no signing secret, so the HTTP endpoints refuse.
    let (server, addr) = serve_with(
        &sb,
        &[
            ("TENANTOPS_SLACK_APP_TOKEN", "xapp-1-test"),
            ("TENANTOPS_SLACK_BOT_TOKEN", BOT_TOKEN),
            ("TENANTOPS_SLACK_API_URL", &api),
        ],
    );
    let _server = Killed(server);
    fake.wait_for_socket();
    let envelope_as = |user: &str, id: &str, trigger: &str, text: &str| {
        json!({
            "type": "slash_commands", "envelope_id": id, "accepts_response_payload": true,
            "payload": {"team_id": TEAM, "channel_id": "C0GENERAL", "user_id": user,
                "command": "/tenant", "text": text, "api_app_id": "A0APP",
                "response_url": fake.response_url(id), "trigger_id": trigger}
        })
    };
    let envelope = |id: &str, trigger: &str, text: &str| envelope_as("U0ONCALL", id, trigger, text);
    // A workspace admin binds it over Socket Mode too.
    let state = sb.call_ok(
        &t.api_key,
        "tenant.chat_install_link",
        json!({"platform": "slack", "approval_channel": APPROVALS}),
    )["state"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.push(envelope_as(
        WORKSPACE_ADMIN,
        "e0",
        "trig.0",
        &format!("bind {state}"),
    ));
    let calls = fake.wait_for("the bind ack", |c| {
        c.iter()
            .any(|x| x.method == "socket_ack" && x.body["envelope_id"] == "e0")
    });
    let ack = calls
        .iter()
        .find(|x| x.body["envelope_id"] == "e0")
        .unwrap();
    assert!(ack.body.to_string().contains("Connected"), "{}", ack.body);
    fake.push(envelope("e1", "trig.1", &format!("link {code}")));
    let calls = fake.wait_for("the link ack", |c| {
        c.iter()
            .any(|x| x.method == "socket_ack" && x.body["envelope_id"] == "e1")
    });
    let ack = calls
        .iter()
        .find(|x| x.body["envelope_id"] == "e1")
        .unwrap();
    assert!(ack.body.to_string().contains("oncall"), "{}", ack.body);
    // Revoke a bot over Socket Mode; Slack redelivers the click's envelope.
    let bot = sb.service_key(&t.api_key, "ci-bot", &["developer"], &["keys:read"]);
    fake.push(envelope("e2", "trig.2", "whoami"));
    let calls = fake.wait_for("whoami", |c| {
        c.iter().any(|x| x.body["envelope_id"] == "e2")
    });
    assert!(
        calls
            .iter()
            .find(|x| x.body["envelope_id"] == "e2")
            .unwrap()
            .body
            .to_string()
            .contains("oncall")
    );
    let persona = sb.call_ok(
        &t.api_key,
        "members.get_persona",
        json!({"persona": "ci-bot"}),
    );
    let persona_id = persona["id"]
        .as_str()
        .or(persona["persona"]["id"].as_str())
        .unwrap_or_else(|| panic!("no id in {persona}"))
        .to_owned();
    let click = |envelope_id: &str| {
        json!({
            "type": "interactive", "envelope_id": envelope_id, "accepts_response_payload": false,
            "payload": {
                "type": "block_actions",
                "team": {"id": TEAM, "domain": "acme"},
                "user": {"id": "U0ONCALL", "team_id": TEAM, "username": "oncall", "name": "oncall"},
                "api_app_id": "A0APP",
                "container": {"type": "message", "message_ts": "1.1", "channel_id": "C0GENERAL", "is_ephemeral": true},
                "trigger_id": "click.x",
                "response_url": fake.response_url("click-revoke"),
                "actions": [{"type": "button", "action_id": format!("revoke:{persona_id}"),
                             "block_id": "b", "action_ts": "1700000009.000001"}]
            }
        })
    };
    fake.push(click("e3"));
    fake.push(click("e3-redelivered"));
    fake.wait_for("the revoke answer", |c| {
        c.iter()
            .any(|x| x.method == "response_url" && x.body["_response_id"] == "click-revoke")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let answers = fake
        .of("response_url")
        .into_iter()
        .filter(|x| x.body["_response_id"] == "click-revoke")
        .count();
    assert_eq!(
        answers, 1,
        "a redelivered click is acknowledged, not acted on again"
    );
    assert_eq!(sb.call(&bot, "whoami", json!({})).code, 3);
    let body = "command=%2Ftenant";
    let (s, _) = post(
        &addr,
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &fake_slack::sign(body, now(), SIGNING_SECRET),
        body,
    );
    assert_eq!(s, 503, "HTTP mode is off without a signing secret");
}

/// Kills a child process when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw HTTP/1.1 GET; returns (status, head and body).
fn get(addr: &str, path: &str) -> (u16, String) {
    crate::support::http(addr, "GET", path, &[], "")
}

#[test]
fn the_oauth_install_binds_the_workspace_and_its_token_is_stored_encrypted() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let link = sb.call_ok(
        &t.api_key,
        "tenant.chat_install_link",
        json!({"platform": "slack", "approval_channel": APPROVALS}),
    );
    let path = link["path"].as_str().unwrap().to_owned();
    let state = link["state"].as_str().unwrap().to_owned();
    let fake = FakeSlack::start();
    let api = fake.api_url();
    let (server, addr) = serve_with(
        &sb,
        &[
            ("TENANTOPS_SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("TENANTOPS_SLACK_BOT_TOKEN", BOT_TOKEN),
            ("TENANTOPS_SLACK_API_URL", &api),
            ("TENANTOPS_SLACK_CLIENT_ID", "123.456"),
            ("TENANTOPS_SLACK_CLIENT_SECRET", "client-secret"),
            ("TENANTOPS_PUBLIC_URL", "https://tenantops.example.com"),
        ],
    );
    let _server = Killed(server);
    // The install link sends the admin to Slack's consent page with the state.
    let (status, head) = get(&addr, &path);
    assert_eq!(status, 302, "{head}");
    let location = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("location:"))
        .unwrap();
    assert!(
        location.contains("client_id=123.456") && location.contains(&state),
        "{location}"
    );
    assert!(location.contains("oauth%2Fcallback"), "{location}");
    // A forged or wrong code installs nothing.
    let (status, _) = get(
        &addr,
        &format!("/slack/oauth/callback?code=bad&state={state}"),
    );
    assert_eq!(status, 502);
    // Slack comes back with a good code.
    let (status, page) = get(
        &addr,
        &format!("/slack/oauth/callback?code=good-code&state={state}"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("NewCo"), "{page}");
    let exchange = fake.of("oauth.v2.access");
    assert!(
        exchange
            .iter()
            .all(|c| c.body["auth"].as_str().unwrap().starts_with("Basic "))
    );
    // The state works once.
    let (status, _) = get(
        &addr,
        &format!("/slack/oauth/callback?code=good-code&state={state}"),
    );
    assert_eq!(status, 400);
    let bound = sb.call_ok(&t.api_key, "tenant.chat_list", json!({}));
    assert_eq!(bound["workspaces"][0]["workspace_id"], "T0NEWCO", "{bound}");
    assert_eq!(bound["workspaces"][0]["approval_channel"], APPROVALS);
    // The token is never stored in the clear, and the workspace's messages use it.
    let db = sb.db_contents();
    assert!(!db.is_empty(), "nothing read from {}", sb.db());
    for (name, bytes) in &db {
        assert!(
            !bytes
                .windows(fake_slack::INSTALLED_TOKEN.len())
                .any(|w| w == fake_slack::INSTALLED_TOKEN.as_bytes()),
            "the installed token is in the clear in {name}"
        );
    }
    sb.call_ok(&t.api_key, "members.create_persona",
        json!({"handle": "bob", "kind": "human", "email": "bob@acme.example", "roles": ["tenant-admin"]}));
    let bob = sb.call_ok(
        &t.api_key,
        "keys.issue",
        json!({"persona": "bob", "expires_in": "1d", "scopes": ["tenant:export"]}),
    );
    sb.call(&api_key_of(&bob), "tenant.export_all", json!({}))
        .code(0);
    let calls = fake.wait_for("the request in the installed workspace", |c| {
        c.iter()
            .any(|x| x.method == "chat.postMessage" && x.body["channel"] == APPROVALS)
    });
    let posted = calls
        .iter()
        .find(|x| x.method == "chat.postMessage")
        .unwrap();
    assert_eq!(posted.body["_token"], fake_slack::INSTALLED_TOKEN);
}

#[test]
fn the_scheduled_billing_digest_is_posted_once_per_period() {
    let w = world_with(&[("TENANTOPS_SLACK_DIGEST_CHECK", "100ms")]);
    let (sb, t) = (&w.sb, &w.admin);
    sb.call_ok(t, "billing.set_prices", json!({"currency": "USD", "prices": [
        {"sku": "api.requests", "unit": "request", "unit_price": "0.0004", "description": "API requests"}]}));
    w.bind(
        TEAM,
        json!({"digest_channel": "C0FINANCE", "digest_every": "7d"}),
    );
    let fake = &w.fake;
    fake.wait_for("the digest with its chart", |c| {
        c.iter()
            .any(|x| x.method == "chat.postMessage" && x.body["channel"] == "C0FINANCE")
            && c.iter()
                .any(|x| x.method == "upload" && x.body["png"] == true)
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    let digests = fake
        .of("chat.postMessage")
        .into_iter()
        .filter(|x| x.body["channel"] == "C0FINANCE")
        .count();
    assert_eq!(digests, 1, "once per period, not once per check");
    // The digest ran as the admin who set it up, through the schedule.
    let entries = sb.call_ok(t, "audit.list", json!({"limit": 50}));
    assert!(
        entries.to_string().contains("scheduled-digest"),
        "{entries}"
    );
}

#[test]
fn a_slack_workspace_is_bound_only_with_proof_that_it_is_yours() {
    let w = world();
    // Naming another organisation's team id binds nothing.
    let run = w.sb.call(
        &w.admin,
        "tenant.chat_bind",
        json!({"platform": "slack", "workspace_id": "T0VICTIM", "approval_channel": "C0X"}),
    );
    let err = run.error(2, "bad_input");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("tenant.chat_install_link"),
        "{err}"
    );
    w.fake.user("U0OWNER", "T0VICTIM", true);
    w.fake.user("U0MEMBER", "T0VICTIM", false);
    let code = |admin: &str| {
        w.sb.call_ok(
            admin,
            "tenant.chat_install_link",
            json!({"platform": "slack"}),
        )["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The squatter's code, typed in the victim's workspace by a plain member or by an admin of
    // another workspace (a shared channel): refused, nothing bound.
    let squat = code(&w.admin);
    for user in ["U0MEMBER", WORKSPACE_ADMIN] {
        let (s, answer) = w.command_in("T0VICTIM", user, "/tenant", &format!("bind {squat}"));
        assert_eq!(s, 200);
        assert!(
            text_of(&answer).contains("Only a workspace admin"),
            "{answer}"
        );
    }
    let listed = w.sb.call_ok(&w.admin, "tenant.chat_list", json!({}));
    assert!(!listed.to_string().contains("T0VICTIM"), "{listed}");
    // The victim's own owner binds it to the victim's tenant.
    let victim = w.sb.create_tenant("victim");
    let theirs = code(&victim.api_key);
    let (_, answer) = w.command_in("T0VICTIM", "U0OWNER", "/tenant", &format!("bind {theirs}"));
    assert!(text_of(&answer).contains("Connected"), "{answer}");
    let listed = w.sb.call_ok(&victim.api_key, "tenant.chat_list", json!({}));
    assert!(listed.to_string().contains("T0VICTIM"), "{listed}");
    // From then on, the squatter's unused code cannot take it over.
    let (_, answer) = w.command_in("T0VICTIM", "U0OWNER", "/tenant", &format!("bind {squat}"));
    assert!(text_of(&answer).contains("another tenant"), "{answer}");
}
