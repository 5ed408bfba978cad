//! API keys (guide §3): how a key is shown, issued and found, and who may manage one.

use crate::Env;
use crate::apikey::ApiKeySecret;
use crate::clock::{ms_to_rfc3339, to_millis};
use crate::error::{Error, Result};
use crate::ids::{KeyId, PersonaId, TenantId};
use crate::members::{check_authority, find_persona};
use crate::principal::Principal;
use crate::proof::{self, Proof};
use crate::scope::{Scope, ScopeSet};
use crate::store::{Tx, keys};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use std::fmt;

/// Whether a key works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// It authenticates.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked: refused from the next request.
    Revoked,
}

impl KeyState {
    /// The state's name, as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }

    /// A key's state at `now` (milliseconds) from its revocation and expiry times.
    pub fn at(revoked_at: Option<i64>, expires_at: Option<i64>, now: i64) -> Self {
        if revoked_at.is_some() {
            KeyState::Revoked
        } else if expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KeyView {
    /// Key id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `tops_…abcd`: enough to recognise it, useless to an attacker.
    pub hint: String,
    /// The persona it acts as.
    pub persona_id: String,
    /// That persona's handle.
    pub persona: String,
    /// Scopes granted to the key (it acts with these ∩ its persona's role scopes).
    pub scopes: Vec<Scope>,
    /// `active`, `expired` or `revoked`.
    pub state: KeyState,
    /// Created at.
    pub created_at: String,
    /// Expires at; absent means never (flagged in compliance reviews).
    pub expires_at: Option<String>,
    /// Last successful authentication.
    pub last_used_at: Option<String>,
    /// Last rotation.
    pub rotated_at: Option<String>,
    /// Revoked at.
    pub revoked_at: Option<String>,
}

impl KeyView {
    fn of(k: keys::Key, now: i64) -> Self {
        KeyView {
            id: k.id.to_string(),
            name: k.name,
            hint: k.hint,
            persona_id: k.persona_id.to_string(),
            persona: k.persona,
            scopes: k.scopes.into_iter().collect(),
            state: KeyState::at(k.revoked_at, k.expires_at, now),
            created_at: ms_to_rfc3339(k.created_at),
            expires_at: k.expires_at.map(ms_to_rfc3339),
            last_used_at: k.last_used_at.map(ms_to_rfc3339),
            rotated_at: k.rotated_at.map(ms_to_rfc3339),
            revoked_at: k.revoked_at.map(ms_to_rfc3339),
        }
    }
}

/// A freshly issued secret and its key id.
pub(crate) struct Issued {
    pub key_id: KeyId,
    pub secret: ApiKeySecret,
}

/// Inserts a key and its first secret (already authorised).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_key(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    persona: &PersonaId,
    issuer: &PersonaId,
    name: &str,
    scopes: &ScopeSet,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    proof: Proof,
) -> Result<Issued> {
    let key_id = KeyId::generate();
    let secret = ApiKeySecret::generate();
    let inserted = keys::insert(
        tx,
        tenant,
        &keys::NewKey {
            id: &key_id,
            persona,
            name,
            scopes,
            hint: &secret.hint(),
            created_at: to_millis(now),
            created_by: issuer,
            expires_at: expires_at.map(to_millis),
            proof,
        },
    )
    .await?;
    if !inserted {
        return Err(Error::Conflict(format!(
            "a key named `{name}` already exists in this tenant; pick another name"
        )));
    }
    insert_secret(tx, env, tenant, &key_id, &secret, now).await?;
    Ok(Issued { key_id, secret })
}

/// Stores a new secret of a key (its keyed digest only).
pub(crate) async fn insert_secret(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    key: &KeyId,
    secret: &ApiKeySecret,
    now: DateTime<Utc>,
) -> Result<()> {
    keys::insert_secret(
        tx,
        tenant,
        key,
        &secret.digest(env.pepper())[..],
        to_millis(now),
    )
    .await
}

/// Lists a tenant's keys, optionally one persona's, by name; only active ones unless
/// `include_inactive`.
pub(crate) async fn list_keys(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: Option<&PersonaId>,
    include_inactive: bool,
    now: i64,
) -> Result<Vec<KeyView>> {
    Ok(keys::list(tx, tenant, persona)
        .await?
        .into_iter()
        .map(|k| KeyView::of(k, now))
        .filter(|k| include_inactive || k.state == KeyState::Active)
        .collect())
}

/// Looks a key up by id, name — or by a leaked secret itself, the natural thing to paste when
/// revoking one (matched by digest; the secret is never echoed back).
pub(crate) async fn find_key(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    reference: &str,
    now: i64,
) -> Result<KeyView> {
    let id;
    let reference = if reference.trim().starts_with(crate::apikey::PREFIX) {
        let secret =
            ApiKeySecret::parse(reference).map_err(|e| Error::bad_input("key", e.to_string()))?;
        id = keys::id_by_digest(tx, tenant, &secret.digest(env.pepper())[..])
            .await?
            .ok_or_else(|| {
                Error::NotFound("key: no API key of this tenant answers to that secret".into())
            })?;
        id.as_str()
    } else {
        reference
    };
    match keys::find(tx, tenant, reference).await? {
        Some(k) => Ok(KeyView::of(k, now)),
        None => Err(Error::NotFound(format!(
            "key: no API key `{reference}` in this tenant; list them with keys.list"
        ))),
    }
}

/// The proof a secret handed to `caller` carries for `persona`: its own only when the caller
/// is that persona acting on its own proof ([`crate::proof`]); otherwise delegated, since the
/// caller could keep it.
pub(crate) async fn secret_proof(
    tx: &mut Tx,
    caller: &Principal,
    persona: &PersonaId,
) -> Result<Proof> {
    if caller.persona() != persona {
        return Ok(Proof::Delegated);
    }
    Ok(match proof::of(tx, caller).await? {
        Proof::Own => Proof::Own,
        _ => Proof::Delegated,
    })
}

/// The caller may rotate or revoke `key` only with authority over its persona and every scope
/// the key carries.
pub(crate) async fn check_key_authority(
    tx: &mut Tx,
    tenant: &TenantId,
    caller: &Principal,
    key: &KeyView,
) -> Result<()> {
    let persona = find_persona(tx, tenant, "key", &key.persona_id).await?;
    check_authority(caller, &persona)?;
    let missing: Vec<&str> = key
        .scopes
        .iter()
        .filter(|s| !caller.has(**s))
        .map(|s| s.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::denied(format!(
            "key `{}` carries scopes you do not hold ({}); only someone holding them may rotate or revoke it",
            key.name,
            missing.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_revoked_before_it_is_expired_and_expires_at_its_instant() {
        assert_eq!(KeyState::at(None, None, 10), KeyState::Active);
        assert_eq!(KeyState::at(None, Some(11), 10), KeyState::Active);
        assert_eq!(KeyState::at(None, Some(10), 10), KeyState::Expired);
        assert_eq!(KeyState::at(Some(1), Some(5), 10), KeyState::Revoked);
        assert_eq!(
            serde_json::to_value(KeyState::Expired).unwrap(),
            serde_json::json!("expired")
        );
    }
}
