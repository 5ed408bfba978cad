//! `tenantops serve`: the HTTP server (health, metrics; chat and MCP surfaces mount here) and
//! the approvals worker that escalates, expires and resumes requests.

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tenantops_core::Core;

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
        .with_state(state)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx_ping(&state.core).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
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

/// Runs the approvals worker: one pass now (resuming whatever a crash left approved), then one
/// every `every`, until the process stops.
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
            metrics.worker_ticks.inc();
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

/// Binds `listen`, prints `{"listening": "<addr>"}` on stdout, and serves until Ctrl-C or
/// SIGTERM.
pub async fn run(
    core: Core,
    metrics: Arc<Metrics>,
    listen: SocketAddr,
    tick: Duration,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {e}; pick another address with --listen or TENANTOPS_LISTEN"
        )
    })?;
    let local = listener.local_addr()?;
    let worker = spawn_worker(core.clone(), metrics.clone(), tick);
    println!("{}", json!({ "listening": local.to_string() }));
    tracing::info!(%local, "tenantops serving");
    let app = router(AppState { core, metrics });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    worker.abort();
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
