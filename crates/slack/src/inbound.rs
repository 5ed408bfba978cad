//! Slack's HTTP endpoints: `POST /slack/commands`, `/slack/interactions` and `/slack/events`.
//! Each verifies the signature on the raw body first, answers within Slack's 3 seconds (slow work
//! continues in the background and answers through `response_url`), and never acts twice on a
//! retried or redelivered request.

use crate::blocks;
use crate::commands::{self, Reply};
use crate::interactions;
use crate::{Slack, verify};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use slack_morphism::prelude::*;
use tenantops_core::chat::Platform;

/// Verifies the request, or answers why not (503 when HTTP mode has no signing secret).
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once per request
fn check(slack: &Slack, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let Some(verifier) = slack.verifier.as_deref() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "Slack HTTP endpoints need TENANTOPS_SLACK_SIGNING_SECRET (this server runs Socket Mode only)",
        )
            .into_response());
    };
    verify::verify(verifier, headers, body).map_err(refused)
}

fn refused(e: verify::Refused) -> Response {
    tracing::warn!(reason = %e, "Slack request refused");
    (StatusCode::UNAUTHORIZED, e.to_string()).into_response()
}

fn bad_request(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, what.to_owned()).into_response()
}

/// The immediate answer to a slash command: an ephemeral or in-channel message body.
pub(crate) fn reply_body(reply: &Reply) -> Response {
    let content = blocks::content(&reply.message);
    let mut body = serde_json::to_value(&content).unwrap_or_else(|_| json!({}));
    body["response_type"] = json!(if reply.in_channel {
        "in_channel"
    } else {
        "ephemeral"
    });
    Json(body).into_response()
}

/// `POST /slack/commands`.
pub async fn slash_command(
    State(slack): State<Slack>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check(&slack, &headers, &body) {
        return r;
    }
    let Ok(cmd) = serde_urlencoded::from_bytes::<SlackCommandEvent>(&body) else {
        return bad_request("not a slash command payload");
    };
    // Slash commands carry a trigger id unique to the invocation: a replay of the same signed
    // request within the window is answered without acting again.
    match slack
        .core
        .first_delivery(Platform::Slack, &format!("cmd:{}", cmd.trigger_id))
        .await
    {
        Ok(true) => {}
        Ok(false) => return StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "delivery bookkeeping failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let reply = commands::handle(slack.clone(), cmd).await;
    reply_body(&reply)
}

/// `POST /slack/interactions`: button clicks and modal submissions.
pub async fn interaction(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&slack, &headers, &body) {
        return r;
    }
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return bad_request("missing payload");
    };
    let event: SlackInteractionEvent = match serde_json::from_str(&form.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable Slack interaction");
            return bad_request("unreadable interaction payload");
        }
    };
    match interactions::handle(slack, event).await {
        interactions::Answer::Ack => StatusCode::OK.into_response(),
        interactions::Answer::ViewErrors(errors) => {
            Json(json!({ "response_action": "errors", "errors": errors })).into_response()
        }
    }
}

/// `POST /slack/events`: the URL check, and event callbacks acknowledged once each.
pub async fn events(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&slack, &headers, &body) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("not JSON");
    };
    match v["type"].as_str() {
        Some("url_verification") => Json(json!({ "challenge": v["challenge"] })).into_response(),
        Some("event_callback") => {
            let id = v["event_id"].as_str().unwrap_or_default();
            let first = slack
                .core
                .first_delivery(Platform::Slack, &format!("event:{id}"))
                .await
                .unwrap_or(false);
            if first {
                tracing::debug!(event_id = id, kind = ?v["event"]["type"], "Slack event");
            } else {
                tracing::debug!(event_id = id, "Slack event redelivered; already handled");
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}
