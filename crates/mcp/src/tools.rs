//! Catalogue operations as MCP tools: generated once from each operation's schemas, scope and
//! risk, then filtered per caller. No tool is written by hand.

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};
use tenantops_core::{OpSpec, Principal, Risk, approvals, catalogue};

/// The `status` of a structured result that waits for a human (see [`pending_schema`]).
pub const PENDING_STATUS: &str = "pending_approval";

/// Whether a call of `spec` may answer "pending approval" instead of its output: destructive
/// operations always do, and any routable operation does when a tenant routes it.
pub fn may_wait_for_approval(spec: &OpSpec) -> bool {
    spec.risk == Risk::Destructive || approvals::routable(spec).is_ok()
}

/// The JSON Schema of a pending-approval result.
pub fn pending_schema() -> Value {
    json!({
        "type": "object",
        "title": "PendingApproval",
        "description": "The call did not run: it waits for a second person's approval. Follow it \
            with the approvals.get tool (or tasks/get where the client supports tasks) until its \
            state is final; once it succeeds, approvals.get carries the operation's result.",
        "properties": {
            "status": { "const": PENDING_STATUS },
            "request_id": { "type": "string", "description": "The approval request (apr_…)." },
            "summary": { "type": "string", "description": "What will happen once approved." },
            "digest": { "type": "string", "description": "Hex SHA-256 the approvers see; binds the exact input." },
            "expires_at": { "type": "string", "description": "When it expires if undecided (RFC 3339)." },
            "quorum": { "type": "integer", "minimum": 1, "description": "Approvals needed." },
            "next": { "type": "string", "description": "What to do now." }
        },
        "required": ["status", "request_id", "summary", "digest", "expires_at", "quorum"]
    })
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

/// An operation's output schema as MCP wants it: an object schema at the root. Operations that
/// may wait for approval declare both shapes, so a client validating structured results
/// accepts either.
fn output_schema(spec: &OpSpec) -> JsonObject {
    let mut out = object(serde_json::to_value(&spec.output_schema).unwrap_or_default());
    out.remove("$schema");
    if !may_wait_for_approval(spec) {
        return out;
    }
    let defs = out.remove("$defs");
    let title = out.remove("title");
    let mut root = JsonObject::new();
    root.insert("type".into(), json!("object"));
    if let Some(t) = title {
        root.insert("title".into(), t);
    }
    root.insert(
        "anyOf".into(),
        json!([Value::Object(out), pending_schema()]),
    );
    if let Some(defs) = defs {
        root.insert("$defs".into(), defs);
    }
    root
}

fn input_schema(spec: &OpSpec) -> JsonObject {
    let mut input = object(serde_json::to_value(&spec.input_schema).unwrap_or_default());
    input.remove("$schema");
    input
}

/// What a model reads to choose a tool: the help, then the scope and risk in plain words.
fn description(spec: &OpSpec) -> String {
    let mut d = format!("{}\n\n{}", spec.summary, spec.help);
    match spec.scope {
        Some(scope) => d.push_str(&format!("\n\nNeeds scope `{scope}`.")),
        None => d.push_str("\n\nNeeds no scope."),
    }
    if spec.risk == Risk::Destructive {
        d.push_str(
            " Destructive: never runs on the first call. It returns a pending approval request \
             that a second human decides in chat; follow it with approvals.get.",
        );
    } else if may_wait_for_approval(spec) {
        d.push_str(
            " If the tenant routes this operation through approvals, the call returns a pending \
             approval request instead of running; follow it with approvals.get.",
        );
    }
    d
}

fn title(spec: &OpSpec) -> String {
    let mut s = spec
        .summary
        .split(':')
        .next()
        .unwrap_or(spec.summary)
        .trim()
        .to_owned();
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn tool(spec: &OpSpec) -> Tool {
    let mut annotations = ToolAnnotations::with_title(title(spec))
        .read_only(spec.risk == Risk::Read)
        .destructive(spec.risk == Risk::Destructive)
        .open_world(false);
    if spec.risk != Risk::Read {
        annotations = annotations.idempotent(spec.idempotent);
    }
    Tool::new(spec.name, description(spec), Arc::new(input_schema(spec)))
        .with_title(title(spec))
        .with_raw_output_schema(Arc::new(output_schema(spec)))
        .with_annotations(annotations)
}

static TOOLS: LazyLock<Vec<(&'static OpSpec, Tool)>> =
    LazyLock::new(|| catalogue().iter().map(|s| (s, tool(s))).collect());

/// Whether `principal` may call `spec` at all (its scope; the core re-checks on every call).
/// Decisions are never offered over MCP: an agent's client cannot be the second person.
pub fn allowed(principal: &Principal, spec: &OpSpec) -> bool {
    !spec.decision && spec.scope.is_none_or(|s| principal.has(s))
}

/// The tools `principal` may call, in catalogue order.
pub fn visible(principal: &Principal) -> Vec<Tool> {
    TOOLS
        .iter()
        .filter(|(spec, _)| allowed(principal, spec))
        .map(|(_, t)| t.clone())
        .collect()
}

/// Every tool, unfiltered (for documentation and tests).
pub fn all() -> impl Iterator<Item = &'static Tool> {
    TOOLS.iter().map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_a_tool_with_object_schemas_and_honest_hints() {
        assert_eq!(all().count(), catalogue().len());
        for (spec, t) in TOOLS.iter() {
            assert_eq!(t.name, spec.name);
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                spec.name
            );
            let out = t
                .output_schema
                .as_ref()
                .expect("every tool declares its output");
            assert_eq!(out.get("type"), Some(&json!("object")), "{}", spec.name);
            assert!(!out.contains_key("$schema"));
            let a = t.annotations.as_ref().unwrap();
            assert_eq!(
                a.read_only_hint,
                Some(spec.risk == Risk::Read),
                "{}",
                spec.name
            );
            assert_eq!(
                a.destructive_hint,
                Some(spec.risk == Risk::Destructive),
                "{}",
                spec.name
            );
            if spec.risk != Risk::Read {
                assert_eq!(a.idempotent_hint, Some(spec.idempotent), "{}", spec.name);
            }
            assert!(t.description.as_deref().unwrap().contains(spec.help));
            assert!(!t.title.as_deref().unwrap().is_empty());
        }
    }

    #[test]
    fn destructive_tools_declare_the_pending_shape_and_secret_ones_do_not() {
        let export = TOOLS
            .iter()
            .find(|(s, _)| s.name == "tenant.export_all")
            .unwrap();
        let schema = Value::Object((*export.1.output_schema.clone().unwrap()).clone());
        assert_eq!(
            schema["anyOf"][1]["properties"]["status"]["const"],
            PENDING_STATUS
        );
        let issue = TOOLS.iter().find(|(s, _)| s.name == "keys.issue").unwrap();
        assert!(
            !issue
                .1
                .output_schema
                .as_ref()
                .unwrap()
                .contains_key("anyOf")
        );
    }
}
