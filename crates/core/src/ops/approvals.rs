//! Guide §5 — Approvals: my pending decisions, my open requests, deciding, routes, and the
//! emergency break-glass with its mandatory after-the-fact review.

use super::{ms_to_rfc3339, validate_handle};
use crate::Event;
use crate::approvals::{self, Clause, RequestState, RequestView, ReviewState, Route};
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::members::find_persona;
use crate::notify::Notification;
use crate::operation::{OpCtx, Operation, Risk};
use crate::principal::{PersonaKind, Via};
use crate::refs::{PersonaRef, RequestRef, RouteRef};
use crate::roles;
use crate::scope::Scope;
use crate::store;
use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Decisions are a person's act, on their own proof of identity ([`crate::proof`]): never an
/// agent or a service, never through MCP (an agent's client cannot be the second person), and
/// never on a credential someone else could hold — a key issued by a colleague, a chat link made
/// from a colleague's code, a link younger than the tenant's minimum age, the offline sandbox
/// outside demo tenants.
async fn refuse_unproven(ctx: &mut OpCtx, what: &str) -> Result<()> {
    let principal = ctx.principal.clone();
    let env = ctx.env.clone();
    match crate::proof::decision_refusal(&mut ctx.tx, &env, &principal, what, ctx.now).await? {
        Some(why) => Err(Error::denied(why)),
        None => Ok(()),
    }
}

/// Input naming one request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneRequest {
    /// The approval request id (`apr_…`).
    pub request_id: RequestRef,
}

/// A list of requests.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PendingDecisions {
    /// Requests waiting for your decision, oldest first.
    pub decisions: Vec<RequestView>,
    /// Break-glass executions waiting for your after-the-fact review.
    pub reviews: Vec<RequestView>,
}

/// `approvals.pending`: "My pending decisions".
pub struct Pending;

impl Operation for Pending {
    const NAME: &'static str = "approvals.pending";
    const SUMMARY: &'static str = "My pending decisions: requests waiting for you to decide";
    const HELP: &'static str = "Lists the approval requests you may decide and have not yet decided \
        (you are eligible under the request's route, a human, and not its requester), and break-glass \
        executions awaiting your after-the-fact review.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = super::members::NoInput;
    type Output = PendingDecisions;

    async fn execute(ctx: &mut OpCtx, _: super::members::NoInput) -> Result<PendingDecisions> {
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona.to_string();
        let mut out = PendingDecisions {
            decisions: vec![],
            reviews: vec![],
        };
        let candidates = store::approvals::awaiting_someone(&mut ctx.tx, &tenant).await?;
        for (id, state, review) in candidates {
            let state = RequestState::parse(&state)?;
            let review = review.as_deref().map(ReviewState::parse).transpose()?;
            let req = approvals::load(&mut ctx.tx, &tenant, &id).await?;
            if approvals::ineligibility(&mut ctx.tx, &tenant, &req, &me)
                .await?
                .is_some()
            {
                continue;
            }
            if state == RequestState::Pending {
                let decided = store::approvals::decision_of(&mut ctx.tx, &tenant, &id, &me).await?;
                if decided.is_none() {
                    out.decisions
                        .push(approvals::view(&mut ctx.tx, &tenant, &id).await?);
                }
            } else if review == Some(ReviewState::Required) {
                out.reviews
                    .push(approvals::view(&mut ctx.tx, &tenant, &id).await?);
            }
        }
        Ok(out)
    }
}

/// Input of `approvals.mine`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MineInput {
    /// Also show finished requests (default: only open ones), newest first, at most 50.
    #[serde(default)]
    pub include_closed: bool,
}

/// Output of `approvals.mine`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyRequests {
    /// Your requests, newest first.
    pub requests: Vec<RequestView>,
}

/// `approvals.mine`: "My open requests".
pub struct Mine;

impl Operation for Mine {
    const NAME: &'static str = "approvals.mine";
    const SUMMARY: &'static str = "My open requests: approvals I raised that are still open";
    const HELP: &'static str = "Lists the approval requests you raised that are still pending, approved or \
        executing (or, with include_closed, the recent finished ones too). Needs no scope: whoever can \
        raise a request can follow it.";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#, r#"{"include_closed":true}"#];
    type Input = MineInput;
    type Output = MyRequests;

    async fn execute(ctx: &mut OpCtx, input: MineInput) -> Result<MyRequests> {
        let tenant = ctx.tenant().clone();
        let ids = store::approvals::raised_by(
            &mut ctx.tx,
            &tenant,
            &ctx.principal.persona,
            input.include_closed,
            RequestState::OPEN,
        )
        .await?;
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            requests.push(approvals::view(&mut ctx.tx, &tenant, &id).await?);
        }
        Ok(MyRequests { requests })
    }
}

/// `approvals.get`.
pub struct Get;

impl Operation for Get {
    const NAME: &'static str = "approvals.get";
    const SUMMARY: &'static str = "Show one approval request: state, decisions, result";
    const HELP: &'static str = "Shows an approval request: what will happen, its exact input and digest, \
        who decided what, and — once executed — the operation's result or why it failed. Agents poll this \
        after a pending_approval answer until a human decides. Needs no scope; only the requester, \
        those who may decide it and auditors can see a request.";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"request_id":"apr_0123456789abcdef0123456789abcdef"}"#];
    type Input = OneRequest;
    type Output = RequestView;

    async fn execute(ctx: &mut OpCtx, input: OneRequest) -> Result<RequestView> {
        let tenant = ctx.tenant().clone();
        let req = approvals::load(&mut ctx.tx, &tenant, input.request_id.as_str()).await?;
        // Visible to its requester, to whoever may decide it, and to auditors: a request's input
        // and result (an export's location) are not for every reader of the tenant.
        let me = ctx.principal.persona().to_string();
        let may_see = req.requester == me
            || ctx.principal.has(Scope::AUDIT_READ)
            || approvals::ineligibility(&mut ctx.tx, &tenant, &req, &me)
                .await?
                .is_none();
        if !may_see {
            return Err(Error::denied(
                "only the requester, the people who may decide it and auditors can see this request",
            ));
        }
        approvals::view(&mut ctx.tx, &tenant, input.request_id.as_str()).await
    }
}

/// `approvals.withdraw`: the requester takes back a request nobody has decided yet.
pub struct Withdraw;

impl Operation for Withdraw {
    const NAME: &'static str = "approvals.withdraw";
    const SUMMARY: &'static str = "Withdraw a pending request you raised";
    const HELP: &'static str = "Cancels an approval request you raised while it is still pending (an \
        approved request is already executing and cannot be withdrawn). The approvers are told. \
        Needs no scope: only the requester can withdraw. MCP clients reach it through tasks/cancel.";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"request_id":"apr_0123456789abcdef0123456789abcdef"}"#];
    type Input = OneRequest;
    type Output = RequestView;

    async fn execute(ctx: &mut OpCtx, input: OneRequest) -> Result<RequestView> {
        let tenant = ctx.tenant().clone();
        let req = approvals::load(&mut ctx.tx, &tenant, input.request_id.as_str()).await?;
        let me = ctx.principal.persona().clone();
        if req.requester != me.to_string() {
            return Err(Error::denied(
                "only the person who raised a request can withdraw it",
            ));
        }
        let reason = "withdrawn by the requester";
        if approvals::withdraw(
            &mut ctx.tx,
            &tenant,
            input.request_id.as_str(),
            &me,
            ctx.now,
            reason,
        )
        .await?
        {
            ctx.audit("request_id", input.request_id.as_str());
            ctx.notify(Notification::Cancelled {
                tenant: tenant.clone(),
                request_id: input.request_id.to_string(),
                reason: reason.to_owned(),
            });
            ctx.emit(Event::RequestFinished {
                tenant: tenant.clone(),
                request_id: input.request_id.to_string(),
            });
        } else if req.state != RequestState::Cancelled {
            return Err(Error::Conflict(format!(
                "request {} is {} and can no longer be withdrawn",
                input.request_id, req.state
            )));
        }
        approvals::view(&mut ctx.tx, &tenant, input.request_id.as_str()).await
    }
}

pub use crate::approvals::Decision;

/// Input of `approvals.decide`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideInput {
    /// The request id (`apr_…`).
    pub request_id: RequestRef,
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Your comment; it enters the audit chain. Required to reject.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Output of `approvals.decide` and `approvals.break_glass`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DecideOutput {
    /// The request after the decision (and after execution, when the decision approved it).
    pub request: RequestView,
}

/// A decision that lost a race: the request left `pending` between reading and changing it.
fn no_longer_pending(id: &str) -> Error {
    Error::Conflict(format!(
        "request {id} is no longer pending; decisions are closed"
    ))
}

fn check_comment(field: &str, comment: &Option<String>, required: bool) -> Result<Option<String>> {
    let c = comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if required && c.is_none() {
        return Err(Error::bad_input(field, "a comment is required: say why"));
    }
    if c.is_some_and(|c| c.chars().count() > 2000) {
        return Err(Error::bad_input(
            field,
            "keep the comment under 2000 characters",
        ));
    }
    Ok(c.map(str::to_owned))
}

/// `approvals.decide`.
pub struct Decide;

impl Operation for Decide {
    const NAME: &'static str = "approvals.decide";
    const DECISION: bool = true;
    const SUMMARY: &'static str = "Approve or reject an approval request (with a comment)";
    const HELP: &'static str = "Records your decision on a request. Only a human of this tenant who may \
        decide under the request's route, is active, and is not the requester counts; each person counts \
        once. Rejecting needs a comment and ends the request. When approvals reach the quorum the \
        operation runs at once, exactly once, as the requester.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_DECIDE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"request_id":"apr_0123456789abcdef0123456789abcdef","decision":"approve","comment":"checked with legal"}"#,
        r#"{"request_id":"apr_0123456789abcdef0123456789abcdef","decision":"reject","comment":"not during the freeze"}"#,
    ];
    type Input = DecideInput;
    type Output = DecideOutput;

    async fn execute(ctx: &mut OpCtx, input: DecideInput) -> Result<DecideOutput> {
        refuse_unproven(ctx, "an approval decision").await?;
        let comment = check_comment(
            "comment",
            &input.comment,
            input.decision == Decision::Reject,
        )?;
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona.to_string();
        let req = approvals::load(&mut ctx.tx, &tenant, input.request_id.as_str()).await?;
        if let Some(d) = store::approvals::decision_of(&mut ctx.tx, &tenant, &req.id, &me).await? {
            let d = Decision::parse(&d)?;
            return Err(Error::Conflict(format!(
                "you already decided this request ({d}); each person counts once"
            )));
        }
        if req.state != RequestState::Pending {
            return Err(Error::Conflict(format!(
                "the request is {}; decisions are closed",
                req.state
            )));
        }
        if ctx.now >= req.expires_at {
            return Err(Error::Conflict(format!(
                "the request expired at {}; ask the requester to raise it again",
                super::rfc3339(req.expires_at)
            )));
        }
        if let Some(why) = approvals::ineligibility(&mut ctx.tx, &tenant, &req, &me).await? {
            return Err(Error::denied(format!(
                "you may not decide this request: {why}"
            )));
        }
        let decision = input.decision;
        let now = to_millis(ctx.now);
        store::approvals::insert_decision(
            &mut ctx.tx,
            &store::approvals::NewDecision {
                tenant: &tenant,
                request_id: &req.id,
                persona_id: &me,
                decision,
                comment: comment.as_deref(),
                via: &ctx.principal.via.to_string(),
                surface: ctx.principal.surface.as_str(),
                decided_at: now,
            },
        )
        .await?;
        let state = if decision == Decision::Reject {
            let error = format!("rejected: {}", comment.as_deref().unwrap_or_default());
            if !store::approvals::reject(&mut ctx.tx, &tenant, &req.id, &error, now).await? {
                return Err(no_longer_pending(&req.id));
            }
            ctx.emit(Event::RequestFinished {
                tenant: tenant.clone(),
                request_id: req.id.clone(),
            });
            RequestState::Rejected
        } else {
            let (valid, _) = approvals::standing_approvals(&mut ctx.tx, &tenant, &req).await?;
            if valid.len() as u32 >= req.quorum {
                if !store::approvals::approve(&mut ctx.tx, &tenant, &req.id, now).await? {
                    return Err(no_longer_pending(&req.id));
                }
                ctx.emit(Event::RequestApproved {
                    tenant: tenant.clone(),
                    request_id: req.id.clone(),
                });
                RequestState::Approved
            } else {
                RequestState::Pending
            }
        };
        ctx.audit("request_id", &req.id);
        ctx.audit("decision", decision.as_str());
        ctx.audit("comment", &comment);
        ctx.audit("state", state.as_str());
        // Which credential decided, and for a key who issued it: a decision made with a key
        // someone else minted is visible in the ledger.
        if let Via::ApiKey { key_id } = ctx.principal.via() {
            let issuer =
                store::approvals::key_issuer(&mut ctx.tx, &tenant, key_id.as_str()).await?;
            ctx.audit("key_issued_by", issuer);
        }
        ctx.notify(Notification::Decided {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
            by: me,
            decision: decision.as_str().into(),
            state: state.as_str().into(),
        });
        Ok(DecideOutput {
            request: approvals::view(&mut ctx.tx, &tenant, &req.id).await?,
        })
    }
}

/// Input of `approvals.break_glass`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassInput {
    /// Your own pending destructive request (`apr_…`).
    pub request_id: RequestRef,
    /// Why this cannot wait for a second person (at least 15 characters); every approver of the
    /// route is told, and a second human must review it afterwards.
    pub reason: String,
}

/// `approvals.break_glass`.
pub struct BreakGlass;

impl Operation for BreakGlass {
    const NAME: &'static str = "approvals.break_glass";
    const DECISION: bool = true;
    const SUMMARY: &'static str =
        "Emergency: approve your own destructive request, with a written reason";
    const HELP: &'static str = "Break-glass for emergencies: a human holding approvals:break_glass approves \
        their own pending destructive request with a written reason. It runs at once, every approver of the \
        route is told, and a mandatory after-the-fact review stays in the approvers' pending decisions until \
        a second human records it (approvals.review).";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_BREAK_GLASS);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"request_id":"apr_0123456789abcdef0123456789abcdef","reason":"regulator deadline at 17:00, both approvers on leave"}"#,
    ];
    type Input = BreakGlassInput;
    type Output = DecideOutput;

    async fn execute(ctx: &mut OpCtx, input: BreakGlassInput) -> Result<DecideOutput> {
        refuse_unproven(ctx, "breaking the glass").await?;
        if ctx.principal.kind != PersonaKind::Human {
            return Err(Error::denied("only a human may break the glass"));
        }
        let reason = input.reason.trim();
        if reason.chars().count() < approvals::MIN_BREAK_GLASS_REASON {
            return Err(Error::bad_input(
                "reason",
                format!(
                    "write why this cannot wait for a second person (at least {} characters)",
                    approvals::MIN_BREAK_GLASS_REASON
                ),
            ));
        }
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona.to_string();
        let req = approvals::load(&mut ctx.tx, &tenant, input.request_id.as_str()).await?;
        if req.requester != me {
            return Err(Error::denied(
                "break-glass is only for your own request; decide others' with approvals.decide",
            ));
        }
        if ctx.find(&req.operation).map(|s| s.risk) != Some(Risk::Destructive) {
            return Err(Error::denied(
                "break-glass is only for destructive operations; this request needs its route's approvers",
            ));
        }
        if req.state != RequestState::Pending || ctx.now >= req.expires_at {
            return Err(Error::Conflict(format!(
                "the request is {}; nothing to break glass for",
                req.state
            )));
        }
        let approvers = approvals::eligible_approvers(&mut ctx.tx, &tenant, &req).await?;
        let now = to_millis(ctx.now);
        if !store::approvals::break_glass(&mut ctx.tx, &tenant, &req.id, &me, reason, now).await? {
            return Err(no_longer_pending(&req.id));
        }
        ctx.audit("request_id", &req.id);
        ctx.audit("reason", reason);
        ctx.audit("announced_to", &approvers);
        ctx.notify(Notification::BreakGlass {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
            by: me,
            reason: reason.to_owned(),
            approvers,
        });
        ctx.emit(Event::RequestApproved {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
        });
        Ok(DecideOutput {
            request: approvals::view(&mut ctx.tx, &tenant, &req.id).await?,
        })
    }
}

/// Input of `approvals.review`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// The break-glass request (`apr_…`).
    pub request_id: RequestRef,
    /// Your review; it enters the audit chain.
    pub comment: String,
}

/// `approvals.review`.
pub struct Review;

impl Operation for Review {
    const NAME: &'static str = "approvals.review";
    const DECISION: bool = true;
    const SUMMARY: &'static str = "Record the after-the-fact review of a break-glass execution";
    const HELP: &'static str = "Records the mandatory review of a break-glass execution. Must be a second \
        human — an eligible approver of the request's route, not the person who broke the glass.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_DECIDE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"request_id":"apr_0123456789abcdef0123456789abcdef","comment":"justified; deadline confirmed with legal"}"#,
    ];
    type Input = ReviewInput;
    type Output = RequestView;

    async fn execute(ctx: &mut OpCtx, input: ReviewInput) -> Result<RequestView> {
        refuse_unproven(ctx, "a break-glass review").await?;
        let comment = check_comment("comment", &Some(input.comment.clone()), true)?;
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona.to_string();
        let req = approvals::load(&mut ctx.tx, &tenant, input.request_id.as_str()).await?;
        if let Some(why) = approvals::ineligibility(&mut ctx.tx, &tenant, &req, &me).await? {
            return Err(Error::denied(format!(
                "you may not review this request: {why}"
            )));
        }
        let done = store::approvals::record_review(
            &mut ctx.tx,
            &tenant,
            &req.id,
            &me,
            comment.as_deref(),
            to_millis(ctx.now),
        )
        .await?;
        if !done {
            return Err(Error::Conflict(
                "this request has no review outstanding".into(),
            ));
        }
        ctx.audit("request_id", &req.id);
        ctx.audit("comment", &comment);
        approvals::view(&mut ctx.tx, &tenant, &req.id).await
    }
}

/// Output of `approvals.routes_list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RouteList {
    /// Every route, by name.
    pub routes: Vec<Route>,
    /// Operations that need approval even with no route (destructive).
    pub always_approved: Vec<String>,
}

/// `approvals.routes_list`.
pub struct RoutesList;

impl Operation for RoutesList {
    const NAME: &'static str = "approvals.routes_list";
    const SUMMARY: &'static str = "List approval routes: who must approve what";
    const HELP: &'static str = "Lists the tenant's approval routes (trigger operation and condition, \
        approvers, quorum, SLA, escalation, expiry) and the destructive operations that always need a \
        second person — by default any human holding approvals:decide.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = super::members::NoInput;
    type Output = RouteList;

    async fn execute(ctx: &mut OpCtx, _: super::members::NoInput) -> Result<RouteList> {
        let tenant = ctx.tenant().clone();
        Ok(RouteList {
            routes: approvals::routes(&mut ctx.tx, &tenant).await?,
            always_approved: ctx
                .catalogue()
                .iter()
                .filter(|s| s.risk == Risk::Destructive)
                .map(|s| s.name.to_owned())
                .collect(),
        })
    }
}

/// Who may approve under a route.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproversInput {
    /// Human personas (ids or handles).
    #[serde(default)]
    pub personas: Vec<PersonaRef>,
    /// Roles whose holders may approve (each must grant approvals:decide).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Input of `approvals.routes_add`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteAddInput {
    /// Unique name, e.g. `large-exports`.
    pub name: String,
    /// The trigger: an operation name, e.g. `tenant.export_all`.
    pub operation: String,
    /// Optional clauses that must all hold, over the call's facts or `input.<field>`, e.g.
    /// `[{"path":"estimated_bytes","op":"gt","value":1073741824}]` ("any export over 1 GB").
    #[serde(default)]
    pub condition: Vec<Clause>,
    /// Who may approve.
    pub approvers: ApproversInput,
    /// Distinct approvals needed (default 1).
    #[serde(default = "one")]
    pub quorum: u32,
    /// Time to decide before escalation, e.g. `24h` (default).
    #[serde(default)]
    pub sla: Option<String>,
    /// Time after which an undecided request expires, e.g. `7d` (default).
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Persona paged when the SLA breaches (id or handle).
    #[serde(default)]
    pub escalation_persona: Option<PersonaRef>,
}

fn one() -> u32 {
    1
}

fn duration(
    field: &str,
    text: Option<&str>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration> {
    let Some(text) = text else { return Ok(default) };
    let d = humantime::parse_duration(text)
        .ok()
        .and_then(|d| Duration::from_std(d).ok())
        .ok_or_else(|| {
            Error::bad_input(field, format!("`{text}` is not a duration like 24h or 7d"))
        })?;
    if d < min || d > max {
        return Err(Error::bad_input(
            field,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min.to_std().unwrap_or_default()),
                humantime::format_duration(max.to_std().unwrap_or_default())
            ),
        ));
    }
    Ok(d)
}

/// A validated route, ready to store.
struct RouteSpec {
    name: String,
    operation: String,
    condition: Vec<Clause>,
    personas: Vec<String>,
    roles: Vec<String>,
    quorum: u32,
    sla: Duration,
    expiry: Duration,
    escalation: Option<String>,
}

async fn resolve_approvers(
    ctx: &mut OpCtx,
    a: &ApproversInput,
) -> Result<(Vec<String>, Vec<String>)> {
    let tenant = ctx.tenant().clone();
    if a.personas.is_empty() && a.roles.is_empty() {
        return Err(Error::bad_input(
            "approvers",
            "name at least one approver persona or role",
        ));
    }
    let mut personas = Vec::new();
    for (i, p) in a.personas.iter().enumerate() {
        let field = format!("approvers.personas[{i}]");
        let found = find_persona(&mut ctx.tx, &tenant, &field, p.as_str()).await?;
        if found.kind != PersonaKind::Human {
            return Err(Error::bad_input(
                field,
                format!(
                    "`{}` is a {} persona; only humans approve",
                    found.handle,
                    found.kind.as_str()
                ),
            ));
        }
        if !personas.contains(&found.id.to_string()) {
            personas.push(found.id.to_string());
        }
    }
    for (i, r) in a.roles.iter().enumerate() {
        let field = format!("approvers.roles[{i}]");
        let Some(t) = roles::template(r) else {
            return Err(Error::bad_input(
                field,
                format!("unknown role `{r}`; see roles.list_templates"),
            ));
        };
        if !t.scopes.contains(&Scope::APPROVALS_DECIDE) {
            return Err(Error::bad_input(
                field,
                format!(
                    "role `{r}` does not grant approvals:decide, so its holders could never approve"
                ),
            ));
        }
    }
    Ok((personas, a.roles.clone()))
}

async fn validate_route(ctx: &mut OpCtx, mut input: RouteAddInput) -> Result<RouteSpec> {
    validate_handle("name", &input.name)?;
    let Some(spec) = ctx.find(&input.operation) else {
        return Err(Error::bad_input(
            "operation",
            format!(
                "unknown operation `{}`; run `tenantops ops`",
                input.operation
            ),
        ));
    };
    approvals::routable(spec).map_err(|m| Error::bad_input("operation", m))?;
    // A clause on a reference field stores the ids its values name: the route then matches the
    // object however a caller names it, and a rename cannot escape it.
    let tenant = ctx.tenant().clone();
    let env = ctx.env.clone();
    approvals::canonical_conditions(&mut ctx.tx, &env, &tenant, spec, &mut input.condition, true)
        .await?;
    if !(1..=10).contains(&input.quorum) {
        return Err(Error::bad_input(
            "quorum",
            "quorum is between 1 and 10 approvals",
        ));
    }
    let (personas, roles) = resolve_approvers(ctx, &input.approvers).await?;
    let sla = duration(
        "sla",
        input.sla.as_deref(),
        approvals::DEFAULT_SLA,
        Duration::minutes(1),
        Duration::days(30),
    )?;
    let expiry = duration(
        "expires_in",
        input.expires_in.as_deref(),
        approvals::DEFAULT_EXPIRY.max(sla + Duration::hours(1)),
        Duration::minutes(2),
        Duration::days(90),
    )?;
    if expiry <= sla {
        return Err(Error::bad_input(
            "expires_in",
            "a request must expire after its SLA breaches",
        ));
    }
    let tenant = ctx.tenant().clone();
    let escalation = match &input.escalation_persona {
        Some(p) => {
            let found =
                find_persona(&mut ctx.tx, &tenant, "escalation_persona", p.as_str()).await?;
            if found.kind != PersonaKind::Human {
                return Err(Error::bad_input(
                    "escalation_persona",
                    "escalations page a human",
                ));
            }
            Some(found.id.to_string())
        }
        None => None,
    };
    Ok(RouteSpec {
        name: input.name,
        operation: input.operation,
        condition: input.condition,
        personas,
        roles,
        quorum: input.quorum,
        sla,
        expiry,
        escalation,
    })
}

/// Inserts (`id` new) or replaces the route `id`.
async fn store_route(ctx: &mut OpCtx, id: &str, r: &RouteSpec, insert: bool) -> Result<()> {
    let tenant = ctx.tenant().clone();
    let (condition, personas, roles) = (
        json!(r.condition).to_string(),
        json!(r.personas).to_string(),
        json!(r.roles).to_string(),
    );
    let fields = store::approvals::RouteFields {
        name: &r.name,
        operation: &r.operation,
        condition: &condition,
        approver_personas: &personas,
        approver_roles: &roles,
        quorum: i64::from(r.quorum),
        sla_secs: r.sla.num_seconds(),
        expiry_secs: r.expiry.num_seconds(),
        escalation_persona: r.escalation.as_deref(),
    };
    let saved = if insert {
        store::approvals::insert_route(&mut ctx.tx, &tenant, id, &fields, to_millis(ctx.now))
            .await?
    } else {
        store::approvals::update_route(&mut ctx.tx, &tenant, id, &fields).await?
    };
    match saved {
        store::approvals::Saved::Done => Ok(()),
        store::approvals::Saved::NameTaken => Err(Error::Conflict(format!(
            "a route named `{}` already exists; pick another name",
            r.name
        ))),
    }
}

/// `approvals.routes_add`.
pub struct RoutesAdd;

impl Operation for RoutesAdd {
    const NAME: &'static str = "approvals.routes_add";
    const SUMMARY: &'static str = "Add an approval route (trigger, approvers, quorum, SLA)";
    const HELP: &'static str = "Adds a route: calls of the trigger operation whose condition holds wait for \
        `quorum` approvals from the named personas or holders of the named roles. Breaching the SLA \
        (default 24h) pages the escalation persona once; undecided requests expire (default 7d). Routes \
        can also put non-destructive operations behind approval.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_ADMIN);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"name":"large-exports","operation":"tenant.export_all","condition":[{"path":"estimated_bytes","op":"gt","value":1073741824}],"approvers":{"roles":["security-admin"]},"quorum":2,"sla":"24h","escalation_persona":"jane"}"#,
        r#"{"name":"bu-changes","operation":"members.update_bu","approvers":{"personas":["jane"]}}"#,
    ];
    type Input = RouteAddInput;
    const GUARDED: bool = true;

    /// Routes say who decides what: changing them is changing who decides.
    async fn second_person(ctx: &mut OpCtx, input: &RouteAddInput) -> Result<Option<String>> {
        validate_route(ctx, input.clone()).await?;
        let tenant = ctx.tenant().clone();
        approvals::deciders_guard(&mut ctx.tx, &tenant, ctx.now, "adding an approval route").await
    }
    type Output = Route;

    async fn execute(ctx: &mut OpCtx, input: RouteAddInput) -> Result<Route> {
        let spec = validate_route(ctx, input).await?;
        let id = approvals::new_route_id();
        store_route(ctx, id.as_str(), &spec, true).await?;
        ctx.audit("route", &id);
        let tenant = ctx.tenant().clone();
        approvals::find_route(&mut ctx.tx, &tenant, id.as_str()).await
    }
}

/// Input of `approvals.routes_update`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteUpdateInput {
    /// The route (id or name).
    pub route: RouteRef,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New trigger operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// New condition (replaces the old one; `[]` for always).
    #[serde(default)]
    pub condition: Option<Vec<Clause>>,
    /// New approvers (replaces the old ones).
    #[serde(default)]
    pub approvers: Option<ApproversInput>,
    /// New quorum.
    #[serde(default)]
    pub quorum: Option<u32>,
    /// New SLA, e.g. `4h`.
    #[serde(default)]
    pub sla: Option<String>,
    /// New expiry, e.g. `3d`.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// New escalation persona (id or handle).
    #[serde(default)]
    pub escalation_persona: Option<PersonaRef>,
    /// Remove the escalation persona.
    #[serde(default)]
    pub clear_escalation: bool,
}

/// A route with an update applied, validated; returns the old route and the new one.
async fn merged_route(ctx: &mut OpCtx, input: RouteUpdateInput) -> Result<(Route, RouteSpec)> {
    let tenant = ctx.tenant().clone();
    let old = approvals::find_route(&mut ctx.tx, &tenant, input.route.as_str()).await?;
    let secs = |s: i64| format!("{s}s");
    let escalation = if input.clear_escalation {
        None
    } else {
        input
            .escalation_persona
            .or(old.escalation_persona.clone().map(PersonaRef::new))
    };
    let merged = RouteAddInput {
        name: input.name.unwrap_or(old.name.clone()),
        operation: input.operation.unwrap_or(old.operation.clone()),
        condition: input.condition.unwrap_or(old.condition.clone()),
        approvers: input.approvers.unwrap_or(ApproversInput {
            personas: old
                .approver_personas
                .iter()
                .cloned()
                .map(PersonaRef::new)
                .collect(),
            roles: old.approver_roles.clone(),
        }),
        quorum: input.quorum.unwrap_or(old.quorum),
        sla: Some(input.sla.unwrap_or(secs(old.sla_secs))),
        expires_in: Some(input.expires_in.unwrap_or(secs(old.expiry_secs))),
        escalation_persona: escalation,
    };
    let spec = validate_route(ctx, merged).await?;
    Ok((old, spec))
}

/// `approvals.routes_update`.
pub struct RoutesUpdate;

impl Operation for RoutesUpdate {
    const NAME: &'static str = "approvals.routes_update";
    const SUMMARY: &'static str = "Change an approval route";
    const HELP: &'static str = "Changes a route's name, trigger, condition, approvers, quorum, SLA, expiry \
        or escalation persona. Requests already raised keep the rules they were raised under.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_ADMIN);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"route":"large-exports","quorum":1,"sla":"4h"}"#];
    type Input = RouteUpdateInput;
    const GUARDED: bool = true;

    /// Routes say who decides what: changing them is changing who decides.
    async fn second_person(ctx: &mut OpCtx, input: &RouteUpdateInput) -> Result<Option<String>> {
        merged_route(ctx, input.clone()).await?;
        let tenant = ctx.tenant().clone();
        approvals::deciders_guard(&mut ctx.tx, &tenant, ctx.now, "changing an approval route").await
    }
    type Output = Route;

    async fn execute(ctx: &mut OpCtx, input: RouteUpdateInput) -> Result<Route> {
        let tenant = ctx.tenant().clone();
        let (old, spec) = merged_route(ctx, input).await?;
        store_route(ctx, &old.id, &spec, false).await?;
        ctx.audit("route", &old.id);
        approvals::find_route(&mut ctx.tx, &tenant, &old.id).await
    }
}

/// Input of `approvals.routes_remove`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneRoute {
    /// The route (id or name).
    pub route: RouteRef,
}

/// Output of `approvals.routes_remove`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RouteRemoved {
    /// The removed route.
    pub removed: Route,
    /// When.
    pub removed_at: String,
}

/// `approvals.routes_remove`.
pub struct RoutesRemove;

impl Operation for RoutesRemove {
    const NAME: &'static str = "approvals.routes_remove";
    const SUMMARY: &'static str = "Remove an approval route";
    const HELP: &'static str = "Removes a route. Requests already raised under it keep its rules; \
        destructive operations still need a second person through the default route.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_ADMIN);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{"route":"bu-changes"}"#];
    type Input = OneRoute;
    const GUARDED: bool = true;

    /// Routes say who decides what: changing them is changing who decides.
    async fn second_person(ctx: &mut OpCtx, _: &OneRoute) -> Result<Option<String>> {
        let tenant = ctx.tenant().clone();
        approvals::deciders_guard(&mut ctx.tx, &tenant, ctx.now, "removing an approval route").await
    }
    type Output = RouteRemoved;

    async fn execute(ctx: &mut OpCtx, input: OneRoute) -> Result<RouteRemoved> {
        let tenant = ctx.tenant().clone();
        let route = approvals::find_route(&mut ctx.tx, &tenant, input.route.as_str()).await?;
        store::approvals::delete_route(&mut ctx.tx, &tenant, &route.id).await?;
        ctx.audit("route", &route.id);
        Ok(RouteRemoved {
            removed: route,
            removed_at: ms_to_rfc3339(to_millis(ctx.now)),
        })
    }
}

/// The tenant's approval policy.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Settings {
    /// How long a chat account must have been linked before its decisions count, e.g. `1day`
    /// (`0s` on demo tenants).
    pub chat_link_min_age: String,
    /// The same, in seconds.
    pub chat_link_min_age_secs: i64,
    /// People who may decide approvals (active, or revoked within the last 7 days).
    pub deciders: i64,
    /// Whether changing who decides needs a second person now (at least two deciders).
    pub deciders_guarded: bool,
}

async fn read_settings(ctx: &mut OpCtx) -> Result<Settings> {
    let tenant = ctx.tenant().clone();
    let secs = crate::store::tenants::link_min_age_secs(&mut ctx.tx, &tenant).await?;
    let deciders = approvals::decider_count(&mut ctx.tx, &tenant, ctx.now).await?;
    Ok(Settings {
        chat_link_min_age: humantime::format_duration(std::time::Duration::from_secs(
            secs.max(0) as u64
        ))
        .to_string(),
        chat_link_min_age_secs: secs,
        deciders,
        deciders_guarded: deciders >= 2,
    })
}

/// `approvals.settings`.
pub struct SettingsOp;

impl Operation for SettingsOp {
    const NAME: &'static str = "approvals.settings";
    const SUMMARY: &'static str = "The tenant's approval policy: chat link age, deciders";
    const HELP: &'static str = "Shows how long a newly linked chat account waits before its decisions \
        count, how many people may decide approvals, and whether changing who decides needs a second \
        person.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = super::members::NoInput;
    type Output = Settings;

    async fn execute(ctx: &mut OpCtx, _: super::members::NoInput) -> Result<Settings> {
        read_settings(ctx).await
    }
}

/// Input of `approvals.update_settings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettingsInput {
    /// How long a newly linked chat account waits before its decisions count, e.g. `24h` or
    /// `0s` (at most 30 days). Shortening it needs a second person once two people may decide.
    pub chat_link_min_age: String,
}

/// `approvals.update_settings`.
pub struct UpdateSettings;

impl Operation for UpdateSettings {
    const NAME: &'static str = "approvals.update_settings";
    const SUMMARY: &'static str = "Change the approval policy (minimum chat link age)";
    const HELP: &'static str = "Sets how long a newly linked chat account waits before its approval \
        decisions count (default 24 h): a fresh link is the easiest identity to fake, so it acts at once \
        but decides only later. Lengthening it takes effect at once; shortening it weakens the two-person \
        rule and needs a second person once two people may decide.";
    const SCOPE: Option<Scope> = Some(Scope::APPROVALS_ADMIN);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"chat_link_min_age":"48h"}"#];
    type Input = UpdateSettingsInput;
    type Output = Settings;
    const GUARDED: bool = true;

    async fn second_person(ctx: &mut OpCtx, input: &UpdateSettingsInput) -> Result<Option<String>> {
        let new = link_age(&input.chat_link_min_age)?;
        let tenant = ctx.tenant().clone();
        let old = crate::store::tenants::link_min_age_secs(&mut ctx.tx, &tenant).await?;
        if new >= old {
            return Ok(None);
        }
        approvals::deciders_guard(
            &mut ctx.tx,
            &tenant,
            ctx.now,
            "shortening how long a new chat link waits before it decides",
        )
        .await
    }

    async fn execute(ctx: &mut OpCtx, input: UpdateSettingsInput) -> Result<Settings> {
        let secs = link_age(&input.chat_link_min_age)?;
        let tenant = ctx.tenant().clone();
        crate::store::tenants::set_link_min_age_secs(&mut ctx.tx, &tenant, secs).await?;
        ctx.audit("chat_link_min_age_secs", secs);
        read_settings(ctx).await
    }
}

fn link_age(text: &str) -> Result<i64> {
    let d = duration(
        "chat_link_min_age",
        Some(text),
        Duration::zero(),
        Duration::zero(),
        Duration::days(30),
    )?;
    Ok(d.num_seconds())
}
