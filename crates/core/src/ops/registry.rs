//! The catalogue: every operation, registered once. Surfaces read it (through
//! `tenantops_core::catalogue`); the engine finds the operation a call names in it; operations
//! themselves reach it only through their context ([`crate::operation::OpCtx::find`]), so no
//! operation module depends on the list of all of them.

use super::{approvals, audit, billing, byok, chat, keys, members, roles, tenant, whoami};
use crate::operation::{OpSpec, spec};
use std::sync::LazyLock;

/// Every operation; the catalogue sorts them.
fn all() -> Vec<OpSpec> {
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
        spec::<byok::Status>(),
        spec::<byok::Configure>(),
        spec::<byok::Verify>(),
        spec::<byok::Rotate>(),
        spec::<byok::Revoke>(),
        spec::<byok::Disable>(),
    ]
}

static CATALOGUE: LazyLock<Vec<OpSpec>> = LazyLock::new(|| {
    let mut all = all();
    all.sort_by_key(|s| s.name);
    all
});

/// Every operation, sorted by name.
pub fn catalogue() -> &'static [OpSpec] {
    &CATALOGUE
}

/// Looks an operation up by name.
pub fn find(name: &str) -> Option<&'static OpSpec> {
    catalogue().iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::*;
    use serde_json::Value;

    #[test]
    fn destructive_operations_never_return_secrets() {
        for op in catalogue() {
            assert!(
                !(op.risk == Risk::Destructive && op.secret_output),
                "{}: a destructive operation's result is stored until collected",
                op.name
            );
        }
    }

    #[test]
    fn names_are_unique_dotted_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for op in catalogue() {
            assert!(seen.insert(op.name), "duplicate {}", op.name);
            assert!(
                op.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{}",
                op.name
            );
            assert!(!op.summary.is_empty() && !op.help.is_empty(), "{}", op.name);
            assert!(!op.examples.is_empty(), "{} needs an example", op.name);
        }
    }

    #[test]
    fn every_example_parses_against_its_operation() {
        for op in catalogue() {
            for ex in op.examples {
                let value: Value = serde_json::from_str(ex)
                    .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", op.name));
                let schema = serde_json::to_value(&op.input_schema).unwrap();
                assert_eq!(
                    schema["type"], "object",
                    "{}: input must be an object",
                    op.name
                );
                if let Err(e) = (op.validate)(value) {
                    panic!("{}: example {ex} does not parse: {e}", op.name);
                }
            }
        }
    }

    #[test]
    fn the_contracted_operation_names_exist() {
        for name in [
            "members.create_persona",
            "members.list_personas",
            "members.assign_roles",
            "members.revoke",
            "members.create_bu",
            "members.move_persona",
            "roles.list_templates",
            "keys.issue",
            "keys.list",
            "keys.rotate",
            "keys.revoke",
            "audit.proof",
            "whoami",
            "approvals.pending",
            "approvals.mine",
            "approvals.get",
            "approvals.decide",
            "approvals.routes_list",
            "approvals.routes_add",
            "approvals.routes_remove",
            "approvals.break_glass",
            "approvals.review",
            "tenant.export_all",
            "members.delete_persona",
            "byok.status",
            "byok.configure",
            "byok.verify",
            "byok.rotate",
            "byok.revoke",
            "byok.disable",
        ] {
            assert!(find(name).is_some(), "{name} missing");
        }
    }
}
