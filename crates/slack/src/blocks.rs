//! Block Kit from the platform-neutral messages of `tenantops-chat`: a header with the most
//! important line, short sections, fields, and one-tap buttons that carry only an opaque action
//! id (`approve:apr_…`); the server holds the truth.

use slack_morphism::prelude::*;
use tenantops_chat::render::{Block, ButtonStyle, Message};
use tenantops_chat::views::clip;

/// Slack's limits: header text, section text, fields per section.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 2_900;
const FIELDS_MAX: usize = 10;

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(clip(
            text,
            SECTION_MAX,
        ))))
        .into()
}

/// The plain-text fallback (notifications, screen readers).
pub fn fallback(m: &Message) -> String {
    let mut lines = vec![m.title.clone()];
    for b in &m.body {
        if let Block::Text(t) = b {
            lines.push(t.clone());
            break;
        }
    }
    clip(&lines.join(" — "), SECTION_MAX)
}

/// The Block Kit blocks of a message.
pub fn blocks(m: &Message) -> Vec<SlackBlock> {
    let mut out: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(SlackBlockPlainText::new(clip(&m.title, HEADER_MAX)).into()).into(),
    ];
    for b in &m.body {
        match b {
            Block::Text(t) if !t.trim().is_empty() => out.push(section(t)),
            Block::Text(_) => {}
            Block::Fields(fields) => {
                for chunk in fields.chunks(FIELDS_MAX) {
                    let f: Vec<SlackBlockText> = chunk
                        .iter()
                        .map(|(k, v)| {
                            SlackBlockText::MarkDown(SlackBlockMarkDownText::new(clip(
                                &format!("*{k}*\n{v}"),
                                1_900,
                            )))
                        })
                        .collect();
                    out.push(SlackSectionBlock::new().with_fields(f).into());
                }
            }
            Block::List(items) if !items.is_empty() => {
                let text: Vec<String> = items.iter().map(|i| format!("• {i}")).collect();
                out.push(section(&text.join("\n")));
            }
            Block::List(_) => {}
            Block::Code(code) => {
                out.push(section(&format!("```{}```", clip(code, SECTION_MAX - 6))))
            }
        }
    }
    if !m.buttons.is_empty() {
        let elements: Vec<SlackActionBlockElement> = m
            .buttons
            .iter()
            .map(|b| {
                let id = b.action.encode();
                let mut button =
                    SlackBlockButtonElement::new(SlackBlockPlainText::new(b.label.clone()).into())
                        .with_action_id(id.clone().into())
                        .with_value(id);
                match b.style {
                    ButtonStyle::Primary => {
                        button = button.with_style(SlackBlockButtonStyle::Primary)
                    }
                    ButtonStyle::Danger => {
                        button = button.with_style(SlackBlockButtonStyle::Danger)
                    }
                    ButtonStyle::Default => {}
                }
                SlackActionBlockElement::Button(button)
            })
            .collect();
        out.push(SlackActionsBlock::new(elements).into());
    }
    out
}

/// The whole message content.
pub fn content(m: &Message) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(fallback(m))
        .with_blocks(blocks(m))
}

/// A one-line text message (acknowledgements, how-to answers).
pub fn text(t: &str) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(clip(t, SECTION_MAX))
        .with_blocks(vec![section(t)])
}

/// The modal asking for a rejection comment; the request id travels as private metadata.
pub fn reject_modal(request_id: &str, summary: &str) -> SlackView {
    SlackView::Modal(
        SlackModalView::new(
            SlackBlockPlainText::new("Reject request".into()).into(),
            vec![
                section(&format!("*{}*\n{}", clip(summary, 500), request_id)),
                SlackInputBlock::new(
                    SlackBlockPlainText::new("Why? (the requester sees this)".into()).into(),
                    SlackInputBlockElement::PlainTextInput(
                        SlackBlockPlainTextInputElement::new()
                            .with_action_id("comment".into())
                            .with_multiline(true),
                    ),
                )
                .with_block_id("comment".into())
                .into(),
            ],
        )
        .with_submit(SlackBlockPlainText::new("Reject".into()).into())
        .with_close(SlackBlockPlainText::new("Cancel".into()).into())
        .with_callback_id("reject".into())
        .with_private_metadata(request_id.into()),
    )
}
