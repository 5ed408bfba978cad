//! The operations of the catalogue, one module per guide section. An operation checks its input
//! and runs; the rules it shares with others live in the domain modules (`crate::members`,
//! `crate::keys`, …) and every statement in the store's repositories.

pub mod approvals;
pub mod audit;
pub mod billing;
pub mod byok;
pub mod chat;
pub mod keys;
pub mod members;
pub mod registry;
pub mod roles;
pub mod tenant;
pub mod whoami;

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
