//! The operations of the catalogue, one module per guide section, and the lookups they share.
//! Every query here names the caller's tenant; nothing is fetched by id alone.

pub mod approvals;
pub mod audit;
pub mod billing;
pub mod chat;
pub mod keys;
pub mod members;
pub mod roles;
pub mod tenant;
pub mod whoami;

use crate::catalogue::{OpSpec, spec};
use crate::error::{Error, Result};
use crate::ids::{BuId, KeyId, PersonaId, TenantId};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqliteConnection;

/// Every operation; the catalogue sorts them.
pub(crate) fn all() -> Vec<OpSpec> {
    vec![
        spec::<members::CreatePersona>(),
        spec::<members::ListPersonas>(),
        spec::<members::GetPersona>(),
        spec::<members::AssignRoles>(),
        spec::<members::Revoke>(),
        spec::<members::CreateBu>(),
        spec::<members::ListBus>(),
        spec::<members::UpdateBu>(),
        spec::<members::MovePersona>(),
        spec::<roles::ListTemplates>(),
        spec::<keys::Issue>(),
        spec::<keys::List>(),
        spec::<keys::Compliance>(),
        spec::<keys::Rotate>(),
        spec::<keys::Revoke>(),
        spec::<audit::Proof>(),
        spec::<audit::Checkpoint>(),
        spec::<audit::PublishCheckpoint>(),
        spec::<audit::List>(),
        spec::<whoami::WhoAmI>(),
        spec::<approvals::Pending>(),
        spec::<approvals::Mine>(),
        spec::<approvals::Get>(),
        spec::<approvals::Withdraw>(),
        spec::<chat::ChatBind>(),
        spec::<chat::ChatUnbind>(),
        spec::<chat::ChatListOp>(),
        spec::<chat::ChatLinkCode>(),
        spec::<chat::ChatUnlink>(),
        spec::<chat::ChatInstallLink>(),
        spec::<approvals::Decide>(),
        spec::<approvals::BreakGlass>(),
        spec::<approvals::Review>(),
        spec::<approvals::RoutesList>(),
        spec::<approvals::RoutesAdd>(),
        spec::<approvals::RoutesUpdate>(),
        spec::<approvals::RoutesRemove>(),
        spec::<approvals::SettingsOp>(),
        spec::<approvals::UpdateSettings>(),
        spec::<members::DeletePersona>(),
        spec::<tenant::ExportAll>(),
        spec::<billing::Ingest>(),
        spec::<billing::SetPrices>(),
        spec::<billing::SetCap>(),
        spec::<billing::LiveMeter>(),
        spec::<billing::Drill>(),
        spec::<billing::ClosePeriod>(),
        spec::<billing::Invoices>(),
        spec::<billing::InvoicePdf>(),
        spec::<billing::InvoiceCsv>(),
        spec::<billing::ShowbackOp>(),
        spec::<billing::ChartOp>(),
        spec::<billing::SummaryOp>(),
    ]
}

/// The name a reference field resolved to (from a plan's `facts["names"]`), else the
/// reference as given: for sentences people read about a call.
pub(crate) fn named<'a>(
    facts: &'a serde_json::Map<String, serde_json::Value>,
    field: &str,
    given: &'a str,
) -> &'a str {
    facts
        .get("names")
        .and_then(|n| n.get(field))
        .and_then(serde_json::Value::as_str)
        .unwrap_or(given)
}

/// RFC 3339 rendering used in every output.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Renders a stored millisecond timestamp.
pub fn ms_to_rfc3339(ms: i64) -> String {
    rfc3339(crate::clock::from_millis(ms))
}

/// Checks a handle or name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_handle(field: &str, value: &str) -> Result<()> {
    let looks_like_id = [
        TenantId::PREFIX,
        PersonaId::PREFIX,
        KeyId::PREFIX,
        BuId::PREFIX,
    ]
    .iter()
    .any(|p| value.starts_with(p));
    if looks_like_id {
        return Err(Error::bad_input(
            field,
            "names may not start with an id prefix (tn_, ps_, key_, bu_): they would be confused with ids",
        ));
    }
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_input(
            field,
            format!(
                "`{}` is not a valid name: use 1-64 characters of a-z, 0-9, '.', '_' or '-', \
                 starting with a letter or digit (e.g. `ci-bot`)",
                value.chars().take(64).collect::<String>()
            ),
        ))
    }
}

/// A business unit looked up by id or name within a tenant.
pub(crate) async fn resolve_bu(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    field: &str,
    reference: &str,
) -> Result<String> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM business_units WHERE tenant_id = ? AND (id = ? OR name = ?)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .bind(reference)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| {
        Error::NotFound(format!(
            "{field}: no business unit `{reference}` in this tenant; list them with members.list_bus"
        ))
    })
}
