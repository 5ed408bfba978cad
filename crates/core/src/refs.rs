//! References: how an operation's input names an object of the tenant — a persona, a key, a
//! business unit, a route, a request, an invoice.
//!
//! A caller may name an object by id or by name (a persona by `ps_…` or its handle, a key by
//! `key_…`, its name or even a leaked secret). An operation declares a reference by the *type*
//! of its input field ([`PersonaRef`], [`KeyRef`], …), whose JSON Schema carries
//! `x-tenantops-ref`; the catalogue finds those fields once, and before anything else happens
//! to a call — routing, the two-person gate, its digest, the operation itself, its audit entry
//! — every reference is resolved to its id within the caller's tenant ([`canonicalise`]).
//! So a route on `input.persona in ["ci-bot"]` matches however the caller named ci-bot, and an
//! approved request carries ids: a rename between request and execution cannot redirect it.

use crate::Env;
use crate::apikey::ApiKeySecret;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::{Tx, refs as store};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The JSON Schema keyword a reference field carries.
pub const KEYWORD: &str = "x-tenantops-ref";

/// What a reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// A persona: `ps_…` or its handle.
    Persona,
    /// An API key: `key_…`, its name, or a secret of it.
    Key,
    /// A business unit: `bu_…` or its name.
    Bu,
    /// An approval route: its id or name.
    Route,
    /// An approval request: `apr_…`.
    Request,
    /// An invoice: its id or number (`INV-000007`).
    Invoice,
}

impl RefKind {
    /// The name in the schema keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Persona => "persona",
            RefKind::Key => "key",
            RefKind::Bu => "bu",
            RefKind::Route => "route",
            RefKind::Request => "request",
            RefKind::Invoice => "invoice",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RefKind::Persona,
            RefKind::Key,
            RefKind::Bu,
            RefKind::Route,
            RefKind::Request,
            RefKind::Invoice,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

macro_rules! reference {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The reference as given (after canonicalisation: the id).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A reference to `s` (an id or a name).
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    KEYWORD: $kind.as_str(),
                })
            }
        }
    };
}

reference!(
    /// A persona, by id (`ps_…`) or handle.
    PersonaRef,
    RefKind::Persona
);
reference!(
    /// An API key, by id (`key_…`), name, or one of its secrets.
    KeyRef,
    RefKind::Key
);
reference!(
    /// A business unit, by id (`bu_…`) or name.
    BuRef,
    RefKind::Bu
);
reference!(
    /// An approval route, by id or name.
    RouteRef,
    RefKind::Route
);
reference!(
    /// An approval request, by id (`apr_…`).
    RequestRef,
    RefKind::Request
);
reference!(
    /// An invoice, by id or number (`INV-000007`).
    InvoiceRef,
    RefKind::Invoice
);

/// One step from an input's root to a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object field.
    Field(String),
    /// Every element of an array.
    Each,
}

/// Where one reference sits in an operation's input, and what it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefPath {
    /// From the root.
    pub steps: Vec<Step>,
    /// What it points at.
    pub kind: RefKind,
}

impl RefPath {
    /// The path as a route condition names it when it has no array step: `input.a.b`.
    pub fn condition_path(&self) -> Option<String> {
        let mut out = String::from("input");
        for s in &self.steps {
            match s {
                Step::Field(f) => {
                    out.push('.');
                    out.push_str(f);
                }
                Step::Each => return None,
            }
        }
        Some(out)
    }
}

/// Every reference field of an input schema (its `x-tenantops-ref` keywords), found once when
/// the catalogue is built.
pub fn paths(schema: &Schema) -> Vec<RefPath> {
    let root = schema.as_value();
    let mut out = Vec::new();
    walk(root, root, &mut Vec::new(), &mut out, 0);
    out
}

fn walk(root: &Value, node: &Value, at: &mut Vec<Step>, out: &mut Vec<RefPath>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(obj) = node.as_object() else { return };
    if let Some(kind) = obj
        .get(KEYWORD)
        .and_then(Value::as_str)
        .and_then(RefKind::parse)
    {
        out.push(RefPath {
            steps: at.clone(),
            kind,
        });
        return;
    }
    if let Some(target) = obj.get("$ref").and_then(Value::as_str)
        && let Some(name) = target.strip_prefix("#/$defs/")
        && let Some(def) = root.get("$defs").and_then(|d| d.get(name))
    {
        walk(root, def, at, out, depth + 1);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = obj.get(key).and_then(Value::as_array) {
            for alt in alts {
                walk(root, alt, at, out, depth + 1);
            }
        }
    }
    if let Some(items) = obj.get("items") {
        at.push(Step::Each);
        walk(root, items, at, out, depth + 1);
        at.pop();
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            at.push(Step::Field(name.clone()));
            walk(root, prop, at, out, depth + 1);
            at.pop();
        }
    }
}

/// An object a reference resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// Where it was, e.g. `persona` or `approvers.personas[1]`.
    pub field: String,
    /// The object's id.
    pub id: String,
    /// Its name (handle, key name, invoice number…), for people reading approvals.
    pub name: String,
}

/// Resolves one reference in `tenant`. `field` names it in the error a person reads.
pub(crate) async fn resolve(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    kind: RefKind,
    field: &str,
    reference: &str,
) -> Result<Resolved> {
    let reference = reference.trim();
    let found = match kind {
        RefKind::Persona => store::persona(tx, tenant, reference).await?,
        RefKind::Key if reference.starts_with(crate::apikey::PREFIX) => {
            let secret = ApiKeySecret::parse(reference)
                .map_err(|e| Error::bad_input(field, e.to_string()))?;
            store::key_by_digest(tx, tenant, &secret.digest(env.pepper())[..]).await?
        }
        RefKind::Key => store::key(tx, tenant, reference).await?,
        RefKind::Bu => store::bu(tx, tenant, reference).await?,
        RefKind::Route => store::route(tx, tenant, reference).await?,
        RefKind::Request => store::request(tx, tenant, reference).await?,
        RefKind::Invoice => store::invoice(tx, tenant, reference).await?,
    };
    let Some((id, name)) = found else {
        // A secret pasted as a key reference is never echoed back.
        let shown = if kind == RefKind::Key && reference.starts_with(crate::apikey::PREFIX) {
            "that secret".to_owned()
        } else {
            format!("`{}`", reference.chars().take(80).collect::<String>())
        };
        let (what, list) = match kind {
            RefKind::Persona => ("persona", "members.list_personas"),
            RefKind::Key => ("API key", "keys.list"),
            RefKind::Bu => ("business unit", "members.list_bus"),
            RefKind::Route => ("approval route", "approvals.routes_list"),
            RefKind::Request => ("approval request", "approvals.pending or approvals.mine"),
            RefKind::Invoice => ("invoice", "billing.invoices"),
        };
        return Err(Error::NotFound(format!(
            "{field}: no {what} {shown} in this tenant; list them with {list}"
        )));
    };
    Ok(Resolved {
        field: field.to_owned(),
        id,
        name,
    })
}

/// `input` with every declared reference replaced by its id, and what each resolved to. An
/// input without references is returned borrowed, untouched. A reference that resolves to
/// nothing is an error naming its field.
pub(crate) async fn canonicalise<'v>(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    paths: &[RefPath],
    input: &'v Value,
) -> Result<(Cow<'v, Value>, Vec<Resolved>)> {
    if paths.is_empty() {
        return Ok((Cow::Borrowed(input), Vec::new()));
    }
    let mut out = input.clone();
    let mut resolved = Vec::new();
    for path in paths {
        let mut slots = Vec::new();
        collect(&mut out, &path.steps, String::new(), &mut slots);
        for (field, slot) in slots {
            let Some(text) = slot.as_str() else { continue };
            let r = resolve(tx, env, tenant, path.kind, &field, text).await?;
            *slot = Value::String(r.id.clone());
            resolved.push(r);
        }
    }
    Ok((Cow::Owned(out), resolved))
}

/// The string slots at `steps` under `v`, with their field paths.
fn collect<'a>(
    v: &'a mut Value,
    steps: &[Step],
    at: String,
    out: &mut Vec<(String, &'a mut Value)>,
) {
    match steps.split_first() {
        None => {
            if v.is_string() {
                out.push((if at.is_empty() { "input".into() } else { at }, v));
            }
        }
        Some((Step::Field(f), rest)) => {
            if let Some(child) = v.as_object_mut().and_then(|m| m.get_mut(f)) {
                let at = if at.is_empty() {
                    f.clone()
                } else {
                    format!("{at}.{f}")
                };
                collect(child, rest, at, out);
            }
        }
        Some((Step::Each, rest)) => {
            if let Some(items) = v.as_array_mut() {
                for (i, child) in items.iter_mut().enumerate() {
                    collect(child, rest, format!("{at}[{i}]"), out);
                }
            }
        }
    }
}

/// Resolves the values a route clause compares a reference field with (a name, an id, or an
/// array of them for `in`) to ids, so the route matches the object however it is named. Values
/// that resolve to nothing are kept as given (they match nothing); with `strict` they are an
/// error (when a route is saved).
pub(crate) async fn canonical_clause_value(
    tx: &mut Tx,
    env: &Env,
    tenant: &TenantId,
    kind: RefKind,
    field: &str,
    value: &Value,
    strict: bool,
) -> Result<Value> {
    async fn one(
        tx: &mut Tx,
        env: &Env,
        tenant: &TenantId,
        kind: RefKind,
        field: &str,
        v: &Value,
        strict: bool,
    ) -> Result<Value> {
        let Some(text) = v.as_str() else {
            return Ok(v.clone());
        };
        match resolve(tx, env, tenant, kind, field, text).await {
            Ok(r) => Ok(Value::String(r.id)),
            Err(Error::NotFound(_)) if !strict => Ok(v.clone()),
            Err(e) => Err(e),
        }
    }
    match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(
                    one(
                        tx,
                        env,
                        tenant,
                        kind,
                        &format!("{field}[{i}]"),
                        item,
                        strict,
                    )
                    .await?,
                );
            }
            Ok(Value::Array(out))
        }
        other => one(tx, env, tenant, kind, field, other, strict).await,
    }
}

/// The names references resolved to, as facts shown to approvers: `{"persona": "ci-bot"}`.
pub(crate) fn names(resolved: &[Resolved]) -> Map<String, Value> {
    resolved
        .iter()
        .map(|r| (r.field.clone(), Value::String(r.name.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Approvers {
        personas: Vec<PersonaRef>,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Input {
        /// The persona.
        persona: PersonaRef,
        bu: Option<BuRef>,
        approvers: Approvers,
        name: String,
    }

    #[test]
    fn reference_fields_are_found_through_options_arrays_and_definitions() {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<Input>();
        let mut found = paths(&schema);
        found.sort_by_key(|p| format!("{:?}", p.steps));
        let field = |s: &str| Step::Field(s.into());
        assert_eq!(
            found,
            vec![
                RefPath {
                    steps: vec![field("approvers"), field("personas"), Step::Each],
                    kind: RefKind::Persona
                },
                RefPath {
                    steps: vec![field("bu")],
                    kind: RefKind::Bu
                },
                RefPath {
                    steps: vec![field("persona")],
                    kind: RefKind::Persona
                },
            ]
        );
        assert_eq!(found[2].condition_path().as_deref(), Some("input.persona"));
        assert_eq!(found[0].condition_path(), None);
        // The field's doc comment still describes it.
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains("The persona."), "{text}");
    }

    #[test]
    fn slots_are_collected_with_their_field_paths() {
        let mut v = serde_json::json!({"approvers": {"personas": ["a", "b"]}, "persona": "x"});
        let mut slots = Vec::new();
        collect(
            &mut v,
            &[
                Step::Field("approvers".into()),
                Step::Field("personas".into()),
                Step::Each,
            ],
            String::new(),
            &mut slots,
        );
        let fields: Vec<&str> = slots.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["approvers.personas[0]", "approvers.personas[1]"]);
    }
}
