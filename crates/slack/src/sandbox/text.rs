//! Block Kit as terminal text: the header as a title, sections and fields as lines, code as an
//! indented block, and buttons kept apart so the sandbox can number them.

use serde_json::Value;

/// A message as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The header, if the message has one.
    pub title: Option<String>,
    /// Body lines, in order.
    pub lines: Vec<String>,
    /// Buttons, in order.
    pub buttons: Vec<ButtonText>,
}

/// A button as the sandbox shows and presses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonText {
    /// Its label.
    pub label: String,
    /// The action id the adapter gave it.
    pub action_id: String,
    /// Its value, if any.
    pub value: Option<String>,
}

/// One input of a modal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The block id the answer is filed under.
    pub block_id: String,
    /// The element's action id.
    pub action_id: String,
    /// What it asks.
    pub label: String,
}

/// A modal as text, with the inputs to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modal {
    /// Title, text and submit label.
    pub text: Text,
    /// The inputs, in order.
    pub inputs: Vec<Input>,
}

/// How channel and user mentions (`<#C…|name>`, `<@U…>`) read in text.
pub trait Names {
    /// `#name` of a channel id.
    fn channel(&self, id: &str) -> String;
    /// `@handle` of a user id.
    fn user(&self, id: &str) -> String;
}

/// A message body (`chat.postMessage`, `chat.update`, a `response_url` answer, or the immediate
/// reply to a command) as text. Without blocks, its `text` is used.
pub fn message(content: &Value, names: &dyn Names) -> Text {
    let mut out = Text::default();
    match content.get("blocks").and_then(Value::as_array) {
        Some(blocks) if !blocks.is_empty() => {
            for b in blocks {
                block(b, names, &mut out);
            }
        }
        _ => {
            if let Some(t) = content.get("text").and_then(Value::as_str) {
                out.lines.extend(mrkdwn(t, names));
            }
        }
    }
    out
}

/// A modal view (`views.open`) as text and its inputs.
pub fn modal(view: &Value, names: &dyn Names) -> Modal {
    let mut out = Modal::default();
    out.text.title = plain(&view["title"]);
    for b in view["blocks"].as_array().into_iter().flatten() {
        if b["type"] == "input" {
            let element = &b["element"];
            out.inputs.push(Input {
                block_id: b["block_id"].as_str().unwrap_or_default().to_owned(),
                action_id: element["action_id"].as_str().unwrap_or_default().to_owned(),
                label: plain(&b["label"]).unwrap_or_else(|| "answer".into()),
            });
        } else {
            block(b, names, &mut out.text);
        }
    }
    out
}

fn plain(text: &Value) -> Option<String> {
    text.get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| text.as_str().map(str::to_owned))
}

fn block(b: &Value, names: &dyn Names, out: &mut Text) {
    match b["type"].as_str().unwrap_or_default() {
        "header" => {
            if let Some(t) = plain(&b["text"]) {
                if out.title.is_none() {
                    out.title = Some(t);
                } else {
                    out.lines.push(t);
                }
            }
        }
        "section" => {
            if let Some(t) = plain(&b["text"]) {
                out.lines.extend(mrkdwn(&t, names));
            }
            for f in b["fields"].as_array().into_iter().flatten() {
                if let Some(t) = plain(f) {
                    out.lines.push(field(&unmention(&t, names)));
                }
            }
        }
        "context" => {
            let parts: Vec<String> = b["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(plain)
                .map(|t| unmention(&t, names))
                .collect();
            if !parts.is_empty() {
                out.lines.push(parts.join(" · "));
            }
        }
        "divider" => out.lines.push("─".repeat(24)),
        "image" => out.lines.push(format!(
            "[image: {}]",
            b["alt_text"].as_str().unwrap_or("image")
        )),
        "actions" => {
            for e in b["elements"].as_array().into_iter().flatten() {
                if e["type"] == "button" {
                    out.buttons.push(ButtonText {
                        label: plain(&e["text"]).unwrap_or_else(|| "button".into()),
                        action_id: e["action_id"].as_str().unwrap_or_default().to_owned(),
                        value: e["value"].as_str().map(str::to_owned),
                    });
                }
            }
        }
        _ => {}
    }
}

/// `*Label*\nvalue` (how the adapter writes fields) → `Label: value`.
fn field(text: &str) -> String {
    if let Some(rest) = text.strip_prefix('*')
        && let Some((label, value)) = rest.split_once("*\n")
    {
        return format!("{label}: {}", value.replace('\n', " "));
    }
    text.replace('\n', " ")
}

/// mrkdwn as lines: code fences become indented blocks, mentions become names.
fn mrkdwn(text: &str, names: &dyn Names) -> Vec<String> {
    let text = unmention(text, names);
    let mut out = Vec::new();
    for (i, part) in text.split("```").enumerate() {
        if i % 2 == 1 {
            out.extend(part.trim_matches('\n').lines().map(|l| format!("    {l}")));
        } else {
            out.extend(
                part.lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                    .map(unbold),
            );
        }
    }
    out
}

/// `*bold*` → `bold`: an asterisk that opens (after a space or the start, before a non-space)
/// or closes (after a non-space, before a space, punctuation or the end) a bold run goes; any
/// other asterisk (`2 * 3`) stays.
fn unbold(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let edge = |c: Option<&char>| c.is_none_or(|c| c.is_whitespace() || c.is_ascii_punctuation());
    let mut out = String::with_capacity(line.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| chars.get(j));
        let after = chars.get(i + 1);
        let opens = edge(before) && after.is_some_and(|a| !a.is_whitespace() && *a != '*');
        let closes = before.is_some_and(|b| !b.is_whitespace() && *b != '*') && edge(after);
        if c == '*' && (opens || closes) {
            continue;
        }
        out.push(c);
    }
    out
}

/// `<#C1|name>` → `#name`, `<#C1>` and `<@U1>` by `names`, `<url|label>` → `label (url)`.
pub fn unmention(text: &str, names: &dyn Names) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 1..start + len];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        match (target.chars().next(), label) {
            (Some('#'), Some(l)) => out.push_str(&format!("#{l}")),
            (Some('#'), None) => out.push_str(&names.channel(&target[1..])),
            (Some('@'), _) => out.push_str(&names.user(&target[1..])),
            (_, Some(l)) if target.contains("://") => out.push_str(&format!("{l} ({target})")),
            _ => out.push_str(&rest[start..=start + len]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Plain;
    impl Names for Plain {
        fn channel(&self, id: &str) -> String {
            format!("#{}", id.to_lowercase())
        }
        fn user(&self, id: &str) -> String {
            format!("@{}", id.to_lowercase())
        }
    }

    #[test]
    fn header_sections_fields_code_and_buttons() {
        let content = json!({"text": "fallback", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Revoke ci-bot?"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "ci-bot loses access.\n• key · tops_…ab"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "```{\n  \"a\": 1\n}```"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Roles*\ndeveloper"}]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Revoke now"}, "action_id": "revoke:ps_1", "value": "revoke:ps_1"},
                {"type": "button", "text": {"type": "plain_text", "text": "Cancel"}, "action_id": "cancel"}
            ]}
        ]});
        let t = message(&content, &Plain);
        assert_eq!(t.title.as_deref(), Some("Revoke ci-bot?"));
        assert_eq!(
            t.lines,
            [
                "ci-bot loses access.",
                "• key · tops_…ab",
                "    {",
                "      \"a\": 1",
                "    }",
                "Roles: developer"
            ]
        );
        assert_eq!(t.buttons.len(), 2);
        assert_eq!(t.buttons[0].action_id, "revoke:ps_1");
        assert_eq!(t.buttons[1].label, "Cancel");
    }

    #[test]
    fn text_only_and_mentions() {
        let t = message(
            &json!({"text": "In <#C0FIN|finance> and <#C0APP>, for <@U1>: <https://x.test|docs>"}),
            &Plain,
        );
        assert_eq!(
            t.lines,
            ["In #finance and #c0app, for @u1: docs (https://x.test)"]
        );
        assert_eq!(unmention("a < b", &Plain), "a < b");
        let t = message(
            &json!({"text": "*USD 859.00* spent (*+12%*), 2 * 3"}),
            &Plain,
        );
        assert_eq!(t.lines, ["USD 859.00 spent (+12%), 2 * 3"]);
    }

    #[test]
    fn modal_inputs() {
        let view = json!({"type": "modal", "title": {"type": "plain_text", "text": "Reject request"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Export*\napr_1"}},
            {"type": "input", "block_id": "comment", "label": {"type": "plain_text", "text": "Why?"},
             "element": {"type": "plain_text_input", "action_id": "comment"}}
        ]});
        let m = modal(&view, &Plain);
        assert_eq!(m.text.title.as_deref(), Some("Reject request"));
        assert_eq!(m.text.lines, ["Export", "apr_1"]);
        assert_eq!(
            m.inputs,
            [Input {
                block_id: "comment".into(),
                action_id: "comment".into(),
                label: "Why?".into()
            }]
        );
    }
}
