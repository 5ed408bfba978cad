//! Tenant-scoped JWTs, the credential of the ProjexCloud console: the algorithm is pinned by
//! configuration (a token naming any other is refused), `iss` and `aud` must match, `exp` is
//! required and checked against the core's clock, `tenant_id` names the tenant and `sub` the
//! persona. The persona is looked up on every request, so revocation beats expiry.

use crate::error::{Error, Result};
use crate::scope::{Scope, ScopeSet};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::str::FromStr;

/// How JWTs are verified.
#[derive(Clone)]
pub struct JwtConfig {
    algorithm: Algorithm,
    key: DecodingKey,
    issuer: String,
    audience: String,
    leeway_secs: i64,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtConfig {
    /// Builds a configuration. `key` is the shared secret for HS* algorithms and a PEM public
    /// key for RS*/PS*/ES*/EdDSA.
    pub fn new(algorithm: &str, key: &[u8], issuer: &str, audience: &str) -> Result<Self> {
        let algorithm = Algorithm::from_str(algorithm).map_err(|_| {
            Error::Config(format!(
                "unknown JWT algorithm `{algorithm}`; use one of HS256, HS384, HS512, RS256, RS384, \
                 RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
            ))
        })?;
        let bad_key = |e: jsonwebtoken::errors::Error| {
            Error::Config(format!("JWT key does not fit algorithm {algorithm:?}: {e}"))
        };
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if key.len() < 32 {
                    return Err(Error::Config(
                        "the JWT HMAC secret must be at least 32 bytes".into(),
                    ));
                }
                DecodingKey::from_secret(key)
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(key).map_err(bad_key)?,
            Algorithm::ES256 | Algorithm::ES384 => {
                DecodingKey::from_ec_pem(key).map_err(bad_key)?
            }
            Algorithm::EdDSA => DecodingKey::from_ed_pem(key).map_err(bad_key)?,
            other => {
                return Err(Error::Config(format!(
                    "JWT algorithm {other:?} is not supported"
                )));
            }
        };
        if issuer.is_empty() || audience.is_empty() {
            return Err(Error::Config("JWT issuer and audience must be set".into()));
        }
        Ok(Self {
            algorithm,
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 5,
        })
    }
}

/// The claims tenantops reads.
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The persona id.
    pub sub: String,
    /// The tenant id.
    pub tenant_id: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Optional space-separated scopes that narrow the persona's role scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

impl Claims {
    /// The scopes the token narrows to, if it names any. Unknown names are ignored (never
    /// widening).
    pub fn narrowed_scopes(&self) -> Option<ScopeSet> {
        self.scope
            .as_ref()
            .map(|s| s.split_whitespace().filter_map(Scope::parse).collect())
    }
}

/// Verifies a token's signature, algorithm, issuer and audience. The lifetime is checked
/// separately ([`check_lifetime`]) so that a validly signed but expired token can still be
/// attributed to its tenant for the audit ledger.
pub fn decode(config: &JwtConfig, token: &str) -> Result<Claims> {
    let mut validation = Validation::new(config.algorithm);
    validation.algorithms = vec![config.algorithm];
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Lifetime is checked against the core's clock, so tests can move time.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data = jsonwebtoken::decode::<Claims>(token, &config.key, &validation)
        .map_err(|e| Error::Unauthenticated(format!("JWT rejected: {e}")))?;
    Ok(data.claims)
}

/// Checks `exp` and `nbf` at `now`, with a few seconds of leeway for clock skew.
pub fn check_lifetime(
    config: &JwtConfig,
    claims: &Claims,
    now: DateTime<Utc>,
) -> std::result::Result<(), &'static str> {
    let t = now.timestamp();
    if claims.exp.saturating_add(config.leeway_secs) <= t {
        return Err("JWT expired");
    }
    if let Some(nbf) = claims.nbf
        && nbf.saturating_sub(config.leeway_secs) > t
    {
        return Err("JWT not yet valid (nbf)");
    }
    Ok(())
}
