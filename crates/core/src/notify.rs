//! The notification port: how approval events and progress leave the core. Chat surfaces and
//! webhooks implement [`Notifier`]; the core ships a log sink and a recording double.

use crate::ids::TenantId;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    /// A request awaits a decision by `approvers`.
    Requested {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// The operation.
        operation: String,
        /// What will happen.
        summary: String,
        /// Who may decide (persona ids).
        approvers: Vec<String>,
    },
    /// Someone decided.
    Decided {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// Who decided.
        by: String,
        /// `approve` or `reject`.
        decision: String,
        /// The state after the decision.
        state: String,
    },
    /// The SLA breached; the escalation persona is paged (once).
    Escalated {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// The escalation persona, if the route names one.
        to: Option<String>,
    },
    /// The request reached its hard limit undecided.
    Expired {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
    },
    /// The request was cancelled (its requester was revoked).
    Cancelled {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// Why.
        reason: String,
    },
    /// A requester approved their own destructive request in an emergency.
    BreakGlass {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// Who broke the glass.
        by: String,
        /// Their written reason.
        reason: String,
        /// Every approver of the route, to be told (persona ids).
        approvers: Vec<String>,
    },
    /// The approved operation ran.
    Executed {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// The operation.
        operation: String,
        /// The requester (to be told).
        requester: String,
    },
    /// The approved operation could not run.
    Failed {
        /// The tenant.
        tenant: TenantId,
        /// The request id.
        request_id: String,
        /// The operation.
        operation: String,
        /// The requester (to be told).
        requester: String,
        /// Why.
        reason: String,
    },
    /// A SKU's usage crossed 80, 100 or 120 % of its soft cap (once per period and threshold).
    SoftCap {
        /// The tenant.
        tenant: TenantId,
        /// The SKU.
        sku: String,
        /// The threshold crossed, in percent.
        threshold: i64,
        /// The period (`YYYY-MM`).
        period: String,
        /// Quantity so far (decimal string).
        quantity: String,
        /// The cap (decimal string).
        cap: String,
    },
    /// A chat account was unlinked from its persona by someone else: its person is told.
    ChatUnlinked {
        /// The tenant.
        tenant: TenantId,
        /// The persona it acted as.
        persona: String,
        /// That persona's handle.
        handle: String,
        /// The platform.
        platform: String,
        /// The workspace.
        workspace_id: String,
        /// The chat user, told directly.
        user_id: String,
        /// Who unlinked it (persona id).
        by: String,
        /// Their handle.
        by_handle: String,
    },
    /// Progress of a long operation.
    Progress {
        /// The tenant.
        tenant: TenantId,
        /// The operation.
        operation: String,
        /// Steps done.
        done: u64,
        /// Steps in all.
        total: u64,
        /// What is happening.
        message: String,
    },
}

/// Where notifications go. Implementations must not block: hand slow work to a task.
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one notification.
    fn notify(&self, notification: &Notification);
}

/// Writes every notification to the log (target `tenantops::notify`).
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, n: &Notification) {
        tracing::info!(target: "tenantops::notify", notification = %serde_json::to_string(n).unwrap_or_default());
    }
}

/// Keeps every notification, for tests and the chat sandbox.
#[derive(Clone, Debug, Default)]
pub struct RecordingNotifier(Arc<Mutex<Vec<Notification>>>);

impl RecordingNotifier {
    /// Everything recorded so far.
    pub fn all(&self) -> Vec<Notification> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, n: &Notification) {
        if let Ok(mut v) = self.0.lock() {
            v.push(n.clone());
        }
    }
}
