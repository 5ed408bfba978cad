//! Reads an operation's input schema (schemars, draft 2020-12) as a list of arguments with the
//! kind of value each takes: `$ref` into `$defs`, `anyOf`/`oneOf` of constants (enums), and
//! nullable forms (`type: [x, "null"]`, `anyOf` with `{"type": "null"}`).

use serde_json::Value;
use tenantops_core::OpSpec;

/// What an argument accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Free text; `format` as the schema says (`date-time`).
    Text { format: Option<String> },
    /// One of fixed strings.
    Choice(Vec<String>),
    /// A whole number, at least `minimum` when given.
    Integer { minimum: Option<i64> },
    /// Any number.
    Number,
    /// true or false.
    Boolean,
    /// An array of items of a kind.
    List(Box<Kind>),
    /// A JSON object.
    Object,
    /// Anything JSON (no type in the schema).
    Any,
}

impl Kind {
    /// Whether a value of this kind is written as plain text in a command (not JSON).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Kind::List(_) | Kind::Object | Kind::Any)
    }
}

/// One property of an operation's input.
#[derive(Debug, Clone)]
pub struct Arg {
    /// The property name.
    pub name: String,
    /// What it accepts.
    pub kind: Kind,
    /// Whether `null` clears it.
    pub nullable: bool,
    /// Whether it must be given.
    pub required: bool,
    /// The schema's description.
    pub description: String,
}

/// The arguments of an operation: required ones in declaration order, then the others in
/// schema order.
pub fn args(op: &OpSpec) -> Vec<Arg> {
    let root = op.input_schema.as_value();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let arg = |name: &str, schema: &Value| {
        let (kind, nullable) = kind_of(schema, root, 0);
        Arg {
            name: name.to_owned(),
            kind,
            nullable,
            required: required.contains(&name),
            description: schema
                .get("description")
                .or_else(|| deref(schema, root).get("description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    };
    let mut out: Vec<Arg> = required
        .iter()
        .filter_map(|r| props.get(*r).map(|s| arg(r, s)))
        .collect();
    out.extend(
        props
            .iter()
            .filter(|(name, _)| !required.contains(&name.as_str()))
            .map(|(name, s)| arg(name, s)),
    );
    out
}

/// The argument a leading value without a name fills: the first required text argument, or
/// when none is required, the first text argument.
pub(crate) fn positional(args: &[Arg]) -> Option<&Arg> {
    let text = |a: &&Arg| matches!(a.kind, Kind::Text { .. } | Kind::Choice(_));
    if args.iter().any(|a| a.required) {
        args.iter().filter(|a| a.required).find(text)
    } else {
        args.iter().find(text)
    }
}

fn deref<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name))
        .unwrap_or(schema)
}

fn is_null_schema(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null")
}

fn kind_of(schema: &Value, root: &Value, depth: u8) -> (Kind, bool) {
    let s = deref(schema, root);
    if depth > 8 {
        return (Kind::Any, false);
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let nullable = values.iter().any(Value::is_null);
        let strings: Option<Vec<String>> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map(str::to_owned))
            .collect();
        return (strings.map_or(Kind::Any, Kind::Choice), nullable);
    }
    if let Some(c) = s.get("const").and_then(Value::as_str) {
        return (Kind::Choice(vec![c.to_owned()]), false);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = s.get(key).and_then(Value::as_array) {
            let nullable = variants.iter().any(|v| is_null_schema(deref(v, root)));
            let kinds: Vec<(Kind, bool)> = variants
                .iter()
                .filter(|v| !is_null_schema(deref(v, root)))
                .map(|v| kind_of(v, root, depth + 1))
                .collect();
            let inner_null = kinds.iter().any(|(_, n)| *n);
            if !kinds.is_empty() && kinds.iter().all(|(k, _)| matches!(k, Kind::Choice(_))) {
                let all = kinds
                    .into_iter()
                    .flat_map(|(k, _)| match k {
                        Kind::Choice(v) => v,
                        _ => Vec::new(),
                    })
                    .collect();
                return (Kind::Choice(all), nullable || inner_null);
            }
            return match <[_; 1]>::try_from(kinds) {
                Ok([(kind, n)]) => (kind, nullable || n),
                Err(_) => (Kind::Any, nullable),
            };
        }
    }
    let (ty, nullable) = match s.get("type") {
        Some(Value::String(t)) => (Some(t.as_str()), false),
        Some(Value::Array(ts)) => {
            let non_null: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            let nullable = non_null.len() < ts.len();
            ((non_null.len() == 1).then(|| non_null[0]), nullable)
        }
        _ => (None, false),
    };
    let kind = match ty {
        Some("string") => Kind::Text {
            format: s.get("format").and_then(Value::as_str).map(str::to_owned),
        },
        Some("integer") => Kind::Integer {
            minimum: s.get("minimum").and_then(Value::as_i64),
        },
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("array") => Kind::List(Box::new(
            s.get("items")
                .map_or(Kind::Any, |items| kind_of(items, root, depth + 1).0),
        )),
        Some("object") => Kind::Object,
        _ => Kind::Any,
    };
    (kind, nullable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantops_core::catalogue::find;

    fn arg(op: &str, name: &str) -> Arg {
        args(find(op).unwrap())
            .into_iter()
            .find(|a| a.name == name)
            .unwrap()
    }

    #[test]
    fn kinds_follow_refs_enums_and_nullables() {
        assert_eq!(
            arg("approvals.decide", "decision").kind,
            Kind::Choice(vec!["approve".into(), "reject".into()])
        );
        let comment = arg("approvals.decide", "comment");
        assert_eq!(
            (comment.kind, comment.nullable),
            (Kind::Text { format: None }, true)
        );
        let scopes = arg("keys.issue", "scopes");
        assert!(
            matches!(scopes.kind, Kind::List(ref k) if matches!(**k, Kind::Choice(ref v) if v.contains(&"keys:read".to_owned())))
        );
        let kind = arg("members.list_personas", "kind");
        assert!(kind.nullable && matches!(kind.kind, Kind::Choice(_)));
        assert_eq!(arg("approvals.routes_add", "approvers").kind, Kind::Object);
        let approvers = arg("approvals.routes_update", "approvers");
        assert!(approvers.nullable && approvers.kind == Kind::Object);
        assert_eq!(
            arg("audit.proof", "seq").kind,
            Kind::Integer { minimum: Some(0) }
        );
        assert_eq!(
            arg("billing.set_prices", "prices").kind,
            Kind::List(Box::new(Kind::Object))
        );
        assert_eq!(
            arg("keys.issue", "expires_at").kind,
            Kind::Text {
                format: Some("date-time".into())
            }
        );
    }

    #[test]
    fn required_arguments_come_first_and_fill_the_positional_slot() {
        let issue = args(find("keys.issue").unwrap());
        let names: Vec<_> = issue.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(&names[..2], &["persona", "scopes"]);
        assert_eq!(positional(&issue).unwrap().name, "persona");
        let bg = args(find("approvals.break_glass").unwrap());
        assert_eq!(positional(&bg).unwrap().name, "request_id");
        let list = args(find("members.list_personas").unwrap());
        assert_eq!(positional(&list).unwrap().name, "bu");
        assert!(positional(&args(find("audit.proof").unwrap())).is_none());
        assert!(args(find("whoami").unwrap()).is_empty());
    }
}
