//! `tenantops db`: migrations for deploy pipelines, and moving a whole installation between
//! databases (outgrowing the embedded SQLite for PostgreSQL, or back).

use crate::config::{DbArgs, core_config};
use crate::exit;
use serde_json::json;
use tenantops_core::Core;
use tenantops_core::store::{Location, Store, copy};

/// `db migrate`: opens the database (applying pending migrations) and says where it stands.
pub async fn migrate(db: &DbArgs) -> u8 {
    let location = match db.location() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    let store = match Store::open(&location, true).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot migrate {location}: {e}");
            return exit::FAILURE;
        }
    };
    let version = store.schema_version().await;
    store.close().await;
    match version {
        Ok(v) => {
            println!(
                "{}",
                json!({ "database": location.to_string(), "engine": location.engine(), "schema_version": v })
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

/// `db copy --from A --to B`.
pub async fn copy(from: &str, to: &str) -> u8 {
    match run_copy(from, to).await {
        Ok(report) => {
            println!("{report}");
            exit::OK
        }
        Err((code, e)) => {
            eprintln!("error: {e:#}");
            code
        }
    }
}

async fn run_copy(from: &str, to: &str) -> Result<serde_json::Value, (u8, anyhow::Error)> {
    let bad = |e: anyhow::Error| (exit::BAD_INPUT, e);
    let failed = |e: anyhow::Error| (exit::FAILURE, e);
    let source_args = DbArgs {
        db: from.to_owned(),
    };
    let source = source_args
        .location()
        .map_err(|e| bad(e.context("--from")))?;
    let target = Location::parse(to).map_err(|e| bad(anyhow::Error::from(e).context("--to")))?;
    if source == target {
        return Err(bad(anyhow::anyhow!(
            "--from and --to name the same database"
        )));
    }
    // The target keeps the source's master key: sealed secrets and ledger keys depend on it.
    let master_key = core_config(&source_args).map_err(bad)?.master_key;
    let from_store = Store::open(&source, false)
        .await
        .map_err(|e| failed(anyhow::anyhow!("cannot open {source}: {e}")))?;
    let to_store = Store::open(&target, true)
        .await
        .map_err(|e| failed(anyhow::anyhow!("cannot open {target}: {e}")))?;
    let copied = copy::copy(&from_store, &to_store).await.map_err(|e| {
        failed(anyhow::anyhow!(
            "copy failed, nothing was written to {target}: {e}"
        ))
    })?;
    let (src_counts, dst_counts) = (
        copy::counts(&from_store)
            .await
            .map_err(|e| failed(e.into()))?,
        copy::counts(&to_store)
            .await
            .map_err(|e| failed(e.into()))?,
    );
    from_store.close().await;
    to_store.close().await;
    if src_counts != dst_counts {
        return Err(failed(anyhow::anyhow!(
            "row counts differ after the copy (source {src_counts:?}, target {dst_counts:?})"
        )));
    }
    let mut config = tenantops_core::Config::at(target.clone());
    config.master_key = master_key;
    config.create_db = false;
    let core = Core::open(config)
        .await
        .map_err(|e| failed(anyhow::anyhow!("cannot open the copy {target}: {e}")))?;
    let tenants = copy::tenant_ids(core.store())
        .await
        .map_err(|e| failed(e.into()))?;
    let mut entries = 0u64;
    for tenant in &tenants {
        match core.verify_audit(tenant).await {
            Ok(Ok(report)) => entries += report.entries,
            Ok(Err(f)) => {
                return Err((
                    exit::LEDGER_BROKEN,
                    anyhow::anyhow!("tenant {tenant}: the ledger does not verify on the copy: {f}"),
                ));
            }
            Err(e) => return Err(failed(anyhow::anyhow!("tenant {tenant}: {e}"))),
        }
    }
    core.store().close().await;
    Ok(json!({
        "from": source.to_string(),
        "to": target.to_string(),
        "tables": copied,
        "tenants": tenants.len(),
        "ledger_entries_verified": entries,
    }))
}
