//! Scopes: the permissions an operation requires and a credential carries. Minimum privilege is
//! the rule, so there is no wildcard and no implied scope: reading billing never needs admin.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;

/// One permission, e.g. `keys:write`. Only the scopes in [`Scope::ALL`] exist.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(&'static str);

macro_rules! scopes {
    ($($(#[$doc:meta])* $konst:ident = $name:literal;)*) => {
        impl Scope {
            $($(#[$doc])* pub const $konst: Scope = Scope($name);)*
            /// Every scope that exists, sorted.
            pub const ALL: &'static [Scope] = &[$(Scope::$konst),*];
        }
    };
}

scopes! {
    /// Read billing: live meter, invoices, showback, summaries.
    BILLING_READ = "billing:read";
    /// Change billing: prices, caps, closing periods.
    BILLING_WRITE = "billing:write";
    /// Report usage events (the metering feed).
    USAGE_WRITE = "usage:write";
    /// List and read personas, roles and business units.
    MEMBERS_READ = "members:read";
    /// Create, change, move and revoke personas and business units.
    MEMBERS_WRITE = "members:write";
    /// List API keys (never their secrets).
    KEYS_READ = "keys:read";
    /// Issue, rotate and revoke API keys.
    KEYS_WRITE = "keys:write";
    /// Read webhook endpoints and deliveries.
    WEBHOOKS_READ = "webhooks:read";
    /// Change webhook endpoints, replay deliveries.
    WEBHOOKS_WRITE = "webhooks:write";
    /// Read approval requests and routes.
    APPROVALS_READ = "approvals:read";
    /// Approve or reject requests (humans only).
    APPROVALS_DECIDE = "approvals:decide";
    /// Add, change and remove approval routes.
    APPROVALS_ADMIN = "approvals:admin";
    /// Approve one's own destructive request in an emergency, with a written reason.
    APPROVALS_BREAK_GLASS = "approvals:break_glass";
    /// Read connectors and their health.
    CONNECTORS_READ = "connectors:read";
    /// Connect and disconnect connectors.
    CONNECTORS_WRITE = "connectors:write";
    /// Read consent receipts and purposes.
    CONSENT_READ = "consent:read";
    /// Record and revoke consent, define purposes, erase subjects.
    CONSENT_WRITE = "consent:write";
    /// Read registered MCP servers.
    AI_READ = "ai:read";
    /// Register MCP servers and grant agents access.
    AI_WRITE = "ai:write";
    /// Read the BYOK configuration.
    BYOK_READ = "byok:read";
    /// Configure, rotate and revoke the tenant's own key.
    BYOK_WRITE = "byok:write";
    /// Read the audit ledger, its checkpoints and inclusion proofs.
    AUDIT_READ = "audit:read";
    /// Export all of the tenant's data.
    TENANT_EXPORT = "tenant:export";
}

impl Scope {
    /// Looks a scope up by name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|s| s.0 == name)
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Scope::parse(&name).ok_or_else(|| {
            let all: Vec<&str> = Scope::ALL.iter().map(|s| s.0).collect();
            serde::de::Error::custom(format!(
                "unknown scope `{name}`; valid scopes are: {}",
                all.join(", ")
            ))
        })
    }
}

impl JsonSchema for Scope {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scope".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all: Vec<&str> = Scope::ALL.iter().map(|s| s.0).collect();
        json_schema!({
            "type": "string",
            "description": "A permission, `area:action`; minimum privilege is the rule.",
            "enum": all,
        })
    }
}

/// A set of scopes.
pub type ScopeSet = BTreeSet<Scope>;

/// Parses a stored JSON array of scope names. Unknown names (from a newer or older build) are
/// dropped rather than honoured: a credential never gains a scope this build does not know.
pub fn scopes_from_json(text: &str) -> ScopeSet {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect()
}

/// Serialises a scope set for storage.
pub fn scopes_to_json(scopes: &ScopeSet) -> String {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    serde_json::Value::from(names).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_reject_unknown_names_with_the_list() {
        assert_eq!(Scope::parse("keys:write"), Some(Scope::KEYS_WRITE));
        let err = serde_json::from_str::<Scope>("\"tenant:admin\"").unwrap_err();
        assert!(err.to_string().contains("unknown scope `tenant:admin`"));
        assert!(err.to_string().contains("billing:read"));
    }

    #[test]
    fn stored_scopes_round_trip_and_ignore_unknown() {
        let set: ScopeSet = [Scope::KEYS_READ, Scope::AUDIT_READ].into();
        assert_eq!(scopes_from_json(&scopes_to_json(&set)), set);
        assert_eq!(
            scopes_from_json(r#"["keys:read","root:everything"]"#),
            [Scope::KEYS_READ].into()
        );
    }
}
