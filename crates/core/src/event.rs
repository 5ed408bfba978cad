//! Events: what happened that other parts of the process must react to at once.

use crate::ids::{KeyId, PersonaId, TenantId};

/// Something that happened that other parts of the process must react to at once. On
/// PostgreSQL every replica hears it ([`crate::engine::bus`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
    /// The tenant's keys changed (BYOK configured, rotated, revoked or disabled, or a rotation
    /// finished): every process drops the keys it cached.
    TenantKeysChanged {
        /// Its tenant.
        tenant: TenantId,
    },
    /// A publication of the tenant's signed checkpoint was queued (`audit.publish_checkpoint`):
    /// the server's publisher posts it now rather than at its next pass.
    CheckpointPublicationQueued {
        /// Its tenant.
        tenant: TenantId,
    },
}

/// The PostgreSQL channel every replica listens on for the others' events.
pub const CHANNEL: &str = "tenantops_events";

/// An event as said between replicas: who said it (each ignores its own) and what.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Said {
    /// The replica that said it.
    pub from: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Whether other replicas need to hear `event`: an approved request runs where it was approved.
pub(crate) fn travels(event: &Event) -> bool {
    !matches!(event, Event::RequestApproved { .. })
}

/// The payload that tells the other replicas about `event`, said by replica `me`.
pub(crate) fn payload(me: &str, event: &Event) -> Option<String> {
    serde_json::to_string(&Said {
        from: me.to_owned(),
        event: event.clone(),
    })
    .ok()
}
