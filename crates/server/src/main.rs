//! `tenantops`: every operation of the ProjexCloud Tenant Admin guide, from the shell, chat and MCP.

mod cli;
mod config;
mod demo;
mod exit;
mod metrics;
mod sandbox;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse_args();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(cli::run(args));
    // A blocking read of stdin (MCP over stdio) must not keep the process alive once the
    // command is done, e.g. after its credential was revoked.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    ExitCode::from(code)
}

/// Logs go to stderr (stdout carries the JSON results). `TENANTOPS_LOG` (or `RUST_LOG`) sets the
/// filter, e.g. `debug` or `tenantops_core=trace`; the default shows warnings only. serenity stays
/// at `warn` unless named, as its debug spans hold request bodies and tokens.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("TENANTOPS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    // serenity's request spans carry request bodies and interaction tokens: never below warn,
    // unless asked for by name.
    let filter = if filter.contains("serenity") {
        filter
    } else {
        format!("{filter},serenity=warn")
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}
