//! Module paths and versions: the rules of `golang.org/x/mod/module` and `semver` (x/mod v0.7.0).
mod letter;
pub mod path;
pub mod pattern;
pub mod pseudo;
pub mod semver;
pub mod version;

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod proptests;

pub use path::{
    PathError, PathKind, PathReason, check_file_path, check_import_path, check_path,
    check_path_major, escape_path, match_path_major, split_path_version, unescape_path,
};
pub use pseudo::{
    PseudoTime, is_pseudo_version, is_zero_pseudo_version, pseudo_version, pseudo_version_base,
    pseudo_version_rev, pseudo_version_time, zero_pseudo_version,
};
pub use version::{
    ModuleError, VersionError, VersionReason, canonical_version, check, check_version_for_path,
    escape_version, unescape_version,
};
