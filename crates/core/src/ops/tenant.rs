//! Guide §5 — `tenant.export_all`: every row of the tenant, in one archive. The guide's canonical
//! destructive action: the dispatcher turns each call into an approval request and runs it only
//! once a second person approved, as the requester.
//!
//! What is exported is declared per table in `store::export` (included, excluded with a reason,
//! secret columns dropped): a table nobody declared stops the export, so nothing reaches an
//! archive by omission. Rows are read inside the operation's transaction (one consistent
//! snapshot) and streamed to a blocking writer that spools each table to an unlinked temporary
//! file, appends it to a gzip-compressed tar, and renames the archive into place only after it
//! is complete and synced.

use super::{ms_to_rfc3339, rfc3339};
use crate::Env;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::notify::Notification;
use crate::operation::{OpCtx, Operation, Risk};
use crate::scope::Scope;
use crate::store::export;
use crate::store::vault::SEALED;
use crate::vault::archive::SealedWriter;
use crate::vault::keys::{Place, TenantKeys};
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// The archive format; bumped when the layout or the row encoding changes.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Longest accepted `reason`, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Bytes of JSONL handed to the writer at a time.
const CHUNK: usize = 256 * 1024;

/// Input of `tenant.export_all`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// Why the export is needed, shown to approvers (e.g. `annual DSAR`); at most 500 characters
    /// of one line.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One exported table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TableExport {
    /// The table; its rows are in `<name>.jsonl` in the archive.
    pub name: String,
    /// Rows exported (the tenant's rows only).
    pub rows: u64,
    /// Size of the table's JSONL file, uncompressed.
    pub bytes: u64,
    /// Hex SHA-256 of the table's JSONL file.
    pub sha256: String,
}

/// Output of `tenant.export_all`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportOutput {
    /// Path of the archive on the server: a `.tar.gz` sealed at rest with the tenant's keys
    /// (`.tar.gz.sealed`, readable by its owner only); `tenantops tenant export-open` opens it.
    pub archive: String,
    /// Size of the archive.
    pub bytes: u64,
    /// Hex SHA-256 of the archive file: check it after transferring the archive.
    pub sha256: String,
    /// The tables in the archive, with their row counts and checksums (also in `manifest.json`).
    pub tables: Vec<TableExport>,
    /// Tables deliberately left out (the manifest says why): credential material and tables
    /// that hold no tenant data.
    pub excluded: Vec<String>,
}

/// `tenant.export_all`.
pub struct ExportAll;

impl Operation for ExportAll {
    const NAME: &'static str = "tenant.export_all";
    const SUMMARY: &'static str =
        "Export ALL data of the tenant to a downloadable archive (needs approval)";
    const HELP: &'static str = "Writes every row your tenant owns — tenant record, members, roles, business \
        units, API key metadata, approvals and the audit ledger — to one .tar.gz on the server, sealed at rest \
        with your tenant's keys (BYOK included; `tenantops tenant export-open` opens it): a JSONL \
        file per table (one JSON object per row, BLOBs as hex, timestamps as stored: milliseconds since \
        the Unix epoch, UTC) and a manifest.json with row counts and SHA-256 checksums. Credential \
        material (API key digests) is never exported. This exposes all of the tenant's personal data, \
        so it always needs a second person's approval: the call returns a pending request showing the \
        estimated size, and the export runs once approved. Give a reason for the approvers.";
    const SCOPE: Option<Scope> = Some(Scope::TENANT_EXPORT);
    const RISK: Risk = Risk::Destructive;
    const KEYS: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#, r#"{"reason":"annual DSAR"}"#];
    type Input = ExportInput;
    type Output = ExportOutput;

    async fn facts(ctx: &mut OpCtx, input: &ExportInput) -> Result<Map<String, Value>> {
        checked_reason(input.reason.as_deref())?;
        let tenant = ctx.tenant().clone();
        let found = export::plan(&mut ctx.tx).await?;
        let (mut rows, mut bytes) = (0u64, 0u64);
        for table in &found.tables {
            let (n, b) = export::estimate(&mut ctx.tx, table, &tenant).await?;
            rows += u64::try_from(n).unwrap_or(0);
            bytes += u64::try_from(b).unwrap_or(0);
        }
        let mut facts = Map::new();
        facts.insert("estimated_bytes".into(), json!(bytes));
        facts.insert("tables".into(), json!(found.tables.len() as u64));
        facts.insert("rows".into(), json!(rows));
        Ok(facts)
    }

    fn describe(input: &ExportInput, facts: &Map<String, Value>) -> String {
        let mut s = String::from("Export ALL data of this tenant");
        let fact = |k: &str| facts.get(k).and_then(Value::as_u64);
        if let (Some(bytes), Some(tables), Some(rows)) =
            (fact("estimated_bytes"), fact("tables"), fact("rows"))
        {
            s.push_str(&format!(
                " (~{} in {} {}, {} {})",
                human_bytes(bytes),
                thousands(tables),
                if tables == 1 { "table" } else { "tables" },
                thousands(rows),
                if rows == 1 { "row" } else { "rows" },
            ));
        }
        s.push_str(" to a downloadable archive");
        if let Some(reason) = input
            .reason
            .as_deref()
            .map(one_line)
            .filter(|r| !r.is_empty())
        {
            s.push_str(&format!("; reason: “{reason}”"));
        }
        s
    }

    async fn execute(ctx: &mut OpCtx, input: ExportInput) -> Result<ExportOutput> {
        let reason = checked_reason(input.reason.as_deref())?;
        let tenant = ctx.tenant().clone();
        let env = ctx.env.clone();
        let (tenant_name, tenant_created) =
            crate::store::tenants::name_and_created(&mut ctx.tx, &tenant).await?;
        let found = export::plan(&mut ctx.tx).await?;
        // Run on approval, the archive is named after its request: an execution resumed after a
        // stalled lease replaces the same file instead of leaving a second copy of the data.
        let file_name = match ctx.principal.via() {
            crate::principal::Via::Approval { request_id } => {
                format!("{tenant}-export-{request_id}.tar.gz.sealed")
            }
            _ => format!(
                "{tenant}-export-{}-{}.tar.gz.sealed",
                ctx.now.format("%Y%m%dT%H%M%SZ"),
                hex::encode(rand::random::<[u8; 3]>())
            ),
        };
        let head = ManifestHead {
            format: "tenantops-export",
            format_version: EXPORT_FORMAT_VERSION,
            tenant_id: tenant.to_string(),
            tenant_name,
            tenant_created_at: ms_to_rfc3339(tenant_created),
            created_at: rfc3339(ctx.now),
            requested_by: ctx.principal.persona.to_string(),
            reason,
            encoding: "one JSON object per row and line, keyed by column name; BLOB values as \
                       uppercase hex strings; timestamps as stored (INTEGER milliseconds since the \
                       Unix epoch, UTC)",
            excluded: found.left_out.clone(),
        };
        let mtime = u64::try_from(ctx.now.timestamp()).unwrap_or(0);
        let dir = env.export_dir.clone();
        let (sender, receiver) = mpsc::channel::<Msg>(4);
        let keys = ctx.keys()?;
        let sealing = keys.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_archive(receiver, &dir, &file_name, mtime, head, &sealing)
        });
        let read = read_tables(&mut ctx.tx, &keys, &env, &tenant, &found.tables, &sender).await;
        let read = match read {
            Ok(()) => sender.send(Msg::Finish).await.map_err(|_| Stop::WriterGone),
            Err(stop) => Err(stop),
        };
        drop(sender);
        let written = writer
            .await
            .map_err(|e| Error::Internal(format!("the archive writer failed: {e}")))?;
        let written = match (read, written) {
            (Err(Stop::Db(e)), _) => return Err(e),
            (_, Err(e)) => return Err(e),
            (Err(Stop::WriterGone), Ok(_)) => {
                return Err(Error::Internal("the archive writer stopped early".into()));
            }
            (Ok(()), Ok(w)) => w,
        };
        let rows: u64 = written.tables.iter().map(|t| t.rows).sum();
        let archive = written.path.display().to_string();
        ctx.audit("archive", &archive);
        ctx.audit("tables", written.tables.len());
        ctx.audit("rows", rows);
        ctx.audit("bytes", written.bytes);
        ctx.audit("sha256", &written.sha256);
        tracing::info!(tenant = %tenant, archive = %archive, rows, "tenant exported");
        Ok(ExportOutput {
            archive,
            bytes: written.bytes,
            sha256: written.sha256,
            tables: written.tables,
            excluded: found.left_out.into_iter().map(|e| e.name).collect(),
        })
    }
}

/// Checks the reason: one line of at most [`MAX_REASON_CHARS`]; blank means none.
fn checked_reason(reason: Option<&str>) -> Result<Option<String>> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::bad_input(
            "reason",
            format!(
                "keep the reason to {MAX_REASON_CHARS} characters; approvers read it in a notification"
            ),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(Error::bad_input(
            "reason",
            "write the reason on one line, without control characters",
        ));
    }
    Ok(Some(reason.to_owned()))
}

/// The reason as shown to approvers: control characters blanked, trimmed, capped.
fn one_line(reason: &str) -> String {
    let clean: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    clean.trim().to_owned()
}

/// `12.4 MB`: decimal units, one decimal place.
fn human_bytes(bytes: u64) -> String {
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for next in ["kB", "MB", "GB", "TB", "PB"] {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// `1,234`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the reader hands the archive writer.
enum Msg {
    /// A table begins.
    Start(String),
    /// JSONL lines of the current table.
    Data(Vec<u8>),
    /// The current table is complete.
    End { rows: u64 },
    /// Every table was read: write the manifest and put the archive in place.
    Finish,
}

/// Why reading stopped.
enum Stop {
    /// The database failed.
    Db(Error),
    /// The writer hung up (its own result says why).
    WriterGone,
}

async fn send(sender: &mpsc::Sender<Msg>, msg: Msg) -> Result<(), Stop> {
    sender.send(msg).await.map_err(|_| Stop::WriterGone)
}

/// Streams the tenant's rows of each table to the writer, reporting progress per table.
async fn read_tables(
    tx: &mut crate::store::Tx,
    keys: &TenantKeys,
    env: &Env,
    tenant: &TenantId,
    tables: &[export::Planned],
    sender: &mpsc::Sender<Msg>,
) -> Result<(), Stop> {
    let total = tables.len() as u64;
    for (i, table) in tables.iter().enumerate() {
        send(sender, Msg::Start(table.name.clone())).await?;
        let mut rows = 0u64;
        let mut buf = Vec::with_capacity(CHUNK);
        {
            let mut stream = export::rows(tx, table, tenant).map_err(Stop::Db)?;
            while let Some(line) = stream.try_next().await.map_err(Stop::Db)? {
                let line = opened(keys, &table.name, line).map_err(Stop::Db)?;
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                rows += 1;
                if buf.len() >= CHUNK {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
                    send(sender, Msg::Data(full)).await?;
                }
            }
        }
        if !buf.is_empty() {
            send(sender, Msg::Data(buf)).await?;
        }
        send(sender, Msg::End { rows }).await?;
        env.notify(&Notification::Progress {
            tenant: tenant.clone(),
            operation: ExportAll::NAME.to_owned(),
            done: i as u64 + 1,
            total,
            message: format!("exported {} ({} rows)", table.name, thousands(rows)),
        });
    }
    Ok(())
}

/// A row with its sealed columns opened: the archive carries the tenant's data, not ciphertext
/// only this deployment can open (`email_sealed` becomes `email`; blind indexes are left out).
fn opened(keys: &TenantKeys, table: &str, line: String) -> Result<String> {
    let sealed: Vec<_> = SEALED.iter().filter(|c| c.table == table).collect();
    if sealed.is_empty() {
        return Ok(line);
    }
    let mut row: serde_json::Map<String, Value> = serde_json::from_str(&line)
        .map_err(|e| Error::Internal(format!("an exported row is not JSON: {e}")))?;
    for col in sealed {
        let record: Vec<String> = col
            .key
            .iter()
            .map(|k| {
                row.get(*k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let record = record.join(":");
        let plain_name = col.column.trim_end_matches("_sealed").to_owned();
        let value = match row.remove(col.column) {
            Some(Value::String(h)) => {
                let bytes = hex::decode(&h)
                    .map_err(|_| Error::Internal("an exported BLOB is not hex".into()))?;
                Value::String(keys.open_text(Place::new(col, &record), &bytes)?)
            }
            _ => row.remove(&plain_name).unwrap_or(Value::Null),
        };
        row.insert(plain_name, value);
    }
    row.retain(|k, _| !k.ends_with("_index"));
    serde_json::to_string(&row).map_err(|e| Error::Internal(e.to_string()))
}

/// The manifest's fields known before any row is read.
#[derive(Debug, Serialize)]
struct ManifestHead {
    format: &'static str,
    format_version: u32,
    tenant_id: String,
    tenant_name: String,
    tenant_created_at: String,
    /// When the export ran (RFC 3339).
    created_at: String,
    requested_by: String,
    reason: Option<String>,
    encoding: &'static str,
    excluded: Vec<export::Left>,
}

/// `manifest.json`.
#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(flatten)]
    head: &'a ManifestHead,
    tables: &'a [TableExport],
}

/// A complete archive in place.
#[derive(Debug)]
struct Written {
    path: PathBuf,
    bytes: u64,
    sha256: String,
    tables: Vec<TableExport>,
}

/// Counts and hashes what passes through to a file.
struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Removes files it still holds when dropped: a failed export leaves nothing behind.
#[derive(Default)]
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn forget(&mut self, path: &Path) {
        self.0.retain(|p| p != path);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let at = path.display().to_string();
    let what = what.to_owned();
    move |e| Error::Internal(format!("export: {what} {at}: {e}"))
}

/// Creates a new file readable and writable by its owner only.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        // Exactly owner-only, whatever the umask: the archive holds personal data.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Creates the export directory (owner-only when it is new).
fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        Error::Config(format!(
            "cannot create the export directory {}: {e}; make it writable or configure another",
            dir.display()
        ))
    })
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Appends one regular file to the archive: owner-only, owned by root, stamped `mtime`.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl io::Read,
    mtime: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, data)
}

/// One table's JSONL, spooled to a temporary file because a tar header needs its size first.
struct Spool {
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

/// Receives the tables from the reader and writes the archive: `<dir>/.<name>.partial` first,
/// synced, then renamed to `<dir>/<name>`. Runs on a blocking thread.
fn write_archive(
    mut receiver: mpsc::Receiver<Msg>,
    dir: &Path,
    file_name: &str,
    mtime: u64,
    head: ManifestHead,
    keys: &TenantKeys,
) -> Result<Written> {
    create_dir(dir)?;
    let final_path = dir.join(file_name);
    let temp_path = dir.join(format!(".{file_name}.partial"));
    let mut cleanup = Cleanup::default();
    let file = create_private(&temp_path).map_err(io_err("creating", &temp_path))?;
    cleanup.0.push(temp_path.clone());
    let sink = HashingFile {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    };
    // Sealed at rest with the tenant's keys (`vault::archive`).
    let sealed =
        SealedWriter::start(sink, keys, file_name).map_err(io_err("writing", &temp_path))?;
    let mut tar = tar::Builder::new(GzEncoder::new(sealed, Compression::default()));
    let write_err = io_err("writing", &temp_path);
    let mut tables: Vec<TableExport> = Vec::new();
    let mut current: Option<(String, Spool)> = None;
    loop {
        match receiver.blocking_recv() {
            Some(Msg::Start(name)) => {
                let spool_path = dir.join(format!(".{file_name}.{}.spool", tables.len()));
                let file = create_private(&spool_path).map_err(io_err("creating", &spool_path))?;
                cleanup.0.push(spool_path.clone());
                // Unlinked at once where the platform allows: a crash leaves no spool behind.
                #[cfg(unix)]
                if fs::remove_file(&spool_path).is_ok() {
                    cleanup.forget(&spool_path);
                }
                let spool = Spool {
                    out: BufWriter::new(file),
                    hasher: Sha256::new(),
                    bytes: 0,
                };
                current = Some((name, spool));
            }
            Some(Msg::Data(data)) => {
                let (_, spool) = current
                    .as_mut()
                    .ok_or_else(|| Error::Internal("export: rows outside a table".into()))?;
                spool
                    .out
                    .write_all(&data)
                    .map_err(io_err("spooling", &temp_path))?;
                spool.hasher.update(&data);
                spool.bytes += data.len() as u64;
            }
            Some(Msg::End { rows }) => {
                let (name, spool) = current
                    .take()
                    .ok_or_else(|| Error::Internal("export: end outside a table".into()))?;
                let spool_err = io_err("spooling", &temp_path);
                let mut file = spool
                    .out
                    .into_inner()
                    .map_err(|e| spool_err(e.into_error()))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(io_err("spooling", &temp_path))?;
                let entry = format!("{name}.jsonl");
                append(&mut tar, &entry, spool.bytes, &mut file, mtime)
                    .map_err(io_err("writing", &temp_path))?;
                drop(file);
                let spool_path = dir.join(format!(".{file_name}.{}.spool", tables.len()));
                if cleanup.0.contains(&spool_path) {
                    let _ = fs::remove_file(&spool_path);
                    cleanup.forget(&spool_path);
                }
                tables.push(TableExport {
                    name,
                    rows,
                    bytes: spool.bytes,
                    sha256: hex::encode(spool.hasher.finalize()),
                });
            }
            Some(Msg::Finish) if current.is_none() => break,
            Some(Msg::Finish) => {
                return Err(Error::Internal("export: finished inside a table".into()));
            }
            None => return Err(Error::Internal("export: aborted before completion".into())),
        }
    }
    let manifest = serde_json::to_vec_pretty(&Manifest {
        head: &head,
        tables: &tables,
    })
    .map_err(|e| Error::Internal(format!("export: manifest: {e}")))?;
    append(
        &mut tar,
        "manifest.json",
        manifest.len() as u64,
        &manifest[..],
        mtime,
    )
    .map_err(io_err("writing", &temp_path))?;
    let gz = tar.into_inner().map_err(io_err("writing", &temp_path))?;
    let sink = gz
        .finish()
        .and_then(SealedWriter::finish)
        .map_err(write_err)?;
    sink.file
        .sync_all()
        .map_err(io_err("syncing", &temp_path))?;
    drop(sink.file);
    fs::rename(&temp_path, &final_path).map_err(io_err("renaming", &temp_path))?;
    cleanup.forget(&temp_path);
    cleanup.0.push(final_path.clone());
    sync_dir(dir).map_err(io_err("syncing", dir))?;
    cleanup.forget(&final_path);
    Ok(Written {
        path: final_path,
        bytes: sink.bytes,
        sha256: hex::encode(sink.hasher.finalize()),
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::notify::RecordingNotifier;
    use crate::operation::parse_input;
    use crate::secrets::MasterKey;
    use crate::{Config, Core, MasterKeySource, Outcome, Principal, Surface, TenantCreated};
    use chrono::{TimeZone, Utc};
    use std::collections::HashMap;
    use std::io::Read;
    use std::sync::Arc;

    struct Fixture {
        core: Core,
        notes: RecordingNotifier,
        dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let notes = RecordingNotifier::default();
        let mut config = Config::new(dir.path().join("t.db"));
        config.master_key = MasterKeySource::Key(MasterKey::generate());
        config.clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
        ));
        config.notifiers = vec![Arc::new(notes.clone())];
        let core = Core::open(config).await.unwrap();
        Fixture { core, notes, dir }
    }

    async fn ok(core: &Core, p: &Principal, op: &str, input: Value) -> Value {
        match core.call(p, op, input.clone()).await {
            Ok(Outcome::Done { output }) => output,
            other => panic!("{op} {input}: expected done, got {other:?}"),
        }
    }

    /// A tenant with an admin, a service persona with a key, and a business unit.
    async fn tenant(
        core: &Core,
        name: &str,
        slug: &str,
    ) -> (TenantCreated, Principal, Vec<String>) {
        let created = core
            .create_tenant(name, Some(&format!("boss@{slug}.example")))
            .await
            .unwrap();
        let p = core
            .authenticate(&created.api_key, Surface::Cli)
            .await
            .unwrap();
        let bu = ok(
            core,
            &p,
            "members.create_bu",
            json!({ "name": format!("{slug}-ops"), "kind": "department" }),
        )
        .await;
        let persona = ok(
            core,
            &p,
            "members.create_persona",
            json!({ "handle": format!("{slug}-bot"), "kind": "service", "roles": ["developer"], "display_name": format!("{name} robot") }),
        )
        .await;
        let key = ok(
            core,
            &p,
            "keys.issue",
            json!({ "persona": format!("{slug}-bot"), "scopes": ["keys:read"], "name": format!("{slug}-deploy") }),
        )
        .await;
        let ids = vec![
            created.tenant_id.to_string(),
            created.persona_id.to_string(),
            persona["id"].as_str().unwrap().to_owned(),
            key["key_id"].as_str().unwrap().to_owned(),
            bu["id"].as_str().unwrap_or_default().to_owned(),
            key["api_key"].as_str().unwrap().to_owned(),
        ];
        (created, p, ids)
    }

    async fn ctx(core: &Core, tx: crate::store::Tx, p: &Principal) -> OpCtx {
        let mut cx = OpCtx::new(
            tx,
            p.clone(),
            core.env().clock.now(),
            core.env().clone(),
            crate::ops::registry::catalogue(),
        );
        cx.keys = Some(core.env().keys(&p.tenant).await.unwrap());
        cx
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        !needle.is_empty() && memchr::memmem::find(haystack, needle.as_bytes()).is_some()
    }

    /// The archive's files by name, and the whole uncompressed tar stream.
    async fn unpack(core: &Core, path: &Path) -> (HashMap<String, Vec<u8>>, Vec<u8>) {
        let sealed = fs::read(path).unwrap();
        assert!(sealed.starts_with(b"TOPSARC1"), "sealed at rest");
        let mut gz = Vec::new();
        core.open_export(path, &mut gz).await.unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let mut files = HashMap::new();
        let mut archive = tar::Archive::new(&raw[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert_eq!(entry.header().mode().unwrap(), 0o600);
            let name = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert!(files.insert(name, data).is_none(), "duplicate entry");
        }
        (files, raw)
    }

    #[tokio::test]
    async fn exports_exactly_the_callers_tenant() {
        let fx = fixture().await;
        let core = &fx.core;
        let (a, pa, a_ids) = tenant(core, "Acme Corp", "acme").await;
        let (_b, _pb, b_ids) = tenant(core, "Globex Industries", "globex").await;
        let a_secret = a.api_key.clone();
        let a_digests: Vec<String> =
            sqlx::query_scalar("SELECT hex(digest) FROM api_key_secrets WHERE tenant_id = ?")
                .bind(a.tenant_id.as_str())
                .fetch_all(core.store().sqlite_pool().expect("a SQLite store"))
                .await
                .unwrap();
        assert!(!a_digests.is_empty());
        fx.notes.clear();

        let tx = core.store().begin_read().await.unwrap();
        let mut cx = ctx(core, tx, &pa).await;
        let input: ExportInput = parse_input(json!({ "reason": "annual DSAR" })).unwrap();
        let facts = ExportAll::facts(&mut cx, &input).await.unwrap();
        let estimated = facts["estimated_bytes"].as_u64().unwrap();
        assert!(estimated > 0, "{facts:?}");
        let summary = ExportAll::describe(&input, &facts);
        assert!(
            summary.starts_with("Export ALL data of this tenant (~"),
            "{summary}"
        );
        assert!(summary.contains("annual DSAR"), "{summary}");

        let out = ExportAll::execute(&mut cx, input).await.unwrap();
        let (tx, detail, _) = cx.into_parts();
        tx.rollback().await.unwrap();

        // The archive: under export_dir, named as promised, private, checksummed.
        let path = PathBuf::from(&out.archive);
        let export_dir = fx.dir.path().join("exports");
        assert_eq!(path.parent().unwrap(), export_dir);
        let name = path.file_name().unwrap().to_str().unwrap();
        let prefix = format!("{}-export-20261101T090000Z-", a.tenant_id);
        assert!(
            name.starts_with(&prefix) && name.ends_with(".tar.gz.sealed"),
            "{name}"
        );
        let suffix = &name[prefix.len()..name.len() - ".tar.gz.sealed".len()];
        assert!(
            suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
        let listing: Vec<_> = fs::read_dir(&export_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(listing.len(), 1, "no temporary files left: {listing:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(&export_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let archive_bytes = fs::read(&path).unwrap();
        assert_eq!(out.bytes, archive_bytes.len() as u64);
        assert_eq!(out.sha256, hex::encode(Sha256::digest(&archive_bytes)));

        // The manifest: counts equal the tenant's rows, checksums equal the files.
        let (files, raw) = unpack(core, &path).await;
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(manifest["format_version"], EXPORT_FORMAT_VERSION);
        assert_eq!(manifest["tenant_id"], a.tenant_id.as_str());
        assert_eq!(manifest["tenant_name"], "Acme Corp");
        assert_eq!(manifest["created_at"], "2026-11-01T09:00:00Z");
        assert_eq!(manifest["reason"], "annual DSAR");
        let tables: Vec<TableExport> = serde_json::from_value(manifest["tables"].clone()).unwrap();
        assert_eq!(tables, out.tables);
        assert_eq!(files.len(), tables.len() + 1);
        assert_eq!(facts["tables"].as_u64().unwrap(), tables.len() as u64);
        let mut total_rows = 0;
        for t in &tables {
            let filter = if t.name == "tenants" {
                "id"
            } else {
                "tenant_id"
            };
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM \"{}\" WHERE \"{filter}\" = ?",
                t.name
            )))
            .bind(a.tenant_id.as_str())
            .fetch_one(core.store().sqlite_pool().expect("a SQLite store"))
            .await
            .unwrap();
            assert_eq!(t.rows, n as u64, "{}", t.name);
            total_rows += t.rows;
            let data = &files[&format!("{}.jsonl", t.name)];
            assert_eq!(t.bytes, data.len() as u64, "{}", t.name);
            assert_eq!(t.sha256, hex::encode(Sha256::digest(data)), "{}", t.name);
            for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let row: Value = serde_json::from_slice(line).unwrap();
                let owner = if t.name == "tenants" {
                    &row["id"]
                } else {
                    &row["tenant_id"]
                };
                assert_eq!(owner, a.tenant_id.as_str(), "{}", t.name);
            }
        }
        assert_eq!(facts["rows"].as_u64().unwrap(), total_rows);
        for expected in [
            "tenants",
            "personas",
            "api_keys",
            "business_units",
            "audit_entries",
        ] {
            assert!(
                tables.iter().any(|t| t.name == expected && t.rows > 0),
                "{expected}"
            );
        }
        assert_eq!(tables[0].name, "tenants");

        // Nothing secret, nothing of tenant B.
        assert!(!files.contains_key("api_key_secrets.jsonl"));
        assert!(out.excluded.contains(&"api_key_secrets".to_owned()));
        assert!(
            files.keys().all(|f| !f.contains("secret")),
            "{:?}",
            files.keys()
        );
        let excluded: Vec<export::Left> =
            serde_json::from_value(manifest["excluded"].clone()).unwrap();
        assert!(
            excluded
                .iter()
                .any(|e| e.name == "api_key_secrets" && !e.reason.is_empty())
        );
        assert!(
            !contains(&raw, &a_secret),
            "tenant A's admin API key leaked"
        );
        assert!(!contains(&raw, &a_ids[5]), "tenant A's bot API key leaked");
        for d in &a_digests {
            assert!(!contains(&raw, d), "a key digest leaked");
        }
        assert!(contains(&raw, a_ids[0].as_str()) && contains(&raw, "acme-bot"));
        for needle in b_ids.iter().map(String::as_str).chain(["Globex", "globex"]) {
            assert!(
                !contains(&raw, needle),
                "tenant B's `{needle}` is in A's archive"
            );
        }

        // Progress once per table; audit facts without contents.
        let progress: Vec<(u64, u64)> = fx
            .notes
            .all()
            .into_iter()
            .filter_map(|n| match n {
                Notification::Progress {
                    tenant,
                    operation,
                    done,
                    total,
                    ..
                } => {
                    assert_eq!(tenant, a.tenant_id);
                    assert_eq!(operation, "tenant.export_all");
                    Some((done, total))
                }
                _ => None,
            })
            .collect();
        let n = tables.len() as u64;
        assert_eq!(progress, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());
        assert_eq!(detail["archive"], out.archive.as_str());
        assert_eq!(detail["tables"], n);
        assert_eq!(detail["rows"], total_rows);
    }

    #[tokio::test]
    async fn an_empty_reason_is_none_and_a_long_one_is_refused() {
        assert!(parse_input::<ExportInput>(json!({ "why": "x" })).is_err());
        assert_eq!(checked_reason(Some("  ")).unwrap(), None);
        assert!(matches!(
            checked_reason(Some(&"x".repeat(501))),
            Err(Error::BadInput { .. })
        ));
        assert!(matches!(
            checked_reason(Some("a\nb")),
            Err(Error::BadInput { .. })
        ));
        let fx = fixture().await;
        let (_a, pa, _) = tenant(&fx.core, "Acme Corp", "acme").await;
        let tx = fx.core.store().begin_read().await.unwrap();
        let mut cx = ctx(&fx.core, tx, &pa).await;
        let bad: ExportInput = parse_input(json!({ "reason": "x".repeat(600) })).unwrap();
        assert!(ExportAll::facts(&mut cx, &bad).await.is_err());
        assert!(ExportAll::execute(&mut cx, bad).await.is_err());
        assert!(
            !fx.dir.path().join("exports").exists(),
            "nothing written for a refused call"
        );
    }

    #[test]
    fn examples_parse() {
        for ex in ExportAll::EXAMPLES {
            parse_input::<ExportInput>(serde_json::from_str(ex).unwrap()).unwrap();
        }
    }

    #[tokio::test]
    async fn an_interrupted_export_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let exports = dir.path().join("exports");
        let (sender, receiver) = mpsc::channel(4);
        let head = ManifestHead {
            format: "tenantops-export",
            format_version: EXPORT_FORMAT_VERSION,
            tenant_id: "tn_x".into(),
            tenant_name: "x".into(),
            tenant_created_at: "2026-11-01T09:00:00Z".into(),
            created_at: "2026-11-01T09:00:00Z".into(),
            requested_by: "ps_x".into(),
            reason: None,
            encoding: "",
            excluded: vec![],
        };
        let target = exports.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let keys = crate::vault::keys::TenantKeys::new(
                crate::ids::TenantId::generate(),
                vec![(1, zeroize::Zeroizing::new([1u8; 32]))],
                &MasterKey::generate(),
                None,
            )
            .unwrap();
            write_archive(receiver, &target, "x.tar.gz.sealed", 0, head, &keys)
        });
        sender.send(Msg::Start("personas".into())).await.unwrap();
        sender
            .send(Msg::Data(b"{\"name\":\"jane\"}\n".to_vec()))
            .await
            .unwrap();
        // The reader fails here: the sender goes away without `Finish`.
        drop(sender);
        assert!(writer.await.unwrap().is_err());
        let left: Vec<_> = fs::read_dir(&exports).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn describes_size_tables_rows_and_reason() {
        let mut facts = Map::new();
        facts.insert("estimated_bytes".into(), json!(12_400_000u64));
        facts.insert("tables".into(), json!(9));
        facts.insert("rows".into(), json!(1234));
        let input = ExportInput {
            reason: Some("annual DSAR".into()),
        };
        assert_eq!(
            ExportAll::describe(&input, &facts),
            "Export ALL data of this tenant (~12.4 MB in 9 tables, 1,234 rows) to a downloadable \
             archive; reason: “annual DSAR”"
        );
        let none = ExportInput { reason: None };
        assert_eq!(
            ExportAll::describe(&none, &Map::new()),
            "Export ALL data of this tenant to a downloadable archive"
        );
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(1_073_741_825), "1.1 GB");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
