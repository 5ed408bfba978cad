//! [`Core`]: opening the store, authenticating callers, and the single dispatch function through
//! which every operation runs — scope check, one transaction, one audit entry.

use crate::apikey::ApiKeySecret;
use crate::catalogue::{self, OpCtx};
use crate::clock::{Clock, SystemClock, to_millis};
use crate::error::{Error, Result};
use crate::ids::{KeyId, PersonaId, TenantId};
use crate::jwt::{self, JwtConfig};
use crate::ledger::{self, Actor, Draft};
use crate::principal::{PersonaKind, Principal, Surface, Via};
use crate::scope::{ScopeSet, scopes_from_json};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::{ops, roles};
use chrono::Duration;
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

/// Largest accepted operation input, serialised.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Where the master key comes from.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// A key file, created (mode 0600) when the database is new.
    File(PathBuf),
    /// A key given directly (from `TENANTOPS_MASTER_KEY`).
    Key(MasterKey),
}

/// Everything [`Core::open`] needs.
#[derive(Clone)]
pub struct Config {
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// The master key.
    pub master_key: MasterKeySource,
    /// JWT verification; `None` refuses every JWT.
    pub jwt: Option<JwtConfig>,
    /// How long a rotated key's old secret keeps working (the guide: 10 minutes).
    pub key_rotation_grace: Duration,
    /// The clock (the system clock outside tests).
    pub clock: Arc<dyn Clock>,
    /// Create the database when it does not exist (provisioning); otherwise a missing file is a
    /// configuration error, not a silent new empty database.
    pub create_db: bool,
}

impl Config {
    /// Defaults for a database file: key file beside it, no JWT, 10-minute grace, system clock.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        let db_path = db_path.into();
        let mut key_path = db_path.clone().into_os_string();
        key_path.push(".master-key");
        Self {
            db_path,
            master_key: MasterKeySource::File(key_path.into()),
            jwt: None,
            key_rotation_grace: Duration::minutes(10),
            clock: Arc::new(SystemClock),
            create_db: true,
        }
    }
}

/// Something that happened that other parts of the process must react to at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A persona was revoked: every credential and open connection of it must end.
    PersonaRevoked {
        /// Its tenant.
        tenant: TenantId,
        /// The persona.
        persona: PersonaId,
    },
    /// An API key was revoked.
    KeyRevoked {
        /// Its tenant.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
}

/// Shared services handed to every operation.
pub struct Env {
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The master key.
    pub master: MasterKey,
    pepper: Zeroizing<[u8; 32]>,
    /// JWT verification, when configured.
    pub jwt: Option<JwtConfig>,
    /// Default grace window of a key rotation.
    pub key_rotation_grace: Duration,
    /// Events for connection-holding surfaces.
    pub events: broadcast::Sender<Event>,
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
}

/// The result of a call, as every surface renders it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The operation ran; here is its output.
    Done {
        /// The operation's output.
        output: Value,
    },
    /// The operation waits for a second person.
    PendingApproval {
        /// The approval request.
        request_id: String,
    },
    /// The caller may not do this.
    Denied {
        /// Why, in words a person can act on.
        reason: String,
    },
}

/// What `tenant create` hands back, once.
#[derive(Debug, Serialize)]
pub struct TenantCreated {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// Its first admin persona.
    pub persona_id: PersonaId,
    /// That persona's API key: shown exactly once.
    pub api_key: String,
}

/// The tenantops core.
#[derive(Clone)]
pub struct Core {
    env: Arc<Env>,
}

impl Core {
    /// Opens the database (migrating it), loads the master key and builds the core.
    pub async fn open(config: Config) -> Result<Self> {
        let store = Store::open(&config.db_path, config.create_db).await?;
        let master = match config.master_key {
            MasterKeySource::Key(k) => k,
            MasterKeySource::File(path) => {
                let create = store.is_empty().await?;
                MasterKey::load_or_create(&path, create)?
            }
        };
        let pepper = master.api_key_pepper();
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            env: Arc::new(Env {
                store,
                clock: config.clock,
                master,
                pepper,
                jwt: config.jwt,
                key_rotation_grace: config.key_rotation_grace,
                events,
            }),
        })
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
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.env.events.subscribe()
    }

    /// Creates a tenant, its first admin persona (human, role `tenant-admin`) and that persona's
    /// API key. A platform action: run by whoever operates the deployment.
    pub async fn create_tenant(
        &self,
        name: &str,
        admin_email: Option<&str>,
    ) -> Result<TenantCreated> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::bad_input(
                "name",
                "give the tenant a name of 1 to 200 characters",
            ));
        }
        if let Some(e) = admin_email {
            ops::members::validate_email("admin_email", e)?;
        }
        let env = &self.env;
        let now = env.clock.now();
        let tenant = TenantId::generate();
        let signer = ledger::signer(&env.master, &tenant)?;
        let mut tx = env.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, created_at, audit_verifier) VALUES (?, ?, ?, ?)",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(to_millis(now))
        .bind(signer.verifier_key())
        .execute(&mut *tx)
        .await?;
        ledger::init(&mut tx, &tenant, &signer).await?;
        let persona = ops::members::insert_persona(
            &mut tx,
            &tenant,
            now,
            ops::members::NewPersona {
                handle: "admin".into(),
                kind: PersonaKind::Human,
                display_name: Some("Tenant administrator".into()),
                email: admin_email.map(str::to_owned),
                bu: None,
                roles: vec!["tenant-admin".into()],
            },
        )
        .await?;
        let scopes: ScopeSet = roles::scopes_of(["tenant-admin"]);
        let issued = ops::keys::insert_key(
            &mut tx,
            env,
            &tenant,
            &persona,
            &persona,
            "provisioning",
            &scopes,
            None,
            now,
        )
        .await?;
        let actor = Actor {
            persona: None,
            kind: None,
            via: "platform".into(),
            surface: "cli".into(),
        };
        ledger::record(
            &mut tx,
            &tenant,
            &signer,
            now,
            vec![Draft {
                actor,
                op: "tenant.create".into(),
                outcome: "done".into(),
                detail: json!({
                    "name": name,
                    "admin_persona": persona,
                    "admin_email": admin_email,
                    "key_id": issued.key_id,
                }),
            }],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(tenant = %tenant, persona = %persona, "tenant created");
        Ok(TenantCreated {
            tenant_id: tenant,
            persona_id: persona,
            api_key: issued.secret.expose().to_owned(),
        })
    }

    /// Turns a credential (an API key `tops_…` or a JWT) into a principal. Every refusal of a
    /// credential that names a tenant is written to that tenant's ledger.
    pub async fn authenticate(&self, credential: &str, surface: Surface) -> Result<Principal> {
        let credential = credential.trim();
        if credential.is_empty() {
            return Err(Error::Unauthenticated(
                "no credential: pass an API key (tops_…) or a JWT".into(),
            ));
        }
        if credential.starts_with(crate::apikey::PREFIX) {
            self.authenticate_key(credential, surface).await
        } else if credential.split('.').count() == 3 {
            self.authenticate_jwt(credential, surface).await
        } else {
            Err(Error::Unauthenticated(
                "unrecognised credential: expected a tenantops API key (tops_…) or a JWT".into(),
            ))
        }
    }

    async fn authenticate_key(&self, text: &str, surface: Surface) -> Result<Principal> {
        let env = &self.env;
        let secret =
            ApiKeySecret::parse(text).map_err(|e| Error::Unauthenticated(e.to_string()))?;
        let digest = secret.digest(env.pepper());
        type Row = (
            Vec<u8>,
            String,
            String,
            Option<i64>,
            String,
            String,
            Option<i64>,
            Option<i64>,
            String,
            String,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.digest, s.tenant_id, s.key_id, s.not_after, k.persona_id, k.scopes, \
                    k.expires_at, k.revoked_at, p.kind, p.status \
             FROM api_key_secrets s \
             JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.key_id \
             JOIN personas p ON p.tenant_id = k.tenant_id AND p.id = k.persona_id \
             WHERE s.digest = ?",
        )
        .bind(&digest[..])
        .fetch_optional(env.store.pool())
        .await?;
        let Some((
            stored,
            tenant,
            key_id,
            not_after,
            persona,
            scopes,
            expires_at,
            revoked_at,
            kind,
            status,
        )) = row
        else {
            return Err(Error::Unauthenticated(
                "unknown API key: it was never issued here, or it was deleted".into(),
            ));
        };
        // The index lookup already matched; compare again in constant time as defence in depth.
        if !bool::from(stored.as_slice().ct_eq(&digest[..])) {
            return Err(Error::Unauthenticated("unknown API key".into()));
        }
        let tenant = TenantId::from_db(tenant);
        let key_id = KeyId::from_db(key_id);
        let persona = PersonaId::from_db(persona);
        let kind = PersonaKind::parse(&kind)
            .ok_or_else(|| Error::Internal(format!("persona {persona} has unknown kind")))?;
        let now = to_millis(env.clock.now());
        let refusal = if status != "active" {
            Some("the key's persona has been revoked")
        } else if revoked_at.is_some() {
            Some("the API key has been revoked")
        } else if expires_at.is_some_and(|e| e <= now) {
            Some("the API key has expired")
        } else if not_after.is_some_and(|t| t <= now) {
            Some("this secret was replaced by a rotation and its grace window has ended")
        } else {
            None
        };
        let valid_until = match (expires_at, not_after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(crate::clock::from_millis);
        let principal = Principal {
            scopes: ScopeSet::new(),
            tenant,
            persona,
            kind,
            via: Via::ApiKey { key_id },
            surface,
            valid_until,
        };
        if let Some(reason) = refusal {
            self.record_refusal(&principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let role_scopes = self
            .role_scopes(&principal.tenant, &principal.persona)
            .await?;
        let key_scopes = scopes_from_json(&scopes);
        let scopes = key_scopes.intersection(&role_scopes).copied().collect();
        if let Via::ApiKey { key_id } = &principal.via {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE tenant_id = ? AND id = ?")
                .bind(now)
                .bind(principal.tenant.as_str())
                .bind(key_id.as_str())
                .execute(env.store.pool())
                .await?;
        }
        Ok(Principal {
            scopes,
            ..principal
        })
    }

    async fn authenticate_jwt(&self, token: &str, surface: Surface) -> Result<Principal> {
        let env = &self.env;
        let config = env.jwt.as_ref().ok_or_else(|| {
            Error::Unauthenticated("JWT authentication is not configured on this server".into())
        })?;
        let claims = jwt::verify(config, token, env.clock.now())?;
        let (Some(tenant), Some(persona)) = (
            TenantId::parse(&claims.tenant_id),
            PersonaId::parse(&claims.sub),
        ) else {
            return Err(Error::Unauthenticated(
                "JWT claims `tenant_id` and `sub` must be a tenant id and a persona id".into(),
            ));
        };
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT kind, status FROM personas WHERE tenant_id = ? AND id = ?")
                .bind(tenant.as_str())
                .bind(persona.as_str())
                .fetch_optional(env.store.pool())
                .await?;
        let Some((kind, status)) = row else {
            return Err(Error::Unauthenticated(
                "JWT names a persona that does not exist in its tenant".into(),
            ));
        };
        let kind = PersonaKind::parse(&kind)
            .ok_or_else(|| Error::Internal(format!("persona {persona} has unknown kind")))?;
        let principal = Principal {
            tenant,
            persona,
            kind,
            scopes: ScopeSet::new(),
            via: Via::Jwt,
            surface,
            valid_until: Some(crate::clock::from_millis(claims.exp.saturating_mul(1000))),
        };
        if status != "active" {
            let reason = "the token's persona has been revoked";
            self.record_refusal(&principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let mut scopes = self
            .role_scopes(&principal.tenant, &principal.persona)
            .await?;
        if let Some(narrow) = claims.narrowed_scopes() {
            scopes = scopes.intersection(&narrow).copied().collect();
        }
        Ok(Principal {
            scopes,
            ..principal
        })
    }

    /// The union of the scopes of a persona's current roles.
    async fn role_scopes(&self, tenant: &TenantId, persona: &PersonaId) -> Result<ScopeSet> {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM role_assignments WHERE tenant_id = ? AND persona_id = ?",
        )
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .fetch_all(self.env.store.pool())
        .await?;
        Ok(roles::scopes_of(roles.iter().map(String::as_str)))
    }

    async fn record_refusal(&self, principal: &Principal, reason: &str) -> Result<()> {
        self.record(principal, "auth", "denied", json!({ "reason": reason }))
            .await
    }

    /// Writes one audit entry in its own transaction.
    async fn record(
        &self,
        principal: &Principal,
        op: &str,
        outcome: &str,
        detail: Value,
    ) -> Result<()> {
        let env = &self.env;
        let signer = ledger::signer(&env.master, &principal.tenant)?;
        let mut tx = env.store.begin_write().await?;
        ledger::record(
            &mut tx,
            &principal.tenant,
            &signer,
            env.clock.now(),
            vec![Draft {
                actor: actor_of(principal),
                op: op.to_owned(),
                outcome: outcome.to_owned(),
                detail,
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-checks a principal that may have been authenticated a while ago (a long-lived MCP or
    /// chat session): its persona must still be active, its key unrevoked, its credential
    /// unexpired; its scopes shrink to what its persona's roles grant now.
    pub async fn refresh(&self, principal: &Principal) -> Result<Principal> {
        let env = &self.env;
        let now = env.clock.now();
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM personas WHERE tenant_id = ? AND id = ?")
                .bind(principal.tenant.as_str())
                .bind(principal.persona.as_str())
                .fetch_optional(env.store.pool())
                .await?;
        let mut refusal = match status.as_deref() {
            Some("active") => None,
            Some(_) => Some("the persona has been revoked"),
            None => Some("the persona no longer exists"),
        };
        if refusal.is_none() && principal.valid_until.is_some_and(|t| t <= now) {
            refusal = Some("the credential has expired");
        }
        if refusal.is_none()
            && let Via::ApiKey { key_id } = &principal.via
        {
            let revoked: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT revoked_at FROM api_keys WHERE tenant_id = ? AND id = ?",
            )
            .bind(principal.tenant.as_str())
            .bind(key_id.as_str())
            .fetch_optional(env.store.pool())
            .await?;
            if !matches!(revoked, Some(None)) {
                refusal = Some("the API key has been revoked");
            }
        }
        if let Some(reason) = refusal {
            self.record_refusal(principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let roles = self
            .role_scopes(&principal.tenant, &principal.persona)
            .await?;
        Ok(Principal {
            scopes: principal.scopes.intersection(&roles).copied().collect(),
            ..principal.clone()
        })
    }

    /// Runs operation `op` for `principal`: the single dispatch function of every surface.
    ///
    /// The principal is re-checked first ([`Core::refresh`]). A missing scope yields
    /// [`Outcome::Denied`]; an operation error is returned as `Err`. Either way, and on success,
    /// exactly one audit entry is written — on success in the operation's own transaction,
    /// otherwise in a transaction of its own after the rollback.
    pub async fn call(&self, principal: &Principal, op: &str, input: Value) -> Result<Outcome> {
        let env = &self.env;
        let principal = &self.refresh(principal).await?;
        let Some(spec) = catalogue::find(op) else {
            let shown: String = op.chars().take(80).collect();
            self.record(
                principal,
                "unknown",
                "invalid",
                json!({ "requested": shown }),
            )
            .await?;
            return Err(Error::UnknownOperation(shown));
        };
        let input_len = input.to_string().len();
        if input_len > MAX_INPUT_BYTES {
            self.record(
                principal,
                spec.name,
                "invalid",
                json!({ "error": "input too large" }),
            )
            .await?;
            return Err(Error::bad_input(
                "input",
                format!("input is {input_len} bytes; the limit is {MAX_INPUT_BYTES}"),
            ));
        }
        if let Some(scope) = spec.scope
            && !principal.has(scope)
        {
            let reason = format!(
                "`{}` needs scope `{scope}`, which this credential does not carry; ask an admin \
                 for a role or key that grants it",
                spec.name
            );
            self.record(
                principal,
                spec.name,
                "denied",
                json!({ "reason": reason, "input": input }),
            )
            .await?;
            return Ok(Outcome::Denied { reason });
        }
        let signer = ledger::signer(&env.master, &principal.tenant)?;
        let now = env.clock.now();
        let tx = env.store.begin_write().await?;
        let mut ctx = OpCtx::new(tx, principal.clone(), now, env.clone());
        let result = (spec.run)(&mut ctx, input.clone()).await;
        let (mut tx, mut detail, events) = ctx.into_parts();
        match result {
            Ok(output) => {
                detail.insert("input".into(), input);
                ledger::record(
                    &mut tx,
                    &principal.tenant,
                    &signer,
                    now,
                    vec![Draft {
                        actor: actor_of(principal),
                        op: spec.name.to_owned(),
                        outcome: "done".into(),
                        detail: Value::Object(detail),
                    }],
                )
                .await?;
                tx.commit().await?;
                for event in events {
                    env.publish(event);
                }
                Ok(Outcome::Done { output })
            }
            Err(err) => {
                tx.rollback().await?;
                let outcome = match err {
                    Error::Denied { .. } => "denied",
                    Error::BadInput { .. } => "invalid",
                    _ => "failed",
                };
                self.record(
                    principal,
                    spec.name,
                    outcome,
                    json!({ "input": input, "error": err.to_string() }),
                )
                .await?;
                match err {
                    Error::Denied { reason } => Ok(Outcome::Denied { reason }),
                    other => Err(other),
                }
            }
        }
    }
}

/// How a principal appears in the ledger.
pub(crate) fn actor_of(p: &Principal) -> Actor {
    Actor {
        persona: Some(p.persona.to_string()),
        kind: Some(p.kind.as_str().to_owned()),
        via: p.via.to_string(),
        surface: p.surface.as_str().to_owned(),
    }
}

impl Core {
    /// The verifier key the master key derives for a tenant: the trust anchor of its ledger.
    pub fn audit_verifier_key(&self, tenant: &TenantId) -> Result<String> {
        Ok(ledger::signer(&self.env.master, tenant)?.verifier_key())
    }

    /// Verifies a tenant's whole ledger in the database: chain, Merkle tree and signatures.
    pub async fn verify_audit(
        &self,
        tenant: &TenantId,
    ) -> Result<std::result::Result<ledger::verify::Report, ledger::verify::Failure>> {
        let key = self.audit_verifier_key(tenant)?;
        ledger::verify_db(self.env.store.pool(), tenant, &key).await
    }

    /// Exports a tenant's ledger (entries, checkpoints, verifier key) to `dir`.
    pub async fn export_audit(&self, tenant: &TenantId, dir: &std::path::Path) -> Result<u64> {
        ledger::export(self.env.store.pool(), tenant, dir).await
    }
}
