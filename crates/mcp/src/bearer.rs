//! Bearer authentication for HTTP surfaces: `Authorization: Bearer <API key or tenant JWT>`,
//! answered with a 401 and a `WWW-Authenticate` challenge when missing or bad.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenantops_core::{Core, Error, Principal, Surface};

/// A JSON error response.
pub fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 401 with the challenge a client needs (RFC 6750: no error code when nothing was sent).
pub fn unauthorized(message: &str, credential_sent: bool) -> Response {
    let mut r = problem(StatusCode::UNAUTHORIZED, message);
    let challenge = if credential_sent {
        "Bearer realm=\"tenantops\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"tenantops\""
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

/// The credential the request presents (`Authorization: Bearer <credential>`), if any.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// Authenticates the request's bearer credential for `surface`.
pub async fn authenticate(
    core: &Core,
    headers: &HeaderMap,
    surface: Surface,
) -> Result<Principal, Response> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Err(unauthorized(
            "send Authorization: Bearer <API key or tenant JWT>",
            false,
        ));
    }
    let Some(token) = presented(headers) else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <credential>`",
            true,
        ));
    };
    core.authenticate(token, surface)
        .await
        .map_err(|e| match e {
            Error::Unauthenticated(reason) => unauthorized(&reason, true),
            other => {
                tracing::error!(error = %other, "authentication failed");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "authentication failed; see the server log",
                )
            }
        })
}
