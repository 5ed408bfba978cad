//! Export archives at rest: sealed as a stream with a data key of their own, which the tenant's
//! keys seal in the archive's header — so an archive opens only while the tenant's key does
//! (revoked BYOK, or its epoch dropped by a finished rotation, and it is crypto-shredded).
//!
//! Layout: `TOPSARC1`, then three length-prefixed (u16, big-endian) fields — the tenant id, the
//! archive's name (the record id its data key is sealed for) and the sealed data key — then the
//! 19-byte STREAM nonce and the body: XChaCha20-Poly1305 in the STREAM construction (big-endian
//! 32-bit counter, last-block flag), 64 KiB of plaintext per segment.

use super::keys::{Place, TenantKeys};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::vault::SealedColumn;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, OsRng, rand_core::RngCore};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// Where an archive's data key is sealed: not a column, but sealed the same way.
pub const EXPORT_ARCHIVE: SealedColumn = SealedColumn {
    table: "exports",
    column: "archive",
    key: &["name"],
};

const MAGIC: &[u8; 8] = b"TOPSARC1";
const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;
const NONCE: usize = 19;

fn io_other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
    out.extend_from_slice(field);
}

/// Seals what is written to it onto `inner`; [`SealedWriter::finish`] writes the last segment.
pub struct SealedWriter<W: Write> {
    inner: W,
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    buf: Vec<u8>,
}

impl<W: Write> SealedWriter<W> {
    /// Writes the header of archive `name` of the tenant of `keys` to `inner` and returns the
    /// writer of its body.
    pub fn start(mut inner: W, keys: &TenantKeys, name: &str) -> io::Result<Self> {
        let mut dek = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut dek[..]);
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        let sealed = keys.seal(Place::new(&EXPORT_ARCHIVE, name), &dek[..]);
        let mut header = MAGIC.to_vec();
        put_field(&mut header, keys.tenant().as_str().as_bytes());
        put_field(&mut header, name.as_bytes());
        put_field(&mut header, &sealed);
        header.extend_from_slice(&nonce);
        inner.write_all(&header)?;
        let cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*dek));
        Ok(Self {
            inner,
            encryptor: Some(EncryptorBE32::from_aead(cipher, (&nonce).into())),
            buf: Vec::with_capacity(SEGMENT * 2),
        })
    }

    /// Seals the last segment and hands `inner` back.
    pub fn finish(mut self) -> io::Result<W> {
        let enc = self
            .encryptor
            .take()
            .ok_or_else(|| io_other("finished twice"))?;
        let last = enc.encrypt_last(&self.buf[..]).map_err(io_other)?;
        self.inner.write_all(&last)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        // A full segment is sealed only once more follows: the last one is `finish`'s.
        while self.buf.len() > SEGMENT {
            let rest = self.buf.split_off(SEGMENT);
            let enc = self
                .encryptor
                .as_mut()
                .ok_or_else(|| io_other("written after finish"))?;
            let sealed = enc.encrypt_next(&self.buf[..]).map_err(io_other)?;
            self.inner.write_all(&sealed)?;
            self.buf = rest;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The header of a sealed archive: whose it is, and what opens it.
pub struct Header {
    /// The tenant.
    pub tenant: TenantId,
    name: String,
    sealed_key: Vec<u8>,
    nonce: [u8; NONCE],
}

fn field(r: &mut impl Read) -> Result<Vec<u8>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).map_err(not_an_archive)?;
    let mut out = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut out).map_err(not_an_archive)?;
    Ok(out)
}

fn not_an_archive(_: io::Error) -> Error {
    Error::bad_input(
        "archive",
        "this is not a sealed tenantops export archive (it should start with TOPSARC1)",
    )
}

/// Reads an archive's header.
pub fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(not_an_archive)?;
    if &magic != MAGIC {
        return Err(not_an_archive(io::ErrorKind::InvalidData.into()));
    }
    let tenant = String::from_utf8(field(r)?)
        .map_err(|_| not_an_archive(io::ErrorKind::InvalidData.into()))?;
    let name = String::from_utf8(field(r)?)
        .map_err(|_| not_an_archive(io::ErrorKind::InvalidData.into()))?;
    let sealed_key = field(r)?;
    let mut nonce = [0u8; NONCE];
    r.read_exact(&mut nonce).map_err(not_an_archive)?;
    Ok(Header {
        tenant: TenantId::from_db(tenant),
        name,
        sealed_key,
        nonce,
    })
}

/// Opens the body after `header` from `r` into `out` with the tenant's `keys`; returns the
/// bytes written. Fails, writing nothing more, at the first segment that does not open.
pub fn open_body(
    header: &Header,
    keys: &TenantKeys,
    r: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64> {
    let dek = keys.open(
        Place::new(&EXPORT_ARCHIVE, &header.name),
        &header.sealed_key,
    )?;
    let cipher = XChaCha20Poly1305::new_from_slice(&dek)
        .map_err(|_| Error::Internal("an archive data key is not 32 bytes".into()))?;
    let mut dec = DecryptorBE32::from_aead(cipher, (&header.nonce).into());
    let tampered = || Error::bad_input("archive", "the archive is damaged or was altered");
    let read_block = |r: &mut dyn Read| -> Result<Vec<u8>> {
        let mut block = Vec::with_capacity(SEGMENT + TAG);
        r.take((SEGMENT + TAG) as u64)
            .read_to_end(&mut block)
            .map_err(|e| Error::Internal(format!("reading the archive: {e}")))?;
        Ok(block)
    };
    let mut written = 0u64;
    let mut block = read_block(r)?;
    loop {
        let next = if block.len() == SEGMENT + TAG {
            read_block(r)?
        } else {
            Vec::new()
        };
        if next.is_empty() {
            let plain = dec.decrypt_last(&block[..]).map_err(|_| tampered())?;
            out.write_all(&plain)
                .map_err(|e| Error::Internal(format!("writing the opened archive: {e}")))?;
            return Ok(written + plain.len() as u64);
        }
        let plain = dec.decrypt_next(&block[..]).map_err(|_| tampered())?;
        out.write_all(&plain)
            .map_err(|e| Error::Internal(format!("writing the opened archive: {e}")))?;
        written += plain.len() as u64;
        block = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MasterKey;

    fn keys(tenant: &TenantId) -> TenantKeys {
        TenantKeys::new(
            tenant.clone(),
            vec![(1, Zeroizing::new([9u8; 32]))],
            &MasterKey::from_bytes([3; 32]),
            None,
        )
        .unwrap()
    }

    fn roundtrip(len: usize) {
        let t = TenantId::generate();
        let k = keys(&t);
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut w = SealedWriter::start(Vec::new(), &k, "a.tar.gz.sealed").unwrap();
        for chunk in body.chunks(7_000) {
            w.write_all(chunk).unwrap();
        }
        let sealed = w.finish().unwrap();
        let mut r = &sealed[..];
        let h = read_header(&mut r).unwrap();
        assert_eq!(h.tenant, t);
        let mut out = Vec::new();
        assert_eq!(open_body(&h, &k, &mut r, &mut out).unwrap(), len as u64);
        assert_eq!(out, body, "{len}");
        // Any flipped byte, a dropped tail, or another tenant's keys: refused.
        let mut bad = sealed.clone();
        let at = bad.len() - 3;
        bad[at] ^= 1;
        let mut r = &bad[..];
        let h = read_header(&mut r).unwrap();
        assert!(open_body(&h, &k, &mut r, &mut Vec::new()).is_err());
        if len > SEGMENT {
            let cut = &sealed[..sealed.len() - 100];
            let mut r = cut;
            let h = read_header(&mut r).unwrap();
            assert!(open_body(&h, &k, &mut r, &mut Vec::new()).is_err());
        }
        let mut r = &sealed[..];
        let h = read_header(&mut r).unwrap();
        let other = keys(&TenantId::generate());
        assert!(open_body(&h, &other, &mut r, &mut Vec::new()).is_err());
    }

    #[test]
    fn archives_open_whole_or_not_at_all_at_every_size() {
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            roundtrip(len);
        }
        assert!(read_header(&mut &b"\x1f\x8b not sealed"[..]).is_err());
    }
}
