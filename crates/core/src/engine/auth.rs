//! Authentication: credentials (API keys, JWTs) into principals, and re-checking a principal
//! before every call.

use crate::apikey::ApiKeySecret;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::{PersonaId, TenantId};
use crate::jwt;
use crate::ledger::AuditOutcome;
use crate::principal::{PersonaStatus, Principal, Surface, Via};
use crate::scope::ScopeSet;
use crate::store::{self, Tx};
use crate::{Core, roles};
use serde_json::json;
use subtle::ConstantTimeEq;

/// How stale a key's `last_used_at` may get before a use records it again.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Core {
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

    pub(crate) async fn authenticate_key(&self, text: &str, surface: Surface) -> Result<Principal> {
        let env = &self.env;
        let secret =
            ApiKeySecret::parse(text).map_err(|e| Error::Unauthenticated(e.to_string()))?;
        let digest = secret.digest(env.pepper());
        let mut read = env.store.read().await?;
        let cred = store::keys::credential(&mut read, &digest[..]).await?;
        drop(read);
        let Some(cred) = cred else {
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
            self.record_refusal(&principal, reason).await?;
            return Err(Error::Unauthenticated(reason.into()));
        }
        let role_scopes = roles::scopes_of(cred.roles.iter().map(String::as_str));
        let scopes = cred.scopes.intersection(&role_scopes).copied().collect();
        // `last_used_at` is for people (compliance, stale keys): recorded at most once a
        // minute, so that a busy key does not make every call a write.
        if cred.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            let (tenant, key) = (principal.tenant.clone(), cred.key.clone());
            env.write(move |tx| {
                Box::pin(async move { store::keys::touch(tx, &tenant, &key, now).await })
            })
            .await?;
        }
        Ok(Principal {
            scopes,
            ..principal
        })
    }

    pub(crate) async fn authenticate_jwt(
        &self,
        token: &str,
        surface: Surface,
    ) -> Result<Principal> {
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

    pub(crate) async fn record_refusal(&self, principal: &Principal, reason: &str) -> Result<()> {
        self.record(
            principal,
            "auth",
            AuditOutcome::Denied,
            json!({ "reason": reason }),
        )
        .await
    }

    /// Re-checks a principal that may have been authenticated a while ago (a long-lived MCP or
    /// chat session): its persona must still be active, its key unrevoked, its credential
    /// unexpired; its scopes shrink to what its persona's roles grant now, and its
    /// [`Principal::valid_until`] moves up to the end of a rotation's grace window when its
    /// secret was rotated away since.
    pub async fn refresh(&self, principal: &Principal) -> Result<Principal> {
        let mut tx = self.env.store.begin_read().await?;
        let checked = self.recheck(&mut tx, principal, "").await;
        tx.end_read();
        match checked? {
            Ok((fresh, _)) => Ok(fresh),
            Err(reason) => {
                self.record_refusal(principal, reason).await?;
                Err(Error::Unauthenticated(reason.into()))
            }
        }
    }

    /// [`Core::refresh`] in a snapshot the caller holds (which a read call then goes on to use),
    /// also counting the approval routes that name `operation`: one statement in all.
    pub(crate) async fn recheck(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        operation: &str,
    ) -> Result<Rechecked> {
        let now = self.env.clock.now();
        let tenant = &principal.tenant;
        let key = match &principal.via {
            Via::ApiKey { key_id } => Some(key_id.as_str()),
            _ => None,
        };
        let standing = store::personas::standing(
            tx,
            tenant,
            &principal.persona,
            principal.secret_digest.as_ref().map(|d| &d[..]),
            key,
            operation,
        )
        .await?;
        let mut refusal = match standing.status {
            Some(PersonaStatus::Active) => None,
            Some(PersonaStatus::Revoked) => Some("the persona has been revoked"),
            None => Some("the persona no longer exists"),
        };
        if refusal.is_none() && principal.valid_until.is_some_and(|t| t <= now) {
            refusal = Some("the credential has expired");
        }
        let mut valid_until = principal.valid_until;
        if refusal.is_none() && principal.secret_digest.is_some() {
            match standing.secret_not_after {
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
        if refusal.is_none() && key.is_some() && !matches!(standing.key_revoked_at, Some(None)) {
            refusal = Some("the API key has been revoked");
        }
        if let Some(reason) = refusal {
            return Ok(Err(reason));
        }
        let roles = roles::scopes_of(standing.roles.iter().map(String::as_str));
        Ok(Ok((
            Principal {
                scopes: principal.scopes.intersection(&roles).copied().collect(),
                valid_until,
                ..principal.clone()
            },
            standing.routes,
        )))
    }
}

/// A re-checked principal with the number of approval routes naming the call's operation, or
/// why the credential is refused.
pub(crate) type Rechecked = std::result::Result<(Principal, i64), &'static str>;
