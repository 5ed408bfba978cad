//! tenantops MCP surface: every catalogue operation as a tool scoped to the caller, the guide's
//! workflows as prompts, the audit checkpoint and invoices as resources, and approvals as tasks —
//! over stdio ([`stdio::serve`]) and streamable HTTP ([`http::router`]).
//!
//! Like every surface it only authenticates, parses, calls [`tenantops_core::Core::call`] and
//! renders; no business rule lives here.

pub mod bearer;
pub mod handler;
pub mod http;
pub mod limits;
pub mod live;
pub mod prompts;
pub mod resources;
pub mod results;
pub mod stdio;
pub mod tasks;
pub mod tools;

pub use handler::{Caller, McpServer};
pub use http::{HttpOptions, router};
pub use limits::Limits;
