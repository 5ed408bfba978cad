//! Open connections by credential, so that each ends exactly when its own credential does.
//!
//! A credential is the exact secret presented, not the key it belongs to: after a rotation the
//! old and the new secret of one key are two credentials with two ends (the old one's at the
//! end of the grace window), and two JWTs of one person are two credentials too. Every HTTP
//! response body of `/mcp` (the SSE streams above all) ends when its credential's token is
//! cancelled, and the legacy sessions it opened are closed. Credentials are re-checked through
//! the core: at the moment the earliest of them is due to end (a timer at its `valid_until`),
//! immediately when this process revokes or rotates something, and every few seconds for
//! changes made by another process sharing the database (the CLI).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tenantops_core::{Core, Error, Event, Principal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Identifies one credential: the tenant and persona it authenticated as, and the exact secret
/// presented (by a SHA-256 prefix held in memory only; the secret itself is never kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialId(String);

impl CredentialId {
    /// The identity of `presented` (the credential as the client sent it), which authenticated
    /// as `principal`.
    pub fn new(principal: &Principal, presented: &str) -> Self {
        let digest = Sha256::digest(presented.trim().as_bytes());
        let mut id = format!(
            "{}/{}/{}/",
            principal.tenant(),
            principal.persona(),
            principal.via()
        );
        for b in &digest[..16] {
            let _ = write!(id, "{b:02x}");
        }
        Self(id)
    }
}

struct Entry {
    /// The principal as last re-checked (its `valid_until` follows rotations).
    principal: Principal,
    token: CancellationToken,
    streams: usize,
    sessions: HashSet<String>,
}

impl Entry {
    fn new(principal: &Principal) -> Self {
        Self {
            principal: principal.clone(),
            token: CancellationToken::new(),
            streams: 0,
            sessions: HashSet::new(),
        }
    }
}

/// The registry of live credentials.
#[derive(Default, Clone)]
pub struct Live {
    inner: Arc<Mutex<State>>,
    /// Signalled when a credential is registered, so the watcher re-arms its timer.
    added: Arc<Notify>,
}

#[derive(Default)]
struct State {
    entries: HashMap<CredentialId, Entry>,
    session_owner: HashMap<String, CredentialId>,
}

/// Holds one open response body of a credential; dropping it releases the count.
pub struct StreamGuard {
    live: Live,
    id: CredentialId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut st = self.live.lock();
        if let Some(e) = st.entries.get_mut(&self.id) {
            e.streams = e.streams.saturating_sub(1);
            if e.streams == 0 && e.sessions.is_empty() {
                st.entries.remove(&self.id);
            }
        }
    }
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of `id`, registered as `principal` when new.
    fn entry<'a>(
        &self,
        st: &'a mut State,
        id: &CredentialId,
        principal: &Principal,
    ) -> &'a mut Entry {
        st.entries.entry(id.clone()).or_insert_with(|| {
            self.added.notify_one();
            Entry::new(principal)
        })
    }

    /// Registers one open response of credential `id` (authenticated as `principal`); returns
    /// its token and a guard.
    pub fn enter(
        &self,
        id: &CredentialId,
        principal: &Principal,
    ) -> (CancellationToken, StreamGuard) {
        let token = {
            let mut st = self.lock();
            let e = self.entry(&mut st, id, principal);
            e.streams += 1;
            e.token.clone()
        };
        (
            token,
            StreamGuard {
                live: self.clone(),
                id: id.clone(),
            },
        )
    }

    /// The credential that opened session `id`, if known.
    pub fn session_owner(&self, id: &str) -> Option<CredentialId> {
        self.lock().session_owner.get(id).cloned()
    }

    /// Records that credential `owner` (authenticated as `principal`) opened session `id`.
    pub fn bind_session(&self, id: &str, owner: &CredentialId, principal: &Principal) {
        let mut st = self.lock();
        st.session_owner.insert(id.to_owned(), owner.clone());
        self.entry(&mut st, owner, principal)
            .sessions
            .insert(id.to_owned());
    }

    /// Forgets session `id` (closed by the client or expired).
    pub fn forget_session(&self, id: &str) {
        let mut st = self.lock();
        if let Some(owner) = st.session_owner.remove(id)
            && let Some(e) = st.entries.get_mut(&owner)
        {
            e.sessions.remove(id);
            if e.streams == 0 && e.sessions.is_empty() {
                st.entries.remove(&owner);
            }
        }
    }

    /// Every known session id.
    pub fn sessions(&self) -> Vec<String> {
        self.lock().session_owner.keys().cloned().collect()
    }

    /// When the first live credential is due to end (expiry, the end of a rotation's grace
    /// window, a JWT's `exp`), as last re-checked.
    pub fn next_end(&self) -> Option<DateTime<Utc>> {
        self.lock()
            .entries
            .values()
            .filter_map(|e| e.principal.valid_until())
            .min()
    }

    /// Completes when a credential was registered since the last call (its end may be the
    /// first).
    pub async fn added(&self) {
        self.added.notified().await;
    }

    /// Re-checks every live credential; ends the connections of those no longer valid and
    /// returns the sessions to close. Those still valid keep their refreshed principal, whose
    /// `valid_until` reflects a rotation made since they signed in.
    pub async fn sweep(&self, core: &Core) -> Vec<String> {
        let live: Vec<(CredentialId, Principal)> = self
            .lock()
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.principal.clone()))
            .collect();
        let mut closed = Vec::new();
        for (id, principal) in live {
            match core.refresh(&principal).await {
                Ok(refreshed) => {
                    if let Some(e) = self.lock().entries.get_mut(&id) {
                        e.principal = refreshed;
                    }
                }
                Err(Error::Unauthenticated(reason)) => {
                    let mut st = self.lock();
                    if let Some(e) = st.entries.remove(&id) {
                        e.token.cancel();
                        for s in &e.sessions {
                            st.session_owner.remove(s);
                        }
                        tracing::info!(
                            credential = %principal.via(),
                            persona = %principal.persona(),
                            streams = e.streams,
                            sessions = e.sessions.len(),
                            %reason,
                            "credential no longer valid: closing its MCP connections"
                        );
                        closed.extend(e.sessions);
                    }
                }
                Err(other) => {
                    tracing::warn!(error = %other, "re-checking a live MCP credential failed")
                }
            }
        }
        closed
    }
}

/// Completes at `end` by the core's clock (never, without an end): the moment a credential
/// must be re-checked because it may have just stopped being valid. An end already past (a
/// re-check that failed for another reason, say the database) is retried after a pause rather
/// than at once, again and again.
pub async fn until(core: &Core, end: Option<DateTime<Utc>>) {
    const RETRY: std::time::Duration = std::time::Duration::from_millis(100);
    match end {
        None => std::future::pending().await,
        Some(end) => {
            let left = (end - core.env().clock.now()).to_std().unwrap_or_default();
            tokio::time::sleep(if left.is_zero() { RETRY } else { left }).await;
        }
    }
}

/// Whether an event may have ended some credential or moved its end (a rotation starts the
/// old secret's grace window).
pub fn affects_credentials(event: &Event) -> bool {
    matches!(
        event,
        Event::PersonaRevoked { .. } | Event::KeyRevoked { .. } | Event::KeyRotated { .. }
    )
}
