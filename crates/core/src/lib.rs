//! tenantops core: the operation catalogue, policy (scopes, tenant isolation), the
//! tenant-isolated store, credentials and the verifiable audit ledger.
//!
//! Surfaces (CLI, MCP, Slack, Discord) do four things only: authenticate a caller into a
//! [`Principal`] with [`Core::authenticate`], parse input, call [`Core::call`], and render the
//! [`Outcome`]. No business rule lives outside this crate.

pub mod apikey;
pub mod approvals;
pub mod billing;
/// The operation catalogue as surfaces read it: the `Operation` vocabulary and the registered
/// operations.
pub mod catalogue {
    pub use crate::operation::*;
    pub use crate::ops::registry::{catalogue, find};
}
pub mod chat;
pub mod clock;
pub mod config;
mod core;
mod engine;
pub mod env;
pub mod error;
pub mod event;
pub mod fault;
pub mod hints;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod kms;
pub mod ledger;
pub mod members;
pub mod notify;
pub mod operation;
pub mod ops;
pub mod outbound;
pub mod principal;
pub mod proof;
pub mod redact;
pub mod refs;
pub mod request_state;
pub mod roles;
pub mod scope;
pub mod secrets;
pub mod store;
pub mod vault;

pub use catalogue::{OpSpec, Operation, Risk, catalogue};
pub use config::{Config, DEFAULT_LINK_MIN_AGE_SECS, MasterKeySource};
pub use core::Core;
pub use engine::{Outcome, TenantCreated, TickReport, duty_ttl};
pub use env::Env;
pub use error::{Error, Result};
pub use event::Event;
pub use principal::{PersonaKind, Principal, Surface, Via};
pub use scope::Scope;
