//! The operations of the catalogue, one module per guide section. An operation checks its input
//! and runs; the rules it shares with others live in the domain modules (`crate::members`,
//! `crate::keys`, …) and every statement in the store's repositories.

pub mod approvals;
pub mod audit;
pub mod billing;
pub mod chat;
pub mod keys;
pub mod members;
pub mod roles;
pub mod tenant;
pub mod whoami;

use crate::catalogue::{OpSpec, spec};

/// Every operation; the catalogue sorts them.
pub(crate) fn all() -> Vec<OpSpec> {
    vec![
        spec::<members::CreatePersona>(),
        spec::<members::ListPersonas>(),
        spec::<members::GetPersona>(),
        spec::<members::AssignRoles>(),
        spec::<members::Revoke>(),
        spec::<members::CreateBu>(),
        spec::<members::ListBus>(),
        spec::<members::UpdateBu>(),
        spec::<members::MovePersona>(),
        spec::<roles::ListTemplates>(),
        spec::<keys::Issue>(),
        spec::<keys::List>(),
        spec::<keys::Compliance>(),
        spec::<keys::Rotate>(),
        spec::<keys::Revoke>(),
        spec::<audit::Proof>(),
        spec::<audit::Checkpoint>(),
        spec::<audit::PublishCheckpoint>(),
        spec::<audit::List>(),
        spec::<whoami::WhoAmI>(),
        spec::<approvals::Pending>(),
        spec::<approvals::Mine>(),
        spec::<approvals::Get>(),
        spec::<approvals::Withdraw>(),
        spec::<chat::ChatBind>(),
        spec::<chat::ChatUnbind>(),
        spec::<chat::ChatListOp>(),
        spec::<chat::ChatLinkCode>(),
        spec::<chat::ChatUnlink>(),
        spec::<chat::ChatInstallLink>(),
        spec::<approvals::Decide>(),
        spec::<approvals::BreakGlass>(),
        spec::<approvals::Review>(),
        spec::<approvals::RoutesList>(),
        spec::<approvals::RoutesAdd>(),
        spec::<approvals::RoutesUpdate>(),
        spec::<approvals::RoutesRemove>(),
        spec::<approvals::SettingsOp>(),
        spec::<approvals::UpdateSettings>(),
        spec::<members::DeletePersona>(),
        spec::<tenant::ExportAll>(),
        spec::<billing::Ingest>(),
        spec::<billing::SetPrices>(),
        spec::<billing::SetCap>(),
        spec::<billing::LiveMeter>(),
        spec::<billing::Drill>(),
        spec::<billing::ClosePeriod>(),
        spec::<billing::Invoices>(),
        spec::<billing::InvoicePdf>(),
        spec::<billing::InvoiceCsv>(),
        spec::<billing::ShowbackOp>(),
        spec::<billing::ChartOp>(),
        spec::<billing::SummaryOp>(),
    ]
}

/// The name a reference field resolved to (from a plan's `facts["names"]`), else the
/// reference as given: for sentences people read about a call.
pub(crate) fn named<'a>(
    facts: &'a serde_json::Map<String, serde_json::Value>,
    field: &str,
    given: &'a str,
) -> &'a str {
    facts
        .get("names")
        .and_then(|n| n.get(field))
        .and_then(serde_json::Value::as_str)
        .unwrap_or(given)
}

// Time formatting lives with the clock and handle validation with the ids; re-exported here for
// the operations that still name them through `ops`.
pub use crate::clock::{ms_to_rfc3339, rfc3339};
pub use crate::ids::validate_handle;
