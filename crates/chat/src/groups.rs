//! Slash commands, derived from the catalogue: an operation's command is the first segment of
//! its name (`keys.issue` → `/keys issue`), except that `whoami` and `audit.*` live under
//! `/tenant` and `roles.*` under `/members`. A moved operation keeps its whole name as the
//! subcommand, dots read as spaces: `/tenant whoami`, `/tenant audit list`,
//! `/members roles list_templates` (`audit.list` is accepted too). Any other new first segment
//! becomes a group of its own.

use tenantops_core::{OpSpec, catalogue};

/// First segments that live under another slash command.
const MOVED: &[(&str, &str)] = &[
    ("whoami", "tenant"),
    ("audit", "tenant"),
    ("roles", "members"),
];

/// Groups in the order of the guide's sections; later groups follow alphabetically.
const SECTION_ORDER: &[&str] = &["billing", "members", "keys", "approvals", "tenant"];

/// A subcommand the chat adapters implement themselves (no catalogue operation behind it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatCommand {
    /// The slash command it belongs to, without the slash.
    pub group: &'static str,
    /// The subcommand word.
    pub sub: &'static str,
    /// How to call it.
    pub usage: &'static str,
    /// One line for help.
    pub summary: &'static str,
}

/// The chat-only subcommands, listed by help and recognised by [`crate::args::chat_only`].
pub const CHAT_ONLY: &[ChatCommand] = &[
    ChatCommand {
        group: "tenant",
        sub: "link",
        usage: "/tenant link CODE",
        summary: "Link your chat account to your persona",
    },
    ChatCommand {
        group: "tenant",
        sub: "help",
        usage: "/tenant help",
        summary: "This list; every command also takes `help`",
    },
    ChatCommand {
        group: "billing",
        sub: "post",
        usage: "/billing post #channel",
        summary: "Post the summary and spend chart to a channel",
    },
];

/// One operation as a subcommand.
#[derive(Debug, Clone)]
pub struct Command {
    /// What follows the slash command, words separated by spaces (`issue`, `audit list`).
    pub sub: String,
    /// The operation it runs.
    pub op: &'static OpSpec,
}

/// A slash command and everything under it.
#[derive(Debug, Clone)]
pub struct Group {
    /// The slash command without the slash (`keys`).
    pub name: &'static str,
    /// Its operations, in catalogue order.
    pub commands: Vec<Command>,
    /// Its chat-only subcommands.
    pub chat_only: Vec<&'static ChatCommand>,
}

/// The slash command (without the slash) an operation belongs to.
pub fn group_of(op_name: &str) -> &str {
    let first = op_name.split('.').next().unwrap_or(op_name);
    MOVED
        .iter()
        .find(|(segment, _)| *segment == first)
        .map_or(first, |(_, group)| group)
}

/// The subcommand that runs an operation within its group (`issue`, `audit list`).
pub fn subcommand(op_name: &str) -> String {
    let group = group_of(op_name);
    let rest = op_name
        .strip_prefix(group)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(op_name);
    rest.replace('.', " ")
}

/// Normalises what a person typed: no leading slash, lower case, `-` as `_`, dots and runs of
/// spaces as single spaces.
pub(crate) fn normalise(text: &str) -> String {
    text.trim_start_matches('/')
        .to_lowercase()
        .replace('-', "_")
        .replace('.', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The operation `sub` names in `group`, if any (`resolve("/tenant", "audit.list")`).
pub fn resolve(group: &str, sub: &str) -> Option<&'static OpSpec> {
    let (group, sub) = (normalise(group), normalise(sub));
    catalogue()
        .iter()
        .find(|op| group_of(op.name) == group && subcommand(op.name) == sub)
}

/// The chat-only subcommand `sub` of `group`, if any.
pub fn chat_command(group: &str, sub: &str) -> Option<&'static ChatCommand> {
    let (group, sub) = (normalise(group), normalise(sub));
    CHAT_ONLY.iter().find(|c| c.group == group && c.sub == sub)
}

/// Every group, in guide order, with its commands.
pub fn groups() -> Vec<Group> {
    let mut names: Vec<&'static str> = catalogue().iter().map(|op| group_of(op.name)).collect();
    names.extend(CHAT_ONLY.iter().map(|c| c.group));
    names.sort_by_key(|n| (rank(n), *n));
    names.dedup();
    names
        .into_iter()
        .map(|name| Group {
            name,
            commands: catalogue()
                .iter()
                .filter(|op| group_of(op.name) == name)
                .map(|op| Command {
                    sub: subcommand(op.name),
                    op,
                })
                .collect(),
            chat_only: CHAT_ONLY.iter().filter(|c| c.group == name).collect(),
        })
        .collect()
}

/// One group by name (with or without the slash).
pub fn group(name: &str) -> Option<Group> {
    let name = normalise(name);
    groups().into_iter().find(|g| g.name == name)
}

fn rank(name: &str) -> usize {
    SECTION_ORDER
        .iter()
        .position(|s| *s == name)
        .unwrap_or(SECTION_ORDER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_the_guide_and_cover_every_operation_once() {
        let all = groups();
        let names: Vec<_> = all.iter().map(|g| g.name).collect();
        assert_eq!(
            &names[..5],
            &["billing", "members", "keys", "approvals", "tenant"]
        );
        let count: usize = all.iter().map(|g| g.commands.len()).sum();
        assert_eq!(count, catalogue().len());
        for g in &all {
            for c in &g.commands {
                assert_eq!(resolve(g.name, &c.sub).unwrap().name, c.op.name);
            }
        }
    }

    #[test]
    fn moved_operations_and_subcommands() {
        assert_eq!(group_of("keys.issue"), "keys");
        assert_eq!(subcommand("keys.issue"), "issue");
        assert_eq!(group_of("whoami"), "tenant");
        assert_eq!(subcommand("whoami"), "whoami");
        assert_eq!(group_of("audit.list"), "tenant");
        assert_eq!(subcommand("audit.list"), "audit list");
        assert_eq!(group_of("roles.list_templates"), "members");
        assert_eq!(group_of("webhooks.create"), "webhooks");
        assert_eq!(resolve("/tenant", "audit.list").unwrap().name, "audit.list");
        assert_eq!(resolve("tenant", "audit  list").unwrap().name, "audit.list");
        assert_eq!(
            resolve("members", "roles list-templates").unwrap().name,
            "roles.list_templates"
        );
        assert_eq!(resolve("tenant", "whoami").unwrap().name, "whoami");
        assert_eq!(resolve("Keys", "ISSUE").unwrap().name, "keys.issue");
        assert!(resolve("keys", "list_templates").is_none());
        assert!(resolve("audit", "list").is_none());
    }

    #[test]
    fn chat_only_commands_belong_to_existing_groups() {
        for c in CHAT_ONLY {
            let g = group(c.group).expect(c.group);
            assert!(g.chat_only.contains(&c));
            assert!(resolve(c.group, c.sub).is_none(), "{} shadows an op", c.sub);
            assert!(c.usage.starts_with(&format!("/{} {}", c.group, c.sub)));
        }
        assert_eq!(chat_command("/tenant", "link").unwrap().sub, "link");
        assert!(chat_command("keys", "link").is_none());
    }
}

/// What a bare group command runs (`/billing` → `billing.summary`); other groups show help.
pub fn default_operation(group: &str) -> Option<&'static OpSpec> {
    match normalise(group).as_str() {
        "billing" => catalogue::find("billing.summary"),
        _ => None,
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn bare_billing_is_the_summary_and_other_groups_show_help() {
        assert_eq!(
            default_operation("/billing").unwrap().name,
            "billing.summary"
        );
        assert!(default_operation("keys").is_none());
        assert!(matches!(
            crate::args::parse("billing", "  "),
            Ok(crate::Parsed::Call { op, .. }) if op.name == "billing.summary"
        ));
        assert!(matches!(
            crate::args::parse("keys", ""),
            Ok(crate::Parsed::Help { .. })
        ));
    }
}
