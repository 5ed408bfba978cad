//! Identity proof: what a credential proves about *which human* is acting.
//!
//! The two-person rule needs two humans, not two credentials. An admin can issue an API key for a
//! colleague, or (before this module) a chat link code for one, and then act as that colleague.
//! So every credential carries how it was obtained, and only a person's *own* proof counts where
//! it matters — deciding an approval, obtaining a chat link code:
//!
//! - a console JWT minted by the identity provider: the person's own sign-in;
//! - an API key the persona issued (or rotated) for itself, from its own proof — or the
//!   provisioning key `tenant create` handed the first admin (`api_keys.proof = 'own'`); a key
//!   issued or rotated by anyone else is `delegated`, and so is one issued through a delegated
//!   credential: proof propagates only through proof;
//! - a chat account linked with a code its person obtained from their own proof
//!   (`chat_links.proof = 'own'`), linked long enough ago (`tenants.chat_link_min_age_secs`), and
//!   not the offline sandbox's workspace (unless the tenant is a demo).

use crate::Env;
use crate::clock::to_millis;
pub use crate::config::KeyDecisions;
use crate::error::Result;
pub use crate::principal::Proof;
use crate::principal::{PersonaKind, Principal, Surface, Via};
use crate::store::{self, Tx};
use chrono::{DateTime, Utc};

/// What the principal's credential proves, read from the store now.
pub(crate) async fn of(conn: &mut Tx, principal: &Principal) -> Result<Proof> {
    match principal.via() {
        Via::Jwt => Ok(Proof::Own),
        Via::ApiKey { key_id } => Ok(crate::store::keys::proof(conn, principal.tenant(), key_id)
            .await?
            .unwrap_or(Proof::Delegated)),
        Via::Chat {
            platform,
            workspace,
            user,
        } => Ok(
            store::chat::link_standing(conn, principal.tenant(), *platform, workspace, user)
                .await?
                .map_or(Proof::Delegated, |l| {
                    // The sandbox plays people without their proof: only on demo tenants is it
                    // as good as theirs.
                    if l.sandbox && !l.demo {
                        Proof::Delegated
                    } else {
                        l.proof
                    }
                }),
        ),
        // The requester's authority, executed on two people's word; it proves nobody new.
        Via::Approval { .. } => Ok(Proof::Delegated),
    }
}

/// Why `principal` may not make a decision (`what`: "an approval decision", …) on its own
/// proof, or `None` when it may. Checked by every operation that records a decision.
pub(crate) async fn decision_refusal(
    conn: &mut Tx,
    env: &Env,
    principal: &Principal,
    what: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    if principal.kind() != PersonaKind::Human {
        return Ok(Some(format!(
            "{} personas never decide approvals; {what} needs a human",
            principal.kind().as_str()
        )));
    }
    if principal.surface() == Surface::Mcp {
        return Ok(Some(format!(
            "{what} is made by a person in chat, the console or the CLI, never through MCP: an \
             agent's client cannot be the second person"
        )));
    }
    Ok(match principal.via() {
        Via::Jwt => None,
        Via::Approval { .. } => Some(format!("{what} cannot be made by an approved request")),
        Via::ApiKey { .. } => match env.key_decisions {
            KeyDecisions::AnyKey => None,
            KeyDecisions::SignInOnly => Some(format!(
                "{what} needs your own sign-in (a console token or your linked chat account), \
                 not an API key: this deployment counts no key as proof of who is deciding"
            )),
            KeyDecisions::OwnKeysOnly => match of(conn, principal).await? {
                Proof::Own => None,
                _ => Some(format!(
                    "{what} needs your own proof of identity: this API key was issued by someone \
                     else (or through a key that was), so it does not prove who is deciding. Sign \
                     in (console token), use your linked chat account, or issue yourself a key \
                     from your own sign-in"
                )),
            },
        },
        Via::Chat {
            platform,
            workspace,
            user,
        } => {
            let Some(link) =
                store::chat::link_standing(conn, principal.tenant(), *platform, workspace, user)
                    .await?
            else {
                return Ok(Some(format!(
                    "{what}: this chat account is no longer linked"
                )));
            };
            if link.sandbox && !link.demo {
                Some(format!(
                    "{what} from the offline sandbox counts only on demo tenants: decide in the \
                     real Slack or Discord, the console or the CLI"
                ))
            } else if link.proof != Proof::Own {
                Some(format!(
                    "{what} needs a chat account you linked yourself: this link was made from a \
                     code issued by someone else (or before links carried proof). Get your own \
                     code (members.chat_link_code, signed in as yourself) and link with it \
                     again"
                ))
            } else if to_millis(now) - link.linked_at < link.min_age_secs.saturating_mul(1000) {
                let ready = crate::clock::ms_to_rfc3339(
                    link.linked_at
                        .saturating_add(link.min_age_secs.saturating_mul(1000)),
                );
                Some(format!(
                    "{what}: this chat account was linked recently; a new link counts for \
                     decisions from {ready} (the tenant's minimum link age)"
                ))
            } else {
                None
            }
        }
    })
}
