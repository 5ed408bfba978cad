//! Copying a whole installation from one database to another (`tenantops db copy`), on either
//! engine: every table in an order that satisfies its foreign keys, every row read as JSON in
//! the table's total order (bytes as hex) and written back with the target column's own type,
//! in one transaction on the target — all of it or nothing. The target must be empty.

use super::schema::{Column, Planned, ident};
use super::{Engine, Store, Tx, on};
use crate::error::{Error, Result};
use futures::TryStreamExt;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every table of the schema, parents before children. A table of the schema missing here
/// fails [`copy`] (and a test), so a new table is never left behind.
pub const ORDER: &[&str] = &[
    "tenants",
    "tenant_data_keys",
    "byok_configs",
    "business_units",
    "personas",
    "role_assignments",
    "api_keys",
    "api_key_secrets",
    "audit_heads",
    "audit_entries",
    "audit_checkpoints",
    "audit_publications",
    "approval_routes",
    "approval_requests",
    "approval_decisions",
    "billing_plans",
    "billing_prices",
    "billing_cap_alerts",
    "usage_attributions",
    "usage_events",
    "usage_rollups",
    "invoices",
    "chat_workspaces",
    "chat_links",
    "chat_link_codes",
    "chat_install_states",
    "chat_messages",
    "chat_deliveries",
    "leases",
];

/// Tables whose rows are not carried over: which replica holds which duty means nothing to
/// another database.
const SKIPPED: &[&str] = &["leases"];

/// Rows per multi-row `INSERT` (well under either engine's limit on bound parameters).
const BATCH_PARAMS: usize = 30_000;

/// Rows copied, by table.
pub type Copied = BTreeMap<String, u64>;

/// Copies every row of `from` into `to`, which must hold no tenant. Returns the rows copied by
/// table; on any error nothing is left in `to`.
pub async fn copy(from: &Store, to: &Store) -> Result<Copied> {
    if !to.is_empty().await? {
        return Err(Error::Config(
            "the target database already holds tenants: copy into a new, empty database".into(),
        ));
    }
    let mut src = from.begin_read().await?;
    let tables = super::export::schema_tables(&mut src).await?;
    if let Some(t) = tables.iter().find(|t| !ORDER.contains(&t.as_str())) {
        return Err(Error::Internal(format!(
            "table `{t}` has no place in store/copy.rs ORDER: nothing is copied until it does"
        )));
    }
    let mut dst = to.begin_write().await?;
    let mut copied = Copied::new();
    for &name in ORDER {
        if SKIPPED.contains(&name) || !tables.iter().any(|t| t == name) {
            continue;
        }
        let src_cols = columns(&mut src, name).await?;
        let dst_cols = columns(&mut dst, name).await?;
        let names: Vec<String> = src_cols.iter().map(|c| c.name.clone()).collect();
        if dst_cols.iter().map(|c| &c.name).ne(names.iter()) {
            return Err(Error::Config(format!(
                "table `{name}` has other columns on the target: run the same tenantops \
                 version's migrations on both (`tenantops db migrate`)"
            )));
        }
        let table = Planned {
            name: name.to_owned(),
            owner: super::schema::Owner::TenantId,
            order: key_order(&src_cols),
            binary: src_cols
                .iter()
                .filter(|c| c.binary())
                .map(|c| c.name.clone())
                .collect(),
            columns: names,
        };
        let rows: Vec<String> = {
            let sql = all_rows_sql(src.engine(), &table);
            on!(src, c => sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .fetch(c)
                .map_err(Error::from)
                .try_collect::<Vec<String>>()
                .await)?
        };
        let n = rows.len() as u64;
        insert_rows(&mut dst, &table, &dst_cols, rows).await?;
        copied.insert(name.to_owned(), n);
    }
    if dst.engine() == Engine::Postgres {
        // Identity columns continue after the copied ids.
        on!(dst, c => sqlx::query(
            "SELECT setval(pg_get_serial_sequence('audit_publications', 'id'), \
             COALESCE((SELECT MAX(id) FROM audit_publications), 0) + 1, false)",
        )
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    dst.commit().await?;
    src.end_read();
    Ok(copied)
}

/// Row counts by table, for comparing a copy with its source.
pub async fn counts(store: &Store) -> Result<Copied> {
    let mut tx = store.begin_read().await?;
    let mut out = Copied::new();
    for name in super::export::schema_tables(&mut tx).await? {
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        let sql = format!("SELECT COUNT(*) FROM {}", ident(&name));
        let n: i64 = on!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(c).await)?;
        out.insert(name, n as u64);
    }
    tx.end_read();
    Ok(out)
}

async fn columns(tx: &mut Tx, table: &str) -> Result<Vec<Column>> {
    match tx.engine() {
        Engine::Sqlite => super::sqlite::columns(tx, table).await,
        Engine::Postgres => super::postgres::columns(tx, table).await,
    }
}

fn key_order(cols: &[Column]) -> Vec<String> {
    let mut key: Vec<(i64, String)> = cols
        .iter()
        .filter(|c| c.pk > 0)
        .map(|c| (c.pk, c.name.clone()))
        .collect();
    key.sort();
    if key.is_empty() {
        cols.iter().map(|c| c.name.clone()).collect()
    } else {
        key.into_iter().map(|(_, c)| c).collect()
    }
}

fn all_rows_sql(engine: Engine, table: &Planned) -> String {
    match engine {
        Engine::Sqlite => super::sqlite::json_rows_sql(table, "1 = 1"),
        Engine::Postgres => super::postgres::json_rows_sql(table, "TRUE"),
    }
}

/// A value of a row as the target column takes it.
enum Cell {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn cell(table: &str, col: &Column, kind: Kind, v: &Value) -> Result<Cell> {
    let bad = || {
        Error::Internal(format!(
            "table `{table}` column `{}`: value {v} does not fit the target's column",
            col.name
        ))
    };
    Ok(match (kind, v) {
        (Kind::Int, Value::Null) => Cell::Int(None),
        (Kind::Int, Value::Number(n)) => Cell::Int(Some(n.as_i64().ok_or_else(bad)?)),
        (Kind::Int, Value::Bool(b)) => Cell::Int(Some(i64::from(*b))),
        (Kind::Bool, Value::Null) => Cell::Bool(None),
        (Kind::Bool, Value::Bool(b)) => Cell::Bool(Some(*b)),
        (Kind::Bool, Value::Number(n)) => Cell::Bool(Some(n.as_i64().ok_or_else(bad)? != 0)),
        (Kind::Bytes, Value::Null) => Cell::Bytes(None),
        (Kind::Bytes, Value::String(h)) => Cell::Bytes(Some(hex::decode(h).map_err(|_| bad())?)),
        (Kind::Text, Value::Null) => Cell::Text(None),
        (Kind::Text, Value::String(s)) => Cell::Text(Some(s.clone())),
        _ => return Err(bad()),
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
    Bytes,
}

/// The value kind of a target column, from its declared type.
fn kind(table: &str, col: &Column) -> Result<Kind> {
    Ok(match col.ty.as_str() {
        "integer" | "bigint" | "int" | "int8" => Kind::Int,
        "boolean" => Kind::Bool,
        "blob" | "bytea" => Kind::Bytes,
        "text" => Kind::Text,
        other => {
            return Err(Error::Internal(format!(
                "table `{table}` column `{}` has type `{other}`, which db copy does not know",
                col.name
            )));
        }
    })
}

async fn insert_rows(
    tx: &mut Tx,
    table: &Planned,
    cols: &[Column],
    rows: Vec<String>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let kinds = cols
        .iter()
        .map(|c| kind(&table.name, c))
        .collect::<Result<Vec<Kind>>>()?;
    let per_row = cols.len();
    let rows_per_batch = (BATCH_PARAMS / per_row).max(1);
    let names = cols
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(rows_per_batch) {
        let mut cells = Vec::with_capacity(chunk.len() * per_row);
        for line in chunk {
            let obj: serde_json::Map<String, Value> = serde_json::from_str(line).map_err(|e| {
                Error::Internal(format!("a row of `{}` is not JSON: {e}", table.name))
            })?;
            for (col, kind) in cols.iter().zip(&kinds) {
                let v = obj.get(&col.name).unwrap_or(&Value::Null);
                cells.push(cell(&table.name, col, *kind, v)?);
            }
        }
        let placeholders = (0..chunk.len())
            .map(|r| {
                let row = (0..per_row)
                    .map(|c| format!("${}", r * per_row + c + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({row})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({names}) VALUES {placeholders}",
            ident(&table.name)
        );
        on!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for cell in &cells {
                q = match cell {
                    Cell::Int(v) => q.bind(*v),
                    Cell::Bool(v) => q.bind(*v),
                    Cell::Text(v) => q.bind(v.clone()),
                    Cell::Bytes(v) => q.bind(v.clone()),
                };
            }
            q.execute(c).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Every tenant of the database, by id (to verify each ledger after a copy).
pub async fn tenant_ids(store: &Store) -> Result<Vec<crate::ids::TenantId>> {
    let mut tx = store.read().await?;
    let ids: Vec<String> =
        on!(tx, c => sqlx::query_scalar("SELECT id FROM tenants ORDER BY id").fetch_all(c).await)?;
    tx.end_read();
    Ok(ids.into_iter().map(crate::ids::TenantId::from_db).collect())
}
