//! Button clicks and modal submissions. A button carries only an opaque action id; who may do
//! what is decided by the core for the linked persona of the clicking user, never by who could
//! see the button.

use crate::{Slack, blocks};
use serde_json::{Value, json};
use slack_morphism::prelude::*;
use tenantops_chat::render::{self, ButtonAction, Message};
use tenantops_core::chat::Platform;
use tenantops_core::{Error, Outcome, Principal, catalogue};

/// The immediate answer to an interaction (the work itself continues in the background).
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Acknowledged.
    Ack,
    /// A modal submission with errors to show next to its inputs (`response_action: errors`).
    ViewErrors(Value),
}

/// Handles one interaction payload (HTTP or Socket Mode); answers at once.
pub async fn handle(slack: Slack, event: SlackInteractionEvent) -> Answer {
    match event {
        SlackInteractionEvent::BlockActions(e) => block_actions(slack, e).await,
        SlackInteractionEvent::ViewSubmission(e) => view_submission(slack, e).await,
        _ => Answer::Ack,
    }
}

/// The clicking user's principal, refusing users of other workspaces (Slack Connect).
async fn clicker(
    slack: &Slack,
    team: &SlackBasicTeamInfo,
    user: &SlackBasicUserInfo,
) -> Result<Principal, String> {
    if user.team_id.as_ref().is_some_and(|t| t != &team.id) {
        return Err("People from other workspaces in a shared channel cannot act here.".into());
    }
    slack
        .core
        .authenticate_chat(Platform::Slack, team.id.as_ref(), user.id.as_ref())
        .await
        .map_err(|e| match e {
            Error::Unauthenticated(reason) => reason,
            other => {
                tracing::error!(error = %other, "Slack click: authentication failed");
                "Something went wrong; nothing was done.".into()
            }
        })
}

async fn tell(slack: &Slack, url: Option<&SlackResponseUrl>, message: &Message, replace: bool) {
    if let Some(url) = url
        && let Err(e) = slack
            .api
            .respond(url, blocks::content(message), replace)
            .await
    {
        tracing::warn!(error = %e, "could not answer a Slack click");
    }
}

async fn block_actions(slack: Slack, e: SlackInteractionBlockActionsEvent) -> Answer {
    let Some(action) = e.actions.as_ref().and_then(|a| a.first()) else {
        return Answer::Ack;
    };
    let Some(action_ts) = action.action_ts.as_ref() else {
        return Answer::Ack;
    };
    let Some(user) = e.user.clone() else {
        return Answer::Ack;
    };
    // A redelivered click (same action timestamp) that was handled is acknowledged without
    // acting again; a second, separate click is handled, and the core makes it a no-op. The
    // click is recorded once handled, not before: a process that dies in between (before its
    // answer reached Slack) leaves the redelivery, on any replica, to be handled.
    let delivery = format!("click:{}:{}:{action_ts}", e.team.id, user.id);
    if slack
        .core
        .delivery_seen(Platform::Slack, &delivery)
        .await
        .unwrap_or(false)
    {
        return Answer::Ack;
    }
    let Some(parsed) = ButtonAction::decode(action.action_id.as_ref()) else {
        return Answer::Ack;
    };
    let response_url = e.response_url.clone();
    let trigger = e.trigger_id.clone();
    let handled = tokio::spawn(async move {
        handle_click(&slack, &e.team, &user, parsed, response_url, trigger).await;
        if let Err(err) = slack.core.first_delivery(Platform::Slack, &delivery).await {
            tracing::warn!(error = %err, "a handled click was not recorded; a redelivery acts again (a no-op)");
        }
    });
    // Slack is answered once the click's work is done (a decision is committed before its
    // approver is told it counted), or when its 3 seconds are nearly up.
    let _ = tokio::time::timeout(ACK_WITHIN, handled).await;
    Answer::Ack
}

/// How long a click's work may run before Slack is answered anyway (it allows 3 s).
const ACK_WITHIN: std::time::Duration = std::time::Duration::from_millis(2500);

async fn handle_click(
    slack: &Slack,
    team: &SlackBasicTeamInfo,
    user: &SlackBasicUserInfo,
    parsed: ButtonAction,
    response_url: Option<SlackResponseUrl>,
    trigger: SlackTriggerId,
) {
    let principal = match clicker(slack, team, user).await {
        Ok(p) => p,
        Err(reason) => {
            return tell(
                slack,
                response_url.as_ref(),
                &Message::note("Not allowed", reason),
                false,
            )
            .await;
        }
    };
    match parsed {
        ButtonAction::Approve { request_id } => {
            let input = json!({ "request_id": request_id, "decision": "approve" });
            let msg = run(slack, &principal, "approvals.decide", input).await;
            tell(slack, response_url.as_ref(), &msg, false).await;
        }
        ButtonAction::Reject { request_id } => {
            let summary = slack
                .core
                .request_view(principal.tenant(), &request_id)
                .await
                .map(|v| v.summary)
                .unwrap_or_default();
            if let Err(e) = slack
                .api
                .open_view(
                    trigger.as_ref(),
                    blocks::reject_modal(&request_id, &summary),
                )
                .await
            {
                tracing::warn!(error = %e, "could not open the reject modal");
            }
        }
        ButtonAction::ConfirmRevoke { persona } => {
            let msg = run(
                slack,
                &principal,
                "members.revoke",
                json!({ "persona": persona }),
            )
            .await;
            tell(slack, response_url.as_ref(), &msg, true).await;
        }
        ButtonAction::Cancel => {
            tell(
                slack,
                response_url.as_ref(),
                &Message::note("Cancelled", "Nothing was done."),
                true,
            )
            .await;
        }
    }
}

/// The reject modal's submission: the comment is the rejection's reason.
async fn view_submission(slack: Slack, e: SlackInteractionViewSubmissionEvent) -> Answer {
    let SlackView::Modal(modal) = &e.view.view else {
        return Answer::Ack;
    };
    if modal.callback_id.as_ref().map(|c| c.as_ref()) != Some("reject") {
        return Answer::Ack;
    }
    let request_id = modal.private_metadata.clone().unwrap_or_default();
    let comment = e
        .view
        .state_params
        .state
        .as_ref()
        .and_then(|s| s.values.get(&"comment".into()))
        .and_then(|m| m.get(&"comment".into()))
        .and_then(|v| v.value.clone())
        .unwrap_or_default();
    if comment.trim().is_empty() {
        return Answer::ViewErrors(json!({
            "comment": "Say why, so the requester knows what to change."
        }));
    }
    let principal = match clicker(&slack, &e.team, &e.user).await {
        Ok(p) => p,
        Err(reason) => {
            return Answer::ViewErrors(json!({ "comment": reason }));
        }
    };
    tokio::spawn(async move {
        let input = json!({ "request_id": request_id, "decision": "reject", "comment": comment });
        let msg = run(&slack, &principal, "approvals.decide", input).await;
        if let tenantops_core::Via::Chat { user, .. } = principal.via()
            && let Err(e) = slack
                .api_for(e.team.id.as_ref())
                .await
                .dm(user, blocks::content(&msg))
                .await
        {
            tracing::warn!(error = %e, "could not confirm a rejection");
        }
    });
    Answer::Ack
}

/// Runs one operation as the clicking persona and renders its outcome.
async fn run(slack: &Slack, principal: &Principal, op: &str, input: serde_json::Value) -> Message {
    let spec = catalogue::find(op).expect("the operations buttons run exist");
    match slack.core.call(principal, op, input).await {
        Ok(
            outcome @ (Outcome::Done { .. }
            | Outcome::Denied { .. }
            | Outcome::PendingApproval { .. }),
        ) => render::outcome(spec, &outcome),
        Err(e) => render::error(&e),
    }
}
