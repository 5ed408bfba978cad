//! Resources: the latest signed audit checkpoint, and finalized invoices as PDF and FOCUS CSV
//! (with templates selecting the invoice). Every read is a catalogue operation run as the
//! caller, so scopes, tenant isolation and the audit ledger apply unchanged.

use crate::handler::McpServer;
use crate::results::invoice_uri;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde_json::{Value, json};
use tenantops_core::{Principal, Scope};

/// The latest signed checkpoint of the tenant's audit ledger.
pub const CHECKPOINT_URI: &str = "tenantops://audit/checkpoint";
const INVOICE_PREFIX: &str = "tenantops://billing/invoices/";
/// How many invoices `resources/list` names (newest first); older ones remain readable by URI.
const LISTED_INVOICES: usize = 24;

/// The resource templates `principal` may read.
pub fn templates(principal: &Principal) -> Vec<ResourceTemplate> {
    if !principal.has(Scope::BILLING_READ) {
        return vec![];
    }
    vec![
        ResourceTemplate::new(format!("{INVOICE_PREFIX}{{invoice}}.pdf"), "invoice-pdf")
            .with_title("Invoice (PDF)")
            .with_description(
                "A finalized invoice as PDF; {invoice} is its number, e.g. INV-000007.",
            )
            .with_mime_type("application/pdf"),
        ResourceTemplate::new(format!("{INVOICE_PREFIX}{{invoice}}.csv"), "invoice-csv")
            .with_title("Invoice (FOCUS CSV)")
            .with_description(
                "A finalized invoice as CSV with FinOps FOCUS columns; {invoice} is its number.",
            )
            .with_mime_type("text/csv"),
    ]
}

/// The concrete resources `principal` may read now.
pub async fn list(
    server: &McpServer,
    principal: &Principal,
) -> Result<ListResourcesResult, McpError> {
    let mut out = Vec::new();
    if principal.has(Scope::AUDIT_READ) {
        out.push(
            Resource::new(CHECKPOINT_URI, "audit-checkpoint")
                .with_title("Latest signed audit checkpoint")
                .with_description(
                    "C2SP signed note committing to the whole audit ledger (tree size and Merkle \
                     root, Ed25519); verify it offline with the tenant's verifier key.",
                )
                .with_mime_type("text/plain"),
        );
    }
    if principal.has(Scope::BILLING_READ) {
        let invoices = server
            .read_op(principal, "billing.invoices", json!({}))
            .await?;
        for inv in invoices["invoices"]
            .as_array()
            .into_iter()
            .flatten()
            .take(LISTED_INVOICES)
        {
            let (Some(number), Some(period)) = (inv["number"].as_str(), inv["period"].as_str())
            else {
                continue;
            };
            let total = format!(
                "{} {}",
                inv["total"].as_str().unwrap_or("?"),
                inv["currency"].as_str().unwrap_or("")
            );
            out.push(
                Resource::new(invoice_uri(number, "pdf"), format!("{number}.pdf"))
                    .with_title(format!("Invoice {number} ({period}) — PDF"))
                    .with_description(format!("Period {period}, total {total}"))
                    .with_mime_type("application/pdf"),
            );
            out.push(
                Resource::new(invoice_uri(number, "csv"), format!("{number}.csv"))
                    .with_title(format!("Invoice {number} ({period}) — FOCUS CSV"))
                    .with_description(format!("Period {period}, total {total}"))
                    .with_mime_type("text/csv"),
            );
        }
    }
    Ok(ListResourcesResult::with_all_items(out))
}

fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found(
        format!(
            "no resource `{}`; resources/list and resources/templates/list show what exists",
            uri.chars().take(200).collect::<String>()
        ),
        None,
    )
}

/// Reads one resource as `principal`.
pub async fn read(
    server: &McpServer,
    principal: &Principal,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    if uri == CHECKPOINT_URI {
        let out = server
            .read_op(principal, "audit.checkpoint", json!({}))
            .await?;
        let note = out["checkpoint"].as_str().unwrap_or_default();
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(note, uri).with_mime_type("text/plain"),
        ]));
    }
    let Some(rest) = uri.strip_prefix(INVOICE_PREFIX) else {
        return Err(not_found(uri));
    };
    let (number, op) = if let Some(n) = rest.strip_suffix(".pdf") {
        (n, "billing.invoice_pdf")
    } else if let Some(n) = rest.strip_suffix(".csv") {
        (n, "billing.invoice_csv")
    } else {
        return Err(not_found(uri));
    };
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(not_found(uri));
    }
    let out = server
        .read_op(principal, op, json!({ "invoice": number }))
        .await?;
    let mime = out["content_type"]
        .as_str()
        .unwrap_or("application/octet-stream");
    let contents = match (&out["base64"], &out["text"]) {
        (Value::String(b64), _) => ResourceContents::blob(b64, uri).with_mime_type(mime),
        (_, Value::String(text)) => ResourceContents::text(text, uri).with_mime_type(mime),
        _ => return Err(McpError::internal_error("the invoice rendered empty", None)),
    };
    Ok(ReadResourceResult::new(vec![contents]))
}
