//! The sealing service's tables: each tenant's data keys by epoch, its BYOK configuration, and
//! the sealed columns the re-wrap walks (their SQL, for both engines).

use super::{Tx, on};
use crate::error::Result;
use crate::ids::TenantId;
use sqlx::Row;

/// A column holding sealed values, and the columns (besides `tenant_id`) that name its row:
/// their values joined by `:` are the record id authenticated with each value.
#[derive(Clone, Copy, Debug)]
pub struct SealedColumn {
    /// The table.
    pub table: &'static str,
    /// The sealed column.
    pub column: &'static str,
    /// The columns naming a row within its tenant.
    pub key: &'static [&'static str],
}

impl SealedColumn {
    /// Where a value of this column is authenticated to belong: `table.column`.
    pub fn place(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

/// Persona emails.
pub const PERSONA_EMAIL: SealedColumn = SealedColumn {
    table: "personas",
    column: "email_sealed",
    key: &["id"],
};
/// Persona display names.
pub const PERSONA_NAME: SealedColumn = SealedColumn {
    table: "personas",
    column: "display_name_sealed",
    key: &["id"],
};
/// Chat bot tokens from OAuth installs.
pub const BOT_TOKEN: SealedColumn = SealedColumn {
    table: "chat_workspaces",
    column: "bot_token_sealed",
    key: &["platform", "workspace_id"],
};

/// The personal fields of a request waiting for approval.
pub const APPROVAL_PERSONAL: SealedColumn = SealedColumn {
    table: "approval_requests",
    column: "personal_sealed",
    key: &["id"],
};

/// Every sealed column of the schema: a rotation re-wraps each of them. A new section that
/// stores a secret or personal data adds its column here (a test checks the schema against it).
pub const SEALED: &[SealedColumn] = &[PERSONA_EMAIL, PERSONA_NAME, BOT_TOKEN, APPROVAL_PERSONAL];

/// One data key as stored.
#[derive(Clone, Debug)]
pub struct DataKeyRow {
    /// Its epoch (the newest seals).
    pub epoch: i64,
    /// Its key-encryption key: `platform` or `<provider>:<key id>`.
    pub kek: String,
    /// The data key, wrapped.
    pub wrapped: Vec<u8>,
    /// When it was made.
    pub created_at: i64,
}

/// A tenant's data keys, oldest first.
pub async fn data_keys(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<DataKeyRow>> {
    let rows: Vec<(i64, String, Vec<u8>, i64)> = on!(tx, c => sqlx::query_as(
        "SELECT epoch, kek, wrapped, created_at FROM tenant_data_keys \
         WHERE tenant_id = $1 ORDER BY epoch",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(epoch, kek, wrapped, created_at)| DataKeyRow {
            epoch,
            kek,
            wrapped,
            created_at,
        })
        .collect())
}

/// The newest epoch of a tenant, if it has a data key.
pub async fn newest_epoch(tx: &mut Tx, tenant: &TenantId) -> Result<Option<i64>> {
    let (epoch,): (Option<i64>,) = on!(tx, c => sqlx::query_as(
        "SELECT MAX(epoch) FROM tenant_data_keys WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_one(c)
    .await)?;
    Ok(epoch)
}

/// Adds a data key; false when the epoch exists already (another process made it first).
pub async fn insert_data_key(
    tx: &mut Tx,
    tenant: &TenantId,
    epoch: i64,
    kek: &str,
    wrapped: &[u8],
    now: i64,
) -> Result<bool> {
    let done = on!(tx, c => sqlx::query(
        "INSERT INTO tenant_data_keys (tenant_id, epoch, kek, wrapped, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, epoch) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(epoch)
    .bind(kek)
    .bind(wrapped)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Drops every data key older than `epoch`: what they sealed is unreadable from now on.
pub async fn drop_data_keys_before(tx: &mut Tx, tenant: &TenantId, epoch: i64) -> Result<u64> {
    let done = on!(tx, c => sqlx::query(
        "DELETE FROM tenant_data_keys WHERE tenant_id = $1 AND epoch < $2",
    )
    .bind(tenant.as_str())
    .bind(epoch)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done)
}

/// A tenant's BYOK configuration as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ByokRow {
    /// `aws`, `gcp` or `azure`.
    pub provider: String,
    /// The key's ARN, resource name or URI.
    pub key_id: String,
    /// `pending_verify`, `active`, `rotating` or `revoked`.
    pub state: String,
    /// When it was last verified.
    pub verified_at: Option<i64>,
    /// Whether that verification passed.
    pub verify_ok: Option<bool>,
    /// Its checks (JSON).
    pub verify_detail: Option<String>,
    /// Since when the KMS refuses or is out of reach.
    pub unreachable_since: Option<i64>,
    /// What it said then.
    pub unreachable_detail: Option<String>,
    /// Values moved by the running re-wrap.
    pub rewrapped: i64,
    /// Last change.
    pub updated_at: i64,
}

/// The tenant's BYOK configuration, if any.
pub async fn byok(tx: &mut Tx, tenant: &TenantId) -> Result<Option<ByokRow>> {
    let row = on!(tx, c => sqlx::query_as(
        "SELECT provider, key_id, state, verified_at, verify_ok, verify_detail, \
                unreachable_since, unreachable_detail, rewrapped, updated_at \
         FROM byok_configs WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row)
}

/// Sets the tenant's key and state, forgetting the last verification when the key changed.
pub async fn put_byok(
    tx: &mut Tx,
    tenant: &TenantId,
    provider: &str,
    key_id: &str,
    state: &str,
    now: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO byok_configs (tenant_id, provider, key_id, state, rewrapped, updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5) \
         ON CONFLICT (tenant_id) DO UPDATE SET \
           verified_at = CASE WHEN byok_configs.key_id = excluded.key_id \
                              THEN byok_configs.verified_at END, \
           verify_ok = CASE WHEN byok_configs.key_id = excluded.key_id \
                            THEN byok_configs.verify_ok END, \
           verify_detail = CASE WHEN byok_configs.key_id = excluded.key_id \
                                THEN byok_configs.verify_detail END, \
           provider = excluded.provider, key_id = excluded.key_id, state = excluded.state, \
           rewrapped = 0, updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(provider)
    .bind(key_id)
    .bind(state)
    .bind(now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Moves the tenant's lifecycle state.
pub async fn set_byok_state(tx: &mut Tx, tenant: &TenantId, state: &str, now: i64) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE byok_configs SET state = $2, updated_at = $3 WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(state)
    .bind(now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Records a verification's result.
pub async fn record_verify(
    tx: &mut Tx,
    tenant: &TenantId,
    ok: bool,
    detail: &str,
    now: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE byok_configs SET verified_at = $2, verify_ok = $3, verify_detail = $4, \
           unreachable_since = CASE WHEN $3 THEN NULL ELSE unreachable_since END, \
           unreachable_detail = CASE WHEN $3 THEN NULL ELSE unreachable_detail END \
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(now)
    .bind(ok)
    .bind(detail)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Marks the tenant's KMS out of reach (`detail` set) or reachable again (`None`); true when
/// this changed anything.
pub async fn set_unreachable(
    tx: &mut Tx,
    tenant: &TenantId,
    detail: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = on!(tx, c => sqlx::query(
        "UPDATE byok_configs SET \
           unreachable_since = CASE WHEN CAST($2 AS TEXT) IS NULL THEN NULL \
                                    ELSE COALESCE(unreachable_since, $3) END, \
           unreachable_detail = $2 \
         WHERE tenant_id = $1 AND (unreachable_since IS NULL) = (CAST($2 AS TEXT) IS NOT NULL)",
    )
    .bind(tenant.as_str())
    .bind(detail)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Counts values the running re-wrap moved.
pub async fn add_rewrapped(tx: &mut Tx, tenant: &TenantId, n: i64) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE byok_configs SET rewrapped = rewrapped + $2 WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(n)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Removes the tenant's BYOK configuration (back to the platform key).
pub async fn delete_byok(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM byok_configs WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Tenants whose values are being moved to a new epoch.
pub async fn rotating(tx: &mut Tx) -> Result<Vec<TenantId>> {
    let rows: Vec<(String,)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id FROM byok_configs WHERE state = 'rotating' ORDER BY tenant_id",
    )
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|(t,)| TenantId::from_db(t)).collect())
}

/// One sealed value and the id of its record.
#[derive(Clone, Debug)]
pub struct SealedValue {
    /// The key column values, in [`SealedColumn::key`] order.
    pub key: Vec<String>,
    /// The sealed bytes.
    pub value: Vec<u8>,
}

impl SealedValue {
    /// The record id authenticated with the value.
    pub fn record(&self) -> String {
        self.key.join(":")
    }
}

/// Up to `limit` values of `col` in the tenant that do not start with `header` (sealed under an
/// older epoch, or in an older format; all of them when `header` is empty), in key order after
/// the record `after` — a cursor, so a pass never reads again what it already moved.
pub async fn stale(
    tx: &mut Tx,
    tenant: &TenantId,
    col: &SealedColumn,
    header: &[u8],
    after: Option<&[String]>,
    limit: i64,
) -> Result<Vec<SealedValue>> {
    let keys = col.key.join(", ");
    let cursor = match after {
        None => String::new(),
        Some(_) => {
            let params: Vec<String> = (0..col.key.len()).map(|i| format!("${}", i + 5)).collect();
            format!(" AND ({keys}) > ({})", params.join(", "))
        }
    };
    let sql = format!(
        "SELECT {keys}, {c} FROM {t} WHERE tenant_id = $1 AND {c} IS NOT NULL \
         AND ($2 = 0 OR substr({c}, 1, $2) <> $3){cursor} ORDER BY {keys} LIMIT $4",
        c = col.column,
        t = col.table,
    );
    let n = col.key.len();
    let found: Vec<SealedValue> = on!(tx, c => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(header.len() as i32)
            .bind(header)
            .bind(limit);
        for k in after.unwrap_or_default() {
            q = q.bind(k.as_str());
        }
        let rows = q.fetch_all(c).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut key = Vec::with_capacity(n);
            for i in 0..n {
                key.push(row.try_get::<String, _>(i)?);
            }
            out.push(SealedValue { key, value: row.try_get::<Vec<u8>, _>(n)? });
        }
        Ok::<_, sqlx::Error>(out)
    })?;
    Ok(found)
}

/// Replaces one sealed value, only if it is still `old` (a concurrent write wins).
pub async fn replace(
    tx: &mut Tx,
    tenant: &TenantId,
    col: &SealedColumn,
    found: &SealedValue,
    new: &[u8],
) -> Result<bool> {
    let mut sql = format!(
        "UPDATE {t} SET {c} = $2 WHERE tenant_id = $1 AND {c} = $3",
        c = col.column,
        t = col.table,
    );
    for (i, k) in col.key.iter().enumerate() {
        sql.push_str(&format!(" AND {k} = ${}", i + 4));
    }
    let done = on!(tx, c => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(new)
            .bind(found.value.as_slice());
        for k in &found.key {
            q = q.bind(k.as_str());
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// How many values of `col` the tenant has, and how many start with `header`.
pub async fn count(
    tx: &mut Tx,
    tenant: &TenantId,
    col: &SealedColumn,
    header: &[u8],
) -> Result<(i64, i64)> {
    let sql = format!(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN substr({c}, 1, $2) = $3 THEN 1 ELSE 0 END), 0) \
         FROM {t} WHERE tenant_id = $1 AND {c} IS NOT NULL",
        c = col.column,
        t = col.table,
    );
    let (total, current) = on!(tx, c => {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(header.len() as i32)
            .bind(header)
            .fetch_one(c)
            .await?;
        Ok::<_, sqlx::Error>((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))
    })?;
    Ok((total, current))
}

/// Personas an older version stored with plaintext personal data, by tenant (at most `limit`).
pub async fn plaintext_personas(
    tx: &mut Tx,
    limit: i64,
) -> Result<Vec<(TenantId, String, Option<String>, Option<String>)>> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, id, email, display_name FROM personas \
         WHERE email IS NOT NULL OR display_name IS NOT NULL LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(t, id, e, d)| (TenantId::from_db(t), id, e, d))
        .collect())
}

/// Seals one legacy persona's personal data: the plaintext columns are cleared in the same
/// statement.
pub async fn seal_persona(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    email: Option<(&[u8], &[u8])>,
    display_name: Option<&[u8]>,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE personas SET email_sealed = $3, email_index = $4, display_name_sealed = $5, \
           email = NULL, display_name = NULL \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(email.map(|e| e.0))
    .bind(email.map(|e| e.1))
    .bind(display_name)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Tenants holding values in an older sealed format (`prefix`), in any sealed column.
pub async fn tenants_with_prefix(tx: &mut Tx, prefix: &[u8]) -> Result<Vec<TenantId>> {
    let mut out: Vec<TenantId> = Vec::new();
    for col in SEALED {
        let sql = format!(
            "SELECT DISTINCT tenant_id FROM {t} WHERE {c} IS NOT NULL AND substr({c}, 1, $1) = $2",
            c = col.column,
            t = col.table,
        );
        let rows: Vec<(String,)> = on!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(prefix.len() as i32)
            .bind(prefix)
            .fetch_all(c)
            .await)?;
        for (t,) in rows {
            let t = TenantId::from_db(t);
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}
