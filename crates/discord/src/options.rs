//! A command interaction's options back into what was asked: the operation and its input
//! (built by `tenantops-chat` with the same coercion, checks and messages as typed text), help,
//! or a chat-only subcommand.

use serde_json::Value;
use serenity::all::{CommandData, CommandDataOption, CommandDataOptionValue};
use tenantops_chat::args::{self, ArgsError};
use tenantops_chat::groups;
use tenantops_core::OpSpec;

/// What a command asks for.
#[derive(Debug)]
pub enum Asked {
    /// Run an operation with this input.
    Call(&'static OpSpec, Value),
    /// Help for the group, or one of its subcommands.
    Help {
        /// The group.
        group: String,
        /// The subcommand asked about.
        sub: Option<String>,
    },
    /// `/tenant link code:…`.
    Link(String),
    /// `/tenant bind code:…` (Discord only: connects the server from inside it).
    Bind(String),
    /// `/billing post [channel]`.
    PostBilling(Option<String>),
}

/// The subcommand path (`["audit", "list"]`) and the leaf options of a command.
pub fn path(data: &CommandData) -> (Vec<String>, Vec<CommandDataOption>) {
    let mut path = Vec::new();
    let mut options = data.options.clone();
    while let Some(first) = options.first().cloned() {
        match first.value {
            CommandDataOptionValue::SubCommand(inner)
            | CommandDataOptionValue::SubCommandGroup(inner) => {
                path.push(first.name);
                options = inner;
            }
            _ => break,
        }
    }
    (path, options)
}

/// An option's value as a person would type it.
pub fn text(value: &CommandDataOptionValue) -> Option<String> {
    Some(match value {
        CommandDataOptionValue::String(s) => s.clone(),
        CommandDataOptionValue::Integer(n) => n.to_string(),
        CommandDataOptionValue::Number(n) => n.to_string(),
        CommandDataOptionValue::Boolean(b) => b.to_string(),
        CommandDataOptionValue::Channel(id) => id.to_string(),
        CommandDataOptionValue::User(id) => id.to_string(),
        CommandDataOptionValue::Role(id) => id.to_string(),
        CommandDataOptionValue::Mentionable(id) => id.to_string(),
        CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
        _ => return None,
    })
}

/// Reads a command interaction.
pub fn parse(data: &CommandData) -> Result<Asked, ArgsError> {
    let group = data.name.as_str();
    let (path, options) = path(data);
    let sub = path.join(" ");
    let value = |name: &str| {
        options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| text(&o.value))
    };
    match (group, sub.as_str()) {
        (_, "help") => {
            return Ok(Asked::Help {
                group: group.to_owned(),
                sub: value("command"),
            });
        }
        ("tenant", "link") => return Ok(Asked::Link(value("code").unwrap_or_default())),
        ("tenant", "bind") => return Ok(Asked::Bind(value("code").unwrap_or_default())),
        ("billing", "post") => return Ok(Asked::PostBilling(value("channel"))),
        _ => {}
    }
    let Some(op) = groups::resolve(group, &sub) else {
        // An application command registered by an older version: say what exists now.
        return match args::parse(group, &sub) {
            Ok(args::Parsed::Call { op, input }) => Ok(Asked::Call(op, input)),
            Ok(args::Parsed::Help { group, .. }) => Ok(Asked::Help { group, sub: None }),
            Err(e) => Err(e),
        };
    };
    let values: Vec<(String, String)> = options
        .iter()
        .filter_map(|o| text(&o.value).map(|v| (o.name.clone(), v)))
        .collect();
    args::parse_named(op, &values).map(|input| Asked::Call(op, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> CommandData {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn subcommand_options_become_the_input() {
        let d = data(json!({
            "id": "1", "name": "keys", "type": 1,
            "options": [{"type": 1, "name": "issue", "options": [
                {"type": 3, "name": "persona", "value": "ci-bot"},
                {"type": 3, "name": "scopes", "value": "keys:read,billing:read"},
                {"type": 3, "name": "expires_in", "value": "90d"}
            ]}]
        }));
        let Asked::Call(op, input) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(op.name, "keys.issue");
        assert_eq!(input["persona"], "ci-bot");
        assert_eq!(input["scopes"], json!(["keys:read", "billing:read"]));
    }

    #[test]
    fn groups_integers_and_help() {
        let d = data(json!({
            "id": "1", "name": "tenant", "type": 1,
            "options": [{"type": 2, "name": "audit", "options": [
                {"type": 1, "name": "list", "options": [{"type": 4, "name": "limit", "value": 5}]}
            ]}]
        }));
        let Asked::Call(op, input) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(op.name, "audit.list");
        assert_eq!(input["limit"], 5);
        let d = data(json!({
            "id": "1", "name": "keys", "type": 1,
            "options": [{"type": 1, "name": "help", "options": [{"type": 3, "name": "command", "value": "issue"}]}]
        }));
        assert!(matches!(parse(&d).unwrap(), Asked::Help { sub: Some(s), .. } if s == "issue"));
    }

    #[test]
    fn a_wrong_value_names_the_option() {
        let d = data(json!({
            "id": "1", "name": "keys", "type": 1,
            "options": [{"type": 1, "name": "issue", "options": [
                {"type": 3, "name": "persona", "value": "ci-bot"},
                {"type": 3, "name": "scopes", "value": "keys:frobnicate"}
            ]}]
        }));
        let e = parse(&d).unwrap_err();
        assert!(e.to_string().contains("scopes"), "{e}");
    }
}
