//! The fake Slack Web API the sandbox points the real adapter at: the methods tenantops calls
//! (`chat.postMessage`, `chat.update`, `chat.postEphemeral`, `conversations.open`, `views.open`,
//! the external file upload) and `response_url` targets, on 127.0.0.1. It checks the bot token,
//! answers the way Slack does, and hands every delivery to the sandbox as it happens.

use super::{Delivery, Place};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Fake {
    token: Arc<str>,
    base: Arc<str>,
    out: mpsc::UnboundedSender<Delivery>,
    seq: Arc<AtomicU64>,
    /// File id → (file name, bytes uploaded so far).
    files: Arc<Mutex<HashMap<String, (String, usize)>>>,
}

impl Fake {
    fn deliver(&self, d: Delivery) {
        let _ = self.out.send(d);
    }

    /// A fresh message timestamp: the session's start second and a counter, so messages of
    /// different sessions on one database never share a `ts`.
    fn ts(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{}.{n:06}", super::session_second())
    }
}

/// Serves the fake on a free port of 127.0.0.1; returns its base URL (`http://127.0.0.1:PORT`)
/// and the serving task.
pub(super) async fn start(
    token: String,
    out: mpsc::UnboundedSender<Delivery>,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let fake = Fake {
        token: token.into(),
        base: base.as_str().into(),
        out,
        seq: Arc::default(),
        files: Arc::default(),
    };
    let app = Router::new()
        .route("/api/{method}", post(api).get(api_get))
        .route("/upload/{id}", post(upload))
        .route("/response/{id}", post(respond))
        .with_state(fake);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the sandbox's fake Slack stopped");
        }
    });
    Ok((base, task))
}

/// A JSON body, or form fields (and query parameters) as an object.
fn body_value(headers: &HeaderMap, body: &[u8]) -> Value {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if json {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else {
        form(body)
    }
}

fn form(bytes: &[u8]) -> Value {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).unwrap_or_default();
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

async fn api_get(
    State(fake): State<Fake>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::Json<Value> {
    let args = form(query.unwrap_or_default().as_bytes());
    axum::Json(call(&fake, &method, &headers, args))
}

async fn api(
    State(fake): State<Fake>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let args = body_value(&headers, &body);
    axum::Json(call(&fake, &method, &headers, args))
}

fn call(fake: &Fake, method: &str, headers: &HeaderMap, v: Value) -> Value {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth.strip_prefix("Bearer ") != Some(&*fake.token) {
        return json!({"ok": false, "error": "invalid_auth"});
    }
    let channel = str_of(&v, "channel").to_owned();
    match method {
        "chat.postMessage" => {
            let ts = fake.ts();
            let thread_ts = v
                .get("thread_ts")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let message = json!({"ts": ts, "text": v["text"]});
            fake.deliver(Delivery::Message {
                place: Place::Channel {
                    channel: channel.clone(),
                    ts: ts.clone(),
                    thread_ts,
                },
                content: v,
            });
            json!({"ok": true, "channel": channel, "ts": ts, "message": message})
        }
        "chat.update" => {
            let ts = str_of(&v, "ts").to_owned();
            let text = v["text"].clone();
            fake.deliver(Delivery::Message {
                place: Place::Edited {
                    channel: channel.clone(),
                    ts: ts.clone(),
                },
                content: v,
            });
            json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": {"text": text}})
        }
        "chat.postEphemeral" => {
            let user = str_of(&v, "user").to_owned();
            fake.deliver(Delivery::Message {
                place: Place::Ephemeral { channel, user },
                content: v,
            });
            json!({"ok": true, "message_ts": fake.ts()})
        }
        "conversations.open" => {
            let user = match &v["users"] {
                Value::String(s) => s.split(',').next().unwrap_or_default().to_owned(),
                Value::Array(a) => a
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                _ => String::new(),
            };
            if user.is_empty() {
                return json!({"ok": false, "error": "users_not_found"});
            }
            json!({"ok": true, "channel": {"id": format!("D{user}"), "created": 1_700_000_000,
                "is_im": true}})
        }
        "views.open" => {
            let view = v["view"].clone();
            let id = format!("V{}", fake.seq.fetch_add(1, Ordering::SeqCst) + 1);
            fake.deliver(Delivery::Modal { view: view.clone() });
            json!({"ok": true, "view": {"id": id, "team_id": super::TEAM, "type": "modal",
                "title": view["title"], "blocks": [], "state": {"values": {}}, "hash": "h",
                "private_metadata": view["private_metadata"], "callback_id": view["callback_id"],
                "app_id": super::APP_ID, "bot_id": "B0SANDBOX"}})
        }
        "files.getUploadURLExternal" => {
            let id = format!("F{}", fake.seq.fetch_add(1, Ordering::SeqCst) + 1);
            let filename = str_of(&v, "filename").to_owned();
            if let Ok(mut files) = fake.files.lock() {
                files.insert(id.clone(), (filename, 0));
            }
            json!({"ok": true, "upload_url": format!("{}/upload/{id}", fake.base), "file_id": id})
        }
        "files.completeUploadExternal" => {
            let channel = str_of(&v, "channel_id").to_owned();
            for f in v["files"].as_array().into_iter().flatten() {
                let id = str_of(f, "id");
                let (filename, bytes) = fake
                    .files
                    .lock()
                    .ok()
                    .and_then(|mut files| files.remove(id))
                    .unwrap_or_default();
                fake.deliver(Delivery::File {
                    channel: channel.clone(),
                    title: str_of(f, "title").to_owned(),
                    filename,
                    bytes,
                });
            }
            json!({"ok": true, "files": v["files"]})
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}

async fn upload(State(fake): State<Fake>, Path(id): Path<String>, body: Bytes) -> String {
    if let Ok(mut files) = fake.files.lock()
        && let Some(file) = files.get_mut(&id)
    {
        file.1 += body.len();
    }
    format!("OK - {}", body.len())
}

async fn respond(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let content = body_value(&headers, &body);
    let replace_original = content["replace_original"] == true;
    fake.deliver(Delivery::Message {
        place: Place::Response {
            id,
            replace_original,
        },
        content,
    });
    axum::Json(json!({"ok": true}))
}
