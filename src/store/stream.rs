//! Streaming a stored blob: memory as one chunk, files in large chunks with few thread hops.
//!
//! `tokio::fs::File` behind a `ReaderStream` costs a blocking-pool trip per small read
//! and copies every byte twice (into the file's buffer, then into the stream's). Here a
//! file is read straight into the chunk that goes to the socket. On Linux a chunk is
//! first read right on the async worker with `preadv2(RWF_NOWAIT)`, which succeeds only
//! for bytes already in the page cache (a memory copy, as cheap as the socket write that
//! follows) and never waits for the disk; only what would wait goes to the blocking pool.
//! For warm blobs that removes the thread hand-offs that dominated a zip hit's profile.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use super::{Blob, BlobBody};

/// Bytes per chunk read from a blob file. Memory per streaming client is about one
/// chunk (hyper asks for the next once the last is written): 100 clients hold ~25 MiB.
pub const FILE_CHUNK: usize = 256 << 10;

/// Where a file stream is.
struct FileCursor {
    file: Arc<std::fs::File>,
    offset: u64,
    left: u64,
    /// Cleared when the file system refuses non-waiting reads: the blocking pool only.
    nowait: bool,
}

impl FileCursor {
    /// The next chunk: from the page cache on this thread if it is all there, else
    /// (or for the part that is not) on the blocking pool. A file shorter than its
    /// index entry (truncated while served) is an error, so the client sees a body
    /// shorter than its `Content-Length`, never a silent cut.
    async fn next_chunk(&mut self) -> std::io::Result<Bytes> {
        let n = (self.left as usize).min(FILE_CHUNK);
        let mut buf = Vec::with_capacity(n);
        if self.nowait {
            match read_cached(&self.file, &mut buf, self.offset, n) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => self.nowait = false,
                Err(e) => return Err(e),
            }
        }
        if buf.len() < n {
            let (file, offset) = (self.file.clone(), self.offset);
            buf = tokio::task::spawn_blocking(move || read_at(&file, buf, offset, n))
                .await
                .map_err(std::io::Error::other)??;
        }
        if buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob file is shorter than its index entry",
            ));
        }
        self.offset += buf.len() as u64;
        self.left -= buf.len() as u64;
        Ok(Bytes::from(buf))
    }
}

/// Appends to `buf` (up to `n` bytes in all) from `file` at `offset + buf.len()`,
/// waiting for the disk as needed; stops early only at end of file. Blocking.
fn read_at(
    file: &std::fs::File,
    mut buf: Vec<u8>,
    offset: u64,
    n: usize,
) -> std::io::Result<Vec<u8>> {
    let start = buf.len();
    let mut f = file;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset + start as u64))?;
    // `read_to_end` fills the spare capacity without zeroing it first.
    f.take((n - start) as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Appends to `buf` (up to `n` bytes in all) only what the page cache already holds,
/// without waiting for the disk; `Unsupported` where such reads do not exist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_cached(
    file: &std::fs::File,
    buf: &mut Vec<u8>,
    offset: u64,
    n: usize,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while buf.len() < n {
        let want = n - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..want];
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let at = (offset + buf.len() as u64) as libc::off_t;
        // SAFETY: `iov` points at `spare`, writable memory of `iov_len` bytes owned by
        // `buf`, which outlives the call; the kernel writes at most that many bytes.
        let got = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                // Not in the page cache: the rest goes to the blocking pool.
                Some(libc::EAGAIN) => Ok(()),
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
                    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
                }
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
        if got == 0 {
            return Ok(()); // end of file; the caller decides what a short file means
        }
        // SAFETY: the kernel initialised `got` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + got as usize) };
    }
    Ok(())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_cached(_: &std::fs::File, _: &mut Vec<u8>, _: u64, _: usize) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

impl Blob {
    /// The blob as a body stream of `Bytes` chunks.
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        enum State {
            Memory(Option<Bytes>),
            File(FileCursor),
            Done,
        }
        let state = match self.body {
            BlobBody::Memory(b) => State::Memory(Some(b)),
            BlobBody::File(f) => State::File(FileCursor {
                file: Arc::new(f),
                offset: 0,
                left: self.size,
                nowait: true,
            }),
        };
        futures_util::stream::unfold(state, |state| async move {
            match state {
                State::Memory(b) => b.map(|b| (Ok(b), State::Memory(None))),
                State::File(c) if c.left == 0 => None,
                State::File(mut c) => match c.next_chunk().await {
                    Ok(chunk) => Some((Ok(chunk), State::File(c))),
                    Err(e) => Some((Err(e), State::Done)),
                },
                State::Done => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn collect(blob: Blob) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = std::pin::pin!(blob.into_stream());
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    fn file_blob(path: &std::path::Path, size: u64) -> Blob {
        Blob {
            size,
            body: BlobBody::File(std::fs::File::open(path).unwrap()),
        }
    }

    /// Both read paths: the page cache on the worker, and the blocking pool for what
    /// is not cached (pages dropped with `POSIX_FADV_DONTNEED` after an fsync).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_and_uncached_files_stream_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..(3 * FILE_CHUNK + 1234) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(
            collect(file_blob(&path, data.len() as u64)).await.unwrap(),
            data
        );
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(&path).unwrap();
            f.sync_all().unwrap();
            // SAFETY: a plain advisory call on a valid descriptor.
            let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(r, 0);
        }
        assert_eq!(
            collect(file_blob(&path, data.len() as u64)).await.unwrap(),
            data
        );
        // Empty and memory blobs.
        std::fs::write(&path, b"").unwrap();
        assert!(collect(file_blob(&path, 0)).await.unwrap().is_empty());
        let mem = Blob {
            size: 3,
            body: BlobBody::Memory(Bytes::from_static(b"abc")),
        };
        assert_eq!(collect(mem).await.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_entry_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![1u8; 1000]).unwrap();
        let err = collect(file_blob(&path, 5000)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
