//! `check_zip`: x/mod `zip.CheckZip` + `Unzip` rules and `dirhash.HashZip` in one streaming pass.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::dirhash::Summary;
use super::error::ZipError;
use super::fold::{base, clean_bytes, dir, equal_fold, str_to_fold};
use super::zipfmt::{self, Buffers, Entry, Sink};
use super::{CheckedZip, ZipLimits};
use crate::module::{
    PathError, PathKind, PathReason, canonical_version, check, check_file_path, check_path,
};

/// x/mod `collisionChecker`: case-insensitive collisions and file/directory conflicts.
#[derive(Default)]
struct Collisions {
    seen: HashMap<String, (String, bool)>,
}

impl Collisions {
    fn check(&mut self, file: &str, p: &str, is_dir: bool) -> Result<(), ZipError> {
        let (mut p, mut is_dir) = (p.to_string(), is_dir);
        loop {
            let fold = str_to_fold(&p);
            match self.seen.get(&fold) {
                Some((other, other_dir)) => {
                    if *other != p {
                        return Err(ZipError::CaseCollision {
                            file: file.to_string(),
                            other: other.clone(),
                            path: p,
                        });
                    }
                    if is_dir != *other_dir {
                        return Err(ZipError::FileAndDirectory {
                            file: file.to_string(),
                            path: p,
                        });
                    }
                    if !is_dir {
                        return Err(ZipError::DuplicateFile {
                            file: file.to_string(),
                            path: p,
                        });
                    }
                }
                None => {
                    self.seen.insert(fold, (p.clone(), is_dir));
                }
            }
            let parent = dir(&p);
            if parent == "." {
                return Ok(());
            }
            p = parent;
            is_dir = true;
        }
    }
}

/// Checks one entry's name and declared size as x/mod `checkZip` does.
/// Returns `Ok(true)` for a regular file that Unzip would extract.
fn check_entry(
    e: &Entry,
    prefix: &str,
    limits: &ZipLimits,
    collisions: &mut Collisions,
    total: &mut u64,
    size_error: &mut bool,
) -> Result<bool, ZipError> {
    let file = || e.display_name();
    let Some(rest) = e.name.strip_prefix(prefix.as_bytes()) else {
        return Err(ZipError::MissingPrefix {
            file: file(),
            prefix: prefix.to_string(),
        });
    };
    if rest.is_empty() {
        return Ok(false);
    }
    let (name, is_dir) = match rest.strip_suffix(b"/") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    if clean_bytes(name) != name {
        return Err(ZipError::PathNotClean { file: file() });
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return Err(ZipError::InvalidFilePath {
            file: file(),
            source: PathError {
                kind: PathKind::File,
                path: String::from_utf8_lossy(name).into_owned(),
                reason: PathReason::InvalidChar(char::REPLACEMENT_CHARACTER),
            },
        });
    };
    check_file_path(name).map_err(|source| ZipError::InvalidFilePath {
        file: file(),
        source,
    })?;
    collisions.check(&file(), name, is_dir)?;
    if is_dir {
        return Ok(false);
    }
    let b = base(name);
    if equal_fold(b, "go.mod") {
        if b != name {
            return Err(ZipError::GoModNotInRoot { file: file() });
        }
        if name != "go.mod" {
            return Err(ZipError::GoModCase { file: file() });
        }
    }
    // Go converts the declared size to int64; a "negative" size is a size error.
    let sz = e.uncompressed_size;
    if sz <= i64::MAX as u64 && limits.max_uncompressed.saturating_sub(*total) >= sz {
        *total += sz;
    } else {
        *size_error = true;
    }
    if name == "go.mod" && sz > limits.max_go_mod && sz <= i64::MAX as u64 {
        return Err(ZipError::GoModTooLarge {
            file: file(),
            limit: limits.max_go_mod,
        });
    }
    if name == "LICENSE" && sz > limits.max_license && sz <= i64::MAX as u64 {
        return Err(ZipError::LicenseTooLarge {
            file: file(),
            limit: limits.max_license,
        });
    }
    Ok(true)
}

/// Hashes one entry's content, counts it against the total limit, and keeps go.mod.
struct EntrySink<'a> {
    sha: Sha256,
    keep: Option<Vec<u8>>,
    total: &'a mut u64,
    limit: u64,
}

impl Sink for EntrySink<'_> {
    fn write(&mut self, chunk: &[u8]) -> Result<(), ZipError> {
        *self.total += chunk.len() as u64;
        if *self.total > self.limit {
            return Err(ZipError::TotalTooLarge { limit: self.limit });
        }
        self.sha.update(chunk);
        if let Some(k) = &mut self.keep {
            k.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// [`check_zip`](super::check_zip) with explicit limits.
pub fn check_zip_with_limits(
    path: &Path,
    module: &str,
    version: &str,
    mod_file: Option<&[u8]>,
    limits: &ZipLimits,
) -> Result<CheckedZip, ZipError> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    check_zip_reader(
        BufReader::with_capacity(128 << 10, f),
        size,
        module,
        version,
        mod_file,
        limits,
    )
}

/// The core of [`check_zip`](super::check_zip) over any seekable reader of `size` bytes
/// (a spooled file, or an in-memory buffer in tests and fuzzing).
pub fn check_zip_reader<R: Read + Seek>(
    mut r: R,
    size: u64,
    module: &str,
    version: &str,
    mod_file: Option<&[u8]>,
    limits: &ZipLimits,
) -> Result<CheckedZip, ZipError> {
    check_path(module).map_err(ZipError::ModulePath)?;
    let canonical = canonical_version(version);
    if canonical != version {
        return Err(ZipError::NotCanonical {
            version: version.to_string(),
            canonical,
        });
    }
    check(module, version).map_err(ZipError::Module)?;
    if size > limits.max_zip_file {
        return Err(ZipError::ZipFileTooLarge {
            size,
            limit: limits.max_zip_file,
        });
    }
    let entries = zipfmt::read_directory(&mut r, size)?;
    let prefix = format!("{module}@{version}/");

    // Pass 1: names and declared sizes (x/mod checkZip). Go reports the size error
    // ahead of the per-file errors; we return the first per-file error otherwise.
    let mut collisions = Collisions::default();
    let mut declared_total = 0u64;
    let mut size_error = false;
    let mut first_invalid = None;
    let mut files = 0usize;
    for e in &entries {
        match check_entry(
            e,
            &prefix,
            limits,
            &mut collisions,
            &mut declared_total,
            &mut size_error,
        ) {
            Ok(is_file) => files += usize::from(is_file),
            Err(err) => {
                first_invalid.get_or_insert(err);
            }
        }
    }
    if size_error {
        return Err(ZipError::TotalTooLarge {
            limit: limits.max_uncompressed,
        });
    }
    if let Some(err) = first_invalid {
        return Err(err);
    }
    if let Some(e) = entries.iter().find(|e| e.name.contains(&b'\n')) {
        return Err(ZipError::NewlineInName {
            file: e.display_name(),
        });
    }

    // Pass 2: content. dirhash.HashZip opens the last entry of each name; Unzip reads every
    // file entry, and file names are unique by now, so "last of each name" covers both.
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last.insert(&e.name, i);
    }
    let mut order: Vec<usize> = last.values().copied().collect();
    order.sort_unstable_by_key(|&i| (entries[i].header_offset, i)); // sequential disk reads
    let go_mod_name = format!("{prefix}go.mod");
    let mut digests: Vec<[u8; 32]> = vec![[0u8; 32]; entries.len()];
    let mut go_mod = None;
    let mut uncompressed = 0u64;
    let largest = entries
        .iter()
        .map(|e| e.uncompressed_size)
        .max()
        .unwrap_or(0);
    let mut bufs = Buffers::for_zip(size, largest);
    for i in order {
        let e = &entries[i];
        let is_go_mod = e.name == go_mod_name.as_bytes();
        let mut sink = EntrySink {
            sha: Sha256::new(),
            keep: is_go_mod.then(|| Vec::with_capacity(e.uncompressed_size.min(1 << 20) as usize)),
            total: &mut uncompressed,
            limit: limits.max_uncompressed,
        };
        zipfmt::stream_entry(&mut r, size, e, &mut bufs, &mut sink)?;
        digests[i] = sink.sha.finalize().into();
        if let Some(data) = sink.keep {
            if let Some(want) = mod_file
                && want != data.as_slice()
            {
                return Err(ZipError::GoModMismatch {
                    file: e.display_name(),
                });
            }
            go_mod = Some(data);
        }
    }

    // Summary in sorted name order (duplicates repeat the last entry's digest, as in Go).
    let mut names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
    names.sort_unstable();
    let mut summary = Summary::new();
    for name in names {
        summary.line(name, &digests[last[name]]);
    }
    Ok(CheckedZip {
        h1: summary.finish(),
        go_mod,
        files,
        uncompressed,
    })
}
