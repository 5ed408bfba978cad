//! The role-template catalogue: named sets of scopes a persona can be given. ProjexCloud sets it
//! up at onboarding, so it is data of this build, the same for every tenant; assignments are rows.

use crate::error::Result;
use crate::ids::{PersonaId, TenantId};
use crate::scope::{Scope, ScopeSet};
use crate::store::{Tx, personas};
use schemars::JsonSchema;
use serde::Serialize;

/// A role template: a name and the scopes it grants.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleTemplate {
    /// Stable name, e.g. `billing-viewer`.
    pub name: &'static str,
    /// What the role is for.
    pub description: &'static str,
    /// The scopes it grants.
    pub scopes: Vec<Scope>,
}

use Scope as S;

/// Every role template, in display order.
pub fn templates() -> Vec<RoleTemplate> {
    vec![
        RoleTemplate {
            name: "tenant-admin",
            description: "Full administration of the tenant (every scope).",
            scopes: S::ALL.to_vec(),
        },
        RoleTemplate {
            name: "billing-viewer",
            description: "Reads the live meter, invoices, showback and summaries.",
            scopes: vec![S::BILLING_READ],
        },
        RoleTemplate {
            name: "finance-approver",
            description: "Finance: reads and manages billing, decides approval requests.",
            scopes: vec![
                S::BILLING_READ,
                S::BILLING_WRITE,
                S::APPROVALS_READ,
                S::APPROVALS_DECIDE,
            ],
        },
        RoleTemplate {
            name: "security-admin",
            description: "Members, keys, BYOK and audit; decides approvals and may break glass.",
            scopes: vec![
                S::MEMBERS_READ,
                S::MEMBERS_WRITE,
                S::KEYS_READ,
                S::KEYS_WRITE,
                S::AUDIT_READ,
                S::APPROVALS_READ,
                S::APPROVALS_DECIDE,
                S::APPROVALS_BREAK_GLASS,
                S::BYOK_READ,
                S::BYOK_WRITE,
            ],
        },
        RoleTemplate {
            name: "developer",
            description: "Integrations: issues keys, manages webhooks, reads connectors and AI.",
            scopes: vec![
                S::MEMBERS_READ,
                S::KEYS_READ,
                S::KEYS_WRITE,
                S::WEBHOOKS_READ,
                S::WEBHOOKS_WRITE,
                S::CONNECTORS_READ,
                S::AI_READ,
            ],
        },
        RoleTemplate {
            name: "auditor",
            description: "Read-only view of everything, including the audit ledger.",
            scopes: S::ALL
                .iter()
                .copied()
                .filter(|s| s.as_str().ends_with(":read"))
                .collect(),
        },
        RoleTemplate {
            name: "ai-agent",
            description: "A scoped AI agent: reads billing, members, keys, approvals and audit.",
            scopes: vec![
                S::BILLING_READ,
                S::MEMBERS_READ,
                S::KEYS_READ,
                S::APPROVALS_READ,
                S::AUDIT_READ,
            ],
        },
        RoleTemplate {
            name: "metering-service",
            description: "A service that reports usage events (the sdk-meter feed).",
            scopes: vec![S::USAGE_WRITE],
        },
    ]
}

/// Looks a template up by name.
pub fn template(name: &str) -> Option<RoleTemplate> {
    templates().into_iter().find(|t| t.name == name)
}

/// The union of the scopes of the named roles; unknown names grant nothing.
pub fn scopes_of<'a>(roles: impl IntoIterator<Item = &'a str>) -> ScopeSet {
    let all = templates();
    roles
        .into_iter()
        .filter_map(|r| all.iter().find(|t| t.name == r))
        .flat_map(|t| t.scopes.iter().copied())
        .collect()
}

/// The union of the scopes of a persona's current roles, as of `tx`.
pub(crate) async fn role_scopes_on(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
) -> Result<ScopeSet> {
    let roles = personas::roles(tx, tenant, persona).await?;
    Ok(scopes_of(roles.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_roles_exist_and_are_minimal() {
        for name in [
            "tenant-admin",
            "billing-viewer",
            "finance-approver",
            "security-admin",
            "developer",
            "auditor",
            "ai-agent",
        ] {
            assert!(template(name).is_some(), "{name}");
        }
        let viewer = scopes_of(["billing-viewer"]);
        assert!(viewer.contains(&S::BILLING_READ));
        assert!(!viewer.contains(&S::KEYS_WRITE));
        assert!(
            scopes_of(["auditor"])
                .iter()
                .all(|s| s.as_str().ends_with(":read"))
        );
        assert!(!scopes_of(["ai-agent"]).contains(&S::APPROVALS_DECIDE));
    }
}
