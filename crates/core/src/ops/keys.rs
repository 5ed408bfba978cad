//! Guide §3 — API keys: issue, list, compliance review, rotate with a grace window, revoke.

use crate::Event;
use crate::apikey::ApiKeySecret;
use crate::clock::{rfc3339, to_millis};
use crate::error::{Error, Result};
use crate::ids::{KeyId, PersonaId, validate_handle};
use crate::keys::{
    KeyState, KeyView, check_key_authority, find_key, insert_key, insert_secret, list_keys,
    secret_proof,
};
use crate::members::{check_authority, find_persona};
use crate::operation::{OpCtx, Operation, Risk};
use crate::principal::PersonaStatus;
use crate::refs::{KeyRef, PersonaRef};
use crate::roles;
use crate::scope::{Scope, ScopeSet};
use crate::store::keys;
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest grace window a rotation may ask for.
const MAX_GRACE: Duration = Duration::days(7);
/// Longest key lifetime.
const MAX_LIFETIME: Duration = Duration::days(3 * 365);

fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let d = humantime::parse_duration(text).map_err(|e| {
        Error::bad_input(
            field,
            format!("`{text}` is not a duration ({e}); write e.g. 90d, 12h or 10m"),
        )
    })?;
    Duration::from_std(d)
        .ok()
        .filter(|d| *d <= Duration::days(3660))
        .ok_or_else(|| Error::bad_input(field, format!("`{text}` is too long; at most 10 years")))
}

/// Input of `keys.issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// The persona the key acts as (id or handle), typically a service persona.
    pub persona: PersonaRef,
    /// The scopes, minimum privilege: never more than you hold, and within the persona's roles.
    pub scopes: Vec<Scope>,
    /// A unique name for the key, e.g. `ci-deploy`; generated when omitted.
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime, e.g. `90d` (keys without expiry are flagged in compliance reviews).
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Exact expiry, RFC 3339; alternative to expires_in.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Output of `keys.issue` and `keys.rotate`: the only time the secret is shown.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssuedKey {
    /// Key id.
    pub key_id: String,
    /// Key name.
    pub name: String,
    /// The secret. Shown exactly once: copy it now; tenantops stores only a keyed hash.
    pub api_key: String,
    /// The scopes granted.
    pub scopes: Vec<Scope>,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// For a rotation: until when the previous secret keeps working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
}

/// `keys.issue`.
pub struct Issue;

impl Operation for Issue {
    const NAME: &'static str = "keys.issue";
    const SUMMARY: &'static str = "Issue an API key for a persona (secret shown once)";
    const HELP: &'static str = "Issues a long-lived API key for machine-to-machine use. Pick the persona \
        (typically a service persona) and the smallest set of scopes that works: you can never grant more \
        than you hold, and at call time the key acts with its scopes ∩ its persona's current role scopes. \
        Set an expiry; keys without one are flagged in compliance reviews. The secret is returned once.";
    const SCOPE: Option<Scope> = Some(Scope::KEYS_WRITE);
    const RISK: Risk = Risk::Write;
    const SECRET_OUTPUT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"persona":"ci-bot","scopes":["keys:read"],"name":"ci-deploy","expires_in":"90d"}"#];
    type Input = IssueInput;
    type Output = IssuedKey;

    async fn execute(ctx: &mut OpCtx, input: IssueInput) -> Result<IssuedKey> {
        if input.scopes.is_empty() {
            return Err(Error::bad_input(
                "scopes",
                "give at least one scope, e.g. [\"billing:read\"]",
            ));
        }
        let scopes: ScopeSet = input.scopes.iter().copied().collect();
        let beyond_issuer: Vec<&str> = scopes
            .difference(&ctx.principal.scopes)
            .map(|s| s.as_str())
            .collect();
        if !beyond_issuer.is_empty() {
            return Err(Error::denied(format!(
                "a key can never carry more than its issuer holds; you do not hold: {}",
                beyond_issuer.join(", ")
            )));
        }
        let tenant = ctx.tenant().clone();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
        if persona.status != PersonaStatus::Active {
            return Err(Error::Conflict(format!(
                "persona `{}` is revoked",
                persona.handle
            )));
        }
        check_authority(&ctx.principal, &persona)?;
        let role_scopes = roles::scopes_of(persona.roles.iter().map(String::as_str));
        let beyond_roles: Vec<&str> = scopes
            .difference(&role_scopes)
            .map(|s| s.as_str())
            .collect();
        if !beyond_roles.is_empty() {
            return Err(Error::bad_input(
                "scopes",
                format!(
                    "persona `{}`'s roles ({}) do not grant {}; the key could never use them — \
                     assign a role that does (members.assign_roles) or drop them",
                    persona.handle,
                    persona.roles.join(", "),
                    beyond_roles.join(", ")
                ),
            ));
        }
        let expires_at = match (&input.expires_in, input.expires_at) {
            (Some(_), Some(_)) => {
                return Err(Error::bad_input(
                    "expires_at",
                    "give expires_in or expires_at, not both",
                ));
            }
            (Some(d), None) => Some(ctx.now + parse_duration("expires_in", d)?),
            (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        if let Some(t) = expires_at {
            if t <= ctx.now {
                return Err(Error::bad_input(
                    "expires_at",
                    "the expiry must be in the future",
                ));
            }
            if t - ctx.now > MAX_LIFETIME {
                return Err(Error::bad_input(
                    "expires_in",
                    "keys live at most 3 years; rotate instead",
                ));
            }
        }
        let name = match input.name {
            Some(n) => {
                validate_handle("name", &n)?;
                n
            }
            None => format!("{}-{}", persona.handle, &KeyId::generate().as_str()[28..]),
        };
        let issuer = ctx.principal.persona.clone();
        let env = ctx.env.clone();
        let proof = secret_proof(&mut ctx.tx, &ctx.principal, &persona.id).await?;
        let issued = insert_key(
            &mut ctx.tx,
            &env,
            &tenant,
            &persona.id,
            &issuer,
            &name,
            &scopes,
            expires_at,
            ctx.now,
            proof,
        )
        .await?;
        ctx.audit("key_id", &issued.key_id);
        ctx.audit("persona", &persona.id);
        ctx.audit("proof", proof.as_str());
        Ok(IssuedKey {
            key_id: issued.key_id.to_string(),
            name,
            api_key: issued.secret.expose().to_owned(),
            scopes: scopes.into_iter().collect(),
            expires_at: expires_at.map(rfc3339),
            previous_secret_valid_until: None,
        })
    }
}

/// Input of `keys.list`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    /// Only this persona's keys (id or handle).
    #[serde(default)]
    pub persona: Option<PersonaRef>,
    /// Include revoked and expired keys (default false).
    #[serde(default)]
    pub include_inactive: bool,
}

/// Output of `keys.list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyList {
    /// The keys, by name.
    pub keys: Vec<KeyView>,
}

/// `keys.list`.
pub struct List;

impl Operation for List {
    const NAME: &'static str = "keys.list";
    const SUMMARY: &'static str = "List API keys (never their secrets)";
    const HELP: &'static str = "Lists the tenant's API keys with persona, scopes, expiry and last use. \
        Secrets are never shown again after issue; a hint (`tops_…abcd`) helps recognise one.";
    const SCOPE: Option<Scope> = Some(Scope::KEYS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{}"#, r#"{"persona":"ci-bot","include_inactive":true}"#];
    type Input = ListInput;
    type Output = KeyList;

    async fn execute(ctx: &mut OpCtx, input: ListInput) -> Result<KeyList> {
        let tenant = ctx.tenant().clone();
        let persona = match &input.persona {
            Some(p) => Some(
                find_persona(&mut ctx.tx, &tenant, "persona", p.as_str())
                    .await?
                    .id,
            ),
            None => None,
        };
        let keys = list_keys(
            &mut ctx.tx,
            &tenant,
            persona.as_ref(),
            input.include_inactive,
            to_millis(ctx.now),
        )
        .await?;
        Ok(KeyList { keys })
    }
}

/// Input of `keys.compliance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplianceInput {
    /// Flag keys expiring within this many days (default 14).
    #[serde(default = "default_expiring_days")]
    pub expiring_within_days: u32,
    /// Flag keys unused for this many days (default 90).
    #[serde(default = "default_unused_days")]
    pub unused_for_days: u32,
}

fn default_expiring_days() -> u32 {
    14
}
fn default_unused_days() -> u32 {
    90
}

/// Output of `keys.compliance`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ComplianceReport {
    /// Active keys with no expiry: flagged by the guide.
    pub without_expiry: Vec<KeyView>,
    /// Active keys expiring soon.
    pub expiring_soon: Vec<KeyView>,
    /// Active keys not used for a long time (or never).
    pub unused: Vec<KeyView>,
    /// Active keys in total.
    pub active_keys: u64,
}

/// `keys.compliance`.
pub struct Compliance;

impl Operation for Compliance {
    const NAME: &'static str = "keys.compliance";
    const SUMMARY: &'static str =
        "Compliance review: keys without expiry, expiring soon, or unused";
    const HELP: &'static str = "The key compliance review: active keys without an expiry (the guide flags \
        them), keys expiring soon, and keys unused for a long time — candidates to rotate or revoke.";
    const SCOPE: Option<Scope> = Some(Scope::KEYS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{}"#,
        r#"{"expiring_within_days":30,"unused_for_days":60}"#,
    ];
    type Input = ComplianceInput;
    type Output = ComplianceReport;

    async fn execute(ctx: &mut OpCtx, input: ComplianceInput) -> Result<ComplianceReport> {
        let tenant = ctx.tenant().clone();
        let now = to_millis(ctx.now);
        let keys = list_keys(&mut ctx.tx, &tenant, None, false, now).await?;
        if input.expiring_within_days > 3660 || input.unused_for_days > 3660 {
            return Err(Error::bad_input(
                "expiring_within_days",
                "look at most 10 years (3660 days) ahead or back",
            ));
        }
        let soon = to_millis(ctx.now + Duration::days(input.expiring_within_days.into()));
        let idle = to_millis(ctx.now - Duration::days(input.unused_for_days.into()));
        let mut report = ComplianceReport {
            without_expiry: vec![],
            expiring_soon: vec![],
            unused: vec![],
            active_keys: keys.len() as u64,
        };
        let ms = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
        };
        for k in keys {
            let expires = ms(&k.expires_at);
            let used = ms(&k.last_used_at).or(ms(&Some(k.created_at.clone())));
            if used.is_some_and(|u| u < idle) {
                report.unused.push(k.clone());
            }
            match expires {
                None => report.without_expiry.push(k),
                Some(e) if e <= soon => report.expiring_soon.push(k),
                Some(_) => {}
            }
        }
        Ok(report)
    }
}

/// Input of `keys.rotate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// The key (id or name).
    pub key: KeyRef,
    /// How long the old secret keeps working, e.g. `10m` (default: the server's grace window,
    /// 10 minutes unless configured; `0s` ends it at once; at most 7 days).
    #[serde(default)]
    pub grace: Option<String>,
}

/// `keys.rotate`.
pub struct Rotate;

impl Operation for Rotate {
    const NAME: &'static str = "keys.rotate";
    const SUMMARY: &'static str = "Rotate an API key: new secret, old one valid for a grace window";
    const HELP: &'static str = "Generates a new secret for the key. The old secret keeps working for the \
        grace window (10 minutes by default) so you can swap configuration without downtime, and is \
        refused after it. The new secret is returned once.";
    const SCOPE: Option<Scope> = Some(Scope::KEYS_WRITE);
    const RISK: Risk = Risk::Write;
    const SECRET_OUTPUT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"key":"ci-deploy"}"#,
        r#"{"key":"ci-deploy","grace":"30m"}"#,
    ];
    type Input = RotateInput;
    type Output = IssuedKey;

    async fn execute(ctx: &mut OpCtx, input: RotateInput) -> Result<IssuedKey> {
        let grace = match &input.grace {
            Some(g) => parse_duration("grace", g)?,
            None => ctx.env.key_rotation_grace,
        };
        if grace > MAX_GRACE {
            return Err(Error::bad_input(
                "grace",
                "the grace window is at most 7 days",
            ));
        }
        let tenant = ctx.tenant().clone();
        let now = to_millis(ctx.now);
        let env = ctx.env.clone();
        let key = find_key(&mut ctx.tx, &env, &tenant, input.key.as_str(), now).await?;
        check_key_authority(&mut ctx.tx, &tenant, &ctx.principal, &key).await?;
        if key.state != KeyState::Active {
            return Err(Error::Conflict(format!(
                "key `{}` is {}; issue a new one instead",
                key.name, key.state
            )));
        }
        let until = ctx.now + grace;
        let key_id = KeyId::from_db(key.id.clone());
        // Secrets already winding down keep their earlier end; the current one gets the window.
        keys::end_open_secrets(&mut ctx.tx, &tenant, &key_id, to_millis(until)).await?;
        let secret = ApiKeySecret::generate();
        insert_secret(&mut ctx.tx, &env, &tenant, &key_id, &secret, ctx.now).await?;
        // Whoever receives the new secret holds the key now: it proves its persona only if
        // that is who rotated it, from their own proof.
        let holder = PersonaId::from_db(key.persona_id.clone());
        let proof = secret_proof(&mut ctx.tx, &ctx.principal, &holder).await?;
        keys::record_rotation(&mut ctx.tx, &tenant, &key_id, now, &secret.hint(), proof).await?;
        ctx.audit("key_id", &key.id);
        ctx.audit("proof", proof.as_str());
        ctx.audit("grace_seconds", grace.num_seconds());
        ctx.emit(Event::KeyRotated {
            tenant: tenant.clone(),
            key: key_id,
        });
        Ok(IssuedKey {
            key_id: key.id,
            name: key.name,
            api_key: secret.expose().to_owned(),
            scopes: key.scopes,
            expires_at: key.expires_at,
            previous_secret_valid_until: Some(rfc3339(until)),
        })
    }
}

/// Input of `keys.revoke`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// The key (id or name).
    pub key: KeyRef,
}

/// `keys.revoke`.
pub struct Revoke;

impl Operation for Revoke {
    const NAME: &'static str = "keys.revoke";
    const SUMMARY: &'static str = "Revoke an API key: refused from the next request, no grace";
    const HELP: &'static str = "Revokes the key and every secret it answers to, including one still in a \
        rotation grace window. The next request with it is refused; open connections using it close.";
    const SCOPE: Option<Scope> = Some(Scope::KEYS_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{"key":"ci-deploy"}"#];
    type Input = RevokeInput;
    type Output = KeyView;

    async fn execute(ctx: &mut OpCtx, input: RevokeInput) -> Result<KeyView> {
        let tenant = ctx.tenant().clone();
        let now = to_millis(ctx.now);
        let env = ctx.env.clone();
        let key = find_key(&mut ctx.tx, &env, &tenant, input.key.as_str(), now).await?;
        check_key_authority(&mut ctx.tx, &tenant, &ctx.principal, &key).await?;
        if key.state == KeyState::Revoked {
            return Err(Error::Conflict(format!(
                "key `{}` is already revoked",
                key.name
            )));
        }
        keys::revoke(&mut ctx.tx, &tenant, &KeyId::from_db(key.id.clone()), now).await?;
        ctx.audit("key_id", &key.id);
        ctx.emit(Event::KeyRevoked {
            tenant: tenant.clone(),
            key: KeyId::from_db(key.id.clone()),
        });
        find_key(&mut ctx.tx, &env, &tenant, &key.id, now).await
    }
}
