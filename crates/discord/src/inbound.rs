//! `POST /discord/interactions`: the signature is verified on the raw body before anything
//! parses it (Discord probes endpoints with bad signatures and expects 401), then the
//! interaction is handled and its response is the HTTP answer — by the answer window counted
//! from the request's arrival.

use crate::{Discord, interactions};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serenity::all::Interaction;

/// `POST /discord/interactions`.
pub async fn interactions(
    State(discord): State<Discord>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = std::time::Instant::now();
    let Some(verifier) = discord.verifier.as_deref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the Discord interactions endpoint needs TENANTOPS_DISCORD_PUBLIC_KEY (this server uses the gateway only)",
        )
            .into_response();
    };
    if let Err(e) = verifier.check(&headers, &body, chrono::Utc::now().timestamp()) {
        tracing::warn!(reason = %e, "Discord request refused");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable Discord interaction");
            return (StatusCode::BAD_REQUEST, "unreadable interaction").into_response();
        }
    };
    let deadline = received + discord.answer_within;
    Json(interactions::handle(discord, interaction, deadline).await).into_response()
}
