//! Where a downloaded zip lands: in memory while it is small, in the store's spool beyond that.
//!
//! ```text
//! bytes ─► memory (up to limits.zip_in_memory_bytes)
//!            │ one more byte
//!            ▼
//!          spool file (data_dir/tmp, created only now), written through the
//!          same buffer, 1 MiB at a time
//! ```
//!
//! Most module zips are tens of KiB. Spooling one cost a file create, a write,
//! an fsync and two reads back (the zip check and the content hash), each a
//! hop to the blocking pool; in memory it is checked and hashed in one hop and
//! stored with [`Store::commit_bytes`], which writes and syncs it once. Memory
//! held per download is unchanged: the spool was written through a buffer of
//! the same default size. Both kinds are charged to the spool's byte budget
//! (`limits.max_spool_bytes`) by the download.

use std::io;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::modzip::{CheckedZip, ZipError, ZipLimits, check_zip_reader, check_zip_with_limits};
use crate::store::{Entry, Spool, Store, StoreError, StoreResult};

/// The buffer a spooled download is written through: each write to a tokio
/// `File` is a trip to the blocking pool, and body chunks are a few KiB.
const SPOOL_WRITE_BUF: usize = 1 << 20;

/// A download in progress. One buffer, never larger than the bigger of
/// `in_memory` and [`SPOOL_WRITE_BUF`] (plus one chunk): the whole body
/// while it fits, then the spool file's write buffer.
pub struct Landing<'a> {
    store: &'a dyn Store,
    in_memory: usize,
    buf: Vec<u8>,
    spool: Option<(Spool, tokio::fs::File)>,
}

/// A finished download.
pub enum Landed {
    /// The whole body, at most `in_memory` bytes.
    Memory(Bytes),
    /// The body in a spool file (written, not yet synced), with its size.
    Spool(Spool),
}

impl<'a> Landing<'a> {
    /// A download of up to `in_memory` bytes kept in memory; 0 spools every byte.
    pub fn new(store: &'a dyn Store, in_memory: u64) -> Landing<'a> {
        Landing {
            store,
            in_memory: usize::try_from(in_memory).unwrap_or(usize::MAX),
            buf: Vec::new(),
            spool: None,
        }
    }

    /// Appends `chunk`, moving what is held to a spool file first if it
    /// would no longer fit in memory.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let fits = self.buf.len().saturating_add(chunk.len());
        if self.spool.is_none() && fits > self.in_memory {
            let (spool, file) = self.store.spool().await.map_err(store_io)?;
            self.spool = Some((spool, file));
        }
        let Some((_, file)) = &mut self.spool else {
            grow(&mut self.buf, chunk.len(), self.in_memory);
            self.buf.extend_from_slice(chunk);
            return Ok(());
        };
        if fits > SPOOL_WRITE_BUF {
            file.write_all(&self.buf).await?;
            self.buf.clear();
        }
        if chunk.len() >= SPOOL_WRITE_BUF {
            return file.write_all(chunk).await;
        }
        grow(&mut self.buf, chunk.len(), SPOOL_WRITE_BUF);
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// Forgets every byte written so far (a previous proxy's partial body);
    /// a spool file already made is emptied and reused.
    pub async fn clear(&mut self) -> io::Result<()> {
        self.buf.clear();
        if let Some((_, file)) = &mut self.spool {
            file.set_len(0).await?;
            file.rewind().await?;
        }
        Ok(())
    }

    /// The download's bytes, where they landed. A spool file is written, not synced.
    pub async fn finish(self) -> io::Result<Landed> {
        match self.spool {
            None => Ok(Landed::Memory(Bytes::from(self.buf))),
            Some((mut spool, mut file)) => {
                file.write_all(&self.buf).await?;
                file.flush().await?;
                spool.size = file.metadata().await?.len();
                Ok(Landed::Spool(spool))
            }
        }
    }
}

/// Makes room for `extra` more bytes in `buf`, doubling its capacity as a
/// `Vec` does but never past `max` unless the bytes themselves need it.
fn grow(buf: &mut Vec<u8>, extra: usize, max: usize) {
    let need = buf.len().saturating_add(extra);
    if need > buf.capacity() {
        let target = buf.capacity().saturating_mul(2).min(max).max(need);
        buf.reserve_exact(target - buf.len());
    }
}

impl Landed {
    /// The body's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Landed::Memory(b) => b.len() as u64,
            Landed::Spool(s) => s.size,
        }
    }

    /// Makes a spool file's bytes durable (before it may be committed); a
    /// body in memory is made durable by [`Landed::commit`].
    pub async fn sync(&self) -> StoreResult<()> {
        match self {
            Landed::Memory(_) => Ok(()),
            Landed::Spool(s) => s.sync().await,
        }
    }

    /// The body's SHA-256 (hex), its content address, on the blocking pool.
    pub async fn sha256(&self) -> StoreResult<String> {
        match self {
            Landed::Memory(data) => {
                let data = data.clone();
                tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&data)))
                    .await
                    .map_err(|e| StoreError::Index(format!("hash task: {e}")))
            }
            Landed::Spool(s) => s.sha256().await,
        }
    }

    /// The module-zip rules and `h1` of the body as `module@version`'s zip
    /// (its go.mod must equal `go_mod` if given), on the blocking pool. The
    /// outer error is ours (the check task failed), the inner one the zip's.
    pub async fn check_zip(
        &self,
        module: &str,
        version: &str,
        go_mod: Option<Vec<u8>>,
        limits: ZipLimits,
    ) -> StoreResult<Result<CheckedZip, ZipError>> {
        let (m, v) = (module.to_string(), version.to_string());
        let task = match self {
            Landed::Memory(data) => {
                let data = data.clone();
                tokio::task::spawn_blocking(move || {
                    let r = io::Cursor::new(&data[..]);
                    check_zip_reader(r, data.len() as u64, &m, &v, go_mod.as_deref(), &limits)
                })
            }
            Landed::Spool(spool) => {
                let p = spool.path.clone();
                tokio::task::spawn_blocking(move || {
                    check_zip_with_limits(&p, &m, &v, go_mod.as_deref(), &limits)
                })
            }
        };
        task.await
            .map_err(|e| StoreError::Index(format!("zip check task: {e}")))
    }

    /// Stores the body under `entry` (whose digest is the body's SHA-256).
    pub async fn commit(self, store: &dyn Store, entry: Entry) -> StoreResult<Entry> {
        match self {
            Landed::Memory(data) => store.commit_bytes(&data, entry).await,
            Landed::Spool(mut spool) => {
                spool.digest = entry.digest.clone();
                store.commit(spool, entry).await
            }
        }
    }
}

/// A store failure making the spool file, as the I/O error the download reports.
fn store_io(e: StoreError) -> io::Error {
    match e {
        StoreError::Io { source, .. } => source,
        e => io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    fn store(dir: &std::path::Path) -> EmbeddedStore {
        EmbeddedStore::open(dir).expect("open store")
    }

    fn spool_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count())
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_make_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = store(dir.path());
        let mut l = Landing::new(&st, 8);
        l.write(b"abcd").await.expect("write");
        l.write(b"efgh").await.expect("write");
        match l.finish().await.expect("finish") {
            Landed::Memory(b) => assert_eq!(&b[..], b"abcdefgh"),
            Landed::Spool(_) => panic!("spooled a body that fits"),
        }
        assert_eq!(spool_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn one_byte_over_moves_everything_to_the_spool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = store(dir.path());
        let mut l = Landing::new(&st, 8);
        l.write(b"abcdef").await.expect("write");
        l.write(b"ghi").await.expect("write");
        l.write(b"jk").await.expect("write");
        let Landed::Spool(spool) = l.finish().await.expect("finish") else {
            panic!("kept a body over the limit in memory");
        };
        assert_eq!(spool.size, 11);
        assert_eq!(std::fs::read(&spool.path).expect("read"), b"abcdefghijk");
        drop(spool); // not committed: removed
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(spool_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn clear_forgets_a_partial_body_in_memory_and_in_the_spool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = store(dir.path());
        let mut l = Landing::new(&st, 4);
        l.write(b"ab").await.expect("write");
        l.clear().await.expect("clear");
        l.write(b"cd").await.expect("write");
        let Landed::Memory(b) = l.finish().await.expect("finish") else {
            panic!("spooled");
        };
        assert_eq!(&b[..], b"cd");

        let mut l = Landing::new(&st, 4);
        l.write(b"partial body").await.expect("write");
        l.clear().await.expect("clear");
        l.write(b"whole").await.expect("write");
        let Landed::Spool(spool) = l.finish().await.expect("finish") else {
            panic!("the spool file made before clear is kept");
        };
        assert_eq!(spool.size, 5);
        assert_eq!(std::fs::read(&spool.path).expect("read"), b"whole");
    }

    #[tokio::test]
    async fn a_large_body_is_spooled_whole_through_one_bounded_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = store(dir.path());
        let mut l = Landing::new(&st, 100 << 10);
        let mut want = Vec::new();
        for i in 0..200u32 {
            // Chunks of odd sizes, one larger than the write buffer.
            let n = if i == 77 {
                SPOOL_WRITE_BUF + 3
            } else {
                16_000 + i as usize
            };
            let chunk: Vec<u8> = (0..n).map(|j| (i as usize * 31 + j) as u8).collect();
            l.write(&chunk).await.expect("write");
            assert!(
                l.buf.capacity() <= SPOOL_WRITE_BUF + n,
                "{}",
                l.buf.capacity()
            );
            want.extend_from_slice(&chunk);
        }
        let Landed::Spool(spool) = l.finish().await.expect("finish") else {
            panic!("kept {} bytes in memory", want.len());
        };
        assert_eq!(spool.size, want.len() as u64);
        assert!(std::fs::read(&spool.path).expect("read") == want);
    }

    #[test]
    fn grow_doubles_up_to_the_bound_only() {
        let mut b = Vec::new();
        grow(&mut b, 10, 100);
        assert!(b.capacity() >= 10);
        b.extend_from_slice(&[0; 10]);
        grow(&mut b, 60, 100);
        assert!((70..=100).contains(&b.capacity()), "{}", b.capacity());
        b.extend_from_slice(&[0; 60]);
        grow(&mut b, 30, 100);
        assert_eq!(b.capacity(), 100);
        b.extend_from_slice(&[0; 30]);
        grow(&mut b, 50, 100); // past the bound only because the bytes need it
        assert_eq!(b.capacity(), 150);
    }

    #[tokio::test]
    async fn zero_spools_every_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = store(dir.path());
        let mut l = Landing::new(&st, 0);
        l.write(b"x").await.expect("write");
        assert!(matches!(
            l.finish().await.expect("finish"),
            Landed::Spool(_)
        ));
    }
}
