//! What every core bench shares: the database it runs on. SQLite (a temporary file,
//! `synchronous=FULL`) by default; PostgreSQL with `TENANTOPS_BENCH_POSTGRES=<admin URL>`, on a
//! new database made for the run — the same bench, both engines, figures side by side.

use tenantops_core::secrets::MasterKey;
use tenantops_core::store::Location;
use tenantops_core::{Config, MasterKeySource};

/// The configuration of a bench's core (`dir` holds the SQLite file), and the engine's name
/// for the report.
pub async fn config(dir: &std::path::Path) -> (Config, &'static str) {
    match std::env::var("TENANTOPS_BENCH_POSTGRES") {
        Ok(admin) if !admin.trim().is_empty() => {
            let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("connect to TENANTOPS_BENCH_POSTGRES");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create the bench database");
            pool.close().await;
            let mut url = url::Url::parse(&admin).expect("TENANTOPS_BENCH_POSTGRES is a URL");
            url.set_path(&name);
            let mut config = Config::at(Location::Postgres(url.to_string()));
            config.master_key = MasterKeySource::Key(MasterKey::generate());
            (config, "PostgreSQL")
        }
        _ => (Config::new(dir.join("bench.db")), "SQLite synchronous=FULL"),
    }
}
