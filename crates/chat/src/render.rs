//! A platform-neutral message model, which the adapters turn into Slack Block Kit or Discord
//! embeds, and the renderings of outcomes, errors, approval requests and revoke previews.
//!
//! Text is plain with `backticks` for code (both platforms show them); lines are short and put
//! the important number first. Button actions travel as compact ids (`approve:apr_…`,
//! `reject:apr_…`, `revoke:ps_…`, `cancel`) that [`ButtonAction::decode`] parses strictly.

use crate::args::ArgsError;
use crate::groups::{group_of, subcommand};
use serde_json::{Map, Value};
use tenantops_core::ids::{PersonaId, RequestId};
use tenantops_core::{Error, OpSpec, Outcome, redact};

/// How many items a [`Block::List`] shows before "…and N more".
pub const MAX_LIST: usize = 10;
/// How many fields a [`Block::Fields`] holds (Discord allows 25 per embed).
const MAX_FIELDS: usize = 24;
/// Longest field value or list item, in characters.
const MAX_VALUE: usize = 200;
/// Longest code block, in characters (Slack caps a text block at 3,000).
const MAX_CODE: usize = 2_800;

/// A message for a chat platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// One short line.
    pub title: String,
    /// The content, in order.
    pub body: Vec<Block>,
    /// Buttons under it.
    pub buttons: Vec<Button>,
    /// Who sees it.
    pub visibility: Visibility,
    /// A file to upload with it.
    pub attachment: Option<Attachment>,
}

/// Who sees a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everyone in the channel.
    Channel,
    /// Only the person who ran the command (ephemeral).
    OnlyRequester,
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Short lines of text; `backticks` mark code.
    Text(String),
    /// Label and value pairs.
    Fields(Vec<(String, String)>),
    /// Bullet items, already cut to [`MAX_LIST`] with "…and N more".
    List(Vec<String>),
    /// Preformatted text.
    Code(String),
}

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name, e.g. `INV-000001-2026-10.pdf`.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// The content (decoded).
    pub bytes: Vec<u8>,
}

/// A button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// Its text.
    pub label: String,
    /// What pressing it asks for.
    pub action: ButtonAction,
    /// How it looks.
    pub style: ButtonStyle,
}

/// How a button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    /// The expected choice.
    Primary,
    /// A destructive or negative choice.
    Danger,
    /// Neutral.
    Default,
}

/// What a button asks for; the adapter runs it as the person who pressed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonAction {
    /// `approvals.decide` approve.
    Approve {
        /// `apr_…`.
        request_id: String,
    },
    /// Reject (the adapter asks for the comment a rejection needs).
    Reject {
        /// `apr_…`.
        request_id: String,
    },
    /// `members.revoke` after a [`revoke_preview`].
    ConfirmRevoke {
        /// `ps_…`.
        persona: String,
    },
    /// Dismiss.
    Cancel,
}

impl ButtonAction {
    /// The compact id: `approve:apr_…`, `reject:apr_…`, `revoke:ps_…` or `cancel`.
    pub fn encode(&self) -> String {
        match self {
            ButtonAction::Approve { request_id } => format!("approve:{request_id}"),
            ButtonAction::Reject { request_id } => format!("reject:{request_id}"),
            ButtonAction::ConfirmRevoke { persona } => format!("revoke:{persona}"),
            ButtonAction::Cancel => "cancel".to_owned(),
        }
    }

    /// Parses a compact id; anything else (other verbs, malformed ids) is `None`.
    pub fn decode(id: &str) -> Option<Self> {
        let request = |s: &str| RequestId::parse(s).map(|r| r.as_str().to_owned());
        match id.split_once(':') {
            Some(("approve", r)) => {
                request(r).map(|request_id| ButtonAction::Approve { request_id })
            }
            Some(("reject", r)) => request(r).map(|request_id| ButtonAction::Reject { request_id }),
            Some(("revoke", p)) => PersonaId::parse(p).map(|p| ButtonAction::ConfirmRevoke {
                persona: p.as_str().to_owned(),
            }),
            None if id == "cancel" => Some(ButtonAction::Cancel),
            _ => None,
        }
    }
}

impl Message {
    /// A short private note: a title and one paragraph, seen only by the person it answers.
    pub fn note(title: &str, text: impl Into<String>) -> Self {
        Message::new(title, Visibility::OnlyRequester).text(text)
    }

    pub(crate) fn new(title: impl Into<String>, visibility: Visibility) -> Self {
        Message {
            title: title.into(),
            body: Vec::new(),
            buttons: Vec::new(),
            visibility,
            attachment: None,
        }
    }

    fn text(mut self, text: impl Into<String>) -> Self {
        self.body.push(Block::Text(text.into()));
        self
    }

    /// The message as plain text: notification fallbacks, logs and tests.
    pub fn plain_text(&self) -> String {
        let mut out = vec![self.title.clone()];
        for block in &self.body {
            match block {
                Block::Text(t) => out.push(t.clone()),
                Block::Fields(f) => out.extend(f.iter().map(|(k, v)| format!("{k}: {v}"))),
                Block::List(items) => out.extend(items.iter().map(|i| format!("• {i}"))),
                Block::Code(c) => out.push(format!("```\n{c}\n```")),
            }
        }
        if let Some(a) = &self.attachment {
            out.push(format!("[{}]", a.filename));
        }
        if !self.buttons.is_empty() {
            let labels: Vec<_> = self.buttons.iter().map(|b| b.label.as_str()).collect();
            out.push(format!("[{}]", labels.join("] [")));
        }
        out.join("\n")
    }
}

/// A bullet list cut to [`MAX_LIST`] items, the rest counted.
pub(crate) fn list(items: Vec<String>) -> Block {
    let extra = items.len().saturating_sub(MAX_LIST);
    let mut shown: Vec<String> = items
        .into_iter()
        .take(MAX_LIST)
        .map(|i| cut(&i, MAX_VALUE))
        .collect();
    if extra > 0 {
        shown.push(format!("…and {extra} more"));
    }
    Block::List(shown)
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// `2026-12-01T10:00:00Z` → `2026-12-01 10:00 UTC`; anything else unchanged.
fn when(s: &str) -> String {
    let utc = s.ends_with('Z') || s.ends_with("+00:00");
    let shape = s.len() >= 20
        && s.bytes().enumerate().take(16).all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 => b == b':',
            _ => b.is_ascii_digit(),
        });
    match (utc && shape, s.get(..10), s.get(11..16)) {
        (true, Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => s.to_owned(),
    }
}

/// `3 keys`, `1 key`, `1 entry`: the count first.
fn count(n: usize, label: &str) -> String {
    let singular = match label.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => label
            .strip_suffix('s')
            .filter(|_| !label.ends_with("ss"))
            .unwrap_or(label)
            .to_owned(),
    };
    format!("{n} {}", if n == 1 { &singular } else { label })
}

fn short_digest(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Renders what the core answered to a call of `op`.
pub fn outcome(op: &OpSpec, outcome: &Outcome) -> Message {
    match outcome {
        Outcome::Done { output } => done(op, output),
        Outcome::Denied { reason } => {
            Message::new("Denied", Visibility::OnlyRequester).text(redact::text(reason))
        }
        Outcome::PendingApproval {
            request_id,
            summary,
            digest,
            expires_at,
            quorum,
        } => {
            let mut m = Message::new("Waiting for approval", Visibility::Channel)
                .text(redact::text(summary))
                .text(format!(
                    "Approvers were asked; it runs after {} and expires {}.",
                    count(*quorum as usize, "approvals"),
                    when(expires_at)
                ))
                .text(format!(
                    "Digest `{}`; approvers see the same.",
                    short_digest(digest)
                ));
            m.body.push(Block::Fields(vec![
                ("Request".into(), request_id.clone()),
                ("Digest".into(), digest.clone()),
                ("Expires".into(), when(expires_at)),
                ("Quorum".into(), quorum.to_string()),
            ]));
            m.text(format!(
                "Changed your mind? /approvals withdraw {request_id}"
            ))
        }
    }
}

fn done(op: &OpSpec, output: &Value) -> Message {
    if is_request_view(output) {
        return approval_request(output);
    }
    if let Some(request) = output.get("request").filter(|r| is_request_view(r)) {
        return approval_request(request);
    }
    let mut m = Message::new(
        format!("/{} {}", group_of(op.name), subcommand(op.name)),
        Visibility::Channel,
    );
    if let Some(attachment) = attachment(output) {
        m.body
            .push(Block::Text(format!("Attached: {}", attachment.filename)));
        m.attachment = Some(attachment);
        let mut rest = output.as_object().cloned().unwrap_or_default();
        for k in ["filename", "content_type", "base64", "png_base64", "text"] {
            rest.remove(k);
        }
        m.body.extend(summarise(&Value::Object(rest), false));
        return m;
    }
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        return m.text(text);
    }
    if let Some(line) = byok_line(op.name, output) {
        m = m.text(line);
    }
    if op.secret_output {
        m.visibility = Visibility::OnlyRequester;
        m = m.text("⚠ Shown once — store it now. tenantops keeps only a hash.");
    }
    m.body.extend(summarise(output, op.secret_output));
    if op.name == "approvals.pending" {
        m.buttons = decision_buttons(output);
    }
    m
}

/// The one line a phone shows first for BYOK: a green or red dot, the state, the key and the
/// re-wrap's progress (`byok.status`), or the verification's verdict with the first failure
/// and its fix (`byok.verify`).
fn byok_line(op: &str, output: &Value) -> Option<String> {
    let dot = |ok: bool| if ok { "🟢" } else { "🔴" };
    match op {
        "byok.status" => {
            let state = str_of(output, "state");
            let key = match (output["provider"].as_str(), output["key"].as_str()) {
                (Some(p), Some(k)) => format!(" — {p} key {k}"),
                _ => " — the platform key seals this tenant's data".to_owned(),
            };
            let percent = output["rewrap"]["percent"].as_u64().unwrap_or(0);
            let mut line = format!(
                "{} BYOK {state}{key} · re-wrap {percent} % ({} of {} values under the newest key)",
                dot(output["healthy"].as_bool().unwrap_or(false)),
                output["rewrap"]["under_newest_key"].as_u64().unwrap_or(0),
                output["rewrap"]["sealed_values"].as_u64().unwrap_or(0),
            );
            if let Some(next) = output["next_step"].as_str() {
                line.push_str(&format!("\nNext: {}", redact::text(next)));
            }
            Some(line)
        }
        "byok.verify" => {
            let ok = output["ok"].as_bool().unwrap_or(false);
            let first_failure = output["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["ok"] == false);
            Some(match first_failure {
                None => format!(
                    "{} Verified: every check passed (state {})",
                    dot(ok),
                    str_of(output, "state")
                ),
                Some(c) => format!(
                    "{} Verification failed at {}: {}{}",
                    dot(false),
                    str_of(c, "check"),
                    redact::text(str_of(c, "error")),
                    c["fix"]
                        .as_str()
                        .map(|f| format!("\nFix: {f}"))
                        .unwrap_or_default()
                ),
            })
        }
        _ => None,
    }
}

/// Most requests `/approvals pending` offers buttons for (an Approve / Reject pair each).
const PENDING_BUTTONS: usize = 10;

/// Approve / Reject for each request still waiting in `approvals.pending` output, so a person
/// can decide from the list; each press is checked by the core like any other.
fn decision_buttons(output: &Value) -> Vec<Button> {
    output
        .get("decisions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| str_of(r, "state") == "pending")
        .filter_map(|r| RequestId::parse(str_of(r, "id")).map(|_| r))
        .take(PENDING_BUTTONS)
        .flat_map(|r| {
            let id = str_of(r, "id").to_owned();
            let summary: String = str_of(r, "summary").chars().take(40).collect();
            [
                Button {
                    label: format!("Approve: {summary}"),
                    action: ButtonAction::Approve {
                        request_id: id.clone(),
                    },
                    style: ButtonStyle::Primary,
                },
                Button {
                    label: "Reject".into(),
                    action: ButtonAction::Reject { request_id: id },
                    style: ButtonStyle::Danger,
                },
            ]
        })
        .collect()
}

/// A file in an output: `filename`, `content_type`, and `base64`, `png_base64` or `text`.
fn attachment(output: &Value) -> Option<Attachment> {
    let filename = output.get("filename")?.as_str()?.to_owned();
    let content_type = output.get("content_type")?.as_str()?.to_owned();
    let encoded = output.get("base64").or_else(|| output.get("png_base64"));
    let bytes = match encoded.and_then(Value::as_str) {
        Some(b64) => decode_base64(b64)?,
        None => output.get("text")?.as_str()?.as_bytes().to_vec(),
    };
    Some(Attachment {
        filename,
        content_type,
        bytes,
    })
}

fn is_request_view(v: &Value) -> bool {
    str_of(v, "id").starts_with(RequestId::PREFIX)
        && v.get("digest").is_some()
        && v.get("quorum").is_some()
        && v.get("state").is_some()
}

/// Fields that name an item, most telling first.
const IDENT: &[&str] = &["name", "handle", "number", "sku", "seq", "id", "key_id"];
/// Fields worth showing next to an item's name.
const DETAIL: &[&str] = &[
    "operation",
    "op",
    "outcome",
    "kind",
    "state",
    "status",
    "hint",
    "period",
    "total",
    "amount",
    "quantity",
    "rows",
    "reason",
];

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        _ => None,
    }
}

/// One line for an item of a list: its most identifying field and up to two details.
fn label(item: &Value) -> String {
    let Some(map) = item.as_object() else {
        return scalar(item).unwrap_or_else(|| item.to_string());
    };
    let pick = |keys: &[&str]| -> Vec<String> {
        keys.iter()
            .filter_map(|k| map.get(*k).and_then(scalar))
            .collect()
    };
    let mut parts: Vec<String> = pick(IDENT).into_iter().take(1).collect();
    parts.extend(pick(DETAIL).into_iter().take(2));
    if parts.is_empty() {
        parts = map
            .iter()
            .filter_map(|(k, v)| scalar(v).map(|s| format!("{k}: {s}")))
            .take(3)
            .collect();
    }
    parts.join(" · ")
}

fn humanise(key: &str) -> String {
    key.replace(['_', '.'], " ")
}

/// Orders an object's keys: names first, then states, amounts and nested objects, then the
/// rest; drops `x_id` when `x` is present.
fn ordered(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, v)| {
            !v.is_null()
                && k.strip_suffix("_id")
                    .is_none_or(|base| map.get(base).is_none_or(Value::is_null))
        })
        .collect();
    let rank = |k: &str, v: &Value| {
        if IDENT.contains(&k) {
            0
        } else if DETAIL.contains(&k) || v.is_object() {
            1
        } else {
            2
        }
    };
    entries.sort_by_key(|(k, v)| rank(k, v));
    entries
}

/// Fields, counts and lists for a JSON output; nested objects flattened one level.
fn summarise(output: &Value, secret: bool) -> Vec<Block> {
    let Some(map) = output.as_object() else {
        return vec![Block::Code(cut(
            &serde_json::to_string_pretty(output).unwrap_or_default(),
            MAX_CODE,
        ))];
    };
    let mut top = Vec::new();
    let mut fields = Vec::new();
    let mut after = Vec::new();
    let mut add = |prefix: &str, key: &str, value: &Value, depth: u8| {
        let name = humanise(&format!("{prefix}{key}"));
        match value {
            Value::String(s) if secret && s.starts_with("tops_") => {
                top.push(Block::Code(s.clone()));
            }
            Value::String(s) if s.contains('\n') => {
                after.push(Block::Text(format!("{name}:")));
                after.push(Block::Code(cut(s, MAX_CODE)));
            }
            Value::String(s) => fields.push((name, cut(&when(s), MAX_VALUE))),
            Value::Array(items) if items.iter().all(|i| scalar(i).is_some()) => {
                let joined: Vec<String> = items.iter().filter_map(scalar).collect();
                let joined = joined.join(", ");
                if joined.is_empty() {
                    fields.push((name, "none".into()));
                } else if joined.chars().count() <= 120 {
                    fields.push((name, joined));
                } else {
                    after.push(Block::Text(count(items.len(), &name)));
                    after.push(list(items.iter().filter_map(scalar).collect()));
                }
            }
            Value::Array(items) if depth == 0 => {
                after.push(Block::Text(count(items.len(), &name)));
                if !items.is_empty() {
                    after.push(list(items.iter().map(label).collect()));
                }
            }
            other => match scalar(other) {
                Some(s) => fields.push((name, cut(&s, MAX_VALUE))),
                None => fields.push((name, cut(&other.to_string(), MAX_VALUE))),
            },
        }
    };
    for (key, value) in ordered(map) {
        match value.as_object() {
            Some(inner) => {
                for (k2, v2) in ordered(inner) {
                    add(&format!("{key} "), k2, v2, 1);
                }
            }
            None => add("", key, value, 0),
        }
    }
    let mut blocks = top;
    if fields.len() > MAX_FIELDS {
        let extra = fields.len() - MAX_FIELDS;
        fields.truncate(MAX_FIELDS);
        fields.push(("…".into(), format!("and {extra} more")));
    }
    if !fields.is_empty() {
        blocks.push(Block::Fields(fields));
    }
    blocks.extend(after);
    blocks
}

/// Renders a core error for the person who ran the command; internal failures say nothing
/// about the internals.
pub fn error(e: &Error) -> Message {
    let m = |title: &str, text: String| {
        Message::new(title, Visibility::OnlyRequester).text(redact::text(&text))
    };
    match e {
        Error::BadInput { field, message } => m("Invalid input", format!("`{field}`: {message}")),
        Error::Denied { reason } => m("Denied", reason.clone()),
        Error::Unauthenticated(reason) => m(
            "Not signed in",
            format!("{reason}. Link your chat account with /tenant link CODE."),
        ),
        Error::NotFound(msg) => m("Not found", msg.clone()),
        Error::Conflict(msg) => m("Can't do that now", msg.clone()),
        Error::UnknownOperation(_) => m(
            "Unknown command",
            "That command does not exist; /tenant help lists them.".into(),
        ),
        _ => m(
            "Something went wrong",
            "The server could not complete this; nothing was changed. Try again, or ask an admin \
             to check the server log."
                .into(),
        ),
    }
}

/// Renders a command that could not be parsed.
pub fn args_error(e: &ArgsError) -> Message {
    Message::new("Can't run that", Visibility::OnlyRequester).text(e.to_string())
}

/// The status line of an approval request (`approvals.get` output): "Waiting: 0 of 1
/// approvals · expires …", "Approved by X · executed", "Rejected by X: comment", "Expired",
/// "Cancelled: reason", "Failed: error".
pub fn approval_status(view: &Value) -> String {
    let decisions = view.get("decisions").and_then(Value::as_array);
    let by = |decision: &str| -> Vec<&Value> {
        decisions
            .into_iter()
            .flatten()
            .filter(|d| str_of(d, "decision") == decision)
            .collect()
    };
    let approvers = by("approve")
        .iter()
        .map(|d| str_of(d, "persona"))
        .collect::<Vec<_>>()
        .join(", ");
    let approved = match (approvers.is_empty(), str_of(view, "break_glass_by")) {
        (true, by) if !by.is_empty() => format!("Break glass by {by}"),
        _ => format!("Approved by {approvers}"),
    };
    let error = str_of(view, "error");
    let with = |head: &str| match error {
        "" => head.to_owned(),
        e => format!("{head}: {e}"),
    };
    match str_of(view, "state") {
        "pending" => {
            let need = view.get("quorum").and_then(Value::as_u64).unwrap_or(1);
            let have = view.get("approvals").and_then(Value::as_u64).unwrap_or(0);
            format!(
                "Waiting: {have} of {need} approvals · expires {}",
                when(str_of(view, "expires_at"))
            )
        }
        "approved" | "executing" => format!("{approved} · running"),
        "succeeded" => format!("{approved} · executed"),
        "rejected" => match by("reject").first() {
            Some(d) => {
                let who = str_of(d, "persona");
                match str_of(d, "comment") {
                    "" => format!("Rejected by {who}"),
                    c => format!("Rejected by {who}: {c}"),
                }
            }
            None => "Rejected".to_owned(),
        },
        "expired" => "Expired".to_owned(),
        "cancelled" => with("Cancelled"),
        "failed" => with("Failed"),
        other => format!("State: {other}"),
    }
}

/// Renders an approval request (`approvals.get` output) for approvers: what will run, who
/// asked, the exact input, digest and expiry, with Approve and Reject while it is pending and a
/// status line once decided.
pub fn approval_request(view: &Value) -> Message {
    let id = str_of(view, "id");
    let digest = str_of(view, "digest");
    let mut m = Message::new(
        format!("Approval request: {}", str_of(view, "operation")),
        Visibility::Channel,
    )
    .text(redact::text(&format!(
        "{} asks: {}",
        str_of(view, "requester"),
        str_of(view, "summary")
    )));
    if let Some(reason) = view.get("break_glass_reason").and_then(Value::as_str) {
        m = m.text(redact::text(&format!(
            "Break glass by {}: {reason}",
            str_of(view, "break_glass_by")
        )));
    }
    m = m.text(redact::text(&format!(
        "{} · digest `{}`",
        approval_status(view),
        short_digest(digest)
    )));
    let mut input = view.get("input").cloned().unwrap_or(Value::Null);
    redact::json(&mut input);
    m.body.push(Block::Code(cut(
        &serde_json::to_string_pretty(&input).unwrap_or_default(),
        MAX_CODE,
    )));
    let approvals = format!(
        "{} of {}",
        view.get("approvals").and_then(Value::as_u64).unwrap_or(0),
        view.get("quorum").and_then(Value::as_u64).unwrap_or(1)
    );
    let mut fields = vec![
        ("Approvals".to_owned(), approvals),
        ("Expires".to_owned(), when(str_of(view, "expires_at"))),
        ("Request".to_owned(), id.to_owned()),
        ("Digest".to_owned(), digest.to_owned()),
    ];
    if let Some(route) = view.get("route").and_then(Value::as_str) {
        fields.push(("Route".into(), route.to_owned()));
    }
    if let Some(facts) = view.get("facts").and_then(Value::as_object) {
        fields.extend(
            facts
                .iter()
                .filter_map(|(k, v)| Some((humanise(k), scalar(v)?))),
        );
    }
    m.body.push(Block::Fields(fields));
    if str_of(view, "review_state") == "required" {
        m = m.text(format!(
            "Needs a second person's review: /approvals review {id} comment=\"…\""
        ));
    }
    if str_of(view, "state") == "pending" && RequestId::parse(id).is_some() {
        m.buttons = vec![
            Button {
                label: "Approve".into(),
                action: ButtonAction::Approve {
                    request_id: id.to_owned(),
                },
                style: ButtonStyle::Primary,
            },
            Button {
                label: "Reject".into(),
                action: ButtonAction::Reject {
                    request_id: id.to_owned(),
                },
                style: ButtonStyle::Danger,
            },
        ];
    }
    m
}

/// What revoking a persona cuts off, for confirmation: the persona, its working keys, its open
/// sessions. `persona` is `members.get_persona` output (or the persona itself); `keys` is
/// `keys.list` output (or an array of keys; `null` uses the persona's `active_keys`).
pub fn revoke_preview(persona: &Value, keys: &Value) -> Message {
    let p = persona
        .get("persona")
        .filter(|p| p.is_object())
        .unwrap_or(persona);
    let handle = str_of(p, "handle");
    let id = str_of(p, "id");
    let keys = keys
        .get("keys")
        .or(Some(keys))
        .and_then(Value::as_array)
        .or_else(|| persona.get("active_keys").and_then(Value::as_array));
    // Only this persona's working keys, whatever list was passed.
    let active: Vec<&Value> = keys
        .into_iter()
        .flatten()
        .filter(|k| matches!(str_of(k, "state"), "active" | ""))
        .filter(|k| ["", id].contains(&str_of(k, "persona_id")))
        .collect();
    let mut m = Message::new(format!("Revoke {handle}?"), Visibility::OnlyRequester);
    if str_of(p, "status") == "revoked" {
        return m.text(format!("{handle} is already revoked."));
    }
    let n = active.len();
    m = m
        .text(format!(
            "{handle} ({}) loses access at once.",
            str_of(p, "kind")
        ))
        .text(format!(
            "{} {}",
            count(n, "active keys"),
            if n == 1 {
                "stops working:"
            } else {
                "stop working:"
            }
        ));
    if !active.is_empty() {
        m.body.push(list(
            active
                .iter()
                .map(|k| format!("{} · {}", str_of(k, "name"), str_of(k, "hint")))
                .collect(),
        ));
    }
    m = m.text(
        "Its open sessions fail on their next request, and its pending approval requests are \
         cancelled.",
    );
    let roles = p
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut fields = vec![("Roles".to_owned(), roles)];
    if let Some(bu) = p.get("bu").and_then(Value::as_str) {
        fields.push(("Business unit".into(), bu.to_owned()));
    }
    m.body.push(Block::Fields(fields));
    if PersonaId::parse(id).is_some() {
        m.buttons = vec![
            Button {
                label: "Revoke now".into(),
                action: ButtonAction::ConfirmRevoke {
                    persona: id.to_owned(),
                },
                style: ButtonStyle::Danger,
            },
            Button {
                label: "Cancel".into(),
                action: ButtonAction::Cancel,
                style: ButtonStyle::Default,
            },
        ];
    }
    m
}

/// Standard base64 with optional padding; `None` on any other character.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(compact.trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tenantops_core::catalogue::find;

    const APR: &str = "apr_0123456789abcdef0123456789abcdef";
    const PS: &str = "ps_0123456789abcdef0123456789abcdef";

    fn done_of(op: &str, output: Value) -> Message {
        outcome(find(op).unwrap(), &Outcome::Done { output })
    }

    fn first_text(m: &Message) -> String {
        m.body
            .iter()
            .find_map(|b| match b {
                Block::Text(t) => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn byok_answers_lead_with_a_green_or_red_dot() {
        let healthy = done_of(
            "byok.status",
            json!({"state":"rotating","healthy":true,"provider":"aws",
                   "key":"arn:aws:kms:eu-west-1:111122223333:key/k1",
                   "rewrap":{"percent":40,"under_newest_key":4,"sealed_values":10}}),
        );
        let line = first_text(&healthy);
        assert!(
            line.starts_with("🟢 BYOK rotating — aws key arn:"),
            "{line}"
        );
        assert!(line.contains("re-wrap 40 % (4 of 10"), "{line}");
        let dark = done_of(
            "byok.status",
            json!({"state":"revoked","healthy":false,"provider":"gcp","key":"projects/p",
                   "rewrap":{"percent":100,"under_newest_key":3,"sealed_values":3},
                   "next_step":"restore the grant, then run byok.verify"}),
        );
        let line = first_text(&dark);
        assert!(line.starts_with("🔴 BYOK revoked"), "{line}");
        assert!(line.contains("Next: restore the grant"), "{line}");
        let red = done_of(
            "byok.verify",
            json!({"ok":false,"state":"pending_verify","checks":[
                {"check":"describe","ok":true},
                {"check":"generate_data_key","ok":false,
                 "error":"permission denied: kms:GenerateDataKey","fix":"edit the key policy"}]}),
        );
        let line = first_text(&red);
        assert!(
            line.starts_with("🔴 Verification failed at generate_data_key: permission denied"),
            "{line}"
        );
        assert!(line.contains("Fix: edit the key policy"), "{line}");
    }

    #[test]
    fn button_actions_round_trip_and_reject_anything_else() {
        for a in [
            ButtonAction::Approve {
                request_id: APR.into(),
            },
            ButtonAction::Reject {
                request_id: APR.into(),
            },
            ButtonAction::ConfirmRevoke { persona: PS.into() },
            ButtonAction::Cancel,
        ] {
            assert_eq!(ButtonAction::decode(&a.encode()), Some(a));
        }
        assert_eq!(ButtonAction::Cancel.encode(), "cancel");
        for bad in [
            "",
            "approve:",
            "approve:apr_123",
            &format!("approve:{PS}"),
            &format!("revoke:{APR}"),
            &format!("delete:{APR}"),
            &format!("approve:{APR}:x"),
            "cancel:now",
            "Cancel",
        ] {
            assert_eq!(ButtonAction::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert_eq!(decode_base64("TQ").unwrap(), b"M");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("aGVs\nbG8/+w==").unwrap(), b"hello?\xfb");
        assert!(decode_base64("TQ=x").is_none());
        assert!(decode_base64("T*Q").is_none());
    }

    #[test]
    fn counts_and_times_read_well() {
        assert_eq!(count(1, "entries"), "1 entry");
        assert_eq!(count(1, "active keys"), "1 active key");
        assert_eq!(count(2, "keys"), "2 keys");
        assert_eq!(count(1, "address"), "1 address");
        assert_eq!(when("2026-12-01T10:00:00.123Z"), "2026-12-01 10:00 UTC");
        assert_eq!(
            when("2026-12-01T10:00:00+02:00"),
            "2026-12-01T10:00:00+02:00"
        );
        assert_eq!(when("api.requests"), "api.requests");
        assert_eq!(when("ab"), "ab");
    }

    #[test]
    fn lists_are_cut_with_a_count() {
        let Block::List(items) = list((0..13).map(|i| i.to_string()).collect()) else {
            panic!()
        };
        assert_eq!(items.len(), MAX_LIST + 1);
        assert_eq!(items.last().unwrap(), "…and 3 more");
    }

    #[test]
    fn generic_output_has_fields_counts_and_labelled_items() {
        let m = done_of(
            "keys.list",
            json!({"keys": [
                {"id":"key_1","name":"ci-deploy","hint":"tops_…abcd","state":"active","persona":"ci-bot","persona_id":"ps_1","scopes":["keys:read"],"created_at":"2026-11-01T10:00:00Z"},
                {"id":"key_2","name":"old","hint":"tops_…wxyz","state":"active","persona":"ci-bot","persona_id":"ps_1","scopes":[],"created_at":"2026-11-01T10:00:00Z"}
            ]}),
        );
        assert_eq!(m.title, "/keys list");
        assert_eq!(m.visibility, Visibility::Channel);
        assert_eq!(m.body[0], Block::Text("2 keys".into()));
        assert_eq!(
            m.body[1],
            Block::List(vec![
                "ci-deploy · active · tops_…abcd".into(),
                "old · active · tops_…wxyz".into()
            ])
        );
        let m = done_of(
            "members.revoke",
            json!({"persona": {"id": PS, "handle": "ci-bot", "kind": "service", "status": "revoked",
                    "roles": ["developer"], "created_at": "2026-11-01T10:00:00Z", "bu": null},
                   "revoked_keys": ["key_1"], "cancelled_requests": [], "keys_issued_to_others": []}),
        );
        let Block::Fields(fields) = &m.body[0] else {
            panic!("{m:?}")
        };
        assert_eq!(fields[0], ("persona handle".into(), "ci-bot".into()));
        assert!(fields.contains(&("persona created at".into(), "2026-11-01 10:00 UTC".into())));
        assert!(fields.contains(&("revoked keys".into(), "key_1".into())));
        assert!(fields.contains(&("cancelled requests".into(), "none".into())));
        assert!(
            !fields.iter().any(|(k, _)| k == "persona bu"),
            "nulls are skipped"
        );
    }

    #[test]
    fn secrets_are_for_the_requester_only_and_shown_once() {
        let m = done_of(
            "keys.issue",
            json!({"key_id":"key_1","name":"ci-deploy","api_key":"tops_secretsecret","scopes":["keys:read"],"expires_at":null}),
        );
        assert_eq!(m.visibility, Visibility::OnlyRequester);
        assert!(m.plain_text().contains("Shown once — store it now"));
        assert!(m.body.contains(&Block::Code("tops_secretsecret".into())));
    }

    #[test]
    fn summaries_use_their_text_and_documents_become_attachments() {
        let m = done_of(
            "billing.summary",
            json!({"period":"2026-11","text":"USD 1,234 so far\n+12% vs Oct","top_skus":[]}),
        );
        assert_eq!(
            m.body,
            vec![Block::Text("USD 1,234 so far\n+12% vs Oct".into())]
        );
        let m = done_of(
            "billing.chart",
            json!({"period":"2026-11","filename":"spend-2026-11.png","content_type":"image/png","width":800,"height":400,"png_base64":"iVBORw=="}),
        );
        let a = m.attachment.as_ref().unwrap();
        assert_eq!(a.bytes, [0x89, b'P', b'N', b'G']);
        assert_eq!(a.content_type, "image/png");
        assert!(!m.plain_text().contains("iVBOR"));
        let m = done_of(
            "billing.invoice_csv",
            json!({"number":"INV-000001","filename":"INV-000001-2026-10.csv","content_type":"text/csv","bytes":4,"text":"a,b\n"}),
        );
        assert_eq!(m.attachment.unwrap().bytes, b"a,b\n");
        let m = done_of(
            "billing.invoice_pdf",
            json!({"number":"INV-000001","filename":"INV-000001-2026-10.pdf","content_type":"application/pdf","bytes":3,"base64":"JVBE"}),
        );
        assert_eq!(m.attachment.unwrap().bytes, b"%PD");
    }

    #[test]
    fn denied_and_pending_outcomes() {
        let op = find("tenant.export_all").unwrap();
        let m = outcome(
            op,
            &Outcome::Denied {
                reason: "missing scope tenant:export".into(),
            },
        );
        assert_eq!(m.title, "Denied");
        assert_eq!(m.visibility, Visibility::OnlyRequester);
        assert!(m.plain_text().contains("tenant:export"));
        let digest = "ab".repeat(32);
        let m = outcome(
            op,
            &Outcome::PendingApproval {
                request_id: APR.into(),
                summary: "Export all tenant data (annual DSAR)".into(),
                digest: digest.clone(),
                expires_at: "2026-12-08T10:00:00Z".into(),
                quorum: 2,
            },
        );
        let text = m.plain_text();
        assert!(text.contains("Digest `abababababab`;"), "{text}");
        assert!(text.contains(&format!("Digest: {digest}")));
        assert!(text.contains("Approvers were asked; it runs after 2 approvals"));
        assert!(text.contains("expires 2026-12-08 10:00 UTC"));
        assert!(text.contains(&format!("Request: {APR}")));
        assert!(crate::groups::resolve("approvals", "withdraw").is_some());
    }

    #[test]
    fn errors_name_the_field_and_hide_internals() {
        let m = error(&Error::bad_input("period", "use YYYY-MM"));
        assert_eq!(m.plain_text(), "Invalid input\n`period`: use YYYY-MM");
        let m = error(&Error::Internal("disk /var/lib/secret.db failed".into()));
        assert!(!m.plain_text().contains("secret"));
        assert!(!m.plain_text().contains("/var"));
        let m = error(&Error::denied(
            "key tops_0123456789abcdefghijABCDEFGHIJ01abcdef lacks keys:write",
        ));
        assert!(!m.plain_text().contains("tops_0123"), "{}", m.plain_text());
        assert_eq!(m.visibility, Visibility::OnlyRequester);
    }

    fn view(state: &str, decisions: Value) -> Value {
        json!({
            "id": APR, "operation": "tenant.export_all", "summary": "Export all tenant data",
            "input": {"reason": "annual DSAR"}, "facts": {"estimated_bytes": 1024},
            "digest": "0123456789abcdef".repeat(4), "requester_id": PS, "requester": "jane",
            "state": state, "quorum": 1, "approvals": 0, "decisions": decisions,
            "route": null, "created_at": "2026-12-01T10:00:00Z", "sla_at": "2026-12-02T10:00:00Z",
            "expires_at": "2026-12-08T10:00:00Z", "error": null
        })
    }

    #[test]
    fn the_pending_list_offers_a_decision_per_waiting_request() {
        let op = tenantops_core::catalogue::find("approvals.pending").unwrap();
        let output = json!({"decisions": [view("pending", json!([])), view("approved", json!([]))],
                            "reviews": []});
        let m = outcome(op, &Outcome::Done { output });
        let actions: Vec<_> = m.buttons.iter().map(|b| b.action.encode()).collect();
        assert_eq!(actions, [format!("approve:{APR}"), format!("reject:{APR}")]);
        assert!(m.buttons[0].label.contains("Export all tenant data"));
    }

    #[test]
    fn approval_requests_have_buttons_only_while_pending() {
        let m = approval_request(&view("pending", json!([])));
        assert_eq!(m.title, "Approval request: tenant.export_all");
        let text = m.plain_text();
        assert!(text.contains("jane asks: Export all tenant data"));
        assert!(
            text.contains(
                "Waiting: 0 of 1 approvals · expires 2026-12-08 10:00 UTC · digest `0123456789ab`"
            ),
            "{text}"
        );
        assert!(
            m.body
                .contains(&Block::Code("{\n  \"reason\": \"annual DSAR\"\n}".into()))
        );
        assert!(text.contains("estimated bytes: 1024"));
        let actions: Vec<_> = m
            .buttons
            .iter()
            .map(|b| (b.action.encode(), b.style))
            .collect();
        assert_eq!(
            actions,
            [
                (format!("approve:{APR}"), ButtonStyle::Primary),
                (format!("reject:{APR}"), ButtonStyle::Danger)
            ]
        );

        let approve = json!([{"persona_id": "ps_x", "persona": "sam", "decision": "approve", "comment": null, "surface": "slack", "decided_at": "2026-12-01T11:00:00Z"}]);
        let reject = json!([{"persona_id": "ps_x", "persona": "sam", "decision": "reject", "comment": "not during the freeze", "surface": "slack", "decided_at": "2026-12-01T11:00:00Z"}]);
        let mut cancelled = view("cancelled", json!([]));
        cancelled["error"] = json!("requester revoked");
        let mut failed = view("failed", approve.clone());
        failed["error"] = json!("persona not found");
        for (v, line) in [
            (
                view("succeeded", approve.clone()),
                "Approved by sam · executed",
            ),
            (view("executing", approve), "Approved by sam · running"),
            (
                view("rejected", reject),
                "Rejected by sam: not during the freeze",
            ),
            (view("expired", json!([])), "Expired"),
            (cancelled, "Cancelled: requester revoked"),
            (failed, "Failed: persona not found"),
        ] {
            let m = approval_request(&v);
            assert!(m.buttons.is_empty(), "{line}");
            assert!(m.plain_text().contains(line), "{}", m.plain_text());
        }
        // approvals.get renders as the request card.
        let m = done_of("approvals.get", view("pending", json!([])));
        assert_eq!(m.buttons.len(), 2);
        let m = done_of(
            "approvals.decide",
            json!({"request": view("expired", json!([]))}),
        );
        assert!(m.plain_text().contains("Expired"));
    }

    #[test]
    fn revoke_preview_lists_what_is_cut_off() {
        let persona = json!({
            "persona": {"id": PS, "handle": "ci-bot", "kind": "service", "status": "active",
                        "roles": ["developer"], "created_at": "2026-11-01T10:00:00Z"},
            "scopes": ["keys:read"], "active_keys": []
        });
        let keys = json!({"keys": [
            {"id":"key_1","name":"ci-deploy","hint":"tops_…abcd","state":"active","persona_id":PS},
            {"id":"key_2","name":"old","hint":"tops_…wxyz","state":"revoked","persona_id":PS},
            {"id":"key_3","name":"someone-else","hint":"tops_…efgh","state":"active","persona_id":"ps_other"}
        ]});
        let m = revoke_preview(&persona, &keys);
        assert_eq!(m.title, "Revoke ci-bot?");
        assert_eq!(m.visibility, Visibility::OnlyRequester);
        let text = m.plain_text();
        assert!(text.contains("1 active key stops working:"), "{text}");
        assert!(text.contains("• ci-deploy · tops_…abcd"));
        assert!(!text.contains("old") && !text.contains("someone-else"));
        assert!(text.contains("open sessions"));
        assert_eq!(
            m.buttons[0].action,
            ButtonAction::ConfirmRevoke { persona: PS.into() }
        );
        assert_eq!(m.buttons[0].style, ButtonStyle::Danger);
        assert_eq!(m.buttons[1].action, ButtonAction::Cancel);
        // Without keys.list, the persona's own active keys are used.
        let mut p2 = persona.clone();
        p2["active_keys"] = keys["keys"].clone();
        assert!(
            revoke_preview(&p2, &Value::Null)
                .plain_text()
                .contains("ci-deploy")
        );
        let mut revoked = persona;
        revoked["persona"]["status"] = json!("revoked");
        assert!(revoke_preview(&revoked, &keys).buttons.is_empty());
    }
}
