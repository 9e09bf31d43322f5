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

/// Moves a finished, synced file to its content address `dest` and makes
/// the rename durable (the directory fsynced); returns the installed file's
/// stamp. One call on the blocking pool does it all: a small miss used to
/// hop to the pool four times here (create the directory, rename, fsync,
/// stat), each hop a wake-up of a pool thread and of the runtime.
pub(super) fn install(from: &Path, dest: &Path) -> std::io::Result<FileStamp> {
    let dir = dest.parent().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "blob path without a directory",
        )
    })?;
    // The fan-out directory almost always exists: create it only when the
    // rename says it does not (a `mkdir` per miss is not free on a busy file system).
    if let Err(e) = std::fs::rename(from, dest) {
        if e.kind() != std::io::ErrorKind::NotFound || !from.exists() {
            return Err(e);
        }
        std::fs::create_dir_all(dir)?;
        std::fs::rename(from, dest)?;
    }
    // fsync the directory so the rename itself survives a power cut.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(FileStamp::of(&std::fs::metadata(dest)?))
}

/// Writes `data` to a new file at `tmp`, syncs it and [`install`]s it at
/// `dest`, in one call (for small blobs already in memory). `tmp` is
/// removed on any failure before the rename.
pub(super) fn write_and_install(
    tmp: &Path,
    dest: &Path,
    data: &[u8],
) -> std::io::Result<FileStamp> {
    use std::io::Write;
    // Not ours to remove if it was already there.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    let written = f.write_all(data).and_then(|()| f.sync_all());
    drop(f);
    match written.and_then(|()| install(tmp, dest)) {
        Ok(stamp) => Ok(stamp),
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_makes_a_missing_fan_out_directory_and_stamps_the_file() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("a.part");
        let dest = d.path().join("blobs/ab/abcd");
        let stamp = write_and_install(&tmp, &dest, b"hello").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert!(!tmp.exists());
        assert_eq!(stamp, FileStamp::of(&std::fs::metadata(&dest).unwrap()));
        // The directory exists now: the second install renames at once.
        let tmp2 = d.path().join("b.part");
        write_and_install(&tmp2, &d.path().join("blobs/ab/abce"), b"again").unwrap();
        assert!(!tmp2.exists());
    }

    #[test]
    fn a_failed_write_leaves_no_file_behind() {
        let d = tempfile::tempdir().unwrap();
        // The destination's directory cannot be made: a file is in its way.
        std::fs::write(d.path().join("blobs"), b"not a directory").unwrap();
        let tmp = d.path().join("a.part");
        let dest = d.path().join("blobs/ab/abcd");
        assert!(write_and_install(&tmp, &dest, b"hello").is_err());
        assert!(!tmp.exists());
        // A spool name already taken is refused, never overwritten.
        std::fs::write(&tmp, b"someone else's").unwrap();
        assert!(write_and_install(&tmp, &d.path().join("x"), b"hello").is_err());
        assert_eq!(std::fs::read(&tmp).unwrap(), b"someone else's");
    }
}
