//! The isolation matrix: every catalogue operation, run with another tenant's credential and
//! inputs that name the first tenant's objects (by name and by id), leaves the first tenant's
//! rows untouched and reveals none of its identifiers. New operations are picked up from the
//! catalogue automatically; an operation without examples fails the catalogue's own tests.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenantops_core::catalogue;
use tenantops_core::ids::TenantId;

/// Every row of every tenant-owned table for `tenant`, as text (whatever the engine).
async fn snapshot(t: &Env, tenant: &TenantId) -> BTreeMap<String, Vec<String>> {
    tenantops_core::store::export::tenant_rows(t.core.store(), tenant)
        .await
        .unwrap()
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
    let before = snapshot(&t, &a.tenant_id).await;
    assert!(
        before["personas"].len() >= 3 && before["api_keys"].len() >= 2,
        "{before:?}"
    );

    let mut runs = 0;
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
                // Only what this very call was given may come back in its own answer (an
                // echo of B's input); anything else of A's in it is a leak.
                for s in &secrets_of_a {
                    assert!(
                        !shown.contains(s.as_str()) || given.contains(s.as_str()),
                        "{} with {given} revealed tenant A's `{s}`: {shown}",
                        op.name
                    );
                }
                let now = snapshot(&t, &a.tenant_id).await;
                assert_eq!(before, now, "{} with {given} changed tenant A", op.name);
            }
        }
    }
    assert!(runs >= 2 * catalogue().len(), "every operation ran");

    // A's own view is intact and its ledger verifies.
    assert!(t.auth(&a_secret).await.is_ok());
    assert!(t.core.verify_audit(&a.tenant_id).await.unwrap().is_ok());
}
