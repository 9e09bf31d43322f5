//! Module paths and versions: the rules of `golang.org/x/mod/module` and `semver`.
pub mod path;
pub mod semver;
pub mod version;

pub use path::{
    PathError, check_file_path, check_import_path, check_path, escape_path, unescape_path,
};
pub use version::{VersionError, check, escape_version, unescape_version};
