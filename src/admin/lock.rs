//! Whether a running modgate holds a sled database: a typed check of sled's file lock.
//!
//! sled takes an exclusive `flock` on `<dir>/db` for as long as a process has
//! the database open, and reports a second opener only in an error message.
//! Instead of matching that text, ask the kernel the same question first: try
//! the same lock, non-blocking, and release it at once. `EWOULDBLOCK` means
//! another open database holds it (another process, or this one).

use std::path::Path;

/// Whether the sled database in `dir` is open in some process right now.
pub fn held(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(dir.join("db")) else {
        return false; // no database there yet: nobody holds it
    };
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        // SAFETY: as above; closing `f` would release it too.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

/// Takes an exclusive lock on `path` (created if needed) for as long as the
/// returned file is open, the way sled does for its database; `Ok(None)` if
/// another open file holds it.
pub fn acquire(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(f));
    }
    let e = std::io::Error::last_os_error();
    match e.kind() {
        std::io::ErrorKind::WouldBlock => Ok(None),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sees_an_open_database() {
        let d = tempfile::tempdir().unwrap();
        assert!(!super::held(d.path()));
        let db = sled::open(d.path()).unwrap();
        assert!(super::held(d.path()));
        drop(db);
        // sled's flusher thread lets go of the database a moment after the drop.
        let start = std::time::Instant::now();
        while super::held(d.path()) {
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let lock = d.path().join("lock");
        let held = super::acquire(&lock).unwrap().expect("free");
        assert!(super::acquire(&lock).unwrap().is_none());
        drop(held);
        assert!(super::acquire(&lock).unwrap().is_some());
    }
}
