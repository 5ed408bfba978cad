//! Chat identities: workspaces (Slack teams, Discord guilds) bound to one tenant each, chat users
//! linked to human personas by immutable platform ids through one-time codes, where approval
//! requests were posted, and deliveries already handled.
//!
//! A chat user is never trusted by name or email: a principal is made only from a bound
//! workspace plus a link row, and only for an active human persona.

use crate::approvals::RequestView;
use crate::error::Result;
use crate::ids::TenantId;
use crate::store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use crate::principal::Platform;

pub use crate::store::chat::{PostedMessage, Workspace};

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
