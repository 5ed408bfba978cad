//! [`Core`]: the one handle surfaces hold. It is thin: it opens the store and builds the shared
//! services; what it does is spread over `engine/` by concern — provisioning, authentication,
//! dispatch and the two-person gate, approved execution, the worker, the ledger, chat.

use crate::config::{Config, MasterKeySource};
use crate::env::Env;
use crate::error::Result;
use crate::event::Event;
use crate::ledger::append::{Appender, Signers};
use crate::notify::{LogNotifier, Notifier};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::store::writer::Writer;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The tenantops core.
#[derive(Clone)]
pub struct Core {
    pub(crate) env: Arc<Env>,
}

impl Core {
    /// Opens the database (migrating it), loads the master key and builds the core.
    pub async fn open(config: Config) -> Result<Self> {
        // Refused before the database is touched.
        if matches!(config.master_key, MasterKeySource::Required) {
            return Err(key_required());
        }
        let store = Store::open(&config.db, config.create_db).await?;
        let master = match config.master_key {
            MasterKeySource::Key(k) => k,
            MasterKeySource::File(path) => {
                let create = store.is_empty().await?;
                MasterKey::load_or_create(&path, create)?
            }
            MasterKeySource::Kms { key, file } => {
                let create = store.is_empty().await?;
                MasterKey::load_or_create_in_kms(&config.kms, &key, &file, create).await?
            }
            MasterKeySource::Required => return Err(key_required()),
        };
        let pepper = master.api_key_pepper();
        let (events, _) = broadcast::channel(1024);
        let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
        notifiers.extend(config.notifiers);
        let replica = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let writer = Writer::spawn(store.clone());
        let appender = Appender::spawn(writer.clone());
        let core = Self {
            env: Arc::new(Env {
                store,
                writer,
                appender,
                signers: Signers::default(),
                clock: config.clock,
                vault: crate::vault::Vault::new(master.clone(), config.kms, config.key_cache_ttl),
                master,
                pepper,
                jwt: config.jwt,
                key_rotation_grace: config.key_rotation_grace,
                key_decisions: config.key_decisions,
                events,
                listening: std::sync::OnceLock::new(),
                replica,
                execution_lease: config.execution_lease,
                notifiers,
                export_dir: config.export_dir,
                hints: config.hints,
            }),
        };
        if core.engine() == crate::store::Engine::Postgres {
            core.forget_keys_others_changed();
        }
        Ok(core)
    }

    /// Drops cached keys when another replica changes a tenant's keys (revocation included):
    /// listens on the bus for as long as the core lives.
    fn forget_keys_others_changed(&self) {
        let mut events = self.subscribe();
        let env = Arc::downgrade(&self.env);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::TenantKeysChanged { tenant }) => match env.upgrade() {
                        Some(env) => {
                            env.vault.forget(&tenant);
                            env.vault.stale.notify_one();
                        }
                        None => return,
                    },
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => match env.upgrade() {
                        // Missed some: forget everything rather than keep a revoked key.
                        Some(env) => env.vault.forget_all(),
                        None => return,
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// The database engine this core runs on.
    pub fn engine(&self) -> crate::store::Engine {
        self.env.store.engine()
    }

    /// The shared services.
    pub fn env(&self) -> &Arc<Env> {
        &self.env
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.env.store
    }

    /// Subscribes to revocation events.
    /// On PostgreSQL, this replica starts listening to the others then.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        let receiver = self.env.events.subscribe();
        if let Some(pool) = self.env.store.pg_pool() {
            self.env.listening.get_or_init(|| {
                crate::engine::bus::spawn_listener(
                    pool.clone(),
                    self.env.replica.clone(),
                    self.env.events.clone(),
                )
            });
        }
        receiver
    }
}

fn key_required() -> crate::error::Error {
    crate::error::Error::Config(
        "on PostgreSQL, set TENANTOPS_MASTER_KEY (64 hex digits) or TENANTOPS_MASTER_KEY_FILE: \
         every replica must hold the same master key"
            .into(),
    )
}
