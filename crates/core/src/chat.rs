//! Chat identities: workspaces (Slack teams, Discord guilds) bound to one tenant each, chat users
//! linked to human personas by immutable platform ids through one-time codes, where approval
//! requests were posted, and deliveries already handled.
//!
//! A chat user is never trusted by name or email: a principal is made only from a bound
//! workspace plus a link row, and only for an active human persona.

use crate::approvals::RequestView;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::principal::Surface;
use crate::store;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// A chat platform.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, serde::Deserialize,
)]
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

/// A workspace bound to a tenant.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Workspace {
    /// The platform.
    pub platform: Platform,
    /// Slack team id or Discord guild id.
    pub workspace_id: String,
    /// The tenant it belongs to.
    #[schemars(with = "String")]
    pub tenant_id: TenantId,
    /// A display name.
    pub name: Option<String>,
    /// Where approval requests are posted.
    pub approval_channel: Option<String>,
    /// Where the scheduled billing digest goes.
    pub digest_channel: Option<String>,
    /// How often the digest is posted, in milliseconds.
    pub digest_every_ms: Option<i64>,
}

/// Where an approval request was posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedMessage {
    /// The platform.
    pub platform: Platform,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: String,
    /// Slack `ts` or Discord message id.
    pub message_id: String,
    /// What it last showed ([`rendered_key`]); `None` until first rendered.
    pub rendered: Option<String>,
}

/// What an approval message shows, as compared by [`Core::chat_unsynced`]: the request's state
/// and how many decisions it has.
pub fn rendered_key(view: &RequestView) -> String {
    format!("{}:{}", view.state, view.decisions.len())
}

/// How long a link code is valid.
pub const LINK_CODE_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// Every workspace bound to `tenant`, in the caller's transaction (the `tenant.chat_list` read).
pub(crate) async fn workspaces_on(tx: &mut store::Tx, tenant: &TenantId) -> Result<Vec<Workspace>> {
    store::chat::workspaces(tx, tenant).await
}

/// The keyed digest a link code is stored as.
pub(crate) fn code_digest(pepper: &[u8; 32], code: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper).expect("any key length");
    mac.update(b"tenantops chat link code\0");
    mac.update(code.trim().to_ascii_uppercase().as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A new one-time link code: `LINK-` and 10 characters of Crockford base32 (50 bits).
pub(crate) fn new_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("LINK-{}-{}", &body[..5], &body[5..])
}

/// A new one-time install state (base62, 32 characters).
pub(crate) fn new_install_state() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What a completed install bound.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The workspace, now bound.
    pub workspace: Workspace,
    /// Whether it was bound before (a re-install refreshes its token).
    pub reinstalled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_back_as_stored_and_an_unknown_one_is_an_error() {
        for p in [Platform::Slack, Platform::Discord] {
            assert_eq!(Platform::parse(p.as_str()).unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
        }
        assert!(Platform::parse("teams").is_err());
        assert!(Platform::parse("Slack").is_err());
    }
}
