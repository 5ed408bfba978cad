//! Approval messages in chat, the same way on every platform: each request is posted to every
//! bound workspace's approval channel while it is pending, edited in place (by the stored
//! channel and message id) whenever it shows an older state, what happened is said under it,
//! and the requester is told directly once it is final.
//!
//! Messages converge for changes made by any process sharing the database: the worker syncs at
//! once on the core's notifications in this process and, every tick, every message whose
//! rendered state is behind (`Core::chat_unsynced`). With Slack and Discord both configured,
//! each platform's worker keeps its own messages, so a decision on one updates both.
//!
//! Several replicas never post or edit the same message twice for one change: a request's
//! messages are synced under a lease on that request ([`Core::hold`]), and a replica that finds
//! it held tries again shortly, then leaves it to the next tick.

use crate::render::{self, Message};
use std::future::Future;
use tenantops_core::Core;
use tenantops_core::approvals::RequestState;
use tenantops_core::chat::{Platform, PostedMessage, rendered_key};
use tenantops_core::ids::TenantId;
use tenantops_core::notify::{Notification, Notifier};
use tenantops_core::redact;
use tokio::sync::mpsc;

/// What a platform adapter provides to keep approval messages in step. Errors are messages for
/// the log.
pub trait ApprovalChannel: Clone + Send + Sync + 'static {
    /// The platform.
    const PLATFORM: Platform;
    /// The core.
    fn core(&self) -> &Core;
    /// Posts `message` to `channel` of `workspace`; returns the new message's id.
    fn post(
        &self,
        workspace: &str,
        channel: &str,
        message: &Message,
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// Replaces a posted message.
    fn edit(
        &self,
        workspace: &str,
        channel: &str,
        message_id: &str,
        message: &Message,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Says one line under a posted message (a thread reply, a message reply).
    fn reply(
        &self,
        workspace: &str,
        channel: &str,
        message_id: &str,
        line: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Tells a user directly.
    fn dm(
        &self,
        workspace: &str,
        user: &str,
        line: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// A notifier that queues the core's notifications for [`spawn_worker`], so a slow chat
/// platform never slows an operation.
pub struct QueueNotifier(mpsc::UnboundedSender<Notification>);

impl Notifier for QueueNotifier {
    fn notify(&self, notification: &Notification) {
        let _ = self.0.send(notification.clone());
    }
}

/// A notifier and the queue it fills.
pub fn notifier() -> (QueueNotifier, mpsc::UnboundedReceiver<Notification>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (QueueNotifier(tx), rx)
}

fn request_of(n: &Notification) -> Option<(&TenantId, &str)> {
    match n {
        Notification::Requested {
            tenant, request_id, ..
        }
        | Notification::Decided {
            tenant, request_id, ..
        }
        | Notification::Escalated {
            tenant, request_id, ..
        }
        | Notification::Expired { tenant, request_id }
        | Notification::Cancelled {
            tenant, request_id, ..
        }
        | Notification::BreakGlass {
            tenant, request_id, ..
        }
        | Notification::Executed {
            tenant, request_id, ..
        }
        | Notification::Failed {
            tenant, request_id, ..
        } => Some((tenant, request_id)),
        _ => None,
    }
}

/// Keeps a platform's approval messages in step until the queue closes: at once for the core's
/// notifications, and every `every` for changes made by other processes.
pub fn spawn_worker<C: ApprovalChannel>(
    chat: C,
    mut rx: mpsc::UnboundedReceiver<Notification>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let platform = C::PLATFORM.as_str();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv() => {
                    let Some(n) = n else { return };
                    if let Notification::ChatUnlinked { handle, platform: p, workspace_id, user_id, by_handle, .. } = &n {
                        if p == platform {
                            let line = format!(
                                "This {platform} account no longer acts as *{handle}* in tenantops: \
                                 *{by_handle}* unlinked it. If that is news to you, tell your security \
                                 team; to link again, ask for your own code (members.chat_link_code) \
                                 and run `/tenant link CODE`."
                            );
                            if let Err(e) = chat.dm(workspace_id, user_id, &line).await {
                                tracing::warn!(platform, error = %e, "unlinked person not told");
                            }
                        }
                        continue;
                    }
                    if let Some((tenant, request_id)) = request_of(&n) {
                        sync_or_retry(&chat, tenant, request_id).await;
                    }
                }
                _ = tick.tick() => {
                    let due = match chat.core().chat_unsynced(C::PLATFORM, 50).await {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!(platform, error = %e, "cannot list approval messages to update");
                            continue;
                        }
                    };
                    for (tenant, request_id) in due {
                        match sync_held(&chat, &tenant, &request_id).await {
                            Ok(_) => {}
                            Err(e) => tracing::warn!(platform, error = %e, "approval message not updated"),
                        }
                    }
                }
            }
        }
    })
}

/// How long a replica holds a request's messages while syncing them (a crashed holder's claim
/// lapses after this).
const SYNC_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// [`sync`] under the request's lease: `Ok(false)` when another replica is syncing it.
async fn sync_held<C: ApprovalChannel>(
    chat: &C,
    tenant: &TenantId,
    request_id: &str,
) -> Result<bool, String> {
    let core = chat.core();
    let claim = format!("sync:{}:{tenant}:{request_id}", C::PLATFORM.as_str());
    if !core
        .hold(&claim, SYNC_LEASE)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    let synced = sync(chat, tenant, request_id).await;
    if let Err(e) = core.release(&claim).await {
        tracing::warn!(error = %e, "approval message lease not released; it lapses");
    }
    synced.map(|()| true)
}

/// Syncs a request now; if another replica holds it (it may not have seen this change), tries
/// again in the background a few times before leaving it to the tick.
async fn sync_or_retry<C: ApprovalChannel>(chat: &C, tenant: &TenantId, request_id: &str) {
    let platform = C::PLATFORM.as_str();
    match sync_held(chat, tenant, request_id).await {
        Ok(true) => {}
        Ok(false) => {
            let (chat, tenant, id) = (chat.clone(), tenant.clone(), request_id.to_owned());
            tokio::spawn(async move {
                for _ in 0..10 {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    match sync_held(&chat, &tenant, &id).await {
                        Ok(true) => return,
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(platform, error = %e, "approval message not updated");
                            return;
                        }
                    }
                }
            });
        }
        Err(e) => tracing::warn!(platform, error = %e, "approval message not updated"),
    }
}

fn is_final(state: &str) -> bool {
    matches!(
        state,
        "succeeded" | "failed" | "rejected" | "expired" | "cancelled"
    )
}

/// Brings one request's messages on `C`'s platform up to date: posts it where it is missing
/// (while pending), edits it where it shows an older state and says what happened under it,
/// and tells the requester directly once it is final. One workspace failing (a deleted
/// message, a missing channel) does not hold up the others; the first error is returned, and a
/// message not brought up to date is retried on the next tick.
pub async fn sync<C: ApprovalChannel>(
    chat: &C,
    tenant: &TenantId,
    request_id: &str,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let platform = C::PLATFORM.as_str();
    let core = chat.core();
    let view = core
        .request_view(tenant, request_id)
        .await
        .map_err(|e| err(&e))?;
    let key = rendered_key(&view);
    let view_json = serde_json::to_value(&view).map_err(|e| err(&e))?;
    let message = render::approval_request(&view_json);
    // A rejection comment is typed by a person: never let a pasted secret reach a channel.
    let line = redact::text(&render::approval_status(&view_json)).into_owned();
    let posted = core
        .chat_messages(tenant, request_id)
        .await
        .map_err(|e| err(&e))?;
    let workspaces = core
        .chat_workspaces_of(tenant, C::PLATFORM)
        .await
        .map_err(|e| err(&e))?;
    let mut first_error: Option<String> = None;
    let mut became_final = false;
    for ws in workspaces {
        let Some(channel) = ws.approval_channel.as_deref() else {
            continue;
        };
        let done: Result<bool, String> = async {
            match posted
                .iter()
                .find(|m| m.platform == C::PLATFORM && m.workspace_id == ws.workspace_id)
            {
                None if view.state == RequestState::Pending => {
                    let id = chat.post(&ws.workspace_id, channel, &message).await?;
                    let m = PostedMessage {
                        platform: C::PLATFORM,
                        workspace_id: ws.workspace_id.clone(),
                        channel: channel.to_owned(),
                        message_id: id,
                        rendered: Some(key.clone()),
                    };
                    core.record_chat_message(tenant, request_id, &m)
                        .await
                        .map_err(|e| err(&e))?;
                    Ok(false)
                }
                None => Ok(false),
                Some(m) if m.rendered.as_deref() == Some(key.as_str()) => Ok(false),
                Some(m) => {
                    chat.edit(&ws.workspace_id, &m.channel, &m.message_id, &message)
                        .await?;
                    core.chat_mark_rendered(tenant, request_id, m, &key)
                        .await
                        .map_err(|e| err(&e))?;
                    // The message shows the truth now; the line under it is a courtesy.
                    if let Err(e) = chat
                        .reply(&ws.workspace_id, &m.channel, &m.message_id, &line)
                        .await
                    {
                        tracing::warn!(platform, error = %e, "approval outcome line not posted");
                    }
                    Ok(view.state.is_final()
                        && !m
                            .rendered
                            .as_deref()
                            .is_some_and(|r| is_final(r.split(':').next().unwrap_or_default())))
                }
            }
        }
        .await;
        match done {
            Ok(f) => became_final |= f,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if became_final {
        let links = core
            .chat_links_of(tenant, &view.requester_id)
            .await
            .map_err(|e| err(&e))?;
        let text = format!("Your request `{}` ({}): {line}", view.id, view.summary);
        for (_, workspace, user) in links.into_iter().filter(|l| l.0 == C::PLATFORM) {
            if let Err(e) = chat.dm(&workspace, &user, &text).await {
                tracing::warn!(platform, error = %e, "requester not told by direct message");
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
