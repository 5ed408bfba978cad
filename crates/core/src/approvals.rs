//! The two-person rule (guide §5): routes decide who must approve what; a request is bound to
//! the SHA-256 of the canonical `{tenant, operation, input, requester}`; decisions count only
//! from eligible humans; an approved request executes exactly once.
//!
//! This module holds the rules and the request state machine ([`RequestState`], [`Transition`]);
//! `store::approvals` reads and writes the rows, and [`crate::Core`] drives execution
//! and the worker.

use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::ids::{PersonaId, RequestId, RouteId, TenantId};
use crate::principal::{PersonaKind, Principal, Surface};
use crate::roles;
use crate::scope::{Scope, ScopeSet};
use crate::store::approvals::{RequestRow, RouteRow};
use crate::store::vault::APPROVAL_PERSONAL;
use crate::store::{self, Tx};
use crate::vault::keys::{Place, TenantKeys};
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Default SLA before escalation (the guide: 24 h).
pub const DEFAULT_SLA: Duration = Duration::hours(24);
/// Default hard expiry of an undecided request.
pub const DEFAULT_EXPIRY: Duration = Duration::days(7);
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

/// An internal error for a value read back from the store outside its closed set.
fn unknown(what: &str, value: &str) -> Error {
    Error::Internal(format!("unknown {what} `{value}` in the store"))
}

pub use crate::request_state::{Decision, RequestState, ReviewState, Transition};

fn persona_kind(s: &str) -> Result<PersonaKind> {
    PersonaKind::parse(s).ok_or_else(|| unknown("persona kind", s))
}

fn surface(s: &str) -> Result<Surface> {
    Surface::parse(s).ok_or_else(|| unknown("surface", s))
}

/// A stored quorum: at least one approval.
fn quorum(id: &str, n: i64) -> Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|q| *q >= 1)
        .ok_or_else(|| Error::Internal(format!("{id}: stored quorum {n} is not a positive count")))
}

/// Parses a JSON column of `what` in row `id`.
fn stored_json<T: serde::de::DeserializeOwned>(id: &str, what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("{id}: stored {what} is not valid: {e}")))
}

/// The humans who may decide approvals in `tenant`: active ones holding `approvals:decide`, and
/// those revoked within [`REVOKED_DECIDER_WINDOW`].
pub(crate) async fn decider_count(
    tx: &mut Tx,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<i64> {
    let rows =
        store::approvals::human_roles_since(tx, tenant, to_millis(now - REVOKED_DECIDER_WINDOW))
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
    tx: &mut Tx,
    tenant: &TenantId,
    now: DateTime<Utc>,
    change: &str,
) -> Result<Option<String>> {
    let n = decider_count(tx, tenant, now).await?;
    Ok((n >= 2).then(|| {
        format!(
            "{change}: with {n} people who may decide approvals, changing who decides needs a \
             second person"
        )
    }))
}

/// Whether a second person could approve a change to `tenant` now: at least two humans may
/// decide. A control that hands power to one party takes two people from then on; a tenant
/// bootstrapping with one admin is not held up.
pub(crate) async fn second_person_exists(
    tx: &mut Tx,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(decider_count(tx, tenant, now).await? >= 2)
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

fn route_from(r: RouteRow) -> Result<Route> {
    let what = format!("route {}", r.id);
    Ok(Route {
        condition: stored_json(&what, "condition", &r.condition)?,
        approver_personas: stored_json(&what, "approver_personas", &r.approver_personas)?,
        approver_roles: stored_json(&what, "approver_roles", &r.approver_roles)?,
        quorum: quorum(&what, r.quorum)?,
        id: r.id,
        name: r.name,
        operation: r.operation,
        sla_secs: r.sla_secs,
        expiry_secs: r.expiry_secs,
        escalation_persona: r.escalation_persona,
    })
}

/// Every route of a tenant, by name.
pub async fn routes(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Route>> {
    store::approvals::routes(tx, tenant)
        .await?
        .into_iter()
        .map(route_from)
        .collect()
}

/// One route by id or name.
pub async fn find_route(tx: &mut Tx, tenant: &TenantId, reference: &str) -> Result<Route> {
    let row = store::approvals::find_route(tx, tenant, reference).await?;
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
    tx: &mut Tx,
    env: &crate::Env,
    tenant: &TenantId,
    spec: &crate::OpSpec,
    facts: &Map<String, Value>,
    input: &Value,
) -> Result<Option<Route>> {
    let rows = store::approvals::routes_of(tx, tenant, spec.name).await?;
    let mut matching = Vec::new();
    for row in rows {
        let mut route = route_from(row)?;
        canonical_conditions(tx, env, tenant, spec, &mut route.condition, false).await?;
        if route.condition.iter().all(|c| c.holds(facts, input)) {
            matching.push(route);
        }
    }
    // The strictest route governs: a permissive route added later cannot override it.
    Ok(matching
        .into_iter()
        .max_by_key(|r| (r.quorum, r.condition.len())))
}

/// Whether any approval route has `operation` as its trigger.
pub(crate) async fn has_routes(tx: &mut Tx, tenant: &TenantId, operation: &str) -> Result<bool> {
    Ok(store::approvals::route_count(tx, tenant, operation).await? > 0)
}

/// Resolves the values of clauses on `spec`'s reference fields to ids (`strict`: a value that
/// names nothing is an error, as when a route is saved).
pub(crate) async fn canonical_conditions(
    tx: &mut Tx,
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
            tx,
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

async fn standing(tx: &mut Tx, tenant: &TenantId, persona: &str) -> Result<Option<Standing>> {
    let Some((kind, status)) = store::approvals::kind_and_status(tx, tenant, persona).await? else {
        return Ok(None);
    };
    let roles = store::approvals::roles_of(tx, tenant, persona).await?;
    Ok(Some(Standing {
        kind: persona_kind(&kind)?,
        active: status == "active",
        roles,
    }))
}

/// Why `persona` may not decide `request`, or `None` when it may: a human of the tenant, active,
/// holding `approvals:decide` through its roles, admitted by the route, and not the requester.
/// Checked on the stored request at decision time and again at execution time.
pub(crate) async fn ineligibility(
    tx: &mut Tx,
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
    let Some(s) = standing(tx, tenant, persona).await? else {
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
    tx: &mut Tx,
    tenant: &TenantId,
    request: &StoredRequest,
) -> Result<Vec<String>> {
    let humans = store::approvals::active_humans(tx, tenant).await?;
    let mut out = Vec::new();
    for h in humans {
        if ineligibility(tx, tenant, request, &h).await?.is_none() {
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
    pub requester_kind: PersonaKind,
    pub requester_surface: Surface,
    pub requester_scopes: ScopeSet,
    pub approvers: Approvers,
    pub quorum: u32,
    pub state: RequestState,
    pub expires_at: DateTime<Utc>,
    pub break_glass_by: Option<String>,
    /// The input's personal fields, sealed; `input` holds a marker in their place until
    /// [`StoredRequest::restore_personal`].
    pub personal_sealed: Option<Vec<u8>>,
}

impl StoredRequest {
    /// Puts the sealed personal fields back into `input` (for its digest check and execution).
    pub(crate) fn restore_personal(&mut self, keys: Option<&TenantKeys>) -> Result<()> {
        let Some(sealed) = self.personal_sealed.take() else {
            return Ok(());
        };
        let keys = keys.ok_or_else(|| {
            Error::Internal("a request with sealed personal fields, without keys".into())
        })?;
        let plain = keys.open(Place::new(&APPROVAL_PERSONAL, &self.id), &sealed)?;
        let fields: Map<String, Value> = serde_json::from_slice(&plain).map_err(|_| {
            Error::Internal(format!("request {}: sealed fields unreadable", self.id))
        })?;
        if let Some(obj) = self.input.as_object_mut() {
            obj.extend(fields);
        }
        Ok(())
    }
}

/// Splits an input's personal fields off: the input with a marker in their place, and the
/// fields (none when the input has none).
fn split_personal(input: &Value, personal: &[&str]) -> (Value, Map<String, Value>) {
    let mut kept = input.clone();
    let mut fields = Map::new();
    if let Some(obj) = kept.as_object_mut() {
        for f in personal {
            if let Some(v) = obj.get_mut(*f)
                && !v.is_null()
            {
                fields.insert(
                    (*f).to_owned(),
                    std::mem::replace(v, Value::String(PERSONAL_MARK.into())),
                );
            }
        }
    }
    (kept, fields)
}

/// What a stored input holds in place of a personal value (also what the ledger records).
pub const PERSONAL_MARK: &str = "(personal data: sealed in its record, not in the ledger)";

fn request_from(r: RequestRow) -> Result<StoredRequest> {
    let what = format!("request {}", r.id);
    let scopes: Vec<String> = stored_json(&what, "requester_scopes", &r.requester_scopes)?;
    let requester_scopes = scopes
        .iter()
        .map(|s| Scope::parse(s).ok_or_else(|| unknown("scope", s)))
        .collect::<Result<ScopeSet>>()?;
    Ok(StoredRequest {
        input: stored_json(&what, "input", &r.input)?,
        requester_kind: persona_kind(&r.requester_kind)?,
        requester_surface: surface(&r.requester_surface)?,
        requester_scopes,
        approvers: Approvers {
            personas: stored_json(&what, "approver_personas", &r.approver_personas)?,
            roles: stored_json(&what, "approver_roles", &r.approver_roles)?,
        },
        quorum: quorum(&what, r.quorum)?,
        state: RequestState::parse(&r.state)?,
        expires_at: from_millis(r.expires_at),
        id: r.id,
        operation: r.operation,
        digest: r.digest,
        requester: r.requester,
        break_glass_by: r.break_glass_by,
        personal_sealed: r.personal_sealed,
    })
}

fn no_request(id: &str) -> Error {
    Error::NotFound(format!(
        "request_id: no approval request `{id}` in this tenant; see approvals.pending or approvals.mine"
    ))
}

/// Loads a request of the tenant.
pub(crate) async fn load(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<StoredRequest> {
    match store::approvals::request(tx, tenant, id).await? {
        Some(row) => request_from(row),
        None => Err(no_request(id)),
    }
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
    tx: &mut Tx,
    principal: &Principal,
    operation: &str,
    input: &Value,
    facts: &Map<String, Value>,
    summary: &str,
    route: Option<&Route>,
    now: DateTime<Utc>,
    (personal, keys): (&[&str], Option<&TenantKeys>),
) -> Result<(StoredRequest, Pending)> {
    let input = canonical(input);
    let digest = digest(&principal.tenant, operation, &input, &principal.persona);
    // The same call again (a double click, a redelivered command) joins the open request.
    if let Some(id) = store::approvals::pending_with_digest(tx, &principal.tenant, &digest).await? {
        let stored = load(tx, &principal.tenant, &id).await?;
        let view = view(tx, &principal.tenant, &id).await?;
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
    // Personal fields are sealed apart; the digest above covers the whole input.
    let (stored_input, fields) = split_personal(&input, personal);
    let personal_sealed = match (fields.is_empty(), keys) {
        (true, _) => None,
        (false, Some(keys)) => {
            crate::vault::rewrap::check_newest(tx, keys).await?;
            let json = serde_json::to_vec(&fields).map_err(|e| Error::Internal(e.to_string()))?;
            Some(keys.seal(Place::new(&APPROVAL_PERSONAL, id.as_str()), &json))
        }
        (false, None) => {
            return Err(Error::Internal(format!(
                "{operation} has personal input fields but does not declare KEYS"
            )));
        }
    };
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
    store::approvals::insert_request(
        tx,
        &store::approvals::NewRequest {
            tenant: &principal.tenant,
            id: id.as_str(),
            operation,
            input: &stored_input.to_string(),
            facts: &Value::Object(facts.clone()).to_string(),
            summary,
            digest: &digest,
            requester: principal.persona.as_str(),
            requester_kind: principal.kind.as_str(),
            requester_via: &principal.via.to_string(),
            requester_surface: principal.surface.as_str(),
            requester_scopes: &json!(scopes).to_string(),
            route_id: route_id.as_deref(),
            approver_personas: &json!(approvers.personas).to_string(),
            approver_roles: &json!(approvers.roles).to_string(),
            escalation_persona: escalation.as_deref(),
            quorum: i64::from(quorum),
            created_at: to_millis(now),
            sla_at: to_millis(now + sla),
            expires_at: to_millis(expires_at),
            personal_sealed: personal_sealed.as_deref(),
        },
    )
    .await?;
    let stored = load(tx, &principal.tenant, id.as_str()).await?;
    Ok((
        stored,
        Pending {
            request_id: id.to_string(),
            summary: summary.to_owned(),
            digest,
            expires_at: crate::clock::rfc3339(expires_at),
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
    pub decision: Decision,
    /// Their comment.
    pub comment: Option<String>,
    /// Through which surface.
    pub surface: Surface,
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
    pub state: RequestState,
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
    pub review_state: Option<ReviewState>,
    /// The reviewer's comment.
    pub review_comment: Option<String>,
}

/// Loads the view of a request.
pub async fn view(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<RequestView> {
    let Some(r) = store::approvals::view(tx, tenant, id).await? else {
        return Err(no_request(id));
    };
    let ts = crate::clock::ms_to_rfc3339;
    let decisions = store::approvals::decisions(tx, tenant, id)
        .await?
        .into_iter()
        .map(|d| {
            Ok(DecisionView {
                decision: Decision::parse(&d.decision)?,
                surface: surface(&d.surface)?,
                persona_id: d.persona_id,
                persona: d.persona,
                comment: d.comment,
                decided_at: ts(d.decided_at),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let what = format!("request {}", r.id);
    Ok(RequestView {
        approvals: decisions
            .iter()
            .filter(|d| d.decision == Decision::Approve)
            .count() as u32,
        decisions,
        input: stored_json(&what, "input", &r.input)?,
        facts: stored_json(&what, "facts", &r.facts)?,
        result: r
            .result
            .as_deref()
            .map(|t| stored_json(&what, "result", t))
            .transpose()?,
        state: RequestState::parse(&r.state)?,
        quorum: quorum(&what, r.quorum)?,
        review_state: r
            .review_state
            .as_deref()
            .map(ReviewState::parse)
            .transpose()?,
        id: r.id,
        operation: r.operation,
        summary: r.summary,
        digest: r.digest,
        requester_id: r.requester_id,
        requester: r.requester,
        route: r.route,
        created_at: ts(r.created_at),
        sla_at: ts(r.sla_at),
        expires_at: ts(r.expires_at),
        escalated_at: r.escalated_at.map(ts),
        finished_at: r.finished_at.map(ts),
        error: r.error,
        break_glass_by: r.break_glass_by,
        break_glass_reason: r.break_glass_reason,
        review_comment: r.review_comment,
    })
}

/// The approvals that still stand (approvers still eligible now), and why the others lapsed.
pub(crate) async fn standing_approvals(
    tx: &mut Tx,
    tenant: &TenantId,
    request: &StoredRequest,
) -> Result<(Vec<String>, Vec<String>)> {
    let approvers = store::approvals::approvers(tx, tenant, &request.id).await?;
    let mut valid = Vec::new();
    let mut lapsed = Vec::new();
    for a in approvers {
        match ineligibility(tx, tenant, request, &a).await? {
            None => valid.push(a),
            Some(why) => lapsed.push(format!("{a}: {why}")),
        }
    }
    Ok((valid, lapsed))
}

/// Cancels the pending requests a persona raised (it was revoked or deleted). Returns their ids.
pub(crate) async fn cancel_raised_by(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<String>> {
    store::approvals::cancel_raised_by(tx, tenant, persona, reason, to_millis(now)).await
}

/// Withdraws one pending request by its requester. Returns whether it was still pending.
pub(crate) async fn withdraw(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    requester: &PersonaId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<bool> {
    store::approvals::withdraw(tx, tenant, id, requester, reason, to_millis(now)).await
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
    fn the_state_machine_has_exactly_the_edges_of_its_table() {
        use RequestState::*;
        let allowed = [
            (Pending, Approved),
            (Pending, Rejected),
            (Pending, Cancelled),
            (Pending, Expired),
            (Approved, Executing),
            (Executing, Executing),
            (Executing, Succeeded),
            (Executing, Failed),
        ];
        for from in RequestState::ALL {
            for to in RequestState::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        // Nothing leaves a finished request; nothing goes back to pending or approved.
        let finals: Vec<_> = RequestState::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, [Succeeded, Failed, Rejected, Expired, Cancelled]);
        assert!(!RequestState::ALL.iter().any(|s| s.can_become(Pending)));
        assert!(RequestState::OPEN.iter().all(|s| !s.is_final()));
    }

    #[test]
    fn states_reviews_and_decisions_keep_their_stored_and_shown_names() {
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()).unwrap(), s);
            assert_eq!(json!(s), json!(s.as_str()));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(json!(RequestState::Cancelled), json!("cancelled"));
        for r in [ReviewState::Required, ReviewState::Done] {
            assert_eq!(ReviewState::parse(r.as_str()).unwrap(), r);
            assert_eq!(json!(r), json!(r.as_str()));
        }
        for d in [Decision::Approve, Decision::Reject] {
            assert_eq!(Decision::parse(d.as_str()).unwrap(), d);
            assert_eq!(json!(d), json!(d.as_str()));
        }
        for bad in ["", "Pending", "done", "canceled"] {
            assert!(
                matches!(RequestState::parse(bad), Err(Error::Internal(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            ReviewState::parse("skipped"),
            Err(Error::Internal(_))
        ));
        assert!(matches!(
            Decision::parse("abstain"),
            Err(Error::Internal(_))
        ));
        assert!(matches!(quorum("r", 0), Err(Error::Internal(_))));
        assert_eq!(quorum("r", 3).unwrap(), 3);
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
