//! Configuration from flags and `TENANTOPS_*` environment variables, turned into the core's
//! [`Config`] once, at the edge.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use tenantops_core::jwt::JwtConfig;
use tenantops_core::secrets::MasterKey;
use tenantops_core::{Config, MasterKeySource};

/// Options every command that opens the database shares.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// SQLite database file.
    #[arg(
        long,
        global = true,
        env = "TENANTOPS_DB",
        default_value = "./tenantops.db"
    )]
    pub db: PathBuf,
}

/// Builds the core configuration for `db`, reading the environment for the rest:
/// `TENANTOPS_MASTER_KEY` (64 hex digits; default: the file `<db>.master-key`),
/// `TENANTOPS_KEY_ROTATION_GRACE` (e.g. `10m`), `TENANTOPS_EXPORT_DIR` (where export-all
/// archives go; default `exports/` beside the database), and JWT verification —
/// `TENANTOPS_JWT_ALGORITHM`, `TENANTOPS_JWT_SECRET` or `TENANTOPS_JWT_PUBLIC_KEY_FILE`,
/// `TENANTOPS_JWT_ISSUER`, `TENANTOPS_JWT_AUDIENCE`.
pub fn core_config(db: &DbArgs) -> Result<Config> {
    let mut config = Config::new(&db.db);
    if let Some(hex) = env("TENANTOPS_MASTER_KEY") {
        config.master_key = MasterKeySource::Key(
            MasterKey::from_hex(&hex)
                .context("TENANTOPS_MASTER_KEY must be 64 hexadecimal digits")?,
        );
    }
    if let Some(grace) = env("TENANTOPS_KEY_ROTATION_GRACE") {
        let d = humantime_duration(&grace).with_context(|| {
            format!("TENANTOPS_KEY_ROTATION_GRACE=`{grace}` is not a duration like 10m")
        })?;
        config.key_rotation_grace = d;
    }
    if let Some(v) = env("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN") {
        config.decisions_require_sign_in = match v.as_str() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            other => bail!("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN=`{other}`: use true or false"),
        };
    }
    if let Some(dir) = env("TENANTOPS_EXPORT_DIR") {
        config.export_dir = PathBuf::from(dir);
    }
    config.jwt = jwt_config()?;
    Ok(config)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn humantime_duration(text: &str) -> Result<chrono::Duration> {
    Ok(chrono::Duration::from_std(humantime::parse_duration(
        text.trim(),
    )?)?)
}

fn jwt_config() -> Result<Option<JwtConfig>> {
    let Some(algorithm) = env("TENANTOPS_JWT_ALGORITHM") else {
        return Ok(None);
    };
    let key = match (
        env("TENANTOPS_JWT_SECRET"),
        env("TENANTOPS_JWT_PUBLIC_KEY_FILE"),
    ) {
        (Some(secret), None) => secret.into_bytes(),
        (None, Some(path)) => std::fs::read(&path)
            .with_context(|| format!("cannot read TENANTOPS_JWT_PUBLIC_KEY_FILE {path}"))?,
        _ => bail!(
            "TENANTOPS_JWT_ALGORITHM is set: set exactly one of TENANTOPS_JWT_SECRET (HS*) or \
             TENANTOPS_JWT_PUBLIC_KEY_FILE (a PEM public key)"
        ),
    };
    let issuer =
        env("TENANTOPS_JWT_ISSUER").context("set TENANTOPS_JWT_ISSUER (the expected `iss`)")?;
    let audience =
        env("TENANTOPS_JWT_AUDIENCE").context("set TENANTOPS_JWT_AUDIENCE (the expected `aud`)")?;
    Ok(Some(JwtConfig::new(&algorithm, &key, &issuer, &audience)?))
}
