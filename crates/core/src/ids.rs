//! Typed identifiers. Each is a short prefix plus a time-ordered UUIDv7, so that an id read in a
//! log or a chat message says what it names, and ids of different kinds cannot be mixed up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Wraps a stored value read back from the database (trusted).
            pub fn from_db(s: String) -> Self {
                Self(s)
            }

            /// Parses an id given by a caller; `None` when it lacks the prefix or shape.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: the isolation boundary of every row and every call.
    TenantId,
    "tn_"
);
id_type!(
    /// A persona: the assignable identity (human, service or agent) inside a tenant.
    PersonaId,
    "ps_"
);
id_type!(
    /// An API key's public identifier (never the secret).
    KeyId,
    "key_"
);
id_type!(
    /// A business unit.
    BuId,
    "bu_"
);
id_type!(
    /// An approval request.
    RequestId,
    "apr_"
);
id_type!(
    /// An approval route.
    RouteId,
    "rt_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_kinds_do_not_mix() {
        let p = PersonaId::generate();
        assert!(PersonaId::parse(p.as_str()).is_some());
        assert!(KeyId::parse(p.as_str()).is_none());
        assert!(PersonaId::parse("ps_nothex").is_none());
        assert!(PersonaId::generate() != p);
    }
}
