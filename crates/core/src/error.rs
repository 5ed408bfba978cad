//! The core's one error type. Every message says what went wrong and, where it can, what to do.

use thiserror::Error;

/// Everything that can go wrong in the core, classified so that every surface can map it to its
/// own vocabulary (CLI exit codes, HTTP statuses, MCP errors, chat replies).
#[derive(Debug, Error)]
pub enum Error {
    /// The input does not fit the operation: `field` names the offending path (`scopes[1]`).
    #[error("invalid input at `{field}`: {message}")]
    BadInput {
        /// JSON path of the offending field, or `input` for the whole document.
        field: String,
        /// Why it is wrong and what would be right.
        message: String,
    },
    /// The caller may not do this; `reason` is written for a person to act on.
    #[error("denied: {reason}")]
    Denied {
        /// Why, including the missing scope where one is missing.
        reason: String,
    },
    /// The credential is missing, malformed, unknown, expired or revoked.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A referenced object does not exist in the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (duplicate name, cycle, last admin...).
    #[error("{0}")]
    Conflict(String),
    /// The operation name is not in the catalogue.
    #[error("unknown operation `{0}`; run `tenantops ops` to list operations")]
    UnknownOperation(String),
    /// The tenant's keys cannot be used: BYOK is revoked, or its KMS refuses or cannot be
    /// reached. The message names BYOK, the cause and the fix.
    #[error("{0}")]
    KeysUnavailable(String),
    /// Storage failed.
    #[error("storage error: {0}")]
    Store(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Configuration or key material is wrong; the message says how to fix it.
    #[error("configuration: {0}")]
    Config(String),
    /// An invariant the core relies on was broken (corrupt row, impossible state).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::BadInput`].
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Denied`].
    pub fn denied(reason: impl Into<String>) -> Self {
        Error::Denied {
            reason: reason.into(),
        }
    }

    /// A stable machine-readable kind, used in JSON error objects.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadInput { .. } => "bad_input",
            Error::Denied { .. } => "denied",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::UnknownOperation(_) => "unknown_operation",
            Error::Store(_) | Error::Migrate(_) => "storage",
            Error::Config(_) => "config",
            Error::KeysUnavailable(_) => "keys_unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
