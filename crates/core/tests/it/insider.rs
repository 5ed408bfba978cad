//! One hostile insider with an admin role tries to be two people (issue #12). Every case here
//! was a way through before; each asserts the action did not run on one person's word.

use crate::support::*;
use chrono::Duration;
use serde_json::{Value, json};
use tenantops_core::chat::Platform;
use tenantops_core::{Error, Outcome, Principal, TenantCreated};

/// A tenant whose admin (`admin`) and a second admin (`ops`) may decide; `fin` and `fin2` are
/// finance approvers. Everyone signs in with their own console token.
struct Tenant {
    t: Env,
    created: TenantCreated,
    admin: Principal,
    ops: Principal,
    fin: Principal,
    fin2: Principal,
}

async fn tenant() -> Tenant {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let tid = created.tenant_id.to_string();
    let mut signed = Vec::new();
    for (handle, role) in [
        ("ops", "tenant-admin"),
        ("fin", "finance-approver"),
        ("fin2", "finance-approver"),
    ] {
        let p = t
            .ok_approved(
                &admin,
                "members.create_persona",
                json!({"handle": handle, "kind": "human", "email": format!("{handle}@acme.example"),
                       "roles": [role]}),
            )
            .await;
        signed.push(t.sign_in(&tid, p["id"].as_str().unwrap()).await);
    }
    let [ops, fin, fin2]: [Principal; 3] = signed.try_into().unwrap();
    Tenant {
        t,
        created,
        admin,
        ops,
        fin,
        fin2,
    }
}

fn pending(o: Outcome) -> String {
    match o {
        Outcome::PendingApproval { request_id, .. } => request_id,
        other => panic!("expected pending approval, got {other:?}"),
    }
}

fn denied(o: Result<Outcome, Error>) -> String {
    match o {
        Ok(Outcome::Denied { reason }) => reason,
        other => panic!("expected denied, got {other:?}"),
    }
}

impl Tenant {
    async fn decide(&self, p: &Principal, id: &str) -> Result<Outcome, Error> {
        self.t
            .call(
                p,
                "approvals.decide",
                json!({"request_id": id, "decision": "approve", "comment": "ok"}),
            )
            .await
    }

    async fn state(&self, id: &str) -> String {
        let v = self
            .t
            .ok(&self.admin, "approvals.get", json!({"request_id": id}))
            .await;
        v["state"].as_str().unwrap().to_owned()
    }

    /// Binds a Slack workspace to the tenant the way an admin's OAuth install does.
    async fn bind_slack(&self, team: &str) {
        let link = self
            .t
            .ok(
                &self.admin,
                "tenant.chat_install_link",
                json!({"platform":"slack","approval_channel":"C0APPROVE"}),
            )
            .await;
        self.t
            .core
            .complete_chat_install(
                Platform::Slack,
                link["state"].as_str().unwrap(),
                team,
                Some("acme"),
                None,
            )
            .await
            .unwrap();
    }

    async fn link(&self, p: &Principal, team: &str, user: &str) -> Principal {
        let code = self.t.ok(p, "members.chat_link_code", json!({})).await;
        self.t
            .core
            .link_chat(Platform::Slack, team, user, code["code"].as_str().unwrap())
            .await
            .unwrap();
        self.t
            .core
            .authenticate_chat(Platform::Slack, team, user)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn nobody_can_get_a_link_code_for_a_colleague() {
    let tn = tenant().await;
    // A finance approver asks for his peer's code, then an admin for a colleague's: both refused.
    for (asker, whom) in [(&tn.fin, "fin2"), (&tn.admin, "ops")] {
        let why = denied(
            tn.t.call(asker, "members.chat_link_code", json!({"persona": whom}))
                .await,
        );
        assert!(why.contains("only its own person"), "{why}");
    }
    // Naming oneself, by handle or id, is fine.
    let me =
        tn.t.ok(&tn.fin, "members.chat_link_code", json!({"persona": "fin"}))
            .await;
    assert_eq!(me["proof"], "own");
}

#[tokio::test]
async fn a_link_made_from_a_delegated_key_acts_but_never_decides() {
    let tn = tenant().await;
    tn.bind_slack("T0ACME").await;
    // The admin mints a key for fin2 and, holding it, links his own Slack user as fin2.
    let key =
        tn.t.ok(
            &tn.admin,
            "keys.issue",
            json!({"persona":"fin2","scopes":["approvals:decide","approvals:read"]}),
        )
        .await;
    let as_fin2 = tn.t.auth(key["api_key"].as_str().unwrap()).await.unwrap();
    let code = tn.t.ok(&as_fin2, "members.chat_link_code", json!({})).await;
    assert_eq!(code["proof"], "delegated");
    let chat = tn.link(&as_fin2, "T0ACME", "U0ADMIN").await;
    tn.t.clock.advance(Duration::days(2));
    // The admin's own export, approved "as fin2" through that link: refused, nothing runs.
    let id = pending(
        tn.t.call(&tn.admin, "tenant.export_all", json!({"reason":"audit"}))
            .await
            .unwrap(),
    );
    let why = denied(tn.decide(&chat, &id).await);
    assert!(why.contains("linked yourself"), "{why}");
    let why = denied(tn.decide(&as_fin2, &id).await);
    assert!(why.contains("issued by someone else"), "{why}");
    assert_eq!(tn.state(&id).await, "pending");
    // The chat account still acts for reads.
    tn.t.ok(&chat, "whoami", json!({})).await;
}

#[tokio::test]
async fn a_new_link_decides_only_after_the_tenants_minimum_age() {
    let tn = tenant().await;
    tn.bind_slack("T0ACME").await;
    let chat = tn.link(&tn.fin, "T0ACME", "U0FIN").await;
    let id = pending(
        tn.t.call(&tn.admin, "tenant.export_all", json!({"reason":"audit"}))
            .await
            .unwrap(),
    );
    let why = denied(tn.decide(&chat, &id).await);
    assert!(why.contains("linked recently"), "{why}");
    tn.t.clock.advance(Duration::hours(24));
    match tn.decide(&chat, &id).await.unwrap() {
        Outcome::Done { output } => assert_eq!(output["request"]["state"], "succeeded"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_link_is_never_re_pointed_and_an_admins_unlink_is_told_to_its_person() {
    let tn = tenant().await;
    tn.bind_slack("T0ACME").await;
    tn.link(&tn.fin, "T0ACME", "U0SHARED").await;
    // fin2's own code, typed from the account already linked to fin: refused.
    let code = tn.t.ok(&tn.fin2, "members.chat_link_code", json!({})).await;
    let err =
        tn.t.core
            .link_chat(
                Platform::Slack,
                "T0ACME",
                "U0SHARED",
                code["code"].as_str().unwrap(),
            )
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("never re-pointed"), "{err}");
    // An admin unlinks it: audited, and the person is told.
    let out =
        tn.t.ok(
            &tn.admin,
            "members.chat_unlink",
            json!({"persona":"fin","platform":"slack"}),
        )
        .await;
    assert_eq!(out["unlinked"][0]["user_id"], "U0SHARED");
    assert!(tn.t.notes.all().iter().any(|n| matches!(
        n,
        tenantops_core::notify::Notification::ChatUnlinked { user_id, by_handle, .. }
            if user_id == "U0SHARED" && by_handle == "admin"
    )));
    // Someone without authority over the admin cannot unlink the admin.
    tn.link(&tn.admin, "T0ACME", "U0BOSS").await;
    let why = denied(
        tn.t.call(&tn.fin, "members.chat_unlink", json!({"persona":"admin"}))
            .await,
    );
    assert!(why.contains("members:write"), "{why}");
}

#[tokio::test]
async fn by_default_only_a_key_its_person_issued_from_their_own_sign_in_decides() {
    let tn = tenant().await;
    let id = pending(
        tn.t.call(&tn.admin, "tenant.export_all", json!({"reason":"audit"}))
            .await
            .unwrap(),
    );
    // A key the admin issued "for" ops: ops' name, the admin's hands.
    let minted =
        tn.t.ok(
            &tn.admin,
            "keys.issue",
            json!({"persona":"ops","scopes":["approvals:decide","approvals:read"]}),
        )
        .await;
    let minted =
        tn.t.auth(minted["api_key"].as_str().unwrap())
            .await
            .unwrap();
    let why = denied(tn.decide(&minted, &id).await);
    assert!(why.contains("issued by someone else"), "{why}");
    // ops issues one from her own sign-in: that one is hers.
    let own = tn
        .t
        .ok(
            &tn.ops,
            "keys.issue",
            json!({"persona":"ops","name":"ops-laptop","scopes":["approvals:decide","approvals:read"]}),
        )
        .await;
    let own_secret = own["api_key"].as_str().unwrap().to_owned();
    // If the admin rotates it, whoever holds the new secret is not provably ops any more.
    tn.t.ok(&tn.admin, "keys.rotate", json!({"key":"ops-laptop"}))
        .await;
    let rotated = tn.t.auth(&own_secret).await.unwrap();
    let why = denied(tn.decide(&rotated, &id).await);
    assert!(why.contains("issued by someone else"), "{why}");
    let own =
        tn.t.ok(&tn.ops, "keys.rotate", json!({"key":"ops-laptop"}))
            .await;
    let own = tn.t.auth(own["api_key"].as_str().unwrap()).await.unwrap();
    match tn.decide(&own, &id).await.unwrap() {
        Outcome::Done { output } => assert_eq!(output["request"]["state"], "succeeded"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_sock_puppet_given_decide_rights_alone_waits_for_a_second_person() {
    let tn = tenant().await;
    let sock = json!({"handle":"sock","kind":"human","email":"me+sock@acme.example",
                      "roles":["security-admin"]});
    let id = pending(
        tn.t.call(&tn.admin, "members.create_persona", sock.clone())
            .await
            .unwrap(),
    );
    let err = tn.decide(&tn.admin, &id).await.unwrap_err_or_denied();
    assert!(err.contains("second person"), "{err}");
    // Giving an existing non-decider the right, or taking it from one, is the same.
    tn.t.ok(
        &tn.admin,
        "members.create_persona",
        json!({"handle":"dev","kind":"human","email":"dev@acme.example","roles":["developer"]}),
    )
    .await;
    pending(
        tn.t.call(
            &tn.admin,
            "members.assign_roles",
            json!({"persona":"dev","roles":["finance-approver"]}),
        )
        .await
        .unwrap(),
    );
    pending(
        tn.t.call(
            &tn.admin,
            "members.assign_roles",
            json!({"persona":"fin2","roles":["billing-viewer"]}),
        )
        .await
        .unwrap(),
    );
    // So are routes, which say who decides what.
    pending(
        tn.t.call(
            &tn.admin,
            "approvals.routes_add",
            json!({"name":"mine","operation":"tenant.export_all","approvers":{"personas":["ops"]}}),
        )
        .await
        .unwrap(),
    );
    // A role that changes nothing about deciding is not held up.
    tn.t.ok(
        &tn.admin,
        "members.assign_roles",
        json!({"persona":"dev","roles":["developer","billing-viewer"]}),
    )
    .await;
    // A second person approves the sock puppet's creation; then it exists.
    match tn.decide(&tn.ops, &id).await.unwrap() {
        Outcome::Done { output } => assert_eq!(output["request"]["state"], "succeeded"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn revoking_the_other_deciders_does_not_make_one_insider_the_only_one() {
    let tn = tenant().await;
    for who in ["ops", "fin", "fin2"] {
        tn.t.ok(&tn.admin, "members.revoke", json!({"persona": who}))
            .await;
    }
    // Alone for a week after revoking everyone else, the admin still needs a second person.
    pending(
        tn.t.call(
            &tn.admin,
            "members.create_persona",
            json!({"handle":"sock","kind":"human","email":"sock@acme.example","roles":["finance-approver"]}),
        )
        .await
        .unwrap(),
    );
    tn.t.clock.advance(Duration::days(8));
    tn.t
        .ok(
            &tn.admin,
            "members.create_persona",
            json!({"handle":"newfin","kind":"human","email":"newfin@acme.example","roles":["finance-approver"]}),
        )
        .await;
}

#[tokio::test]
async fn bootstrapping_with_one_admin_is_not_held_up() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("solo").await;
    // The first colleague who may decide joins at once: there is nobody to ask yet.
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"ops","kind":"human","email":"ops@solo.example","roles":["tenant-admin"]}),
    )
    .await;
    let settings = t.ok(&admin, "approvals.settings", json!({})).await;
    assert_eq!(settings["deciders"], 2);
    assert_eq!(settings["deciders_guarded"], true);
    assert_eq!(settings["chat_link_min_age_secs"], 86400);
}

#[tokio::test]
async fn shortening_the_link_age_needs_a_second_person_lengthening_does_not() {
    let tn = tenant().await;
    tn.t.ok(
        &tn.admin,
        "approvals.update_settings",
        json!({"chat_link_min_age":"48h"}),
    )
    .await;
    pending(
        tn.t.call(
            &tn.admin,
            "approvals.update_settings",
            json!({"chat_link_min_age":"0s"}),
        )
        .await
        .unwrap(),
    );
}

#[tokio::test]
async fn a_route_on_a_persona_or_key_holds_whether_the_caller_names_it_by_id_or_name() {
    let tn = tenant().await;
    let bot =
        tn.t.ok(
            &tn.admin,
            "members.create_persona",
            json!({"handle":"ci-bot","kind":"service","roles":["developer"]}),
        )
        .await;
    let bot_id = bot["id"].as_str().unwrap().to_owned();
    let key =
        tn.t.ok(
            &tn.admin,
            "keys.issue",
            json!({"persona":"ci-bot","name":"prod-deploy","scopes":["keys:read"]}),
        )
        .await;
    for (name, op, path, value) in [
        ("bots", "members.revoke", "input.persona", json!(["ci-bot"])),
        ("prod", "keys.revoke", "input.key", json!("prod-deploy")),
    ] {
        let clause_op = if value.is_array() { "in" } else { "eq" };
        tn.t.ok_approved(
            &tn.admin,
            "approvals.routes_add",
            json!({"name": name, "operation": op,
                       "condition": [{"path": path, "op": clause_op, "value": value}],
                       "approvers": {"roles": ["finance-approver"]}}),
        )
        .await;
    }
    // By id, by name, by the key's secret itself: each waits for approval.
    for input in [json!({"persona": bot_id}), json!({"persona": "ci-bot"})] {
        pending(tn.t.call(&tn.admin, "members.revoke", input).await.unwrap());
    }
    for reference in [
        key["key_id"].as_str().unwrap(),
        "prod-deploy",
        key["api_key"].as_str().unwrap(),
    ] {
        pending(
            tn.t.call(&tn.admin, "keys.revoke", json!({"key": reference}))
                .await
                .unwrap(),
        );
    }
    // The three spellings of one key are one request (one digest), bound to the key's id; the
    // secret never entered it.
    let mine = tn.t.ok(&tn.admin, "approvals.mine", json!({})).await;
    let keys: Vec<&Value> = mine["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "keys.revoke")
        .collect();
    assert_eq!(keys.len(), 1, "{mine}");
    assert_eq!(keys[0]["input"]["key"], key["key_id"]);
    assert_eq!(keys[0]["facts"]["names"]["key"], "prod-deploy");
    assert!(!mine.to_string().contains(key["api_key"].as_str().unwrap()));
}

#[tokio::test]
async fn an_approved_move_goes_to_the_unit_approved_even_if_names_are_swapped_meanwhile() {
    let tn = tenant().await;
    for bu in ["emea", "apac"] {
        tn.t.ok(
            &tn.admin,
            "members.create_bu",
            json!({"name": bu, "kind": "region"}),
        )
        .await;
    }
    tn.t.ok(
        &tn.admin,
        "members.create_persona",
        json!({"handle":"ci-bot","kind":"service","roles":["developer"]}),
    )
    .await;
    tn.t.ok_approved(
        &tn.admin,
        "approvals.routes_add",
        json!({"name":"moves","operation":"members.move_persona",
                   "approvers":{"roles":["finance-approver"]}}),
    )
    .await;
    let emea = tn.t.ok(&tn.admin, "members.list_bus", json!({})).await["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "emea")
        .unwrap()["id"]
        .clone();
    let id = pending(
        tn.t.call(
            &tn.admin,
            "members.move_persona",
            json!({"persona":"ci-bot","bu":"emea"}),
        )
        .await
        .unwrap(),
    );
    // Someone swaps the names before the approval.
    for (bu, name) in [("emea", "tmp"), ("apac", "emea"), ("tmp", "apac")] {
        tn.t.ok(
            &tn.admin,
            "members.update_bu",
            json!({"bu": bu, "name": name}),
        )
        .await;
    }
    match tn.decide(&tn.fin, &id).await.unwrap() {
        Outcome::Done { output } => {
            assert_eq!(output["request"]["state"], "succeeded");
            assert_eq!(output["request"]["result"]["bu_id"], emea);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn moving_a_persona_needs_authority_over_it() {
    let tn = tenant().await;
    tn.t.ok(
        &tn.admin,
        "members.create_bu",
        json!({"name":"jail","kind":"cost-center"}),
    )
    .await;
    // A security admin (members:write, but not every scope of a tenant admin) tries to move one.
    let sec = tn
        .t
        .ok_approved(
            &tn.admin,
            "members.create_persona",
            json!({"handle":"sec","kind":"human","email":"sec@acme.example","roles":["security-admin"]}),
        )
        .await;
    let sec =
        tn.t.sign_in(tn.created.tenant_id.as_str(), sec["id"].as_str().unwrap())
            .await;
    let why = denied(
        tn.t.call(
            &sec,
            "members.move_persona",
            json!({"persona":"ops","bu":"jail"}),
        )
        .await,
    );
    assert!(why.contains("ops"), "{why}");
}

#[tokio::test]
async fn the_sandbox_decides_only_on_demo_tenants() {
    for demo in [false, true] {
        let t = Env::new().await;
        let created = t
            .core
            .create_tenant_with("acme", Some("admin@acme.example"), demo)
            .await
            .unwrap();
        let admin = t.auth(&created.api_key).await.unwrap();
        let tid = created.tenant_id.to_string();
        let ops = t
            .ok(
                &admin,
                "members.create_persona",
                json!({"handle":"ops","kind":"human","email":"ops@acme.example","roles":["tenant-admin"]}),
            )
            .await;
        t.core
            .bind_sandbox(&admin, "TSANDBOX", "CAPPROVALS")
            .await
            .unwrap();
        // On a demo tenant the sandbox links anyone; elsewhere a person is played only with
        // their own credential.
        let linked = t
            .core
            .link_sandbox_demo("TSANDBOX", "USANDBOXOPS", "ops")
            .await;
        if !demo {
            assert!(matches!(linked, Err(Error::Denied { .. })), "{linked:?}");
            let own = t.sign_in(&tid, ops["id"].as_str().unwrap()).await;
            let code = t.ok(&own, "members.chat_link_code", json!({})).await;
            t.core
                .link_chat(
                    Platform::Slack,
                    "TSANDBOX",
                    "USANDBOXOPS",
                    code["code"].as_str().unwrap(),
                )
                .await
                .unwrap();
            t.clock.advance(Duration::days(2));
        }
        let played = t
            .core
            .authenticate_chat(Platform::Slack, "TSANDBOX", "USANDBOXOPS")
            .await
            .unwrap();
        let id = pending(
            t.call(&admin, "tenant.export_all", json!({"reason":"audit"}))
                .await
                .unwrap(),
        );
        let decided = t
            .call(
                &played,
                "approvals.decide",
                json!({"request_id": id, "decision": "approve", "comment": "ok"}),
            )
            .await;
        if demo {
            assert!(matches!(decided, Ok(Outcome::Done { .. })), "{decided:?}");
        } else {
            let why = denied(decided);
            assert!(why.contains("sandbox"), "{why}");
        }
    }
}

trait DeniedOrErr {
    fn unwrap_err_or_denied(self) -> String;
}

impl DeniedOrErr for Result<Outcome, Error> {
    fn unwrap_err_or_denied(self) -> String {
        match self {
            Ok(Outcome::Denied { reason }) => reason,
            Err(e) => e.to_string(),
            Ok(other) => panic!("expected a refusal, got {other:?}"),
        }
    }
}
