//! Rendering the core's answers as MCP results: outputs as structured content (plus images and
//! documents as their own content blocks), refusals and mistakes as tool errors a model can read,
//! and only protocol-level failures as JSON-RPC errors.

use crate::tools::PENDING_STATUS;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::{Value, json};
use tenantops_core::{Error, Outcome};

/// The URI of an invoice document resource (`pdf` or `csv`).
pub fn invoice_uri(number: &str, ext: &str) -> String {
    format!("tenantops://billing/invoices/{number}.{ext}")
}

/// A finished operation's output as a tool result.
pub fn done(output: Value) -> CallToolResult {
    let mut extra = Vec::new();
    // A chart: show the image itself, not only its base64 in the JSON.
    if let (Some(png), Some("image/png")) = (
        output.get("png_base64").and_then(Value::as_str),
        output.get("content_type").and_then(Value::as_str),
    ) {
        extra.push(ContentBlock::image(png, "image/png"));
    }
    // A rendered invoice: hand it over as an embedded document with its resource URI.
    if let (Some(number), Some(ct)) = (
        output.get("number").and_then(Value::as_str),
        output.get("content_type").and_then(Value::as_str),
    ) {
        let ext = if ct.starts_with("application/pdf") {
            "pdf"
        } else {
            "csv"
        };
        let uri = invoice_uri(number, ext);
        if let Some(b64) = output.get("base64").and_then(Value::as_str) {
            extra.push(ContentBlock::resource(
                ResourceContents::blob(b64, uri).with_mime_type(ct),
            ));
        } else if let Some(text) = output.get("text").and_then(Value::as_str) {
            extra.push(ContentBlock::resource(
                ResourceContents::text(text, uri).with_mime_type(ct),
            ));
        }
    }
    let mut result = CallToolResult::structured(output);
    result.content.extend(extra);
    result
}

/// What an agent should do after a pending answer.
pub fn pending_next(request_id: &str) -> String {
    format!(
        "A second person must approve this in Slack, Discord, the console or the CLI; you cannot \
         approve it yourself. Poll approvals.get with request_id {request_id} (every 30 s or so) \
         until state is succeeded, failed, rejected, expired or cancelled; on success its `result` \
         is this operation's output."
    )
}

/// The structured form of a pending answer (matches [`crate::tools::pending_schema`]).
pub fn pending_value(
    request_id: &str,
    summary: &str,
    digest: &str,
    expires_at: &str,
    quorum: u32,
) -> Value {
    json!({
        "status": PENDING_STATUS,
        "request_id": request_id,
        "summary": summary,
        "digest": digest,
        "expires_at": expires_at,
        "quorum": quorum,
        "next": pending_next(request_id),
    })
}

/// A tool error a model reads and can act on.
pub fn tool_error(kind: &str, message: String) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    r.structured_content = Some(json!({ "error": kind, "message": message }));
    r
}

/// Maps a core outcome to a tool result (`Done`, `Denied`; pending is the caller's choice of
/// task or structured result, see [`crate::handler`]).
pub fn outcome(outcome: Outcome) -> CallToolResult {
    match outcome {
        Outcome::Done { output } => done(output),
        Outcome::Denied { reason } => tool_error("denied", format!("denied: {reason}")),
        Outcome::PendingApproval {
            request_id,
            summary,
            digest,
            expires_at,
            quorum,
        } => {
            let v = pending_value(&request_id, &summary, &digest, &expires_at, quorum);
            let mut r = CallToolResult::structured(v);
            r.content = vec![ContentBlock::text(format!(
                "Pending approval {request_id}: {summary}. Digest {digest}; expires {expires_at}. {}",
                pending_next(&request_id)
            ))];
            r
        }
    }
}

/// Maps a core error: mistakes the caller can fix become tool errors; the rest are protocol
/// errors with no internals in them.
pub fn error(e: Error) -> Result<CallToolResult, McpError> {
    match e {
        Error::BadInput { .. } => Ok(tool_error("bad_input", e.to_string())),
        Error::Denied { .. } => Ok(tool_error("denied", e.to_string())),
        Error::NotFound(m) => Ok(tool_error("not_found", m)),
        Error::Conflict(m) => Ok(tool_error("conflict", m)),
        Error::UnknownOperation(name) => Err(McpError::invalid_params(
            format!("unknown tool `{name}`; tools/list shows the tools you may call"),
            None,
        )),
        Error::Unauthenticated(reason) => Err(McpError::invalid_request(
            format!("unauthenticated: {reason}"),
            None,
        )),
        other => {
            tracing::error!(error = %other, "MCP tool call failed");
            Err(McpError::internal_error(
                "the server could not complete the call; nothing was changed. See the server log.",
                None,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_carries_its_image_and_an_invoice_its_document() {
        let r =
            done(json!({"png_base64": "iVBOR", "content_type": "image/png", "period": "2026-11"}));
        assert!(r.content.iter().any(|c| c.as_image().is_some()));
        let r = done(
            json!({"number": "INV-000001", "content_type": "application/pdf", "base64": "JVBE"}),
        );
        let doc = r.content.iter().find_map(|c| c.as_resource()).unwrap();
        let v = serde_json::to_value(doc).unwrap();
        assert_eq!(
            v["resource"]["uri"],
            "tenantops://billing/invoices/INV-000001.pdf"
        );
        assert_eq!(r.structured_content.unwrap()["number"], "INV-000001");
    }

    #[test]
    fn mistakes_are_tool_errors_and_failures_hide_internals() {
        let r = error(Error::bad_input("period", "use YYYY-MM")).unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(
            serde_json::to_string(&r.content)
                .unwrap()
                .contains("period")
        );
        let e = error(Error::Internal("disk /var/secret failed".into())).unwrap_err();
        assert!(!e.message.contains("secret"));
    }
}
