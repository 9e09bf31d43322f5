//! Version errors, `module.Check` (path + version consistency) and the `!`-case encoding of versions.

use super::path::{
    PathError, PathReason, Rules, check_elem, check_path, escape_string, split_path_version,
    unescape_string,
};
use super::semver;

/// Why a version is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionReason {
    #[error("not a semantic version")]
    NotSemver,
    /// Not usable as a file name (versions appear in proxy URLs and cache paths).
    #[error("disallowed version string ({0})")]
    Disallowed(PathReason),
    /// An escaped version with an upper-case letter, a non-ASCII char, or a `!`
    /// not followed by a lower-case letter.
    #[error("invalid escape sequence")]
    InvalidEscape,
    /// The major version does not match the module path's major-version suffix.
    #[error("should be {want}, not {got}")]
    WrongMajor { want: String, got: String },
    /// Not of any pseudo-version form.
    #[error("syntax error")]
    PseudoSyntax,
    #[error("malformed time {0:?}")]
    MalformedTime(String),
    /// A `vX.0.0-` pseudo-version (no base) carrying build metadata such as `+incompatible`.
    #[error("lacks base version, but has build metadata {0:?}")]
    BuildWithoutBase(String),
    /// A `vX.Y.0-0.` pseudo-version, whose base would be `vX.Y.-1`.
    #[error("version before {0} would have negative patch number")]
    NegativePatch(String),
}

/// A version that is invalid where it was given (x/mod `InvalidVersionError`), like
/// `version "v3.0.0" invalid: should be v2, not v3`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {version:?} invalid: {reason}", self.noun())]
pub struct VersionError {
    pub version: String,
    /// Whether the version was expected to be a pseudo-version.
    pub pseudo: bool,
    pub reason: VersionReason,
}

impl VersionError {
    pub(crate) fn new(version: &str, reason: VersionReason) -> Self {
        VersionError {
            version: version.to_string(),
            pseudo: false,
            reason,
        }
    }

    pub(crate) fn pseudo(version: &str, reason: VersionReason) -> Self {
        VersionError {
            pseudo: true,
            ..VersionError::new(version, reason)
        }
    }

    /// `"pseudo-version"` or `"version"`.
    pub fn noun(&self) -> &'static str {
        if self.pseudo {
            "pseudo-version"
        } else {
            "version"
        }
    }
}

/// An invalid module path, or a version that is invalid for that module path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Path(#[from] PathError),
    /// Displayed like Go's `ModuleError`: `rsc.io/quote@v2.0.0: invalid version: should be v0 or v1, not v2`.
    #[error("{path}@{}: invalid {}: {}", .source.version, .source.noun(), .source.reason)]
    Version { path: String, source: VersionError },
}

/// Checks that `path` is a valid module path, `version` a valid semantic version,
/// and that they agree on the major version (x/mod `module.Check`): `example.com/m`
/// takes v0, v1 or `+incompatible` versions, `example.com/m/v2` takes v2 only,
/// `gopkg.in/m.v2` takes v2 only.
///
/// Like Go, the version need not be canonical (`v1.2` is accepted); compare it
/// with [`canonical_version`] where a canonical version is required.
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    check_path(path)?;
    check_version_for_path(path, version)
}

/// The version half of [`check`], for a path that [`check_path`] accepted.
pub fn check_version_for_path(path: &str, version: &str) -> Result<(), ModuleError> {
    let version_err = |source| ModuleError::Version {
        path: path.to_string(),
        source,
    };
    if !semver::is_valid(version) {
        return Err(version_err(VersionError::new(
            version,
            VersionReason::NotSemver,
        )));
    }
    // check_path has accepted the path's major-version suffix.
    let (_, path_major) = split_path_version(path).unwrap_or((path, ""));
    super::path::check_path_major(version, path_major).map_err(version_err)
}

/// The canonical form of `v` like [`semver::canonical`], but keeping a
/// `+incompatible` build suffix (x/mod `module.CanonicalVersion`). `""` if invalid.
pub fn canonical_version(v: &str) -> String {
    let mut cv = semver::canonical(v);
    if semver::build(v) == "+incompatible" {
        cv.push_str("+incompatible");
    }
    cv
}

/// `!`-escapes the upper-case letters of a version (x/mod `module.EscapeVersion`).
///
/// Versions need not be semantic versions, but must be valid file names
/// (a single path element) of ASCII characters without `!`.
pub fn escape_version(v: &str) -> Result<String, VersionError> {
    let disallowed = |reason| VersionError::new(v, VersionReason::Disallowed(reason));
    check_elem(v, Rules::File).map_err(disallowed)?;
    escape_string(v).map_err(|c| disallowed(PathReason::InvalidChar(c)))
}

/// Decodes an escaped version and checks that the result is a valid file name
/// (x/mod `module.UnescapeVersion`). Errors name the escaped input.
pub fn unescape_version(escaped: &str) -> Result<String, VersionError> {
    let v = unescape_string(escaped)
        .ok_or_else(|| VersionError::new(escaped, VersionReason::InvalidEscape))?;
    check_elem(&v, Rules::File)
        .map_err(|reason| VersionError::new(escaped, VersionReason::Disallowed(reason)))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// module_test.go `checkTests`.
    #[test]
    fn check_table() {
        for (path, version, ok) in [
            ("rsc.io/quote", "0.1.0", false),
            ("rsc io/quote", "v1.0.0", false),
            ("github.com/go-yaml/yaml", "v0.8.0", true),
            ("github.com/go-yaml/yaml", "v1.0.0", true),
            ("github.com/go-yaml/yaml", "v2.0.0", false),
            ("github.com/go-yaml/yaml", "v2.1.5", false),
            ("github.com/go-yaml/yaml", "v3.0.0", false),
            ("github.com/go-yaml/yaml/v2", "v1.0.0", false),
            ("github.com/go-yaml/yaml/v2", "v2.0.0", true),
            ("github.com/go-yaml/yaml/v2", "v2.1.5", true),
            ("github.com/go-yaml/yaml/v2", "v3.0.0", false),
            ("gopkg.in/yaml.v0", "v0.8.0", true),
            ("gopkg.in/yaml.v0", "v1.0.0", false),
            ("gopkg.in/yaml.v0", "v2.0.0", false),
            ("gopkg.in/yaml.v0", "v2.1.5", false),
            ("gopkg.in/yaml.v0", "v3.0.0", false),
            ("gopkg.in/yaml.v1", "v0.8.0", false),
            ("gopkg.in/yaml.v1", "v1.0.0", true),
            ("gopkg.in/yaml.v1", "v2.0.0", false),
            ("gopkg.in/yaml.v1", "v2.1.5", false),
            ("gopkg.in/yaml.v1", "v3.0.0", false),
            // .v1 means v1 only, but old v0.0.0- pseudo-versions are still accepted.
            ("gopkg.in/check.v1", "v0.0.0", false),
            (
                "gopkg.in/check.v1",
                "v0.0.0-20160102150405-abcdef123456",
                true,
            ),
            ("gopkg.in/yaml.v2", "v1.0.0", false),
            ("gopkg.in/yaml.v2", "v2.0.0", true),
            ("gopkg.in/yaml.v2", "v2.1.5", true),
            ("gopkg.in/yaml.v2", "v3.0.0", false),
            ("rsc.io/quote", "v17.0.0", false),
            ("rsc.io/quote", "v17.0.0+incompatible", true),
        ] {
            assert_eq!(
                check(path, version).is_ok(),
                ok,
                "check({path:?}, {version:?})"
            );
        }
    }

    #[test]
    fn check_errors() {
        assert_eq!(
            check("rsc.io/quote", "v2.0.0").unwrap_err().to_string(),
            "rsc.io/quote@v2.0.0: invalid version: should be v0 or v1, not v2"
        );
        assert_eq!(
            check("rsc.io/quote", "1.0.0").unwrap_err().to_string(),
            "rsc.io/quote@1.0.0: invalid version: not a semantic version"
        );
        assert!(matches!(
            check("rsc io/quote", "v1.0.0"),
            Err(ModuleError::Path(PathError { .. }))
        ));
        // Not required to be canonical, as in Go.
        assert!(check("rsc.io/quote", "v1.2").is_ok());
        assert!(check("rsc.io/quote/v3", "v3.0.0+build").is_ok());
        assert!(check("rsc.io/quote/v3", "v3.0.0+incompatible").is_ok());
        assert!(check("gopkg.in/yaml.v2-unstable", "v2.0.0").is_ok());
        assert!(check("rsc.io/quote", "").is_err());
    }

    #[test]
    fn canonical_version_keeps_incompatible() {
        assert_eq!(
            canonical_version("v2.0.0+incompatible"),
            "v2.0.0+incompatible"
        );
        assert_eq!(canonical_version("v2.0.0+meta"), "v2.0.0");
        assert_eq!(canonical_version("v1"), "v1.0.0");
        // Shorthands cannot carry build metadata.
        assert_eq!(canonical_version("v2.0+incompatible"), "");
        assert_eq!(canonical_version("junk+incompatible"), "");
    }

    #[test]
    fn escape_versions() {
        for (v, esc) in [
            ("v1.2.3", "v1.2.3"),
            ("v1.2.3-RC1", "v1.2.3-!r!c1"),
            (
                "v1.0.0-20191222082827-65925CF01315",
                "v1.0.0-20191222082827-65925!c!f01315",
            ),
            ("master", "master"),
            ("Branch", "!branch"),
            ("v1.0.0+incompatible", "v1.0.0+incompatible"),
        ] {
            assert_eq!(
                escape_version(v).as_deref(),
                Ok(esc),
                "escape_version({v:?})"
            );
            assert_eq!(
                unescape_version(esc).as_deref(),
                Ok(v),
                "unescape_version({esc:?})"
            );
        }
        // Not a file name, contains '!', or non-ASCII (a letter, so a valid file name).
        for v in ["", ".", "..", "a/b", "v1!", "con", "v1*", "vé"] {
            assert!(escape_version(v).is_err(), "escape_version({v:?})");
        }
        for esc in ["", "V1", "v!", "v!1", "v1!", "a/b", "..", "vé", "!con"] {
            assert!(unescape_version(esc).is_err(), "unescape_version({esc:?})");
        }
        assert_eq!(
            escape_version("v1!").unwrap_err().to_string(),
            r#"version "v1!" invalid: disallowed version string (invalid char '!')"#
        );
        assert_eq!(
            unescape_version("V1").unwrap_err().to_string(),
            r#"version "V1" invalid: invalid escape sequence"#
        );
    }
}
