//! `h1:` hashes of module zips and go.mod files, and the module-zip rules
//! (x/mod `sumdb/dirhash` and `zip`, v0.7.0, with go1.19 `archive/zip` reading semantics).
//!
//! - [`hash_go_mod`] and [`hash1`]: the `h1:` directory hash.
//! - [`check_zip`]: opens a spooled module zip, applies x/mod `zip.CheckZip`/`Unzip` rules and
//!   computes its `h1:` (exactly `dirhash.HashZip`) in the same streaming pass.
//!
//! Everything here is synchronous and panic-free on any input; call it from a blocking task.

mod check;
mod dirhash;
mod error;
pub mod fold;
mod zipfmt;

use std::path::Path;

pub use check::{check_zip_reader, check_zip_with_limits};
pub use dirhash::{HashError, hash_go_mod, hash1};
pub use error::ZipError;

/// Largest module zip file, and largest total uncompressed content (x/mod `MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// Largest go.mod in a module zip (x/mod `MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// Largest LICENSE in a module zip (x/mod `MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;

/// Size limits applied by [`check_zip_with_limits`]; [`Default`] is x/mod's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest zip file on disk.
    pub max_zip_file: u64,
    /// Largest total uncompressed content, both as declared and as actually decompressed.
    pub max_uncompressed: u64,
    /// Largest root go.mod.
    pub max_go_mod: u64,
    /// Largest root LICENSE.
    pub max_license: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_zip_file: MAX_ZIP_FILE,
            max_uncompressed: MAX_ZIP_FILE,
            max_go_mod: MAX_GO_MOD,
            max_license: MAX_LICENSE,
        }
    }
}

/// A module zip that passed [`check_zip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedZip {
    /// `h1:` hash of the zip (x/mod `dirhash.HashZip`), to compare with the go.sum line.
    pub h1: String,
    /// The content of `module@version/go.mod`, if the zip has one.
    pub go_mod: Option<Vec<u8>>,
    /// Number of regular files (entries that `Unzip` would extract).
    pub files: usize,
    /// Total bytes decompressed (all entries hashed).
    pub uncompressed: u64,
}

/// Checks the module zip at `path` for `module@version` with the default limits.
/// When `mod_file` is given and the zip has a root go.mod, both must be byte-identical.
pub fn check_zip(
    path: &Path,
    module: &str,
    version: &str,
    mod_file: Option<&[u8]>,
) -> Result<CheckedZip, ZipError> {
    check_zip_with_limits(path, module, version, mod_file, &ZipLimits::default())
}
