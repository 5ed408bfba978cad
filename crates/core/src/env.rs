//! [`Env`]: the shared services every operation and every engine step runs with.

use crate::Event;
use crate::clock::Clock;
use crate::config::KeyDecisions;
use crate::jwt::JwtConfig;
use crate::notify::{Notification, Notifier};
use crate::secrets::MasterKey;
use crate::store::Store;
use chrono::Duration;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

/// Shared services handed to every operation.
pub struct Env {
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The master key.
    pub master: MasterKey,
    pub(crate) pepper: Zeroizing<[u8; 32]>,
    /// JWT verification, when configured.
    pub jwt: Option<JwtConfig>,
    /// Default grace window of a key rotation.
    pub key_rotation_grace: Duration,
    /// See [`Config::key_decisions`].
    pub key_decisions: KeyDecisions,
    /// Events for connection-holding surfaces.
    pub events: broadcast::Sender<Event>,
    /// Where notifications go.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// Where `tenant.export_all` writes its archives.
    pub export_dir: PathBuf,
    /// How the surfaces tell people to use a code.
    pub hints: crate::hints::Hints,
}

impl Env {
    /// The pepper of API-key digests.
    pub fn pepper(&self) -> &[u8; 32] {
        &self.pepper
    }

    /// Publishes an event (after the transaction that caused it committed).
    pub fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Delivers a notification to every notifier.
    pub fn notify(&self, notification: &Notification) {
        for n in &self.notifiers {
            n.notify(notification);
        }
    }
}
