//! Embeds and buttons from the platform-neutral messages of `tenantops-chat`, within Discord's
//! limits and readable on a phone: the title as the embed title, text and lists in the
//! description, fields inline, code in a code block, one row of buttons that carry only an
//! opaque action id (`approve:apr_…`), and a chart shown as the embed's image.

use serenity::all::{
    ButtonStyle as DiscordStyle, Colour, CreateActionRow, CreateAttachment, CreateButton,
    CreateEmbed, CreateInputText, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, CreateModal, EditInteractionResponse,
    InputTextStyle,
};
use tenantops_chat::render::{Block, Button, ButtonAction, ButtonStyle, Message};
use tenantops_chat::views::clip;

/// Discord's limits.
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4_000;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1_024;
const EMBED_TOTAL_MAX: usize = 6_000;
const BUTTONS_PER_ROW: usize = 5;
const LABEL_MAX: usize = 80;

/// The embed colour: tenantops blue.
const COLOUR: Colour = Colour(0x2F6FEB);

/// Slack-style `*bold*` (what the neutral messages use) as Discord's `**bold**`; a lone `*`
/// (`billing:*`) is left as it is.
pub fn markdown(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let boundary = |c: Option<&char>| c.is_none_or(|c| !c.is_alphanumeric() && *c != '*');
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '*'
            && boundary(i.checked_sub(1).and_then(|p| chars.get(p)))
            && chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != '*')
            && let Some(len) = chars[i + 1..].iter().position(|c| *c == '*' || *c == '\n')
            && chars[i + 1 + len] == '*'
            && !chars[i + len].is_whitespace()
            && boundary(chars.get(i + len + 2))
        {
            out.push_str("**");
            out.extend(&chars[i + 1..i + 1 + len]);
            out.push_str("**");
            i += len + 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The embed and button rows of a message.
pub fn parts(m: &Message) -> (CreateEmbed, Vec<CreateActionRow>) {
    let title = clip(&m.title, TITLE_MAX);
    let mut description: Vec<String> = Vec::new();
    let mut fields: Vec<(String, String, bool)> = Vec::new();
    for block in &m.body {
        match block {
            Block::Text(t) if !t.trim().is_empty() => description.push(markdown(t)),
            Block::Text(_) => {}
            Block::List(items) if !items.is_empty() => {
                description.push(
                    items
                        .iter()
                        .map(|i| format!("• {}", markdown(i)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            Block::List(_) => {}
            Block::Code(code) => {
                description.push(format!("```\n{}\n```", clip(code, DESCRIPTION_MAX - 16)))
            }
            Block::Fields(pairs) => {
                for (k, v) in pairs {
                    if fields.len() == FIELDS_MAX {
                        description.push(format!("**{k}**: {v}"));
                        continue;
                    }
                    let value = if v.trim().is_empty() { "—" } else { v };
                    fields.push((
                        clip(k, FIELD_NAME_MAX),
                        clip(&markdown(value), FIELD_VALUE_MAX),
                        v.chars().count() <= 40,
                    ));
                }
            }
        }
    }
    // Discord refuses an embed whose text adds up to more than 6,000 characters: the title and
    // the description (clipped to what is left) first, then as many whole fields as fit.
    let len = |s: &str| s.chars().count();
    let mut left = EMBED_TOTAL_MAX - len(&title);
    let description = clip(&description.join("\n\n"), DESCRIPTION_MAX.min(left));
    left -= len(&description);
    let mut embed = CreateEmbed::new().title(title).colour(COLOUR);
    if !description.is_empty() {
        embed = embed.description(description);
    }
    for (name, value, inline) in fields {
        let size = len(&name) + len(&value);
        if size > left {
            break;
        }
        left -= size;
        embed = embed.field(name, value, inline);
    }
    if let Some(a) = &m.attachment
        && a.content_type == "image/png"
    {
        embed = embed.image(format!("attachment://{}", a.filename));
    }
    (embed, rows(m))
}

fn rows(m: &Message) -> Vec<CreateActionRow> {
    // Approve / Reject pairs (a list of requests) keep each pair on one row.
    let pairs = m.buttons.len() > BUTTONS_PER_ROW
        && m.buttons.chunks(2).all(|p| {
            matches!(
                p,
                [
                    Button {
                        action: ButtonAction::Approve { request_id: a },
                        ..
                    },
                    Button {
                        action: ButtonAction::Reject { request_id: r },
                        ..
                    }
                ] if a == r
            )
        });
    let per_row = if pairs { 4 } else { BUTTONS_PER_ROW };
    m.buttons
        .chunks(per_row)
        .take(5)
        .map(|chunk| {
            CreateActionRow::Buttons(
                chunk
                    .iter()
                    .map(|b| {
                        CreateButton::new(b.action.encode())
                            .label(clip(&b.label, LABEL_MAX))
                            .style(match b.style {
                                ButtonStyle::Primary => DiscordStyle::Success,
                                ButtonStyle::Danger => DiscordStyle::Danger,
                                ButtonStyle::Default => DiscordStyle::Secondary,
                            })
                    })
                    .collect(),
            )
        })
        .collect()
}

fn attachment(m: &Message) -> Option<CreateAttachment> {
    m.attachment
        .as_ref()
        .map(|a| CreateAttachment::bytes(a.bytes.clone(), a.filename.clone()))
}

/// A channel message (approval requests, the finance summary, DMs).
pub fn create_message(m: &Message) -> CreateMessage {
    let (embed, rows) = parts(m);
    let mut out = CreateMessage::new().embed(embed).components(rows);
    if let Some(file) = attachment(m) {
        out = out.add_file(file);
    }
    out
}

/// An immediate interaction answer. Files cannot travel in an HTTP response body, so a message
/// with one is answered by deferring and editing (see `interactions`).
pub fn response(m: &Message, ephemeral: bool) -> CreateInteractionResponseMessage {
    let (embed, rows) = parts(m);
    CreateInteractionResponseMessage::new()
        .embed(embed)
        .components(rows)
        .ephemeral(ephemeral)
}

/// The edit that completes a deferred answer, with its file.
pub fn edit_response(m: &Message) -> EditInteractionResponse {
    let (embed, rows) = parts(m);
    let mut out = EditInteractionResponse::new().embed(embed).components(rows);
    if let Some(file) = attachment(m) {
        out = out.new_attachment(file);
    }
    out
}

/// A follow-up only the asker sees.
pub fn followup(m: &Message) -> CreateInteractionResponseFollowup {
    let (embed, rows) = parts(m);
    let mut out = CreateInteractionResponseFollowup::new()
        .embed(embed)
        .components(rows)
        .ephemeral(true);
    if let Some(file) = attachment(m) {
        out = out.add_file(file);
    }
    out
}

/// The comment field's id in the reject modal.
pub const COMMENT_FIELD: &str = "comment";

/// The modal asking for a rejection comment; its id is the reject button's action id.
pub fn reject_modal(custom_id: &str, summary: &str) -> CreateModal {
    CreateModal::new(custom_id, clip(&format!("Reject: {summary}"), 45)).components(vec![
        CreateActionRow::InputText(
            CreateInputText::new(
                InputTextStyle::Paragraph,
                "Why? (the requester sees this)",
                COMMENT_FIELD,
            )
            .required(true)
            .min_length(1)
            .max_length(1_000),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantops_chat::render::Visibility;

    fn json<T: serde::Serialize>(t: &T) -> serde_json::Value {
        serde_json::to_value(t).unwrap()
    }

    #[test]
    fn message_fits_discord_limits() {
        let mut m = Message::note("t".repeat(400).as_str(), "x".repeat(9_000));
        m.body.push(Block::Fields(
            (0..40).map(|i| (format!("k{i}"), "v".into())).collect(),
        ));
        m.buttons = (0..7)
            .map(|i| Button {
                label: "L".repeat(100),
                action: ButtonAction::Approve {
                    request_id: format!("apr_{i}"),
                },
                style: ButtonStyle::Primary,
            })
            .collect();
        m.visibility = Visibility::Channel;
        let (embed, rows) = parts(&m);
        let e = json(&embed);
        assert_eq!(e["title"].as_str().unwrap().chars().count(), TITLE_MAX);
        assert!(e["description"].as_str().unwrap().chars().count() <= DESCRIPTION_MAX);
        assert_eq!(e["fields"].as_array().unwrap().len(), FIELDS_MAX);
        // Long field values: the whole embed stays within Discord's 6,000 characters.
        m.body = vec![
            Block::Text("d".repeat(5_000)),
            Block::Fields(
                (0..25)
                    .map(|i| (format!("k{i}"), "v".repeat(900)))
                    .collect(),
            ),
        ];
        let e = json(&parts(&m).0);
        let chars = |v: &serde_json::Value| v.as_str().unwrap_or_default().chars().count();
        let total = chars(&e["title"])
            + chars(&e["description"])
            + e["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| chars(&f["name"]) + chars(&f["value"]))
                .sum::<usize>();
        assert!(total <= EMBED_TOTAL_MAX, "{total}");
        assert_eq!(rows.len(), 2);
        let r = json(&rows[0]);
        assert_eq!(r["components"].as_array().unwrap().len(), 5);
        assert_eq!(r["components"][0]["custom_id"], "approve:apr_0");
        assert_eq!(r["components"][0]["style"], 3);
        assert!(
            r["components"][0]["label"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= LABEL_MAX
        );
    }

    #[test]
    fn approve_and_reject_stay_side_by_side() {
        let mut m = Message::note("Pending", "three requests");
        for i in 0..3 {
            let request_id = format!("apr_{i}");
            m.buttons.push(tenantops_chat::render::Button {
                label: "Approve".into(),
                action: tenantops_chat::render::ButtonAction::Approve {
                    request_id: request_id.clone(),
                },
                style: ButtonStyle::Primary,
            });
            m.buttons.push(tenantops_chat::render::Button {
                label: "Reject".into(),
                action: tenantops_chat::render::ButtonAction::Reject { request_id },
                style: ButtonStyle::Danger,
            });
        }
        let rows: Vec<usize> = parts(&m)
            .1
            .iter()
            .map(|r| json(r)["components"].as_array().unwrap().len())
            .collect();
        assert_eq!(rows, [4, 2]);
    }

    #[test]
    fn slack_bold_becomes_discord_bold() {
        assert_eq!(markdown("*USD 0.00* spent"), "**USD 0.00** spent");
        assert_eq!(
            markdown("scopes billing:* and *x*."),
            "scopes billing:* and **x**."
        );
        assert_eq!(markdown("a * b * c"), "a * b * c");
        assert_eq!(markdown("**already**"), "**already**");
        assert_eq!(markdown("*open\nclose*"), "*open\nclose*");
    }

    #[test]
    fn reject_modal_carries_the_button_id() {
        let m = json(&reject_modal("reject:apr_1", "Export all data"));
        assert_eq!(m["custom_id"], "reject:apr_1");
        assert!(m["title"].as_str().unwrap().chars().count() <= 45);
        assert_eq!(
            m["components"][0]["components"][0]["custom_id"],
            COMMENT_FIELD
        );
    }
}
