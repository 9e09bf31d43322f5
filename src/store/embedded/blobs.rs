//! Blob files on disk: opened with their size checked, small ones proven whole, large ones hashed through the very handle that is served.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::SMALL_BLOB;

/// What identifies one version of a file on disk: if any of it changes, the
/// content may have changed too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    dev: u64,
}

impl FileStamp {
    #[cfg(unix)]
    pub(super) fn of(m: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            size: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            inode: m.ino(),
            dev: m.dev(),
        }
    }

    #[cfg(not(unix))]
    pub(super) fn of(m: &std::fs::Metadata) -> FileStamp {
        let mtime_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        FileStamp {
            size: m.len(),
            mtime_ns,
            inode: 0,
            dev: 0,
        }
    }
}

/// Why a blob on disk cannot be served.
pub(super) enum BlobFault {
    /// Missing or unreadable: nothing to quarantine.
    Missing(String),
    /// Present but not what its name says.
    Damaged(String),
    Io(std::io::Error),
}

/// A blob opened by [`open_blob`].
pub(super) enum Opened {
    /// Small: read whole and proven.
    Small(Vec<u8>),
    /// Large and proven before in this process with this same stamp.
    Proven(std::fs::File),
    /// Large and not (or no longer) known good: hash it before serving.
    Unproven(std::fs::File, FileStamp),
}

pub(super) fn lookup_stamp(
    verified: &Mutex<HashMap<String, FileStamp>>,
    digest: &str,
) -> Option<FileStamp> {
    // A panic elsewhere cannot leave the map inconsistent: it is only a cache.
    verified
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(digest)
        .copied()
}

/// Opens a blob and checks its size; reads and proves it if small, and tells
/// whether a large one still needs proving. Blocking: run it off the runtime.
pub(super) fn open_blob(
    path: &Path,
    digest: &str,
    size: u64,
    verified: &Mutex<HashMap<String, FileStamp>>,
) -> Result<Opened, BlobFault> {
    let mut file = std::fs::File::open(path).map_err(|e| BlobFault::Missing(e.to_string()))?;
    let meta = file.metadata().map_err(BlobFault::Io)?;
    if meta.len() != size {
        return Err(BlobFault::Damaged(format!(
            "size {} but index says {size}",
            meta.len()
        )));
    }
    if size < SMALL_BLOB {
        // Read whole and hashed in this one blocking-pool trip; these very
        // bytes are what is served and cached (no second read).
        let mut data = Vec::with_capacity(size as usize);
        (&mut file)
            .take(size + 1)
            .read_to_end(&mut data)
            .map_err(BlobFault::Io)?;
        if data.len() as u64 != size {
            return Err(BlobFault::Damaged(format!(
                "read {} bytes but index says {size}",
                data.len()
            )));
        }
        let got = hex::encode(Sha256::digest(&data));
        if got != digest {
            return Err(BlobFault::Damaged(format!("content hashes to {got}")));
        }
        return Ok(Opened::Small(data));
    }
    let stamp = FileStamp::of(&meta);
    if lookup_stamp(verified, digest) == Some(stamp) {
        return Ok(Opened::Proven(file));
    }
    Ok(Opened::Unproven(file, stamp))
}

/// Hashes a large blob through the same open file that will be served, so
/// what was proven is what is streamed (a rename over the path cannot
/// interpose), unless a concurrent reader proved this same file meanwhile.
/// Blocking.
pub(super) fn prove_file(
    mut file: std::fs::File,
    stamp: FileStamp,
    digest: &str,
    size: u64,
    verified: &Mutex<HashMap<String, FileStamp>>,
) -> Result<std::fs::File, BlobFault> {
    if lookup_stamp(verified, digest) == Some(stamp) {
        return Ok(file);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; (size as usize).clamp(4096, 256 * 1024)];
    loop {
        let n = file.read(&mut buf).map_err(BlobFault::Io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let got = hex::encode(hasher.finalize());
    if got != digest {
        return Err(BlobFault::Damaged(format!("content hashes to {got}")));
    }
    file.rewind().map_err(BlobFault::Io)?;
    verified
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(digest.to_string(), stamp);
    Ok(file)
}
