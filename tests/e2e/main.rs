//! Black-box end-to-end tests: they drive the built `tenantops` binary the way a shell, a script
//! or an auditor would, and check only what it prints, its exit codes and the files it leaves.

mod approvals;
mod audit;
mod byok;
mod cli;
mod crash;
mod db;
mod demo;
mod discord;
mod fake_discord;
mod fake_slack;
mod logs;
mod mcp;
mod mcp_rotation;
mod publish;
mod replicas;
mod secrets;
mod slack;
mod support;
mod usage;
