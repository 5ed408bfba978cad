//! Parses the text after a slash command into an operation and its JSON input, checked against
//! the operation's input schema and then its own validator.
//!
//! Syntax: `<sub> [value] [name=value]…`. Values with spaces are quoted, `"…"` or `'…'` (a
//! quote opens only at the start of a value; phone "smart" quotes work too; inside `"…"`, `\`
//! escapes a quote or a backslash). Names may be shortened to any unambiguous prefix
//! (`expires=90d` → `expires_in`; when a prefix fits several names, the one whose type accepts
//! the value wins). A leading value without a name fills the first required text argument
//! (`/members revoke alice`). Lists are comma-separated (`scopes=billing:read,keys:read`) or
//! JSON; objects are JSON (`approvers='{"roles":["security-admin"]}'`); booleans accept
//! true/false, yes/no, on/off; `null` (unquoted) clears a nullable argument.
//!
//! Errors name the argument and say what would be right, but never echo a value that looks
//! like a secret (an API key, a JWT, or any argument named `*secret*`, `*token*`, `*password*`).

use crate::groups::{self, ChatCommand, group_of, subcommand};
use crate::schema::{self, Arg, Kind};
use serde_json::{Map, Value};
use tenantops_core::{Error, OpSpec};
use thiserror::Error;

/// What a slash command asks for.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// Help for a group (`/keys`, `/keys help`) or one operation (`/keys issue help`).
    Help {
        /// The group, without the slash.
        group: String,
        /// The operation asked about, if any.
        op: Option<&'static OpSpec>,
    },
    /// Run an operation with this input.
    Call {
        /// The operation.
        op: &'static OpSpec,
        /// Its input, already accepted by the operation's validator.
        input: Value,
    },
}

/// Why a command could not be parsed; the message is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArgsError {
    /// No such slash command or subcommand; the message lists what exists.
    #[error("{message}")]
    UnknownCommand {
        /// What was typed (`/keys frobnicate`), secrets withheld.
        command: String,
        /// What went wrong and what exists.
        message: String,
    },
    /// One argument is wrong: unknown, ambiguous, repeated, missing, mistyped, or refused by
    /// the operation's validation.
    #[error("{message}")]
    Argument {
        /// The argument (or JSON path, `input` for the whole input).
        name: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The text could not be split into arguments (a quote never closed).
    #[error("{0}")]
    Syntax(String),
}

impl ArgsError {
    fn arg(name: &str, message: String) -> Self {
        ArgsError::Argument {
            name: name.to_owned(),
            message,
        }
    }
}

/// One word of the command text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The text with quotes removed.
    text: String,
    /// Byte offset of the first `=` outside quotes: `name=value`.
    eq: Option<usize>,
    /// Whether any part was quoted.
    quoted: bool,
}

impl Token {
    fn bare(&self) -> Option<&str> {
        (!self.quoted && self.eq.is_none()).then_some(self.text.as_str())
    }
}

/// Parses `text`, typed after `/group` (`group` with or without the slash).
pub fn parse(group: &str, text: &str) -> Result<Parsed, ArgsError> {
    let Some(g) = groups::group(group) else {
        let all: Vec<String> = groups::groups()
            .iter()
            .map(|g| format!("/{}", g.name))
            .collect();
        let command = format!("/{}", groups::normalise(group));
        return Err(ArgsError::UnknownCommand {
            message: format!("unknown command `{command}`; commands: {}", all.join(", ")),
            command,
        });
    };
    let help = |op| {
        Ok(Parsed::Help {
            group: g.name.to_owned(),
            op,
        })
    };
    let tokens = tokenize(text)?;
    let bare = |i: usize| tokens.get(i).and_then(Token::bare);
    let is_help = |i: usize| bare(i).is_some_and(|w| w.eq_ignore_ascii_case("help"));
    let find_op = |from: usize| -> Option<(&'static OpSpec, usize)> {
        if let (Some(a), Some(b)) = (bare(from), bare(from + 1))
            && let Some(op) = groups::resolve(g.name, &format!("{a} {b}"))
        {
            return Some((op, 2));
        }
        groups::resolve(g.name, bare(from)?).map(|op| (op, 1))
    };
    if tokens.is_empty() {
        // A group's most asked-for view answers the bare command: `/billing` is the summary.
        return match groups::default_operation(g.name) {
            Some(op) => Ok(Parsed::Call {
                op,
                input: Value::Object(Default::default()),
            }),
            None => help(None),
        };
    }
    if is_help(0) {
        return help(find_op(1).map(|(op, _)| op));
    }
    if let Some((op, used)) = find_op(0) {
        let rest = &tokens[used..];
        if rest.len() == 1 && is_help(used) {
            return help(Some(op));
        }
        let input = input(op, rest)?;
        return Ok(Parsed::Call { op, input });
    }
    if let Some(c) = bare(0).and_then(|w| groups::chat_command(g.name, w)) {
        return Err(ArgsError::UnknownCommand {
            command: format!("/{} {}", c.group, c.sub),
            message: format!("usage: {}", c.usage),
        });
    }
    let mut subs: Vec<&str> = g.commands.iter().map(|c| c.sub.as_str()).collect();
    subs.extend(g.chat_only.iter().map(|c| c.sub));
    let word = &tokens[0].text;
    let command = match tokens[0].eq {
        Some(_) => format!("/{}", g.name),
        None if is_secret("", word) => format!("/{} …", g.name),
        None => format!("/{} {}", g.name, word.chars().take(40).collect::<String>()),
    };
    let message = match tokens[0].eq {
        Some(_) => format!(
            "say which command first, e.g. /{} {}",
            g.name,
            subs.first().unwrap_or(&"help")
        ),
        None => format!("unknown command `{command}`"),
    };
    Err(ArgsError::UnknownCommand {
        message: format!("{message}; /{} commands: {}", g.name, subs.join(", ")),
        command,
    })
}

/// Recognises a chat-only subcommand (`/tenant link CODE`, `/billing post #channel`), which
/// adapters handle before [`parse`]: the command and the words after it, quotes removed.
/// `help` is left to [`parse`].
pub fn chat_only(
    group: &str,
    text: &str,
) -> Result<Option<(&'static ChatCommand, Vec<String>)>, ArgsError> {
    let tokens = tokenize(text)?;
    let Some(command) = tokens
        .first()
        .and_then(Token::bare)
        .filter(|w| *w != "help")
        .and_then(|w| groups::chat_command(group, w))
    else {
        return Ok(None);
    };
    let words = tokens[1..].iter().map(|t| t.text.clone()).collect();
    Ok(Some((command, words)))
}

/// Builds an operation's input from values already split by name, each as typed (Discord's
/// command options): the same coercion, checks and error messages as typed text.
pub fn parse_named(op: &OpSpec, values: &[(String, String)]) -> Result<Value, ArgsError> {
    let tokens: Vec<Token> = values
        .iter()
        .map(|(name, value)| Token {
            text: format!("{name}={value}"),
            eq: Some(name.len()),
            quoted: false,
        })
        .collect();
    input(op, &tokens)
}

/// Parses the arguments of a known operation (the text after its subcommand).
pub fn parse_args(op: &OpSpec, text: &str) -> Result<Value, ArgsError> {
    input(op, &tokenize(text)?)
}

fn command_of(op: &OpSpec) -> String {
    format!("/{} {}", group_of(op.name), subcommand(op.name))
}

/// `persona (required), scopes (required), name, expires_in`.
fn arg_list(args: &[Arg]) -> String {
    args.iter()
        .map(|a| match a.required {
            true => format!("{} (required)", a.name),
            false => a.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_such_argument(op: &OpSpec, args: &[Arg], what: String) -> ArgsError {
    let cmd = command_of(op);
    let message = if args.is_empty() {
        format!("{what}: {cmd} takes no arguments")
    } else {
        format!("{what} for {cmd}; its arguments are: {}", arg_list(args))
    };
    ArgsError::arg("input", message)
}

fn input(op: &OpSpec, tokens: &[Token]) -> Result<Value, ArgsError> {
    let args = schema::args(op);
    let cmd = command_of(op);
    let mut out = Map::new();
    for (i, token) in tokens.iter().enumerate() {
        let (arg, raw) = match token.eq {
            Some(eq) => {
                let (key, raw) = (&token.text[..eq], &token.text[eq + 1..]);
                (find_arg(op, &args, key, raw, token.quoted)?, raw)
            }
            None => {
                let value = withheld("", &token.text);
                let arg = schema::positional(&args)
                    .filter(|_| i == 0)
                    .ok_or_else(|| {
                        no_such_argument(op, &args, format!("{value} needs a name (name=value)"))
                    })?;
                (arg, token.text.as_str())
            }
        };
        if out.contains_key(&arg.name) {
            return Err(ArgsError::arg(
                &arg.name,
                format!("`{}` is given twice; give it once", arg.name),
            ));
        }
        let value = coerce(&arg.name, &arg.kind, arg.nullable, raw, token.quoted)?;
        out.insert(arg.name.clone(), value);
    }
    if let Some(missing) = args
        .iter()
        .find(|a| a.required && !out.contains_key(&a.name))
    {
        return Err(ArgsError::arg(
            &missing.name,
            format!(
                "`{}` is required; usage: {}",
                missing.name,
                crate::help::usage(op)
            ),
        ));
    }
    let input = Value::Object(out);
    let size = input.to_string().len();
    if size > op.max_input_bytes {
        return Err(ArgsError::arg(
            "input",
            format!(
                "the input is too large ({size} bytes; {cmd} takes at most {})",
                op.max_input_bytes
            ),
        ));
    }
    (op.validate)(input.clone()).map_err(|e| refused(&cmd, tokens, e))?;
    Ok(input)
}

/// Turns the operation's own validation error into a message, secrets withheld.
fn refused(cmd: &str, tokens: &[Token], e: Error) -> ArgsError {
    let (name, mut message) = match e {
        Error::BadInput { field, message } => {
            let text = format!("`{field}` is not valid for {cmd}: {message}");
            (field, text)
        }
        other => ("input".to_owned(), format!("{cmd}: {other}")),
    };
    for t in tokens {
        let (key, raw) = match t.eq {
            Some(eq) => (&t.text[..eq], &t.text[eq + 1..]),
            None => ("", t.text.as_str()),
        };
        if !raw.is_empty() && is_secret(key, raw) {
            message = message.replace(raw, "the value");
        }
    }
    let message = tenantops_core::redact::text(&message).into_owned();
    ArgsError::Argument { name, message }
}

fn find_arg<'a>(
    op: &OpSpec,
    args: &'a [Arg],
    key: &str,
    raw: &str,
    quoted: bool,
) -> Result<&'a Arg, ArgsError> {
    let key_n = key.to_lowercase().replace('-', "_");
    if let Some(a) = args.iter().find(|a| a.name == key_n) {
        return Ok(a);
    }
    let candidates: Vec<&Arg> = args
        .iter()
        .filter(|a| !key_n.is_empty() && a.name.starts_with(&key_n))
        .collect();
    let fitting: Vec<&Arg> = candidates
        .iter()
        .copied()
        .filter(|a| coerce(&a.name, &a.kind, a.nullable, raw, quoted).is_ok())
        .collect();
    match (candidates.as_slice(), fitting.as_slice()) {
        ([only], _) | (_, [only]) => Ok(only),
        ([], _) => Err(no_such_argument(
            op,
            args,
            format!("unknown argument {}", withheld("", key)),
        )),
        (many, _) => {
            let names: Vec<&str> = many.iter().map(|a| a.name.as_str()).collect();
            Err(ArgsError::arg(
                key,
                format!(
                    "`{key}` could be {}; write the full name",
                    names.join(" or ")
                ),
            ))
        }
    }
}

/// Whether a value must not be echoed: credentials by shape, or arguments named like secrets.
pub(crate) fn is_secret(name: &str, value: &str) -> bool {
    let name = name.to_lowercase();
    ["secret", "token", "password"]
        .iter()
        .any(|s| name.contains(s))
        || value.contains("tops_")
        || value.starts_with("eyJ")
}

/// `` `value` `` for messages, or "the value" when it may be a secret; long values are cut.
fn withheld(name: &str, value: &str) -> String {
    if is_secret(name, value) {
        return "the value".to_owned();
    }
    let mut shown: String = value.chars().take(40).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// Converts one raw value to the JSON its argument's kind takes.
fn coerce(
    name: &str,
    kind: &Kind,
    nullable: bool,
    raw: &str,
    quoted: bool,
) -> Result<Value, ArgsError> {
    if nullable && !quoted && raw == "null" {
        return Ok(Value::Null);
    }
    let got = withheld(name, raw);
    let fail = |what: String| Err(ArgsError::arg(name, format!("`{name}` {what}")));
    match kind {
        Kind::Text { format } => {
            if format.as_deref() == Some("date-time") && !looks_like_datetime(raw) {
                return fail(format!(
                    "must be an RFC 3339 time such as 2026-12-31T23:59:00Z, got {got}"
                ));
            }
            Ok(Value::String(raw.to_owned()))
        }
        Kind::Choice(values) => match values.iter().find(|v| v.eq_ignore_ascii_case(raw)) {
            Some(v) => Ok(Value::String(v.clone())),
            None => fail(format!("must be one of: {}; got {got}", values.join(", "))),
        },
        Kind::Integer { minimum } => match raw.parse::<i64>() {
            Ok(n) if minimum.is_some_and(|m| n < m) => fail(format!(
                "must be a whole number of at least {}, got {got}",
                minimum.unwrap_or_default()
            )),
            Ok(n) => Ok(n.into()),
            Err(_) => match raw.parse::<u64>() {
                Ok(n) => Ok(n.into()),
                Err(_) => fail(format!("must be a whole number, got {got}")),
            },
        },
        Kind::Number => {
            if let Ok(n) = raw.parse::<i64>() {
                return Ok(n.into());
            }
            match raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Ok(Value::Number(n)),
                None => fail(format!("must be a number, got {got}")),
            }
        }
        Kind::Boolean => match raw.to_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "off" => Ok(Value::Bool(false)),
            _ => fail(format!(
                "must be yes or no (or true/false, on/off), got {got}"
            )),
        },
        Kind::List(item) if raw.trim_start().starts_with('[') => {
            let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) else {
                return fail(format!(
                    "must be a list: comma-separated, or JSON in quotes such as {name}='[…]'"
                ));
            };
            if let Kind::Choice(values) = &**item
                && let Some(bad) = items
                    .iter()
                    .find(|i| !i.as_str().is_some_and(|s| values.iter().any(|v| v == s)))
            {
                let bad = withheld(name, &bad.to_string());
                return fail(format!(
                    "items must each be one of: {}; got {bad}",
                    values.join(", ")
                ));
            }
            Ok(Value::Array(items))
        }
        Kind::List(item) if item.is_scalar() => raw
            .split(',')
            .map(str::trim)
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                coerce(name, item, false, piece, quoted).map_err(|e| match e {
                    ArgsError::Argument { message, .. } => ArgsError::arg(
                        name,
                        message.replacen(&format!("`{name}`"), &format!("each of `{name}`"), 1),
                    ),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Kind::List(_) => fail(format!(
            "takes a JSON list in quotes, e.g. {name}='[{{\"…\":\"…\"}}]'"
        )),
        Kind::Object => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => fail(format!(
                "takes a JSON object in quotes, e.g. {name}='{{\"…\":\"…\"}}'"
            )),
        },
        Kind::Any => Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()))),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` followed by a fraction and an offset: enough to catch a duration or a
/// date typed where a time is wanted; the operation checks the rest.
fn looks_like_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// The closing quotes for an opening one; `None` if `c` opens no quote.
fn closers(c: char) -> Option<&'static [char]> {
    match c {
        '"' | '“' | '”' => Some(&['"', '”', '“']),
        '\'' | '‘' | '’' => Some(&['\'', '’', '‘']),
        _ => None,
    }
}

/// Splits command text into words, honouring quotes at the start of a word or a value.
fn tokenize(text: &str) -> Result<Vec<Token>, ArgsError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut token = Token {
            text: String::new(),
            eq: None,
            quoted: false,
        };
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            let at_value_start =
                token.text.is_empty() || token.eq.is_some_and(|eq| eq + 1 == token.text.len());
            match closers(c) {
                Some(close) if at_value_start => {
                    token.quoted = true;
                    let double = close[0] == '"';
                    loop {
                        match chars.next() {
                            None => {
                                let what = match token.eq {
                                    Some(eq) => format!("the value of `{}`", &token.text[..eq]),
                                    None => "a value".to_owned(),
                                };
                                return Err(ArgsError::Syntax(format!(
                                    "{what} opens a quote that never closes; close it, e.g. comment=\"two words\""
                                )));
                            }
                            Some(q) if close.contains(&q) => break,
                            Some('\\') if double => {
                                match chars.next_if(|n| *n == '\\' || close.contains(n)) {
                                    Some(n) => token.text.push(n),
                                    None => token.text.push('\\'),
                                }
                            }
                            Some(other) => token.text.push(other),
                        }
                    }
                }
                _ => {
                    if c == '=' && token.eq.is_none() && !token.quoted {
                        token.eq = Some(token.text.len());
                    }
                    token.text.push(c);
                }
            }
        }
        tokens.push(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(group: &str, text: &str) -> (String, Value) {
        match parse(group, text).unwrap_or_else(|e| panic!("{text}: {e}")) {
            Parsed::Call { op, input } => (op.name.to_owned(), input),
            other => panic!("{text}: {other:?}"),
        }
    }

    fn err(group: &str, text: &str) -> String {
        parse(group, text).unwrap_err().to_string()
    }

    #[test]
    fn tokens_honour_quotes_escapes_and_smart_quotes() {
        let t = tokenize(r#"a comment="not during the freeze" x='{"k": "v w"}' "p=q" e=“smart one” r="a\"b\\c\d""#).unwrap();
        let texts: Vec<_> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "a",
                "comment=not during the freeze",
                r#"x={"k": "v w"}"#,
                "p=q",
                "e=smart one",
                r#"r=a"b\c\d"#
            ]
        );
        assert_eq!(t[1].eq, Some(7));
        assert_eq!(t[3].eq, None, "a quoted = is part of the value");
        assert!(!t[0].quoted && t[1].quoted);
        let t = tokenize("comment=don't").unwrap();
        assert_eq!(
            t[0].text, "comment=don't",
            "a mid-word apostrophe is literal"
        );
        let e = tokenize("comment='oops").unwrap_err().to_string();
        assert!(e.contains("`comment`") && e.contains("never closes"), "{e}");
    }

    #[test]
    fn named_positional_prefixed_and_typed_arguments() {
        assert_eq!(
            call("/members", "revoke alice"),
            ("members.revoke".into(), json!({"persona": "alice"}))
        );
        assert_eq!(
            call(
                "keys",
                "issue ci-bot scopes=billing:read,keys:read expires=90d"
            ),
            (
                "keys.issue".into(),
                json!({"persona":"ci-bot","scopes":["billing:read","keys:read"],"expires_in":"90d"})
            )
        );
        assert_eq!(
            call(
                "keys",
                "issue persona=x scopes=keys:read expires_at=2026-12-31T00:00:00Z"
            )
            .1["expires_at"],
            "2026-12-31T00:00:00Z"
        );
        let (_, v) = call(
            "approvals",
            "decide apr_0123456789abcdef0123456789abcdef decision=Reject comment='not during the freeze'",
        );
        assert_eq!(v["decision"], "reject");
        assert_eq!(v["comment"], "not during the freeze");
        assert_eq!(
            call("keys", "compliance expiring_within_days=30").1,
            json!({"expiring_within_days": 30})
        );
        assert_eq!(
            call("keys", "list include_inactive=yes").1,
            json!({"include_inactive": true})
        );
        assert_eq!(
            call("billing", "set_cap api.requests cap=null").1,
            json!({"sku":"api.requests","cap":null})
        );
        assert_eq!(
            call("billing", "set_cap api.requests cap=\"1000000\"").1["cap"],
            "1000000",
            "a decimal stays a string"
        );
        let (_, v) = call(
            "billing",
            r#"set_prices prices='[{"sku":"a","unit_price":"1","unit":"u","description":"d"}]'"#,
        );
        assert_eq!(v["prices"][0]["unit_price"], "1");
        let (_, v) = call(
            "approvals",
            r#"routes_add big operation=tenant.export_all approvers='{"roles":["security-admin"]}'"#,
        );
        assert_eq!(v["approvers"]["roles"][0], "security-admin");
        assert_eq!(
            call("members", "assign_roles ci-bot roles=").1["roles"],
            json!([])
        );
    }

    #[test]
    fn moved_and_help_forms() {
        assert_eq!(call("tenant", "audit list limit=5").0, "audit.list");
        assert_eq!(
            call("tenant", "audit.list op=keys.issue").1,
            json!({"op":"keys.issue"})
        );
        assert_eq!(call("tenant", "whoami").0, "whoami");
        assert_eq!(
            call("members", "roles list_templates").0,
            "roles.list_templates"
        );
        for (text, want) in [
            ("", None),
            ("help", None),
            ("help issue", Some("keys.issue")),
            ("issue help", Some("keys.issue")),
        ] {
            match parse("keys", text).unwrap() {
                Parsed::Help { group, op } => {
                    assert_eq!(group, "keys");
                    assert_eq!(op.map(|o| o.name), want, "{text}");
                }
                other => panic!("{other:?}"),
            }
        }
        let (command, words) = chat_only("/tenant", "link  'ABC 123'").unwrap().unwrap();
        assert_eq!((command.sub, words), ("link", vec!["ABC 123".to_owned()]));
        let (command, _) = chat_only("billing", "post #finance").unwrap().unwrap();
        assert_eq!(command.usage, "/billing post #channel");
        assert!(chat_only("keys", "link x").unwrap().is_none());
        assert!(chat_only("tenant", "whoami").unwrap().is_none());
        assert!(chat_only("tenant", "help").unwrap().is_none());
        assert_eq!(err("tenant", "link"), "usage: /tenant link CODE");
    }

    #[test]
    fn errors_name_the_argument_and_what_is_right() {
        assert_eq!(
            err("keys", "issue persona=x scopes=keys:read foo=1"),
            "unknown argument `foo` for /keys issue; its arguments are: persona (required), \
             scopes (required), expires_at, expires_in, name"
        );
        assert_eq!(
            err("tenant", "audit proof seq=abc"),
            "`seq` must be a whole number, got `abc`"
        );
        assert!(err("tenant", "audit proof seq=-1").contains("at least 0"));
        assert_eq!(
            err(
                "approvals",
                "decide apr_0123456789abcdef0123456789abcdef decision=maybe"
            ),
            "`decision` must be one of: approve, reject; got `maybe`"
        );
        let e = err("keys", "issue x scopes=keys:read,keys:fly");
        assert!(
            e.starts_with("each of `scopes` must be one of: billing:read"),
            "{e}"
        );
        let e = err("keys", "issue scopes=keys:read");
        assert!(
            e.starts_with("`persona` is required; usage: /keys issue persona="),
            "{e}"
        );
        assert!(err("keys", "frobnicate").contains("unknown command `/keys frobnicate`"));
        assert!(err("keys", "frobnicate").contains("issue"));
        assert!(err("nope", "x").contains("/billing"));
        assert!(err("keys", "persona=x").starts_with("say which command first"));
        assert!(err("keys", "list a b").contains("`b` needs a name"));
        assert!(err("tenant", "whoami x").contains("takes no arguments"));
        assert!(err("keys", "issue x persona=y scopes=keys:read").contains("given twice"));
        assert!(err("keys", "list include_inactive=maybe").contains("yes or no"));
        assert!(err("keys", "issue x scopes=keys:read expires_at=90d").contains("RFC 3339"));
        let e = err("approvals", "routes_add r operation=x approvers=roles");
        assert!(e.contains("JSON object"), "{e}");
        let e = err("keys", "issue x scopes=keys:read e=null");
        assert!(e.contains("could be expires_at or expires_in"), "{e}");
        // The operation's own validation: a persona kind the schema lists, but a role missing.
        let e = err("members", "create_persona jane kind=human");
        assert!(e.contains("`roles` is required"), "{e}");
    }

    #[test]
    fn validator_errors_are_reported_by_field() {
        // JSON the schema reader passes whole; the operation's own parser rejects it.
        let e = err(
            "approvals",
            r#"routes_add r operation=x approvers='{"roles":"admin"}'"#,
        );
        assert!(
            e.starts_with("`approvers.roles` is not valid for /approvals routes_add"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_never_echoed() {
        let key = "tops_0123456789abcdefghijABCDEFGHIJ01abcdef";
        for text in [
            format!("revoke key={key} extra={key}"),
            format!("revoke {key} {key}"),
            key.to_owned(),
            format!("list include_inactive={key}"),
            format!("issue x scopes={key}"),
        ] {
            let e = err("keys", &text);
            assert!(!e.contains("tops_0123"), "{text}: {e}");
        }
        let e = err("keys", "list token_thing=abc");
        assert!(e.contains("unknown argument"), "{e}");
        assert_eq!(withheld("api_token", "abc"), "the value");
        assert_eq!(withheld("x", "eyJhbGciOi.x.y"), "the value");
        assert_eq!(withheld("x", "fine"), "`fine`");
    }
}
