//! Where a downloaded zip lands: in memory while it is small, in the store's spool beyond that.
//!
//! ```text
//! bytes ─► memory (up to limits.zip_in_memory_bytes)
//!            │ one more byte
//!            ▼
//!          spool file (data_dir/tmp, created only now) ─► written through a 1 MiB buffer
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
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::modzip::{CheckedZip, ZipError, ZipLimits, check_zip_reader, check_zip_with_limits};
use crate::store::{Entry, Spool, Store, StoreError, StoreResult};

/// The buffer a spooled download is written through: each write to a tokio
/// `File` is a trip to the blocking pool, and body chunks are a few KiB.
const SPOOL_WRITE_BUF: usize = 1 << 20;

/// A download in progress.
pub struct Landing<'a> {
    store: &'a dyn Store,
    in_memory: usize,
    mem: Vec<u8>,
    spool: Option<(Spool, BufWriter<tokio::fs::File>)>,
}

/// A finished download.
pub enum Landed {
    /// The whole body, at most `in_memory` bytes.
    Memory(Bytes),
    /// The body in a spool file (written and flushed, not yet synced), with its size.
    Spool(Spool),
}

impl<'a> Landing<'a> {
    /// A download of up to `in_memory` bytes kept in memory; 0 spools every byte.
    pub fn new(store: &'a dyn Store, in_memory: u64) -> Landing<'a> {
        Landing {
            store,
            in_memory: usize::try_from(in_memory).unwrap_or(usize::MAX),
            mem: Vec::new(),
            spool: None,
        }
    }

    /// Appends `chunk`, moving what is held to a spool file first if it
    /// would no longer fit in memory.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.spool.is_none() && self.mem.len().saturating_add(chunk.len()) > self.in_memory {
            let (spool, file) = self.store.spool().await.map_err(store_io)?;
            let mut out = BufWriter::with_capacity(SPOOL_WRITE_BUF, file);
            out.write_all(&self.mem).await?;
            self.mem = Vec::new();
            self.spool = Some((spool, out));
        }
        match &mut self.spool {
            Some((_, out)) => out.write_all(chunk).await,
            None => {
                self.mem.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// Forgets every byte written so far (a previous proxy's partial body);
    /// a spool file already made is emptied and reused.
    pub async fn clear(&mut self) -> io::Result<()> {
        self.mem.clear();
        if let Some((_, out)) = &mut self.spool {
            out.flush().await?;
            let file = out.get_mut();
            file.set_len(0).await?;
            file.rewind().await?;
        }
        Ok(())
    }

    /// The download's bytes, where they landed. A spool file is flushed, not synced.
    pub async fn finish(self) -> io::Result<Landed> {
        match self.spool {
            None => Ok(Landed::Memory(Bytes::from(self.mem))),
            Some((mut spool, mut out)) => {
                out.flush().await?;
                let file = out.into_inner();
                spool.size = file.metadata().await?.len();
                Ok(Landed::Spool(spool))
            }
        }
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
    /// (its go.mod must equal `go_mod` if given), on the blocking pool.
    pub async fn check_zip(
        &self,
        module: &str,
        version: &str,
        go_mod: Option<Vec<u8>>,
        limits: ZipLimits,
    ) -> Result<CheckedZip, ZipError> {
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
            .map_err(|e| ZipError::Io(io::Error::other(format!("zip check task: {e}"))))?
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
