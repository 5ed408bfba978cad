//! Prometheus metrics of the running server, fed by the core's notification port and the
//! approvals worker, rendered in the Prometheus text format at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tenantops_core::notify::{Notification, Notifier};

/// Label set naming a notification kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `requested`, `decided`, `executed`, …
    pub kind: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Notifications that left the core, by kind.
    pub notifications: Family<KindLabel, Counter>,
    /// Passes of the approvals worker.
    pub worker_ticks: Counter,
    /// Worker passes that failed.
    pub worker_errors: Counter,
    /// Requests escalated by the worker.
    pub escalated: Counter,
    /// Requests expired by the worker.
    pub expired: Counter,
    /// Approved requests the worker executed (resumed).
    pub resumed: Counter,
    /// Approval requests waiting for a decision, across tenants (sampled at scrape).
    pub open_requests: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("tenantops");
        let notifications = Family::<KindLabel, Counter>::default();
        registry.register(
            "notifications",
            "Notifications that left the core, by kind",
            notifications.clone(),
        );
        let worker_ticks = Counter::default();
        registry.register(
            "approvals_worker_ticks",
            "Passes of the approvals worker",
            worker_ticks.clone(),
        );
        let worker_errors = Counter::default();
        registry.register(
            "approvals_worker_errors",
            "Approvals worker passes that failed",
            worker_errors.clone(),
        );
        let escalated = Counter::default();
        registry.register(
            "approvals_escalated",
            "Requests escalated after their SLA breached",
            escalated.clone(),
        );
        let expired = Counter::default();
        registry.register(
            "approvals_expired",
            "Requests expired undecided",
            expired.clone(),
        );
        let resumed = Counter::default();
        registry.register(
            "approvals_resumed",
            "Approved requests executed by the worker",
            resumed.clone(),
        );
        let open_requests = Gauge::default();
        registry.register(
            "approvals_open",
            "Approval requests waiting for a decision",
            open_requests.clone(),
        );
        Arc::new(Self {
            registry,
            notifications,
            worker_ticks,
            worker_errors,
            escalated,
            expired,
            resumed,
            open_requests,
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts notifications by kind.
pub struct MetricsNotifier(pub Arc<Metrics>);

impl Notifier for MetricsNotifier {
    fn notify(&self, n: &Notification) {
        let kind = match n {
            Notification::Requested { .. } => "requested",
            Notification::Decided { .. } => "decided",
            Notification::Escalated { .. } => "escalated",
            Notification::Expired { .. } => "expired",
            Notification::Cancelled { .. } => "cancelled",
            Notification::BreakGlass { .. } => "break_glass",
            Notification::Executed { .. } => "executed",
            Notification::Failed { .. } => "failed",
            Notification::ChatUnlinked { .. } => "chat_unlinked",
            Notification::Progress { .. } => "progress",
            Notification::SoftCap { .. } => "soft_cap",
        };
        self.0
            .notifications
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }
}
