//! The two-person rule (guide §5): routes decide who must approve what; a request is bound to
//! the SHA-256 of the canonical `{tenant, operation, input, requester}`; decisions count only
//! from eligible humans; an approved request executes exactly once.
//!
//! This module holds the rules and the storage; [`crate::Core`] drives execution and the worker.

use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::ids::{PersonaId, RequestId, RouteId, TenantId};
use crate::principal::{PersonaKind, Principal};
use crate::roles;
use crate::scope::{Scope, ScopeSet, scopes_from_json};
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

/// Default SLA before escalation (the guide: 24 h).
pub const DEFAULT_SLA: Duration = Duration::hours(24);
/// Default hard expiry of an undecided request.
pub const DEFAULT_EXPIRY: Duration = Duration::days(7);
/// How long an execution may stall before the worker resumes it.
pub const EXECUTION_LEASE: Duration = Duration::minutes(5);
/// The shortest reason accepted for breaking the glass.
pub const MIN_BREAK_GLASS_REASON: usize = 15;

/// How long a revoked decider still counts towards "two people may decide" (see
/// [`deciders_guard`]): revoking a colleague cannot make one insider the only decider at once.
pub const REVOKED_DECIDER_WINDOW: Duration = Duration::days(7);

/// Roles whose holders may decide approvals or break the glass.
pub fn deciding_roles() -> Vec<&'static str> {
    roles::templates()
        .into_iter()
        .filter(|t| {
            t.scopes.contains(&Scope::APPROVALS_DECIDE)
                || t.scopes.contains(&Scope::APPROVALS_BREAK_GLASS)
        })
        .map(|t| t.name)
        .collect()
}

/// Whether a set of roles lets its holder decide or break the glass.
pub fn grants_deciding<'a>(role_names: impl IntoIterator<Item = &'a str>) -> (bool, bool) {
    let scopes = roles::scopes_of(role_names);
    (
        scopes.contains(&Scope::APPROVALS_DECIDE),
        scopes.contains(&Scope::APPROVALS_BREAK_GLASS),
    )
}

/// The humans who may decide approvals in `tenant`: active ones holding `approvals:decide`, and
/// those revoked within [`REVOKED_DECIDER_WINDOW`].
pub(crate) async fn decider_count(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<i64> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.id, r.role FROM personas p JOIN role_assignments r \
           ON r.tenant_id = p.tenant_id AND r.persona_id = p.id \
         WHERE p.tenant_id = ? AND p.kind = 'human' AND (p.status = 'active' OR p.revoked_at > ?)",
    )
    .bind(tenant.as_str())
    .bind(to_millis(now - REVOKED_DECIDER_WINDOW))
    .fetch_all(conn)
    .await?;
    let mut deciders: Vec<&str> = rows
        .iter()
        .filter(|(_, role)| {
            roles::template(role).is_some_and(|t| t.scopes.contains(&Scope::APPROVALS_DECIDE))
        })
        .map(|(p, _)| p.as_str())
        .collect();
    deciders.sort_unstable();
    deciders.dedup();
    Ok(deciders.len() as i64)
}

/// The set of people who may decide is itself under the two-person rule: once `tenant` has at
/// least two humans who may decide, changing who decides (`change`, a sentence) needs a second
/// person's approval. A tenant bootstrapping with one admin is not held up.
pub(crate) async fn deciders_guard(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    now: DateTime<Utc>,
    change: &str,
) -> Result<Option<String>> {
    let n = decider_count(conn, tenant, now).await?;
    Ok((n >= 2).then(|| {
        format!(
            "{change}: with {n} people who may decide approvals, changing who decides needs a \
             second person"
        )
    }))
}

/// Operations that can never be put behind a route (deciding must not itself need a decision).
pub fn routable(spec: &crate::OpSpec) -> std::result::Result<(), String> {
    if spec.name.starts_with("approvals.") || spec.name == "whoami" {
        return Err(format!(
            "`{}` cannot be put behind an approval route",
            spec.name
        ));
    }
    if spec.secret_output {
        return Err(format!(
            "`{}` returns a secret shown once, which cannot wait for an approval; restrict who \
             holds its scope instead",
            spec.name
        ));
    }
    Ok(())
}

/// JSON with object keys sorted at every level: the form a digest is computed over.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Serialises JSON with sorted keys regardless of how the map type orders them.
fn canonical_text(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_text(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_text).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The digest a request is bound to.
pub fn digest(tenant: &TenantId, operation: &str, input: &Value, requester: &PersonaId) -> String {
    let doc = json!({
        "tenant": tenant.as_str(),
        "operation": operation,
        "input": input,
        "requester": requester.as_str(),
    });
    hex::encode(Sha256::digest(canonical_text(&doc).as_bytes()))
}

/// One clause of a route condition: `path` (into the facts, or `input.<field>`) compared to
/// `value`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// A fact name (e.g. `estimated_bytes`) or `input.<field>`.
    pub path: String,
    /// `eq`, `ne`, `gt`, `gte`, `lt`, `lte` or `in`.
    pub op: CompareOp,
    /// The value compared against (an array for `in`).
    pub value: Value,
}

/// Comparison operators of a clause.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than (numbers).
    Gt,
    /// Greater or equal (numbers).
    Gte,
    /// Less than (numbers).
    Lt,
    /// Less or equal (numbers).
    Lte,
    /// Member of the array `value`.
    In,
}

impl Clause {
    /// Whether the clause holds for a call with these facts and input.
    pub fn holds(&self, facts: &Map<String, Value>, input: &Value) -> bool {
        let found = match self.path.strip_prefix("input.") {
            Some(field) => field.split('.').try_fold(input, |v, k| v.get(k)),
            None => self
                .path
                .split('.')
                .enumerate()
                .try_fold(None::<&Value>, |v, (i, k)| {
                    if i == 0 {
                        facts.get(k).map(Some)
                    } else {
                        v.and_then(|v| v.get(k)).map(Some)
                    }
                })
                .flatten(),
        };
        let Some(found) = found else { return false };
        let num = |v: &Value| v.as_f64();
        match self.op {
            CompareOp::Eq => found == &self.value,
            CompareOp::Ne => found != &self.value,
            CompareOp::In => self.value.as_array().is_some_and(|a| a.contains(found)),
            op => match (num(found), num(&self.value)) {
                (Some(a), Some(b)) => match op {
                    CompareOp::Gt => a > b,
                    CompareOp::Gte => a >= b,
                    CompareOp::Lt => a < b,
                    _ => a <= b,
                },
                _ => false,
            },
        }
    }
}

/// An approval route as stored.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Route {
    /// Route id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The trigger operation.
    pub operation: String,
    /// All clauses must hold for the route to apply ([] = every call).
    pub condition: Vec<Clause>,
    /// Personas who may approve (ids).
    pub approver_personas: Vec<String>,
    /// Roles whose holders may approve.
    pub approver_roles: Vec<String>,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Seconds before escalation.
    pub sla_secs: i64,
    /// Seconds before an undecided request expires.
    pub expiry_secs: i64,
    /// Persona paged when the SLA breaches.
    pub escalation_persona: Option<String>,
}

type RouteRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
);

fn route_from(r: RouteRow) -> Result<Route> {
    let json = |what: &str, text: &str| -> Result<Value> {
        serde_json::from_str(text)
            .map_err(|e| Error::Internal(format!("route {}: stored {what} is not JSON: {e}", r.0)))
    };
    let list = |what: &str, text: &str| -> Result<Vec<String>> {
        serde_json::from_value(json(what, text)?)
            .map_err(|e| Error::Internal(format!("route {}: stored {what}: {e}", r.0)))
    };
    Ok(Route {
        condition: serde_json::from_value(json("condition", &r.3)?)
            .map_err(|e| Error::Internal(format!("route {}: stored condition: {e}", r.0)))?,
        approver_personas: list("approver_personas", &r.4)?,
        approver_roles: list("approver_roles", &r.5)?,
        id: r.0,
        name: r.1,
        operation: r.2,
        quorum: r.6.max(1) as u32,
        sla_secs: r.7,
        expiry_secs: r.8,
        escalation_persona: r.9,
    })
}

const ROUTE_SELECT: &str = "SELECT id, name, operation, condition, approver_personas, approver_roles, \
     quorum, sla_secs, expiry_secs, escalation_persona FROM approval_routes WHERE tenant_id = ?";

/// Every route of a tenant, by name.
pub async fn routes(conn: &mut SqliteConnection, tenant: &TenantId) -> Result<Vec<Route>> {
    let sql = format!("{ROUTE_SELECT} ORDER BY name");
    let rows: Vec<RouteRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(route_from).collect()
}

/// One route by id or name.
pub async fn find_route(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    reference: &str,
) -> Result<Route> {
    let sql = format!("{ROUTE_SELECT} AND (id = ? OR name = ?)");
    let row: Option<RouteRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(reference)
        .bind(reference)
        .fetch_optional(conn)
        .await?;
    row.map(route_from).transpose()?.ok_or_else(|| {
        Error::NotFound(format!(
            "route: no approval route `{reference}` in this tenant; list them with approvals.routes_list"
        ))
    })
}

/// The route that governs a call, if any: among the routes of the operation whose condition
/// holds, the one needing the most approvals (then the most specific). `input` is canonical
/// (references are ids); a clause on a reference field compares ids too, whatever form the
/// route's author used, so naming an object by id or by name can never dodge a route.
pub async fn matching_route(
    conn: &mut crate::store::Tx,
    env: &crate::Env,
    tenant: &TenantId,
    spec: &crate::OpSpec,
    facts: &Map<String, Value>,
    input: &Value,
) -> Result<Option<Route>> {
    let sql = format!("{ROUTE_SELECT} AND operation = ?");
    let rows: Vec<RouteRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(spec.name)
        .fetch_all(&mut **conn)
        .await?;
    let mut matching = Vec::new();
    for row in rows {
        let mut route = route_from(row)?;
        canonical_conditions(conn, env, tenant, spec, &mut route.condition, false).await?;
        if route.condition.iter().all(|c| c.holds(facts, input)) {
            matching.push(route);
        }
    }
    // The strictest route governs: a permissive route added later cannot override it.
    Ok(matching
        .into_iter()
        .max_by_key(|r| (r.quorum, r.condition.len())))
}

/// Resolves the values of clauses on `spec`'s reference fields to ids (`strict`: a value that
/// names nothing is an error, as when a route is saved).
pub(crate) async fn canonical_conditions(
    conn: &mut crate::store::Tx,
    env: &crate::Env,
    tenant: &TenantId,
    spec: &crate::OpSpec,
    clauses: &mut [Clause],
    strict: bool,
) -> Result<()> {
    for (i, clause) in clauses.iter_mut().enumerate() {
        let Some(path) = spec
            .refs
            .iter()
            .find(|p| p.condition_path().as_deref() == Some(clause.path.as_str()))
        else {
            continue;
        };
        clause.value = crate::refs::canonical_clause_value(
            conn,
            env,
            tenant,
            path.kind,
            &format!("condition[{i}].value"),
            &clause.value,
            strict,
        )
        .await?;
    }
    Ok(())
}

/// Who may decide, as snapshotted into a request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Approvers {
    /// Personas named by the route (ids); empty with `roles` empty means any eligible human.
    pub personas: Vec<String>,
    /// Roles whose holders may decide.
    pub roles: Vec<String>,
}

impl Approvers {
    fn admits(&self, persona: &str, persona_roles: &[String]) -> bool {
        (self.personas.is_empty() && self.roles.is_empty())
            || self.personas.iter().any(|p| p == persona)
            || persona_roles.iter().any(|r| self.roles.contains(r))
    }
}

/// A persona's standing as read now.
#[derive(Debug)]
struct Standing {
    kind: PersonaKind,
    active: bool,
    roles: Vec<String>,
}

async fn standing(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    persona: &str,
) -> Result<Option<Standing>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT kind, status FROM personas WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(persona)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((kind, status)) = row else {
        return Ok(None);
    };
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT role FROM role_assignments WHERE tenant_id = ? AND persona_id = ?",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Standing {
        kind: PersonaKind::parse(&kind).unwrap_or(PersonaKind::Service),
        active: status == "active",
        roles,
    }))
}

/// Why `persona` may not decide `request`, or `None` when it may: a human of the tenant, active,
/// holding `approvals:decide` through its roles, admitted by the route, and not the requester.
/// Checked on the stored request at decision time and again at execution time.
pub(crate) async fn ineligibility(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    request: &StoredRequest,
    persona: &str,
) -> Result<Option<String>> {
    if persona == request.requester {
        return Ok(Some(
            "you raised this request: a second person must decide it (or break the glass with a \
             written reason, if you hold approvals:break_glass)"
                .into(),
        ));
    }
    let Some(s) = standing(conn, tenant, persona).await? else {
        return Ok(Some("the persona does not exist in this tenant".into()));
    };
    if s.kind != PersonaKind::Human {
        return Ok(Some(format!(
            "{} personas never decide approvals; a human must",
            s.kind.as_str()
        )));
    }
    if !s.active {
        return Ok(Some("the persona has been revoked".into()));
    }
    if !roles::scopes_of(s.roles.iter().map(String::as_str)).contains(&Scope::APPROVALS_DECIDE) {
        return Ok(Some(
            "the persona's roles do not grant approvals:decide".into(),
        ));
    }
    if !request.approvers.admits(persona, &s.roles) {
        return Ok(Some(
            "the approval route does not name this persona or any of its roles".into(),
        ));
    }
    Ok(None)
}

/// Every persona that may decide a request now (for notifications and break-glass notices).
pub(crate) async fn eligible_approvers(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    request: &StoredRequest,
) -> Result<Vec<String>> {
    let humans: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM personas WHERE tenant_id = ? AND kind = 'human' AND status = 'active' ORDER BY handle",
    )
    .bind(tenant.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for h in humans {
        if ineligibility(conn, tenant, request, &h).await?.is_none() {
            out.push(h);
        }
    }
    Ok(out)
}

/// A request as the engine reads it.
#[derive(Clone, Debug)]
pub(crate) struct StoredRequest {
    pub id: String,
    pub operation: String,
    pub input: Value,
    pub digest: String,
    pub requester: String,
    pub requester_kind: String,
    pub requester_surface: String,
    pub requester_scopes: ScopeSet,
    pub approvers: Approvers,
    pub quorum: u32,
    pub state: String,
    pub expires_at: DateTime<Utc>,
    pub break_glass_by: Option<String>,
}

type RequestRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
);

const REQUEST_SELECT: &str = "SELECT id, operation, input, digest, requester, requester_kind, \
     requester_surface, requester_scopes, approver_personas, approver_roles, \
     quorum, state, expires_at, break_glass_by FROM approval_requests WHERE tenant_id = ?";

fn request_from(r: RequestRow) -> StoredRequest {
    StoredRequest {
        id: r.0,
        operation: r.1,
        input: serde_json::from_str(&r.2).unwrap_or(Value::Null),
        digest: r.3,
        requester: r.4,
        requester_kind: r.5,
        requester_surface: r.6,
        requester_scopes: scopes_from_json(&r.7),
        approvers: Approvers {
            personas: serde_json::from_str(&r.8).unwrap_or_default(),
            roles: serde_json::from_str(&r.9).unwrap_or_default(),
        },
        quorum: r.10.max(1) as u32,
        state: r.11,
        expires_at: from_millis(r.12),
        break_glass_by: r.13,
    }
}

/// Loads a request of the tenant.
pub(crate) async fn load(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<StoredRequest> {
    let sql = format!("{REQUEST_SELECT} AND id = ?");
    let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(request_from).ok_or_else(|| {
        Error::NotFound(format!(
            "request_id: no approval request `{id}` in this tenant; see approvals.pending or approvals.mine"
        ))
    })
}

/// What `Core::call` returns for a call that now waits for approval.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Pending {
    /// The request id.
    pub request_id: String,
    /// What will happen once approved.
    pub summary: String,
    /// The digest the request is bound to.
    pub digest: String,
    /// When it expires if undecided (RFC 3339).
    pub expires_at: String,
    /// Approvals needed.
    pub quorum: u32,
}

/// Stores a new request for `principal`'s call and returns what to tell the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create(
    conn: &mut SqliteConnection,
    principal: &Principal,
    operation: &str,
    input: &Value,
    facts: &Map<String, Value>,
    summary: &str,
    route: Option<&Route>,
    now: DateTime<Utc>,
) -> Result<(StoredRequest, Pending)> {
    let input = canonical(input);
    let digest = digest(&principal.tenant, operation, &input, &principal.persona);
    // The same call again (a double click, a redelivered command) joins the open request.
    let open: Option<String> = sqlx::query_scalar(
        "SELECT id FROM approval_requests WHERE tenant_id = ? AND digest = ? AND state = 'pending' \
         ORDER BY created_at LIMIT 1",
    )
    .bind(principal.tenant.as_str())
    .bind(&digest)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = open {
        let stored = load(conn, &principal.tenant, &id).await?;
        let view = view(conn, &principal.tenant, &id).await?;
        return Ok((
            stored,
            Pending {
                request_id: id,
                summary: view.summary,
                digest,
                expires_at: view.expires_at,
                quorum: view.quorum,
            },
        ));
    }
    let id = RequestId::generate();
    let (approvers, quorum, sla, expiry, escalation, route_id) = match route {
        Some(r) => (
            Approvers {
                personas: r.approver_personas.clone(),
                roles: r.approver_roles.clone(),
            },
            r.quorum,
            Duration::seconds(r.sla_secs),
            Duration::seconds(r.expiry_secs),
            r.escalation_persona.clone(),
            Some(r.id.clone()),
        ),
        None => (
            Approvers::default(),
            1,
            DEFAULT_SLA,
            DEFAULT_EXPIRY,
            None,
            None,
        ),
    };
    let expires_at = now + expiry;
    let scopes: Vec<&str> = principal.scopes.iter().map(|s| s.as_str()).collect();
    sqlx::query(
        "INSERT INTO approval_requests (tenant_id, id, operation, input, facts, summary, digest, \
           requester, requester_kind, requester_via, requester_surface, requester_scopes, route_id, \
           approver_personas, approver_roles, escalation_persona, quorum, state, created_at, sla_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
    )
    .bind(principal.tenant.as_str())
    .bind(id.as_str())
    .bind(operation)
    .bind(input.to_string())
    .bind(Value::Object(facts.clone()).to_string())
    .bind(summary)
    .bind(&digest)
    .bind(principal.persona.as_str())
    .bind(principal.kind.as_str())
    .bind(principal.via.to_string())
    .bind(principal.surface.as_str())
    .bind(json!(scopes).to_string())
    .bind(&route_id)
    .bind(json!(approvers.personas).to_string())
    .bind(json!(approvers.roles).to_string())
    .bind(&escalation)
    .bind(quorum as i64)
    .bind(to_millis(now))
    .bind(to_millis(now + sla))
    .bind(to_millis(expires_at))
    .execute(&mut *conn)
    .await?;
    let stored = load(conn, &principal.tenant, id.as_str()).await?;
    Ok((
        stored,
        Pending {
            request_id: id.to_string(),
            summary: summary.to_owned(),
            digest,
            expires_at: crate::ops::rfc3339(expires_at),
            quorum,
        },
    ))
}

/// A decision as shown.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DecisionView {
    /// Who (persona id).
    pub persona_id: String,
    /// Their handle.
    pub persona: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Their comment.
    pub comment: Option<String>,
    /// Through which surface.
    pub surface: String,
    /// When.
    pub decided_at: String,
}

/// A request as shown to requesters and approvers.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RequestView {
    /// Request id.
    pub id: String,
    /// The operation that will run.
    pub operation: String,
    /// What will happen.
    pub summary: String,
    /// The exact input it will run with.
    pub input: Value,
    /// Facts computed when it was requested (e.g. estimated size).
    pub facts: Value,
    /// Hex SHA-256 of canonical {tenant, operation, input, requester}.
    pub digest: String,
    /// Requester persona id.
    pub requester_id: String,
    /// Requester handle.
    pub requester: String,
    /// pending, approved, executing, succeeded, failed, rejected, expired or cancelled.
    pub state: String,
    /// Approvals needed.
    pub quorum: u32,
    /// Approvals so far.
    pub approvals: u32,
    /// Decisions so far.
    pub decisions: Vec<DecisionView>,
    /// The governing route's name (absent: the default route of destructive operations).
    pub route: Option<String>,
    /// Raised at.
    pub created_at: String,
    /// Escalates at.
    pub sla_at: String,
    /// Expires at.
    pub expires_at: String,
    /// Escalated at.
    pub escalated_at: Option<String>,
    /// Finished at.
    pub finished_at: Option<String>,
    /// The operation's output, once it succeeded.
    pub result: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Who broke the glass, if anyone.
    pub break_glass_by: Option<String>,
    /// Their reason.
    pub break_glass_reason: Option<String>,
    /// `required` until a second human records the after-the-fact review, then `done`.
    pub review_state: Option<String>,
    /// The reviewer's comment.
    pub review_comment: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ViewRow {
    id: String,
    operation: String,
    summary: String,
    input: String,
    facts: String,
    digest: String,
    requester_id: String,
    requester: String,
    state: String,
    quorum: i64,
    route: Option<String>,
    created_at: i64,
    sla_at: i64,
    expires_at: i64,
    escalated_at: Option<i64>,
    finished_at: Option<i64>,
    result: Option<String>,
    error: Option<String>,
    break_glass_by: Option<String>,
    break_glass_reason: Option<String>,
    review_state: Option<String>,
    review_comment: Option<String>,
}

/// Loads the view of a request.
pub async fn view(conn: &mut SqliteConnection, tenant: &TenantId, id: &str) -> Result<RequestView> {
    let row: Option<ViewRow> = sqlx::query_as(
        "SELECT r.id, r.operation, r.summary, r.input, r.facts, r.digest, r.requester AS requester_id, \
           COALESCE(p.handle, r.requester) AS requester, r.state, r.quorum, rt.name AS route, r.created_at, r.sla_at, \
           r.expires_at, r.escalated_at, r.finished_at, r.result, r.error, r.break_glass_by, \
           r.break_glass_reason, r.review_state, r.review_comment \
         FROM approval_requests r \
         LEFT JOIN personas p ON p.tenant_id = r.tenant_id AND p.id = r.requester \
         LEFT JOIN approval_routes rt ON rt.tenant_id = r.tenant_id AND rt.id = r.route_id \
         WHERE r.tenant_id = ? AND r.id = ?",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Err(Error::NotFound(format!(
            "request_id: no approval request `{id}` in this tenant; see approvals.pending or approvals.mine"
        )));
    };
    let decisions: Vec<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT d.persona_id, COALESCE(p.handle, d.persona_id), d.decision, d.comment, d.surface, d.decided_at \
         FROM approval_decisions d \
         LEFT JOIN personas p ON p.tenant_id = d.tenant_id AND p.id = d.persona_id \
         WHERE d.tenant_id = ? AND d.request_id = ? ORDER BY d.decided_at, d.persona_id",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let ts = crate::ops::ms_to_rfc3339;
    let decisions: Vec<DecisionView> = decisions
        .into_iter()
        .map(|d| DecisionView {
            persona_id: d.0,
            persona: d.1,
            decision: d.2,
            comment: d.3,
            surface: d.4,
            decided_at: ts(d.5),
        })
        .collect();
    Ok(RequestView {
        approvals: decisions.iter().filter(|d| d.decision == "approve").count() as u32,
        decisions,
        id: r.id,
        operation: r.operation,
        summary: r.summary,
        input: serde_json::from_str(&r.input).unwrap_or(Value::Null),
        facts: serde_json::from_str(&r.facts).unwrap_or(Value::Null),
        digest: r.digest,
        requester_id: r.requester_id,
        requester: r.requester,
        state: r.state,
        quorum: r.quorum.max(1) as u32,
        route: r.route,
        created_at: ts(r.created_at),
        sla_at: ts(r.sla_at),
        expires_at: ts(r.expires_at),
        escalated_at: r.escalated_at.map(ts),
        finished_at: r.finished_at.map(ts),
        result: r.result.and_then(|t| serde_json::from_str(&t).ok()),
        error: r.error,
        break_glass_by: r.break_glass_by,
        break_glass_reason: r.break_glass_reason,
        review_state: r.review_state,
        review_comment: r.review_comment,
    })
}

/// The approvals that still stand (approvers still eligible now), and why the others lapsed.
pub(crate) async fn standing_approvals(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    request: &StoredRequest,
) -> Result<(Vec<String>, Vec<String>)> {
    let approvers: Vec<String> = sqlx::query_scalar(
        "SELECT persona_id FROM approval_decisions WHERE tenant_id = ? AND request_id = ? AND decision = 'approve'",
    )
    .bind(tenant.as_str())
    .bind(&request.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut valid = Vec::new();
    let mut lapsed = Vec::new();
    for a in approvers {
        match ineligibility(conn, tenant, request, &a).await? {
            None => valid.push(a),
            Some(why) => lapsed.push(format!("{a}: {why}")),
        }
    }
    Ok((valid, lapsed))
}

/// Cancels the pending requests a persona raised (it was revoked or deleted). Returns their ids.
pub(crate) async fn cancel_raised_by(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    persona: &PersonaId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE approval_requests SET state = 'cancelled', error = ?, finished_at = ? \
         WHERE tenant_id = ? AND requester = ? AND state = 'pending' RETURNING id",
    )
    .bind(reason)
    .bind(to_millis(now))
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_all(conn)
    .await?)
}

/// Withdraws one pending request by its requester. Returns whether it was still pending.
pub(crate) async fn withdraw(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    id: &str,
    requester: &PersonaId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE approval_requests SET state = 'cancelled', error = ?, finished_at = ? \
         WHERE tenant_id = ? AND id = ? AND requester = ? AND state = 'pending'",
    )
    .bind(reason)
    .bind(to_millis(now))
    .bind(tenant.as_str())
    .bind(id)
    .bind(requester.as_str())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Route id generation, kept here with the rest of the route rules.
pub(crate) fn new_route_id() -> RouteId {
    RouteId::generate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_key_order_but_not_content() {
        let t = TenantId::generate();
        let p = PersonaId::generate();
        let a = digest(
            &t,
            "tenant.export_all",
            &json!({"a": 1, "b": {"y": 2, "x": 1}}),
            &p,
        );
        let b = digest(
            &t,
            "tenant.export_all",
            &json!({"b": {"x": 1, "y": 2}, "a": 1}),
            &p,
        );
        let c = digest(
            &t,
            "tenant.export_all",
            &json!({"a": 2, "b": {"x": 1, "y": 2}}),
            &p,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            a,
            digest(
                &t,
                "tenant.export_all",
                &json!({"a": 1, "b": {"y": 2, "x": 1}}),
                &PersonaId::generate()
            )
        );
    }

    #[test]
    fn clauses_compare_facts_and_input() {
        let facts: Map<String, Value> = json!({"estimated_bytes": 2_000_000_000u64})
            .as_object()
            .unwrap()
            .clone();
        let input = json!({"persona": "ci-bot", "n": 3});
        let gb = Clause {
            path: "estimated_bytes".into(),
            op: CompareOp::Gt,
            value: json!(1_073_741_824u64),
        };
        assert!(gb.holds(&facts, &input));
        let small = Clause {
            path: "estimated_bytes".into(),
            op: CompareOp::Lt,
            value: json!(10),
        };
        assert!(!small.holds(&facts, &input));
        let who = Clause {
            path: "input.persona".into(),
            op: CompareOp::In,
            value: json!(["ci-bot", "x"]),
        };
        assert!(who.holds(&facts, &input));
        let missing = Clause {
            path: "input.nope".into(),
            op: CompareOp::Eq,
            value: json!(1),
        };
        assert!(!missing.holds(&facts, &input));
        let text_gt = Clause {
            path: "input.persona".into(),
            op: CompareOp::Gt,
            value: json!(1),
        };
        assert!(!text_gt.holds(&facts, &input));
    }
}
