//! The offline Slack sandbox: the real adapter ([`crate::router`] and its approvals worker)
//! served on 127.0.0.1, pointed at an in-process fake Slack Web API, and driven with requests
//! signed the way Slack signs them. It is how `tenantops chat` lets a person try the bot with no
//! Slack workspace.
//!
//! The sandbox workspace is the team [`TEAM`]; a persona plays the Slack user
//! [`user_id`]`(handle)`, linked with a one-time code like anyone else ([`link`]). What the
//! adapter sends to Slack arrives as [`Delivery`]s, and [`text`] reads Block Kit as text.

mod fake;
pub mod text;

use crate::{Slack, SlackConfig};
use axum::body::Body;
use axum::http::{Request, header};
use hmac::{Hmac, Mac};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tenantops_core::chat::Platform;
use tenantops_core::notify::Notification;
use tenantops_core::{Core, Error, Outcome, Principal};
use tokio::sync::mpsc;

/// The sandbox workspace's Slack team id.
pub const TEAM: &str = "TSANDBOX";
/// The channel commands are typed in.
pub const GENERAL: &str = "C0GENERAL";
/// The channel approval requests are posted to.
pub const APPROVALS: &str = "C0APPROVALS";
const APP_ID: &str = "A0SANDBOX";
/// A command that takes longer than this was answered "working on it"; its real answer follows
/// through its `response_url` (the adapter answers within 2.3 s).
const SLOW_REPLY: Duration = Duration::from_millis(2_000);

/// The Slack user id that plays the persona `handle`: `U` and the handle in hex, so it is the
/// same in every session and [`handle_of`] reads it back.
pub fn user_id(handle: &str) -> String {
    let hex: String = handle.bytes().map(|b| format!("{b:02X}")).collect();
    format!("U{hex}")
}

/// The handle a sandbox user id plays, if it is one.
pub fn handle_of(user: &str) -> Option<String> {
    let hex = user.strip_prefix('U')?;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Binds the sandbox workspace to `principal`'s tenant (needs `connectors:write`), approval
/// requests going to `#approvals`. The workspace is marked as the sandbox: its decisions count
/// only on demo tenants.
pub async fn bind(core: &Core, principal: &Principal) -> Result<(), String> {
    core.bind_sandbox(principal, TEAM, APPROVALS)
        .await
        .map_err(|e| e.to_string())
}

/// Makes sure the sandbox user of `handle` is linked to that persona; returns the user id. On a
/// demo tenant the sandbox plays anyone. On any other tenant it plays a person only with their
/// own credential `me`: a one-time code that person asks for (`members.chat_link_code`) links
/// them, used at once and never shown.
pub async fn link(core: &Core, me: Option<&Principal>, handle: &str) -> Result<String, String> {
    let user = user_id(handle);
    match core.authenticate_chat(Platform::Slack, TEAM, &user).await {
        Ok(_) => return Ok(user),
        Err(Error::Unauthenticated(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    match core.link_sandbox_demo(TEAM, &user, handle).await {
        Ok(_) => return Ok(user),
        Err(Error::Denied { .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    let not_yours = || {
        format!(
            "on this tenant the sandbox plays a person only with their own credential: set \
             TENANTOPS_API_KEY to a key of `{handle}` (one they issued themselves)"
        )
    };
    let Some(me) = me else {
        return Err(not_yours());
    };
    let code = match core.call(me, "members.chat_link_code", json!({})).await {
        Ok(Outcome::Done { output }) if output["persona"] == handle => {
            output["code"].as_str().unwrap_or_default().to_owned()
        }
        Ok(Outcome::Done { .. }) => return Err(not_yours()),
        Ok(Outcome::Denied { reason }) => return Err(reason),
        Ok(Outcome::PendingApproval { request_id, .. }) => {
            return Err(format!(
                "issuing a link code waits for approval ({request_id})"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    core.link_chat(Platform::Slack, TEAM, &user, &code)
        .await
        .map(|_| user)
        .map_err(|e| e.to_string())
}

/// What the adapter sent to the fake Slack.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A message appeared, changed or answered someone.
    Message {
        /// Where.
        place: Place,
        /// The message body (`text`, `blocks`, …).
        content: Value,
    },
    /// A modal opened (`views.open`).
    Modal {
        /// The view.
        view: Value,
    },
    /// A file was shared.
    File {
        /// The channel.
        channel: String,
        /// Its title.
        title: String,
        /// Its file name.
        filename: String,
        /// Its size.
        bytes: usize,
    },
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Posted to a channel (or a direct-message channel, `D…`).
    Channel {
        /// The channel.
        channel: String,
        /// Its timestamp (its id).
        ts: String,
        /// The thread it replies in.
        thread_ts: Option<String>,
    },
    /// A posted message edited in place.
    Edited {
        /// The channel.
        channel: String,
        /// The message.
        ts: String,
    },
    /// Shown to one user in a channel.
    Ephemeral {
        /// The channel.
        channel: String,
        /// The user.
        user: String,
    },
    /// An answer through a command's or click's `response_url` (see [`Reply::response_id`]).
    Response {
        /// Which `response_url`.
        id: String,
        /// Whether it replaces the message that carried the button.
        replace_original: bool,
    },
}

/// The immediate answer to a slash command.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The body the adapter answered with (`response_type`, `text`, `blocks`).
    pub content: Value,
    /// The command's `response_url` id, for later answers through it.
    pub response_id: String,
    /// The adapter only acknowledged it ("working on it"): the answer follows through the
    /// `response_url`.
    pub slow: bool,
}

/// Where a button is, to press it.
#[derive(Debug, Clone)]
pub struct ButtonAt {
    /// The button's action id.
    pub action_id: String,
    /// Its value.
    pub value: Option<String>,
    /// The channel of the message carrying it.
    pub channel: String,
    /// That message's `ts`, when it was posted (ephemeral answers have none).
    pub message_ts: Option<String>,
}

/// Why a request to the adapter failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The request did not get an answer.
    #[error("the Slack adapter did not answer: {0}")]
    Http(String),
    /// The adapter refused it.
    #[error("the Slack adapter answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// What it said.
        body: String,
    },
}

/// The running sandbox: the adapter on 127.0.0.1 and the fake Slack it talks to.
pub struct Sandbox {
    addr: SocketAddr,
    fake_base: String,
    signing_secret: String,
    nonce: String,
    seq: AtomicU64,
    channels: Mutex<HashMap<String, String>>,
    client: Client<HttpConnector, Body>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The second the process first asked; message timestamps and click ids start from it so they
/// differ between sessions on one database.
fn session_second() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| chrono::Utc::now().timestamp().max(0) as u64)
}

fn random_token(len: usize) -> String {
    use rand::Rng;
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Sandbox {
    /// Starts the fake Slack and the real adapter (with a signing secret and bot token made for
    /// this session) and its approvals worker, fed by `queue` (the receiver of the
    /// [`crate::approvals::notifier`] registered with the core). Deliveries arrive on the
    /// returned receiver.
    pub async fn start(
        core: Core,
        queue: mpsc::UnboundedReceiver<Notification>,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Delivery>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let bot_token = format!("xoxb-sandbox-{}", random_token(24));
        let signing_secret = random_token(32);
        let (fake_base, fake_task) = fake::start(bot_token.clone(), tx).await?;
        let config = SlackConfig {
            signing_secret: Some(signing_secret.clone()),
            app_token: None,
            bot_token: Some(bot_token),
            api_url: format!("{fake_base}/api/"),
        };
        let slack = Slack::new(core, &config)?;
        let worker =
            crate::approvals::spawn_worker(slack.clone(), queue, std::time::Duration::from_secs(1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = crate::router(slack);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the sandbox's Slack adapter stopped");
            }
        });
        let channels = [(GENERAL, "general"), (APPROVALS, "approvals")]
            .into_iter()
            .map(|(id, name)| (id.to_owned(), name.to_owned()))
            .collect();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let sandbox = Self {
            addr,
            fake_base,
            signing_secret,
            nonce: random_token(8),
            seq: AtomicU64::new(0),
            channels: Mutex::new(channels),
            client,
            tasks: vec![fake_task, worker, server],
        };
        Ok((sandbox, rx))
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A fresh `response_url` id and URL.
    fn response_url(&self, kind: &str) -> (String, String) {
        let id = format!("{kind}{}", self.next());
        let url = format!("{}/response/{id}", self.fake_base);
        (id, url)
    }

    /// The name of a channel id (`general`, `approvals`, or one a command mentioned).
    pub fn channel_name(&self, id: &str) -> Option<String> {
        self.channels.lock().ok()?.get(id).cloned()
    }

    /// The id of channel `#name`, made up the first time it is mentioned.
    fn channel_id(&self, name: &str) -> String {
        let Ok(mut channels) = self.channels.lock() else {
            return GENERAL.to_owned();
        };
        if let Some((id, _)) = channels.iter().find(|(_, n)| *n == name) {
            return id.clone();
        }
        let stem: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .take(16)
            .collect();
        let mut id = format!("C0{stem}");
        let mut n = 1;
        while channels.contains_key(&id) {
            n += 1;
            id = format!("C0{stem}{n}");
        }
        channels.insert(id.clone(), name.to_owned());
        id
    }

    /// What a Slack client sends for typed text: `&`, `<` and `>` escaped, and `#channel`
    /// turned into a channel mention `<#C…|channel>`.
    pub fn escape(&self, text: &str) -> String {
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        escaped
            .split(' ')
            .map(|word| match word.strip_prefix('#') {
                Some(name)
                    if name.starts_with(|c: char| c.is_ascii_alphabetic())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    format!("<#{}|{name}>", self.channel_id(name))
                }
                _ => word.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Sends the slash command `line` (`/keys issue persona=ci-bot …`) typed by `user` in
    /// `#general`, signed; returns the adapter's immediate answer.
    pub async fn command(&self, user: &str, line: &str) -> Result<Reply, SandboxError> {
        let line = line.trim();
        let (command, text) = line.split_once(' ').unwrap_or((line, ""));
        let n = self.next();
        let (response_id, response_url) = self.response_url("cmd");
        let trigger = format!("{}.{}.{n}", session_second(), self.nonce);
        let body = serde_urlencoded::to_string([
            ("token", "sandbox"),
            ("team_id", TEAM),
            ("team_domain", "sandbox"),
            ("channel_id", GENERAL),
            ("channel_name", "general"),
            ("user_id", user),
            (
                "user_name",
                &handle_of(user).unwrap_or_else(|| user.to_owned()),
            ),
            ("command", command),
            ("text", &self.escape(text.trim())),
            ("api_app_id", APP_ID),
            ("response_url", &response_url),
            ("trigger_id", &trigger),
        ])
        .map_err(|e| SandboxError::Http(e.to_string()))?;
        let started = Instant::now();
        let answer = self.post("/slack/commands", body).await?;
        let content = serde_json::from_str(&answer).unwrap_or(Value::Null);
        Ok(Reply {
            content,
            response_id,
            slow: started.elapsed() >= SLOW_REPLY,
        })
    }

    /// Presses a button as `user` (a signed `block_actions` interaction); returns the id of the
    /// click's `response_url`.
    pub async fn press(&self, user: &str, button: &ButtonAt) -> Result<String, SandboxError> {
        let n = self.next();
        let (response_id, response_url) = self.response_url("click");
        let action_ts = format!("{}.{n:06}", chrono::Utc::now().timestamp());
        let message_ts = button
            .message_ts
            .clone()
            .unwrap_or_else(|| format!("{}.{n:06}", session_second()));
        let handle = handle_of(user).unwrap_or_else(|| user.to_owned());
        let payload = json!({
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "sandbox"},
            "user": {"id": user, "team_id": TEAM, "username": handle, "name": handle},
            "api_app_id": APP_ID,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": button.channel,
                          "is_ephemeral": button.message_ts.is_none()},
            "trigger_id": format!("{}.{}.click{n}", session_second(), self.nonce),
            "channel": {"id": button.channel, "name": self.channel_name(&button.channel).unwrap_or_default()},
            "response_url": response_url,
            "actions": [{"type": "button", "action_id": button.action_id, "block_id": "actions",
                         "value": button.value.clone().unwrap_or_else(|| button.action_id.clone()),
                         "action_ts": action_ts}]
        });
        self.interaction(&payload).await?;
        Ok(response_id)
    }

    /// Submits a modal as `user` with `answers` (block id, action id, value); returns the
    /// adapter's answer (`response_action: errors` when it refuses).
    pub async fn submit(
        &self,
        user: &str,
        view: &Value,
        answers: &[(String, String, String)],
    ) -> Result<Value, SandboxError> {
        let mut values = serde_json::Map::new();
        for (block, action, value) in answers {
            values.insert(
                block.clone(),
                json!({ action.clone(): {"type": "plain_text_input", "value": value} }),
            );
        }
        let handle = handle_of(user).unwrap_or_else(|| user.to_owned());
        let payload = json!({
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "sandbox"},
            "user": {"id": user, "team_id": TEAM, "username": handle, "name": handle},
            "view": {"id": format!("V{}", self.next()), "team_id": TEAM, "type": "modal",
                     "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                     "title": view["title"], "blocks": [], "state": {"values": values},
                     "hash": "h", "app_id": APP_ID, "bot_id": "B0SANDBOX"}
        });
        let answer = self.interaction(&payload).await?;
        Ok(serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    async fn interaction(&self, payload: &Value) -> Result<String, SandboxError> {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())])
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        self.post("/slack/interactions", body).await
    }

    /// POSTs a form body to the adapter, signed with the session's secret.
    async fn post(&self, path: &str, body: String) -> Result<String, SandboxError> {
        let ts = chrono::Utc::now().timestamp().to_string();
        let request = Request::post(format!("http://{}{path}", self.addr))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", sign(&self.signing_secret, &ts, &body))
            .body(Body::from(body))
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4 * 1024 * 1024)
            .await
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            return Err(SandboxError::Status {
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(text)
    }
}

/// Slack's v0 signature of `body` at `ts`.
fn sign(secret: &str, ts: &str, body: &str) -> String {
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_round_trip() {
        assert_eq!(user_id("admin"), "U61646D696E");
        assert_eq!(
            handle_of(&user_id("ci-bot.2_x")).as_deref(),
            Some("ci-bot.2_x")
        );
        assert_eq!(handle_of("U0ALICE"), None);
        assert_eq!(handle_of("D61"), None);
    }

    #[test]
    fn signatures_verify() {
        let v = crate::verify::verifier("s3cret");
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-slack-signature",
            sign("s3cret", &ts, "a=b").parse().unwrap(),
        );
        h.insert("x-slack-request-timestamp", ts.parse().unwrap());
        assert_eq!(crate::verify::verify(&v, &h, b"a=b"), Ok(()));
    }
}
