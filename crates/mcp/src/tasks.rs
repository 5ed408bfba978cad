//! Approval requests as tasks of the MCP tasks extension: the task id is the request id, and
//! its state is read from the core on every `tasks/get` (nothing is kept in the MCP process, so
//! a task survives restarts and can be followed from any transport).

use crate::results;
use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload, TaskStatus};
use serde_json::Value;

/// How often a client should poll, in milliseconds: approvals take human time.
pub const POLL_INTERVAL_MS: u64 = 5_000;

fn task(view: &Value, status: TaskStatus, message: String) -> Task {
    let text = |k: &str| {
        view.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let created = text("created_at");
    let updated = view
        .get("finished_at")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
    let mut t = Task::new(text("id"), status, created, updated)
        .with_status_message(message)
        .with_poll_interval_ms(POLL_INTERVAL_MS);
    if let (Some(created), Some(expires)) = (
        chrono::DateTime::parse_from_rfc3339(&text("created_at")).ok(),
        chrono::DateTime::parse_from_rfc3339(&text("expires_at")).ok(),
    ) {
        t = t.with_ttl_ms(ttl_ms(created.to_utc(), expires.to_utc()));
    }
    t
}

/// A task's time to live from `from`: until its request expires, plus a week in which the
/// outcome can still be read (the request itself stays in the audit trail for good).
pub fn ttl_ms(from: chrono::DateTime<chrono::Utc>, expires: chrono::DateTime<chrono::Utc>) -> u64 {
    let until_expiry = (expires - from).num_milliseconds().max(0) as u64;
    until_expiry + 7 * 24 * 3_600_000
}

fn result_object(r: CallToolResult) -> JsonObject {
    match serde_json::to_value(r) {
        Ok(Value::Object(mut m)) => {
            // Embedded in a task, the result keeps the shape of a CallToolResult.
            m.remove("resultType");
            m
        }
        _ => JsonObject::new(),
    }
}

/// The task for the pending request just created.
pub fn created(view: &Value) -> Task {
    let state = view
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("pending");
    task(view, TaskStatus::Working, waiting_message(view, state))
}

fn waiting_message(view: &Value, state: &str) -> String {
    let n = |k: &str| view.get(k).and_then(Value::as_u64).unwrap_or(0);
    match state {
        "approved" | "executing" => "approved; executing".to_owned(),
        _ => format!(
            "waiting for approval by a second person ({} of {} approvals); expires {}",
            n("approvals"),
            n("quorum"),
            view.get("expires_at")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
    }
}

/// The task view of an approval request (the output of `approvals.get`).
pub fn detailed(view: &Value) -> DetailedTask {
    let state = view
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("pending");
    let error = view
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no reason recorded")
        .to_owned();
    let rejected_by = || {
        view.get("decisions")
            .and_then(Value::as_array)
            .and_then(|d| {
                d.iter()
                    .find(|x| x.get("decision").and_then(Value::as_str) == Some("reject"))
            })
            .map(|d| {
                format!(
                    "rejected by {}{}",
                    d.get("persona")
                        .and_then(Value::as_str)
                        .unwrap_or("an approver"),
                    d.get("comment")
                        .and_then(Value::as_str)
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "rejected".to_owned())
    };
    let (payload, message) = match state {
        "succeeded" => {
            let output = view.get("result").cloned().unwrap_or(Value::Null);
            (
                TaskPayload::Completed {
                    result: result_object(results::done(output)),
                },
                "approved and executed".to_owned(),
            )
        }
        "failed" => {
            let msg = format!("approved, but the operation failed: {error}");
            (
                TaskPayload::Completed {
                    result: result_object(results::tool_error("failed", msg.clone())),
                },
                msg,
            )
        }
        "rejected" => {
            let msg = rejected_by();
            (
                TaskPayload::Completed {
                    result: result_object(results::tool_error("rejected", msg.clone())),
                },
                msg,
            )
        }
        "expired" => {
            let msg = "expired undecided; nothing was done".to_owned();
            (
                TaskPayload::Completed {
                    result: result_object(results::tool_error("expired", msg.clone())),
                },
                msg,
            )
        }
        "cancelled" => (TaskPayload::Cancelled, format!("cancelled: {error}")),
        other => (TaskPayload::Working, waiting_message(view, other)),
    };
    let status = payload.status();
    DetailedTask::new(task(view, status, message), payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(state: &str) -> Value {
        json!({
            "id": "apr_1", "state": state, "approvals": 1, "quorum": 2,
            "created_at": "2026-11-28T00:00:00Z", "expires_at": "2026-12-05T00:00:00Z",
            "result": {"archive": "x.tar.gz"}, "error": "persona revoked",
            "decisions": [{"decision": "reject", "persona": "bob", "comment": "not today"}]
        })
    }

    #[test]
    fn states_map_to_task_statuses_with_the_result_inside() {
        assert_eq!(detailed(&view("pending")).status(), TaskStatus::Working);
        assert_eq!(detailed(&view("executing")).status(), TaskStatus::Working);
        let done = detailed(&view("succeeded"));
        assert_eq!(done.status(), TaskStatus::Completed);
        let wire = serde_json::to_value(&done).unwrap();
        assert_eq!(wire["result"]["structuredContent"]["archive"], "x.tar.gz");
        assert_eq!(wire["taskId"], "apr_1");
        let rejected = serde_json::to_value(detailed(&view("rejected"))).unwrap();
        assert_eq!(rejected["result"]["isError"], true);
        assert!(
            rejected["statusMessage"]
                .as_str()
                .unwrap()
                .contains("not today")
        );
        assert_eq!(detailed(&view("cancelled")).status(), TaskStatus::Cancelled);
    }
}
