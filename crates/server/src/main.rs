//! `tenantops`: every operation of the ProjexCloud Tenant Admin guide, from the shell, chat and MCP.

/// Shadows std's `eprintln!` in this crate (every module below is in its textual scope): the
/// line goes through the secret scrubber on its way to stderr, like every log event.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::logging::eprintln(format_args!($($arg)*))
    };
}

mod cli;
mod config;
mod db;
mod demo;
mod exit;
mod logging;
mod metrics;
mod sandbox;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any HTTPS client exists: reqwest/rustls use the ring provider only.
    tenantops_core::kms::install_crypto_provider();
    let args = cli::Cli::parse_args();
    logging::init();
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
