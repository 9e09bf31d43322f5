//! The `h1:` directory hash (x/mod `sumdb/dirhash.Hash1`).

use std::io::{self, Read};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// An error from [`hash1`].
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A file name contains `\n`, which would make the summary ambiguous.
    #[error("dirhash: filenames with newlines are not supported: {name:?}")]
    NewlineInName { name: String },
    /// Opening or reading a file failed.
    #[error("dirhash: reading {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Lowercase hex of a SHA-256 digest.
pub(crate) fn hex32(d: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// The summary builder: feed `(name, sha256(content))` pairs in sorted name order.
pub(crate) struct Summary {
    h: Sha256,
}

impl Summary {
    pub(crate) fn new() -> Self {
        Summary { h: Sha256::new() }
    }

    /// Adds the line `hex(digest)  name\n`. The caller has rejected names with `\n`.
    pub(crate) fn line(&mut self, name: &[u8], digest: &[u8; 32]) {
        self.h.update(hex32(digest));
        self.h.update(b"  ");
        self.h.update(name);
        self.h.update(b"\n");
    }

    pub(crate) fn finish(self) -> String {
        let sum = self.h.finalize();
        format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(sum.as_slice())
        )
    }
}

pub(crate) fn digest_of(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of everything `r` yields, read in 64 KiB chunks (never buffers the whole file).
fn digest_reader<R: Read>(r: &mut R) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

/// x/mod `dirhash.Hash1`: `h1:` + base64(SHA-256 of the summary), where the summary has one
/// line `hex(sha256(content))  name\n` per file, ordered by byte-wise sort of the names.
///
/// `open` is called once per name, in sorted order, and each file is streamed through SHA-256.
/// A name that appears twice is hashed twice (as in Go). Names containing `\n` are rejected
/// before anything is opened past them.
pub fn hash1<I, S, F, R>(files: I, mut open: F) -> Result<String, HashError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
    F: FnMut(&str) -> io::Result<R>,
    R: Read,
{
    let mut names: Vec<String> = files.into_iter().map(|s| s.as_ref().to_string()).collect();
    names.sort_unstable();
    let mut summary = Summary::new();
    for name in &names {
        if name.contains('\n') {
            return Err(HashError::NewlineInName { name: name.clone() });
        }
        let io_err = |source| HashError::Io {
            name: name.clone(),
            source,
        };
        let mut r = open(name).map_err(io_err)?;
        let d = digest_reader(&mut r).map_err(io_err)?;
        summary.line(name.as_bytes(), &d);
    }
    Ok(summary.finish())
}

/// The `h1:` hash of a go.mod file, as recorded in `go.sum` lines ending in `/go.mod`:
/// [`hash1`] over the single file named `go.mod`.
pub fn hash_go_mod(data: &[u8]) -> String {
    let mut summary = Summary::new();
    summary.line(b"go.mod", &digest_of(data));
    summary.finish()
}
