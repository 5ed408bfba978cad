//! Typed identifiers. Each is a short prefix plus a time-ordered UUIDv7, so that an id read in a
//! log or a chat message says what it names, and ids of different kinds cannot be mixed up.

use crate::error::{Error, Result};
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

/// Checks a handle or name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit,
/// and not starting with an id prefix (it would be confused with an id).
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

    #[test]
    fn handles_are_short_lowercase_names_never_ids() {
        for ok in ["ci-bot", "jane", "a", "emea.sales_2"] {
            assert!(validate_handle("h", ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "-x", "Jane", "a b", "ps_bot", "key_x", long.as_str()] {
            assert!(validate_handle("h", bad).is_err(), "{bad}");
        }
    }
}
