//! [`Env`]: the shared services every operation and every engine step runs with.

use crate::Event;
use crate::clock::Clock;
use crate::config::KeyDecisions;
use crate::error::Result;
use crate::ids::TenantId;
use crate::jwt::JwtConfig;
use crate::ledger::append::{Appender, Signers};
use crate::ledger::checkpoint::CheckpointSigner;
use crate::ledger::{Actor, AuditOutcome, Draft};
use crate::notify::{Notification, Notifier};
use crate::secrets::MasterKey;
use crate::store::writer::Writer;
use crate::store::{Store, Tx};
use chrono::Duration;
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

/// Shared services handed to every operation.
pub struct Env {
    /// The store, for reads: every write goes through [`Env::write`].
    pub store: Store,
    /// The one writer of this process (group commit).
    pub(crate) writer: Writer,
    /// Appends the entries of calls that write nothing else, many per commit.
    pub(crate) appender: Appender,
    /// Each tenant's checkpoint signer.
    pub(crate) signers: Signers,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The master key.
    pub master: MasterKey,
    /// The sealing service: every secret or personal value of a tenant goes through it.
    pub vault: crate::vault::Vault,
    pub(crate) pepper: Zeroizing<[u8; 32]>,
    /// JWT verification, when configured.
    pub jwt: Option<JwtConfig>,
    /// Default grace window of a key rotation.
    pub key_rotation_grace: Duration,
    /// See [`Config::key_decisions`].
    pub key_decisions: KeyDecisions,
    /// Events for connection-holding surfaces.
    pub events: broadcast::Sender<Event>,
    /// Whether this replica listens to the others yet ([`crate::engine::bus`]).
    pub(crate) listening: std::sync::OnceLock<()>,
    /// This process's replica id: who holds a lease.
    pub(crate) replica: String,
    /// How long an execution may stall before another pass (or replica) resumes it.
    pub(crate) execution_lease: Duration,
    /// Where notifications go.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// Where `tenant.export_all` writes its archives.
    pub export_dir: PathBuf,
    /// How the surfaces tell people to use a code.
    pub hints: crate::hints::Hints,
}

impl Env {
    /// Runs `work` in a write transaction shared with concurrent callers (group commit): its
    /// changes are kept only if it returns `Ok`, and it returns once they are durable. `work`
    /// must do database work only — never wait for the network or for another write.
    pub async fn write<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<R>> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// [`Env::write`] for work that owns its transaction (and hands it back).
    pub(crate) async fn write_owned<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Tx) -> BoxFuture<'static, (Tx, Result<R>)> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// [`Env::write_owned`] with the savepoint `inner` set when `work` starts.
    pub(crate) async fn write_owned_in<R, F>(&self, inner: &'static str, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Tx) -> BoxFuture<'static, (Tx, Result<R>)> + Send + 'static,
    {
        self.writer.run_in(Some(inner), work).await
    }

    /// The tenant's audit checkpoint signer.
    pub fn signer(&self, tenant: &TenantId) -> Result<Arc<CheckpointSigner>> {
        self.signers.get(&self.master, tenant)
    }

    /// Appends one audit entry to the tenant's ledger inside `tx` (the transaction of what it
    /// records), sealed with a signed checkpoint.
    pub(crate) async fn record(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        at: chrono::DateTime<chrono::Utc>,
        draft: Draft,
    ) -> Result<crate::ledger::Appended> {
        let signer = self.signer(tenant)?;
        let appended = crate::ledger::record(tx, tenant, &signer, at, vec![draft]).await?;
        appended
            .into_iter()
            .next()
            .ok_or_else(|| crate::error::Error::Internal("no audit entry appended".into()))
    }

    /// Appends one audit entry on its own (for a call that wrote nothing else); returns once
    /// it is durable.
    pub(crate) async fn audit(
        &self,
        tenant: &TenantId,
        actor: Actor,
        op: &str,
        outcome: AuditOutcome,
        detail: serde_json::Value,
    ) -> Result<()> {
        let draft = Draft {
            actor,
            op: op.to_owned(),
            outcome,
            detail,
        };
        let signer = self.signer(tenant)?;
        self.appender
            .append(tenant, signer, self.clock.now(), draft)
            .await
    }

    /// The pepper of API-key digests.
    pub fn pepper(&self) -> &[u8; 32] {
        &self.pepper
    }

    /// Publishes an event (after the transaction that caused it committed).
    pub fn publish(&self, event: Event) {
        if let Event::TenantKeysChanged { tenant } = &event {
            self.vault.forget(tenant);
            self.vault.stale.notify_one();
        }
        let _ = self.events.send(event);
    }

    /// Tells the other replicas about `events` when `tx` commits (on PostgreSQL; a SQLite
    /// database has one serving process).
    pub(crate) async fn announce(&self, tx: &mut Tx, events: &[Event]) -> Result<()> {
        if tx.engine() != crate::store::Engine::Postgres {
            return Ok(());
        }
        for event in events.iter().filter(|e| crate::event::travels(e)) {
            if let Some(payload) = crate::event::payload(&self.replica, event) {
                crate::store::postgres::notify(tx, crate::event::CHANNEL, &payload).await?;
            }
        }
        Ok(())
    }

    /// Delivers a notification to every notifier.
    pub fn notify(&self, notification: &Notification) {
        for n in &self.notifiers {
            n.notify(notification);
        }
    }
}
