//! Opening an export archive sealed at rest (`tenant.export_all` writes them; `vault::archive`
//! seals them): for the operator handing the archive to its tenant.

use crate::Core;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::vault::archive;
use std::io::{BufReader, Write};
use std::path::Path;

impl Core {
    /// Opens the sealed archive at `path` into `out` (the `.tar.gz` inside) with its tenant's
    /// keys — so not after the tenant revoked BYOK, nor once a rotation dropped the key it was
    /// sealed under. Returns the tenant and the bytes written.
    pub async fn open_export(&self, path: &Path, out: &mut impl Write) -> Result<(TenantId, u64)> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::bad_input("archive", format!("cannot open {}: {e}", path.display()))
        })?;
        let mut reader = BufReader::new(file);
        let header = archive::read_header(&mut reader)?;
        let keys = self.env.keys(&header.tenant).await?;
        let n = archive::open_body(&header, &keys, &mut reader, out)?;
        Ok((header.tenant.clone(), n))
    }
}
