//! The engine: everything `Core` does, by concern. Each module adds the methods of its concern
//! to [`crate::Core`]; nothing outside `engine/` and `core.rs` makes or drives a transaction of
//! its own except through the store.

mod audit;
mod auth;
mod bench;
pub mod bus;
mod chat;
mod dispatch;
mod duties;
mod execute;
mod exports;
mod keys;
mod provision;
mod publish;
mod rewrap;
mod worker;

pub(crate) use audit::actor_of;
pub use dispatch::Outcome;
pub use duties::duty_ttl;
pub use provision::TenantCreated;
pub use worker::TickReport;
