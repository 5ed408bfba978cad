//! Approvals: routes (who must approve what), requests and their state machine, decisions, and
//! the reads of personas and roles the two-person rule makes.
//!
//! Every change of a request's state goes through one of the transition functions below: each
//! takes its edge from [`Transition::edge`] (the one table of the state machine) and changes the
//! row only while it is still in the edge's starting state, returning whether it did. The rules
//! — who may decide, when a quorum is reached — stay in [`crate::approvals`].

use super::{Tx, on};
use crate::error::Result;
use crate::ids::{PersonaId, TenantId};
use crate::principal::PersonaKind;
use crate::request_state::{Decision, RequestState, ReviewState, Transition};

// ---------------------------------------------------------------------------------------------
// Routes

/// A route as stored (JSON columns as text).
#[derive(sqlx::FromRow)]
pub(crate) struct RouteRow {
    pub id: String,
    pub name: String,
    pub operation: String,
    pub condition: String,
    pub approver_personas: String,
    pub approver_roles: String,
    pub quorum: i64,
    pub sla_secs: i64,
    pub expiry_secs: i64,
    pub escalation_persona: Option<String>,
}

/// A route's contents, to insert or replace (JSON columns as text).
pub(crate) struct RouteFields<'a> {
    pub name: &'a str,
    pub operation: &'a str,
    pub condition: &'a str,
    pub approver_personas: &'a str,
    pub approver_roles: &'a str,
    pub quorum: i64,
    pub sla_secs: i64,
    pub expiry_secs: i64,
    pub escalation_persona: Option<&'a str>,
}

/// Whether a route could be saved under its name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Saved {
    /// Stored.
    Done,
    /// Another route of the tenant has this name; nothing was stored.
    NameTaken,
}

/// Every route of a tenant, by name.
pub(crate) async fn routes(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<RouteRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name, operation, condition, approver_personas, approver_roles, quorum, \
           sla_secs, expiry_secs, escalation_persona \
         FROM approval_routes WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// One route by id or name.
pub(crate) async fn find_route(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<RouteRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name, operation, condition, approver_personas, approver_roles, quorum, \
           sla_secs, expiry_secs, escalation_persona \
         FROM approval_routes WHERE tenant_id = $1 AND (id = $2 OR name = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// The routes whose trigger is `operation`.
pub(crate) async fn routes_of(
    tx: &mut Tx,
    tenant: &TenantId,
    operation: &str,
) -> Result<Vec<RouteRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name, operation, condition, approver_personas, approver_roles, quorum, \
           sla_secs, expiry_secs, escalation_persona \
         FROM approval_routes WHERE tenant_id = $1 AND operation = $2 ORDER BY name",
    )
    .bind(tenant.as_str())
    .bind(operation)
    .fetch_all(c)
    .await)?)
}

/// How many routes have `operation` as their trigger.
pub(crate) async fn route_count(tx: &mut Tx, tenant: &TenantId, operation: &str) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM approval_routes WHERE tenant_id = $1 AND operation = $2",
    )
    .bind(tenant.as_str())
    .bind(operation)
    .fetch_one(c)
    .await)?)
}

/// Inserts route `id`, unless the tenant has a route of that name.
pub(crate) async fn insert_route(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    r: &RouteFields<'_>,
    created_at: i64,
) -> Result<Saved> {
    let inserted = on!(tx, c => sqlx::query(
        "INSERT INTO approval_routes (tenant_id, id, name, operation, condition, approver_personas, \
           approver_roles, quorum, sla_secs, expiry_secs, escalation_persona, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(r.name)
    .bind(r.operation)
    .bind(r.condition)
    .bind(r.approver_personas)
    .bind(r.approver_roles)
    .bind(r.quorum)
    .bind(r.sla_secs)
    .bind(r.expiry_secs)
    .bind(r.escalation_persona)
    .bind(created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(if inserted == 1 {
        Saved::Done
    } else {
        Saved::NameTaken
    })
}

/// Replaces the contents of route `id`. A name another route holds is [`Saved::NameTaken`]:
/// the unique violation ends the operation (its savepoint rolls back), nothing else runs in the
/// failed statement's transaction.
pub(crate) async fn update_route(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    r: &RouteFields<'_>,
) -> Result<Saved> {
    let res = on!(tx, c => sqlx::query(
        "UPDATE approval_routes SET name = $1, operation = $2, condition = $3, \
           approver_personas = $4, approver_roles = $5, quorum = $6, sla_secs = $7, \
           expiry_secs = $8, escalation_persona = $9 \
         WHERE tenant_id = $10 AND id = $11",
    )
    .bind(r.name)
    .bind(r.operation)
    .bind(r.condition)
    .bind(r.approver_personas)
    .bind(r.approver_roles)
    .bind(r.quorum)
    .bind(r.sla_secs)
    .bind(r.expiry_secs)
    .bind(r.escalation_persona)
    .bind(tenant.as_str())
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()));
    match res {
        Ok(_) => Ok(Saved::Done),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Saved::NameTaken),
        Err(e) => Err(e.into()),
    }
}

/// Deletes route `id`.
pub(crate) async fn delete_route(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM approval_routes WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A request as the engine reads it (JSON columns as text, closed sets as their stored names).
#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub id: String,
    pub operation: String,
    pub input: String,
    pub digest: String,
    pub requester: String,
    pub requester_kind: String,
    pub requester_surface: String,
    pub requester_scopes: String,
    pub approver_personas: String,
    pub approver_roles: String,
    pub quorum: i64,
    pub state: String,
    pub expires_at: i64,
    pub break_glass_by: Option<String>,
    pub personal_sealed: Option<Vec<u8>>,
}

/// A request as shown, with the requester's handle and the route's name.
#[derive(sqlx::FromRow)]
pub(crate) struct ViewRow {
    pub id: String,
    pub operation: String,
    pub summary: String,
    pub input: String,
    pub facts: String,
    pub digest: String,
    pub requester_id: String,
    pub requester: String,
    pub state: String,
    pub quorum: i64,
    pub route: Option<String>,
    pub created_at: i64,
    pub sla_at: i64,
    pub expires_at: i64,
    pub escalated_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub break_glass_by: Option<String>,
    pub break_glass_reason: Option<String>,
    pub review_state: Option<String>,
    pub review_comment: Option<String>,
}

/// A new request's row; it starts `pending`.
pub(crate) struct NewRequest<'a> {
    pub tenant: &'a TenantId,
    pub id: &'a str,
    pub operation: &'a str,
    pub input: &'a str,
    pub facts: &'a str,
    pub summary: &'a str,
    pub digest: &'a str,
    pub requester: &'a str,
    pub requester_kind: &'a str,
    pub requester_via: &'a str,
    pub requester_surface: &'a str,
    pub requester_scopes: &'a str,
    pub route_id: Option<&'a str>,
    pub approver_personas: &'a str,
    pub approver_roles: &'a str,
    pub escalation_persona: Option<&'a str>,
    pub quorum: i64,
    pub created_at: i64,
    pub sla_at: i64,
    pub expires_at: i64,
    /// The input's personal fields, sealed (their places in `input` hold a marker).
    pub personal_sealed: Option<&'a [u8]>,
}

/// Inserts a new `pending` request.
pub(crate) async fn insert_request(tx: &mut Tx, r: &NewRequest<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO approval_requests (tenant_id, id, operation, input, facts, summary, digest, \
           requester, requester_kind, requester_via, requester_surface, requester_scopes, route_id, \
           approver_personas, approver_roles, escalation_persona, quorum, state, created_at, \
           sla_at, expires_at, personal_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
           $19, $20, $21, $22)",
    )
    .bind(r.tenant.as_str())
    .bind(r.id)
    .bind(r.operation)
    .bind(r.input)
    .bind(r.facts)
    .bind(r.summary)
    .bind(r.digest)
    .bind(r.requester)
    .bind(r.requester_kind)
    .bind(r.requester_via)
    .bind(r.requester_surface)
    .bind(r.requester_scopes)
    .bind(r.route_id)
    .bind(r.approver_personas)
    .bind(r.approver_roles)
    .bind(r.escalation_persona)
    .bind(r.quorum)
    .bind(RequestState::Pending.as_str())
    .bind(r.created_at)
    .bind(r.sla_at)
    .bind(r.expires_at)
    .bind(r.personal_sealed)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The oldest pending request bound to `digest`, if any.
pub(crate) async fn pending_with_digest(
    tx: &mut Tx,
    tenant: &TenantId,
    digest: &str,
) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT id FROM approval_requests WHERE tenant_id = $1 AND digest = $2 AND state = $3 \
         ORDER BY created_at LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .bind(RequestState::Pending.as_str())
    .fetch_optional(c)
    .await)?)
}

/// One request, as the engine reads it.
pub(crate) async fn request(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<RequestRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, operation, input, digest, requester, requester_kind, requester_surface, \
           requester_scopes, approver_personas, approver_roles, quorum, state, expires_at, \
           break_glass_by, personal_sealed \
         FROM approval_requests WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// One request as shown.
pub(crate) async fn view(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<Option<ViewRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT r.id, r.operation, r.summary, r.input, r.facts, r.digest, \
           r.requester AS requester_id, COALESCE(p.handle, r.requester) AS requester, r.state, \
           r.quorum, rt.name AS route, r.created_at, r.sla_at, r.expires_at, r.escalated_at, \
           r.finished_at, r.result, r.error, r.break_glass_by, r.break_glass_reason, \
           r.review_state, r.review_comment \
         FROM approval_requests r \
         LEFT JOIN personas p ON p.tenant_id = r.tenant_id AND p.id = r.requester \
         LEFT JOIN approval_routes rt ON rt.tenant_id = r.tenant_id AND rt.id = r.route_id \
         WHERE r.tenant_id = $1 AND r.id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// The requests waiting for a decision (`pending`) or for a break-glass review (`required`),
/// oldest first: `(id, state, review state)`.
pub(crate) async fn awaiting_someone(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, state, review_state FROM approval_requests WHERE tenant_id = $1 \
           AND (state = $2 OR review_state = $3) ORDER BY created_at, id",
    )
    .bind(tenant.as_str())
    .bind(RequestState::Pending.as_str())
    .bind(ReviewState::Required.as_str())
    .fetch_all(c)
    .await)?)
}

/// The ids of the requests `requester` raised, newest first, at most 50: those in one of the
/// `open` states, or all of them with `include_closed`.
pub(crate) async fn raised_by(
    tx: &mut Tx,
    tenant: &TenantId,
    requester: &PersonaId,
    include_closed: bool,
    open: [RequestState; 3],
) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT id FROM approval_requests WHERE tenant_id = $1 AND requester = $2 \
           AND ($3 OR state IN ($4, $5, $6)) ORDER BY created_at DESC, id DESC LIMIT 50",
    )
    .bind(tenant.as_str())
    .bind(requester.as_str())
    .bind(include_closed)
    .bind(open[0].as_str())
    .bind(open[1].as_str())
    .bind(open[2].as_str())
    .fetch_all(c)
    .await)?)
}

// --- the state machine ------------------------------------------------------------------------

/// The edge a transition function changes along, checked against the table.
fn edge(t: Transition) -> (&'static str, &'static str) {
    let (from, to) = t.edge();
    debug_assert!(from.can_become(to));
    (from.as_str(), to.as_str())
}

/// `pending` → `approved` ([`Transition::Approve`]): the quorum is reached.
pub(crate) async fn approve(tx: &mut Tx, tenant: &TenantId, id: &str, now: i64) -> Result<bool> {
    let (from, to) = edge(Transition::Approve);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, decided_at = $2 \
         WHERE tenant_id = $3 AND id = $4 AND state = $5",
    )
    .bind(to)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `pending` → `approved` ([`Transition::Approve`]) by the requester breaking the glass: the
/// after-the-fact review becomes `required`.
pub(crate) async fn break_glass(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let (from, to) = edge(Transition::Approve);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, decided_at = $2, break_glass_by = $3, \
           break_glass_reason = $4, review_state = $5 \
         WHERE tenant_id = $6 AND id = $7 AND state = $8",
    )
    .bind(to)
    .bind(now)
    .bind(by)
    .bind(reason)
    .bind(ReviewState::Required.as_str())
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `pending` → `rejected` ([`Transition::Reject`]).
pub(crate) async fn reject(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    error: &str,
    now: i64,
) -> Result<bool> {
    let (from, to) = edge(Transition::Reject);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, decided_at = $2, finished_at = $2, error = $3 \
         WHERE tenant_id = $4 AND id = $5 AND state = $6",
    )
    .bind(to)
    .bind(now)
    .bind(error)
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `pending` → `cancelled` ([`Transition::Cancel`]) for one request, by its requester.
pub(crate) async fn withdraw(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    requester: &PersonaId,
    error: &str,
    now: i64,
) -> Result<bool> {
    let (from, to) = edge(Transition::Cancel);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, error = $2, finished_at = $3 \
         WHERE tenant_id = $4 AND id = $5 AND requester = $6 AND state = $7",
    )
    .bind(to)
    .bind(error)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(requester.as_str())
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `pending` → `cancelled` ([`Transition::Cancel`]) for every request `requester` raised.
/// Returns the ids of those it cancelled.
pub(crate) async fn cancel_raised_by(
    tx: &mut Tx,
    tenant: &TenantId,
    requester: &PersonaId,
    error: &str,
    now: i64,
) -> Result<Vec<String>> {
    let (from, to) = edge(Transition::Cancel);
    Ok(on!(tx, c => sqlx::query_scalar(
        "UPDATE approval_requests SET state = $1, error = $2, finished_at = $3 \
         WHERE tenant_id = $4 AND requester = $5 AND state = $6 RETURNING id",
    )
    .bind(to)
    .bind(error)
    .bind(now)
    .bind(tenant.as_str())
    .bind(requester.as_str())
    .bind(from)
    .fetch_all(c)
    .await)?)
}

/// `pending` → `expired` ([`Transition::Expire`]).
pub(crate) async fn expire(tx: &mut Tx, tenant: &TenantId, id: &str, now: i64) -> Result<bool> {
    let (from, to) = edge(Transition::Expire);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, finished_at = $2 \
         WHERE tenant_id = $3 AND id = $4 AND state = $5",
    )
    .bind(to)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Claims a request for execution until `lease_until`: `approved` → `executing`
/// ([`Transition::Claim`]), or a stalled `executing` whose lease ran out by `now` → `executing`
/// ([`Transition::Resume`]).
pub(crate) async fn claim(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool> {
    let (approved, executing) = edge(Transition::Claim);
    let (stalled, resumed) = edge(Transition::Resume);
    debug_assert_eq!(executing, resumed);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, lease_until = $2 \
         WHERE tenant_id = $3 AND id = $4 \
           AND (state = $5 OR (state = $6 AND lease_until <= $7))",
    )
    .bind(executing)
    .bind(lease_until)
    .bind(tenant.as_str())
    .bind(id)
    .bind(approved)
    .bind(stalled)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `executing` → `succeeded` ([`Transition::Succeed`]) with the operation's output (JSON).
pub(crate) async fn succeed(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    result: &str,
    now: i64,
) -> Result<bool> {
    let (from, to) = edge(Transition::Succeed);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, result = $2, finished_at = $3, \
           lease_until = NULL \
         WHERE tenant_id = $4 AND id = $5 AND state = $6",
    )
    .bind(to)
    .bind(result)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `executing` → `failed` ([`Transition::Fail`]) with why.
pub(crate) async fn fail(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    error: &str,
    now: i64,
) -> Result<bool> {
    let (from, to) = edge(Transition::Fail);
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET state = $1, error = $2, finished_at = $3, \
           lease_until = NULL \
         WHERE tenant_id = $4 AND id = $5 AND state = $6",
    )
    .bind(to)
    .bind(error)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records that a pending request's SLA breached (once; the state does not change).
pub(crate) async fn mark_escalated(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    now: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET escalated_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND state = $4 AND escalated_at IS NULL",
    )
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(RequestState::Pending.as_str())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records the after-the-fact review of a break-glass execution: `required` → `done`.
pub(crate) async fn record_review(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    reviewer: &str,
    comment: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "UPDATE approval_requests SET review_state = $1, reviewed_by = $2, review_comment = $3, \
           reviewed_at = $4 \
         WHERE tenant_id = $5 AND id = $6 AND review_state = $7",
    )
    .bind(ReviewState::Done.as_str())
    .bind(reviewer)
    .bind(comment)
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(ReviewState::Required.as_str())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

// --- the worker's scans ---------------------------------------------------------------------
//
// The approvals worker looks across tenants for requests whose time has come; these three
// reads and the count below are the only statements here that name no tenant. Every change the
// worker then makes goes through a transition above, which names the request's tenant.

/// Pending requests whose SLA breached by `now`, not yet escalated and not yet expired:
/// `(tenant, id, escalation persona)`.
pub(crate) async fn due_for_escalation(
    tx: &mut Tx,
    now: i64,
) -> Result<Vec<(TenantId, String, Option<String>)>> {
    let rows: Vec<(String, String, Option<String>)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, id, escalation_persona FROM approval_requests \
         WHERE state = $1 AND escalated_at IS NULL AND sla_at <= $2 AND expires_at > $2",
    )
    .bind(RequestState::Pending.as_str())
    .bind(now)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(t, id, to)| (TenantId::from_db(t), id, to))
        .collect())
}

/// Pending requests past their hard limit at `now`: `(tenant, id)`.
pub(crate) async fn past_expiry(tx: &mut Tx, now: i64) -> Result<Vec<(TenantId, String)>> {
    let (from, _) = edge(Transition::Expire);
    let rows: Vec<(String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, id FROM approval_requests WHERE state = $1 AND expires_at <= $2",
    )
    .bind(from)
    .bind(now)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(t, id)| (TenantId::from_db(t), id))
        .collect())
}

/// Requests an executor may claim at `now` (see [`claim`]), oldest first: `(tenant, id)`.
pub(crate) async fn claimable(tx: &mut Tx, now: i64) -> Result<Vec<(TenantId, String)>> {
    let (approved, _) = edge(Transition::Claim);
    let (stalled, _) = edge(Transition::Resume);
    let rows: Vec<(String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, id FROM approval_requests \
         WHERE state = $1 OR (state = $2 AND lease_until <= $3) ORDER BY created_at",
    )
    .bind(approved)
    .bind(stalled)
    .bind(now)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(t, id)| (TenantId::from_db(t), id))
        .collect())
}

/// How many requests wait for a decision, across tenants (an operational figure).
pub(crate) async fn pending_count(tx: &mut Tx) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM approval_requests WHERE state = $1",
    )
    .bind(RequestState::Pending.as_str())
    .fetch_one(c)
    .await)?)
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// A decision as shown, with the decider's handle.
#[derive(sqlx::FromRow)]
pub(crate) struct DecisionRow {
    pub persona_id: String,
    pub persona: String,
    pub decision: String,
    pub comment: Option<String>,
    pub surface: String,
    pub decided_at: i64,
}

/// A new decision's row.
pub(crate) struct NewDecision<'a> {
    pub tenant: &'a TenantId,
    pub request_id: &'a str,
    pub persona_id: &'a str,
    pub decision: Decision,
    pub comment: Option<&'a str>,
    pub via: &'a str,
    pub surface: &'a str,
    pub decided_at: i64,
}

/// Records a decision (each person decides a request once: the primary key).
pub(crate) async fn insert_decision(tx: &mut Tx, d: &NewDecision<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO approval_decisions (tenant_id, request_id, persona_id, decision, comment, \
           via, surface, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.tenant.as_str())
    .bind(d.request_id)
    .bind(d.persona_id)
    .bind(d.decision.as_str())
    .bind(d.comment)
    .bind(d.via)
    .bind(d.surface)
    .bind(d.decided_at)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The decisions on a request, in the order they were made.
pub(crate) async fn decisions(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
) -> Result<Vec<DecisionRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT d.persona_id, COALESCE(p.handle, d.persona_id) AS persona, d.decision, d.comment, \
           d.surface, d.decided_at \
         FROM approval_decisions d \
         LEFT JOIN personas p ON p.tenant_id = d.tenant_id AND p.id = d.persona_id \
         WHERE d.tenant_id = $1 AND d.request_id = $2 ORDER BY d.decided_at, d.persona_id",
    )
    .bind(tenant.as_str())
    .bind(request_id)
    .fetch_all(c)
    .await)?)
}

/// What `persona` decided on a request, if anything (its stored name).
pub(crate) async fn decision_of(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
    persona: &str,
) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT decision FROM approval_decisions \
         WHERE tenant_id = $1 AND request_id = $2 AND persona_id = $3",
    )
    .bind(tenant.as_str())
    .bind(request_id)
    .bind(persona)
    .fetch_optional(c)
    .await)?)
}

/// The personas who approved a request (whether their approval still stands is the rules'
/// business).
pub(crate) async fn approvers(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT persona_id FROM approval_decisions \
         WHERE tenant_id = $1 AND request_id = $2 AND decision = $3",
    )
    .bind(tenant.as_str())
    .bind(request_id)
    .bind(Decision::Approve.as_str())
    .fetch_all(c)
    .await)?)
}

// ---------------------------------------------------------------------------------------------
// The personas the two-person rule reads

/// `(persona, role)` for every role held by a human of the tenant who is active or was revoked
/// after `revoked_after` (millis).
pub(crate) async fn human_roles_since(
    tx: &mut Tx,
    tenant: &TenantId,
    revoked_after: i64,
) -> Result<Vec<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT p.id, r.role FROM personas p JOIN role_assignments r \
           ON r.tenant_id = p.tenant_id AND r.persona_id = p.id \
         WHERE p.tenant_id = $1 AND p.kind = $2 AND (p.status = 'active' OR p.revoked_at > $3)",
    )
    .bind(tenant.as_str())
    .bind(PersonaKind::Human.as_str())
    .bind(revoked_after)
    .fetch_all(c)
    .await)?)
}

/// A persona's kind and status (their stored names), if it exists in the tenant.
pub(crate) async fn kind_and_status(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT kind, status FROM personas WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .fetch_optional(c)
    .await)?)
}

/// The roles a persona holds.
pub(crate) async fn roles_of(tx: &mut Tx, tenant: &TenantId, persona: &str) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT role FROM role_assignments WHERE tenant_id = $1 AND persona_id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .fetch_all(c)
    .await)?)
}

/// The active humans of the tenant, by handle.
pub(crate) async fn active_humans(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT id FROM personas WHERE tenant_id = $1 AND kind = $2 AND status = 'active' \
         ORDER BY handle",
    )
    .bind(tenant.as_str())
    .bind(PersonaKind::Human.as_str())
    .fetch_all(c)
    .await)?)
}

/// Who issued an API key (recorded with a decision made with it), if the key exists.
pub(crate) async fn key_issuer(
    tx: &mut Tx,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT created_by FROM api_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(key_id)
    .fetch_optional(c)
    .await)?)
}
