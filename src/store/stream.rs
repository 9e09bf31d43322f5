//! Streaming a stored blob: memory as one chunk, files in large chunks read one ahead.
//!
//! `tokio::fs::File` behind a `ReaderStream` costs a blocking-pool trip per small read
//! and copies every byte twice (into the file's buffer, then into the stream's). Here a
//! file is read straight into the chunk that goes to the socket, and the next chunk is
//! already being read while hyper writes the current one, so disk and socket overlap.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::task::JoinHandle;

use super::{Blob, BlobBody};

/// Bytes per chunk read from a blob file. Memory per streaming client is at most two
/// of these (one being written, one read ahead): 100 clients hold ≤ 50 MiB.
pub const FILE_CHUNK: usize = 256 << 10;

type Read1 = JoinHandle<(std::fs::File, std::io::Result<Bytes>)>;

/// Reads the next `n` bytes of `file` on the blocking pool. A file shorter than its
/// index entry (truncated while being served) ends the stream with an error, so the
/// client sees a short body against its `Content-Length`, never a silent cut.
fn read_chunk(mut file: std::fs::File, n: usize) -> Read1 {
    tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(n);
        let r = file.read_exact(&mut buf).map(|()| buf.freeze());
        (file, r)
    })
}

impl Blob {
    /// The blob as a body stream of `Bytes` chunks.
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        enum State {
            Memory(Option<Bytes>),
            File { next: Option<Read1>, left: u64 },
        }
        let state = match self.body {
            BlobBody::Memory(b) => State::Memory(Some(b)),
            BlobBody::File(f) => {
                let first = (self.size as usize).min(FILE_CHUNK);
                State::File {
                    next: (self.size > 0).then(|| read_chunk(f, first)),
                    left: self.size - first as u64,
                }
            }
        };
        futures_util::stream::unfold(state, |state| async move {
            match state {
                State::Memory(b) => b.map(|b| (Ok(b), State::Memory(None))),
                State::File { next, left } => {
                    // After an error the stream ends: no read is pending.
                    let end = State::File {
                        next: None,
                        left: 0,
                    };
                    let (file, chunk) = match next?.await {
                        Ok(read) => read,
                        Err(e) => return Some((Err(std::io::Error::other(e)), end)),
                    };
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => return Some((Err(e), end)),
                    };
                    // Start the next read before handing this chunk to the socket.
                    let n = (left as usize).min(FILE_CHUNK);
                    let next = (n > 0).then(|| read_chunk(file, n));
                    Some((
                        Ok(chunk),
                        State::File {
                            next,
                            left: left - n as u64,
                        },
                    ))
                }
            }
        })
    }
}
