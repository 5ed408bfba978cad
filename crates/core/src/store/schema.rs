//! The shape of the live schema as the store reads it (engine-neutral), for export and
//! inspection.

/// How a table's rows belong to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The rows of the tenant are those with `tenant_id = <tenant>`.
    TenantId,
    /// The `tenants` table itself: the row with `id = <tenant>`.
    Id,
}

/// A table as it will be exported: its declared owner, the columns kept (in schema order) and
/// a total order for its rows.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The table.
    pub name: String,
    /// How rows belong to a tenant.
    pub owner: Owner,
    /// Columns in the archive.
    pub columns: Vec<String>,
    /// Primary-key columns, or every kept column when there is no key.
    pub order: Vec<String>,
    /// The kept columns that hold bytes (exported as uppercase hex).
    pub binary: Vec<String>,
}

/// A column of the live schema.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    /// Position in the primary key, from 1; 0 when not part of it.
    pub pk: i64,
    /// Its declared type, lowercase (`text`, `integer`, `blob`; `bigint`, `bytea`, `boolean`).
    pub ty: String,
}

impl Column {
    /// Whether it holds bytes (`BLOB`, `BYTEA`).
    pub fn binary(&self) -> bool {
        matches!(self.ty.as_str(), "blob" | "bytea")
    }
}

/// `"name"`, quoted as an SQL identifier (names come from the schema, never from input).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
