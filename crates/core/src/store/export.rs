//! Export by declaration: every table of the schema says whether `tenant.export_all` puts it in
//! the archive, and without which columns. A table nobody declared fails a test, and a table is
//! exported only as declared, so a secret can never reach an archive by omission — adding a
//! table means deciding, here, what happens to it.

/// What happens to a table in an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// The tenant's rows are exported, without the `drop` columns (credential material kept
    /// beside tenant data: say why in `why_dropped`).
    Include {
        /// How rows belong to a tenant.
        owner: Owner,
        /// Columns left out of every row.
        drop: &'static [&'static str],
        /// Why they are left out (recorded in the manifest).
        why_dropped: &'static str,
    },
    /// The table is never exported (recorded in the manifest with the reason).
    Exclude {
        /// Why.
        reason: &'static str,
    },
}

/// One table's declaration.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// What an export does with it.
    pub export: Export,
}

const fn all(owner: Owner) -> Export {
    Export::Include {
        owner,
        drop: &[],
        why_dropped: "",
    }
}

const fn exclude(reason: &'static str) -> Export {
    Export::Exclude { reason }
}

const CREDENTIAL: &str = "holds credential material (keyed digests of secrets that would allow \
     offline guessing with the deployment's pepper); never exported";

/// Every table of the schema, the tenant record first. The order is the archive's order.
pub const TABLES: &[Table] = &[
    Table {
        name: "tenants",
        export: all(Owner::Id),
    },
    Table {
        name: "api_keys",
        export: all(Owner::TenantId),
    },
    Table {
        name: "api_key_secrets",
        export: exclude(CREDENTIAL),
    },
    Table {
        name: "approval_decisions",
        export: all(Owner::TenantId),
    },
    Table {
        name: "approval_requests",
        export: all(Owner::TenantId),
    },
    Table {
        name: "approval_routes",
        export: all(Owner::TenantId),
    },
    Table {
        name: "audit_checkpoints",
        export: all(Owner::TenantId),
    },
    Table {
        name: "audit_entries",
        export: all(Owner::TenantId),
    },
    Table {
        name: "audit_heads",
        export: all(Owner::TenantId),
    },
    Table {
        name: "audit_publications",
        export: all(Owner::TenantId),
    },
    Table {
        name: "billing_cap_alerts",
        export: all(Owner::TenantId),
    },
    Table {
        name: "billing_plans",
        export: all(Owner::TenantId),
    },
    Table {
        name: "billing_prices",
        export: all(Owner::TenantId),
    },
    Table {
        name: "byok_configs",
        export: all(Owner::TenantId),
    },
    Table {
        name: "tenant_data_keys",
        export: exclude(
            "the tenant's data keys, wrapped by its KMS key or the platform key: key material \
             that opens nothing outside this deployment; sealed values are exported opened",
        ),
    },
    Table {
        name: "business_units",
        export: all(Owner::TenantId),
    },
    Table {
        name: "chat_deliveries",
        export: exclude(
            "platform bookkeeping (delivery ids seen, before any tenant is known); no tenant data",
        ),
    },
    Table {
        name: "chat_install_states",
        export: exclude(CREDENTIAL),
    },
    Table {
        name: "chat_link_codes",
        export: exclude(CREDENTIAL),
    },
    Table {
        name: "chat_links",
        export: all(Owner::TenantId),
    },
    Table {
        name: "chat_messages",
        export: all(Owner::TenantId),
    },
    Table {
        name: "chat_workspaces",
        export: Export::Include {
            owner: Owner::TenantId,
            drop: &["bot_token_sealed"],
            why_dropped: "the workspace's bot token (sealed): a credential of the platform app",
        },
    },
    Table {
        name: "invoices",
        export: all(Owner::TenantId),
    },
    Table {
        name: "leases",
        export: exclude("platform bookkeeping (which replica holds which duty); no tenant data"),
    },
    Table {
        name: "personas",
        export: all(Owner::TenantId),
    },
    Table {
        name: "role_assignments",
        export: all(Owner::TenantId),
    },
    Table {
        name: "usage_attributions",
        export: all(Owner::TenantId),
    },
    Table {
        name: "usage_events",
        export: all(Owner::TenantId),
    },
    Table {
        name: "usage_rollups",
        export: all(Owner::TenantId),
    },
];

/// The declaration of `name`, if any.
pub fn declared(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Column names that hold credential material by their name: a table that is exported must
/// drop every such column (checked by a test, so a new secret column cannot slip into archives).
pub fn looks_secret(column: &str) -> bool {
    ["secret", "sealed", "token", "password", "private"]
        .iter()
        .any(|w| column.contains(w))
}

use super::schema::Column;
pub use super::schema::{Owner, Planned};
use super::{Engine, Tx, on};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

/// A table left out (whole or in part) and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Left {
    /// The table, or `table.column` for a dropped column.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What an export of the current schema writes, and what it leaves out.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Tables exported, in archive order.
    pub tables: Vec<Planned>,
    /// Tables and columns left out.
    pub left_out: Vec<Left>,
}

/// The tables of the live schema (not the engine's or the migrator's own).
pub(crate) async fn schema_tables(tx: &mut Tx) -> Result<Vec<String>> {
    match tx.engine() {
        Engine::Sqlite => super::sqlite::tables(tx).await,
        Engine::Postgres => super::postgres::tables(tx).await,
    }
}

async fn columns(tx: &mut Tx, table: &str) -> Result<Vec<Column>> {
    match tx.engine() {
        Engine::Sqlite => super::sqlite::columns(tx, table).await,
        Engine::Postgres => super::postgres::columns(tx, table).await,
    }
}

/// Plans an export of the live schema by the declarations. A table of the schema that is not
/// declared, or a declared column that is missing, is an error: nothing is exported by default.
pub async fn plan(tx: &mut Tx) -> Result<Plan> {
    let live = schema_tables(tx).await?;
    if let Some(undeclared) = live.iter().find(|t| declared(t).is_none()) {
        return Err(Error::Internal(format!(
            "table `{undeclared}` has no export declaration (store/export.rs): nothing is \
             exported until it says whether and how"
        )));
    }
    let mut tables = Vec::new();
    let mut left_out = Vec::new();
    for decl in TABLES {
        if !live.iter().any(|t| t == decl.name) {
            continue;
        }
        match decl.export {
            Export::Exclude { reason } => left_out.push(Left {
                name: decl.name.into(),
                reason: reason.into(),
            }),
            Export::Include {
                owner,
                drop,
                why_dropped,
            } => {
                let cols = columns(tx, decl.name).await?;
                let key_col = match owner {
                    Owner::TenantId => "tenant_id",
                    Owner::Id => "id",
                };
                if !cols.iter().any(|c| c.name == key_col) {
                    return Err(Error::Internal(format!(
                        "table `{}` is declared as owned through `{key_col}`, which it lacks",
                        decl.name
                    )));
                }
                for d in drop {
                    if !cols.iter().any(|c| c.name == *d) {
                        return Err(Error::Internal(format!(
                            "table `{}` declares a dropped column `{d}` it does not have",
                            decl.name
                        )));
                    }
                    left_out.push(Left {
                        name: format!("{}.{d}", decl.name),
                        reason: why_dropped.into(),
                    });
                }
                let kept: Vec<&Column> = cols
                    .iter()
                    .filter(|c| !drop.contains(&c.name.as_str()))
                    .collect();
                let mut key: Vec<(i64, String)> = kept
                    .iter()
                    .filter(|c| c.pk > 0)
                    .map(|c| (c.pk, c.name.clone()))
                    .collect();
                key.sort();
                let columns: Vec<String> = kept.iter().map(|c| c.name.clone()).collect();
                let binary: Vec<String> = kept
                    .iter()
                    .filter(|c| c.binary())
                    .map(|c| c.name.clone())
                    .collect();
                let order = if key.is_empty() {
                    columns.clone()
                } else {
                    key.into_iter().map(|(_, c)| c).collect()
                };
                tables.push(Planned {
                    name: decl.name.to_owned(),
                    owner,
                    columns,
                    order,
                    binary,
                });
            }
        }
    }
    Ok(Plan { tables, left_out })
}

fn owner_filter(owner: Owner) -> &'static str {
    match owner {
        Owner::TenantId => "\"tenant_id\" = $1",
        Owner::Id => "\"id\" = $1",
    }
}

/// The tenant's rows of a planned table and the summed byte length of their kept values.
pub async fn estimate(tx: &mut Tx, table: &Planned, tenant: &TenantId) -> Result<(i64, i64)> {
    let sql = match tx.engine() {
        Engine::Sqlite => super::sqlite::estimate_sql(table, owner_filter(table.owner)),
        Engine::Postgres => super::postgres::estimate_sql(table, owner_filter(table.owner)),
    };
    Ok(
        on!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.as_str())
        .fetch_one(c)
        .await)?,
    )
}

/// The tenant's rows of a planned table, each as one JSON object (BLOBs as uppercase hex), in
/// the table's total order.
pub fn rows<'a>(
    tx: &'a mut Tx,
    table: &Planned,
    tenant: &'a TenantId,
) -> Result<BoxStream<'a, Result<String>>> {
    let sql = match tx.engine() {
        Engine::Sqlite => super::sqlite::json_rows_sql(table, owner_filter(table.owner)),
        Engine::Postgres => super::postgres::json_rows_sql(table, owner_filter(table.owner)),
    };
    Ok(
        on!(tx, c => sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch(c)
        .map_err(Error::from)
        .boxed()),
    )
}

/// Every row the database holds for `tenant`, table by table (each row as JSON text), whether or
/// not an export takes it: what isolation tests and audits compare. Tables without a
/// `tenant_id` column (platform bookkeeping) are not included.
pub async fn tenant_rows(
    store: &super::Store,
    tenant: &TenantId,
) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
    let mut tx = store.begin_read().await?;
    let mut out = std::collections::BTreeMap::new();
    for name in schema_tables(&mut tx).await? {
        let cols = columns(&mut tx, &name).await?;
        let owner = if name == "tenants" {
            Owner::Id
        } else if cols.iter().any(|c| c.name == "tenant_id") {
            Owner::TenantId
        } else {
            continue;
        };
        let table = Planned {
            name: name.clone(),
            owner,
            order: cols.iter().map(|c| c.name.clone()).collect(),
            binary: cols
                .iter()
                .filter(|c| c.binary())
                .map(|c| c.name.clone())
                .collect(),
            columns: cols.into_iter().map(|c| c.name).collect(),
        };
        let mut rows: Vec<String> = rows(&mut tx, &table, tenant)?.try_collect().await?;
        rows.sort();
        out.insert(name, rows);
    }
    tx.rollback().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").into(), true)
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn every_sealed_column_and_its_key_is_in_the_schema() {
        let (_dir, store) = store().await;
        let mut tx = store.begin_read().await.unwrap();
        for col in super::super::vault::SEALED {
            let names: Vec<String> = columns(&mut tx, col.table)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect();
            for needed in col.key.iter().chain([&col.column, &"tenant_id"]) {
                assert!(
                    names.iter().any(|n| n == needed),
                    "{}.{needed} is not in the schema",
                    col.table
                );
            }
        }
    }

    #[tokio::test]
    async fn every_table_of_the_schema_is_declared_and_every_declaration_is_a_table() {
        let (_dir, store) = store().await;
        let mut tx = store.begin_read().await.unwrap();
        let live = schema_tables(&mut tx).await.unwrap();
        for t in &live {
            assert!(
                declared(t).is_some(),
                "table `{t}` has no export declaration: add it to store/export.rs TABLES"
            );
        }
        for d in TABLES {
            assert!(
                live.iter().any(|t| t == d.name),
                "TABLES declares `{}`, which the schema does not have",
                d.name
            );
        }
        assert_eq!(TABLES[0].name, "tenants", "the tenant record comes first");
        plan(&mut tx).await.unwrap();
    }

    #[tokio::test]
    async fn no_exported_column_looks_like_a_secret_and_credential_tables_stay_out() {
        let (_dir, store) = store().await;
        let mut tx = store.begin_read().await.unwrap();
        let p = plan(&mut tx).await.unwrap();
        for t in &p.tables {
            for c in &t.columns {
                // A sealed column is exported opened, by `tenant.export_all`, as its owner's data.
                let opened = super::super::vault::SEALED
                    .iter()
                    .any(|s| s.table == t.name && s.column == c);
                assert!(
                    opened || !looks_secret(c),
                    "`{}.{c}` would be exported: drop it in its declaration (or exclude the table)",
                    t.name
                );
            }
        }
        for credential in ["api_key_secrets", "chat_link_codes", "chat_install_states"] {
            assert!(
                p.left_out.iter().any(|l| l.name == credential),
                "{credential}"
            );
            assert!(
                p.tables.iter().all(|t| t.name != credential),
                "{credential}"
            );
        }
        assert!(
            p.left_out
                .iter()
                .any(|l| l.name == "chat_workspaces.bot_token_sealed")
        );
    }

    #[tokio::test]
    async fn a_table_nobody_declared_stops_the_export() {
        let (_dir, store) = store().await;
        let mut tx = store.begin_write().await.unwrap();
        on!(tx, c => sqlx::query("CREATE TABLE webhook_secrets (tenant_id TEXT, secret TEXT)")
            .execute(c)
            .await
            .map(|_| ()))
        .unwrap();
        let err = plan(&mut tx).await.unwrap_err();
        assert!(err.to_string().contains("webhook_secrets"), "{err}");
    }
}
