//! tenantops core: the operation catalogue, policy (scopes, tenant isolation), the
//! tenant-isolated store, credentials and the verifiable audit ledger.
//!
//! Surfaces (CLI, MCP, Slack, Discord) do four things only: authenticate a caller into a
//! [`Principal`] with [`Core::authenticate`], parse input, call [`Core::call`], and render the
//! [`Outcome`]. No business rule lives outside this crate.

pub mod apikey;
pub mod approvals;
pub mod billing;
pub mod catalogue;
pub mod chat;
pub mod clock;
pub mod error;
pub mod fault;
pub mod hints;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod ledger;
pub mod members;
pub mod notify;
pub mod ops;
pub mod principal;
pub mod proof;
pub mod redact;
pub mod refs;
pub mod roles;
pub mod scope;
pub mod secrets;
mod service;
pub mod store;

pub use catalogue::{OpSpec, Operation, Risk, catalogue};
pub use error::{Error, Result};
pub use principal::{PersonaKind, Principal, Surface, Via};
pub use scope::Scope;
pub use service::{Config, Core, Env, Event, MasterKeySource, Outcome, TenantCreated};
