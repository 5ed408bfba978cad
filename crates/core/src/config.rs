//! What [`crate::Core::open`] needs: the database, the master key, JWT verification, policy
//! defaults, and what the surfaces of the binary register.

use crate::clock::{Clock, SystemClock};
use crate::jwt::JwtConfig;
use crate::notify::Notifier;
use crate::secrets::MasterKey;
use crate::store::Location;
use chrono::Duration;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the master key comes from.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// A key file, created (mode 0600) when the database is new.
    File(PathBuf),
    /// A key given directly (from `TENANTOPS_MASTER_KEY`).
    Key(MasterKey),
    /// A key held wrapped by a KMS key (`TENANTOPS_MASTER_KEY_URI`): the wrapped key lives in
    /// `file` (created, by the KMS's GenerateDataKey, when the database is new) and is unwrapped
    /// once at start.
    Kms {
        /// The KMS key that wraps it.
        key: crate::kms::KeyRef,
        /// Where the wrapped key is kept.
        file: PathBuf,
    },
    /// Not given, where nothing can stand in for it: every replica on a PostgreSQL database
    /// must be given the same key.
    Required,
}

/// Everything [`Core::open`] needs.
#[derive(Clone)]
pub struct Config {
    /// The database.
    pub db: Location,
    /// The master key.
    pub master_key: MasterKeySource,
    /// JWT verification; `None` refuses every JWT.
    pub jwt: Option<JwtConfig>,
    /// How long a rotated key's old secret keeps working (the guide: 10 minutes).
    pub key_rotation_grace: Duration,
    /// How long an approved request's execution may stall (its replica died) before the
    /// worker of any replica resumes it ([`EXECUTION_LEASE`] by default).
    pub execution_lease: Duration,
    /// How API keys weigh in approval decisions: by default only a key the person issued for
    /// themselves from their own proof counts ([`crate::proof`]); `SignInOnly` counts no key;
    /// `AnyKey` weakens the two-person rule for a single operator scripting alone.
    pub key_decisions: KeyDecisions,
    /// The clock (the system clock outside tests).
    pub clock: Arc<dyn Clock>,
    /// Notification sinks besides the log.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// Where `tenant.export_all` writes archives (default: `exports/` beside the database).
    pub export_dir: PathBuf,
    /// How the surfaces of this binary tell people to use a code (registered by them).
    pub hints: crate::hints::Hints,
    /// Platform credentials and endpoints of the cloud KMSs tenants bring keys from (BYOK).
    pub kms: crate::kms::KmsConfig,
    /// How long a tenant's unwrapped data keys stay cached (a key revoked upstream stops
    /// working within it).
    pub key_cache_ttl: std::time::Duration,
    /// Create the database when it does not exist (provisioning); otherwise a missing file is a
    /// configuration error, not a silent new empty database.
    pub create_db: bool,
}

impl Config {
    /// Defaults for a database file: key file beside it, no JWT, 10-minute grace, system clock.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        Self::at(Location::Sqlite(db_path.into()))
    }

    /// Defaults for a database: on SQLite the key file and `exports/` beside the file; on
    /// PostgreSQL the key must be given ([`MasterKeySource::Required`]) and exports go to
    /// `./exports`.
    pub fn at(db: Location) -> Self {
        let (master_key, export_dir) = match &db {
            Location::Sqlite(db_path) => {
                let export_dir = db_path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .join("exports");
                let mut key_path = db_path.clone().into_os_string();
                key_path.push(".master-key");
                (MasterKeySource::File(key_path.into()), export_dir)
            }
            Location::Postgres(_) => (MasterKeySource::Required, PathBuf::from("exports")),
        };
        Self {
            db,
            master_key,
            jwt: None,
            key_rotation_grace: Duration::minutes(10),
            execution_lease: EXECUTION_LEASE,
            key_decisions: KeyDecisions::default(),
            clock: Arc::new(SystemClock),
            notifiers: Vec::new(),
            export_dir,
            hints: crate::hints::Hints::default(),
            kms: crate::kms::KmsConfig::default(),
            key_cache_ttl: crate::vault::DEFAULT_TTL,
            create_db: true,
        }
    }
}

/// How long an execution may stall before the worker resumes it (by default). A resume after
/// the lease cannot run a request twice: the operation and the request's `succeeded` commit
/// together, and only while the request is still `executing`; a second run rolls back whole.
pub const EXECUTION_LEASE: Duration = Duration::minutes(1);

/// How long a new chat link waits before it counts for decisions, unless the tenant says
/// otherwise (`tenant.update_settings`).
pub const DEFAULT_LINK_MIN_AGE_SECS: i64 = 24 * 3600;

/// How the deployment weighs API keys in decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyDecisions {
    /// Keys the person issued for themselves count; delegated keys never do (the default).
    #[default]
    OwnKeysOnly,
    /// No key counts: only a sign-in or a linked chat account (`TENANTOPS_DECISIONS_REQUIRE_SIGN_IN`).
    SignInOnly,
    /// Weakened: any key counts, even one someone else issued — a single operator scripting
    /// alone. One insider holding a colleague's key can then be two people.
    AnyKey,
}
