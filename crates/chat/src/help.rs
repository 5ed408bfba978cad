//! Help generated from the catalogue: per group (subcommands with summary and scope, plus the
//! chat-only ones) and per operation (usage, summary, help, arguments, scope, risk, and an
//! example converted from the operation's JSON examples into command syntax).

use crate::groups::{self, group_of, subcommand};
use crate::render::{Block, Message, Visibility, list};
use crate::schema::{self, Arg, Kind};
use serde_json::Value;
use tenantops_core::{OpSpec, Risk};

/// Longest argument description in help, in characters.
const MAX_DESCRIPTION: usize = 110;

/// The help a [`crate::Parsed::Help`] asks for: one operation, or the group (an unknown group
/// gets the list of groups).
pub fn reply(group: &str, op: Option<&OpSpec>) -> Message {
    match op {
        Some(op) => operation(op),
        None => self::group(group),
    }
}

fn scope_text(op: &OpSpec) -> String {
    op.scope
        .map_or_else(|| "any member".to_owned(), |s| s.to_string())
}

fn risk_text(risk: Risk) -> &'static str {
    match risk {
        Risk::Read => "read-only",
        Risk::Write => "changes state",
        Risk::Destructive => "destructive — needs a second person's approval",
    }
}

/// Help for one slash command: its subcommands, then how to get details.
pub fn group(name: &str) -> Message {
    let all = groups::groups();
    let Some(g) = all.iter().find(|g| g.name == groups::normalise(name)) else {
        let mut m = Message::new("tenantops commands", Visibility::OnlyRequester);
        m.body.push(list(
            all.iter()
                .map(|g| {
                    let subs: Vec<&str> = g.commands.iter().map(|c| c.sub.as_str()).collect();
                    format!("/{} — {}", g.name, subs.join(", "))
                })
                .collect(),
        ));
        m.body.push(Block::Text("Details: /<command> help".into()));
        return m;
    };
    let mut lines: Vec<String> = g
        .commands
        .iter()
        .map(|c| {
            let approval = match c.op.risk {
                Risk::Destructive if !c.op.summary.contains("approval") => " · needs approval",
                _ => "",
            };
            format!(
                "{} — {} · {}{approval}",
                c.sub,
                c.op.summary,
                scope_text(c.op)
            )
        })
        .collect();
    lines.extend(g.chat_only.iter().map(|c| {
        let usage = c.usage.trim_start_matches(&format!("/{} ", g.name));
        format!("{usage} — {}", c.summary)
    }));
    let others: Vec<String> = all
        .iter()
        .filter(|o| o.name != g.name)
        .map(|o| format!("/{}", o.name))
        .collect();
    let mut m = Message::new(format!("/{}", g.name), Visibility::OnlyRequester);
    // Not `list`: help shows every subcommand.
    m.body.push(Block::List(lines));
    m.body.push(Block::Text(format!(
        "Details: /{} <command> help\nAlso: {}",
        g.name,
        others.join(" ")
    )));
    m
}

/// Help for one operation.
pub fn operation(op: &OpSpec) -> Message {
    let mut m = Message::new(
        format!("/{} {}", group_of(op.name), subcommand(op.name)),
        Visibility::OnlyRequester,
    );
    m.body.push(Block::Text(op.summary.to_owned()));
    m.body.push(Block::Code(usage(op)));
    m.body.push(Block::Text(op.help.to_owned()));
    let args = schema::args(op);
    if !args.is_empty() {
        m.body.push(Block::List(
            args.iter()
                .map(|a| {
                    let required = if a.required { " (required)" } else { "" };
                    format!("{}{required}: {}", a.name, first_sentence(&a.description))
                })
                .collect(),
        ));
    }
    m.body.push(Block::Fields(vec![
        ("Scope".into(), scope_text(op)),
        ("Risk".into(), risk_text(op.risk).into()),
    ]));
    if let Some(ex) = op
        .examples
        .first()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
    {
        m.body
            .push(Block::Text(format!("Example: `{}`", example(op, &ex))));
    }
    m
}

fn first_sentence(description: &str) -> String {
    let flat = description.replace('\n', " ");
    let mut end = flat.len();
    for (i, _) in flat.match_indices(". ") {
        if !flat[..i].ends_with("e.g") && !flat[..i].ends_with("i.e") {
            end = i + 1;
            break;
        }
    }
    let sentence = &flat[..end];
    match sentence.char_indices().nth(MAX_DESCRIPTION) {
        Some((i, _)) => format!("{}…", &sentence[..i]),
        None => sentence.to_owned(),
    }
}

/// `/keys issue persona=<text> scopes=<list> [expires_at=<time>] [expires_in=<duration e.g. 90d>] [name=<text>]`.
pub fn usage(op: &OpSpec) -> String {
    let mut out = format!("/{} {}", group_of(op.name), subcommand(op.name));
    for a in schema::args(op) {
        let arg = format!("{}={}", a.name, placeholder(&a));
        if a.required {
            out.push_str(&format!(" {arg}"));
        } else {
            out.push_str(&format!(" [{arg}]"));
        }
    }
    out
}

fn placeholder(a: &Arg) -> String {
    match &a.kind {
        Kind::Text { format } if format.as_deref() == Some("date-time") => "<time>".into(),
        Kind::Text { .. } => match example_in(&a.description).filter(|e| is_duration(e)) {
            Some(e) => format!("<duration e.g. {e}>"),
            None => "<text>".into(),
        },
        Kind::Choice(values) if values.len() <= 6 => format!("<{}>", values.join("|")),
        Kind::Choice(_) => "<choice>".into(),
        Kind::Integer { .. } | Kind::Number => "<number>".into(),
        Kind::Boolean => "<yes|no>".into(),
        Kind::List(item) if item.is_scalar() => "<list>".into(),
        Kind::List(_) => "<JSON list>".into(),
        Kind::Object => "<JSON>".into(),
        Kind::Any => "<value>".into(),
    }
}

/// The first "e.g. `X`" of a description.
fn example_in(description: &str) -> Option<&str> {
    let rest = &description[description.find("e.g. `")? + 6..];
    Some(&rest[..rest.find('`')?])
}

/// `90d`, `10m`, `24h`.
fn is_duration(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "s" | "m" | "h" | "d" | "w")
}

/// An operation's JSON input written as a command, e.g.
/// `/keys issue persona=ci-bot scopes=keys:read name=ci-deploy expires_in=90d`.
pub fn example(op: &OpSpec, input: &Value) -> String {
    let mut out = format!("/{} {}", group_of(op.name), subcommand(op.name));
    let args = schema::args(op);
    for a in &args {
        if let Some(v) = input.get(&a.name) {
            out.push_str(&format!(" {}={}", a.name, format_value(&a.kind, v)));
        }
    }
    out
}

fn format_value(kind: &Kind, v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::String(s) if s == "null" => quote(s),
        Value::String(s) if *kind == Kind::Any && serde_json::from_str::<Value>(s).is_ok() => {
            quote(&v.to_string())
        }
        Value::String(s) => quote_if_needed(s),
        Value::Array(items) if listable(kind, items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            quote_if_needed(&parts.join(","))
        }
        // JSON is always quoted, the habit that keeps values with spaces whole.
        other => quote(&other.to_string()),
    }
}

/// Whether an array can be written comma-separated and read back the same.
fn listable(kind: &Kind, items: &[Value]) -> bool {
    let Kind::List(item) = kind else { return false };
    item.is_scalar()
        && !items.is_empty()
        && items.iter().all(|i| match i {
            Value::String(s) => {
                !s.is_empty() && !s.contains(',') && s.trim() == s && !s.starts_with('[')
            }
            Value::Number(_) | Value::Bool(_) => true,
            _ => false,
        })
}

const QUOTES: &[char] = &['"', '\'', '“', '”', '‘', '’'];

fn quote_if_needed(s: &str) -> String {
    if s.is_empty() || s.contains(char::is_whitespace) || s.starts_with(QUOTES) {
        quote(s)
    } else {
        s.to_owned()
    }
}

fn quote(s: &str) -> String {
    if !s.contains(['\'', '‘', '’']) {
        format!("'{s}'")
    } else {
        let mut out = String::from('"');
        for c in s.chars() {
            if matches!(c, '\\' | '"' | '“' | '”') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Parsed, parse};
    use tenantops_core::catalogue::{catalogue, find};

    /// Every example of every operation, written as a command, parses back to the same JSON —
    /// named, and with its leading value unnamed where the operation has one.
    #[test]
    fn every_catalogue_example_round_trips_through_command_syntax() {
        let mut checked = 0;
        for op in catalogue() {
            let group = group_of(op.name);
            for ex in op.examples {
                let input: Value = serde_json::from_str(ex).unwrap();
                let command = example(op, &input);
                let mut variants = vec![command.clone()];
                let args = schema::args(op);
                if let Some(p) = schema::positional(&args)
                    && let Some(Value::String(s)) = input.get(&p.name)
                {
                    let named = format!(" {}={}", p.name, format_value(&p.kind, &input[&p.name]));
                    let head = format!("/{group} {}", subcommand(op.name));
                    let rest = command[head.len()..].replacen(&named, "", 1);
                    variants.push(format!("{head} {}{rest}", quote_if_needed(s)));
                }
                for text in variants {
                    let after = text.strip_prefix(&format!("/{group}")).unwrap();
                    match parse(group, after) {
                        Ok(Parsed::Call {
                            op: got,
                            input: parsed,
                        }) => {
                            assert_eq!(got.name, op.name, "{text}");
                            assert_eq!(parsed, input, "{text}");
                        }
                        other => panic!("{text}: {other:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > catalogue().len());
    }

    #[test]
    fn tricky_values_round_trip() {
        let op = find("approvals.decide").unwrap();
        for comment in [
            "it's fine",
            "say \"yes\"",
            "both ' and \" and \\",
            "null",
            "",
            "smart “quotes” and ‘single’",
            "trailing\\",
        ] {
            let input = serde_json::json!({
                "request_id": "apr_0123456789abcdef0123456789abcdef",
                "decision": "approve",
                "comment": comment,
            });
            let text = example(op, &input);
            let Ok(Parsed::Call { input: parsed, .. }) =
                parse("approvals", text.strip_prefix("/approvals").unwrap())
            else {
                panic!("{text}")
            };
            assert_eq!(parsed, input, "{text}");
        }
    }

    #[test]
    fn usage_lines_show_required_optional_and_kinds() {
        assert_eq!(
            usage(find("keys.issue").unwrap()),
            "/keys issue persona=<text> scopes=<list> [expires_at=<time>] \
             [expires_in=<duration e.g. 90d>] [name=<text>]"
        );
        assert_eq!(
            usage(find("approvals.decide").unwrap()),
            "/approvals decide request_id=<text> decision=<approve|reject> [comment=<text>]"
        );
        assert_eq!(usage(find("whoami").unwrap()), "/tenant whoami");
        assert_eq!(
            usage(find("audit.list").unwrap()),
            "/tenant audit list [before=<number>] [limit=<number>] [op=<text>]"
        );
        assert!(usage(find("billing.set_prices").unwrap()).contains("prices=<JSON list>"));
        assert!(usage(find("keys.list").unwrap()).contains("[include_inactive=<yes|no>]"));
    }

    #[test]
    fn operation_help_has_everything_a_person_needs() {
        let text = operation(find("tenant.export_all").unwrap()).plain_text();
        assert!(text.starts_with("/tenant export_all\n"), "{text}");
        assert!(text.contains("Scope: tenant:export"));
        assert!(text.contains("needs a second person's approval"));
        assert!(text.contains("Example: `/tenant export_all`"));
        let text = operation(find("keys.issue").unwrap()).plain_text();
        assert!(text.contains(
            "Example: `/keys issue persona=ci-bot scopes=keys:read expires_in=90d name=ci-deploy`"
        ));
        assert!(text.contains("• persona (required): The persona the key acts as"));
        assert!(text.contains("Risk: changes state"));
        let text = operation(find("whoami").unwrap()).plain_text();
        assert!(text.contains("Scope: any member"));
        for op in catalogue() {
            assert_eq!(operation(op).visibility, Visibility::OnlyRequester);
        }
    }

    #[test]
    fn group_help_lists_subcommands_and_chat_only_ones() {
        let text = group("/tenant").plain_text();
        assert!(text.contains("• audit list — "), "{text}");
        assert!(text.contains("• whoami — "));
        assert!(text.contains("• export_all — ") && text.contains("needs approval"));
        assert!(text.contains("• link CODE — Link your chat account"));
        assert!(text.contains("Also: /billing /members /keys /approvals"));
        let text = group("billing").plain_text();
        assert!(text.contains("• post #channel — Post the summary"));
        assert!(text.contains("· billing:read"));
        let text = group("members").plain_text();
        assert!(text.contains("• roles list_templates — "));
        let text = group("nope").plain_text();
        assert!(text.contains("/keys — "));
        for g in groups::groups() {
            let Block::List(lines) = &group(g.name).body[0] else {
                panic!()
            };
            assert_eq!(lines.len(), g.commands.len() + g.chat_only.len());
        }
        assert_eq!(reply("keys", find("keys.list")).title, "/keys list");
        assert_eq!(reply("keys", None).title, "/keys");
    }

    #[test]
    fn descriptions_are_cut_at_the_first_sentence() {
        assert_eq!(
            first_sentence("Lifetime, e.g. `90d`. Keys without expiry are flagged."),
            "Lifetime, e.g. `90d`."
        );
        assert!(first_sentence(&"x".repeat(300)).ends_with('…'));
        assert!(is_duration("90d") && is_duration("10m") && !is_duration("ci-deploy"));
        assert!(!is_duration("d") && !is_duration("90"));
    }
}
