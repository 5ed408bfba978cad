//! Logs on stderr that never carry a secret, whatever the level.
//!
//! Two layers, because either alone leaks. First, dependencies that log whole payloads are
//! capped where they cannot: rmcp logs every JSON-RPC request and response at `debug` (a new
//! key's secret is in one), serenity logs gateway payloads (interaction tokens, the codes people
//! type) at `warn`, slack-morphism logs whole command events at `warn`, HTTP and WebSocket
//! clients log URLs and frames at `debug`/`trace` (Discord webhook URLs carry interaction
//! tokens), sqlx logs statements. Every crate that is not tenantops's own is capped at `info`,
//! those named above lower; `TENANTOPS_LOG` cannot raise a cap. Second, every line written to
//! stderr — log events, panics, and the CLI's error lines — passes through
//! [`tenantops_core::redact::text`], which scrubs every secret shape tenantops knows and every
//! secret this process was configured with ([`register_configured_secrets`]).

use std::io::{IsTerminal, Write};
use tenantops_core::redact;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The most any dependency may log, whatever `TENANTOPS_LOG` asks for: below these levels the
/// crates print request or response bodies, tokens or URLs that carry them.
const CAPS: &[(&str, LevelFilter)] = &[
    ("rmcp", LevelFilter::INFO),
    ("serenity", LevelFilter::ERROR),
    ("slack_morphism", LevelFilter::ERROR),
    ("sqlx", LevelFilter::WARN),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("reqwest", LevelFilter::INFO),
    ("tungstenite", LevelFilter::INFO),
    ("tokio_tungstenite", LevelFilter::INFO),
    ("tower_http", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
];

/// Settings whose values are secrets without a recognisable shape (or with one worth naming
/// anyway): the environment variable and the command-line flag.
const SECRET_SETTINGS: &[(&str, &str)] = &[
    ("TENANTOPS_SLACK_SIGNING_SECRET", "--slack-signing-secret"),
    ("TENANTOPS_SLACK_BOT_TOKEN", "--slack-bot-token"),
    ("TENANTOPS_SLACK_APP_TOKEN", "--slack-app-token"),
    ("TENANTOPS_SLACK_CLIENT_SECRET", "--slack-client-secret"),
    ("TENANTOPS_DISCORD_BOT_TOKEN", "--discord-bot-token"),
    ("TENANTOPS_JWT_SECRET", ""),
    ("TENANTOPS_MASTER_KEY", ""),
    ("TENANTOPS_API_KEY", "--api-key"),
];

/// Settings that name a database: a PostgreSQL URL among them may carry a password.
const DATABASE_SETTINGS: &[(&str, &str)] =
    &[("TENANTOPS_DB", "--db"), ("", "--from"), ("", "--to")];

/// The password of a database URL, as written and decoded.
fn url_passwords(text: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(p) = url.password() {
        out.push(p.to_owned());
        if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
            out.push(decoded.into_owned());
        }
    }
    for (k, v) in url.query_pairs() {
        if k == "password" {
            out.push(v.into_owned());
        }
    }
    out
}

/// The values of `flag` on the command line (`--flag VALUE` or `--flag=VALUE`).
fn flag_values<'a>(args: &'a [String], flag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    args.iter().enumerate().filter_map(move |(i, arg)| {
        if arg == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            arg.strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// Makes every secret this process was configured with, from the environment or the command
/// line (`--flag VALUE` or `--flag=VALUE`), be scrubbed from whatever reaches stderr — and the
/// password of a PostgreSQL URL given as the database.
pub fn register_configured_secrets(args: &[String]) {
    for (var, flag) in DATABASE_SETTINGS {
        let mut texts: Vec<String> = flag_values(args, flag).map(str::to_owned).collect();
        if !var.is_empty()
            && let Ok(v) = std::env::var(var)
        {
            texts.push(v);
        }
        for password in texts.iter().flat_map(|t| url_passwords(t)) {
            if !password.is_empty() {
                redact::register(&password);
            }
        }
    }
    for (var, flag) in SECRET_SETTINGS {
        if let Ok(value) = std::env::var(var) {
            redact::register(&value);
        }
        if flag.is_empty() {
            continue;
        }
        for (i, arg) in args.iter().enumerate() {
            if arg == flag
                && let Some(value) = args.get(i + 1)
            {
                redact::register(value);
            } else if let Some(value) = arg
                .strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
            {
                redact::register(value);
            }
        }
    }
}

/// Logs go to stderr (stdout carries the JSON results). `TENANTOPS_LOG` (or `RUST_LOG`) sets the
/// filter, e.g. `debug` or `tenantops_core=trace`; the default shows warnings only. Dependencies
/// stay within [`CAPS`] (everything not tenantops's own within `info`), and every line is
/// scrubbed of secrets. Panics are reported through the same scrubber.
pub fn init() {
    let args: Vec<String> = std::env::args().collect();
    register_configured_secrets(&args);
    let asked = std::env::var("TENANTOPS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    let caps = caps();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Redacting(write_raw))
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_filter(EnvFilter::new(&asked).and(caps));
    tracing_subscriber::registry().with(layer).init();
    std::panic::set_hook(Box::new(report_panic));
    tracing::debug!(filter = %asked, caps = ?CAPS, "logging to stderr, secrets scrubbed");
}

/// tenantops's own crates as asked; every other crate within its cap (`info` unless named).
fn caps() -> Targets {
    CAPS.iter().fold(
        Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("tenantops", LevelFilter::TRACE),
        |t, (target, level)| t.with_target(*target, *level),
    )
}

/// Writes `text` to stderr with every secret scrubbed.
fn write_stderr(text: &str) {
    write_raw(&redact::text(text));
}

/// Writes `text`, already scrubbed, to stderr.
fn write_raw(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// What `eprintln!` becomes in this crate (see `main.rs`): the line, scrubbed, on stderr.
pub fn eprintln(args: std::fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    write_stderr(&line);
}

/// The default panic report (thread, location, message; a backtrace when `RUST_BACKTRACE`
/// asks for one), scrubbed: a panic message may quote whatever value it choked on.
fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let mut text = format!("\nthread '{name}' {info}\n");
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
    } else {
        text.push_str(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
    }
    write_stderr(&text);
}

/// Hands the log formatter a buffer per event and, when the event is done, scrubs it and passes
/// it to the sink (stderr in the binary).
struct Redacting(fn(&str));

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer {
            buf: Vec::with_capacity(256),
            sink: self.0,
        }
    }
}

/// One formatted event; scrubbed and written on drop, so a secret split across the
/// formatter's writes is still seen whole.
struct EventBuffer {
    buf: Vec<u8>,
    /// Writes scrubbed text.
    sink: fn(&str),
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            (self.sink)(&redact::text(&String::from_utf8_lossy(&self.buf)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_scrubbed_wherever_it_was_given() {
        let args: Vec<String> = [
            "tenantops",
            "db",
            "copy",
            "--from",
            "./t.db",
            "--to=postgres://ops:pg%2Fpass-0123456789@db:5432/tops",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        register_configured_secrets(&args);
        let line = redact::text("cannot connect with pg/pass-0123456789 or pg%2Fpass-0123456789");
        assert!(!line.contains("pass-0123456789"), "{line}");
    }

    #[test]
    fn dependencies_that_log_payloads_are_capped_whatever_is_asked() {
        let caps = caps();
        let level = |target: &str| {
            [
                LevelFilter::TRACE,
                LevelFilter::DEBUG,
                LevelFilter::INFO,
                LevelFilter::WARN,
                LevelFilter::ERROR,
            ]
            .into_iter()
            .find(|l| caps.would_enable(target, &l.into_level().unwrap()))
        };
        assert_eq!(level("tenantops_core::service"), Some(LevelFilter::TRACE));
        assert_eq!(level("tenantops::cli"), Some(LevelFilter::TRACE));
        assert_eq!(level("rmcp::service"), Some(LevelFilter::INFO));
        assert_eq!(level("serenity::gateway::ws"), Some(LevelFilter::ERROR));
        assert_eq!(level("slack_morphism::listener"), Some(LevelFilter::ERROR));
        assert_eq!(level("h2::codec"), Some(LevelFilter::INFO));
        assert_eq!(level("some_new_crate"), Some(LevelFilter::INFO));
    }

    #[test]
    fn configured_secrets_from_flags_are_registered() {
        let args: Vec<String> = [
            "tenantops",
            "serve",
            "--slack-signing-secret",
            "flag-signing-secret-1234",
            "--discord-bot-token=flag-discord-token-5678",
        ]
        .map(String::from)
        .to_vec();
        register_configured_secrets(&args);
        let line = "a flag-signing-secret-1234 and flag-discord-token-5678";
        let r = redact::text(line);
        assert!(!r.contains("flag-signing-secret-1234"), "{r}");
        assert!(!r.contains("flag-discord-token-5678"), "{r}");
    }

    static CAPTURED: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

    fn capture(text: &str) {
        CAPTURED.lock().unwrap().push_str(text);
    }

    #[test]
    fn every_event_is_scrubbed_whatever_logs_it() {
        let key = tenantops_core::apikey::ApiKeySecret::generate();
        let key = key.expose();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Redacting(capture))
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // As a dependency would log a whole response: in a field, in Debug, in the message.
            tracing::debug!(target: "some_dependency", result = ?serde_json::json!({"api_key": key}), "response");
            tracing::trace!("Authorization: Bearer {key}");
            tracing::info!(code = "LINK-7QK2M-9HX4T", "linked");
        });
        let captured = CAPTURED.lock().unwrap().clone();
        assert!(captured.contains("response"), "{captured}");
        assert_eq!(captured.lines().count(), 3, "{captured}");
        assert!(!captured.contains(key), "{captured}");
        assert!(!captured.contains(&key[5..37]), "{captured}");
        assert!(!captured.contains("7QK2M-9HX4T"), "{captured}");
    }
}
