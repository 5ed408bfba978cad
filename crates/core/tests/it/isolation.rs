//! The isolation matrix: every catalogue operation, run with another tenant's credential and
//! inputs that name the first tenant's objects (by name and by id), leaves the first tenant's
//! rows untouched and reveals none of its identifiers. New operations are picked up from the
//! catalogue automatically; an operation without examples fails the catalogue's own tests.

use crate::support::*;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use std::collections::BTreeMap;
use tenantops_core::catalogue;

/// Tables that hold no tenant's data: delivery ids of chat platforms (Slack trigger ids, event
/// ids), checked before the tenant is even known and forgotten after a day.
const PLATFORM_TABLES: &[&str] = &["chat_deliveries"];

/// Every row of every tenant-owned table for `tenant`, as text.
async fn snapshot(pool: &SqlitePool, tenant: &str) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables
        .into_iter()
        .filter(|t| !PLATFORM_TABLES.contains(&t.as_str()))
    {
        let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        let key = if table == "tenants" {
            "id"
        } else {
            assert!(
                cols.iter().any(|c| c == "tenant_id"),
                "table {table} has no tenant_id column: every tenant-owned table must"
            );
            "tenant_id"
        };
        let expr = cols
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {expr} FROM {table} WHERE {key} = ? ORDER BY 1"
        )))
        .bind(tenant)
        .fetch_all(pool)
        .await
        .unwrap();
        out.insert(table, rows);
    }
    out
}

/// Replaces every string equal to a fixture name with that object's id.
fn with_ids(v: &Value, ids: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(ids.get(s).cloned().unwrap_or_else(|| s.clone())),
        Value::Array(a) => Value::Array(a.iter().map(|x| with_ids(x, ids)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), with_ids(x, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn no_operation_reads_or_changes_another_tenants_data() {
    let t = Env::new().await;
    // Tenant A holds objects with exactly the names the catalogue's examples use.
    let (a, a_admin) = t.tenant("alpha").await;
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (name, kind, parent) in [
        ("engineering", "cost-center", None),
        ("emea", "region", Some("engineering")),
    ] {
        let mut input = json!({"name": name, "kind": kind});
        if let Some(p) = parent {
            input["parent"] = json!(p);
        }
        let bu = t.ok(&a_admin, "members.create_bu", input).await;
        ids.insert(name.into(), bu["id"].as_str().unwrap().into());
    }
    for (handle, kind) in [("ci-bot", "service"), ("jane", "human")] {
        let mut input =
            json!({"handle": handle, "kind": kind, "roles": ["developer"], "bu": "engineering"});
        if kind == "human" {
            input["email"] = json!("jane@alpha.example");
        }
        let p = t.ok(&a_admin, "members.create_persona", input).await;
        ids.insert(handle.into(), p["id"].as_str().unwrap().into());
    }
    let key = t
        .ok(
            &a_admin,
            "keys.issue",
            json!({"persona":"ci-bot","scopes":["keys:read"],"name":"ci-deploy"}),
        )
        .await;
    ids.insert("ci-deploy".into(), key["key_id"].as_str().unwrap().into());
    let a_secret = key["api_key"].as_str().unwrap().to_owned();

    // Everything of A that must never reach B.
    let mut secrets_of_a: Vec<String> = ids.values().cloned().collect();
    secrets_of_a.push(a.tenant_id.to_string());
    secrets_of_a.push(a.persona_id.to_string());
    secrets_of_a.push(a_secret.clone());
    secrets_of_a.push("jane@alpha.example".into());
    secrets_of_a.push("alpha".into());

    let (_, b_admin) = t.tenant("bravo").await;
    let pool = t.core.store().pool().clone();
    let before = snapshot(&pool, a.tenant_id.as_str()).await;

    let mut runs = 0;
    // Strings B itself supplied (in any call so far) may come back in B's own outputs.
    let mut given_by_b = String::new();
    for op in catalogue() {
        for example in op.examples {
            let by_name: Value = serde_json::from_str(example).unwrap();
            for input in [by_name.clone(), with_ids(&by_name, &ids)] {
                let result = t.call(&b_admin, op.name, input.clone()).await;
                runs += 1;
                let shown = match &result {
                    Ok(o) => serde_json::to_string(o).unwrap(),
                    Err(e) => e.to_string(),
                };
                let given = input.to_string();
                given_by_b.push_str(&given);
                for s in &secrets_of_a {
                    assert!(
                        !shown.contains(s.as_str()) || given_by_b.contains(s.as_str()),
                        "{} with {given} revealed tenant A's `{s}`: {shown}",
                        op.name
                    );
                }
                let now = snapshot(&pool, a.tenant_id.as_str()).await;
                assert_eq!(before, now, "{} with {given} changed tenant A", op.name);
            }
        }
    }
    assert!(runs >= 2 * catalogue().len(), "every operation ran");

    // A's own view is intact and its ledger verifies.
    assert!(t.auth(&a_secret).await.is_ok());
    assert!(t.core.verify_audit(&a.tenant_id).await.unwrap().is_ok());
}
