//! A fake Slack for the end-to-end tests: the Web API methods tenantops calls
//! (chat.postMessage, chat.update, chat.postEphemeral, conversations.open, views.open, the
//! external file upload, auth.test, conversations.history, users.info) and `response_url` targets, on
//! 127.0.0.1. It records every call, checks the bot token, keeps the messages posted to each
//! channel (as `conversations.history` returns them: newest first, top-level only, `&`, `<` and
//! `>` escaped, paged by cursor), and answers the way Slack does. Also: signing requests as
//! Slack signs them.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-test-token";
/// The bot token an OAuth install hands out.
pub const INSTALLED_TOKEN: &str = "xoxb-installed-token";
/// The signing secret the tests sign with.
pub const SIGNING_SECRET: &str = "test-signing-secret";

/// Who each bot token posts as in its workspace: (token, team, bot user, bot id).
const BOTS: &[(&str, &str, &str, &str)] = &[
    (BOT_TOKEN, "T0ACME", "U0TESTBOT", "B0TESTBOT"),
    (INSTALLED_TOKEN, "T0NEWCO", "U0BOT", "B0BOT"),
];

/// A message as a channel keeps it.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its `ts`.
    pub ts: String,
    /// The poster: a bot user (`U0BOT`) or a person.
    pub user: String,
    /// The bot id, for a bot's message.
    pub bot_id: Option<String>,
    /// Its text, escaped as Slack stores it.
    pub text: String,
    /// The thread it is a reply in, if any.
    pub thread_ts: Option<String>,
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method (`chat.postMessage`) or `response_url` / `upload`.
    pub method: String,
    /// The request body (JSON, or form fields as an object).
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    ts: Arc<AtomicU64>,
    addr: Arc<Mutex<String>>,
    /// Envelopes to push to connected Socket Mode clients.
    socket: tokio::sync::broadcast::Sender<String>,
    /// Socket Mode connections made so far.
    sockets: Arc<AtomicU64>,
    /// Users `users.info` knows besides the default (a non-admin member of T0ACME): id → (team,
    /// workspace admin).
    users: Arc<Mutex<std::collections::HashMap<String, (String, bool)>>>,
    /// Messages by channel, oldest first.
    channels: Arc<Mutex<std::collections::HashMap<String, Vec<Stored>>>>,
    /// Channels the bot is not a member of (`not_in_channel` on reads).
    outside: Arc<Mutex<Vec<String>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            ts: Arc::default(),
            addr: Arc::default(),
            socket: tokio::sync::broadcast::channel(64).0,
            sockets: Arc::default(),
            users: Arc::default(),
            channels: Arc::default(),
            outside: Arc::default(),
        }
    }
}

async fn socket(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run_socket(s, socket))
}

/// A Socket Mode connection: hello, then every pushed envelope; acknowledgements are recorded.
async fn run_socket(s: Shared, mut socket: WebSocket) {
    let mut outgoing = s.socket.subscribe();
    let hello = json!({"type": "hello", "num_connections": 1,
        "connection_info": {"app_id": "A0APP"}, "debug_info": {"host": "fake-slack"}});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    s.sockets.fetch_add(1, Ordering::SeqCst);
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Ok(text) => {
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(t))) => {
                    let body = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    s.calls.lock().unwrap().push(Call { method: "socket_ack".into(), body });
                }
                Some(Ok(WsMessage::Ping(p))) => {
                    let _ = socket.send(WsMessage::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// A running fake Slack.
pub struct FakeSlack {
    shared: Shared,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _runtime: std::thread::JoinHandle<()>,
}

fn body_value(headers: &HeaderMap, body: &[u8]) -> Value {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.contains("json") {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

async fn api(
    State(s): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if method == "apps.connections.open" {
        // Socket Mode opens with the app-level token, not the bot token.
        let addr = s.addr.lock().unwrap().clone();
        return axum::Json(if auth.starts_with("Bearer xapp-") {
            json!({"ok": true, "url": format!("ws://{addr}/socket")})
        } else {
            json!({"ok": false, "error": "not_allowed_token_type"})
        });
    }
    if method == "oauth.v2.access" {
        // The install's code exchange authenticates with the app's client id and secret.
        let q = headers
            .get("x-query")
            .and_then(|q| q.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        s.calls.lock().unwrap().push(Call {
            method: method.clone(),
            body: json!({ "query": q, "auth": auth }),
        });
        return axum::Json(if q.contains("code=good-code") {
            json!({"ok": true, "access_token": INSTALLED_TOKEN, "token_type": "bot",
                "scope": "commands,chat:write", "bot_user_id": "U0BOT", "app_id": "A0APP",
                "team": {"id": "T0NEWCO", "name": "NewCo"}, "authed_user": {"id": "U0INSTALLER"}})
        } else {
            json!({"ok": false, "error": "invalid_code"})
        });
    }
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    if token != BOT_TOKEN && token != INSTALLED_TOKEN {
        return axum::Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let mut v = body_value(&headers, &body);
    if (method == "files.getUploadURLExternal" || method == "users.info")
        && let Some(q) = headers.get("x-query").and_then(|q| q.to_str().ok())
    {
        v = json!({ "query": q });
    }
    if method == "conversations.history"
        && let Some(q) = headers.get("x-query").and_then(|q| q.to_str().ok())
    {
        v = body_value(&HeaderMap::new(), q.as_bytes());
    }
    if let Value::Object(m) = &mut v {
        m.insert("_token".into(), json!(token));
    }
    s.calls.lock().unwrap().push(Call {
        method: method.clone(),
        body: v.clone(),
    });
    // Reads (users.info) create nothing: they take no timestamp.
    let n = if method == "users.info" {
        0
    } else {
        s.ts.fetch_add(1, Ordering::SeqCst) + 1
    };
    let ts = format!("1700000000.{n:06}");
    let channel = v["channel"].as_str().unwrap_or("C0").to_owned();
    let addr = s.addr.lock().unwrap().clone();
    let (_, team, bot_user, bot_id) = BOTS
        .iter()
        .copied()
        .find(|b| b.0 == token)
        .expect("a known token");
    axum::Json(match method.as_str() {
        "chat.postMessage" => {
            let text = escape(v["text"].as_str().unwrap_or_default());
            let thread_ts = v["thread_ts"].as_str().map(str::to_owned);
            s.channels
                .lock()
                .unwrap()
                .entry(channel.clone())
                .or_default()
                .push(Stored {
                    ts: ts.clone(),
                    user: bot_user.into(),
                    bot_id: Some(bot_id.into()),
                    text: text.clone(),
                    thread_ts,
                });
            json!({"ok": true, "channel": channel, "ts": ts,
                "message": {"type": "message", "user": bot_user, "bot_id": bot_id, "ts": ts,
                    "text": text}})
        }
        "chat.update" => {
            let text = escape(v["text"].as_str().unwrap_or_default());
            let mut channels = s.channels.lock().unwrap();
            match channels
                .get_mut(&channel)
                .and_then(|c| c.iter_mut().find(|m| v["ts"] == m.ts.as_str()))
            {
                Some(m) if m.user == bot_user => {
                    m.text = text.clone();
                    json!({"ok": true, "channel": channel, "ts": v["ts"], "text": text,
                        "message": {"text": text}})
                }
                Some(_) => json!({"ok": false, "error": "cant_update_message"}),
                None => json!({"ok": false, "error": "message_not_found"}),
            }
        }
        "auth.test" => json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
            "user": "tenantops", "team_id": team, "user_id": bot_user, "bot_id": bot_id,
            "is_enterprise_install": false}),
        "conversations.history" => history(&s, &v),
        "chat.postEphemeral" => json!({"ok": true, "message_ts": ts}),
        "conversations.open" => {
            let user = v["users"]
                .as_str()
                .map(|u| u.split(',').next().unwrap_or("U0").to_owned())
                .or_else(|| v["users"][0].as_str().map(str::to_owned))
                .unwrap_or_else(|| "U0".into());
            json!({"ok": true, "channel": {"id": format!("D{user}"), "created": 1700000000,
                "is_im": true}})
        }
        "views.open" => json!({"ok": true, "view": {"id": format!("V{n}"), "team_id": "T1",
            "type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": [],
            "state": {"values": {}}, "hash": "h", "private_metadata": v["view"]["private_metadata"],
            "callback_id": v["view"]["callback_id"], "app_id": "A1", "bot_id": "B1"}}),
        "files.getUploadURLExternal" => json!({"ok": true,
            "upload_url": format!("http://{addr}/upload/F{n}"), "file_id": format!("F{n}")}),
        "files.completeUploadExternal" => {
            json!({"ok": true, "files": [{"id": "F1", "title": "x"}]})
        }
        "users.info" => {
            // GET users.info?user=U…: the user object with its workspace role flags.
            let query = v["query"].as_str().unwrap_or_default().to_owned();
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&query).unwrap_or_default();
            match pairs
                .iter()
                .find(|(k, _)| k == "user")
                .map(|(_, u)| u.clone())
            {
                None => json!({"ok": false, "error": "invalid_arguments"}),
                Some(user) => {
                    let (team, admin) = s
                        .users
                        .lock()
                        .unwrap()
                        .get(&user)
                        .cloned()
                        .unwrap_or_else(|| ("T0ACME".into(), false));
                    json!({"ok": true, "user": {"id": user, "team_id": team, "name": user,
                        "deleted": false, "is_bot": false, "is_app_user": false,
                        "is_admin": admin, "is_owner": false, "is_primary_owner": false,
                        "is_restricted": false, "is_ultra_restricted": false,
                        "tz": "Europe/London", "tz_label": "GMT", "tz_offset": 0,
                        "profile": {"real_name": user, "display_name": user}}})
                }
            }
        }
        _ => json!({"ok": true}),
    })
}

/// `&`, `<` and `>` as Slack stores them in a message's `text`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `conversations.history`: a channel's top-level messages, newest first, `limit` per page
/// (default 100, at most 999), with `has_more` and an opaque `next_cursor`.
fn history(s: &Shared, q: &Value) -> Value {
    let Some(channel) = q["channel"].as_str() else {
        return json!({"ok": false, "error": "channel_not_found"});
    };
    if s.outside.lock().unwrap().iter().any(|c| c == channel) {
        return json!({"ok": false, "error": "not_in_channel"});
    }
    let channels = s.channels.lock().unwrap();
    let Some(all) = channels.get(channel) else {
        return json!({"ok": false, "error": "channel_not_found"});
    };
    let limit: usize = q["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let start: usize = match q["cursor"].as_str().filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match c.strip_prefix("bmV4dF90czo").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return json!({"ok": false, "error": "invalid_cursor"}),
        },
    };
    let top: Vec<&Stored> = all.iter().rev().filter(|m| m.thread_ts.is_none()).collect();
    let page: Vec<Value> = top
        .iter()
        .skip(start)
        .take(limit)
        .map(|m| {
            let replies = all
                .iter()
                .filter(|r| r.thread_ts.as_deref() == Some(m.ts.as_str()))
                .count();
            let mut v = json!({"type": "message", "user": m.user, "text": m.text, "ts": m.ts});
            if let Some(bot) = &m.bot_id {
                v["bot_id"] = json!(bot);
                v["app_id"] = json!("A0APP");
                v["bot_profile"] = json!({"id": bot, "app_id": "A0APP", "name": "tenantops",
                    "deleted": false, "team_id": "T0ACME"});
            }
            if replies > 0 {
                v["thread_ts"] = json!(m.ts);
                v["reply_count"] = json!(replies);
            }
            v
        })
        .collect();
    let more = start + page.len() < top.len();
    json!({"ok": true, "messages": page, "has_more": more, "pin_count": 0,
    "response_metadata": {"next_cursor": if more {
        format!("bmV4dF90czo{}", start + page.len())
    } else {
        String::new()
    }}})
}

async fn get_api(
    State(s): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> axum::Json<Value> {
    let mut headers = headers;
    headers.insert("x-query", q.unwrap_or_default().parse().unwrap());
    api(State(s), Path(method), headers, Bytes::new()).await
}

async fn upload(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> String {
    s.calls.lock().unwrap().push(Call {
        method: "upload".into(),
        body: json!({ "id": id, "bytes": body.len(), "png": body.starts_with(b"\x89PNG") }),
    });
    format!("OK - {}", body.len())
}

async fn respond(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let mut v = body_value(&headers, &body);
    v["_response_id"] = json!(id);
    s.calls.lock().unwrap().push(Call {
        method: "response_url".into(),
        body: v,
    });
    axum::Json(json!({"ok": true}))
}

impl FakeSlack {
    /// Starts the fake on a free port.
    pub fn start() -> Self {
        let shared = Shared::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = shared.clone();
        let runtime = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap().to_string();
                *s.addr.lock().unwrap() = addr.clone();
                tx.send(addr).unwrap();
                let app = Router::new()
                    .route("/api/{method}", post(api).get(get_api))
                    .route("/upload/{id}", post(upload))
                    .route("/response/{id}", post(respond))
                    .route("/socket", axum::routing::get(socket))
                    .with_state(s);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Self {
            shared,
            base: format!("http://{addr}"),
            _runtime: runtime,
        }
    }

    /// The Web API base URL to configure (`TENANTOPS_SLACK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.base)
    }

    /// A `response_url` served by the fake.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base)
    }

    /// Makes `users.info` describe `user` as a member of `team`, a workspace admin or not.
    pub fn user(&self, user: &str, team: &str, admin: bool) {
        self.shared
            .users
            .lock()
            .unwrap()
            .insert(user.into(), (team.into(), admin));
    }

    /// Pushes a Socket Mode envelope to every connected client.
    pub fn push(&self, envelope: Value) {
        let _ = self.shared.socket.send(envelope.to_string());
    }

    /// Waits until a Socket Mode client is connected.
    pub fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.shared.sockets.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no Socket Mode connection");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages of `channel`, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Stored> {
        let channels = self.shared.channels.lock().unwrap();
        channels.get(channel).cloned().unwrap_or_default()
    }

    /// A person posts `text` in `channel` (it arrives escaped, as Slack stores it).
    pub fn post_as_person(&self, channel: &str, user: &str, text: &str) -> String {
        let n = self.shared.ts.fetch_add(1, Ordering::SeqCst) + 1;
        let ts = format!("1700000000.{n:06}");
        let mut channels = self.shared.channels.lock().unwrap();
        channels
            .entry(channel.to_owned())
            .or_default()
            .push(Stored {
                ts: ts.clone(),
                user: user.to_owned(),
                bot_id: None,
                text: escape(text),
                thread_ts: None,
            });
        ts
    }

    /// Rewrites a stored message's text behind tenantops' back (as anyone holding the bot
    /// token could with chat.update).
    pub fn edit_text(&self, channel: &str, ts: &str, edit: impl FnOnce(&str) -> String) {
        let mut channels = self.shared.channels.lock().unwrap();
        let m = channels
            .get_mut(channel)
            .and_then(|c| c.iter_mut().find(|m| m.ts == ts))
            .unwrap_or_else(|| panic!("no message {ts} in {channel}"));
        m.text = edit(&m.text);
    }

    /// Removes the bot from `channel`: reads answer `not_in_channel`.
    pub fn remove_bot_from(&self, channel: &str) {
        self.shared.outside.lock().unwrap().push(channel.to_owned());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Calls of one method.
    pub fn of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Waits until `pred` holds for the calls (up to 20 s); returns the calls.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if Instant::now() > deadline {
                panic!("fake Slack never saw {what}; calls: {calls:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Slack's v0 signature headers for `body` at `ts`.
pub fn sign(body: &str, ts: i64, secret: &str) -> Vec<(String, String)> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    vec![
        (
            "X-Slack-Signature".into(),
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ),
        ("X-Slack-Request-Timestamp".into(), ts.to_string()),
    ]
}
