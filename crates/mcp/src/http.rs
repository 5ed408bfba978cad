//! MCP over streamable HTTP at `/mcp`: bearer authentication in front of rmcp's service, session
//! ownership (a session is usable only by the credential that opened it), and connections that
//! end exactly when their credential does: revoked, expired, or rotated away at the end of its
//! grace window.

use crate::bearer;
use crate::handler::{Caller, McpServer};
use crate::limits::Limits;
use crate::live::{CredentialId, Live, affects_credentials, until};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;
use tenantops_core::{Core, Surface};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

const SESSION_HEADER: &str = "mcp-session-id";

/// How `/mcp` is served.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Limits per caller.
    pub limits: Limits,
    /// `Host` values accepted (DNS-rebinding protection); empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// How often live credentials are re-checked for revocations and rotations made by other
    /// processes.
    pub sweep_every: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            sweep_every: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
struct Gate {
    core: Core,
    live: Live,
}

/// The `/mcp` routes, and the background task that closes revoked credentials' connections
/// (it stops when `shutdown` is cancelled).
pub fn router(core: Core, options: HttpOptions, shutdown: CancellationToken) -> Router {
    let sessions = Arc::new(LocalSessionManager::default());
    let live = Live::default();
    // A reply that is complete goes back as plain JSON with a length (rmcp switches to SSE by
    // itself when a handler streams something before it): no chunked stream to frame per call.
    let mut config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(options.limits.max_body_bytes)
        .with_cancellation_token(shutdown.child_token());
    config = if options.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(options.allowed_hosts.clone())
    };
    let server = McpServer::new(core.clone(), Caller::PerRequest, options.limits.clone());
    let service =
        StreamableHttpService::new(move || Ok(server.sibling()), sessions.clone(), config);
    tokio::spawn(watch(
        core.clone(),
        live.clone(),
        sessions,
        options.sweep_every,
        shutdown,
    ));
    let gate = Gate { core, live };
    Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gate, authenticate))
        .layer(DefaultBodyLimit::max(options.limits.max_body_bytes))
}

/// Authenticates, checks session ownership, and ties the response body to the credential.
async fn authenticate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let principal = match bearer::authenticate(&gate.core, request.headers(), Surface::Mcp).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let credential = CredentialId::new(
        &principal,
        bearer::presented(request.headers()).unwrap_or_default(),
    );
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session
        && let Some(owner) = gate.live.session_owner(id)
        && owner != credential
    {
        // Indistinguishable from an unknown session: another credential's session is not
        // something this caller may learn about, let alone use.
        return bearer::problem(StatusCode::NOT_FOUND, "session not found");
    }
    let is_delete = request.method() == axum::http::Method::DELETE;
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    if let Some(id) = &session
        && is_delete
        && response.status().is_success()
    {
        gate.live.forget_session(id);
        // The session is gone, not queued for removal: say so with 204, which every client
        // (the official Python SDK included) takes as success.
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    if let Some(id) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        && gate.live.session_owner(id).is_none()
    {
        gate.live.bind_session(id, &credential, &principal);
    }
    let (token, guard) = gate.live.enter(&credential, &principal);
    let (parts, body) = response.into_parts();
    let stream = body
        .into_data_stream()
        .take_until(token.cancelled_owned())
        .map(move |chunk| {
            let _held = &guard;
            chunk
        });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Re-checks live credentials when the first of them is due to end, on every event that may
/// end or shorten one, and every `every`; closes what ended.
async fn watch(
    core: Core,
    live: Live,
    sessions: Arc<LocalSessionManager>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut events = core.subscribe();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next_end = live.next_end();
        tokio::select! {
            () = shutdown.cancelled() => return,
            // A new credential may end before the timer below: re-arm it.
            () = live.added() => continue,
            () = until(&core, next_end) => {}
            event = events.recv() => match event {
                Ok(e) if affects_credentials(&e) => {}
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                // Sessions the client closed or that expired are forgotten.
                for id in live.sessions() {
                    if !sessions.has_session(&id.clone().into()).await.unwrap_or(false) {
                        live.forget_session(&id);
                    }
                }
            }
        }
        for id in live.sweep(&core).await {
            if let Err(e) = sessions.close_session(&id.clone().into()).await {
                tracing::debug!(session = %id, error = %e, "closing a revoked session");
            }
        }
    }
}
