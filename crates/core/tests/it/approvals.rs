//! The two-person rule under attack: each case asserts zero executions or exactly one, and the
//! audit ledger verifies after every case.

use crate::support::*;
use chrono::Duration;
use serde_json::{Value, json};
use std::sync::Arc;
use tenantops_core::notify::Notification;
use tenantops_core::{Error, Outcome, Principal, TenantCreated};

/// A tenant with a requester, approvers and odd personas, and several personas to delete.
struct Team {
    t: Env,
    created: TenantCreated,
    admin: Principal,
    ops: Principal,
    alice: Principal,
    bob: Principal,
    carol: Principal,
    agent: Principal,
    svc: Principal,
    victims: Vec<String>,
}

const DECIDE: &[&str] = &["approvals:decide", "approvals:read", "members:read"];

async fn team() -> Team {
    team_with(false).await
}

async fn team_with(require_sign_in: bool) -> Team {
    let t = Env::with(|c| {
        c.key_decisions = if require_sign_in {
            tenantops_core::proof::KeyDecisions::SignInOnly
        } else {
            tenantops_core::proof::KeyDecisions::AnyKey
        }
    })
    .await;
    let (created, admin) = t.tenant("acme").await;
    let mut made = Vec::new();
    for (handle, kind, role) in [
        ("ops", "human", "tenant-admin"),
        ("alice", "human", "security-admin"),
        ("bob", "human", "finance-approver"),
        ("carol", "human", "security-admin"),
        ("agent", "agent", "security-admin"),
        ("svc", "service", "security-admin"),
    ] {
        let scopes: Vec<&str> = if handle == "ops" {
            vec![
                "members:write",
                "members:read",
                "approvals:read",
                "approvals:break_glass",
                "approvals:decide",
                "keys:write",
                "keys:read",
                "billing:read",
                "billing:write",
                "usage:write",
                "webhooks:read",
                "webhooks:write",
                "approvals:admin",
                "connectors:read",
                "connectors:write",
                "consent:read",
                "consent:write",
                "ai:read",
                "ai:write",
                "byok:read",
                "byok:write",
                "audit:read",
                "tenant:export",
            ]
        } else if role == "finance-approver" {
            vec!["approvals:decide", "approvals:read"]
        } else {
            DECIDE.to_vec()
        };
        let (id, _) = t
            .persona_with_key(&admin, handle, kind, &[role], &scopes)
            .await;
        // People (and, to prove they are refused, the agent and service) sign in with their own
        // console token: decisions never count through an API key someone else could issue.
        made.push(t.sign_in(created.tenant_id.as_str(), &id).await);
    }
    let mut victims = Vec::new();
    for i in 0..6 {
        let v = t
            .ok(
                &admin,
                "members.create_persona",
                json!({"handle": format!("victim{i}"), "kind":"service","roles":["developer"]}),
            )
            .await;
        victims.push(v["id"].as_str().unwrap().to_owned());
    }
    let [ops, alice, bob, carol, agent, svc]: [Principal; 6] = made.try_into().unwrap();
    Team {
        t,
        created,
        admin,
        ops,
        alice,
        bob,
        carol,
        agent,
        svc,
        victims,
    }
}

impl Team {
    /// `ops` asks to delete `victimN`; returns the request id.
    async fn raise(&self, n: u32) -> String {
        match self
            .t
            .call(
                &self.ops,
                "members.delete_persona",
                json!({"persona": format!("victim{n}")}),
            )
            .await
            .unwrap()
        {
            Outcome::PendingApproval {
                request_id,
                digest,
                summary,
                ..
            } => {
                assert_eq!(digest.len(), 64);
                assert!(summary.contains(&format!("victim{n}")), "{summary}");
                request_id
            }
            other => panic!("destructive call ran or was refused: {other:?}"),
        }
    }

    async fn decide(&self, p: &Principal, id: &str, decision: &str) -> Result<Outcome, Error> {
        self.t
            .call(
                p,
                "approvals.decide",
                json!({"request_id": id, "decision": decision, "comment": "looked at it"}),
            )
            .await
    }

    /// How many times the deletion of `victimN` actually ran.
    async fn executions(&self, n: u32) -> usize {
        let log = self
            .t
            .ok(
                &self.admin,
                "audit.list",
                json!({"op":"members.delete_persona","limit":200}),
            )
            .await;
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["outcome"] == "done"
                    && e["detail"]["input"]["persona"] == self.victims[n as usize].as_str()
            })
            .count()
    }

    async fn state(&self, id: &str) -> Value {
        self.t
            .ok(&self.admin, "approvals.get", json!({"request_id": id}))
            .await
    }

    async fn ledger_verifies(&self) {
        let r = self
            .t
            .core
            .verify_audit(&self.created.tenant_id)
            .await
            .unwrap();
        assert!(r.is_ok(), "ledger broken: {r:?}");
    }
}

/// `first` and `second` approve `id` at the same moment, each in its own task on a
/// multi-threaded runtime: both calls are under way together, neither waits for the other to
/// start.
async fn approve_together(
    tm: &Arc<Team>,
    id: &str,
    first: &Principal,
    second: &Principal,
) -> (Result<Outcome, Error>, Result<Outcome, Error>) {
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let decide = |p: &Principal| {
        let (tm, id, p, start) = (tm.clone(), id.to_owned(), p.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            tm.decide(&p, &id, "approve").await
        })
    };
    let (a, b) = tokio::join!(decide(first), decide(second));
    (
        a.expect("first decision task"),
        b.expect("second decision task"),
    )
}

fn denied(r: Result<Outcome, Error>) -> String {
    match r {
        Ok(Outcome::Denied { reason }) => reason,
        other => panic!("expected denied, got {other:?}"),
    }
}

fn conflict(r: Result<Outcome, Error>) -> String {
    match r {
        Err(Error::Conflict(m)) => m,
        other => panic!("expected conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_destructive_call_waits_and_one_approval_runs_it_exactly_once() {
    let tm = team().await;
    let id = tm.raise(0).await;
    assert_eq!(tm.executions(0).await, 0);
    assert!(
        tm.t.notes.all().iter().any(
            |n| matches!(n, Notification::Requested { request_id, approvers, .. }
        if *request_id == id && approvers.len() == 4)
        ),
        "alice, bob, carol and the admin are told"
    );
    let pending = tm.t.ok(&tm.alice, "approvals.pending", json!({})).await;
    assert_eq!(pending["decisions"][0]["id"], id.as_str());
    let mine = tm.t.ok(&tm.ops, "approvals.mine", json!({})).await;
    assert_eq!(mine["requests"][0]["id"], id.as_str());

    let out = tm.decide(&tm.alice, &id, "approve").await.unwrap();
    let Outcome::Done { output } = out else {
        panic!()
    };
    assert_eq!(output["request"]["state"], "succeeded", "{output}");
    assert_eq!(output["request"]["result"]["handle"], "victim0");
    assert_eq!(tm.executions(0).await, 1);
    // Repeated decisions and redelivered events change nothing.
    conflict(tm.decide(&tm.alice, &id, "approve").await);
    conflict(tm.decide(&tm.bob, &id, "approve").await);
    assert!(
        !tm.t
            .core
            .execute_request(&tm.created.tenant_id, &id)
            .await
            .unwrap()
    );
    assert_eq!(tm.executions(0).await, 1);
    assert!(
        tm.t.notes
            .all()
            .iter()
            .any(|n| matches!(n, Notification::Executed { request_id, .. } if *request_id == id))
    );
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn self_approval_agent_approval_and_service_approval_never_count() {
    let tm = team().await;
    let id = tm.raise(0).await;
    assert!(denied(tm.decide(&tm.ops, &id, "approve").await).contains("you raised this request"));
    assert!(
        denied(tm.decide(&tm.agent, &id, "approve").await).contains("agent personas never decide")
    );
    assert!(
        denied(tm.decide(&tm.svc, &id, "approve").await).contains("service personas never decide")
    );
    assert_eq!(tm.executions(0).await, 0);
    assert_eq!(tm.state(&id).await["state"], "pending");
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn input_tampered_after_the_request_never_runs() {
    let tm = team().await;
    let id = tm.raise(0).await;
    exec(
        tm.t.core.store(),
        "UPDATE approval_requests SET input = $1 WHERE id = $2",
        &[
            json!({"persona": "victim1"}).to_string().into(),
            (&id).into(),
        ],
    )
    .await;
    let Outcome::Done { output } = tm.decide(&tm.alice, &id, "approve").await.unwrap() else {
        panic!()
    };
    assert_eq!(output["request"]["state"], "failed");
    assert!(
        output["request"]["error"]
            .as_str()
            .unwrap()
            .contains("digest")
    );
    assert_eq!(tm.executions(0).await + tm.executions(1).await, 0);
    assert!(
        tm.t.notes
            .all()
            .iter()
            .any(|n| matches!(n, Notification::Failed { request_id, .. } if *request_id == id))
    );
    tm.ledger_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_approvers_at_the_same_moment_with_quorum_one_run_it_once() {
    let tm = Arc::new(team().await);
    let id = tm.raise(0).await;
    let (a, b) = approve_together(&tm, &id, &tm.alice, &tm.bob).await;
    let oks = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(Outcome::Done { .. })))
        .count();
    assert_eq!(oks, 1, "{a:?} {b:?}");
    assert!(
        [&a, &b]
            .iter()
            .any(|r| matches!(r, Err(Error::Conflict(m)) if m.contains("decisions are closed"))),
        "the later decision finds the request decided: {a:?} {b:?}"
    );
    assert_eq!(tm.executions(0).await, 1);
    tm.ledger_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_two_needs_two_distinct_people_and_runs_once_when_they_decide_together() {
    let tm = Arc::new(team().await);
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "deletions", "operation": "members.delete_persona",
            "approvers": {"roles": ["security-admin", "finance-approver"]}, "quorum": 2
        }),
    )
    .await;
    // The same person twice is one approval.
    let id = tm.raise(0).await;
    tm.decide(&tm.alice, &id, "approve").await.unwrap();
    assert!(conflict(tm.decide(&tm.alice, &id, "approve").await).contains("already decided"));
    assert_eq!(tm.state(&id).await["state"], "pending");
    assert_eq!(tm.executions(0).await, 0);
    tm.decide(&tm.bob, &id, "approve").await.unwrap();
    assert_eq!(tm.executions(0).await, 1);

    // Two at once.
    let id = tm.raise(1).await;
    let (a, b) = approve_together(&tm, &id, &tm.alice, &tm.carol).await;
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert_eq!(tm.executions(1).await, 1);
    assert_eq!(tm.state(&id).await["approvals"], 2);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn a_decision_on_an_expired_request_is_refused_and_the_worker_expires_it() {
    let tm = team().await;
    let id = tm.raise(0).await;
    tm.t.clock.advance(Duration::days(7));
    assert!(conflict(tm.decide(&tm.alice, &id, "approve").await).contains("expired"));
    let report = tm.t.core.tick_approvals().await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(tm.state(&id).await["state"], "expired");
    assert_eq!(tm.executions(0).await, 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn an_approvers_role_removed_before_deciding_or_before_execution_voids_the_approval() {
    let tm = team().await;
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "deletions", "operation": "members.delete_persona",
            "approvers": {"roles": ["security-admin", "finance-approver"]}, "quorum": 2
        }),
    )
    .await;
    // Removed before deciding: the call itself is refused.
    let id = tm.raise(0).await;
    tm.t.ok_approved(
        &tm.admin,
        "members.assign_roles",
        json!({"persona":"carol","roles":["auditor"]}),
    )
    .await;
    assert!(denied(tm.decide(&tm.carol, &id, "approve").await).contains("approvals:decide"));
    // Removed after approving, before the quorum is met: the approval no longer stands.
    tm.decide(&tm.alice, &id, "approve").await.unwrap();
    tm.t.ok_approved(
        &tm.admin,
        "members.assign_roles",
        json!({"persona":"alice","roles":["auditor"]}),
    )
    .await;
    let Outcome::Done { output } = tm.decide(&tm.bob, &id, "approve").await.unwrap() else {
        panic!()
    };
    assert_ne!(output["request"]["state"], "succeeded", "{output}");
    assert_eq!(tm.executions(0).await, 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn an_approver_from_another_tenant_cannot_see_or_decide() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let (other_created, _) = tm.t.tenant("other").await;
    let other =
        tm.t.sign_in(
            other_created.tenant_id.as_str(),
            other_created.persona_id.as_str(),
        )
        .await;
    let err =
        tm.t.call(
            &other,
            "approvals.decide",
            json!({"request_id": id, "decision": "approve"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err =
        tm.t.call(&other, "approvals.get", json!({"request_id": id}))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert_eq!(tm.executions(0).await, 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn a_revoked_requesters_requests_are_cancelled_and_never_run() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let out =
        tm.t.ok(&tm.admin, "members.revoke", json!({"persona":"ops"}))
            .await;
    assert_eq!(out["cancelled_requests"][0], id.as_str());
    assert!(conflict(tm.decide(&tm.alice, &id, "approve").await).contains("cancelled"));
    assert_eq!(tm.executions(0).await, 0);
    assert!(
        tm.t.notes
            .all()
            .iter()
            .any(|n| matches!(n, Notification::Cancelled { request_id, .. } if *request_id == id))
    );
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn a_requester_revoked_after_approval_but_before_execution_fails_the_request() {
    let tm = team().await;
    let id = tm.raise(0).await;
    // Approved, but not yet executed (as after a crash at that point).
    exec(
        tm.t.core.store(),
        "UPDATE approval_requests SET state = 'approved' WHERE id = $1",
        &[(&id).into()],
    )
    .await;
    exec(
        tm.t.core.store(),
        "UPDATE personas SET status = 'revoked' WHERE handle = 'ops'",
        &[],
    )
    .await;
    let report = tm.t.core.tick_approvals().await.unwrap();
    assert_eq!(report.resumed, 1);
    let view = tm.state(&id).await;
    assert_eq!(view["state"], "failed");
    assert!(
        view["error"].as_str().unwrap().contains("requester"),
        "{view}"
    );
    assert_eq!(tm.executions(0).await, 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn rejecting_needs_a_comment_and_ends_the_request() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let err =
        tm.t.call(
            &tm.alice,
            "approvals.decide",
            json!({"request_id": id, "decision": "reject"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadInput { field, .. } if field == "comment"),
        "{err}"
    );
    let Outcome::Done { output } =
        tm.t.call(
            &tm.alice,
            "approvals.decide",
            json!({"request_id": id, "decision": "reject", "comment": "not during the freeze"}),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(output["request"]["state"], "rejected");
    conflict(tm.decide(&tm.bob, &id, "approve").await);
    assert_eq!(tm.executions(0).await, 0);
    // The comment is in the audit chain.
    let log =
        tm.t.ok(
            &tm.admin,
            "audit.list",
            json!({"op":"approvals.decide","limit":5}),
        )
        .await;
    assert!(log.to_string().contains("not during the freeze"));
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn break_glass_needs_a_reason_runs_at_once_and_leaves_a_review_for_a_second_human() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let err =
        tm.t.call(
            &tm.ops,
            "approvals.break_glass",
            json!({"request_id": id, "reason": "urgent"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadInput { field, .. } if field == "reason"),
        "{err}"
    );
    assert_eq!(tm.executions(0).await, 0);
    // Someone else cannot break the glass on ops' request.
    let not_mine =
        tm.t.call(
            &tm.admin,
            "approvals.break_glass",
            json!({"request_id": id, "reason": "regulator deadline at five, nobody else around"}),
        )
        .await
        .unwrap();
    assert!(matches!(not_mine, Outcome::Denied { .. }), "{not_mine:?}");

    let Outcome::Done { output } =
        tm.t.call(
            &tm.ops,
            "approvals.break_glass",
            json!({"request_id": id, "reason": "regulator deadline at five, nobody else around"}),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(output["request"]["state"], "succeeded", "{output}");
    assert_eq!(tm.executions(0).await, 1);
    assert!(tm.t.notes.all().iter().any(
        |n| matches!(n, Notification::BreakGlass { request_id, approvers, .. }
        if *request_id == id && approvers.len() == 4)
    ));
    // The review waits in the approvers' pending decisions until a second human records it.
    let pending = tm.t.ok(&tm.alice, "approvals.pending", json!({})).await;
    assert_eq!(pending["reviews"][0]["id"], id.as_str());
    let own =
        tm.t.call(
            &tm.ops,
            "approvals.review",
            json!({"request_id": id, "comment": "fine by me"}),
        )
        .await
        .unwrap();
    assert!(matches!(own, Outcome::Denied { .. }), "{own:?}");
    let reviewed =
        tm.t.ok(
            &tm.alice,
            "approvals.review",
            json!({"request_id": id, "comment": "justified"}),
        )
        .await;
    assert_eq!(reviewed["review_state"], "done");
    let pending = tm.t.ok(&tm.bob, "approvals.pending", json!({})).await;
    assert_eq!(pending["reviews"].as_array().unwrap().len(), 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn breaching_the_sla_escalates_once_to_the_routes_escalation_persona() {
    let tm = team().await;
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "deletions", "operation": "members.delete_persona",
            "approvers": {"personas": ["alice"]}, "sla": "4h", "escalation_persona": "carol"
        }),
    )
    .await;
    let id = tm.raise(0).await;
    tm.t.clock.advance(Duration::hours(3));
    assert_eq!(tm.t.core.tick_approvals().await.unwrap().escalated, 0);
    tm.t.clock.advance(Duration::hours(1));
    assert_eq!(tm.t.core.tick_approvals().await.unwrap().escalated, 1);
    assert_eq!(tm.t.core.tick_approvals().await.unwrap().escalated, 0);
    let escalations: Vec<_> = tm
        .t
        .notes
        .all()
        .into_iter()
        .filter(|n| matches!(n, Notification::Escalated { request_id, .. } if *request_id == id))
        .collect();
    assert_eq!(escalations.len(), 1);
    let carol_id = tm.carol.persona().to_string();
    assert!(
        matches!(&escalations[0], Notification::Escalated { to: Some(to), .. } if *to == carol_id)
    );
    // Only alice may decide under this route.
    assert!(denied(tm.decide(&tm.bob, &id, "approve").await).contains("route"));
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn routes_put_non_destructive_operations_behind_approval_when_their_condition_holds() {
    let tm = team().await;
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "emea-moves", "operation": "members.create_bu",
            "condition": [{"path": "input.kind", "op": "eq", "value": "region"}],
            "approvers": {"personas": ["alice"]}
        }),
    )
    .await;
    // The condition does not hold: runs at once.
    tm.t.ok(
        &tm.ops,
        "members.create_bu",
        json!({"name":"eng","kind":"cost-center"}),
    )
    .await;
    // It holds: waits for alice.
    let out =
        tm.t.call(
            &tm.ops,
            "members.create_bu",
            json!({"name":"emea","kind":"region"}),
        )
        .await
        .unwrap();
    let Outcome::PendingApproval { request_id, .. } = out else {
        panic!("{out:?}")
    };
    let Outcome::Done { output } = tm.decide(&tm.alice, &request_id, "approve").await.unwrap()
    else {
        panic!()
    };
    assert_eq!(output["request"]["result"]["name"], "emea");
    // Routes cannot gate secret-returning or approval operations.
    for op in ["keys.issue", "approvals.decide"] {
        let err = tm.t.call(&tm.admin, "approvals.routes_add", json!({
            "name": format!("bad-{}", op.replace('.', "-")), "operation": op, "approvers": {"personas": ["alice"]}
        })).await.unwrap_err();
        assert!(matches!(err, Error::BadInput { .. }), "{op}: {err}");
    }
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn decisions_never_come_through_mcp() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let key =
        tm.t.ok(
            &tm.admin,
            "keys.issue",
            json!({"persona": "alice", "scopes": DECIDE}),
        )
        .await;
    let via_mcp =
        tm.t.core
            .authenticate(
                key["api_key"].as_str().unwrap(),
                tenantops_core::Surface::Mcp,
            )
            .await
            .unwrap();
    assert!(denied(tm.decide(&via_mcp, &id, "approve").await).contains("never through MCP"));
    assert_eq!(tm.executions(0).await, 0);
}

#[tokio::test]
async fn a_request_that_could_never_run_is_refused_before_anyone_is_asked() {
    let tm = team().await;
    // alice (security-admin, narrow key) lacks authority over the tenant admin.
    let out =
        tm.t.call(
            &tm.alice,
            "members.delete_persona",
            json!({"persona": "admin"}),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Denied { .. }), "{out:?}");
    let pending = tm.t.ok(&tm.bob, "approvals.pending", json!({})).await;
    assert_eq!(pending["decisions"].as_array().unwrap().len(), 0);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn with_sign_in_required_an_api_key_never_counts_as_a_second_person() {
    let tm = team_with(true).await;
    let id = tm.raise(0).await;
    // An admin issues a key for alice and tries to decide as her.
    let key =
        tm.t.ok(
            &tm.admin,
            "keys.issue",
            json!({"persona": "alice", "scopes": DECIDE}),
        )
        .await;
    let as_alice = tm.t.auth(key["api_key"].as_str().unwrap()).await.unwrap();
    assert!(denied(tm.decide(&as_alice, &id, "approve").await).contains("own sign-in"));
    assert_eq!(tm.executions(0).await, 0);
    // Her own console sign-in counts.
    tm.decide(&tm.alice, &id, "approve").await.unwrap();
    assert_eq!(tm.executions(0).await, 1);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn by_default_a_key_decision_counts_and_the_ledger_names_who_issued_the_key() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let key =
        tm.t.ok(
            &tm.admin,
            "keys.issue",
            json!({"persona": "alice", "scopes": DECIDE}),
        )
        .await;
    let as_alice = tm.t.auth(key["api_key"].as_str().unwrap()).await.unwrap();
    tm.decide(&as_alice, &id, "approve").await.unwrap();
    assert_eq!(tm.executions(0).await, 1);
    let log =
        tm.t.ok(
            &tm.admin,
            "audit.list",
            json!({"op": "approvals.decide", "limit": 1}),
        )
        .await;
    assert_eq!(
        log["entries"][0]["detail"]["key_issued_by"],
        tm.created.persona_id.as_str()
    );
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn a_repeated_call_joins_the_open_request_and_the_strictest_route_governs() {
    let tm = team().await;
    let a = tm.raise(0).await;
    let b = tm.raise(0).await;
    assert_eq!(
        a, b,
        "a double click must not create two approvable requests"
    );
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "strict", "operation": "members.delete_persona",
            "approvers": {"roles": ["security-admin", "finance-approver"]}, "quorum": 2
        }),
    )
    .await;
    tm.t.ok_approved(
        &tm.admin,
        "approvals.routes_add",
        json!({
            "name": "lax", "operation": "members.delete_persona",
            "condition": [{"path": "input.persona", "op": "ne", "value": "carol"}],
            "approvers": {"personas": ["alice"]}, "quorum": 1
        }),
    )
    .await;
    let id = tm.raise(1).await;
    assert_eq!(tm.state(&id).await["quorum"], 2);
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn an_approved_deletion_cannot_be_redirected_to_a_new_holder_of_the_handle() {
    let tm = team().await;
    let first = tm.raise(0).await;
    // A second request for the same handle, raised with a different reason so it is distinct.
    let second = match tm
        .t
        .call(
            &tm.ops,
            "members.delete_persona",
            json!({"persona": "victim0", "reason": "again"}),
        )
        .await
        .unwrap()
    {
        Outcome::PendingApproval { request_id, .. } => request_id,
        other => panic!("{other:?}"),
    };
    tm.decide(&tm.alice, &first, "approve").await.unwrap();
    // The handle is reused by a new hire.
    tm.t.ok(
        &tm.admin,
        "members.create_persona",
        json!({"handle": "victim0", "kind": "service", "roles": ["developer"]}),
    )
    .await;
    let Outcome::Done { output } = tm.decide(&tm.alice, &second, "approve").await.unwrap() else {
        panic!()
    };
    assert_eq!(output["request"]["state"], "failed", "{output}");
    let alive =
        tm.t.ok(
            &tm.admin,
            "members.get_persona",
            json!({"persona": "victim0"}),
        )
        .await;
    assert_eq!(alive["persona"]["status"], "active");
    tm.ledger_verifies().await;
}

#[tokio::test]
async fn a_request_is_visible_only_to_its_requester_deciders_and_auditors() {
    let tm = team().await;
    let id = tm.raise(0).await;
    let (viewer_id, _) =
        tm.t.persona_with_key(
            &tm.admin,
            "viewer",
            "service",
            &["ai-agent"],
            &["approvals:read"],
        )
        .await;
    let _ = viewer_id;
    let key =
        tm.t.ok(
            &tm.admin,
            "keys.issue",
            json!({"persona": "viewer", "scopes": ["approvals:read"]}),
        )
        .await;
    let viewer = tm.t.auth(key["api_key"].as_str().unwrap()).await.unwrap();
    assert!(
        denied(
            tm.t.call(&viewer, "approvals.get", json!({"request_id": id}))
                .await
        )
        .contains("only the requester")
    );
    tm.t.ok(&tm.ops, "approvals.get", json!({"request_id": id}))
        .await;
    tm.t.ok(&tm.alice, "approvals.get", json!({"request_id": id}))
        .await;
}

#[tokio::test]
async fn a_stored_value_outside_its_closed_set_is_an_error_never_a_default() {
    let tm = team().await;
    let id = tm.raise(0).await;
    // Nothing in the schema holds requester_kind to the known kinds: a row edited behind the
    // core's back must not be read as some default kind (and then run as it).
    exec(
        tm.t.core.store(),
        "UPDATE approval_requests SET requester_kind = 'robot' WHERE id = $1",
        &[(&id).into()],
    )
    .await;
    match tm
        .t
        .call(&tm.admin, "approvals.get", json!({"request_id": id}))
        .await
    {
        Err(Error::Internal(m)) => assert!(m.contains("robot"), "{m}"),
        other => panic!("expected an internal error, got {other:?}"),
    }
    match tm.decide(&tm.alice, &id, "approve").await {
        Err(Error::Internal(_)) => {}
        other => panic!("expected an internal error, got {other:?}"),
    }
    assert_eq!(tm.executions(0).await, 0);
    exec(
        tm.t.core.store(),
        "UPDATE approval_requests SET requester_kind = 'human', facts = 'not json' WHERE id = $1",
        &[(&id).into()],
    )
    .await;
    assert!(matches!(
        tm.t.call(&tm.admin, "approvals.get", json!({"request_id": id}))
            .await,
        Err(Error::Internal(_))
    ));
}
