//! The event bus between replicas: on PostgreSQL, what one replica publishes (a revocation, a
//! rotation, a finished request) reaches every other replica through `LISTEN/NOTIFY` on the
//! shared database, within milliseconds, and is published there as if it happened locally — so
//! an MCP stream of a revoked persona closes on whichever replica holds it.
//!
//! An operation's events are said inside its own transaction (`pg_notify`), so PostgreSQL
//! delivers them exactly when the change commits, and never for a change that rolled back —
//! whichever process made it (a `serve` replica, the CLI). A replica listens once something in
//! it subscribes to events; if it loses its listening connection it reconnects (sqlx's
//! `PgListener`) and, missing what was said meanwhile, still refuses every call of a revoked
//! credential: each call re-checks the caller in the database.

use crate::event::{CHANNEL, Event, Said};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// Listens for what other replicas say and publishes it on `local`, until the pool closes.
pub(crate) fn spawn_listener(pool: PgPool, me: String, local: broadcast::Sender<Event>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&pool, &me, &local).await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "event bus listener failed; reconnecting");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    });
}

async fn listen(pool: &PgPool, me: &str, local: &broadcast::Sender<Event>) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        match serde_json::from_str::<Said>(n.payload()) {
            Ok(said) if said.from != me => {
                tracing::debug!(from = %said.from, "event from another replica");
                let _ = local.send(said.event);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable event on the bus"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{payload, travels};
    use crate::ids::{PersonaId, TenantId};

    #[test]
    fn an_event_travels_as_json_and_back() {
        let e = Event::PersonaRevoked {
            tenant: TenantId::from_db("tn_1".into()),
            persona: PersonaId::from_db("ps_1".into()),
        };
        let text = payload("r1", &e).unwrap();
        assert!(text.contains("\"event\":\"persona_revoked\""), "{text}");
        let back: Said = serde_json::from_str(&text).unwrap();
        assert_eq!((back.from.as_str(), back.event), ("r1", e));
        assert!(!travels(&Event::RequestApproved {
            tenant: TenantId::from_db("tn_1".into()),
            request_id: "rq_1".into()
        }));
    }
}
