//! [`Core`]: opening the store, authenticating callers, and the single dispatch function through
//! which every operation runs — scope check, one transaction, one audit entry.

use crate::apikey::ApiKeySecret;
use crate::approvals;
use crate::catalogue::{self, Effects, OpCtx, OpSpec, Risk};
use crate::clock::{Clock, SystemClock, to_millis};
use crate::error::{Error, Result};
use crate::ids::{KeyId, PersonaId, TenantId};
use crate::jwt::{self, JwtConfig};
use crate::ledger::{self, Actor, AuditOutcome, Draft};
use crate::notify::{LogNotifier, Notification, Notifier};
use crate::principal::{PersonaKind, PersonaStatus, Principal, Surface, Via};
use crate::proof::{KeyDecisions, Proof};
use crate::refs;
use crate::scope::ScopeSet;
use crate::secrets::MasterKey;
use crate::store::{self, Store, Tx};
use crate::{keys, members, roles};
use chrono::Duration;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

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
    /// Create the database when it does not exist (provisioning); otherwise a missing file is a
    /// configuration error, not a silent new empty database.
    pub create_db: bool,
}

impl Config {
    /// Defaults for a database file: key file beside it, no JWT, 10-minute grace, system clock.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        let db_path: PathBuf = db_path.into();
        let export_dir = db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .join("exports");
        let mut key_path = db_path.clone().into_os_string();
        key_path.push(".master-key");
        Self {
            db_path,
            master_key: MasterKeySource::File(key_path.into()),
            jwt: None,
            key_rotation_grace: Duration::minutes(10),
            key_decisions: KeyDecisions::default(),
            clock: Arc::new(SystemClock),
            notifiers: Vec::new(),
            export_dir,
            hints: crate::hints::Hints::default(),
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
    /// An API key was rotated: its previous secret now ends with the grace window.
    KeyRotated {
        /// Its tenant.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
    /// A request reached its quorum (or broke the glass) and must now execute.
    RequestApproved {
        /// Its tenant.
        tenant: TenantId,
        /// The request.
        request_id: String,
    },
    /// A request reached a final state.
    RequestFinished {
        /// Its tenant.
        tenant: TenantId,
        /// The request.
        request_id: String,
    },
    /// A publication of the tenant's signed checkpoint was queued (`audit.publish_checkpoint`):
    /// the server's publisher posts it now rather than at its next pass.
    CheckpointPublicationQueued {
        /// Its tenant.
        tenant: TenantId,
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
        /// What will happen once approved.
        summary: String,
        /// Hex SHA-256 of canonical {tenant, operation, input, requester}, shown to approvers.
        digest: String,
        /// When the request expires if undecided (RFC 3339).
        expires_at: String,
        /// Approvals needed.
        quorum: u32,
    },
    /// The caller may not do this.
    Denied {
        /// Why, in words a person can act on.
        reason: String,
    },
}

/// How long a new chat link waits before it counts for decisions, unless the tenant says
/// otherwise (`tenant.update_settings`).
pub const DEFAULT_LINK_MIN_AGE_SECS: i64 = 24 * 3600;

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
        let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
        notifiers.extend(config.notifiers);
        Ok(Self {
            env: Arc::new(Env {
                store,
                clock: config.clock,
                master,
                pepper,
                jwt: config.jwt,
                key_rotation_grace: config.key_rotation_grace,
                key_decisions: config.key_decisions,
                events,
                notifiers,
                export_dir: config.export_dir,
                hints: config.hints,
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
        self.create_tenant_with(name, admin_email, false).await
    }

    /// [`Core::create_tenant`], for a demo tenant when `demo` is set: the chat sandbox may play
    /// anyone there, and a new chat link counts for decisions at once.
    pub async fn create_tenant_with(
        &self,
        name: &str,
        admin_email: Option<&str>,
        demo: bool,
    ) -> Result<TenantCreated> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::bad_input(
                "name",
                "give the tenant a name of 1 to 200 characters",
            ));
        }
        if let Some(e) = admin_email {
            members::validate_email("admin_email", e)?;
        }
        let env = &self.env;
        let now = env.clock.now();
        let tenant = TenantId::generate();
        let signer = ledger::signer(&env.master, &tenant)?;
        let mut tx = env.store.begin_write().await?;
        crate::store::tenants::insert(
            &mut tx,
            &crate::store::tenants::NewTenant {
                id: &tenant,
                name,
                created_at: to_millis(now),
                audit_verifier: &signer.verifier_key(),
                demo,
                chat_link_min_age_secs: if demo { 0 } else { DEFAULT_LINK_MIN_AGE_SECS },
            },
        )
        .await?;
        ledger::init(&mut tx, &tenant, &signer).await?;
        let persona = members::insert_persona(
            &mut tx,
            &tenant,
            now,
            members::NewPersona {
                handle: "admin".into(),
                kind: PersonaKind::Human,
                display_name: Some("Tenant administrator".into()),
                email: admin_email.map(str::to_owned),
                bu: None,
                roles: vec![members::ADMIN_ROLE.into()],
            },
        )
        .await?;
        let scopes: ScopeSet = roles::scopes_of([members::ADMIN_ROLE]);
        // The first admin's own credential: the platform hands it to them and nobody else.
        let issued = keys::insert_key(
            &mut tx,
            env,
            &tenant,
            &persona,
            &persona,
            "provisioning",
            &scopes,
            None,
            now,
            Proof::Own,
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
                outcome: AuditOutcome::Done,
                detail: json!({
                    "name": name,
                    "demo": demo,
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
        let mut tx = env.store.begin_read().await?;
        let Some(cred) = store::keys::credential(&mut tx, &digest[..]).await? else {
            return Err(Error::Unauthenticated(
                "unknown API key: it was never issued here, or it was deleted".into(),
            ));
        };
        // The index lookup already matched; compare again in constant time as defence in depth.
        if !bool::from(cred.digest.as_slice().ct_eq(&digest[..])) {
            return Err(Error::Unauthenticated("unknown API key".into()));
        }
        let now = to_millis(env.clock.now());
        let refusal = if cred.status != PersonaStatus::Active {
            Some("the key's persona has been revoked")
        } else if cred.revoked_at.is_some() {
            Some("the API key has been revoked")
        } else if cred.expires_at.is_some_and(|e| e <= now) {
            Some("the API key has expired")
        } else if cred.not_after.is_some_and(|t| t <= now) {
            Some("this secret was replaced by a rotation and its grace window has ended")
        } else {
            None
        };
        let valid_until = match (cred.expires_at, cred.not_after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(crate::clock::from_millis);
        let principal = Principal {
            scopes: ScopeSet::new(),
            tenant: cred.tenant,
            persona: cred.persona,
            kind: cred.kind,
            via: Via::ApiKey {
                key_id: cred.key.clone(),
            },
            surface,
            valid_until,
            secret_digest: Some(digest),
        };
        if let Some(reason) = refusal {
            tx.rollback().await?;
            self.record_refusal(&principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let role_scopes =
            roles::role_scopes_on(&mut tx, &principal.tenant, &principal.persona).await?;
        tx.rollback().await?;
        let scopes = cred.scopes.intersection(&role_scopes).copied().collect();
        let mut tx = env.store.begin_write().await?;
        store::keys::touch(&mut tx, &principal.tenant, &cred.key, now).await?;
        tx.commit().await?;
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
        let claims = jwt::decode(config, token)?;
        let (Some(tenant), Some(persona)) = (
            TenantId::parse(&claims.tenant_id),
            PersonaId::parse(&claims.sub),
        ) else {
            return Err(Error::Unauthenticated(
                "JWT claims `tenant_id` and `sub` must be a tenant id and a persona id".into(),
            ));
        };
        let mut tx = env.store.begin_read().await?;
        let found = store::personas::kind_and_status(&mut tx, &tenant, &persona).await?;
        tx.rollback().await?;
        let Some((kind, status)) = found else {
            return Err(Error::Unauthenticated(
                "JWT names a persona that does not exist in its tenant".into(),
            ));
        };
        let principal = Principal {
            tenant,
            persona,
            kind,
            scopes: ScopeSet::new(),
            via: Via::Jwt,
            surface,
            valid_until: Some(crate::clock::from_millis(claims.exp.saturating_mul(1000))),
            secret_digest: None,
        };
        // The signature is valid, so the tenant is known: every refusal from here is recorded.
        if let Err(reason) = jwt::check_lifetime(config, &claims, env.clock.now()) {
            self.record_refusal(&principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        if status != PersonaStatus::Active {
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

    /// The union of the scopes of a persona's current roles, read now.
    pub(crate) async fn role_scopes(
        &self,
        tenant: &TenantId,
        persona: &PersonaId,
    ) -> Result<ScopeSet> {
        let mut tx = self.env.store.begin_read().await?;
        let scopes = roles::role_scopes_on(&mut tx, tenant, persona).await?;
        tx.rollback().await?;
        Ok(scopes)
    }

    async fn record_refusal(&self, principal: &Principal, reason: &str) -> Result<()> {
        self.record(
            principal,
            "auth",
            AuditOutcome::Denied,
            json!({ "reason": reason }),
        )
        .await
    }

    /// Writes one audit entry in its own transaction.
    async fn record(
        &self,
        principal: &Principal,
        op: &str,
        outcome: AuditOutcome,
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
                outcome,
                detail,
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-checks a principal that may have been authenticated a while ago (a long-lived MCP or
    /// chat session): its persona must still be active, its key unrevoked, its credential
    /// unexpired; its scopes shrink to what its persona's roles grant now, and its
    /// [`Principal::valid_until`] moves up to the end of a rotation's grace window when its
    /// secret was rotated away since.
    pub async fn refresh(&self, principal: &Principal) -> Result<Principal> {
        let env = &self.env;
        let now = env.clock.now();
        let tenant = &principal.tenant;
        let mut tx = env.store.begin_read().await?;
        let status = store::personas::status(&mut tx, tenant, &principal.persona).await?;
        let mut refusal = match status {
            Some(PersonaStatus::Active) => None,
            Some(PersonaStatus::Revoked) => Some("the persona has been revoked"),
            None => Some("the persona no longer exists"),
        };
        if refusal.is_none() && principal.valid_until.is_some_and(|t| t <= now) {
            refusal = Some("the credential has expired");
        }
        let mut valid_until = principal.valid_until;
        if refusal.is_none()
            && let Some(digest) = &principal.secret_digest
        {
            match store::keys::secret_not_after(&mut tx, tenant, &digest[..]).await? {
                Some(None) => {}
                Some(Some(t)) if t > to_millis(now) => {
                    // A rotation since sign-in gave this secret an end.
                    let end = crate::clock::from_millis(t);
                    valid_until = Some(valid_until.map_or(end, |v| v.min(end)));
                }
                Some(Some(_)) => {
                    refusal = Some(
                        "this secret was replaced by a rotation and its grace window has ended",
                    )
                }
                None => refusal = Some("this secret no longer exists"),
            }
        }
        if refusal.is_none()
            && let Via::ApiKey { key_id } = &principal.via
            && !matches!(
                store::keys::revoked_at(&mut tx, tenant, key_id).await?,
                Some(None)
            )
        {
            refusal = Some("the API key has been revoked");
        }
        let roles = match refusal {
            None => Some(roles::role_scopes_on(&mut tx, tenant, &principal.persona).await?),
            Some(_) => None,
        };
        tx.rollback().await?;
        if let Some(reason) = refusal {
            self.record_refusal(principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let roles = roles.unwrap_or_default();
        Ok(Principal {
            scopes: principal.scopes.intersection(&roles).copied().collect(),
            valid_until,
            ..principal.clone()
        })
    }

    /// Runs operation `op` for `principal`: the single dispatch function of every surface.
    ///
    /// The principal is re-checked first ([`Core::refresh`]). A missing scope yields
    /// [`Outcome::Denied`]. A destructive operation, or one an approval route matches, is not
    /// run: a request bound to its digest is stored and [`Outcome::PendingApproval`] returned.
    /// An operation error is returned as `Err`. In every case exactly one audit entry is
    /// written — on success in the operation's own transaction, otherwise in a transaction of
    /// its own after the rollback.
    pub async fn call(&self, principal: &Principal, op: &str, input: Value) -> Result<Outcome> {
        let env = &self.env;
        let principal = &self.refresh(principal).await?;
        let Some(spec) = catalogue::find(op) else {
            let shown: String = op.chars().take(80).collect();
            self.record(
                principal,
                "unknown",
                AuditOutcome::Invalid,
                json!({ "requested": shown }),
            )
            .await?;
            return Err(Error::UnknownOperation(shown));
        };
        // Serialised once: its size for the limit and, for a bulk operation, its digest for the
        // audit entry. The value itself is owned here until the call no longer needs it.
        let value = input;
        let input = &CallInput::of(spec, &value);
        let input_len = input.bytes;
        let limit = spec.max_input_bytes;
        if input_len > limit {
            self.record(
                principal,
                spec.name,
                AuditOutcome::Invalid,
                json!({ "error": "input too large" }),
            )
            .await?;
            return Err(Error::bad_input(
                "input",
                format!("input is {input_len} bytes; the limit is {limit}"),
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
                AuditOutcome::Denied,
                json!({ "reason": reason, "input": input.audited() }),
            )
            .await?;
            return Ok(Outcome::Denied { reason });
        }
        let now = env.clock.now();
        let read_only =
            spec.risk == Risk::Read && !self.has_routes(&principal.tenant, spec.name).await?;
        if read_only {
            return self.call_read(principal, spec, input, now).await;
        }
        // One write transaction holds the operation and its audit entry, whatever the outcome:
        // the operation runs inside a savepoint that is rolled back if it fails, and the
        // failure's entry is committed in its place.
        let mut tx = env.store.begin_write().await?;
        sqlx::query("SAVEPOINT op").execute(&mut *tx).await?;
        let mut ctx = OpCtx::new(tx, principal.clone(), now, env.clone());
        // References are resolved to ids first: routing, the gate, the digest, the operation
        // and its audit entry all see the same objects, however the caller named them.
        let canonical =
            refs::canonicalise(&mut ctx.tx, env, &principal.tenant, &spec.refs, input.value).await;
        let (step, canonical) = match canonical {
            Err(e) => (Err(e), None),
            Ok((canon_value, resolved)) => {
                ctx.names = refs::names(&resolved);
                // Serialised again only when a reference changed it (never a bulk input).
                let owned;
                let canon = match &canon_value {
                    std::borrow::Cow::Borrowed(_) => input,
                    std::borrow::Cow::Owned(v) => {
                        owned = CallInput::of(spec, v);
                        &owned
                    }
                };
                let step = match self.gate(&mut ctx, spec, canon).await {
                    Ok(Some(pending)) => Ok(Step::Pending(Box::new(pending))),
                    Ok(None) => (spec.run)(&mut ctx, canon.value).await.map(Step::Done),
                    Err(e) => Err(e),
                };
                (step, Some(canon.audited()))
            }
        };
        let audited = canonical.unwrap_or_else(|| input.audited());
        let (mut tx, mut detail, effects) = ctx.into_parts();
        let signer = ledger::signer(&env.master, &principal.tenant)?;
        match step {
            Ok(Step::Pending(pending)) => {
                let (outcome, notification) = *pending;
                sqlx::query("RELEASE op").execute(&mut *tx).await?;
                tx.commit().await?;
                env.notify(&notification);
                Ok(outcome)
            }
            Ok(Step::Done(output)) => {
                sqlx::query("RELEASE op").execute(&mut *tx).await?;
                detail.insert("input".into(), audited);
                let draft = Draft {
                    actor: actor_of(principal),
                    op: spec.name.to_owned(),
                    outcome: AuditOutcome::Done,
                    detail: Value::Object(detail),
                };
                ledger::record(&mut tx, &principal.tenant, &signer, now, vec![draft]).await?;
                // Nothing needs the input any more. Freeing a large one takes milliseconds, so
                // it is freed here while the commit is written and synced.
                let (committed, ()) = tokio::join!(tx.commit(), async move { drop(value) });
                committed?;
                let output = self.after_commit(effects, output).await;
                Ok(Outcome::Done { output })
            }
            Err(err) => {
                sqlx::query("ROLLBACK TO op").execute(&mut *tx).await?;
                sqlx::query("RELEASE op").execute(&mut *tx).await?;
                let draft = failure_draft(principal, spec, &audited, &err);
                ledger::record(&mut tx, &principal.tenant, &signer, now, vec![draft]).await?;
                tx.commit().await?;
                match err {
                    Error::Denied { reason } => Ok(Outcome::Denied { reason }),
                    other => Err(other),
                }
            }
        }
    }

    /// Whether any approval route names `op` in the tenant.
    async fn has_routes(&self, tenant: &TenantId, op: &str) -> Result<bool> {
        let mut tx = self.env.store.begin_read().await?;
        let routed = approvals::has_routes(&mut tx, tenant, op).await?;
        tx.rollback().await?;
        Ok(routed)
    }

    /// A read-only call runs in a read transaction (a consistent snapshot that never holds the
    /// write lock); its output is released only after its audit entry has committed.
    async fn call_read(
        &self,
        principal: &Principal,
        spec: &OpSpec,
        input: &CallInput<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Outcome> {
        let env = &self.env;
        let tx = env.store.begin_read().await?;
        let mut ctx = OpCtx::new(tx, principal.clone(), now, env.clone());
        let canonical =
            refs::canonicalise(&mut ctx.tx, env, &principal.tenant, &spec.refs, input.value).await;
        let (result, audited) = match canonical {
            Err(e) => (Err(e), input.audited()),
            Ok((canon_value, resolved)) => {
                ctx.names = refs::names(&resolved);
                let audited = match &canon_value {
                    std::borrow::Cow::Borrowed(_) => input.audited(),
                    std::borrow::Cow::Owned(v) => CallInput::of(spec, v).audited(),
                };
                ((spec.run)(&mut ctx, &canon_value).await, audited)
            }
        };
        let (tx, mut detail, _) = ctx.into_parts();
        tx.rollback().await?;
        match result {
            Ok(output) => {
                detail.insert("input".into(), audited);
                self.record(
                    principal,
                    spec.name,
                    AuditOutcome::Done,
                    Value::Object(detail),
                )
                .await?;
                Ok(Outcome::Done { output })
            }
            Err(err) => {
                let draft = failure_draft(principal, spec, &audited, &err);
                self.record(principal, spec.name, draft.outcome, draft.detail)
                    .await?;
                match err {
                    Error::Denied { reason } => Ok(Outcome::Denied { reason }),
                    other => Err(other),
                }
            }
        }
    }

    /// The two-person gate. For a destructive call, one an approval route matches, or one the
    /// operation says needs a second person now ([`crate::Operation::second_person`]), stores a
    /// request bound to the (canonical) input with its audit entry in `ctx.tx` and returns the
    /// outcome and the notification to send once committed. Otherwise leaves the transaction
    /// untouched and returns `None`.
    async fn gate(
        &self,
        ctx: &mut OpCtx,
        spec: &OpSpec,
        input: &CallInput<'_>,
    ) -> Result<Option<(Outcome, Notification)>> {
        let tenant = ctx.tenant().clone();
        let routed = approvals::has_routes(&mut ctx.tx, &tenant, spec.name).await?;
        let second_person = match spec.guard {
            Some(guard) => guard(ctx, input.value).await?,
            None => None,
        };
        if spec.risk != Risk::Destructive && !routed && second_person.is_none() {
            return Ok(None);
        }
        let mut plan = (spec.plan)(ctx, input.value).await?;
        let route = approvals::matching_route(
            &mut ctx.tx,
            &self.env,
            &tenant,
            spec,
            &plan.facts,
            input.value,
        )
        .await?;
        if spec.risk != Risk::Destructive && route.is_none() && second_person.is_none() {
            return Ok(None);
        }
        if let Some(why) = &second_person {
            plan.facts
                .insert("second_person".into(), Value::String(why.clone()));
            plan.summary = format!("{} — {why}", plan.summary);
        }
        let principal = ctx.principal.clone();
        let (stored, pending) = approvals::create(
            &mut ctx.tx,
            &principal,
            spec.name,
            input.value,
            &plan.facts,
            &plan.summary,
            route.as_ref(),
            ctx.now,
        )
        .await?;
        let approvers = approvals::eligible_approvers(&mut ctx.tx, &tenant, &stored).await?;
        let signer = ledger::signer(&self.env.master, &tenant)?;
        ledger::record(
            &mut ctx.tx,
            &tenant,
            &signer,
            ctx.now,
            vec![Draft {
                actor: actor_of(&principal),
                op: spec.name.to_owned(),
                outcome: AuditOutcome::PendingApproval,
                detail: json!({
                    "input": input.audited(),
                    "request_id": pending.request_id,
                    "digest": pending.digest,
                    "facts": plan.facts,
                    "route": route.as_ref().map(|r| r.name.clone()),
                    "quorum": pending.quorum,
                }),
            }],
        )
        .await?;
        let notification = Notification::Requested {
            tenant,
            request_id: pending.request_id.clone(),
            operation: spec.name.to_owned(),
            summary: pending.summary.clone(),
            approvers,
        };
        let outcome = Outcome::PendingApproval {
            request_id: pending.request_id,
            summary: pending.summary,
            digest: pending.digest,
            expires_at: pending.expires_at,
            quorum: pending.quorum,
        };
        Ok(Some((outcome, notification)))
    }

    /// Runs an operation in `ctx` and commits it with its audit entry (and, for an approved
    /// request, its `succeeded` state). On error the transaction is rolled back.
    async fn run_and_commit(
        &self,
        mut ctx: OpCtx,
        spec: &OpSpec,
        input: Value,
        extra: Map<String, Value>,
        request: Option<&str>,
    ) -> Result<(Value, Effects)> {
        let result = (spec.run)(&mut ctx, &input).await;
        let principal = ctx.principal.clone();
        let now = ctx.now;
        let (mut tx, mut detail, effects) = ctx.into_parts();
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                tx.rollback().await?;
                return Err(err);
            }
        };
        detail.insert("input".into(), CallInput::of(spec, &input).audited());
        detail.extend(extra);
        let signer = ledger::signer(&self.env.master, &principal.tenant)?;
        ledger::record(
            &mut tx,
            &principal.tenant,
            &signer,
            now,
            vec![Draft {
                actor: actor_of(&principal),
                op: spec.name.to_owned(),
                outcome: AuditOutcome::Done,
                detail: Value::Object(detail),
            }],
        )
        .await?;
        if let Some(id) = request {
            let done = store::approvals::succeed(
                &mut tx,
                &principal.tenant,
                id,
                &output.to_string(),
                to_millis(now),
            )
            .await?;
            if !done {
                tx.rollback().await?;
                return Err(Error::Conflict(format!(
                    "request {id} is no longer executing"
                )));
            }
        }
        tx.commit().await?;
        Ok((output, effects))
    }

    /// Publishes an operation's events and notifications, and executes requests it approved.
    /// When it approved one and its output shows that request, the output is refreshed to show
    /// the request after execution.
    async fn after_commit(&self, effects: Effects, mut output: Value) -> Value {
        for n in &effects.notifications {
            self.env.notify(n);
        }
        for event in effects.events {
            if let Event::RequestApproved { tenant, request_id } = &event {
                crate::fault::point(crate::fault::AFTER_APPROVAL);
                if let Err(e) = self.execute_request(tenant, request_id).await {
                    tracing::error!(request = %request_id, error = %e, "executing an approved request failed");
                }
                if output
                    .get("request")
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    == Some(request_id)
                {
                    let Ok(mut tx) = self.env.store.begin_read().await else {
                        continue;
                    };
                    if let Ok(view) = approvals::view(&mut tx, tenant, request_id).await {
                        output["request"] = json!(view);
                    }
                    // A read: ending it cannot lose anything.
                    let _ = tx.rollback().await;
                }
            }
            self.env.publish(event);
        }
        output
    }

    /// Executes an approved request exactly once: claims it (`approved` → `executing`, or a
    /// stalled `executing` whose lease ran out), re-checks it — the input still matches its
    /// digest, the requester is active and still holds the scope, the approvals still stand —
    /// and runs the operation as the requester, committing the result, its audit entry and the
    /// `succeeded` state together. Returns whether this call executed it.
    pub async fn execute_request(&self, tenant: &TenantId, request_id: &str) -> Result<bool> {
        let env = &self.env;
        let now = env.clock.now();
        let mut tx = env.store.begin_write().await?;
        let claimed = store::approvals::claim(
            &mut tx,
            tenant,
            request_id,
            to_millis(now),
            to_millis(now + approvals::EXECUTION_LEASE),
        )
        .await?;
        if !claimed {
            tx.rollback().await?;
            return Ok(false);
        }
        let req = approvals::load(&mut tx, tenant, request_id).await?;
        tx.commit().await?;

        let Some(spec) = catalogue::find(&req.operation) else {
            self.finish_failed(tenant, &req, "the operation no longer exists in this build")
                .await?;
            return Ok(true);
        };
        // Every re-check reads inside the transaction that runs the operation: a revocation
        // either committed before it (and is seen) or waits behind it.
        let mut tx = env.store.begin_write().await?;
        if let Some(reason) = self.execution_blocker(&mut tx, tenant, &req).await? {
            tx.rollback().await?;
            self.finish_failed(tenant, &req, &reason).await?;
            return Ok(true);
        }
        let requester = PersonaId::from_db(req.requester.clone());
        let role_scopes = roles::role_scopes_on(&mut tx, tenant, &requester).await?;
        let (approved_by, _) = approvals::standing_approvals(&mut tx, tenant, &req).await?;
        let principal = Principal {
            tenant: tenant.clone(),
            persona: requester,
            kind: req.requester_kind,
            scopes: req
                .requester_scopes
                .intersection(&role_scopes)
                .copied()
                .collect(),
            via: Via::Approval {
                request_id: req.id.clone(),
            },
            surface: req.requester_surface,
            valid_until: None,
            secret_digest: None,
        };
        let ctx = OpCtx::new(tx, principal, env.clock.now(), env.clone());
        let extra: Map<String, Value> = json!({
            "request_id": req.id,
            "digest": req.digest,
            "approved_by": approved_by,
            "break_glass_by": req.break_glass_by,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        match self
            .run_and_commit(ctx, spec, req.input.clone(), extra, Some(&req.id))
            .await
        {
            Ok((_, effects)) => {
                for n in &effects.notifications {
                    env.notify(n);
                }
                for e in effects.events {
                    env.publish(e);
                }
                env.notify(&Notification::Executed {
                    tenant: tenant.clone(),
                    request_id: req.id.clone(),
                    operation: req.operation.clone(),
                    requester: req.requester.clone(),
                });
                env.publish(Event::RequestFinished {
                    tenant: tenant.clone(),
                    request_id: req.id.clone(),
                });
            }
            Err(e) => self.finish_failed(tenant, &req, &e.to_string()).await?,
        }
        Ok(true)
    }

    /// Why an approved request may not run now, if anything.
    async fn execution_blocker(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        req: &approvals::StoredRequest,
    ) -> Result<Option<String>> {
        let requester = PersonaId::from_db(req.requester.clone());
        if approvals::digest(tenant, &req.operation, &req.input, &requester) != req.digest {
            return Ok(Some(
                "the stored input no longer matches the digest that was approved; nothing was run"
                    .into(),
            ));
        }
        if store::personas::status(tx, tenant, &requester).await? != Some(PersonaStatus::Active) {
            return Ok(Some(
                "the requester is no longer active; nothing was run".into(),
            ));
        }
        if let Some(spec) = catalogue::find(&req.operation)
            && let Some(scope) = spec.scope
        {
            let now_scopes = roles::role_scopes_on(tx, tenant, &requester).await?;
            if !now_scopes.contains(&scope) || !req.requester_scopes.contains(&scope) {
                return Ok(Some(format!(
                    "the requester no longer holds `{scope}`; nothing was run"
                )));
            }
        }
        if req.break_glass_by.is_none() {
            let (valid, lapsed) = approvals::standing_approvals(tx, tenant, req).await?;
            if (valid.len() as u32) < req.quorum {
                return Ok(Some(format!(
                    "only {} of the {} approvals still stand ({}); nothing was run",
                    valid.len(),
                    req.quorum,
                    lapsed.join("; ")
                )));
            }
        }
        Ok(None)
    }

    /// Marks an executing request failed, with its audit entry, and tells the requester.
    async fn finish_failed(
        &self,
        tenant: &TenantId,
        req: &approvals::StoredRequest,
        reason: &str,
    ) -> Result<()> {
        let env = &self.env;
        let now = env.clock.now();
        let signer = ledger::signer(&env.master, tenant)?;
        let mut tx = env.store.begin_write().await?;
        let changed =
            store::approvals::fail(&mut tx, tenant, &req.id, reason, to_millis(now)).await?;
        if !changed {
            // Someone else finished it meanwhile: nothing to record, nobody to tell twice.
            tx.rollback().await?;
            return Ok(());
        }
        ledger::record(
            &mut tx,
            tenant,
            &signer,
            now,
            vec![Draft {
                actor: Actor {
                    persona: Some(req.requester.clone()),
                    kind: Some(req.requester_kind.as_str().to_owned()),
                    via: format!("approval:{}", req.id),
                    surface: req.requester_surface.as_str().to_owned(),
                },
                op: req.operation.clone(),
                outcome: AuditOutcome::Failed,
                detail: json!({ "request_id": req.id, "input": req.input, "error": reason }),
            }],
        )
        .await?;
        tx.commit().await?;
        env.notify(&Notification::Failed {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
            operation: req.operation.clone(),
            requester: req.requester.clone(),
            reason: reason.to_owned(),
        });
        env.publish(Event::RequestFinished {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
        });
        Ok(())
    }

    /// One pass of the approvals worker over every tenant: escalates requests whose SLA
    /// breached (once), expires those past their hard limit, and executes approved requests
    /// nobody is executing (after a crash, or a stalled execution whose lease ran out).
    pub async fn tick_approvals(&self) -> Result<TickReport> {
        let env = &self.env;
        let now = to_millis(env.clock.now());
        let mut report = TickReport::default();
        let due = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::due_for_escalation(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id, to) in due {
            // One request's trouble must not stop the pass for every other one.
            let escalated = self
                .worker_step(
                    &tenant,
                    &id,
                    WorkerStep::Escalate,
                    json!({ "request_id": id, "to": to }),
                )
                .await;
            if log_err(&id, escalated) {
                report.escalated += 1;
                env.notify(&Notification::Escalated {
                    tenant,
                    request_id: id,
                    to,
                });
            }
        }
        let expired = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::past_expiry(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id) in expired {
            if log_err(&id, self.expire(&tenant, &id).await) {
                report.expired += 1;
            }
        }
        let runnable = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::claimable(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id) in runnable {
            // A request that cannot be read (a stored value outside its closed set) is logged
            // on every pass, and does not hold up the others.
            if log_err(&id, self.execute_request(&tenant, &id).await) {
                report.resumed += 1;
            }
        }
        Ok(report)
    }

    /// Expires a pending request past its hard limit (also done lazily when someone decides).
    pub(crate) async fn expire(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let changed = self
            .worker_step(tenant, id, WorkerStep::Expire, json!({ "request_id": id }))
            .await?;
        if changed {
            self.env.notify(&Notification::Expired {
                tenant: tenant.clone(),
                request_id: id.to_owned(),
            });
            self.env.publish(Event::RequestFinished {
                tenant: tenant.clone(),
                request_id: id.to_owned(),
            });
        }
        Ok(changed)
    }

    /// Applies a worker step to a pending request with its audit entry, by the platform.
    /// Returns whether the request changed (it was still pending, and not yet escalated).
    async fn worker_step(
        &self,
        tenant: &TenantId,
        id: &str,
        step: WorkerStep,
        detail: Value,
    ) -> Result<bool> {
        let env = &self.env;
        let now = env.clock.now();
        let mut tx = env.store.begin_write().await?;
        let changed = match step {
            WorkerStep::Escalate => {
                store::approvals::mark_escalated(&mut tx, tenant, id, to_millis(now)).await?
            }
            WorkerStep::Expire => {
                store::approvals::expire(&mut tx, tenant, id, to_millis(now)).await?
            }
        };
        if !changed {
            tx.rollback().await?;
            return Ok(false);
        }
        let signer = ledger::signer(&env.master, tenant)?;
        ledger::record(
            &mut tx,
            tenant,
            &signer,
            now,
            vec![Draft {
                actor: Actor {
                    persona: None,
                    kind: None,
                    via: "platform".into(),
                    surface: "worker".into(),
                },
                op: step.op().to_owned(),
                outcome: AuditOutcome::Done,
                detail,
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// What the approvals worker does to a pending request whose time has come.
#[derive(Clone, Copy)]
enum WorkerStep {
    /// Its SLA breached: page the escalation persona (once); the state stays `pending`.
    Escalate,
    /// Its hard limit passed: [`approvals::Transition::Expire`].
    Expire,
}

impl WorkerStep {
    /// The operation its audit entry records.
    fn op(self) -> &'static str {
        match self {
            WorkerStep::Escalate => "approvals.escalate",
            WorkerStep::Expire => "approvals.expire",
        }
    }
}

/// A call's input with what one serialisation of it tells: its size in bytes (for the limit)
/// and, for an operation that does not audit its input verbatim, its SHA-256.
struct CallInput<'a> {
    value: &'a Value,
    bytes: usize,
    sha256: Option<[u8; 32]>,
}

impl<'a> CallInput<'a> {
    /// Serialises `value` once (compact JSON, the bytes `value.to_string()` gives) without
    /// keeping the text: only counted, and hashed when the audit entry records a digest.
    fn of(spec: &OpSpec, value: &'a Value) -> Self {
        use sha2::Digest;
        struct Sink {
            bytes: usize,
            hash: Option<sha2::Sha256>,
        }
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.bytes += buf.len();
                if let Some(h) = &mut self.hash {
                    h.update(buf);
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = std::io::BufWriter::with_capacity(
            16 * 1024,
            Sink {
                bytes: 0,
                hash: (!spec.audit_input).then(sha2::Sha256::new),
            },
        );
        // Writing JSON into memory cannot fail.
        let _ = serde_json::to_writer(&mut sink, value);
        let sink = match sink.into_inner() {
            Ok(sink) => sink,
            Err(e) => e.into_inner().into_parts().0,
        };
        Self {
            value,
            bytes: sink.bytes,
            sha256: sink.hash.map(|h| h.finalize().into()),
        }
    }

    /// The input as its audit entry records it: verbatim, or (bulk operations) its size and
    /// digest.
    fn audited(&self) -> Value {
        match &self.sha256 {
            None => self.value.clone(),
            Some(digest) => json!({ "bytes": self.bytes, "sha256": hex::encode(digest) }),
        }
    }
}

/// How far a write call got.
enum Step {
    /// Waiting for approval.
    Pending(Box<(Outcome, Notification)>),
    /// Ran, with this output.
    Done(Value),
}

/// The audit entry of a call that failed.
fn failure_draft(principal: &Principal, spec: &OpSpec, input: &Value, err: &Error) -> Draft {
    let op = spec.name;
    let outcome = match err {
        Error::Denied { .. } => AuditOutcome::Denied,
        Error::BadInput { .. } => AuditOutcome::Invalid,
        _ => AuditOutcome::Failed,
    };
    Draft {
        actor: actor_of(principal),
        op: op.to_owned(),
        outcome,
        detail: json!({ "input": input, "error": err.to_string() }),
    }
}

/// The worker's view of one request's step: done or not, with failures logged, not raised.
fn log_err(request: &str, r: Result<bool>) -> bool {
    r.unwrap_or_else(|e| {
        tracing::error!(request, error = %e, "approvals worker step failed; will retry next pass");
        false
    })
}

/// What one worker pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Requests escalated.
    pub escalated: u32,
    /// Requests expired.
    pub expired: u32,
    /// Approved requests executed (resumed).
    pub resumed: u32,
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
        self.verify_audit_against(tenant, &[]).await
    }

    /// Like [`Core::verify_audit`], and also checks that checkpoints kept from earlier (signed
    /// notes from `audit.checkpoint`) are consistent with the ledger: no rollback, no rewrite.
    pub async fn verify_audit_against(
        &self,
        tenant: &TenantId,
        trusted: &[String],
    ) -> Result<std::result::Result<ledger::verify::Report, ledger::verify::Failure>> {
        let key = self.audit_verifier_key(tenant)?;
        let mut tx = self.env.store.begin_read().await?;
        let verdict = ledger::verify_db(&mut tx, tenant, &key, trusted).await?;
        tx.rollback().await?;
        Ok(verdict)
    }

    /// Exports a tenant's ledger (entries, checkpoints, verifier key) to `dir`.
    pub async fn export_audit(&self, tenant: &TenantId, dir: &std::path::Path) -> Result<u64> {
        let key = self.audit_verifier_key(tenant)?;
        let mut tx = self.env.store.begin_read().await?;
        let written = ledger::export(&mut tx, tenant, &key, dir).await?;
        tx.rollback().await?;
        Ok(written)
    }
}

impl Core {
    /// Approval requests waiting for a decision, across tenants (an operational figure).
    pub async fn open_requests(&self) -> Result<u64> {
        let mut tx = self.env.store.begin_read().await?;
        let n = store::approvals::pending_count(&mut tx).await?;
        tx.rollback().await?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn one_pass_over_the_input_gives_the_size_and_digest_of_its_text() {
        let input = json!({"events": [{"id": "é\"1\n", "quantity": 1.5, "n": null}], "a": [true]});
        let text = input.to_string();
        let bulk = catalogue::find("billing.ingest").unwrap();
        let facts = CallInput::of(bulk, &input);
        assert_eq!(facts.bytes, text.len());
        assert_eq!(
            facts.audited(),
            json!({ "bytes": text.len(), "sha256": hex::encode(sha2::Sha256::digest(&text)) })
        );
        let verbatim = catalogue::find("whoami").unwrap();
        let facts = CallInput::of(verbatim, &input);
        assert_eq!((facts.bytes, facts.audited()), (text.len(), input.clone()));
    }
}
