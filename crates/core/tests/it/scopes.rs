//! Minimum privilege: keys never exceed their issuer, act with key ∩ role scopes, and roles
//! cannot be used to escalate.

use crate::support::*;
use serde_json::json;
use tenantops_core::{Error, Outcome, Scope};

#[tokio::test]
async fn billing_viewer_key_cannot_issue_keys() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, key) = t
        .persona_with_key(
            &admin,
            "fin",
            "human",
            &["billing-viewer"],
            &["billing:read"],
        )
        .await;
    let viewer = t.auth(&key).await.unwrap();
    match t
        .call(
            &viewer,
            "keys.issue",
            json!({"persona":"fin","scopes":["billing:read"]}),
        )
        .await
        .unwrap()
    {
        Outcome::Denied { reason } => assert!(reason.contains("keys:write"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The denial is on the ledger.
    let log = t
        .ok(&admin, "audit.list", json!({"op":"keys.issue","limit":1}))
        .await;
    assert_eq!(log["entries"][0]["outcome"], "denied");
}

#[tokio::test]
async fn a_key_never_gets_more_than_its_issuer_holds() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    // A developer (keys:write, but no billing:read) tries to mint a billing key.
    let dev_scopes = [
        "members:read",
        "keys:read",
        "keys:write",
        "webhooks:read",
        "webhooks:write",
        "connectors:read",
        "ai:read",
    ];
    let (_, dev_key) = t
        .persona_with_key(&admin, "dev", "human", &["developer"], &dev_scopes)
        .await;
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"etl","kind":"service","roles":["developer"]}),
    )
    .await;
    let dev = t.auth(&dev_key).await.unwrap();
    match t
        .call(
            &dev,
            "keys.issue",
            json!({"persona":"etl","scopes":["billing:read"]}),
        )
        .await
        .unwrap()
    {
        Outcome::Denied { reason } => assert!(reason.contains("billing:read"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Within its own scopes, for a persona within its authority, it may.
    t.ok(
        &dev,
        "keys.issue",
        json!({"persona":"etl","scopes":["members:read"]}),
    )
    .await;
    // A narrower key of the same developer has less authority: it cannot act for `etl`.
    let narrow = t
        .ok(
            &admin,
            "keys.issue",
            json!({"persona":"dev","scopes":["keys:write"]}),
        )
        .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let narrow = t.auth(&narrow).await.unwrap();
    let out = t
        .call(
            &narrow,
            "keys.issue",
            json!({"persona":"etl","scopes":["keys:write"]}),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Denied { .. }), "{out:?}");
}

#[tokio::test]
async fn a_key_acts_with_its_scopes_intersected_with_its_personas_current_roles() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, key) = t
        .persona_with_key(
            &admin,
            "etl",
            "service",
            &["auditor", "developer"],
            &["keys:read", "audit:read"],
        )
        .await;
    let p = t.auth(&key).await.unwrap();
    assert!(p.has(Scope::AUDIT_READ) && p.has(Scope::KEYS_READ));
    assert!(
        !p.has(Scope::MEMBERS_READ),
        "key scopes bound the persona's roles"
    );
    // Shrinking the roles shrinks the key at once, even for an already-open session.
    t.ok(
        &admin,
        "members.assign_roles",
        json!({"persona":"etl","roles":["developer"]}),
    )
    .await;
    match t.call(&p, "audit.list", json!({})).await.unwrap() {
        Outcome::Denied { reason } => assert!(reason.contains("audit:read")),
        other => panic!("{other:?}"),
    }
    let fresh = t.auth(&key).await.unwrap();
    assert!(!fresh.has(Scope::AUDIT_READ));
    assert!(fresh.has(Scope::KEYS_READ));
}

#[tokio::test]
async fn roles_cannot_be_used_to_escalate() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, key) = t
        .persona_with_key(
            &admin,
            "sec",
            "human",
            &["security-admin"],
            &["members:write", "members:read", "keys:write"],
        )
        .await;
    let sec = t.auth(&key).await.unwrap();
    // security-admin's key lacks billing scopes, so it cannot hand out tenant-admin...
    let err = t
        .call(
            &sec,
            "members.assign_roles",
            json!({"persona":"sec","roles":["tenant-admin"]}),
        )
        .await
        .unwrap();
    assert!(matches!(err, Outcome::Denied { .. }), "{err:?}");
    // ...nor create a persona with it.
    let err = t
        .call(
            &sec,
            "members.create_persona",
            json!({"handle":"x","kind":"service","roles":["tenant-admin"]}),
        )
        .await
        .unwrap();
    assert!(matches!(err, Outcome::Denied { .. }), "{err:?}");
}

#[tokio::test]
async fn the_last_human_tenant_admin_cannot_be_revoked_or_demoted() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let err = t
        .call(
            &admin,
            "members.revoke",
            json!({"persona": created.persona_id}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let err = t
        .call(
            &admin,
            "members.assign_roles",
            json!({"persona":"admin","roles":["auditor"]}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    // With a second admin it works (and, the set of deciders changing, with their approval).
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"ops","kind":"human","email":"ops@example.com","roles":["tenant-admin"]}),
    )
    .await;
    t.ok_approved(
        &admin,
        "members.assign_roles",
        json!({"persona":"admin","roles":["auditor"]}),
    )
    .await;
}

#[tokio::test]
async fn business_units_form_a_tree_without_cycles() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name":"corp","kind":"company"}),
    )
    .await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name":"emea","kind":"region","parent":"corp"}),
    )
    .await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name":"emea-sales","kind":"cost-center","parent":"emea"}),
    )
    .await;
    for (bu, parent) in [
        ("corp", "emea-sales"),
        ("corp", "corp"),
        ("emea", "emea-sales"),
    ] {
        let err = t
            .call(
                &admin,
                "members.update_bu",
                json!({"bu": bu, "parent": parent}),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cycle"),
            "{bu} under {parent}: {err}"
        );
    }
    // A legal re-parenting and a persona placed at creation, then moved.
    t.ok(
        &admin,
        "members.update_bu",
        json!({"bu":"emea-sales","parent":"corp"}),
    )
    .await;
    let p = t
        .ok(
            &admin,
            "members.create_persona",
            json!({"handle":"bot","kind":"agent","roles":["ai-agent"],"bu":"emea"}),
        )
        .await;
    assert_eq!(p["bu"], "emea");
    let p = t
        .ok(
            &admin,
            "members.move_persona",
            json!({"persona":"bot","bu":"emea-sales"}),
        )
        .await;
    assert_eq!(p["bu"], "emea-sales");
    let units = t.ok(&admin, "members.list_bus", json!({})).await;
    let sales = units["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "emea-sales")
        .unwrap()
        .clone();
    assert_eq!(sales["parent"], "corp");
    assert_eq!(sales["personas"], 1);
}

#[tokio::test]
async fn humans_are_invited_with_no_sessions_and_bad_input_names_the_field() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let p = t
        .ok(
            &admin,
            "members.create_persona",
            json!({"handle":"jane","kind":"human","email":"jane@example.com","roles":["auditor"]}),
        )
        .await;
    assert_eq!(p["invite_state"], "invited");
    let detail = t
        .ok(&admin, "members.get_persona", json!({"persona":"jane"}))
        .await;
    assert_eq!(detail["active_keys"].as_array().unwrap().len(), 0);

    let cases = [
        (
            json!({"handle":"x","kind":"human","roles":["auditor"]}),
            "email",
        ),
        (
            json!({"handle":"Bad Name","kind":"service","roles":["auditor"]}),
            "handle",
        ),
        (
            json!({"handle":"y","kind":"robot","roles":["auditor"]}),
            "kind",
        ),
        (
            json!({"handle":"y","kind":"service","roles":["auditor","wizard"]}),
            "roles[1]",
        ),
        (json!({"handle":"y","kind":"service","roles":[]}), "roles"),
        (
            json!({"handle":"y","kind":"service","roles":["auditor"],"colour":"red"}),
            "colour",
        ),
        (
            json!({"handle":"bu_0123456789abcdef0123456789abcdef","kind":"service","roles":["auditor"]}),
            "handle",
        ),
    ];
    for (input, field) in cases {
        match t
            .call(&admin, "members.create_persona", input.clone())
            .await
        {
            Err(Error::BadInput { field: f, message }) => {
                assert_eq!(f, field, "{input}: {message}");
            }
            other => panic!("{input}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_developer_cannot_rotate_or_revoke_an_admins_key() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let (_, dev_key) = t
        .persona_with_key(
            &admin,
            "dev",
            "human",
            &["developer"],
            &["keys:write", "keys:read", "members:read"],
        )
        .await;
    let dev = t.auth(&dev_key).await.unwrap();
    let keys = t.ok(&dev, "keys.list", json!({})).await;
    let admin_key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["persona_id"] == created.persona_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for op in ["keys.rotate", "keys.revoke"] {
        match t.call(&dev, op, json!({"key": admin_key})).await.unwrap() {
            Outcome::Denied { reason } => assert!(reason.contains("admin"), "{op}: {reason}"),
            other => panic!("{op}: {other:?}"),
        }
    }
    // Nor issue a key acting as the admin, nor revoke the admin.
    let denied = t
        .call(
            &dev,
            "keys.issue",
            json!({"persona":"admin","scopes":["keys:read"]}),
        )
        .await
        .unwrap();
    assert!(matches!(denied, Outcome::Denied { .. }), "{denied:?}");
    // The admin's key still works.
    assert!(t.auth(&created.api_key).await.is_ok());
    // The developer may manage its own key.
    t.ok(&dev, "keys.rotate", json!({"key": dev_key, "grace": "0s"}))
        .await;
}

#[tokio::test]
async fn a_security_admin_cannot_revoke_a_tenant_admin() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"ops","kind":"human","email":"ops@example.com","roles":["tenant-admin"]}),
    )
    .await;
    let (_, sec_key) = t
        .persona_with_key(
            &admin,
            "sec",
            "human",
            &["security-admin"],
            &["members:write", "members:read"],
        )
        .await;
    let sec = t.auth(&sec_key).await.unwrap();
    match t
        .call(&sec, "members.revoke", json!({"persona":"ops"}))
        .await
        .unwrap()
    {
        Outcome::Denied { reason } => assert!(reason.contains("ops"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_leaked_secret_can_be_revoked_by_pasting_it_and_never_enters_the_ledger() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let (_, leaked) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let out = t.ok(&admin, "keys.revoke", json!({"key": leaked})).await;
    assert_eq!(out["state"], "revoked");
    assert!(t.auth(&leaked).await.is_err());
    // A mistyped paste is named as such, without echoing it.
    let mut typo = leaked.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let err = t
        .call(&admin, "keys.revoke", json!({"key": typo}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let bodies: Vec<(String,)> = fetch(
        t.core.store(),
        "SELECT body FROM audit_entries WHERE tenant_id = $1",
        &[created.tenant_id.as_str().into()],
    )
    .await;
    for (b,) in bodies {
        assert!(
            !b.contains(&leaked) && !b.contains(&typo),
            "secret in ledger: {b}"
        );
    }
}
