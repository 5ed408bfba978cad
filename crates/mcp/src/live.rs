//! Open connections by credential, so that revoking a persona or key ends them at once.
//!
//! Every HTTP response body of `/mcp` (the SSE streams above all) ends when its credential's
//! token is cancelled, and every legacy session is closed. A sweep re-checks each live
//! credential through the core: immediately when this process revokes something, and every few
//! seconds for revocations made by another process sharing the database (the CLI).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tenantops_core::{Core, Error, Event, Principal};
use tokio_util::sync::CancellationToken;

/// Identifies one credential: tenant, persona and how it signed in (which key, JWT).
pub fn credential_key(p: &Principal) -> String {
    format!("{}/{}/{}", p.tenant(), p.persona(), p.via())
}

struct Entry {
    principal: Principal,
    token: CancellationToken,
    streams: usize,
    sessions: HashSet<String>,
}

/// The registry of live credentials.
#[derive(Default, Clone)]
pub struct Live {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    session_owner: HashMap<String, String>,
}

/// Holds one open response body of a credential; dropping it releases the count.
pub struct StreamGuard {
    live: Live,
    key: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut st = self.live.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = st.entries.get_mut(&self.key) {
            e.streams = e.streams.saturating_sub(1);
            if e.streams == 0 && e.sessions.is_empty() {
                st.entries.remove(&self.key);
            }
        }
    }
}

impl Live {
    /// Registers one open response of `principal`; returns its token and a guard.
    pub fn enter(&self, principal: &Principal) -> (CancellationToken, StreamGuard) {
        let key = credential_key(principal);
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = st.entries.entry(key.clone()).or_insert_with(|| Entry {
            principal: principal.clone(),
            token: CancellationToken::new(),
            streams: 0,
            sessions: HashSet::new(),
        });
        e.streams += 1;
        let token = e.token.clone();
        drop(st);
        (
            token,
            StreamGuard {
                live: self.clone(),
                key,
            },
        )
    }

    /// The credential that opened session `id`, if known.
    pub fn session_owner(&self, id: &str) -> Option<String> {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.session_owner.get(id).cloned()
    }

    /// Records that `principal` opened session `id`.
    pub fn bind_session(&self, id: &str, principal: &Principal) {
        let key = credential_key(principal);
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.session_owner.insert(id.to_owned(), key.clone());
        let e = st.entries.entry(key).or_insert_with(|| Entry {
            principal: principal.clone(),
            token: CancellationToken::new(),
            streams: 0,
            sessions: HashSet::new(),
        });
        e.sessions.insert(id.to_owned());
    }

    /// Forgets session `id` (closed by the client or expired).
    pub fn forget_session(&self, id: &str) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = st.session_owner.remove(id)
            && let Some(e) = st.entries.get_mut(&key)
        {
            e.sessions.remove(id);
            if e.streams == 0 && e.sessions.is_empty() {
                st.entries.remove(&key);
            }
        }
    }

    /// Every known session id.
    pub fn sessions(&self) -> Vec<String> {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.session_owner.keys().cloned().collect()
    }

    /// Re-checks every live credential; ends the connections of those no longer valid and
    /// returns the sessions to close.
    pub async fn sweep(&self, core: &Core) -> Vec<String> {
        let live: Vec<(String, Principal)> = {
            let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            st.entries
                .iter()
                .map(|(k, e)| (k.clone(), e.principal.clone()))
                .collect()
        };
        let mut closed = Vec::new();
        for (key, principal) in live {
            match core.refresh(&principal).await {
                Ok(_) => {}
                Err(Error::Unauthenticated(reason)) => {
                    let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(e) = st.entries.remove(&key) {
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

/// Whether an event may have ended some credential.
pub fn is_revocation(event: &Event) -> bool {
    matches!(
        event,
        Event::PersonaRevoked { .. } | Event::KeyRevoked { .. }
    )
}
