//! Discord end to end: the real binary (`serve` with Discord configured) against a fake Discord
//! REST API and gateway on 127.0.0.1, with interactions signed with Ed25519 the way Discord
//! signs them — and, with Slack configured too, one approval decided across both platforms.

use crate::approvals::serve_with;
use crate::fake_discord::{
    self as fake, APPLICATION_ID, BOT_TOKEN, CHANNEL, FakeDiscord, GUILD, PUBLIC_KEY_HEX,
};
use crate::fake_slack::{self, FakeSlack};
use crate::support::{Sandbox, console_token};
use serde_json::{Value, json};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1_400_000_000_000_000_000);

fn next_id() -> String {
    NEXT_ID.fetch_add(1, Ordering::SeqCst).to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Where approval requests go in the Discord server.
const APPROVALS: &str = "1260000000000000001";
/// Slack's approval channel and team, for the cross-platform test.
const SLACK_TEAM: &str = "T0ACME";
const SLACK_APPROVALS: &str = "C0APPROVE";

const ALICE: &str = "1000000000000000011";
const BOB: &str = "1000000000000000012";
const CAROL: &str = "1000000000000000013";

/// A raw HTTP/1.1 POST of JSON; returns (status, body).
fn post(addr: &str, headers: &[(String, String)], body: &str) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (status, text) = crate::support::http(addr, "POST", "/discord/interactions", &all, body);
    (status, crate::support::body_of(&text).to_owned())
}

struct World {
    sb: Sandbox,
    fake: FakeDiscord,
    slack: Option<FakeSlack>,
    server: Child,
    addr: String,
    admin: String,
    tenant: String,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn discord_env(api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TENANTOPS_DISCORD_PUBLIC_KEY", PUBLIC_KEY_HEX.to_owned()),
        (
            "TENANTOPS_DISCORD_APPLICATION_ID",
            APPLICATION_ID.to_owned(),
        ),
        ("TENANTOPS_DISCORD_BOT_TOKEN", BOT_TOKEN.to_owned()),
        ("TENANTOPS_DISCORD_API_URL", api.to_owned()),
    ]
}

fn world_with(slack: bool, extra: &[(&str, &str)]) -> World {
    let sb = Sandbox::new();
    let created = sb.create_tenant("acme");
    let admin = created.api_key;
    sb.links_decide_at_once(&admin);
    let fake = FakeDiscord::start();
    let mut env = discord_env(&fake.api_url());
    let slack = slack.then(|| {
        let s = FakeSlack::start();
        s.user(SLACK_ADMIN, SLACK_TEAM, true);
        env.push((
            "TENANTOPS_SLACK_SIGNING_SECRET",
            fake_slack::SIGNING_SECRET.into(),
        ));
        env.push(("TENANTOPS_SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN.into()));
        env.push(("TENANTOPS_SLACK_API_URL", s.api_url()));
        s
    });
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k, v));
    }
    let env: Vec<(&str, &str)> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let gateway = env.contains(&("TENANTOPS_DISCORD_GATEWAY", "true"));
    let (server, addr) = serve_with(&sb, &env);
    let w = World {
        sb,
        fake,
        slack,
        server,
        addr,
        admin,
        tenant: created.tenant_id,
    };
    if gateway {
        w.fake.wait_for_gateway();
    }
    w.bind_server(gateway);
    if w.slack.is_some() {
        // The Slack workspace is connected by one of its admins, from inside it.
        let state = w.sb.call_ok(
            &w.admin,
            "tenant.chat_install_link",
            json!({"platform": "slack", "approval_channel": SLACK_APPROVALS}),
        )["state"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = slack_command(&w, SLACK_ADMIN, "/tenant", &format!("bind {state}"));
        assert!(text(&answer).contains("Connected"), "{answer}");
    }
    w
}

/// The Slack user who administers the fake Slack workspace.
const SLACK_ADMIN: &str = "U0ADMIN";

/// Someone with Manage Server in the server (Discord's permission bit 0x20, as it signs it).
const OWNER: &str = "1000000000000000001";

/// `interaction` as sent by a member with these permissions.
fn with_permissions(mut interaction: Value, permissions: &str) -> Value {
    interaction["member"]["permissions"] = json!(permissions);
    interaction
}

fn world() -> World {
    world_with(false, &[])
}

impl World {
    /// Connects the server the way a tenant does: a code from `tenant.chat_install_link`, typed
    /// as `/tenant bind` in the server by someone who can manage it.
    fn bind_server(&self, over_gateway: bool) {
        let link = self.sb.call_ok(
            &self.admin,
            "tenant.chat_install_link",
            json!({"platform": "discord", "approval_channel": APPROVALS}),
        );
        let code = link["state"].as_str().unwrap().to_owned();
        assert_eq!(link["command"], format!("/tenant bind code:{code}"));
        let id = next_id();
        let bind = with_permissions(
            fake::command(
                &id,
                OWNER,
                "tenant",
                json!([{"type": 1, "name": "bind", "options": [
                    {"type": 3, "name": "code", "value": code}]}]),
            ),
            "32",
        );
        let answer = if over_gateway {
            self.fake.push_interaction(bind);
            let path = format!("/interactions/{id}/tok-{id}/callback");
            let calls = self
                .fake
                .wait_for("the bind answer", |c| c.iter().any(|x| x.path == path));
            calls
                .iter()
                .find(|x| x.path == path)
                .unwrap()
                .body
                .to_string()
        } else {
            let (status, answer) = self.send(&bind);
            assert_eq!(status, 200, "{answer}");
            self.answer(&id, &answer)
        };
        assert!(answer.contains("Connected"), "{answer}");
    }

    /// Sends a signed interaction; returns (status, JSON response).
    fn send(&self, interaction: &Value) -> (u16, Value) {
        let body = interaction.to_string();
        let (status, text) = post(&self.addr, &fake::sign(&body, now()), &body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Runs `/name sub option:value…` as `user`.
    fn command(&self, user: &str, name: &str, sub: &str, options: Value) -> Value {
        let options = json!([{"type": 1, "name": sub, "options": options}]);
        let (status, answer) = self.send(&fake::command(&next_id(), user, name, options));
        assert_eq!(status, 200, "{answer}");
        answer
    }

    fn create_human(&self, handle: &str, role: &str) {
        self.sb.person(&self.admin, &self.tenant, handle, &[role]);
    }

    /// A one-time link code `handle` asks for from their own sign-in.
    fn own_code(&self, handle: &str) -> String {
        let id = self.sb.call_ok(
            &self.admin,
            "members.get_persona",
            json!({"persona": handle}),
        )["persona"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let own = console_token(&self.tenant, &id);
        self.sb.call_ok(&own, "members.chat_link_code", json!({}))["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Links Discord user `user` to persona `handle` with the code that person asked for.
    fn link(&self, user: &str, handle: &str) {
        let code = self.own_code(handle);
        let id = next_id();
        let options = json!([{"type": 1, "name": "link", "options": [
            {"type": 3, "name": "code", "value": code}]}]);
        let (status, answer) = self.send(&fake::command(&id, user, "tenant", options));
        assert_eq!(status, 200, "{answer}");
        assert!(self.answer(&id, &answer).contains(handle), "{answer}");
    }

    /// The text of an interaction's answer: the immediate one, or — when it was deferred — the
    /// original response as edited in once the work was done.
    fn answer(&self, id: &str, immediate: &Value) -> String {
        if immediate["type"] != 5 && immediate["type"] != 6 {
            return immediate.to_string();
        }
        let original = format!("/webhooks/{APPLICATION_ID}/tok-{id}/messages/@original");
        let calls = self.fake.wait_for("the deferred answer", |c| {
            c.iter().any(|x| x.method == "PATCH" && x.path == original)
        });
        calls
            .iter()
            .rev()
            .find(|x| x.path == original)
            .unwrap()
            .body
            .to_string()
    }

    /// Presses a button on message `message_id` in `channel`.
    fn click(&self, user: &str, custom_id: &str, channel: &str, message_id: &str) -> Value {
        let (status, answer) = self.send(&fake::component(
            &next_id(),
            user,
            custom_id,
            channel,
            message_id,
        ));
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

fn text(v: &Value) -> String {
    v.to_string()
}

const EPHEMERAL: u64 = 64;

fn is_ephemeral(answer: &Value) -> bool {
    answer["data"]["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0
}

/// The `apr_…` id in a text.
fn request_id(text: &str) -> String {
    text[text.find("apr_").expect("a request id")..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn signed_fixtures_good_bad_stale_and_replayed_and_unbound_or_unlinked_callers_are_told() {
    let w = world();
    // PING, signed: PONG.
    let (s, pong) = w.send(&fake::ping(&next_id()));
    assert_eq!((s, pong["type"].clone()), (200, json!(1)));
    let body = fake::ping(&next_id()).to_string();
    // Unsigned, wrongly signed, signed for another body, stale: 401 before parsing.
    assert_eq!(post(&w.addr, &[], &body).0, 401);
    let mut bad = fake::sign(&body, now());
    bad[0].1 = "00".repeat(64);
    assert_eq!(post(&w.addr, &bad, &body).0, 401);
    assert_eq!(post(&w.addr, &fake::sign("{}", now()), &body).0, 401);
    assert_eq!(post(&w.addr, &fake::sign(&body, now() - 600), &body).0, 401);
    // Garbage that is signed is a 400, not a crash.
    assert_eq!(post(&w.addr, &fake::sign("nope", now()), "nope").0, 400);

    // An unlinked member is told how to link; a server not bound is told how to bind.
    let answer = w.command(ALICE, "tenant", "whoami", json!([]));
    assert!(is_ephemeral(&answer), "{answer}");
    assert!(text(&answer).contains("link"), "{answer}");
    let other = fake::in_guild(
        fake::command(
            &next_id(),
            ALICE,
            "tenant",
            json!([{"type": 1, "name": "whoami", "options": []}]),
        ),
        "1299999999999999999",
    );
    let (_, answer) = w.send(&other);
    assert!(
        text(&answer).contains("tenant.chat_install_link"),
        "{answer}"
    );

    // A direct message has no tenant: told to use the server, for commands and for linking.
    for sub in ["whoami", "link"] {
        let mut dm = fake::command(
            &next_id(),
            ALICE,
            "tenant",
            json!([{"type": 1, "name": sub, "options": []}]),
        );
        let o = dm.as_object_mut().unwrap();
        o.remove("guild_id");
        o.remove("member");
        o.insert(
            "user".into(),
            json!({"id": ALICE, "username": "alice", "discriminator": "0",
            "global_name": null, "avatar": null}),
        );
        o.insert("context".into(), json!(1));
        let (s, answer) = w.send(&dm);
        assert_eq!(s, 200, "{answer}");
        assert!(text(&answer).contains("in your server"), "{answer}");
    }

    // A replayed signed command is answered without acting again.
    w.create_human("alice", "tenant-admin");
    w.link(ALICE, "alice");
    let create = fake::command(
        &next_id(),
        ALICE,
        "members",
        json!([{"type": 1, "name": "create_bu", "options": [
            {"type": 3, "name": "name", "value": "emea"},
            {"type": 3, "name": "kind", "value": "region"}]}]),
    );
    let (s, first) = w.send(&create);
    assert_eq!(s, 200);
    assert!(text(&first).contains("emea"), "{first}");
    let (s, again) = w.send(&create);
    assert_eq!(s, 200);
    assert!(text(&again).contains("Already handled"), "{again}");
    let bus = w.sb.call_ok(&w.admin, "members.list_bus", json!({}));
    assert_eq!(bus["units"].as_array().unwrap().len(), 1, "{bus}");
}

#[test]
fn commands_are_registered_from_the_catalogue_for_a_guild_or_globally() {
    let sb = Sandbox::new();
    let fake = FakeDiscord::start();
    let api = fake.api_url();
    let env = [
        ("TENANTOPS_DISCORD_APPLICATION_ID", APPLICATION_ID),
        ("TENANTOPS_DISCORD_BOT_TOKEN", BOT_TOKEN),
        ("TENANTOPS_DISCORD_API_URL", api.as_str()),
    ];
    let run = sb.run_env(&["discord", "register", "--guild", GUILD], &env);
    run.code(0);
    let out = run.json();
    assert_eq!(out["scope"], "guild");
    assert_eq!(out["registered"], 6, "{out}");
    let calls = fake.of(
        "PUT",
        &format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands"),
    );
    let commands = calls[0].body.as_array().unwrap();
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["billing", "members", "keys", "approvals", "tenant", "byok"]
    );
    let keys = commands.iter().find(|c| c["name"] == "keys").unwrap();
    assert!(text(keys).contains("\"autocomplete\":true"), "{keys}");
    sb.run_env(&["discord", "register"], &env).code(0);
    assert_eq!(
        fake.of("PUT", &format!("/applications/{APPLICATION_ID}/commands"))
            .len(),
        1
    );
    // deploy/discord/register.sh does the same from the environment.
    let script = crate::support::root().join("deploy/discord/register.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("TENANTOPS_BIN", crate::support::BIN)
        .env("TENANTOPS_DB", sb.db())
        .envs(sb.db_env())
        .env("DISCORD_GUILD_ID", "1200000000000000042")
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fake.of(
            "PUT",
            &format!("/applications/{APPLICATION_ID}/guilds/1200000000000000042/commands")
        )
        .len(),
        1
    );
    // A wrong token is a clear failure, not a silent success.
    let run = sb.run_env(
        &["discord", "register"],
        &[
            ("TENANTOPS_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("TENANTOPS_DISCORD_BOT_TOKEN", "wrong"),
            ("TENANTOPS_DISCORD_API_URL", api.as_str()),
        ],
    );
    run.code(1);
    // Without an application id: a bad-input exit naming the variable.
    let run = sb.run_env(
        &["discord", "register"],
        &[("TENANTOPS_DISCORD_BOT_TOKEN", BOT_TOKEN)],
    );
    run.code(2);
    assert!(
        run.stderr.contains("TENANTOPS_DISCORD_APPLICATION_ID"),
        "{}",
        run.stderr
    );
}

#[test]
fn commands_run_as_the_linked_persona_with_typed_options_autocomplete_and_private_secrets() {
    let w = world();
    w.create_human("alice", "tenant-admin");
    w.link(ALICE, "alice");
    w.sb.call_ok(
        &w.admin,
        "members.create_persona",
        json!({"handle": "ci-bot", "kind": "service", "roles": ["developer"]}),
    );
    // Autocomplete offers personas the caller can see.
    let (s, choices) = w.send(&fake::autocomplete(
        &next_id(),
        ALICE,
        "keys",
        json!([{"type": 1, "name": "issue", "options": [
            {"type": 3, "name": "persona", "value": "ci", "focused": true}]}]),
    ));
    assert_eq!(s, 200);
    assert_eq!(choices["type"], 8, "{choices}");
    assert_eq!(
        choices["data"]["choices"][0]["value"], "ci-bot",
        "{choices}"
    );

    // A new key's secret is shown only to the person who asked.
    let answer = w.command(
        ALICE,
        "keys",
        "issue",
        json!([{"type": 3, "name": "persona", "value": "ci-bot"},
               {"type": 3, "name": "scopes", "value": "keys:read"},
               {"type": 3, "name": "expires_in", "value": "30d"}]),
    );
    assert_eq!(answer["type"], 4, "{answer}");
    assert!(is_ephemeral(&answer), "{answer}");
    assert!(text(&answer).contains("tops_"), "{answer}");
    assert!(
        w.fake.of("POST", "/channels").is_empty(),
        "no channel saw anything"
    );

    // Whoami runs as alice; a wrong option value names the option; help comes from the catalogue.
    let me = w.command(ALICE, "tenant", "whoami", json!([]));
    assert!(text(&me).contains("alice"), "{me}");
    let wrong = w.command(
        ALICE,
        "keys",
        "issue",
        json!([{"type": 3, "name": "persona", "value": "ci-bot"},
               {"type": 3, "name": "scopes", "value": "keys:frobnicate"}]),
    );
    assert!(text(&wrong).contains("scopes"), "{wrong}");
    let help = w.command(
        ALICE,
        "keys",
        "help",
        json!([{"type": 3, "name": "command", "value": "rotate"}]),
    );
    assert!(text(&help).contains("grace"), "{help}");
    // Out of scope: the core says no, whatever Discord lets the member see.
    w.create_human("dora", "billing-viewer");
    w.link(BOB, "dora");
    let denied = w.command(BOB, "keys", "list", json!([]));
    assert!(text(&denied).contains("keys:read"), "{denied}");
}

#[test]
fn a_request_is_rejected_through_the_modal_and_the_requester_is_told() {
    let w = world();
    w.create_human("alice", "security-admin");
    w.create_human("carol", "tenant-admin");
    w.link(ALICE, "alice");
    w.link(CAROL, "carol");
    let answer = w.command(
        CAROL,
        "tenant",
        "export_all",
        json!([{"type": 3, "name": "reason", "value": "annual DSAR"}]),
    );
    let id = request_id(&text(&answer));
    // Posted to the approval channel with both buttons.
    let calls = w.fake.wait_for("the approval request", |c| {
        c.iter()
            .any(|x| x.method == "POST" && x.path == format!("/channels/{APPROVALS}/messages"))
    });
    let posted = calls
        .iter()
        .find(|x| x.path == format!("/channels/{APPROVALS}/messages"))
        .unwrap();
    let t = text(&posted.body);
    assert!(
        t.contains(&format!("approve:{id}")) && t.contains(&format!("reject:{id}")),
        "{t}"
    );
    // The fake numbers what it creates from FIRST_ID: the approval message came first.
    let message_id = fake::FIRST_ID.to_string();
    // Alice's pending list offers the decision too.
    let pending = w.command(ALICE, "approvals", "pending", json!([]));
    let t = text(&pending);
    assert!(
        t.contains(&format!("approve:{id}")) && t.contains(&format!("reject:{id}")),
        "{t}"
    );
    // Reject opens a modal carrying the request.
    let modal = w.click(ALICE, &format!("reject:{id}"), APPROVALS, &message_id);
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["custom_id"], format!("reject:{id}"));
    // An empty comment is refused; a real one rejects.
    let (_, empty) = w.send(&fake::modal_submit(
        &next_id(),
        ALICE,
        &format!("reject:{id}"),
        "comment",
        "  ",
    ));
    assert!(text(&empty).contains("comment"), "{empty}");
    let (_, done) = w.send(&fake::modal_submit(
        &next_id(),
        ALICE,
        &format!("reject:{id}"),
        "comment",
        "not this quarter",
    ));
    assert!(text(&done).to_lowercase().contains("reject"), "{done}");
    let state =
        w.sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}));
    assert_eq!(state["state"], "rejected", "{state}");
    // The message is edited in place, a reply says what happened, carol hears by DM.
    w.fake.wait_for("the edit, the reply and the DM", |c| {
        c.iter().any(|x| {
            x.method == "PATCH"
                && x.path
                    .starts_with(&format!("/channels/{APPROVALS}/messages/"))
        }) && c.iter().any(|x| {
            x.method == "POST"
                && x.path == format!("/channels/{APPROVALS}/messages")
                && x.body["message_reference"].is_object()
        }) && c
            .iter()
            .any(|x| x.path == "/users/@me/channels" && x.body["recipient_id"] == CAROL)
    });
    let edit = w
        .fake
        .of("PATCH", &format!("/channels/{APPROVALS}/messages/"))
        .into_iter()
        .last()
        .unwrap();
    assert!(
        !text(&edit.body).contains("approve:"),
        "no buttons once decided: {}",
        edit.body
    );
    assert!(
        text(&edit.body).contains("not this quarter")
            || text(&edit.body).to_lowercase().contains("rejected"),
        "{}",
        edit.body
    );
}

#[test]
fn billing_summary_chart_and_post_and_on_call_revoke_from_a_phone() {
    let w = world();
    w.create_human("oncall", "tenant-admin");
    w.link(ALICE, "oncall");
    // The summary; the chart (a file: deferred, then the original response edited with it).
    let summary = w.command(ALICE, "billing", "summary", json!([]));
    assert!(is_ephemeral(&summary), "{summary}");
    assert!(text(&summary).contains("spent in"), "{summary}");
    assert!(
        text(&summary).contains("**USD"),
        "bold the Discord way: {summary}"
    );
    let chart = w.command(ALICE, "billing", "chart", json!([]));
    assert_eq!(chart["type"], 5, "deferred: {chart}");
    let calls = w.fake.wait_for("the chart in the edited response", |c| {
        c.iter().any(|x| {
            x.method == "PATCH" && x.path.ends_with("/messages/@original") && !x.files.is_empty()
        })
    });
    let edit = calls
        .iter()
        .find(|x| x.path.ends_with("/messages/@original"))
        .unwrap();
    assert!(edit.files[0].0.ends_with(".png"), "{edit:?}");
    // Posted for everyone in #finance, with the chart.
    let finance = "1270000000000000001";
    // Only where the person may post themselves (their permissions there, signed by Discord).
    let post_to = |permissions: &str| {
        let mut v = fake::command(
            &next_id(),
            ALICE,
            "billing",
            json!([{"type": 1, "name": "post", "options": [
                {"type": 7, "name": "channel", "value": finance}]}]),
        );
        v["data"]["resolved"] = json!({"channels": {finance: {
            "id": finance, "name": "finance", "type": 0, "permissions": permissions}}});
        w.send(&v).1
    };
    let refused = post_to("1024");
    assert!(text(&refused).contains("cannot send messages"), "{refused}");
    let answer = post_to("3072");
    assert!(text(&answer).contains("Posted"), "{answer}");
    let calls = w.fake.wait_for("the summary in #finance", |c| {
        c.iter()
            .any(|x| x.path == format!("/channels/{finance}/messages") && !x.files.is_empty())
    });
    assert!(
        calls
            .iter()
            .any(|x| x.path == format!("/channels/{finance}/messages"))
    );

    // On-call revoke: a preview with one confirm button, then one tap.
    let bot =
        w.sb.service_key(&w.admin, "ci-bot", &["developer"], &["keys:read"]);
    w.sb.call_ok(&bot, "whoami", json!({}));
    let preview = w.command(
        ALICE,
        "members",
        "revoke",
        json!([{"type": 3, "name": "persona", "value": "ci-bot"}]),
    );
    assert!(is_ephemeral(&preview), "{preview}");
    let t = text(&preview);
    assert!(t.contains("revoke:ps_") && t.contains("ci-bot"), "{t}");
    w.sb.call_ok(&bot, "whoami", json!({}));
    let action: String = t[t.find("revoke:ps_").unwrap()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let done = w.click(ALICE, &action, CHANNEL, "1300000000000000099");
    assert_eq!(done["type"], 7, "the preview is replaced: {done}");
    assert!(text(&done).to_lowercase().contains("revoked"), "{done}");
    assert_eq!(
        w.sb.call(&bot, "whoami", json!({})).code,
        3,
        "refused at once"
    );
}

#[test]
fn one_request_shows_on_slack_and_discord_and_a_quorum_of_two_is_met_one_approver_on_each() {
    let w = world_with(true, &[]);
    let slack = w.slack.as_ref().unwrap();
    w.create_human("alice", "security-admin");
    w.create_human("bob", "security-admin");
    w.create_human("carol", "tenant-admin");
    w.sb.call_approved(
        &w.admin,
        &w.tenant,
        "approvals.routes_add",
        json!({"name": "exports", "operation": "tenant.export_all",
               "approvers": {"roles": ["security-admin"]}, "quorum": 2}),
    );
    // alice is on Slack, bob and carol on Discord.
    let code = w.own_code("alice");
    slack_command(&w, "U0ALICE", "/tenant", &format!("link {code}"));
    w.link(BOB, "bob");
    w.link(CAROL, "carol");

    let answer = w.command(
        CAROL,
        "tenant",
        "export_all",
        json!([{"type": 3, "name": "reason", "value": "migration"}]),
    );
    let id = request_id(&text(&answer));
    // The request shows on both platforms. (Earlier requests — bob's creation, the route — were
    // decided by a second person from the shell; the server may have posted them meanwhile, so
    // each wait looks for this request.)
    slack.wait_for("the request in Slack", |c| {
        c.iter().any(|x| {
            x.method == "chat.postMessage"
                && x.body["channel"] == SLACK_APPROVALS
                && x.body.to_string().contains(&id)
        })
    });
    let calls = w.fake.wait_for("the request in Discord", |c| {
        c.iter().any(|x| {
            x.path == format!("/channels/{APPROVALS}/messages") && x.body.to_string().contains(&id)
        })
    });
    let discord_posts = calls
        .iter()
        .filter(|x| {
            x.path == format!("/channels/{APPROVALS}/messages") && x.body.to_string().contains(&id)
        })
        .count();
    assert_eq!(discord_posts, 1);
    let slack_ts = "1700000000.000001";

    // alice approves in Slack: 1 of 2; both messages show it.
    let payload = json!({
        "type": "block_actions",
        "team": {"id": SLACK_TEAM, "domain": "acme"},
        "user": {"id": "U0ALICE", "team_id": SLACK_TEAM, "username": "alice", "name": "alice"},
        "api_app_id": "A0APP",
        "container": {"type": "message", "message_ts": slack_ts, "channel_id": SLACK_APPROVALS, "is_ephemeral": false},
        "trigger_id": "click.1",
        "channel": {"id": SLACK_APPROVALS, "name": "approvals"},
        "response_url": slack.response_url("click1"),
        "actions": [{"type": "button", "action_id": format!("approve:{id}"), "block_id": "b",
                     "value": "v", "action_ts": "1700000001.000001"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let headers = fake_slack::sign(&body, now(), fake_slack::SIGNING_SECRET);
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(
        crate::support::http(&w.addr, "POST", "/slack/interactions", &all, &body).0,
        200
    );
    w.fake
        .wait_for("the Discord message edited after the Slack approval", |c| {
            c.iter().any(|x| {
                x.method == "PATCH"
                    && x.path
                        .starts_with(&format!("/channels/{APPROVALS}/messages/"))
                    && x.body.to_string().contains(&id)
            })
        });
    let state =
        w.sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}));
    assert_eq!(state["state"], "pending", "one of two: {state}");

    // bob approves in Discord — twice (a double click): the export runs once.
    let message_id = "1300000000000000000";
    let first = w.click(BOB, &format!("approve:{id}"), APPROVALS, message_id);
    assert!(is_ephemeral(&first), "{first}");
    w.click(BOB, &format!("approve:{id}"), APPROVALS, message_id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let state =
            w.sb.call_ok(&w.admin, "approvals.get", json!({"request_id": id}));
        if state["state"] == "succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never executed: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let exports = std::fs::read_dir(w.sb.dir().join("exports"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exports, 1, "executed exactly once");
    // Both platforms show the outcome, without buttons; carol is told in Discord.
    slack.wait_for("the Slack message final", |c| {
        c.iter().any(|x| {
            x.method == "chat.update"
                && x.body["channel"] == SLACK_APPROVALS
                && x.body.to_string().contains("Export ALL data")
                && !x.body.to_string().contains("approve:")
        })
    });
    w.fake
        .wait_for("the Discord message final and carol's DM", |c| {
            c.iter().any(|x| {
                x.method == "PATCH"
                    && x.path
                        .starts_with(&format!("/channels/{APPROVALS}/messages/"))
                    && x.body.to_string().contains("Export ALL data")
                    && !x.body.to_string().contains("approve:")
            }) && c
                .iter()
                .any(|x| x.path == "/users/@me/channels" && x.body["recipient_id"] == CAROL)
        });
}

/// A signed Slack slash command on the cross-platform world; returns the answer.
fn slack_command(w: &World, user: &str, command: &str, text: &str) -> Value {
    let slack = w.slack.as_ref().unwrap();
    let body = serde_urlencoded::to_string([
        ("team_id", SLACK_TEAM),
        ("channel_id", "C0GENERAL"),
        ("user_id", user),
        ("command", command),
        ("text", text),
        ("response_url", &slack.response_url("cmd")),
        ("trigger_id", &format!("trigger.{}", next_id())),
    ])
    .unwrap();
    let headers = fake_slack::sign(&body, now(), fake_slack::SIGNING_SECRET);
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (status, answer) = crate::support::http(&w.addr, "POST", "/slack/commands", &all, &body);
    assert_eq!(status, 200, "{answer}");
    let answer = crate::support::body_of(&answer);
    serde_json::from_str(answer).unwrap_or(Value::String(answer.to_owned()))
}

#[test]
fn the_gateway_needs_no_public_url_and_answers_through_the_callback() {
    let w = world_with(
        false,
        &[
            ("TENANTOPS_DISCORD_PUBLIC_KEY", ""),
            ("TENANTOPS_DISCORD_GATEWAY", "true"),
        ],
    );
    // Without a public key the HTTP endpoint is off.
    let body = fake::ping("1").to_string();
    assert_eq!(post(&w.addr, &fake::sign(&body, now()), &body).0, 503);
    w.fake.wait_for_gateway();
    w.create_human("alice", "tenant-admin");
    let code = w.own_code("alice");
    let id = next_id();
    w.fake.push_interaction(fake::command(
        &id,
        ALICE,
        "tenant",
        json!([{"type": 1, "name": "link", "options": [{"type": 3, "name": "code", "value": code}]}]),
    ));
    let path = format!("/interactions/{id}/tok-{id}/callback");
    let calls = w
        .fake
        .wait_for("the answer to the gateway interaction", |c| {
            c.iter().any(|x| x.path == path)
        });
    let answer = calls.iter().find(|x| x.path == path).unwrap();
    assert!(text(&answer.body).contains("alice"), "{:?}", answer.body);
    // The same event again (a resumed session replaying it): not acted on, not answered twice.
    w.fake.push_interaction(fake::command(
        &id,
        ALICE,
        "tenant",
        json!([{"type": 1, "name": "link", "options": [{"type": 3, "name": "code", "value": code}]}]),
    ));
    let id2 = next_id();
    w.fake.push_interaction(fake::command(
        &id2,
        ALICE,
        "tenant",
        json!([{"type": 1, "name": "whoami", "options": []}]),
    ));
    let path2 = format!("/interactions/{id2}/tok-{id2}/callback");
    let calls = w.fake.wait_for("whoami over the gateway", |c| {
        c.iter().any(|x| x.path == path2)
    });
    let answer = calls.iter().find(|x| x.path == path2).unwrap();
    assert!(text(&answer.body).contains("alice"), "{:?}", answer.body);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(w.fake.of("POST", &path).len(), 1, "answered once");
}

#[test]
fn the_scheduled_billing_digest_is_posted_to_discord_once_per_period() {
    let w = world_with(false, &[("TENANTOPS_DISCORD_DIGEST_CHECK", "100ms")]);
    let finance = "1270000000000000002";
    w.sb.call_ok(
        &w.admin,
        "tenant.chat_bind",
        json!({"platform": "discord", "workspace_id": GUILD, "approval_channel": APPROVALS,
               "digest_channel": finance, "digest_every": "7d"}),
    );
    let path = format!("/channels/{finance}/messages");
    w.fake.wait_for("the digest with its chart", |c| {
        c.iter().any(|x| x.path == path && !x.files.is_empty())
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        w.fake.of("POST", &path).len(),
        1,
        "once per period, not once per check"
    );
}

#[test]
fn slow_work_is_deferred_within_three_seconds_and_the_answer_edited_in() {
    // A zero answer window makes every piece of work "slow": the deferral path, every time.
    let w = world_with(false, &[("TENANTOPS_DISCORD_ANSWER_WITHIN", "0ms")]);
    w.create_human("alice", "tenant-admin");
    w.link(ALICE, "alice");
    let id = next_id();
    let (status, answer) = w.send(&fake::command(
        &id,
        ALICE,
        "tenant",
        json!([{"type": 1, "name": "whoami", "options": []}]),
    ));
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 5, "deferred: {answer}");
    assert!(
        is_ephemeral(&answer),
        "the answer to come stays private: {answer}"
    );
    let original = format!("/webhooks/{APPLICATION_ID}/tok-{id}/messages/@original");
    let calls = w.fake.wait_for("the deferred answer edited in", |c| {
        c.iter().any(|x| x.method == "PATCH" && x.path == original)
    });
    let edit = calls.iter().find(|x| x.path == original).unwrap();
    assert!(text(&edit.body).contains("alice"), "{:?}", edit.body);

    // A confirm button's slow answer acknowledges the click, then replaces the preview.
    let bot =
        w.sb.service_key(&w.admin, "ci-bot", &["developer"], &["keys:read"]);
    let preview_id = next_id();
    let (_, preview) = w.send(&fake::command(
        &preview_id,
        ALICE,
        "members",
        json!([{"type": 1, "name": "revoke", "options": [
            {"type": 3, "name": "persona", "value": "ci-bot"}]}]),
    ));
    assert_eq!(preview["type"], 5, "{preview}");
    let t = w.answer(&preview_id, &preview);
    let action: String = t[t.find("revoke:ps_").expect("the preview")..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let click = next_id();
    let (_, ack) = w.send(&fake::component(
        &click,
        ALICE,
        &action,
        CHANNEL,
        "1300000000000000050",
    ));
    assert_eq!(ack["type"], 6, "deferred update: {ack}");
    let original = format!("/webhooks/{APPLICATION_ID}/tok-{click}/messages/@original");
    let calls = w.fake.wait_for("the revoke outcome edited in", |c| {
        c.iter().any(|x| x.method == "PATCH" && x.path == original)
    });
    let edit = calls.iter().find(|x| x.path == original).unwrap();
    assert!(
        text(&edit.body).to_lowercase().contains("revoked"),
        "{:?}",
        edit.body
    );
    assert_eq!(w.sb.call(&bot, "whoami", json!({})).code, 3);
}

#[test]
fn a_server_is_bound_only_from_inside_it_by_someone_who_can_manage_it() {
    let w = world();
    // The CLI cannot claim a server: the bot is shared, so a server proves it wants the tenant.
    let other = "1299999999999999998";
    let run = w.sb.call(
        &w.admin,
        "tenant.chat_bind",
        json!({"platform": "discord", "workspace_id": other}),
    );
    run.code(2);
    assert!(run.stdout.contains("chat_install_link"), "{}", run.stdout);
    // Another tenant's code: refused without Manage Server, refused for a server bound here, and
    // accepted once in a server of its own.
    let beta = w.sb.create_tenant("beta").api_key;
    let code = w.sb.call_ok(
        &beta,
        "tenant.chat_install_link",
        json!({"platform": "discord"}),
    )["state"]
        .as_str()
        .unwrap()
        .to_owned();
    let bind = |guild: &str, permissions: &str| {
        let v = fake::command(
            &next_id(),
            OWNER,
            "tenant",
            json!([{"type": 1, "name": "bind", "options": [{"type": 3, "name": "code", "value": code}]}]),
        );
        w.send(&with_permissions(fake::in_guild(v, guild), permissions))
            .1
    };
    assert!(text(&bind(other, "2048")).contains("Manage Server"));
    assert!(text(&bind(GUILD, "32")).contains("another tenant"));
    assert!(
        text(&bind(other, "8")).contains("Connected"),
        "administrators may"
    );
    assert!(
        text(&bind(other, "32")).contains("unknown, used or expired"),
        "one use"
    );
    let listed = w.sb.call_ok(&beta, "tenant.chat_list", json!({}));
    assert!(text(&listed).contains(other), "{listed}");

    // A channel of another server is never posted to, whatever the binding says.
    let foreign = "1280000000000000001";
    w.fake.channel_in(foreign, other);
    w.sb.call_ok(
        &w.admin,
        "tenant.chat_bind",
        json!({"platform": "discord", "workspace_id": GUILD, "approval_channel": foreign}),
    );
    let run =
        w.sb.call(&w.admin, "tenant.export_all", json!({"reason": "test"}));
    assert_eq!(run.json()["status"], "pending_approval", "{}", run.stdout);
    w.fake.wait_for("the channel check", |c| {
        c.iter()
            .any(|x| x.method == "GET" && x.path == format!("/channels/{foreign}"))
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        w.fake
            .of("POST", &format!("/channels/{foreign}/messages"))
            .is_empty(),
        "nothing posted into another server"
    );
}

#[test]
fn a_refused_bot_token_stops_the_gateway_start_with_one_clear_line() {
    let sb = Sandbox::new();
    sb.create_tenant("acme");
    let fake = FakeDiscord::start();
    let mut child = std::process::Command::new(crate::support::BIN)
        .args(["--db", &sb.db(), "serve", "--listen", "127.0.0.1:0"])
        .envs(sb.db_env())
        .env("TENANTOPS_DISCORD_GATEWAY", "true")
        .env("TENANTOPS_DISCORD_APPLICATION_ID", APPLICATION_ID)
        .env("TENANTOPS_DISCORD_BOT_TOKEN", "not-the-token")
        .env("TENANTOPS_DISCORD_API_URL", fake.api_url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running with a refused token");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the Discord gateway")
            && stderr.contains("TENANTOPS_DISCORD_BOT_TOKEN"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "nothing served"
    );
    assert!(!stderr.contains("not-the-token"), "the token is not echoed");
}
