//! The audit ledger's rows: entries, the running head of each tenant's ledger, the checkpoints
//! kept for history, and the outbox of checkpoint publications (`audit_publications`).
//!
//! The rules — chaining, signing, what is due for publication — live in [`crate::ledger`]; this
//! module reads and writes rows.

use super::{Tx, on};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

/// Why a checkpoint is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Someone asked (`audit.publish_checkpoint`).
    OnDemand,
    /// The schedule of the `serve` worker.
    Scheduled,
}

impl Reason {
    /// `on_demand` or `scheduled`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OnDemand => "on_demand",
            Reason::Scheduled => "scheduled",
        }
    }

    /// Parses the stored name; an unknown value is an error, never a silent default.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "on_demand" => Ok(Reason::OnDemand),
            "scheduled" => Ok(Reason::Scheduled),
            other => Err(Error::Internal(format!(
                "unknown publication reason `{other}` in the store"
            ))),
        }
    }
}

/// A ledger's head as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct HeadRow {
    /// Entries in the ledger.
    pub size: i64,
    /// Leaf hash of the last entry (zeros when empty).
    pub last_hash: Vec<u8>,
    /// The compact Merkle range.
    pub frontier: Vec<u8>,
    /// The latest signed checkpoint.
    pub checkpoint: String,
}

/// A ledger's head, to store.
pub(crate) struct Head<'a> {
    /// Entries in the ledger.
    pub size: i64,
    /// Leaf hash of the last entry.
    pub last_hash: &'a [u8],
    /// The compact Merkle range.
    pub frontier: &'a [u8],
    /// The signed checkpoint of this head.
    pub checkpoint: &'a str,
}

/// Creates the head of a new tenant's ledger.
pub(crate) async fn insert_head(tx: &mut Tx, tenant: &TenantId, h: &Head<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO audit_heads (tenant_id, size, last_hash, frontier, checkpoint) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant.as_str())
    .bind(h.size)
    .bind(h.last_hash)
    .bind(h.frontier)
    .bind(h.checkpoint)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The head of the tenant's ledger, if it has one.
pub(crate) async fn head(tx: &mut Tx, tenant: &TenantId) -> Result<Option<HeadRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT size, last_hash, frontier, checkpoint FROM audit_heads WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// Moves the head of the tenant's ledger.
pub(crate) async fn update_head(tx: &mut Tx, tenant: &TenantId, h: &Head<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE audit_heads SET size = $1, last_hash = $2, frontier = $3, checkpoint = $4 \
         WHERE tenant_id = $5",
    )
    .bind(h.size)
    .bind(h.last_hash)
    .bind(h.frontier)
    .bind(h.checkpoint)
    .bind(tenant.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The size and signed checkpoint of the tenant's head, if it has a ledger.
pub(crate) async fn head_checkpoint(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<Option<(i64, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT size, checkpoint FROM audit_heads WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// The size of the tenant's ledger, if it has one.
pub(crate) async fn head_size(tx: &mut Tx, tenant: &TenantId) -> Result<Option<i64>> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT size FROM audit_heads WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(c)
        .await)?,
    )
}

/// Rows per multi-row INSERT when appending entries. sqlx looks every numbered parameter up by
/// name in SQLite, at a cost that grows with the parameters of the statement: 64 rows (130
/// parameters) append as fast as 128 rows with anonymous parameters did.
const INSERT_CHUNK: usize = 64;

/// `INSERT INTO audit_entries … VALUES ($1, CAST($2 AS BIGINT) + 0, $3, $4), ($1, … + 1, $5,
/// $6), …` for `rows` consecutive entries, built from constants only: the tenant (`$1`) and the
/// first sequence number (`$2`) are bound once, so a row costs two parameters.
fn insert_entries_sql(rows: usize) -> String {
    insert_entries_sql_from(rows, 3)
}

/// [`insert_entries_sql`] with the rows' parameters from `$first` on.
fn insert_entries_sql_from(rows: usize, first: usize) -> String {
    let mut sql =
        String::from("INSERT INTO audit_entries (tenant_id, seq, body, leaf_hash) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "($1, CAST($2 AS BIGINT) + {r}, ${}, ${})",
            first + 2 * r,
            first + 1 + 2 * r
        ));
    }
    sql
}

/// Appends `entries` as entries `first_seq`, `first_seq + 1`, … and moves the head to `h`. On
/// PostgreSQL, where each statement is a network round trip inside the replicas' one write
/// lock, an append of up to [`INSERT_CHUNK`] entries and the head's move are one statement (a
/// data-modifying `WITH`); SQLite, which has none, runs the two.
pub(crate) async fn append(
    tx: &mut Tx,
    tenant: &TenantId,
    first_seq: i64,
    entries: &[NewEntry<'_>],
    h: &Head<'_>,
) -> Result<()> {
    if tx.engine() != super::Engine::Postgres || entries.is_empty() || entries.len() > INSERT_CHUNK
    {
        insert_entries(tx, tenant, first_seq, entries).await?;
        return update_head(tx, tenant, h).await;
    }
    let sql = format!(
        "WITH appended AS ({}) UPDATE audit_heads SET size = $3, last_hash = $4, frontier = $5, \
         checkpoint = $6 WHERE tenant_id = $1",
        insert_entries_sql_from(entries.len(), 7)
    );
    on!(tx, c => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(first_seq)
            .bind(h.size)
            .bind(h.last_hash)
            .bind(h.frontier)
            .bind(h.checkpoint);
        for e in entries {
            q = q.bind(e.body).bind(e.leaf_hash);
        }
        q.execute(c).await.map(|_| ())
    })?;
    Ok(())
}

/// An entry to append: its body and leaf hash.
pub(crate) struct NewEntry<'a> {
    /// The body, exactly as hashed.
    pub body: &'a str,
    /// `SHA-256(0x00 || body)`.
    pub leaf_hash: &'a [u8],
}

/// Appends `entries` to the tenant's ledger as entries `first_seq`, `first_seq + 1`, …, many
/// rows per statement.
pub(crate) async fn insert_entries(
    tx: &mut Tx,
    tenant: &TenantId,
    first_seq: i64,
    entries: &[NewEntry<'_>],
) -> Result<()> {
    static FULL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| insert_entries_sql(INSERT_CHUNK));
    let mut seq = first_seq;
    for chunk in entries.chunks(INSERT_CHUNK) {
        let sql = if chunk.len() == INSERT_CHUNK {
            FULL.clone()
        } else {
            insert_entries_sql(chunk.len())
        };
        on!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(seq);
            for e in chunk {
                q = q.bind(e.body).bind(e.leaf_hash);
            }
            q.execute(c).await.map(|_| ())
        })?;
        seq += chunk.len() as i64;
    }
    Ok(())
}

/// Keeps a checkpoint in the tenant's history (once per size).
pub(crate) async fn keep_checkpoint(
    tx: &mut Tx,
    tenant: &TenantId,
    size: i64,
    note: &str,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO audit_checkpoints (tenant_id, size, note) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, size) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(size)
    .bind(note)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The checkpoints kept in the tenant's history, by size.
pub(crate) async fn kept_checkpoints(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<(i64, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT size, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// The leaf hashes of the tenant's entries below `size`, in order.
pub(crate) async fn leaf_hashes(tx: &mut Tx, tenant: &TenantId, size: i64) -> Result<Vec<Vec<u8>>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT leaf_hash FROM audit_entries WHERE tenant_id = $1 AND seq < $2 ORDER BY seq",
    )
    .bind(tenant.as_str())
    .bind(size)
    .fetch_all(c)
    .await)?)
}

/// The body of entry `seq` of the tenant's ledger, if it exists.
pub(crate) async fn body(tx: &mut Tx, tenant: &TenantId, seq: i64) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT body FROM audit_entries WHERE tenant_id = $1 AND seq = $2",
    )
    .bind(tenant.as_str())
    .bind(seq)
    .fetch_optional(c)
    .await)?)
}

/// A stored entry: sequence number, body, leaf hash.
pub(crate) type EntryRow = (i64, String, Vec<u8>);

/// Every entry of the tenant's ledger in order, streamed (a ledger may not fit in memory).
pub(crate) fn entries<'a>(tx: &'a mut Tx, tenant: &'a TenantId) -> BoxStream<'a, Result<EntryRow>> {
    on!(tx, c => sqlx::query_as::<_, EntryRow>(
        "SELECT seq, body, leaf_hash FROM audit_entries WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant.as_str())
    .fetch(c)
    .map_err(Error::from)
    .boxed())
}

/// Every entry body of the tenant's ledger in order, streamed.
pub(crate) fn bodies<'a>(tx: &'a mut Tx, tenant: &'a TenantId) -> BoxStream<'a, Result<String>> {
    on!(tx, c => sqlx::query_scalar::<_, String>(
        "SELECT body FROM audit_entries WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant.as_str())
    .fetch(c)
    .map_err(Error::from)
    .boxed())
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The `op` of an entry body.
fn op_of(body: &str) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Op {
        op: String,
    }
    serde_json::from_str::<Op>(body)
        .map(|o| o.op)
        .map_err(|e| Error::Internal(format!("corrupt audit entry: {e}")))
}

/// The bodies of the tenant's newest entries before `before`, newest first, at most `limit`;
/// with `op`, only entries of that operation.
pub(crate) async fn recent_bodies(
    tx: &mut Tx,
    tenant: &TenantId,
    before: i64,
    op: Option<&str>,
    limit: i64,
) -> Result<Vec<String>> {
    let Some(op) = op else {
        return Ok(on!(tx, c => sqlx::query_scalar(
            "SELECT body FROM audit_entries WHERE tenant_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(c)
        .await)?);
    };
    // SQLite and PostgreSQL share no JSON function: the text of a body names its operation as
    // `"op":"<op>"` (canonical JSON), so LIKE narrows the rows to those that mention it, and the
    // `op` field of each is compared exactly here (a detail may mention the op too). Pages are
    // read until `limit` entries matched or the ledger is exhausted.
    let quoted =
        serde_json::to_string(op).map_err(|e| Error::Internal(format!("quote audit op: {e}")))?;
    let pattern = format!("%\"op\":{}%", like_escape(&quoted));
    let page = limit.max(64);
    let mut out = Vec::new();
    let mut before = before;
    loop {
        let rows: Vec<(i64, String)> = on!(tx, c => sqlx::query_as(
            "SELECT seq, body FROM audit_entries WHERE tenant_id = $1 AND seq < $2 \
             AND body LIKE $3 ESCAPE '\\' ORDER BY seq DESC LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(before)
        .bind(&pattern)
        .bind(page)
        .fetch_all(c)
        .await)?;
        let full = rows.len() as i64 == page;
        for (seq, body) in rows {
            before = seq;
            if op_of(&body)? == op {
                out.push(body);
                if out.len() as i64 == limit {
                    return Ok(out);
                }
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

/// The verifier key stored for the tenant (`None` when there is no such tenant). Never a trust
/// anchor: it sits beside the data it would vouch for.
pub(crate) async fn stored_verifier(tx: &mut Tx, tenant: &TenantId) -> Result<Option<String>> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT audit_verifier FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_optional(c)
        .await)?,
    )
}

/// The publication of the tenant waiting to be posted, if any.
pub(crate) async fn waiting_publication(tx: &mut Tx, tenant: &TenantId) -> Result<Option<i64>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT id FROM audit_publications WHERE tenant_id = $1 AND state = 'pending' \
         ORDER BY id LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// Queues a publication; returns its id (numbered by the database).
pub(crate) async fn insert_publication(
    tx: &mut Tx,
    tenant: &TenantId,
    reason: Reason,
    requested_by: Option<&str>,
    now_ms: i64,
) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "INSERT INTO audit_publications (tenant_id, reason, requested_by, requested_at, not_before) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(tenant.as_str())
    .bind(reason.as_str())
    .bind(requested_by)
    .bind(now_ms)
    .fetch_one(c)
    .await)?)
}

/// When the tenant's latest publication was posted and the ledger's size after its entry.
pub(crate) async fn last_published(tx: &mut Tx, tenant: &TenantId) -> Result<Option<(i64, i64)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT published_at, head_after FROM audit_publications \
         WHERE tenant_id = $1 AND state = 'published' ORDER BY published_at DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// A publication a worker claimed.
pub(crate) struct ClaimedRow {
    /// Its id.
    pub id: i64,
    /// Its tenant.
    pub tenant: TenantId,
    /// Why it was queued.
    pub reason: Reason,
    /// Who asked, when on demand.
    pub requested_by: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// `$first, $first+1, …` for `n` parameters (built from constants only).
fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Claims, until `lease_until`, the oldest waiting publication (due by `now`, not leased) of a
/// tenant that was not posted to since `posted_since` and has a destination on one of
/// `platforms`; counts the attempt.
pub(crate) async fn claim_publication(
    tx: &mut Tx,
    platforms: &[&str],
    now: i64,
    lease_until: i64,
    posted_since: i64,
) -> Result<Option<ClaimedRow>> {
    if platforms.is_empty() {
        return Ok(None);
    }
    // The platform list is the one dynamic part: `IN ($4, $5, …)`, one parameter per platform.
    // The claim conditions are repeated on the outer row so that a concurrent claimer on an
    // engine that re-checks updated rows (PostgreSQL, READ COMMITTED) cannot take it twice.
    let sql = format!(
        "UPDATE audit_publications SET lease_until = $1, attempts = attempts + 1 \
         WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $2) AND id = \
         (SELECT a.id FROM audit_publications a WHERE a.state = 'pending' AND a.not_before <= $2 \
          AND (a.lease_until IS NULL OR a.lease_until < $2) \
          AND NOT EXISTS (SELECT 1 FROM audit_publications p WHERE p.tenant_id = a.tenant_id \
              AND p.state = 'published' AND p.published_at > $3) \
          AND EXISTS (SELECT 1 FROM chat_workspaces w WHERE w.tenant_id = a.tenant_id \
              AND w.approval_channel IS NOT NULL AND NOT w.sandbox AND w.platform IN ({})) \
          ORDER BY a.id LIMIT 1) \
         RETURNING id, tenant_id, reason, requested_by, attempts",
        numbered(4, platforms.len())
    );
    let row: Option<(i64, String, String, Option<String>, i64)> = on!(tx, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lease_until)
            .bind(now)
            .bind(posted_since);
        for p in platforms {
            q = q.bind(*p);
        }
        q.fetch_optional(c).await
    })?;
    row.map(|(id, tenant, reason, requested_by, attempts)| {
        Ok(ClaimedRow {
            id,
            tenant: TenantId::from_db(tenant),
            reason: Reason::parse(&reason)?,
            requested_by,
            attempts,
        })
    })
    .transpose()
}

/// Marks a publication posted: the size of the checkpoint posted, when, the ledger's size
/// after its entry, where it went (JSON) and the first failure, if any.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mark_published(
    tx: &mut Tx,
    tenant: &TenantId,
    id: i64,
    size: i64,
    at: i64,
    head_after: i64,
    posted: &str,
    last_error: Option<&str>,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE audit_publications SET state = 'published', size = $1, published_at = $2, \
         head_after = $3, posted = $4, last_error = $5, lease_until = NULL \
         WHERE tenant_id = $6 AND id = $7",
    )
    .bind(size)
    .bind(at)
    .bind(head_after)
    .bind(posted)
    .bind(last_error)
    .bind(tenant.as_str())
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Gives a publication up.
pub(crate) async fn mark_given_up(
    tx: &mut Tx,
    tenant: &TenantId,
    id: i64,
    last_error: Option<&str>,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE audit_publications SET state = 'failed', last_error = $1, lease_until = NULL \
         WHERE tenant_id = $2 AND id = $3",
    )
    .bind(last_error)
    .bind(tenant.as_str())
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Releases a publication to be retried from `not_before`.
pub(crate) async fn retry_publication(
    tx: &mut Tx,
    tenant: &TenantId,
    id: i64,
    not_before: i64,
    last_error: Option<&str>,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE audit_publications SET not_before = $1, last_error = $2, lease_until = NULL \
         WHERE tenant_id = $3 AND id = $4",
    )
    .bind(not_before)
    .bind(last_error)
    .bind(tenant.as_str())
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_inserts_number_every_parameter() {
        assert_eq!(
            insert_entries_sql(2),
            "INSERT INTO audit_entries (tenant_id, seq, body, leaf_hash) VALUES \
             ($1, CAST($2 AS BIGINT) + 0, $3, $4), ($1, CAST($2 AS BIGINT) + 1, $5, $6)"
        );
        assert_eq!(numbered(4, 3), "$4, $5, $6");
        // After the head's four parameters ($3–$6), the rows' start at $7.
        assert!(insert_entries_sql_from(2, 7).ends_with(
            "($1, CAST($2 AS BIGINT) + 0, $7, $8), ($1, CAST($2 AS BIGINT) + 1, $9, $10)"
        ));
    }

    #[test]
    fn like_patterns_match_only_the_literal_text() {
        assert_eq!(like_escape(r#""chat_bind%\""#), r#""chat\_bind\%\\""#);
    }

    #[tokio::test]
    async fn entries_of_an_operation_are_found_exactly_across_pages_and_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db").into(), true)
            .await
            .unwrap();
        let tenant = TenantId::from_db("tn_1".into());
        let other = TenantId::from_db("tn_2".into());
        // Only every fourth entry is of the operation; the others would match a LIKE that
        // does not escape `_`, compares without case, or reads a detail.
        let bodies: Vec<String> = (0..200i64)
            .map(|seq| {
                let (op, detail) = match seq % 4 {
                    0 => ("tenant.chat_bind", "{}"),
                    1 => ("tenant.chatXbind", "{}"),
                    2 => ("TENANT.CHAT_BIND", "{}"),
                    _ => ("approvals.request", r#"{"op":"tenant.chat_bind"}"#),
                };
                format!(r#"{{"v":1,"seq":{seq},"op":"{op}","outcome":"done","detail":{detail}}}"#)
            })
            .collect();
        let entries: Vec<NewEntry<'_>> = bodies
            .iter()
            .map(|body| NewEntry {
                body,
                leaf_hash: &[0; 32],
            })
            .collect();
        let mut tx = store.begin_write().await.unwrap();
        insert_entries(&mut tx, &tenant, 0, &entries).await.unwrap();
        insert_entries(&mut tx, &other, 0, &entries[..8])
            .await
            .unwrap();
        let stored: Vec<EntryRow> = super::entries(&mut tx, &tenant)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(stored.len(), 200);
        for (i, (seq, body, _)) in stored.iter().enumerate() {
            assert_eq!((*seq, body), (i as i64, &bodies[i]));
        }
        let seqs = |found: Vec<String>| -> Vec<i64> {
            found
                .iter()
                .map(|b| {
                    serde_json::from_str::<serde_json::Value>(b).unwrap()["seq"]
                        .as_i64()
                        .unwrap()
                })
                .collect()
        };
        let found = recent_bodies(&mut tx, &tenant, i64::MAX, Some("tenant.chat_bind"), 100)
            .await
            .unwrap();
        assert_eq!(
            seqs(found),
            (0..50).rev().map(|i| i * 4).collect::<Vec<_>>()
        );
        let page = recent_bodies(&mut tx, &tenant, 196, Some("tenant.chat_bind"), 2)
            .await
            .unwrap();
        assert_eq!(seqs(page), vec![192, 188]);
        let all = recent_bodies(&mut tx, &tenant, 3, None, 100).await.unwrap();
        assert_eq!(seqs(all), vec![2, 1, 0]);
        let none = recent_bodies(&mut tx, &other, i64::MAX, Some("nothing"), 10)
            .await
            .unwrap();
        assert!(none.is_empty());
    }
}
