//! Views that take more than one core call, gathered the same way for every platform: the
//! on-call revoke preview and the finance summary with its chart. Each call runs as the person
//! asking, so the core checks scopes and audits every read.

use crate::render::{self, Message};
use serde_json::json;
use tenantops_core::{Core, Outcome, Principal, catalogue};

/// What revoking `persona` will cut off, with one confirm button — or why it cannot be shown.
pub async fn revoke_preview(core: &Core, principal: &Principal, persona: &str) -> Message {
    let view = match core
        .call(
            principal,
            "members.get_persona",
            json!({ "persona": persona }),
        )
        .await
    {
        Ok(Outcome::Done { output }) => output,
        Ok(other) => {
            return render::outcome(
                catalogue::find("members.get_persona").expect("a catalogue operation"),
                &other,
            );
        }
        Err(e) => return render::error(&e),
    };
    let keys = match core
        .call(principal, "keys.list", json!({ "persona": view["id"] }))
        .await
    {
        Ok(Outcome::Done { output }) => output,
        _ => json!({ "keys": [] }),
    };
    render::revoke_preview(&view, &keys)
}

/// The billing summary for everyone in a channel, with the spend chart as its attachment when
/// the chart can be drawn; `Err` is what to tell the person instead.
pub async fn finance_summary(core: &Core, principal: &Principal) -> Result<Message, Message> {
    let summary_spec = catalogue::find("billing.summary").expect("a catalogue operation");
    let mut summary = match core.call(principal, "billing.summary", json!({})).await {
        Ok(o @ Outcome::Done { .. }) => render::outcome(summary_spec, &o),
        Ok(other) => return Err(render::outcome(summary_spec, &other)),
        Err(e) => return Err(render::error(&e)),
    };
    let chart_spec = catalogue::find("billing.chart").expect("a catalogue operation");
    if let Ok(o @ Outcome::Done { .. }) = core.call(principal, "billing.chart", json!({})).await {
        summary.attachment = render::outcome(chart_spec, &o).attachment;
    }
    summary.visibility = render::Visibility::Channel;
    Ok(summary)
}

/// `s` cut to at most `max` characters, ending in `…` when cut (platform text limits).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(super::clip("héllo", 5), "héllo");
        assert_eq!(super::clip("héllo wörld", 6), "héllo…");
    }
}
