//! Application commands derived from the catalogue: one command per chat group (`/billing`,
//! `/members`, `/keys`, `/approvals`, `/tenant`, and any later group), one subcommand per
//! operation (`/keys issue`; two-word ones as a subcommand group: `/tenant audit list`), typed
//! options from each input schema (required first, choices for enums, minimums for integers,
//! autocomplete for personas, keys, business units and approval requests), plus the chat-only
//! subcommands (`/tenant link`, `/billing post`, `help` in every group) and Discord's own
//! `/tenant bind` (connecting a server from inside it).
//!
//! Who may run what is decided by the core on every call, so every command is visible to every
//! member (`default_member_permissions` is left unset).

use serenity::all::{ChannelType, CommandOptionType, CreateCommand, CreateCommandOption};
use tenantops_chat::groups::{self, Group};
use tenantops_chat::schema::{self, Arg, Kind};
use tenantops_core::OpSpec;

/// Discord's limits for names, descriptions and choices.
const DESCRIPTION_MAX: usize = 100;
const CHOICES_MAX: usize = 25;

fn describe(text: &str, fallback: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim();
    let text = if first.is_empty() { fallback } else { first };
    if text.chars().count() <= DESCRIPTION_MAX {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(DESCRIPTION_MAX - 1).collect();
        out.push('…');
        out
    }
}

/// Which list an argument's autocomplete draws from, by its name.
pub fn suggests(arg: &str) -> Option<&'static str> {
    match arg {
        "persona" | "escalation_persona" => Some("personas"),
        "key" => Some("keys"),
        "bu" | "parent" => Some("bus"),
        "request_id" => Some("requests"),
        _ => None,
    }
}

fn option(arg: &Arg) -> CreateCommandOption {
    let hint = match &arg.kind {
        Kind::List(_) => " (comma-separated or JSON)",
        Kind::Object | Kind::Any => " (JSON)",
        _ => "",
    };
    let description = describe(&format!("{}{hint}", arg.description), &arg.name);
    let kind = match &arg.kind {
        Kind::Integer { .. } => CommandOptionType::Integer,
        Kind::Number => CommandOptionType::Number,
        Kind::Boolean => CommandOptionType::Boolean,
        _ => CommandOptionType::String,
    };
    let mut o = CreateCommandOption::new(kind, &arg.name, description).required(arg.required);
    match &arg.kind {
        Kind::Choice(values) if values.len() <= CHOICES_MAX => {
            for v in values {
                o = o.add_string_choice(v, v);
            }
        }
        Kind::Integer { minimum: Some(min) } => o = o.min_int_value(*min as u64),
        Kind::Text { .. } if suggests(&arg.name).is_some() => o = o.set_autocomplete(true),
        _ => {}
    }
    o
}

fn subcommand(name: &str, description: &str, args: &[Arg]) -> CreateCommandOption {
    let mut sub = CreateCommandOption::new(CommandOptionType::SubCommand, name, description);
    for arg in args {
        sub = sub.add_sub_option(option(arg));
    }
    sub
}

fn operation(sub: &str, op: &OpSpec) -> CreateCommandOption {
    subcommand(sub, &describe(op.summary, op.name), &schema::args(op))
}

/// The chat-only subcommands of a group, as Discord options.
fn chat_only(group: &Group) -> Vec<CreateCommandOption> {
    let mut out = Vec::new();
    for c in &group.chat_only {
        match (c.group, c.sub) {
            ("tenant", "link") => out.push(
                CreateCommandOption::new(CommandOptionType::SubCommand, "link", c.summary)
                    .add_sub_option(
                        CreateCommandOption::new(
                            CommandOptionType::String,
                            "code",
                            "The one-time code from members.chat_link_code",
                        )
                        .required(true),
                    ),
            ),
            ("billing", "post") => out.push(
                CreateCommandOption::new(CommandOptionType::SubCommand, "post", c.summary)
                    .add_sub_option(
                        CreateCommandOption::new(
                            CommandOptionType::Channel,
                            "channel",
                            "Where to post (default: this channel)",
                        )
                        .channel_types(vec![ChannelType::Text, ChannelType::News]),
                    ),
            ),
            _ => {}
        }
    }
    out
}

fn help(group: &Group) -> CreateCommandOption {
    let mut command = CreateCommandOption::new(
        CommandOptionType::String,
        "command",
        "The subcommand to explain",
    );
    for c in group.commands.iter().take(CHOICES_MAX) {
        command = command.add_string_choice(&c.sub, &c.sub);
    }
    CreateCommandOption::new(
        CommandOptionType::SubCommand,
        "help",
        format!("What /{} can do, and how to call each command", group.name),
    )
    .add_sub_option(command)
}

/// One group as an application command.
pub fn command(group: &Group) -> CreateCommand {
    let mut options: Vec<CreateCommandOption> = Vec::new();
    let mut nested: Vec<(String, CreateCommandOption)> = Vec::new();
    for c in &group.commands {
        match c.sub.split_once(' ') {
            None => options.push(operation(&c.sub, c.op)),
            Some((outer, inner)) => {
                let sub = operation(inner, c.op);
                match nested.iter_mut().find(|(n, _)| n == outer) {
                    Some((_, g)) => *g = g.clone().add_sub_option(sub),
                    None => nested.push((
                        outer.to_owned(),
                        CreateCommandOption::new(
                            CommandOptionType::SubCommandGroup,
                            outer,
                            describe(&format!("{} {outer} commands", group.name), outer),
                        )
                        .add_sub_option(sub),
                    )),
                }
            }
        }
    }
    options.extend(nested.into_iter().map(|(_, g)| g));
    options.extend(chat_only(group));
    if group.name == "tenant" {
        options.push(
            CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "bind",
                "Connect this server to a tenant (needs Manage Server)",
            )
            .add_sub_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "code",
                    "The code from tenant.chat_install_link",
                )
                .required(true),
            ),
        );
    }
    options.push(help(group));
    CreateCommand::new(group.name)
        .description(describe(
            &format!("tenantops: {} operations", group.name),
            group.name,
        ))
        .set_options(options)
}

/// Every application command, in guide order.
pub fn all() -> Vec<CreateCommand> {
    groups::groups().iter().map(command).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json() -> Vec<Value> {
        all()
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect()
    }

    fn name_ok(n: &str) -> bool {
        (1..=32).contains(&n.chars().count())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    }

    /// Characters Discord counts toward a command's 8,000 limit.
    fn size(v: &Value) -> usize {
        let own = ["name", "description"]
            .iter()
            .filter_map(|k| v[k].as_str())
            .map(|s| s.chars().count())
            .sum::<usize>();
        let choices: usize = v["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default().len() + c["value"].to_string().len())
            .sum();
        own + choices
            + v["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(size)
                .sum::<usize>()
    }

    fn check(v: &Value, depth: usize) {
        let name = v["name"].as_str().unwrap();
        assert!(name_ok(name), "bad name {name}");
        let d = v["description"].as_str().unwrap();
        assert!((1..=100).contains(&d.chars().count()), "{name}: {d}");
        let options = v["options"].as_array().cloned().unwrap_or_default();
        assert!(options.len() <= 25, "{name} has {} options", options.len());
        assert!(v["choices"].as_array().is_none_or(|c| c.len() <= 25));
        let mut seen_optional = false;
        for o in &options {
            let required = o["required"].as_bool().unwrap_or(false);
            if o["type"] == 1 || o["type"] == 2 {
                assert!(depth < 2, "subcommands nest at most twice");
            } else {
                assert!(
                    !(required && seen_optional),
                    "{name}: required after optional"
                );
                seen_optional |= !required;
            }
            check(o, depth + 1);
        }
    }

    #[test]
    fn commands_fit_discords_rules() {
        let cmds = json();
        assert!(cmds.len() >= 5 && cmds.len() <= 100);
        for c in &cmds {
            check(c, 0);
            assert!(size(c) <= 8_000, "{} is {} characters", c["name"], size(c));
        }
    }

    #[test]
    fn every_operation_is_reachable() {
        let cmds = json();
        for op in tenantops_core::catalogue() {
            let group = groups::group_of(op.name);
            let sub = groups::subcommand(op.name);
            let c = cmds.iter().find(|c| c["name"] == group).unwrap();
            let mut node = c;
            for word in sub.split(' ') {
                node = node["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["name"] == word)
                    .unwrap_or_else(|| panic!("{} not reachable", op.name));
            }
            assert_eq!(node["type"], 1, "{}", op.name);
        }
    }

    #[test]
    fn options_are_typed_from_schemas() {
        let cmds = json();
        let keys = cmds.iter().find(|c| c["name"] == "keys").unwrap();
        let issue = keys["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "issue")
            .unwrap();
        let opt = |n: &str| {
            issue["options"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == n)
                .unwrap()
                .clone()
        };
        assert_eq!(opt("persona")["type"], 3);
        assert_eq!(opt("persona")["required"], true);
        assert_eq!(opt("persona")["autocomplete"], true);
        assert_eq!(opt("scopes")["required"], true);
        let tenant = cmds.iter().find(|c| c["name"] == "tenant").unwrap();
        let audit = tenant["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "audit")
            .unwrap();
        assert_eq!(audit["type"], 2);
        let list = audit["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "list")
            .unwrap();
        let limit = list["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "limit")
            .unwrap();
        assert_eq!(limit["type"], 4);
    }
}
