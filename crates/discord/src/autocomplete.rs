//! Autocomplete for personas, API keys, business units and approval requests: the list comes
//! from the catalogue's own list operations run as the person typing, so nobody is offered a
//! name their scopes would not show them (and, like every call, each lookup is audited).

use crate::commands::suggests;
use serde_json::{Value, json};
use serenity::all::{AutocompleteChoice, CommandData, CommandDataOptionValue};
use tenantops_core::{Core, Outcome, Principal};

/// Discord shows at most 25 choices.
const MAX: usize = 25;

/// The focused option's name and what has been typed so far.
pub fn focused(data: &CommandData) -> Option<(String, String)> {
    let (_, options) = crate::options::path(data);
    options.into_iter().find_map(|o| match o.value {
        CommandDataOptionValue::Autocomplete { value, .. } => Some((o.name, value)),
        _ => None,
    })
}

/// (label, value) pairs for one list.
async fn candidates(core: &Core, principal: &Principal, list: &str) -> Vec<(String, String)> {
    let (op, key) = match list {
        "personas" => ("members.list_personas", "personas"),
        "keys" => ("keys.list", "keys"),
        "bus" => ("members.list_bus", "units"),
        "requests" => ("approvals.pending", "decisions"),
        _ => return Vec::new(),
    };
    let Ok(Outcome::Done { output }) = core.call(principal, op, json!({})).await else {
        return Vec::new();
    };
    let items = output[key].as_array().cloned().unwrap_or_default();
    let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    items
        .iter()
        .map(|item| match list {
            "personas" => {
                let handle = str_of(item, "handle");
                let label = match item["display_name"].as_str() {
                    Some(d) if !d.is_empty() => {
                        format!("{handle} — {d} ({})", str_of(item, "kind"))
                    }
                    _ => format!("{handle} ({})", str_of(item, "kind")),
                };
                (label, handle)
            }
            "keys" => {
                let name = str_of(item, "name");
                (format!("{name} — {}", str_of(item, "hint")), name)
            }
            "bus" => {
                let name = str_of(item, "name");
                (format!("{name} ({})", str_of(item, "kind")), name)
            }
            _ => {
                let id = str_of(item, "id");
                (format!("{} — {}", id, str_of(item, "summary")), id)
            }
        })
        .collect()
}

/// Up to 25 choices for the focused option, best matches first.
pub async fn choices(
    core: &Core,
    principal: &Principal,
    option: &str,
    typed: &str,
) -> Vec<AutocompleteChoice> {
    let Some(list) = suggests(option) else {
        return Vec::new();
    };
    let typed = typed.to_lowercase();
    let mut all = candidates(core, principal, list).await;
    all.retain(|(label, _)| label.to_lowercase().contains(&typed));
    all.sort_by_key(|(label, value)| (!value.to_lowercase().starts_with(&typed), label.clone()));
    all.into_iter()
        .take(MAX)
        .map(|(label, value)| {
            let label: String = label.chars().take(100).collect();
            AutocompleteChoice::new(label, value)
        })
        .collect()
}
