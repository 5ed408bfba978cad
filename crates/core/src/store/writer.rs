//! Group commit: one writer runs the write transactions of many concurrent callers in batches
//! that share one `COMMIT` — one fsync — while each caller's work still succeeds or fails alone.
//!
//! A caller hands the writer a job: a function of a transaction. The writer takes whatever jobs
//! are waiting, opens one write transaction, and runs each job inside a savepoint of its own; a
//! job that fails is rolled back to its savepoint and the next one runs. Then the batch commits,
//! and only then is each caller answered — with its job's result, or with the commit's error
//! if the commit failed (then nothing of the batch happened). While a batch commits, the next
//! one gathers, so under load the fsync is shared by everyone who arrived during the previous
//! one, and a lone caller pays exactly one transaction, as before.
//!
//! A job runs while other callers wait: it must do database work (and cheap computation) only,
//! never wait for another job (that would deadlock the writer) or for the network.

use super::{Store, Tx};
use crate::error::{Error, Result};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// What a job tells the writer when it is done: whether to keep its changes, and how to answer
/// its caller once the batch's commit is known.
type Answer = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// A caller's work on the batch's transaction: it hands the transaction back with whether to
/// keep what it did and how to answer its caller.
type Run = Box<dyn FnOnce(Tx) -> BoxFuture<'static, (Tx, bool, Answer)> + Send>;

/// A caller's work, and how to answer the caller if the work never runs.
struct Job {
    run: Run,
    abandon: Box<dyn FnOnce(String) + Send>,
    /// A savepoint the job wants set when it starts, inside its own (set in the same round
    /// trip as the writer's).
    inner: Option<&'static str>,
}

/// The handle through which every write of this process reaches the database.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
}

/// How many jobs one batch takes at most (bounds the latency of the last job of a batch).
pub const MAX_BATCH: usize = 512;

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer task over `store`. It ends when every handle is dropped.
    pub fn spawn(store: Store) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(store, jobs));
        Self { queue }
    }

    /// Runs `work` in a write transaction shared with other callers' work, in a savepoint of
    /// its own: an `Err` from `work` rolls back exactly what `work` did. Returns `work`'s result
    /// once the transaction is durably committed (or the commit's error).
    pub async fn run<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Tx) -> BoxFuture<'static, (Tx, Result<R>)> + Send + 'static,
    {
        self.run_in(None, work).await
    }

    /// [`Writer::run`], with the savepoint `inner` already set when `work` starts (the job's
    /// own and `inner` go to the database in one round trip). `work` may roll back to it.
    pub async fn run_in<R, F>(&self, inner: Option<&'static str>, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Tx) -> BoxFuture<'static, (Tx, Result<R>)> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<R>>();
        // Whoever answers first — the job after the commit, or the writer when the job cannot
        // run — takes the reply.
        let reply = std::sync::Arc::new(std::sync::Mutex::new(Some(reply)));
        let abandoned = reply.clone();
        let job = Job {
            run: Box::new(move |tx| {
                Box::pin(async move {
                    let (tx, result) = work(tx).await;
                    let keep = result.is_ok();
                    let answer: Answer = Box::new(move |committed| {
                        if let Some(reply) = take(&reply) {
                            let _ = reply.send(match committed {
                                Ok(()) => result,
                                Err(e) => Err(Error::Internal(e)),
                            });
                        }
                    });
                    (tx, keep, answer)
                })
            }),
            abandon: Box::new(move |why| {
                if let Some(reply) = take(&abandoned) {
                    let _ = reply.send(Err(Error::Internal(why)));
                }
            }),
            inner,
        };
        self.queue
            .send(job)
            .map_err(|_| Error::Internal("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Internal("the database writer stopped before answering".into()))?
    }
}

impl Writer {
    /// [`Writer::run`] for work that borrows the transaction: `writer.write(move |tx| {
    /// Box::pin(async move { store::x::insert(tx, …).await }) })`.
    pub async fn write<R, F>(&self, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<R>> + Send + 'static,
    {
        self.run(move |mut tx| {
            Box::pin(async move {
                let result = work(&mut tx).await;
                (tx, result)
            })
        })
        .await
    }
}

async fn run(store: Store, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let Some(first) = jobs.recv().await else {
            return;
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&store, &mut batch).await;
    }
}

/// Runs and commits one batch, answering every job.
async fn commit_batch(store: &Store, batch: &mut Vec<Job>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut tx = match store.begin_write().await {
        Ok(tx) => tx,
        Err(e) => {
            let why = format!("cannot start a write transaction: {e}");
            fail_unrun(batch, &why).await;
            return;
        }
    };
    // A job alone in its batch needs no savepoint: if it fails, the transaction is rolled
    // back instead of committed (two round trips fewer for a lone caller).
    let alone = batch.len() == 1;
    let mut roll_back = false;
    // A kept job's savepoint is released together with the next job's being set (one round
    // trip), and the last one by the commit.
    let mut release_pending = false;
    let mut jobs = batch.drain(..);
    while let Some(job) = jobs.next() {
        let mut sql: Vec<String> = Vec::with_capacity(3);
        if std::mem::take(&mut release_pending) {
            sql.push("RELEASE SAVEPOINT job".into());
        }
        if !alone {
            sql.push("SAVEPOINT job".into());
        }
        if let Some(inner) = job.inner {
            sql.push(format!("SAVEPOINT {inner}"));
        }
        let set = if sql.is_empty() {
            Ok(())
        } else {
            tx.savepoints(&sql.join("; ")).await
        };
        if let Err(e) = set {
            let why = format!("the write transaction broke: {e}");
            for a in answers {
                a(Err(why.clone()));
            }
            let rest: Vec<Job> = jobs.collect();
            fail_jobs(rest, &why).await;
            return;
        }
        let Job { run, abandon, .. } = job;
        match AssertUnwindSafe(run(tx)).catch_unwind().await {
            Ok((returned, keep, answer)) => {
                tx = returned;
                let settled = if alone {
                    roll_back = !keep;
                    Ok(())
                } else if keep {
                    release_pending = true;
                    Ok(())
                } else {
                    match tx.rollback_to("job").await {
                        Ok(()) => tx.release("job").await,
                        Err(e) => Err(e),
                    }
                };
                answers.push(answer);
                if let Err(e) = settled {
                    let why = format!("the write transaction broke: {e}");
                    for a in answers {
                        a(Err(why.clone()));
                    }
                    let rest: Vec<Job> = jobs.collect();
                    fail_jobs(rest, &why).await;
                    return;
                }
            }
            Err(_) => {
                // The job panicked with the transaction: it is gone, and with it everything this
                // batch did. Nobody of it is answered as if it had committed.
                tracing::error!("a write job panicked; its batch was rolled back");
                let why = "an internal error rolled the write back; try again".to_owned();
                abandon(why.clone());
                for a in answers {
                    a(Err(why.clone()));
                }
                let rest: Vec<Job> = jobs.collect();
                fail_jobs(rest, &why).await;
                return;
            }
        }
    }
    drop(jobs);
    if roll_back {
        // Nothing to keep: the job's own error is its answer.
        if let Err(e) = tx.rollback().await {
            tracing::debug!(error = %e, "rolling back a failed lone job");
        }
        for a in answers {
            a(Ok(()));
        }
        return;
    }
    let committed = tx
        .commit()
        .await
        .map_err(|e| format!("the commit failed: {e}"));
    for a in answers {
        a(committed.clone());
    }
}

async fn fail_unrun(batch: &mut Vec<Job>, why: &str) {
    fail_jobs(std::mem::take(batch), why).await;
}

/// Answers jobs that will not run with `why`.
async fn fail_jobs(jobs: Vec<Job>, why: &str) {
    if !jobs.is_empty() {
        tracing::warn!(jobs = jobs.len(), reason = why, "write jobs not run");
    }
    for job in jobs {
        (job.abandon)(why.to_owned());
    }
}

fn take<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::on;

    async fn setup() -> (tempfile::TempDir, Store, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").into(), true)
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        on!(tx, c => sqlx::query("CREATE TABLE probe (n BIGINT PRIMARY KEY, batch BIGINT)")
            .execute(c).await.map(|_| ()))
        .unwrap();
        tx.commit().await.unwrap();
        let writer = Writer::spawn(store.clone());
        (dir, store, writer)
    }

    /// Inserts `n` and reports how many probe rows its transaction saw (its batch-mates so far).
    fn insert(n: i64, fail: bool) -> impl FnOnce(Tx) -> BoxFuture<'static, (Tx, Result<i64>)> {
        move |mut tx| {
            Box::pin(async move {
                // The first job dawdles so that the others queue behind it and share its batch.
                if n == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                let r: Result<i64> = async {
                    on!(tx, c => sqlx::query("INSERT INTO probe (n, batch) VALUES ($1, 0)")
                        .bind(n).execute(c).await.map(|_| ()))?;
                    let seen: i64 = on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM probe")
                        .fetch_one(c).await)?;
                    if fail {
                        return Err(Error::Conflict(format!("job {n} fails on purpose")));
                    }
                    Ok(seen)
                }
                .await;
                (tx, r)
            })
        }
    }

    async fn count(store: &Store) -> i64 {
        let mut tx = store.begin_read().await.unwrap();
        let n = on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM probe").fetch_one(c).await)
            .unwrap();
        tx.rollback().await.unwrap();
        n
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_job_starts_inside_the_savepoint_it_asked_for_alone_or_in_a_batch() {
        let (_dir, store, writer) = setup().await;
        // Each job inserts `n`, rolls back to its inner savepoint, then inserts `n + 100`: only
        // the second insert may survive, whether the job ran alone or shared a batch.
        let mut handles = Vec::new();
        for n in 0..12i64 {
            let w = writer.clone();
            handles.push(tokio::spawn(async move {
                w.run_in(Some("op"), move |mut tx| {
                    Box::pin(async move {
                        let r: Result<()> = async {
                            on!(tx, c => sqlx::query("INSERT INTO probe (n, batch) VALUES ($1, 0)")
                                .bind(n).execute(c).await.map(|_| ()))?;
                            tx.rollback_to("op").await?;
                            on!(tx, c => sqlx::query("INSERT INTO probe (n, batch) VALUES ($1, 0)")
                                .bind(n + 100).execute(c).await.map(|_| ()))?;
                            Ok(())
                        }
                        .await;
                        (tx, r)
                    })
                })
                .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let mut tx = store.begin_read().await.unwrap();
        let low: i64 = on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM probe WHERE n < 100")
            .fetch_one(c).await)
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!((low, count(&store).await), (0, 12));
    }

    #[tokio::test]
    async fn a_lone_job_that_fails_leaves_nothing_and_the_next_one_commits() {
        let (_dir, store, writer) = setup().await;
        let failed = writer.run(insert(7, true)).await;
        assert!(matches!(failed, Err(Error::Conflict(_))), "{failed:?}");
        assert_eq!(count(&store).await, 0);
        assert_eq!(writer.run(insert(8, false)).await.unwrap(), 1);
        assert_eq!(count(&store).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_jobs_share_a_commit_and_each_fails_alone() {
        let (_dir, store, writer) = setup().await;
        let mut handles = Vec::new();
        for n in 0..40i64 {
            let w = writer.clone();
            handles.push(tokio::spawn(
                async move { w.run(insert(n, n % 7 == 3)).await },
            ));
            if n == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        let mut max_seen = 0;
        for (n, h) in handles.into_iter().enumerate() {
            match h.await.unwrap() {
                Ok(seen) => {
                    assert_ne!(n % 7, 3, "job {n} should have failed");
                    max_seen = max_seen.max(seen);
                }
                Err(e) => {
                    assert_eq!(n % 7, 3, "job {n}: {e}");
                    assert!(e.to_string().contains("on purpose"), "{e}");
                }
            }
        }
        // Every answer came after its commit: all kept rows are visible, the failed ones are not.
        let kept = (0..40).filter(|n| n % 7 != 3).count() as i64;
        assert_eq!(count(&store).await, kept);
        // Some job saw rows of batch-mates that were not committed before it started: the
        // jobs ran in one transaction.
        assert!(max_seen > 1, "no batch formed (max seen {max_seen})");
    }

    #[tokio::test]
    async fn a_panicking_job_rolls_its_batch_back_and_the_writer_carries_on() {
        let (_dir, store, writer) = setup().await;
        let boom = writer.run(|_tx: Tx| -> BoxFuture<'static, (Tx, Result<()>)> {
            Box::pin(async move { panic!("boom") })
        });
        let err = boom.await.unwrap_err();
        assert!(err.to_string().contains("rolled the write back"), "{err}");
        assert_eq!(writer.run(insert(1, false)).await.unwrap(), 1);
        assert_eq!(count(&store).await, 1);
    }
}
