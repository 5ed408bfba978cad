//! MCP over stdio for desktop clients: one credential (from the environment) for the whole
//! process, re-checked on every request; the server stops as soon as it is revoked, expires or
//! is rotated away (at the end of the grace window).

use crate::handler::{Caller, McpServer};
use crate::limits::Limits;
use crate::live::{affects_credentials, until};
use rmcp::ServiceExt;
use std::time::Duration;
use tenantops_core::{Core, Error, Principal};
use tokio::sync::broadcast::error::RecvError;

/// Why the stdio server stopped.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The credential was revoked or expired while serving.
    #[error("the credential is no longer valid: {0}")]
    Revoked(String),
    /// The transport failed to start.
    #[error("MCP over stdio failed: {0}")]
    Transport(String),
}

/// Serves MCP on stdin/stdout as `principal` until the client disconnects or the credential
/// ends: at its `valid_until` (re-read after every rotation), at once on a revocation by this
/// process, and within `sweep_every` on one by another process.
pub async fn serve(
    core: Core,
    principal: Principal,
    limits: Limits,
    sweep_every: Duration,
) -> Result<(), StdioError> {
    let server = McpServer::new(core.clone(), Caller::Fixed(principal.clone()), limits);
    // The watch runs from the start: a credential revoked before the client even finishes its
    // handshake ends the process too.
    let watch = async {
        let mut events = core.subscribe();
        let mut tick = tokio::time::interval(sweep_every);
        let mut current = principal.clone();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(e) if !affects_credentials(&e) => continue,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                    _ => {}
                },
                () = until(&core, current.valid_until()) => {}
                _ = tick.tick() => {}
            }
            match core.refresh(&current).await {
                Err(Error::Unauthenticated(reason)) => return reason,
                Err(e) => tracing::warn!(error = %e, "re-checking the MCP credential failed"),
                // Keeps the end a rotation gave the secret since.
                Ok(refreshed) => current = refreshed,
            }
        }
    };
    let serving = async {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| StdioError::Transport(e.to_string()))?;
        running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| StdioError::Transport(e.to_string()))
    };
    // Dropping the serving future on revocation drops the service and closes the transport.
    tokio::select! {
        reason = watch => Err(StdioError::Revoked(reason)),
        r = serving => r,
    }
}
