//! Module, import and file path checks, and the `!`-case encoding of paths.

/// A path that breaks one of the module path rules; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} {path:?}: {reason}")]
pub struct PathError {
    pub kind: &'static str,
    pub path: String,
    pub reason: String,
}

/// Checks a file path inside a module (x/mod `module.CheckFilePath`).
/// PLACEHOLDER until the module helper lands the real rules.
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|e| e.is_empty() || e == "." || e == "..")
    {
        return Err(PathError {
            kind: "file path",
            path: path.to_string(),
            reason: "invalid".into(),
        });
    }
    Ok(())
}

/// Checks a module path (x/mod `module.CheckPath`). PLACEHOLDER.
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_file_path(path)
}

/// Checks an import path (x/mod `module.CheckImportPath`). PLACEHOLDER.
pub fn check_import_path(path: &str) -> Result<(), PathError> {
    check_file_path(path)
}

/// `!`-escapes upper-case letters (x/mod `module.EscapePath`). PLACEHOLDER.
pub fn escape_path(path: &str) -> Result<String, PathError> {
    Ok(path.to_string())
}

/// Reverses [`escape_path`] (x/mod `module.UnescapePath`). PLACEHOLDER.
pub fn unescape_path(escaped: &str) -> Result<String, PathError> {
    Ok(escaped.to_string())
}
