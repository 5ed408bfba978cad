//! Socket Mode: the same commands, clicks and events over Slack's WebSocket, opened from here
//! with the app-level token, so a team can run tenantops with no public URL. Every handler is
//! the one the HTTP endpoints use; slack-morphism acknowledges each envelope when the handler
//! returns, which is why slow work continues in the background and answers through
//! `response_url`. Redelivered envelopes carry the same trigger id or action timestamp, so they
//! are recognised and not acted on twice.

use crate::commands;
use crate::interactions::{self, Answer};
use crate::{Slack, blocks};
use slack_morphism::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use tenantops_core::chat::Platform;

type Client = Arc<SlackHyperClient>;

async fn state(states: &SlackClientEventsUserState) -> Option<Slack> {
    states.read().await.get_user_state::<Slack>().cloned()
}

fn missing_state() -> Box<dyn std::error::Error + Send + Sync> {
    "the Slack surface is not registered with the Socket Mode listener".into()
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Client,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let slack = state(&states).await.ok_or_else(missing_state)?;
    let first = slack
        .core
        .first_delivery(Platform::Slack, &format!("cmd:{}", event.trigger_id))
        .await
        .unwrap_or(false);
    if !first {
        return Ok(SlackCommandEventResponse::new(blocks::text(
            "Already handled this command.",
        )));
    }
    let reply = commands::handle(slack, event).await;
    let response_type = if reply.in_channel {
        SlackMessageResponseType::InChannel
    } else {
        SlackMessageResponseType::Ephemeral
    };
    Ok(
        SlackCommandEventResponse::new(blocks::content(&reply.message))
            .with_response_type(response_type),
    )
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Client,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let slack = state(&states).await.ok_or_else(missing_state)?;
    Ok(match interactions::handle(slack, event).await {
        Answer::Ack => SlackInteractionResponse::Empty,
        Answer::ViewErrors(errors) => {
            let errors: HashMap<String, String> = errors
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(errors))
                .into()
        }
    })
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Client,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let slack = state(&states).await.ok_or_else(missing_state)?;
    let first = slack
        .core
        .first_delivery(Platform::Slack, &format!("event:{}", event.event_id))
        .await
        .unwrap_or(false);
    if first {
        tracing::debug!(event_id = %event.event_id, "Slack event (Socket Mode)");
    }
    Ok(())
}

/// A running Socket Mode connection.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
}

impl SocketMode {
    /// Connects with the app-level token (`xapp-…`) and starts receiving.
    pub async fn start(slack: Slack, app_token: &str) -> Result<Self, String> {
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(slack.api.client())
                .with_error_handler(|err, _client, _states| {
                    tracing::warn!(error = %err, "Slack Socket Mode handler failed");
                    axum::http::StatusCode::OK
                })
                .with_user_state(slack),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_interaction_events(on_interaction)
            .with_push_events(on_push);
        let listener = SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new(),
            environment,
            callbacks,
        );
        listener
            .listen_for(&SlackApiToken::new(app_token.into()))
            .await
            .map_err(|e| format!("Slack Socket Mode: cannot open a connection: {e}"))?;
        listener.start().await;
        Ok(Self { listener })
    }

    /// Closes the connection.
    pub async fn shutdown(&self) {
        self.listener.shutdown().await;
    }
}
