//! Who is calling: the one value every surface produces by authenticating, and the only source
//! of the tenant an operation acts on.

use crate::error::{Error, Result};
use crate::ids::{KeyId, PersonaId, TenantId};
use crate::scope::{Scope, ScopeSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a persona.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersonaKind {
    /// A person; invited by email; the only kind that may decide approvals.
    Human,
    /// A service account, paired with API keys.
    Service,
    /// An AI agent acting through MCP.
    Agent,
}

impl PersonaKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonaKind::Human => "human",
            PersonaKind::Service => "service",
            PersonaKind::Agent => "agent",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "human" => Some(PersonaKind::Human),
            "service" => Some(PersonaKind::Service),
            "agent" => Some(PersonaKind::Agent),
            _ => None,
        }
    }

    /// Parses a kind read back from the store: an unknown value is an error, never a default.
    pub fn from_stored(s: &str) -> Result<Self> {
        Self::parse(s)
            .ok_or_else(|| Error::Internal(format!("unknown persona kind `{s}` in the store")))
    }
}

/// Whether a persona may act: a revoked persona's every credential fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersonaStatus {
    /// It acts with its roles.
    Active,
    /// Revoked for good: nothing it holds works any more.
    Revoked,
}

impl PersonaStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonaStatus::Active => "active",
            PersonaStatus::Revoked => "revoked",
        }
    }

    /// Parses a status read back from the store: an unknown value is an error.
    pub fn from_stored(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(PersonaStatus::Active),
            "revoked" => Ok(PersonaStatus::Revoked),
            other => Err(Error::Internal(format!(
                "unknown persona status `{other}` in the store"
            ))),
        }
    }
}

/// The surface a call arrived through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// The `tenantops` command line.
    Cli,
    /// The HTTP API.
    Http,
    /// The MCP server.
    Mcp,
    /// Slack.
    Slack,
    /// Discord.
    Discord,
}

impl Surface {
    /// Parses a surface name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Surface::Cli,
            Surface::Http,
            Surface::Mcp,
            Surface::Slack,
            Surface::Discord,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// The surface's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Cli => "cli",
            Surface::Http => "http",
            Surface::Mcp => "mcp",
            Surface::Slack => "slack",
            Surface::Discord => "discord",
        }
    }
}

/// The credential a principal authenticated with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Via {
    /// An API key (by its public id).
    ApiKey {
        /// The key's id.
        key_id: KeyId,
    },
    /// A tenant-scoped JWT.
    Jwt,
    /// Executed on the approval of a request (the requester's authority, two people's word).
    Approval {
        /// The approval request.
        request_id: String,
    },
    /// A linked chat identity.
    Chat {
        /// The chat platform.
        platform: Platform,
        /// The Slack team or Discord guild the account is linked in.
        workspace: String,
        /// The immutable platform user id.
        user: String,
    },
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::ApiKey { key_id } => write!(f, "api_key:{key_id}"),
            Via::Jwt => f.write_str("jwt"),
            Via::Approval { request_id } => write!(f, "approval:{request_id}"),
            Via::Chat { platform, user, .. } => write!(f, "{platform}:{user}"),
        }
    }
}

/// An authenticated caller: tenant, persona, kind, effective scopes, credential and surface.
/// Only the core makes principals ([`crate::Core::authenticate`]) and nothing outside it can
/// change one: a surface cannot widen scopes or relabel where a call came from.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The tenant every call of this principal acts in.
    pub(crate) tenant: TenantId,
    /// The persona acting.
    pub(crate) persona: PersonaId,
    /// The persona's kind.
    pub(crate) kind: PersonaKind,
    /// Effective scopes: the credential's scopes ∩ the persona's current role scopes.
    pub(crate) scopes: ScopeSet,
    /// How it authenticated.
    pub(crate) via: Via,
    /// Where the call came from.
    pub(crate) surface: Surface,
    /// When the credential stops being valid (key expiry, end of a rotation grace window, JWT
    /// `exp`); re-checked on every call, so a long-lived session cannot outlive it.
    pub(crate) valid_until: Option<chrono::DateTime<chrono::Utc>>,
    /// For an API key: the digest of the exact secret used, so a long-lived session ends when a
    /// rotation's grace window for that secret ends. Private: principals are made only by
    /// [`crate::Core::authenticate`].
    pub(crate) secret_digest: Option<[u8; 32]>,
}

impl Principal {
    /// The tenant every call of this principal acts in.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The persona acting.
    pub fn persona(&self) -> &PersonaId {
        &self.persona
    }

    /// The persona's kind.
    pub fn kind(&self) -> PersonaKind {
        self.kind
    }

    /// Effective scopes: the credential's scopes ∩ the persona's role scopes.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// How it authenticated.
    pub fn via(&self) -> &Via {
        &self.via
    }

    /// Where the call came from.
    pub fn surface(&self) -> Surface {
        self.surface
    }

    /// When the credential stops being valid, if it has an end.
    pub fn valid_until(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.valid_until
    }

    /// Whether the principal holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// What a credential proves about its person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The person's own proof: a sign-in, a key they issued themselves, a chat link they made.
    Own,
    /// Someone else could hold it: a key issued or rotated by another persona, a link made from
    /// a code that did not come from the person's own proof.
    Delegated,
    /// A chat link made before links carried proof: acts, never decides.
    Legacy,
}

impl Proof {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Own => "own",
            Proof::Delegated => "delegated",
            Proof::Legacy => "legacy",
        }
    }

    /// Parses the stored name; an unknown value is an error, never a silent default.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "own" => Ok(Proof::Own),
            "delegated" => Ok(Proof::Delegated),
            "legacy" => Ok(Proof::Legacy),
            other => Err(Error::Internal(format!(
                "unknown proof `{other}` in the store"
            ))),
        }
    }
}

/// A chat platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Slack (workspace = team id).
    Slack,
    /// Discord (workspace = guild id).
    Discord,
}

impl Platform {
    /// `slack` or `discord`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }

    /// The platform's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Slack => "Slack",
            Platform::Discord => "Discord",
        }
    }

    /// The surface its calls come from.
    pub fn surface(self) -> Surface {
        match self {
            Platform::Slack => Surface::Slack,
            Platform::Discord => Surface::Discord,
        }
    }

    /// Parses the stored name; an unknown value is an error, never a silent default.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "slack" => Ok(Platform::Slack),
            "discord" => Ok(Platform::Discord),
            other => Err(Error::Internal(format!(
                "unknown chat platform `{other}` in the store"
            ))),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
