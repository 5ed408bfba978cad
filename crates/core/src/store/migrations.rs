//! What the engines share about schema migrations.

use crate::error::Error;

/// A migration failure as one line that says what to do.
pub(super) fn error(e: sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::VersionMissing(v) => Error::Config(format!(
            "the database has schema migration {v}, which this tenantops does not know: a newer \
             tenantops made it; run that version or newer"
        )),
        MigrateError::VersionMismatch(v) => Error::Config(format!(
            "the database's schema migration {v} differs from this tenantops's: it was made by \
             another build; run the build that made it"
        )),
        MigrateError::Dirty(v) => Error::Config(format!(
            "the database's schema migration {v} failed partway: restore a backup, then run \
             `tenantops db migrate`"
        )),
        e => e.into(),
    }
}
