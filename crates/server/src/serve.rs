//! `tenantops serve`: the HTTP server (health, metrics; chat and MCP surfaces mount here) and
//! the approvals worker that escalates, expires and resumes requests.

use crate::metrics::Metrics;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tenantops_core::ledger::publish::CheckpointSink;
use tenantops_core::{Core, Error, Outcome, Principal, Surface};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub core: Core,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/usage",
            post(ingest_usage).layer(DefaultBodyLimit::max(16 * 1024 * 1024)),
        )
        .with_state(state)
}

use tenantops_mcp::bearer::{problem, unauthorized};

/// Authenticates the request's bearer credential (API key or tenant JWT).
async fn bearer(core: &Core, headers: &HeaderMap) -> Result<Principal, Response> {
    tenantops_mcp::bearer::authenticate(core, headers, Surface::Http).await
}

/// `POST /api/usage`: a JSON array of usage events (the sdk-meter feed), bearer-authenticated
/// with a key holding `usage:write`. Responds with the ingestion report; every SKU past its soft
/// cap adds a `Warning` header (the request still succeeds).
async fn ingest_usage(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match bearer(&state.core, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let events: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Array(_)) => v,
        Ok(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON array of usage events",
            );
        }
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    match state
        .core
        .call(&principal, "billing.ingest", json!({ "events": events }))
        .await
    {
        Ok(Outcome::Done { output }) => {
            let mut response = (StatusCode::OK, Json(output.clone())).into_response();
            for cap in output["over_cap"].as_array().into_iter().flatten() {
                let warning = format!(
                    "299 tenantops \"soft cap exceeded: {} at {}% of cap {}\"",
                    cap["sku"].as_str().unwrap_or_default(),
                    cap["percent"],
                    cap["cap"].as_str().unwrap_or_default()
                );
                if let Ok(v) = HeaderValue::from_str(&warning) {
                    response.headers_mut().append(header::WARNING, v);
                }
            }
            response
        }
        Ok(Outcome::Denied { reason }) => problem(StatusCode::FORBIDDEN, &reason),
        Ok(Outcome::PendingApproval { request_id, .. }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending_approval", "request_id": request_id })),
        )
            .into_response(),
        Err(Error::BadInput { field, message }) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": message, "field": field })),
        )
            .into_response(),
        Err(Error::Unauthenticated(reason)) => unauthorized(&reason, true),
        Err(e) => {
            tracing::error!(error = %e, "usage ingestion failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ingestion failed; nothing was recorded",
            )
        }
    }
}

/// 200 when the database answers, 503 otherwise; says the engine, this replica and the duties
/// (worker leases) it holds.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx_ping(&state.core).await {
        Ok(()) => {
            let duties = state.core.held_duties().await.unwrap_or_default();
            // Per-request sync claims are momentary: only standing duties are reported.
            let duties: Vec<String> = duties
                .into_iter()
                .filter(|d| !d.starts_with("sync:"))
                .collect();
            (
                StatusCode::OK,
                Json(json!({
                    "status": "ok",
                    "engine": state.core.engine(),
                    "replica": state.core.replica(),
                    "leases": duties,
                    "holds_lease": !duties.is_empty(),
                })),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database not answering" })),
            )
        }
    }
}

async fn sqlx_ping(core: &Core) -> tenantops_core::Result<()> {
    core.open_requests().await.map(|_| ())
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(n) = state.core.open_requests().await {
        state.metrics.open_requests.set(n as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The duty of the approvals worker (escalation, expiry, resuming, forgetting old deliveries):
/// held by one replica at a time.
pub const WORKER_DUTY: &str = "approvals-worker";

/// Runs the approvals worker: one pass now (resuming whatever a crash left approved), then one
/// every `every`, until the process stops — on whichever replica holds [`WORKER_DUTY`].
pub fn spawn_worker(
    core: Core,
    metrics: Arc<Metrics>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match core
                .hold(WORKER_DUTY, tenantops_core::duty_ttl(every))
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    metrics.worker_errors.inc();
                    tracing::error!(error = %e, "cannot claim the approvals worker duty");
                    continue;
                }
            }
            metrics.worker_ticks.inc();
            if let Err(e) = core.forget_old_deliveries().await {
                tracing::warn!(error = %e, "old chat deliveries not forgotten");
            }
            match core.tick_approvals().await {
                Ok(r) => {
                    metrics.escalated.inc_by(r.escalated.into());
                    metrics.expired.inc_by(r.expired.into());
                    metrics.resumed.inc_by(r.resumed.into());
                    if r != Default::default() {
                        tracing::info!(
                            escalated = r.escalated,
                            expired = r.expired,
                            resumed = r.resumed,
                            "approvals worker pass"
                        );
                    }
                }
                Err(e) => {
                    metrics.worker_errors.inc();
                    tracing::error!(error = %e, "approvals worker pass failed");
                }
            }
        }
    })
}

/// The duty of the re-wrap ([`Core::tick_rewrap`]): held by one replica at a time.
pub const REWRAP_DUTY: &str = "vault-rewrap";

/// Runs the vault's re-wrap: a pass every `every`, and at once when a value under an older key
/// was read or a tenant's keys changed — on whichever replica holds [`REWRAP_DUTY`].
pub fn spawn_rewrap(core: Core, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let wake = core.env().vault.stale.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = wake.notified() => {}
            }
            match core
                .hold(REWRAP_DUTY, tenantops_core::duty_ttl(every))
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim the re-wrap duty");
                    continue;
                }
            }
            match core.tick_rewrap().await {
                Ok(r) if r != Default::default() => tracing::info!(
                    rewrapped = r.rewrapped,
                    finished = r.finished,
                    failed = r.failed,
                    "re-wrap pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "re-wrap pass failed"),
            }
        }
    })
}

/// The Slack surface, when configured: its routes, its approvals queue and digest schedule.
pub struct SlackSurface {
    /// The surface.
    pub surface: tenantops_slack::Slack,
    /// Approval notifications for it.
    pub queue: tokio::sync::mpsc::UnboundedReceiver<tenantops_core::notify::Notification>,
    /// How often digests are checked for being due.
    pub digest_check: Duration,
    /// The app-level token, for Socket Mode.
    pub app_token: Option<String>,
}

/// `/slack/*` when Slack is not configured: a clear answer instead of a bare 404.
/// The Discord surface to serve, with its approvals queue; `gateway` also connects to the
/// gateway.
pub struct DiscordSurface {
    pub surface: tenantops_discord::Discord,
    pub queue: tokio::sync::mpsc::UnboundedReceiver<tenantops_core::notify::Notification>,
    pub gateway: bool,
    pub digest_check: Duration,
}

/// The chat platforms to serve.
pub struct ChatSurfaces {
    pub slack: Option<SlackSurface>,
    pub discord: Option<DiscordSurface>,
    /// When signed checkpoints are published to their channels.
    pub publish: crate::config::PublishSettings,
}

/// Publishes signed audit checkpoints through `sinks`: queued publications at once when this
/// process queued them and every `tick` otherwise (requests from other processes, retries), and
/// a scheduled one for each tenant whose ledger grew, every `settings.every` (checked at least
/// once a minute).
pub fn spawn_publisher(
    core: Core,
    sinks: Vec<Arc<dyn CheckpointSink>>,
    settings: crate::config::PublishSettings,
    tick: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut events = core.subscribe();
    tokio::spawn(async move {
        let kinds: Vec<&'static str> = sinks.iter().map(|s| s.kind()).collect();
        let mut poll = tokio::time::interval(tick.max(Duration::from_millis(10)));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let check = settings
            .every
            .min(Duration::from_secs(60))
            .max(Duration::from_millis(100));
        let mut schedule = tokio::time::interval(check);
        schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(tenantops_core::Event::CheckpointPublicationQueued { .. })
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = poll.tick() => {}
                _ = schedule.tick() => {
                    // One replica schedules; any replica may deliver (each publication is
                    // claimed by the one posting it).
                    match core.hold("checkpoint-schedule", tenantops_core::duty_ttl(check)).await {
                        Ok(true) => {
                            if let Err(e) = core
                                .schedule_checkpoint_publications(&kinds, settings.every)
                                .await
                            {
                                tracing::error!(error = %e, "checkpoint schedule pass failed");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "cannot claim the checkpoint schedule"),
                    }
                }
            }
            match core
                .deliver_checkpoint_publications(&sinks, settings.gap)
                .await
            {
                Ok(r) if r.published > 0 || r.given_up > 0 => tracing::info!(
                    published = r.published,
                    failed_posts = r.failed_posts,
                    given_up = r.given_up,
                    "signed checkpoints published"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "checkpoint publication pass failed"),
            }
        }
    })
}

async fn discord_not_configured() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Discord is not configured on this server: set TENANTOPS_DISCORD_PUBLIC_KEY, \
         TENANTOPS_DISCORD_APPLICATION_ID and TENANTOPS_DISCORD_BOT_TOKEN",
    )
}

async fn slack_not_configured() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Slack is not configured on this server: set TENANTOPS_SLACK_SIGNING_SECRET and \
         TENANTOPS_SLACK_BOT_TOKEN",
    )
}

/// Binds `listen`, prints `{"listening": "<addr>"}` on stdout, and serves until Ctrl-C or
/// SIGTERM.
pub async fn run(
    core: Core,
    metrics: Arc<Metrics>,
    listen: SocketAddr,
    tick: Duration,
    mcp: tenantops_mcp::HttpOptions,
    chat: ChatSurfaces,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {e}; pick another address with --listen or TENANTOPS_LISTEN"
        )
    })?;
    let local = listener.local_addr()?;
    let ChatSurfaces {
        slack,
        discord,
        publish,
    } = chat;
    let mut sinks: Vec<Arc<dyn CheckpointSink>> = Vec::new();
    if let Some(s) = &slack {
        sinks.push(Arc::new(s.surface.clone()));
    }
    if let Some(d) = &discord {
        sinks.push(Arc::new(d.surface.api.clone()));
    }
    // Joined before the address is printed: a refused bot token stops the start, in one line.
    let gateway = match discord.as_ref().filter(|d| d.gateway) {
        Some(d) => Some(
            tenantops_discord::gateway::Gateway::start(d.surface.clone())
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot connect to the Discord gateway: {e}; check TENANTOPS_DISCORD_BOT_TOKEN"
                    )
                })?,
        ),
        None => None,
    };
    let worker = spawn_worker(core.clone(), metrics.clone(), tick);
    let rewrap = spawn_rewrap(core.clone(), tick);
    let publisher =
        (!sinks.is_empty()).then(|| spawn_publisher(core.clone(), sinks, publish, tick));
    println!("{}", json!({ "listening": local.to_string() }));
    tracing::info!(%local, "tenantops serving");
    let stop = tokio_util::sync::CancellationToken::new();
    let app = router(AppState {
        core: core.clone(),
        metrics,
    })
    .merge(tenantops_mcp::router(core, mcp, stop.clone()));
    let mut background = Vec::new();
    let mut socket = None;
    let app = match slack {
        Some(s) => {
            if let Some(token) = &s.app_token {
                socket = Some(
                    tenantops_slack::socket::SocketMode::start(s.surface.clone(), token)
                        .await
                        .map_err(|e| anyhow::anyhow!(e))?,
                );
            }
            background.push(tenantops_slack::approvals::spawn_worker(
                s.surface.clone(),
                s.queue,
                tick,
            ));
            background.push(tenantops_slack::digest::spawn_scheduler(
                s.surface.clone(),
                s.digest_check,
            ));
            app.merge(tenantops_slack::router(s.surface))
        }
        None => app
            .route("/slack/commands", post(slack_not_configured))
            .route("/slack/interactions", post(slack_not_configured))
            .route("/slack/events", post(slack_not_configured)),
    };
    let app = match discord {
        Some(d) => {
            background.push(tenantops_discord::approvals::spawn_worker(
                d.surface.clone(),
                d.queue,
                tick,
            ));
            background.push(tenantops_discord::finance::spawn_scheduler(
                d.surface.clone(),
                d.digest_check,
            ));
            app.merge(tenantops_discord::router(d.surface))
        }
        None => app.route("/discord/interactions", post(discord_not_configured)),
    };
    let on_signal = stop.clone();
    // Small replies go out at once: without TCP_NODELAY each one waits for the client's delayed
    // ACK (Nagle), which caps a connection at a few dozen requests a second.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown().await;
            // Ends open MCP streams so the graceful shutdown does not wait on them.
            on_signal.cancel();
        })
        .await?;
    stop.cancel();
    if let Some(socket) = socket {
        socket.shutdown().await;
    }
    if let Some(gateway) = gateway {
        gateway.shutdown().await;
    }
    worker.abort();
    rewrap.abort();
    if let Some(p) = publisher {
        p.abort();
    }
    for task in background {
        task.abort();
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
