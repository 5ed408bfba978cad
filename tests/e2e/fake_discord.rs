//! A fake Discord for the end-to-end tests: the REST API v10 calls serenity's `Http` makes for
//! tenantops (interaction callbacks, webhook edits and follow-ups, channel messages posted,
//! edited and listed, the current user, DM channels, command registration, gateway discovery)
//! and a gateway WebSocket that identifies a bot and forwards pushed `INTERACTION_CREATE`
//! dispatches, on 127.0.0.1. It records every REST call, checks the bot token, keeps each
//! channel's messages (listed newest first, `before`/`limit` paged, as Discord lists them) and
//! answers with objects serenity deserializes. Also: signing interactions as Discord signs them,
//! and interaction fixtures.
//!
//! Point serenity at it with `HttpBuilder::new(BOT_TOKEN).proxy(fake.api_url())`: serenity swaps
//! `https://discord.com` for the proxy, so paths arrive as `/api/v10/...`.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The application (client) id of the fake bot.
pub const APPLICATION_ID: &str = "1100000000000000001";
/// The bot user's id (what READY reports and messages are authored by).
pub const BOT_USER_ID: &str = "1100000000000000002";
/// The bot token the fake accepts (REST `Authorization: Bot <token>` and gateway IDENTIFY).
pub const BOT_TOKEN: &str = "fake-discord-bot-token";
/// The guild every fixture comes from (see [`in_guild`]).
pub const GUILD: &str = "1200000000000000001";
/// The channel commands and modal submits come from.
pub const CHANNEL: &str = "1250000000000000001";
/// The hex public key of the Ed25519 key (seed `[7; 32]`) that [`sign`] signs with.
pub const PUBLIC_KEY_HEX: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
/// The first snowflake the fake hands out for messages, DM channels and commands.
pub const FIRST_ID: u64 = 1_300_000_000_000_000_000;
/// The id of every slash command in the fixtures.
pub const COMMAND_ID: &str = "1150000000000000001";
const TIMESTAMP: &str = "2026-01-01T00:00:00.000000+00:00";
const WAIT: Duration = Duration::from_secs(15);

/// One recorded REST call.
#[derive(Clone, Debug)]
pub struct Call {
    /// The HTTP method: `POST`, `PATCH`, `PUT`, `GET`…
    pub method: String,
    /// The path without `/api/v10` and without the query: `/channels/123/messages`.
    pub path: String,
    /// The JSON body, or a multipart request's `payload_json`; `Null` when there was none.
    pub body: Value,
    /// Uploaded files of a multipart request: (file name, size in bytes).
    pub files: Vec<(String, usize)>,
    /// The status the fake answered with (204, 200; 401 bad token, 404 unknown endpoint).
    pub status: u16,
}

#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    next_id: Arc<AtomicU64>,
    /// The DM channel of each recipient.
    dms: Arc<Mutex<HashMap<String, String>>>,
    /// The message id of each interaction token's `@original` response.
    originals: Arc<Mutex<HashMap<String, String>>>,
    addr: Arc<Mutex<String>>,
    /// Dispatches (`t`, `d`) to forward to identified gateway clients.
    dispatch: tokio::sync::broadcast::Sender<(String, Value)>,
    /// The `d` of every accepted IDENTIFY.
    identified: Arc<Mutex<Vec<Value>>>,
    /// Channels that belong to a server other than [`GUILD`].
    foreign: Arc<Mutex<HashMap<String, String>>>,
    /// Messages posted to each channel, oldest first (full Message objects).
    channels: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    /// Channels whose history the bot may not read (403 Missing Access).
    unreadable: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    /// A fresh snowflake.
    fn id(&self) -> String {
        (FIRST_ID + self.next_id.fetch_add(1, Ordering::SeqCst)).to_string()
    }

    /// The snowflake `map` holds for `key`, made on first use.
    fn id_for(&self, map: &Mutex<HashMap<String, String>>, key: &str) -> String {
        let mut map = map.lock().unwrap();
        map.entry(key.to_owned())
            .or_insert_with(|| self.id())
            .clone()
    }
}

/// The bot's user object.
fn bot_user() -> Value {
    json!({"id": BOT_USER_ID, "username": "tenantops", "discriminator": "0", "global_name": null,
        "avatar": null, "bot": true})
}

/// A full Message object echoing `content`, `embeds`, `components` and `flags` of `req`.
fn message(id: &str, channel: &str, req: &Value, files: &[(String, usize)], edited: bool) -> Value {
    let attachments: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let url = format!("https://cdn.discordapp.com/attachments/{channel}/{id}/{name}");
            json!({"id": (FIRST_ID + i as u64).to_string(), "filename": name, "size": size,
                "url": url, "proxy_url": url})
        })
        .collect();
    json!({"id": id, "channel_id": channel, "author": bot_user(),
        "content": req["content"].as_str().unwrap_or_default(), "timestamp": TIMESTAMP,
        "edited_timestamp": if edited { json!(TIMESTAMP) } else { Value::Null },
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": attachments, "embeds": req.get("embeds").cloned().unwrap_or(json!([])),
        "components": req.get("components").cloned().unwrap_or(json!([])), "pinned": false,
        "type": 0, "flags": req["flags"].as_u64().unwrap_or(0), "application_id": APPLICATION_ID})
}

/// The registered commands: the request's array with the fields Discord adds.
fn commands(s: &Shared, req: &Value, guild: Option<&str>) -> Value {
    let list = req.as_array().cloned().unwrap_or_default();
    let out = list.into_iter().map(|mut c| {
        let m = c.as_object_mut().expect("a command object");
        m.insert("id".into(), json!(s.id()));
        m.insert("application_id".into(), json!(APPLICATION_ID));
        m.insert("version".into(), json!(s.id()));
        m.entry("type").or_insert(json!(1));
        m.entry("description").or_insert(json!(""));
        m.entry("default_member_permissions").or_insert(Value::Null);
        m.entry("nsfw").or_insert(json!(false));
        if let Some(g) = guild {
            m.insert("guild_id".into(), json!(g));
        }
        c
    });
    Value::Array(out.collect())
}

/// Splits a `multipart/form-data` body into `payload_json` and the uploaded files.
fn multipart(content_type: &str, body: &[u8]) -> (Value, Vec<(String, usize)>) {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return (Value::Null, vec![]);
    };
    let delim = format!("--{}", boundary.trim_matches('"'));
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let (mut payload, mut files, mut rest) = (Value::Null, vec![], body);
    while let Some(start) = find(rest, delim.as_bytes()) {
        rest = &rest[start + delim.len()..];
        let end = find(rest, delim.as_bytes()).unwrap_or(rest.len());
        let part = &rest[..end];
        if let Some(split) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..split]);
            let data = part[split + 4..]
                .strip_suffix(b"\r\n")
                .unwrap_or(&part[split + 4..]);
            let attr = |k: &str| {
                let tail = head.split(&format!("{k}=\"")).nth(1)?;
                tail.split('"').next().map(str::to_owned)
            };
            match (attr("name"), attr("filename")) {
                (Some(n), _) if n == "payload_json" => {
                    payload = serde_json::from_slice(data).unwrap_or(Value::Null);
                }
                (_, Some(file)) => files.push((file, data.len())),
                _ => {}
            }
        }
    }
    (payload, files)
}

/// Every REST call: auth, record, route.
async fn rest(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(uri.path())
        .to_owned();
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (body, files) = if header("content-type").starts_with("multipart/form-data") {
        multipart(header("content-type"), &body)
    } else {
        (serde_json::from_slice(&body).unwrap_or(Value::Null), vec![])
    };
    let mut call = Call {
        method: method.to_string(),
        path,
        body,
        files,
        status: 200,
    };
    let seg: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let addr = s.addr.lock().unwrap().clone();
    let req = &call.body;
    // Like Discord, `GET /gateway` needs no token (serenity falls back to the real gateway URL
    // if it fails); everything else needs the bot token.
    let open = method == Method::GET && call.path == "/gateway";
    let reply = if !open && header("authorization") != format!("Bot {BOT_TOKEN}") {
        Err((401, json!({"message": "401: Unauthorized", "code": 0})))
    } else {
        match (method.as_str(), seg.as_slice()) {
            ("POST", ["interactions", _, _, "callback"]) => Ok(None),
            ("PATCH", ["webhooks", APPLICATION_ID, token, "messages", "@original"]) => {
                let id = s.id_for(&s.originals, token);
                Ok(Some(message(&id, CHANNEL, req, &call.files, true)))
            }
            ("PATCH", ["webhooks", APPLICATION_ID, _, "messages", id]) => {
                Ok(Some(message(id, CHANNEL, req, &call.files, true)))
            }
            ("POST", ["webhooks", APPLICATION_ID, _]) => {
                Ok(Some(message(&s.id(), CHANNEL, req, &call.files, false)))
            }
            ("POST", ["channels", channel, "messages"]) => {
                let mut m = message(&s.id(), channel, req, &call.files, false);
                if let Some(reference) = req.get("message_reference") {
                    // A reply: type 19 (REPLY), pointing at the message it answers.
                    m["type"] = json!(19);
                    m["message_reference"] = json!({"type": 0, "channel_id": channel,
                        "message_id": reference["message_id"], "guild_id": GUILD});
                }
                let mut channels = s.channels.lock().unwrap();
                channels
                    .entry(channel.to_string())
                    .or_default()
                    .push(m.clone());
                Ok(Some(m))
            }
            ("PATCH", ["channels", channel, "messages", id]) => {
                let mut channels = s.channels.lock().unwrap();
                match channels
                    .get_mut(*channel)
                    .and_then(|c| c.iter_mut().find(|m| m["id"] == *id))
                {
                    Some(stored) => {
                        for field in ["content", "embeds", "components"] {
                            if let Some(v) = req.get(field) {
                                stored[field] = v.clone();
                            }
                        }
                        stored["edited_timestamp"] = json!(TIMESTAMP);
                        Ok(Some(stored.clone()))
                    }
                    None => Err((404, json!({"message": "Unknown Message", "code": 10008}))),
                }
            }
            ("GET", ["channels", channel, "messages"]) => {
                if s.unreadable.lock().unwrap().iter().any(|c| c == channel) {
                    Err((403, json!({"message": "Missing Access", "code": 50001})))
                } else {
                    let query: HashMap<String, String> =
                        serde_urlencoded::from_str(uri.query().unwrap_or_default())
                            .unwrap_or_default();
                    let limit: usize = query
                        .get("limit")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(50)
                        .clamp(1, 100);
                    let before: Option<u64> = query.get("before").and_then(|b| b.parse().ok());
                    let channels = s.channels.lock().unwrap();
                    let page: Vec<Value> = channels
                        .get(*channel)
                        .into_iter()
                        .flatten()
                        .rev()
                        .filter(|m| {
                            let id: u64 = m["id"].as_str().unwrap().parse().unwrap();
                            before.is_none_or(|b| id < b)
                        })
                        .take(limit)
                        .cloned()
                        .collect();
                    Ok(Some(Value::Array(page)))
                }
            }
            ("GET", ["users", "@me"]) => {
                let mut me = bot_user();
                me["verified"] = json!(true);
                me["mfa_enabled"] = json!(false);
                me["flags"] = json!(0);
                me["public_flags"] = json!(0);
                Ok(Some(me))
            }
            ("POST", ["users", "@me", "channels"]) => {
                let user = match &req["recipient_id"] {
                    Value::Number(n) => n.to_string(),
                    v => v.as_str().unwrap_or("0").to_owned(),
                };
                let channel = s.id_for(&s.dms, &user);
                let mut recipient = bot_user();
                recipient["id"] = json!(user);
                recipient["username"] = json!(format!("user{user}"));
                recipient["bot"] = json!(false);
                Ok(Some(
                    json!({"id": channel, "type": 1, "last_message_id": null,
                    "recipients": [recipient]}),
                ))
            }
            ("PUT", ["applications", APPLICATION_ID, "commands"]) => {
                Ok(Some(commands(&s, req, None)))
            }
            ("PUT", ["applications", APPLICATION_ID, "guilds", guild, "commands"]) => {
                Ok(Some(commands(&s, req, Some(guild))))
            }
            ("GET", ["channels", channel]) => {
                let guild = s.foreign.lock().unwrap().get(*channel).cloned();
                Ok(Some(
                    json!({"id": channel, "type": 0, "name": format!("channel-{channel}"),
                    "guild_id": guild.as_deref().unwrap_or(GUILD), "position": 0,
                    "permission_overwrites": [], "nsfw": false, "parent_id": null,
                    "last_message_id": null, "topic": null, "flags": 0}),
                ))
            }
            ("GET", ["gateway"]) => Ok(Some(json!({"url": format!("ws://{addr}/gateway")}))),
            ("GET", ["gateway", "bot"]) => Ok(Some(json!({"url": format!("ws://{addr}/gateway"),
                "shards": 1, "session_start_limit": {"total": 1000, "remaining": 1000,
                "reset_after": 0, "max_concurrency": 1}}))),
            _ => Err((404, json!({"message": "404: Not Found", "code": 0}))),
        }
    };
    let response = match reply {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(v)) => axum::Json(v).into_response(),
        Err((code, v)) => (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response(),
    };
    call.status = response.status().as_u16();
    s.calls.lock().unwrap().push(call);
    response
}

/// `GET /gateway?v=10`: the WebSocket upgrade.
async fn gateway(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run_gateway(s, socket))
}

/// Sends one JSON frame; false once the client is gone.
async fn send(ws: &mut WebSocket, v: Value) -> bool {
    ws.send(WsMessage::Text(v.to_string().into())).await.is_ok()
}

/// One gateway connection: HELLO, IDENTIFY → READY, then heartbeat ACKs and pushed dispatches.
async fn run_gateway(s: Shared, mut ws: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
    if !send(&mut ws, hello).await {
        return;
    }
    let identify = loop {
        let Some(Ok(msg)) = ws.recv().await else {
            return;
        };
        let WsMessage::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        match v["op"].as_u64() {
            Some(2) => break v["d"].clone(),
            Some(1) if !send(&mut ws, json!({"op": 11})).await => return,
            // A RESUME (op 6): no session survives here, so "invalid session, identify afresh".
            Some(6) if !send(&mut ws, json!({"op": 9, "d": false})).await => return,
            _ => {}
        }
    };
    // serenity sends the token with its `Bot ` prefix; Discord accepts both.
    if identify["token"]
        .as_str()
        .map(|t| t.trim_start_matches("Bot "))
        != Some(BOT_TOKEN)
    {
        let close = CloseFrame {
            code: 4004,
            reason: "Authentication failed.".into(),
        };
        let _ = ws.send(WsMessage::Close(Some(close))).await;
        return;
    }
    let addr = s.addr.lock().unwrap().clone();
    let mut outgoing = s.dispatch.subscribe();
    let mut seq = 1; // READY is 1; each dispatch after it counts up.
    let ready = json!({"v": 10, "user": bot_user(), "guilds": [], "session_id": "fake-session",
        "resume_gateway_url": format!("ws://{addr}/gateway"), "shard": [0, 1],
        "application": {"id": APPLICATION_ID, "flags": 0}});
    if !send(&mut ws, json!({"op": 0, "s": 1, "t": "READY", "d": ready})).await {
        return;
    }
    s.identified.lock().unwrap().push(identify);
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Ok((t, d)) => {
                    seq += 1;
                    if !send(&mut ws, json!({"op": 0, "s": seq, "t": t, "d": d})).await {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
            incoming = ws.recv() => match incoming {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["op"] == 1 && !send(&mut ws, json!({"op": 11})).await {
                        return;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A running fake Discord.
pub struct FakeDiscord {
    shared: Shared,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _runtime: std::thread::JoinHandle<()>,
}

impl FakeDiscord {
    /// Starts the fake on a free port, in its own thread and runtime.
    pub fn start() -> Self {
        let shared = Shared {
            calls: Arc::default(),
            next_id: Arc::default(),
            dms: Arc::default(),
            originals: Arc::default(),
            addr: Arc::default(),
            dispatch: tokio::sync::broadcast::channel(64).0,
            identified: Arc::default(),
            foreign: Arc::default(),
            channels: Arc::default(),
            unreadable: Arc::default(),
        };
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
                    .route("/gateway", get(gateway))
                    .fallback(rest)
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

    /// The proxy base URL to hand serenity's `HttpBuilder::proxy` (`http://127.0.0.1:PORT`).
    pub fn api_url(&self) -> String {
        self.base.clone()
    }

    /// Makes `channel` belong to `guild` (every other channel is in [`GUILD`]).
    pub fn channel_in(&self, channel: &str, guild: &str) {
        self.shared
            .foreign
            .lock()
            .unwrap()
            .insert(channel.to_owned(), guild.to_owned());
    }

    /// The messages of `channel`, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Value> {
        let channels = self.shared.channels.lock().unwrap();
        channels.get(channel).cloned().unwrap_or_default()
    }

    /// A person posts `content` in `channel`.
    pub fn post_as_person(&self, channel: &str, user: &str, content: &str) -> String {
        let id = self.shared.id();
        let mut m = message(&id, channel, &json!({"content": content}), &[], false);
        m["author"]["id"] = json!(user);
        m["author"]["username"] = json!(format!("user{user}"));
        m["author"]["bot"] = json!(false);
        let mut channels = self.shared.channels.lock().unwrap();
        channels.entry(channel.to_owned()).or_default().push(m);
        id
    }

    /// Rewrites a stored message's content behind tenantops' back.
    pub fn edit_content(&self, channel: &str, id: &str, edit: impl FnOnce(&str) -> String) {
        let mut channels = self.shared.channels.lock().unwrap();
        let m = channels
            .get_mut(channel)
            .and_then(|c| c.iter_mut().find(|m| m["id"] == id))
            .unwrap_or_else(|| panic!("no message {id} in {channel}"));
        m["content"] = json!(edit(m["content"].as_str().unwrap_or_default()));
    }

    /// Takes Read Message History away from the bot in `channel` (403 Missing Access).
    pub fn deny_history(&self, channel: &str) {
        self.shared
            .unreadable
            .lock()
            .unwrap()
            .push(channel.to_owned());
    }

    /// Sends `{"op":0,"s":N,"t":"INTERACTION_CREATE","d":interaction}` to every identified client.
    pub fn push_interaction(&self, interaction: Value) {
        self.push_dispatch("INTERACTION_CREATE", interaction);
    }

    /// Sends any dispatch (`t`, `d`) to every identified gateway client.
    pub fn push_dispatch(&self, t: &str, d: Value) {
        let _ = self.shared.dispatch.send((t.to_owned(), d));
    }

    /// Waits (up to 15 s) until a gateway client has identified with the bot token and got
    /// READY; returns the `d` of the first IDENTIFY (token, intents, shard, properties…).
    #[track_caller]
    pub fn wait_for_gateway(&self) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(d) = self.shared.identified.lock().unwrap().first() {
                return d.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no client identified on the fake Discord gateway within 15 s; REST calls: {:#?}",
                self.calls()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every REST call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The calls with this method whose path starts with `path_prefix` (`"/channels/"`).
    pub fn of(&self, method: &str, path_prefix: &str) -> Vec<Call> {
        let calls = self.calls().into_iter();
        calls
            .filter(|c| c.method == method && c.path.starts_with(path_prefix))
            .collect()
    }

    /// Waits until `pred` holds for the calls (up to 15 s); returns the calls.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + WAIT;
        loop {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if Instant::now() > deadline {
                panic!("fake Discord never saw {what}; calls: {calls:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Discord's signature headers for `body` at `ts`: `X-Signature-Ed25519` (hex of the Ed25519
/// signature over `ts` followed by `body`) and `X-Signature-Timestamp`.
pub fn sign(body: &str, ts: i64) -> Vec<(String, String)> {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let signature = key.sign(format!("{ts}{body}").as_bytes());
    vec![
        (
            "X-Signature-Ed25519".into(),
            hex::encode(signature.to_bytes()),
        ),
        ("X-Signature-Timestamp".into(), ts.to_string()),
    ]
}

/// The fields every non-ping interaction carries: `user` is a member of [`GUILD`] in `channel`.
fn interaction(kind: u8, id: &str, user: &str, channel: &str, data: Value) -> Value {
    let user_obj = json!({"id": user, "username": format!("user{user}"), "discriminator": "0",
        "global_name": format!("User {user}"), "avatar": null});
    json!({"id": id, "application_id": APPLICATION_ID, "type": kind, "data": data,
        "guild_id": GUILD, "channel_id": channel,
        "channel": {"id": channel, "type": 0, "name": "general", "permissions": "2248473465835073"},
        "member": {"user": user_obj, "roles": [], "joined_at": TIMESTAMP, "deaf": false,
            "mute": false, "flags": 0, "pending": false, "permissions": "2248473465835073",
            "nick": null, "avatar": null},
        "token": format!("tok-{id}"), "version": 1, "app_permissions": "2248473465835073",
        "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD}, "context": 0,
        "attachment_size_limit": 26214400})
}

/// A PING (type 1), as sent to the HTTP interactions endpoint to check it.
pub fn ping(id: &str) -> Value {
    json!({"id": id, "application_id": APPLICATION_ID, "type": 1, "token": format!("tok-{id}"),
        "version": 1})
}

/// A slash command (type 2) `name` by `user` in [`CHANNEL`]; `options` as Discord sends them,
/// e.g. `[{"type":1,"name":"issue","options":[{"type":3,"name":"persona","value":"bot"}]}]`.
pub fn command(id: &str, user: &str, name: &str, options: Value) -> Value {
    let data = json!({"id": COMMAND_ID, "name": name, "type": 1, "options": options});
    interaction(2, id, user, CHANNEL, data)
}

/// An autocomplete request (type 4): like [`command`]; mark the option being typed with
/// `"focused": true`.
pub fn autocomplete(id: &str, user: &str, name: &str, options: Value) -> Value {
    let data = json!({"id": COMMAND_ID, "name": name, "type": 1, "options": options});
    interaction(4, id, user, CHANNEL, data)
}

/// A button press (type 3) on `custom_id` of the bot's message `message_id` in `channel`.
pub fn component(id: &str, user: &str, custom_id: &str, channel: &str, message_id: &str) -> Value {
    let button = json!({"type": 2, "style": 1, "label": "button", "custom_id": custom_id});
    let req = json!({"content": "", "components": [{"type": 1, "components": [button]}]});
    let data = json!({"custom_id": custom_id, "component_type": 2});
    let mut v = interaction(3, id, user, channel, data);
    v["message"] = message(message_id, channel, &req, &[], false);
    v
}

/// A modal submit (type 5) of modal `custom_id` whose one text input `comment_field_id` holds
/// `comment`.
pub fn modal_submit(
    id: &str,
    user: &str,
    custom_id: &str,
    comment_field_id: &str,
    comment: &str,
) -> Value {
    let input = json!({"type": 4, "custom_id": comment_field_id, "value": comment});
    let data = json!({"custom_id": custom_id, "components": [{"type": 1, "components": [input]}]});
    interaction(5, id, user, CHANNEL, data)
}

/// The fixture `v` as if sent from `guild` instead of [`GUILD`].
pub fn in_guild(mut v: Value, guild: &str) -> Value {
    v["guild_id"] = json!(guild);
    v["authorizing_integration_owners"]["0"] = json!(guild);
    v
}
