//! Slack's OAuth v2 install flow. A tenant admin asks for a one-time install link
//! (`tenant.chat_install_link`); `GET /slack/install?state=…` sends the browser to Slack's
//! consent page; Slack sends it back to `GET /slack/oauth/callback?code=…&state=…`, where the code
//! is exchanged (`oauth.v2.access`) and the core binds the workspace to the link's tenant and
//! stores its bot token envelope-encrypted. The state is checked by the core, never trusted.

use crate::Slack;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use slack_morphism::prelude::*;
use tenantops_core::Error;
use tenantops_core::chat::Platform;

/// The bot scopes the app asks for (the manifest's).
/// `channels:history` and `groups:history` let `audit verify --published` read back the signed
/// checkpoints the bot posted to the approval channel.
pub const BOT_SCOPES: &str =
    "commands,chat:write,chat:write.public,im:write,files:write,channels:history,groups:history";

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>tenantops</title>\
             <body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\">\
             <h1>{}</h1><p>{}</p></body>",
            esc(title),
            esc(text)
        )),
    )
        .into_response()
}

/// The install path the router serves (`{code}`: the install state), as registered with the
/// core for `tenant.chat_install_link`'s answer.
pub const INSTALL_PATH_TEMPLATE: &str = "/slack/install?state={code}";

/// Query of `/slack/install`.
#[derive(Deserialize)]
pub struct InstallQuery {
    state: Option<String>,
}

/// `GET /slack/install?state=…`: on to Slack's consent page.
pub async fn install(State(slack): State<Slack>, Query(q): Query<InstallQuery>) -> Response {
    let Some(oauth) = slack.oauth.as_deref() else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Slack install is not configured",
            "Set TENANTOPS_SLACK_CLIENT_ID, TENANTOPS_SLACK_CLIENT_SECRET and TENANTOPS_PUBLIC_URL, \
             or bind a workspace with tenant.chat_bind.",
        );
    };
    let Some(state) = q
        .state
        .filter(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_alphanumeric()))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Missing install state",
            "Open the link tenant.chat_install_link gave you, unchanged.",
        );
    };
    let redirect = format!(
        "{}/slack/oauth/callback",
        oauth.public_url.trim_end_matches('/')
    );
    let query = serde_urlencoded::to_string([
        ("client_id", oauth.client_id.as_str()),
        ("scope", BOT_SCOPES),
        ("redirect_uri", redirect.as_str()),
        ("state", state.as_str()),
    ])
    .unwrap_or_default();
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{}?{query}", oauth.authorize_url))],
    )
        .into_response()
}

/// Query of `/slack/oauth/callback`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /slack/oauth/callback`: exchange the code, bind the workspace, store its token.
pub async fn callback(State(slack): State<Slack>, Query(q): Query<CallbackQuery>) -> Response {
    let Some(oauth) = slack.oauth.clone() else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Slack install is not configured",
            "",
        );
    };
    if let Some(error) = q.error {
        return page(
            StatusCode::BAD_REQUEST,
            "Slack install cancelled",
            &format!("Slack said: {error}"),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Incomplete callback",
            "Start again from the install link.",
        );
    };
    let redirect = format!(
        "{}/slack/oauth/callback",
        oauth.public_url.trim_end_matches('/')
    );
    let request = SlackOAuthV2AccessTokenRequest::new(
        oauth.client_id.clone().into(),
        oauth.client_secret.clone().into(),
        code.into(),
    )
    .opt_redirect_uri(redirect.parse().ok());
    let access = match slack.api.client().oauth2_access(&request).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "Slack oauth.v2.access failed");
            return page(
                StatusCode::BAD_GATEWAY,
                "Slack did not confirm the install",
                "The code could not be exchanged (expired or already used). Start again from the install link.",
            );
        }
    };
    let team = access.team.id.to_string();
    let name = access.team.name.clone();
    match slack
        .core
        .complete_chat_install(
            Platform::Slack,
            &state,
            &team,
            name.as_deref(),
            Some(access.access_token.value()),
        )
        .await
    {
        Ok(installed) => page(
            StatusCode::OK,
            "tenantops is installed",
            &format!(
                "Workspace {} is now connected{}. Each person links their account with /tenant link CODE \
                 (a code from members.chat_link_code).",
                name.as_deref().unwrap_or(&team),
                if installed.reinstalled {
                    " again (its token was refreshed)"
                } else {
                    ""
                }
            ),
        ),
        Err(Error::BadInput { message, .. }) => {
            page(StatusCode::BAD_REQUEST, "Install link not valid", &message)
        }
        Err(Error::Conflict(message)) => page(
            StatusCode::CONFLICT,
            "Workspace already connected",
            &message,
        ),
        Err(e) => {
            tracing::error!(error = %e, "completing a Slack install failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Install failed",
                "Nothing was changed; see the server log.",
            )
        }
    }
}
