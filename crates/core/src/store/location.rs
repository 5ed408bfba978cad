//! Where the database is: a SQLite file or a PostgreSQL server, named by one string
//! (`TENANTOPS_DB` / `--db`). Shown without its password, everywhere.

use super::Engine;
use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// A database: a SQLite file (a path or `sqlite://path`) or a PostgreSQL URL
/// (`postgres://…` or `postgresql://…`).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (it may hold a password: never shown).
    Postgres(String),
}

impl Location {
    /// Reads `--db`: a URL naming its engine, or else a file path (SQLite).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Config(
                "the database is empty: give --db / TENANTOPS_DB a file path, sqlite://PATH or \
                 postgres://USER@HOST/DB"
                    .into(),
            ));
        }
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            url::Url::parse(text).map_err(|e| {
                Error::Config(format!(
                    "the PostgreSQL URL in --db / TENANTOPS_DB is not a URL ({e}): write \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                ))
            })?;
            return Ok(Self::Postgres(text.to_owned()));
        }
        if lower.starts_with("sqlite:") {
            let path = &text["sqlite:".len()..];
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(Error::Config(
                    "sqlite:// needs a file path, as in sqlite://./tenantops.db".into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(Error::Config(format!(
                "--db / TENANTOPS_DB: `{scheme}://` is not a database tenantops runs on; use a \
                 file path, sqlite://PATH or postgres://…"
            )));
        }
        Ok(Self::Sqlite(PathBuf::from(text)))
    }

    /// The engine this database runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Self::Sqlite(path.to_owned())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    // Query parameters may carry a password too (`?password=`).
                    if u.query().is_some() {
                        u.set_query(Some("…"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://…"),
            },
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls_name_their_engine() {
        assert_eq!(
            Location::parse("./t.db").unwrap(),
            Location::Sqlite("./t.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/t.db").unwrap(),
            Location::Sqlite("/var/lib/t.db".into())
        );
        assert_eq!(
            Location::parse("sqlite://t.db").unwrap(),
            Location::Sqlite("t.db".into())
        );
        let pg = Location::parse("postgres://u:hunter2@db:5432/tops").unwrap();
        assert_eq!(pg.engine(), Engine::Postgres);
        assert_eq!(
            Location::parse("PostgreSQL://u@db/tops").unwrap().engine(),
            Engine::Postgres
        );
        assert!(Location::parse("mysql://db/x").is_err());
        assert!(Location::parse("  ").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    #[test]
    fn a_password_is_never_shown() {
        let pg = Location::parse("postgres://u:hunter2@db:5432/tops?password=hunter3").unwrap();
        let shown = format!("{pg} {pg:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("db:5432/tops"), "{shown}");
    }
}
