//! Errors of [`check_zip`](super::check_zip): one variant per rule, each naming the offending entry.

use std::io;

use crate::module::PathError;

/// Why a module zip was rejected. Variants that concern one entry carry its full name
/// (`file`, as stored in the zip, lossily decoded if it is not UTF-8).
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// Opening, sizing or reading the zip file failed.
    #[error("reading module zip: {0}")]
    Io(#[from] io::Error),
    /// The module path is malformed (x/mod `module.CheckPath`).
    #[error("{0}")]
    ModulePath(#[source] PathError),
    /// The version is not in canonical form.
    #[error("version {version:?} is not canonical (should be {canonical:?})")]
    NotCanonical { version: String, canonical: String },
    /// The module path and version do not go together (x/mod `module.Check`).
    #[error("{0}")]
    Module(#[source] crate::module::ModuleError),

    // ---- zip container ----
    /// The zip file itself is larger than the limit.
    #[error("module zip file is too large ({size} bytes; limit is {limit} bytes)")]
    ZipFileTooLarge { size: u64, limit: u64 },
    /// The archive structure (end record, central directory) is not a valid zip.
    #[error("zip: not a valid zip file: {reason}")]
    NotAZip { reason: &'static str },
    /// An entry's local file header is missing or has a bad signature.
    #[error("{file}: zip: bad local file header")]
    BadLocalHeader { file: String },
    /// An entry's data runs past the end of the file, or its deflate stream ends early.
    #[error("{file}: zip: unexpected end of compressed data")]
    Truncated { file: String },
    /// An entry's deflate stream is corrupt.
    #[error("{file}: zip: corrupt deflate data")]
    CorruptData { file: String },
    /// An entry uses a compression method other than store (0) or deflate (8).
    #[error("{file}: zip: unsupported compression algorithm {method}")]
    UnsupportedMethod { file: String, method: u16 },
    /// The CRC-32 of an entry's content differs from the recorded one.
    #[error("{file}: zip: checksum error (recorded {expected:08x}, actual {actual:08x})")]
    Checksum {
        file: String,
        expected: u32,
        actual: u32,
    },
    /// An entry decompresses to more bytes than its header declares (a lying header /
    /// zip bomb); decompression stopped at the first byte past the declared size.
    #[error("{file}: uncompressed size is larger than declared size ({declared} bytes)")]
    LargerThanDeclared { file: String, declared: u64 },
    /// An entry decompresses to fewer bytes than its header declares.
    #[error("{file}: uncompressed size {actual} is smaller than declared size ({declared} bytes)")]
    SmallerThanDeclared {
        file: String,
        declared: u64,
        actual: u64,
    },

    // ---- module zip rules (x/mod zip.CheckZip) ----
    /// An entry's name does not start with `module@version/`.
    #[error("{file}: path does not have prefix {prefix:?}")]
    MissingPrefix { file: String, prefix: String },
    /// An entry's name is not clean (`path.Clean(name) != name`): `..`, `.`, `//` elements.
    #[error("{file}: file path is not clean")]
    PathNotClean { file: String },
    /// An entry's name fails x/mod `module.CheckFilePath`.
    #[error("{file}: {source}")]
    InvalidFilePath {
        file: String,
        #[source]
        source: PathError,
    },
    /// Two entries are equal under Unicode simple case folding but differ.
    #[error("{file}: case-insensitive file name collision: {other:?} and {path:?}")]
    CaseCollision {
        file: String,
        other: String,
        path: String,
    },
    /// A path is used both as a file and as a directory.
    #[error("{file}: entry {path:?} is both a file and a directory")]
    FileAndDirectory { file: String, path: String },
    /// Two entries for the same file.
    #[error("{file}: multiple entries for file {path:?}")]
    DuplicateFile { file: String, path: String },
    /// A go.mod (any case) below the module root: a submodule must not be in this zip.
    #[error("{file}: go.mod file not in module root directory")]
    GoModNotInRoot { file: String },
    /// The root go.mod is not spelled `go.mod`.
    #[error("{file}: go.mod files must have lowercase names")]
    GoModCase { file: String },
    /// The total uncompressed size (declared, or actually decompressed) exceeds the limit.
    #[error("total uncompressed size of module contents too large (max size is {limit} bytes)")]
    TotalTooLarge { limit: u64 },
    /// The root go.mod is larger than the limit.
    #[error("{file}: go.mod file too large (max size is {limit} bytes)")]
    GoModTooLarge { file: String, limit: u64 },
    /// The root LICENSE is larger than the limit.
    #[error("{file}: LICENSE file too large (max size is {limit} bytes)")]
    LicenseTooLarge { file: String, limit: u64 },
    /// The go.mod inside the zip differs from the go.mod served for the same version.
    #[error("{file}: go.mod in zip differs from the module's go.mod file")]
    GoModMismatch { file: String },
    /// A name contains a newline, which the `h1:` summary cannot represent.
    #[error("{file}: dirhash: filenames with newlines are not supported")]
    NewlineInName { file: String },
}
