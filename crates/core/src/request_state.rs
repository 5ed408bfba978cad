//! The vocabulary of approval requests as stored: where a request stands, the transitions that
//! move it (the state machine's one table), the review of a break-glass, a decision. Below the
//! store, so repositories read and write these types rather than strings.

use crate::error::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An internal error for a value read back from the store outside its closed set.
fn unknown(what: &str, value: &str) -> Error {
    Error::Internal(format!("unknown {what} `{value}` in the store"))
}

/// Where an approval request stands. Stored and shown as its lowercase name; it changes only
/// along the edges of [`Transition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Waiting for decisions.
    Pending,
    /// The quorum is reached (or the glass broken); waiting to execute.
    Approved,
    /// An executor holds it (with a lease) and is running the operation.
    Executing,
    /// The operation ran; its result is stored.
    Succeeded,
    /// The operation could not run, or ran and failed; nothing was committed.
    Failed,
    /// An approver rejected it.
    Rejected,
    /// Nobody decided before its hard limit.
    Expired,
    /// Withdrawn by its requester, or the requester was revoked.
    Cancelled,
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 8] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Executing,
        RequestState::Succeeded,
        RequestState::Failed,
        RequestState::Rejected,
        RequestState::Expired,
        RequestState::Cancelled,
    ];

    /// The states of a request still under way (`approvals.mine` lists them).
    pub const OPEN: [RequestState; 3] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Executing,
    ];

    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Executing => "executing",
            RequestState::Succeeded => "succeeded",
            RequestState::Failed => "failed",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
            RequestState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name; anything else is an internal error.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("approval request state", s))
    }

    /// Whether a request in this state may move to `next`: some [`Transition`] has that edge.
    pub fn can_become(self, next: RequestState) -> bool {
        Transition::ALL.iter().any(|t| t.edge() == (self, next))
    }

    /// Whether the request is over (no transition leaves this state).
    pub fn is_final(self) -> bool {
        !Transition::ALL.iter().any(|t| t.edge().0 == self)
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a request, each event moving it along exactly one edge: the one table of
/// the approval state machine. The store changes a request's state only through these edges,
/// each guarded by its starting state.
///
/// | event      | cause                                                  | from      | to        |
/// |------------|--------------------------------------------------------|-----------|-----------|
/// | `Approve`  | the quorum of standing approvals is reached, or the requester breaks the glass | pending | approved |
/// | `Reject`   | an eligible approver rejects                           | pending   | rejected  |
/// | `Cancel`   | the requester withdraws, or is revoked or deleted      | pending   | cancelled |
/// | `Expire`   | its hard limit passes undecided                        | pending   | expired   |
/// | `Claim`    | an executor takes it                                   | approved  | executing |
/// | `Resume`   | an execution stalled past its lease is taken again     | executing | executing |
/// | `Succeed`  | the operation committed                                | executing | succeeded |
/// | `Fail`     | a re-check refused it, or the operation failed         | executing | failed    |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// `pending` → `approved`.
    Approve,
    /// `pending` → `rejected`.
    Reject,
    /// `pending` → `cancelled`.
    Cancel,
    /// `pending` → `expired`.
    Expire,
    /// `approved` → `executing`.
    Claim,
    /// `executing` → `executing` (a stalled execution's lease ran out).
    Resume,
    /// `executing` → `succeeded`.
    Succeed,
    /// `executing` → `failed`.
    Fail,
}

impl Transition {
    /// Every transition.
    pub const ALL: [Transition; 8] = [
        Transition::Approve,
        Transition::Reject,
        Transition::Cancel,
        Transition::Expire,
        Transition::Claim,
        Transition::Resume,
        Transition::Succeed,
        Transition::Fail,
    ];

    /// The state a request must be in for this event, and the state it moves to.
    pub const fn edge(self) -> (RequestState, RequestState) {
        use RequestState::*;
        match self {
            Transition::Approve => (Pending, Approved),
            Transition::Reject => (Pending, Rejected),
            Transition::Cancel => (Pending, Cancelled),
            Transition::Expire => (Pending, Expired),
            Transition::Claim => (Approved, Executing),
            Transition::Resume => (Executing, Executing),
            Transition::Succeed => (Executing, Succeeded),
            Transition::Fail => (Executing, Failed),
        }
    }
}

/// Where the after-the-fact review of a break-glass execution stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    /// A second human must still review it.
    Required,
    /// Reviewed.
    Done,
}

impl ReviewState {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Required => "required",
            ReviewState::Done => "done",
        }
    }

    /// Parses a stored name; anything else is an internal error.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "required" => Ok(ReviewState::Required),
            "done" => Ok(ReviewState::Done),
            other => Err(unknown("break-glass review state", other)),
        }
    }
}

/// approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve: counts towards the quorum.
    Approve,
    /// Reject: ends the request (a comment is required).
    Reject,
}

impl Decision {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }

    /// Parses a stored name; anything else is an internal error.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            other => Err(unknown("approval decision", other)),
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
