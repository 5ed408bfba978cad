//! Appending entries for calls that write nothing else — reads, refusals, failures — without a
//! commit each: the [`Appender`] gathers the entries of concurrent callers and appends them in
//! one writer job, one signed checkpoint per tenant, which then shares its commit with whatever
//! else the writer batched. A caller is answered once its entry is durable. And [`Signers`]: each
//! tenant's checkpoint signer, derived from the master key once.

use super::checkpoint::CheckpointSigner;
use super::{Draft, record_at};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::secrets::MasterKey;
use crate::store::writer::Writer;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Entries one writer job appends at most.
const MAX_GATHERED: usize = 4096;

/// Each tenant's checkpoint signer, derived once and kept: deriving costs an HKDF and a key
/// expansion, and a kept signer remembers its last note, which spares the signature check of
/// the ledger head on the next append ([`CheckpointSigner::signed_by_me`]).
#[derive(Default)]
pub struct Signers {
    kept: Mutex<HashMap<TenantId, Arc<CheckpointSigner>>>,
}

/// Signers kept at most; past it the cache starts over (each is re-derived on its next use).
const MAX_KEPT: usize = 100_000;

impl Signers {
    /// The tenant's signer.
    pub fn get(&self, master: &MasterKey, tenant: &TenantId) -> Result<Arc<CheckpointSigner>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(signer) = kept.get(tenant) {
            return Ok(signer.clone());
        }
        let signer = Arc::new(super::signer(master, tenant)?);
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(tenant.clone(), signer.clone());
        Ok(signer)
    }
}

impl std::fmt::Debug for Signers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signers").finish_non_exhaustive()
    }
}

/// An entry waiting to be appended, and its caller.
struct Waiting {
    tenant: TenantId,
    signer: Arc<CheckpointSigner>,
    at: DateTime<Utc>,
    draft: Draft,
    reply: oneshot::Sender<Result<()>>,
}

/// The handle callers append through.
#[derive(Clone, Debug)]
pub struct Appender {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Appender {
    /// Starts the appender task over `writer`. It ends when every handle is dropped.
    pub fn spawn(writer: Writer) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, waiting));
        Self { queue }
    }

    /// Appends one entry to the tenant's ledger; returns once it is durably committed.
    pub async fn append(
        &self,
        tenant: &TenantId,
        signer: Arc<CheckpointSigner>,
        at: DateTime<Utc>,
        draft: Draft,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Waiting {
                tenant: tenant.clone(),
                signer,
                at,
                draft,
                reply,
            })
            .map_err(|_| Error::Internal("the audit appender has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Internal("the audit appender stopped before answering".into()))?
    }
}

/// One tenant's gathered entries.
struct Group {
    tenant: TenantId,
    signer: Arc<CheckpointSigner>,
    entries: Vec<(DateTime<Utc>, Draft)>,
    replies: Vec<oneshot::Sender<Result<()>>>,
}

async fn run(writer: Writer, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let mut gathered = Vec::with_capacity(64);
    loop {
        // Waits for the first entry, then takes whatever else is waiting (while the previous
        // job committed, more arrived).
        if waiting.recv_many(&mut gathered, MAX_GATHERED).await == 0 {
            return;
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<TenantId, usize> = HashMap::new();
        for w in gathered.drain(..) {
            let i = *index.entry(w.tenant.clone()).or_insert_with(|| {
                groups.push(Group {
                    tenant: w.tenant.clone(),
                    signer: w.signer.clone(),
                    entries: Vec::new(),
                    replies: Vec::new(),
                });
                groups.len() - 1
            });
            groups[i].entries.push((w.at, w.draft));
            groups[i].replies.push(w.reply);
        }
        let (work, replies): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .map(|g| ((g.tenant, g.signer, g.entries), g.replies))
            .unzip();
        // Each tenant's entries in a savepoint of their own: one tenant's broken head (tampered
        // with) fails its callers only.
        let appended = writer
            .write(move |tx| {
                Box::pin(async move {
                    let mut outcomes = Vec::with_capacity(work.len());
                    for (tenant, signer, entries) in work {
                        tx.savepoint("append").await?;
                        match record_at(tx, &tenant, &signer, entries).await {
                            Ok(_) => {
                                tx.release("append").await?;
                                outcomes.push(Ok(()));
                            }
                            Err(e) => {
                                tx.rollback_to("append").await?;
                                tx.release("append").await?;
                                outcomes.push(Err(e.to_string()));
                            }
                        }
                    }
                    Ok(outcomes)
                })
            })
            .await;
        match appended {
            Ok(outcomes) => {
                for (outcome, replies) in outcomes.into_iter().zip(replies) {
                    for reply in replies {
                        let _ = reply.send(outcome.clone().map_err(Error::Internal));
                    }
                }
            }
            Err(e) => {
                let why = e.to_string();
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(Error::Internal(why.clone())));
                }
            }
        }
    }
}
