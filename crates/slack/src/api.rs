//! Outbound Slack Web API calls (slack-morphism), against a configurable base URL so tests can
//! point them at a fake Slack on 127.0.0.1.

use slack_morphism::prelude::*;
use std::sync::Arc;

/// Why a Slack call failed (the token never appears in it).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bot token is configured.
    #[error("no Slack bot token: set TENANTOPS_SLACK_BOT_TOKEN")]
    NoToken,
    /// Slack (or the network) refused the call.
    #[error("Slack API {method}: {message}")]
    Call {
        /// The Web API method.
        method: &'static str,
        /// What went wrong.
        message: String,
    },
}

fn call_err(method: &'static str) -> impl Fn(slack_morphism::errors::SlackClientError) -> ApiError {
    move |e| ApiError::Call {
        method,
        message: e.to_string(),
    }
}

/// The Web API client with the bot token.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackHyperClient>,
    token: Option<SlackApiToken>,
}

/// A file to upload.
pub struct Upload {
    /// File name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// Title shown in Slack.
    pub title: String,
}

impl SlackApi {
    /// A client for `api_url` (e.g. `https://slack.com/api/`); plain `http://` is accepted so
    /// tests can use a local fake.
    pub fn new(api_url: &str, bot_token: Option<String>) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                std::io::Error::other(format!(
                    "no TLS root certificates on this machine ({e}); install ca-certificates"
                ))
            })?
            .https_or_http()
            .enable_http1()
            .build();
        // slack-morphism joins `{base}/{method}`.
        let base = api_url.trim_end_matches('/');
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(base);
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: bot_token.map(|t| SlackApiToken::new(t.into())),
        })
    }

    /// The same client acting with another bot token (a workspace installed through OAuth).
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            client: self.client.clone(),
            token: Some(SlackApiToken::new(token.into())),
        }
    }

    /// The underlying client (Socket Mode listens through it).
    pub fn client(&self) -> Arc<SlackHyperClient> {
        self.client.clone()
    }

    fn token(&self) -> Result<&SlackApiToken, ApiError> {
        self.token.as_ref().ok_or(ApiError::NoToken)
    }

    /// Posts a message; returns its `ts`.
    pub async fn post(
        &self,
        channel: &str,
        content: SlackMessageContent,
        thread_ts: Option<&str>,
    ) -> Result<String, ApiError> {
        let session = self.client.open_session(self.token()?);
        let mut req = SlackApiChatPostMessageRequest::new(channel.into(), content);
        if let Some(ts) = thread_ts {
            req = req.with_thread_ts(ts.into());
        }
        let res = session
            .chat_post_message(&req)
            .await
            .map_err(call_err("chat.postMessage"))?;
        Ok(res.ts.to_string())
    }

    /// Edits a message in place.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> Result<(), ApiError> {
        let session = self.client.open_session(self.token()?);
        let req = SlackApiChatUpdateRequest::new(channel.into(), content, ts.into());
        session
            .chat_update(&req)
            .await
            .map_err(call_err("chat.update"))?;
        Ok(())
    }

    /// Shows a message only to `user` in `channel`.
    pub async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        content: SlackMessageContent,
    ) -> Result<(), ApiError> {
        let session = self.client.open_session(self.token()?);
        let req = SlackApiChatPostEphemeralRequest::new(channel.into(), user.into(), content);
        session
            .chat_post_ephemeral(&req)
            .await
            .map_err(call_err("chat.postEphemeral"))?;
        Ok(())
    }

    /// The direct-message channel with `user`.
    pub async fn dm_channel(&self, user: &str) -> Result<String, ApiError> {
        let session = self.client.open_session(self.token()?);
        let req = SlackApiConversationsOpenRequest::new().with_users(vec![user.into()]);
        let opened = session
            .conversations_open(&req)
            .await
            .map_err(call_err("conversations.open"))?;
        Ok(opened.channel.id.to_string())
    }

    /// Sends a direct message to `user`.
    pub async fn dm(&self, user: &str, content: SlackMessageContent) -> Result<String, ApiError> {
        let channel = self.dm_channel(user).await?;
        self.post(&channel, content, None).await
    }

    /// Whether `user` is an admin or owner of the workspace `team` (Slack's `users.info`): the
    /// proof a workspace is bound by one of its own admins. A user of another workspace (in a
    /// shared channel), a deleted user or a guest never is.
    pub async fn is_workspace_admin(&self, user: &str, team: &str) -> Result<bool, ApiError> {
        let session = self.client.open_session(self.token()?);
        let info = session
            .users_info(&SlackApiUsersInfoRequest::new(user.into()))
            .await
            .map_err(call_err("users.info"))?;
        let u = info.user;
        let flag = |f: Option<bool>| f.unwrap_or(false);
        Ok(u.team_id.as_ref().is_some_and(|t| t.to_string() == team)
            && !flag(u.deleted)
            && !flag(u.flags.is_restricted)
            && !flag(u.flags.is_ultra_restricted)
            && (flag(u.flags.is_admin) || flag(u.flags.is_owner) || flag(u.flags.is_primary_owner)))
    }

    /// Opens a modal.
    pub async fn open_view(&self, trigger_id: &str, view: SlackView) -> Result<(), ApiError> {
        let session = self.client.open_session(self.token()?);
        let req = SlackApiViewsOpenRequest::new(trigger_id.into(), view);
        session
            .views_open(&req)
            .await
            .map_err(call_err("views.open"))?;
        Ok(())
    }

    /// Uploads a file into `channel` (files.getUploadURLExternal, the upload, then
    /// files.completeUploadExternal).
    pub async fn upload(&self, channel: &str, file: Upload) -> Result<(), ApiError> {
        let session = self.client.open_session(self.token()?);
        let url = session
            .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
                file.filename.clone(),
                file.bytes.len(),
            ))
            .await
            .map_err(call_err("files.getUploadURLExternal"))?;
        session
            .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                url.upload_url,
                file.bytes,
                file.content_type,
            ))
            .await
            .map_err(call_err("files upload"))?;
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(url.file_id).with_title(file.title),
        ])
        .with_channel_id(channel.into());
        session
            .files_complete_upload_external(&complete)
            .await
            .map_err(call_err("files.completeUploadExternal"))?;
        Ok(())
    }

    /// Answers through a command's or click's `response_url`: visible only to the person who
    /// typed or clicked; `replace_original` edits the message that carried the button.
    pub async fn respond(
        &self,
        response_url: &SlackResponseUrl,
        content: SlackMessageContent,
        replace_original: bool,
    ) -> Result<(), ApiError> {
        let mut msg = SlackApiPostWebhookMessageRequest::new(content);
        if replace_original {
            msg = msg.with_replace_original(true);
        }
        self.client
            .respond_to_event(response_url, &msg)
            .await
            .map_err(call_err("response_url"))?;
        Ok(())
    }

    /// Who this token posts as (`auth.test`): the bot's user id and bot id.
    pub async fn identity(&self) -> Result<Identity, ApiError> {
        let session = self.client.open_session(self.token()?);
        let me = session.auth_test().await.map_err(read_err("auth.test"))?;
        Ok(Identity {
            user_id: me.user_id.to_string(),
            bot_id: me.bot_id.map(|b| b.to_string()),
        })
    }

    /// A channel's top-level messages, newest first (`conversations.history`, pages of up to
    /// 200), reading at most `max` messages. Thread replies are not part of a channel's
    /// history. Decoded leniently: a message shape this client does not know never fails the
    /// read.
    pub async fn history(
        &self,
        channel: &str,
        max: usize,
    ) -> Result<Vec<HistoryMessage>, ApiError> {
        let session = self.client.open_session(self.token()?);
        let mut out: Vec<HistoryMessage> = Vec::new();
        let mut cursor: Option<String> = None;
        while out.len() < max {
            let limit = (max - out.len()).min(200).to_string();
            let params = vec![
                ("channel", Some(channel)),
                ("limit", Some(limit.as_str())),
                ("cursor", cursor.as_deref()),
            ];
            let page: HistoryPage = session
                .http_session_api
                .http_get("conversations.history", &params, None)
                .await
                .map_err(read_err("conversations.history"))?;
            out.extend(page.messages);
            cursor = page
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if !page.has_more.unwrap_or(false) || cursor.is_none() {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }
}

/// Who a bot token posts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The bot user (`U…`) its messages carry as `user`.
    pub user_id: String,
    /// The bot (`B…`) its messages carry as `bot_id`.
    pub bot_id: Option<String>,
}

/// One message of a channel's history: the fields tenantops reads.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct HistoryMessage {
    /// Its timestamp, which is its id.
    pub ts: String,
    /// Its text (for a message with blocks, the text it was posted with).
    #[serde(default)]
    pub text: Option<String>,
    /// The user who posted it (a bot's messages carry the bot user).
    #[serde(default)]
    pub user: Option<String>,
    /// The bot that posted it.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// `channel_join`, `bot_message`, … (none for a plain message).
    #[serde(default)]
    pub subtype: Option<String>,
    /// Set when the message started a thread or was broadcast from one.
    #[serde(default)]
    pub thread_ts: Option<String>,
}

#[derive(serde::Deserialize)]
struct HistoryPage {
    #[serde(default)]
    messages: Vec<HistoryMessage>,
    #[serde(default)]
    has_more: Option<bool>,
    #[serde(default)]
    response_metadata: Option<PageMeta>,
}

#[derive(serde::Deserialize)]
struct PageMeta {
    #[serde(default)]
    next_cursor: Option<String>,
}

/// A read's error in one line, with what to do for the refusals a misconfigured app gets.
fn read_err(method: &'static str) -> impl Fn(slack_morphism::errors::SlackClientError) -> ApiError {
    use slack_morphism::errors::SlackClientError as E;
    move |e| {
        let message = match &e {
            E::ApiError(api) => {
                let hint = match api.code.as_str() {
                    "not_in_channel" => "; invite the bot to the channel (/invite @tenantops)",
                    "channel_not_found" => {
                        "; the channel does not exist or the bot cannot see it (a private \
                         channel needs the bot invited)"
                    }
                    "missing_scope" => {
                        "; the app needs the channels:history (and, for a private channel, \
                         groups:history) scope: add it under OAuth & Permissions and reinstall"
                    }
                    "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" => {
                        "; the bot token is not valid (TENANTOPS_SLACK_BOT_TOKEN, or reinstall \
                         the app in that workspace)"
                    }
                    _ => "",
                };
                format!("{}{hint}", api.code)
            }
            E::RateLimitError(limit) => match limit.retry_after {
                Some(after) => format!("rate limited; try again in {}s", after.as_secs()),
                None => "rate limited; try again in a minute".into(),
            },
            E::HttpProtocolError(protocol) => {
                // The innermost cause says it best ("Connection refused", a TLS failure).
                let mut cause: Option<&(dyn std::error::Error + 'static)> = protocol
                    .cause
                    .as_deref()
                    .map(|c| c as &(dyn std::error::Error + 'static));
                let mut last = String::from("no response");
                while let Some(c) = cause {
                    last = c.to_string();
                    cause = c.source();
                }
                format!(
                    "cannot reach Slack ({last}); check TENANTOPS_SLACK_API_URL and the network"
                )
            }
            E::HttpError(http) => format!("Slack answered HTTP {}", http.status_code),
            other => other
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        ApiError::Call { method, message }
    }
}
