//! Semantic versions, pseudo-versions and the `!`-case encoding of versions.

/// A version string that is not acceptable where it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed version {version:?}: {reason}")]
pub struct VersionError {
    pub version: String,
    pub reason: String,
}

/// `!`-escapes a version (x/mod `module.EscapeVersion`). PLACEHOLDER.
pub fn escape_version(v: &str) -> Result<String, VersionError> {
    Ok(v.to_string())
}

/// Reverses [`escape_version`]. PLACEHOLDER.
pub fn unescape_version(v: &str) -> Result<String, VersionError> {
    Ok(v.to_string())
}

/// PLACEHOLDER (module.Check).
pub fn check(path: &str, version: &str) -> Result<(), VersionError> {
    crate::module::check_path(path).map_err(|e| VersionError { version: version.into(), reason: e.to_string() })?;
    if !version.starts_with('v') {
        return Err(VersionError { version: version.into(), reason: "no v".into() });
    }
    Ok(())
}
