//! Module, import and file path checks, major-version suffixes, and the `!`-case encoding of paths.

use std::fmt;

use super::letter::is_letter;
use super::semver;
use super::version::{VersionError, VersionReason};

/// Which set of path rules was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// A module path ([`check_path`]).
    Module,
    /// A package import path ([`check_import_path`]).
    Import,
    /// A slash-separated file path inside a module ([`check_file_path`]).
    File,
    /// The `!`-escaped form of a module path ([`unescape_path`]).
    EscapedModule,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Module => "module",
            PathKind::Import => "import",
            PathKind::File => "file",
            PathKind::EscapedModule => "escaped module",
        })
    }
}

/// The rule a path breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathReason {
    #[error("empty string")]
    Empty,
    #[error("leading dash")]
    LeadingDash,
    #[error("double slash")]
    DoubleSlash,
    #[error("trailing slash")]
    TrailingSlash,
    #[error("empty path element")]
    EmptyElement,
    /// An element made only of dots, such as `.` or `..`.
    #[error("invalid path element {0:?}")]
    DotsElement(String),
    #[error("leading dot in path element")]
    LeadingDot,
    #[error("trailing dot in path element")]
    TrailingDot,
    #[error("invalid char {0:?}")]
    InvalidChar(char),
    /// The element's prefix up to its first dot is a reserved Windows name (`CON`, `com1`, ...).
    #[error("{0:?} disallowed as path element component on Windows")]
    WindowsReserved(String),
    /// The element looks like a Windows short name (`~` followed by digits).
    #[error("trailing tilde and digits in path element")]
    TildeDigits,
    #[error("leading slash")]
    LeadingSlash,
    #[error("missing dot in first path element")]
    MissingDotInFirstElement,
    #[error("leading dash in first path element")]
    LeadingDashInFirstElement,
    #[error("invalid char {0:?} in first path element")]
    InvalidCharInFirstElement(char),
    /// A malformed major-version suffix, such as `/v1`, `/v0`, `/v2.0` or a bad `gopkg.in` path.
    #[error("invalid version")]
    InvalidVersionSuffix,
    /// An escaped string with an upper-case letter, a non-ASCII char, or a `!`
    /// not followed by a lower-case letter.
    #[error("invalid escape sequence")]
    InvalidEscape,
}

/// A path that breaks one of the path rules, like Go's
/// `malformed module path "x": missing dot in first path element`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} path {path:?}: {reason}")]
pub struct PathError {
    pub kind: PathKind,
    pub path: String,
    pub reason: PathReason,
}

impl PathError {
    fn new(kind: PathKind, path: &str, reason: PathReason) -> Self {
        PathError {
            kind,
            path: path.to_string(),
            reason,
        }
    }
}

/// Checks a module path (x/mod `module.CheckPath`).
///
/// A module path is a valid import path whose first element is a lower-case
/// domain-like name (ASCII letters, digits, `-` and `.`, with at least one dot,
/// not starting with `-`), whose elements never start with a dot, and whose
/// major-version suffix, if any, is well formed: `/vN` with N ≥ 2 and no leading
/// zero, or for `gopkg.in/` paths the `.vN` (optionally `-unstable`) convention.
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_module_path(path).map_err(|reason| PathError::new(PathKind::Module, path, reason))
}

fn check_module_path(path: &str) -> Result<(), PathReason> {
    check_general(path, Rules::Module)?;
    let first = path.split('/').next().unwrap_or_default();
    if first.is_empty() {
        return Err(PathReason::LeadingSlash);
    }
    if !first.contains('.') {
        return Err(PathReason::MissingDotInFirstElement);
    }
    if first.starts_with('-') {
        return Err(PathReason::LeadingDashInFirstElement);
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !matches!(c, '-' | '.' | '0'..='9' | 'a'..='z'))
    {
        return Err(PathReason::InvalidCharInFirstElement(c));
    }
    if split_path_version(path).is_none() {
        return Err(PathReason::InvalidVersionSuffix);
    }
    Ok(())
}

/// Checks a package import path (x/mod `module.CheckImportPath`).
///
/// Elements are non-empty, separated by single slashes, made of ASCII letters,
/// digits and `-._~+`, do not end in a dot or consist only of dots, are not
/// reserved Windows names, and do not look like Windows short names (`~` + digits).
pub fn check_import_path(path: &str) -> Result<(), PathError> {
    check_general(path, Rules::Import)
        .map_err(|reason| PathError::new(PathKind::Import, path, reason))
}

/// Checks a slash-separated file path inside a module (x/mod `module.CheckFilePath`).
///
/// Like [`check_import_path`], but elements may also contain Unicode letters,
/// spaces and `!#$%&()+,=@[]^{}`, may start with `-`, and may look like
/// Windows short names.
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    check_general(path, Rules::File).map_err(|reason| PathError::new(PathKind::File, path, reason))
}

/// The character and element rules of the three kinds of path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    Module,
    Import,
    File,
}

impl Rules {
    fn allows(self, c: char) -> bool {
        let module_ok = matches!(c, '-' | '.' | '_' | '~') || c.is_ascii_alphanumeric();
        match self {
            Rules::Module => module_ok,
            Rules::Import => module_ok || c == '+',
            // No shell-special " ' * < > ? ` | and no separators / \ :.
            Rules::File if c.is_ascii() => {
                c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
            }
            Rules::File => is_letter(c),
        }
    }
}

fn check_general(path: &str, rules: Rules) -> Result<(), PathReason> {
    if path.is_empty() {
        return Err(PathReason::Empty);
    }
    if path.starts_with('-') && rules != Rules::File {
        return Err(PathReason::LeadingDash);
    }
    if path.contains("//") {
        return Err(PathReason::DoubleSlash);
    }
    if path.ends_with('/') {
        return Err(PathReason::TrailingSlash);
    }
    path.split('/').try_for_each(|elem| check_elem(elem, rules))
}

/// Checks one path element (also used for version strings, as file names).
pub(crate) fn check_elem(elem: &str, rules: Rules) -> Result<(), PathReason> {
    if elem.is_empty() {
        return Err(PathReason::EmptyElement);
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(PathReason::DotsElement(elem.to_string()));
    }
    if elem.starts_with('.') && rules == Rules::Module {
        return Err(PathReason::LeadingDot);
    }
    if elem.ends_with('.') {
        return Err(PathReason::TrailingDot);
    }
    // Most elements are plain ASCII letters and digits, allowed by every
    // rule set: only the others need the per-character rules.
    if !elem.bytes().all(|b| b.is_ascii_alphanumeric())
        && let Some(c) = elem.chars().find(|&c| !rules.allows(c))
    {
        return Err(PathReason::InvalidChar(c));
    }

    // Windows reserves some names (all of 3 or 4 letters), whatever the extension.
    let short = elem.split('.').next().unwrap_or_default();
    if matches!(short.len(), 3 | 4)
        && BAD_WINDOWS_NAMES
            .iter()
            .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(PathReason::WindowsReserved(short.to_string()));
    }

    // Windows short names (`PROGRA~1`) only matter for import paths.
    if rules != Rules::File
        && let Some((_, suffix)) = short.rsplit_once('~')
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(PathReason::TildeDigits);
    }
    Ok(())
}

/// Reserved file names on Windows, compared case-insensitively.
const BAD_WINDOWS_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Splits a module path into its prefix and major-version suffix (x/mod `module.SplitPathVersion`),
/// so that `prefix + path_major == path`.
///
/// `path_major` is `""` or `/vN` with N ≥ 2; for `gopkg.in/` paths it is `.vN`
/// (any N, optionally followed by `-unstable`). Returns `None` where Go returns
/// `ok = false`: a malformed suffix such as `/v1`, `/v0`, `/v2.0`, `/v02`, or a
/// `gopkg.in/` path without a `.vN` suffix.
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    // Back up over a trailing run of digits and dots.
    let i = path
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .len();
    if i <= 1 || i == path.len() || bytes[i - 1] != b'v' || bytes[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, path_major) = path.split_at(i - 2);
    let number = &path_major[2..];
    if number.contains('.') || number.starts_with('0') || number == "1" {
        return None;
    }
    Some((prefix, path_major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let stem = path.strip_suffix("-unstable").unwrap_or(path);
    let i = stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let bytes = path.as_bytes();
    // All gopkg.in paths must end in .vN for some N.
    if i <= 1 || bytes[i - 1] != b'v' || bytes[i - 2] != b'.' {
        return None;
    }
    let (prefix, path_major) = path.split_at(i - 2);
    // Like Go, look at the byte after ".v": a digit, or the '-' of "-unstable".
    // A leading zero is only allowed as exactly ".v0".
    match path_major.as_bytes().get(2) {
        None => None,
        Some(b'0') if path_major != ".v0" => None,
        Some(_) => Some((prefix, path_major)),
    }
}

/// Reports whether version `v` matches the path major-version suffix `path_major`
/// (x/mod `module.MatchPathMajor`); true iff [`check_path_major`] succeeds.
pub fn match_path_major(v: &str, path_major: &str) -> bool {
    check_path_major(v, path_major).is_ok()
}

/// Checks that version `v` matches the path major-version suffix `path_major`
/// as returned by [`split_path_version`] (x/mod `module.CheckPathMajor`).
///
/// No suffix admits v0, v1 and `+incompatible` versions; `/vN` and `.vN` admit vN.
/// As a special case, `.v1` also admits the old `v0.0.0-` pseudo-versions.
pub fn check_path_major(v: &str, path_major: &str) -> Result<(), VersionError> {
    let mut path_major = path_major;
    if path_major.starts_with(".v") {
        path_major = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    }
    // Old pseudo-versions generated for gopkg.in .v1 paths had a v0.0.0- base.
    if v.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let m = semver::major(v);
    let want = if path_major.is_empty() {
        if m == "v0" || m == "v1" || semver::build(v) == "+incompatible" {
            return Ok(());
        }
        "v0 or v1"
    } else if let Some(want) = path_major
        .strip_prefix('/')
        .or_else(|| path_major.strip_prefix('.'))
    {
        if m == want {
            return Ok(());
        }
        want
    } else {
        path_major
    };
    Err(VersionError::new(
        v,
        VersionReason::WrongMajor {
            want: want.to_string(),
            got: m.to_string(),
        },
    ))
}

/// `!`-escapes the upper-case letters of a valid module path (x/mod `module.EscapePath`),
/// so that paths differing only in case stay distinct on case-insensitive file
/// systems: `github.com/Azure/x` becomes `github.com/!azure/x`.
pub fn escape_path(path: &str) -> Result<String, PathError> {
    check_path(path)?;
    // A valid module path is ASCII without `!`, so escaping cannot fail.
    escape_string(path)
        .map_err(|c| PathError::new(PathKind::Module, path, PathReason::InvalidChar(c)))
}

/// Decodes an escaped module path and checks the result (x/mod `module.UnescapePath`).
///
/// Errors name the escaped input; a decoded path that breaks the module path
/// rules reports the broken rule.
pub fn unescape_path(escaped: &str) -> Result<String, PathError> {
    let err = |reason| PathError::new(PathKind::EscapedModule, escaped, reason);
    let path = unescape_string(escaped).ok_or_else(|| err(PathReason::InvalidEscape))?;
    check_module_path(&path).map_err(err)?;
    Ok(path)
}

/// Replaces each upper-case ASCII letter with `!` and its lower-case form.
/// Fails with the offending char on `!` or non-ASCII input, which would make
/// the encoding ambiguous.
pub(crate) fn escape_string(s: &str) -> Result<String, char> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '!' || !c.is_ascii() {
            return Err(c);
        }
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Reverses [`escape_string`]; `None` if `escaped` is not a valid encoding
/// (an upper-case letter, a non-ASCII char, or `!` not followed by `a`–`z`).
pub(crate) fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '!' => match chars.next() {
                Some(l @ 'a'..='z') => out.push(l.to_ascii_uppercase()),
                _ => return None,
            },
            c if c.is_ascii_uppercase() || !c.is_ascii() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// module_test.go `checkPathTests`: path, module ok, import ok, file ok.
    pub(crate) const CHECK_PATH_TESTS: &[(&str, bool, bool, bool)] = &[
        ("x.y/z", true, true, true),
        ("x.y", true, true, true),
        ("", false, false, false),
        // Go's "x.y/\xFFz" (invalid UTF-8) cannot be a &str; its lossy decoding must fail too.
        ("x.y/\u{FFFD}z", false, false, false),
        ("/x.y/z", false, false, false),
        ("x./z", false, false, false),
        (".x/z", false, true, true),
        ("-x/z", false, false, true),
        ("x..y/z", true, true, true),
        ("x.y/z/../../w", false, false, false),
        ("x.y//z", false, false, false),
        ("x.y/z//w", false, false, false),
        ("x.y/z/", false, false, false),
        ("x.y/z/v0", false, true, true),
        ("x.y/z/v1", false, true, true),
        ("x.y/z/v2", true, true, true),
        ("x.y/z/v2.0", false, true, true),
        ("X.y/z", false, true, true),
        ("!x.y/z", false, false, true),
        ("_x.y/z", false, true, true),
        ("x.y!/z", false, false, true),
        ("x.y\"/z", false, false, false),
        ("x.y#/z", false, false, true),
        ("x.y$/z", false, false, true),
        ("x.y%/z", false, false, true),
        ("x.y&/z", false, false, true),
        ("x.y'/z", false, false, false),
        ("x.y(/z", false, false, true),
        ("x.y)/z", false, false, true),
        ("x.y*/z", false, false, false),
        ("x.y+/z", false, true, true),
        ("x.y,/z", false, false, true),
        ("x.y-/z", true, true, true),
        ("x.y./zt", false, false, false),
        ("x.y:/z", false, false, false),
        ("x.y;/z", false, false, false),
        ("x.y</z", false, false, false),
        ("x.y=/z", false, false, true),
        ("x.y>/z", false, false, false),
        ("x.y?/z", false, false, false),
        ("x.y@/z", false, false, true),
        ("x.y[/z", false, false, true),
        ("x.y\\/z", false, false, false),
        ("x.y]/z", false, false, true),
        ("x.y^/z", false, false, true),
        ("x.y_/z", false, true, true),
        ("x.y`/z", false, false, false),
        ("x.y{/z", false, false, true),
        ("x.y}/z", false, false, true),
        ("x.y~/z", false, true, true),
        ("x.y/z!", false, false, true),
        ("x.y/z\"", false, false, false),
        ("x.y/z#", false, false, true),
        ("x.y/z$", false, false, true),
        ("x.y/z%", false, false, true),
        ("x.y/z&", false, false, true),
        ("x.y/z'", false, false, false),
        ("x.y/z(", false, false, true),
        ("x.y/z)", false, false, true),
        ("x.y/z*", false, false, false),
        ("x.y/z++", false, true, true),
        ("x.y/z,", false, false, true),
        ("x.y/z-", true, true, true),
        ("x.y/z.t", true, true, true),
        ("x.y/z/t", true, true, true),
        ("x.y/z:", false, false, false),
        ("x.y/z;", false, false, false),
        ("x.y/z<", false, false, false),
        ("x.y/z=", false, false, true),
        ("x.y/z>", false, false, false),
        ("x.y/z?", false, false, false),
        ("x.y/z@", false, false, true),
        ("x.y/z[", false, false, true),
        ("x.y/z\\", false, false, false),
        ("x.y/z]", false, false, true),
        ("x.y/z^", false, false, true),
        ("x.y/z_", true, true, true),
        ("x.y/z`", false, false, false),
        ("x.y/z{", false, false, true),
        ("x.y/z}", false, false, true),
        ("x.y/z~", true, true, true),
        ("x.y/x.foo", true, true, true),
        ("x.y/aux.foo", false, false, false),
        ("x.y/prn", false, false, false),
        ("x.y/prn2", true, true, true),
        ("x.y/com", true, true, true),
        ("x.y/com1", false, false, false),
        ("x.y/com1.txt", false, false, false),
        ("x.y/calm1", true, true, true),
        ("x.y/z~", true, true, true),
        ("x.y/z~0", false, false, true),
        ("x.y/z~09", false, false, true),
        ("x.y/z09", true, true, true),
        ("x.y/z09~", true, true, true),
        ("x.y/z09~09z", true, true, true),
        ("x.y/z09~09z~09", false, false, true),
        ("github.com/!123/logrus", false, false, true),
        // Non-ASCII is disallowed in module and import paths for now.
        ("github.com/user/unicode/испытание", false, false, true),
        ("../x", false, false, false),
        ("./y", false, false, false),
        ("x:y", false, false, false),
        ("\\temp\\foo", false, false, false),
        (".gitignore", false, true, true),
        (".github/ISSUE_TEMPLATE", false, true, true),
        ("x☺y", false, false, false),
    ];

    #[test]
    fn check_path_table() {
        for &(path, ok, import_ok, file_ok) in CHECK_PATH_TESTS {
            assert_eq!(check_path(path).is_ok(), ok, "check_path({path:?})");
            assert_eq!(
                check_import_path(path).is_ok(),
                import_ok,
                "check_import_path({path:?})"
            );
            assert_eq!(
                check_file_path(path).is_ok(),
                file_ok,
                "check_file_path({path:?})"
            );
        }
    }

    #[test]
    fn check_path_reasons() {
        use PathReason::*;
        for (path, want) in [
            ("", Empty),
            ("-x.y/z", LeadingDash),
            ("x.y//z", DoubleSlash),
            ("x.y/z/", TrailingSlash),
            ("/x.y/z", EmptyElement),
            ("x.y/../z", DotsElement("..".into())),
            ("x.y/.z", LeadingDot),
            ("x./z", TrailingDot),
            ("x.y/a b", InvalidChar(' ')),
            ("x.y/LPT3.go", WindowsReserved("LPT3".into())),
            ("x.y/PROGRA~1", TildeDigits),
            ("localhost/z", MissingDotInFirstElement),
            ("X.y/z", InvalidCharInFirstElement('X')),
            ("x_y.z/w", InvalidCharInFirstElement('_')),
            ("x.y/z/v1", InvalidVersionSuffix),
            ("gopkg.in/yaml", InvalidVersionSuffix),
        ] {
            let err = check_path(path).unwrap_err();
            assert_eq!(err.reason, want, "check_path({path:?})");
            assert_eq!(err.kind, PathKind::Module);
            assert_eq!(err.path, path);
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            check_path("localhost/z").unwrap_err().to_string(),
            r#"malformed module path "localhost/z": missing dot in first path element"#
        );
        assert_eq!(
            check_import_path("x.y/z*").unwrap_err().to_string(),
            r#"malformed import path "x.y/z*": invalid char '*'"#
        );
        assert_eq!(
            check_file_path("a/con.txt").unwrap_err().to_string(),
            r#"malformed file path "a/con.txt": "con" disallowed as path element component on Windows"#
        );
        assert_eq!(
            unescape_path("x.y/Z").unwrap_err().to_string(),
            r#"malformed escaped module path "x.y/Z": invalid escape sequence"#
        );
        assert_eq!(
            unescape_path("x.y/z/v1").unwrap_err().to_string(),
            r#"malformed escaped module path "x.y/z/v1": invalid version"#
        );
    }

    #[test]
    fn file_path_unicode_letters() {
        // Letters in the Go sense (category L) only.
        assert!(check_file_path("dir/ß.go").is_ok());
        assert!(check_file_path("dir/中文.go").is_ok());
        assert!(check_file_path("dir/e\u{301}.go").is_err()); // combining mark
        assert!(check_file_path("dir/Ⅻ.go").is_err()); // letter-number (Nl)
        assert!(check_file_path("dir/٣.go").is_err()); // non-ASCII digit
        assert!(check_file_path("-x/a b/!#$%&()+,=@[]^{}~").is_ok());
    }

    /// module_test.go `splitPathVersionTests`.
    #[test]
    fn split_path_version_table() {
        for (prefix, major) in [
            ("x.y/z", ""),
            ("x.y/z", "/v2"),
            ("x.y/z", "/v3"),
            ("x.y/v", ""),
            ("gopkg.in/yaml", ".v0"),
            ("gopkg.in/yaml", ".v1"),
            ("gopkg.in/yaml", ".v2"),
            ("gopkg.in/yaml", ".v3"),
        ] {
            let path = format!("{prefix}{major}");
            assert_eq!(split_path_version(&path), Some((prefix, major)), "{path:?}");
        }
        for &(path, ..) in CHECK_PATH_TESTS {
            if let Some((prefix, major)) = split_path_version(path) {
                assert_eq!(format!("{prefix}{major}"), path);
            }
        }
    }

    #[test]
    fn split_path_version_more() {
        for (path, want) in [
            ("x.y/z/v10", Some(("x.y/z", "/v10"))),
            ("x.y/z/v1", None),
            ("x.y/z/v0", None),
            ("x.y/z/v02", None),
            ("x.y/z/v2.0", None),
            ("x.y/z/v", Some(("x.y/z/v", ""))),
            ("x.y/zv2", Some(("x.y/zv2", ""))),
            ("v2", Some(("v2", ""))),
            ("/v2", Some(("", "/v2"))),
            ("", Some(("", ""))),
            ("x.y/z/2", Some(("x.y/z/2", ""))),
            (
                "gopkg.in/yaml.v2-unstable",
                Some(("gopkg.in/yaml", ".v2-unstable")),
            ),
            ("gopkg.in/yaml.v00", None),
            ("gopkg.in/yaml.v01", None),
            ("gopkg.in/yaml.v", None),
            ("gopkg.in/yaml", None),
            ("gopkg.in/v2", None),
            ("gopkg.in/user/pkg.v3", Some(("gopkg.in/user/pkg", ".v3"))),
            ("gopkg.in/yaml.v2/sub", None),
            ("gopkg.in/-unstable", None),
            // Go quirks: no digits before "-unstable" is accepted, ".v0-unstable" is not.
            (
                "gopkg.in/yaml.v-unstable",
                Some(("gopkg.in/yaml", ".v-unstable")),
            ),
            ("gopkg.in/yaml.v0-unstable", None),
        ] {
            assert_eq!(
                split_path_version(path),
                want,
                "split_path_version({path:?})"
            );
        }
    }

    #[test]
    fn match_path_major_table() {
        for (v, path_major, want) in [
            ("v0.0.0", "", true),
            ("v0.0.0", "/v2", false),
            ("v0.0.0", ".v0", true),
            ("v0.0.0-20190510104115-cbcb75029529", ".v1", true),
            ("v1.0.0", "/v2", false),
            ("v1.0.0", ".v1", true),
            ("v1.0.0", ".v1-unstable", true),
            ("v2.0.0+incompatible", "", true),
            ("v2.0.0", "", false),
            ("v2.0.0", "/v2", true),
            ("v2.0.0", ".v2", true),
        ] {
            assert_eq!(
                match_path_major(v, path_major),
                want,
                "match_path_major({v:?}, {path_major:?})"
            );
        }
        let err = check_path_major("v3.1.0", "/v2").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"version "v3.1.0" invalid: should be v2, not v3"#
        );
        let err = check_path_major("v2.0.0", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"version "v2.0.0" invalid: should be v0 or v1, not v2"#
        );
        // Garbage in, error out (Go reports the suffix itself).
        let err = check_path_major("v2.0.0", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"version "v2.0.0" invalid: should be x, not v2"#
        );
    }

    /// module_test.go `escapeTests`: path and its escaped form.
    const ESCAPE_TESTS: &[(&str, &str)] = &[
        (
            "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
            "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
        ),
        (
            "github.com/GoogleCloudPlatform/omega",
            "github.com/!google!cloud!platform/omega",
        ),
        (
            "github.com/Azure/azure-sdk-for-go",
            "github.com/!azure/azure-sdk-for-go",
        ),
        ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
    ];

    #[test]
    fn escape_path_table() {
        for &(path, ok, ..) in CHECK_PATH_TESTS {
            if !ok {
                assert!(escape_path(path).is_err(), "escape_path({path:?})");
            }
        }
        for &(path, esc) in ESCAPE_TESTS {
            assert_eq!(
                escape_path(path).as_deref(),
                Ok(esc),
                "escape_path({path:?})"
            );
        }
    }

    #[test]
    fn unescape_path_table() {
        for bad in [
            "github.com/GoogleCloudPlatform/omega",
            "github.com/!google!cloud!platform!/omega",
            "github.com/!0google!cloud!platform/omega",
            "github.com/!_google!cloud!platform/omega",
            "github.com/!!google!cloud!platform/omega",
            "",
            // A trailing bang and non-ASCII are invalid escapings too.
            "github.com/x!",
            "github.com/é",
        ] {
            assert!(unescape_path(bad).is_err(), "unescape_path({bad:?})");
        }
        for &(path, ok, ..) in CHECK_PATH_TESTS {
            if !ok {
                assert!(unescape_path(path).is_err(), "unescape_path({path:?})");
            }
        }
        for &(path, esc) in ESCAPE_TESTS {
            assert_eq!(
                unescape_path(esc).as_deref(),
                Ok(path),
                "unescape_path({esc:?})"
            );
        }
    }
}
