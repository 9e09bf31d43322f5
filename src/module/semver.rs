//! PLACEHOLDER semver.
pub fn canonical(v: &str) -> String { if v.starts_with('v') && v.contains('.') { v.to_string() } else { String::new() } }
pub fn is_valid(v: &str) -> bool { !canonical(v).is_empty() }
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering { a.cmp(b) }
pub fn prerelease(_v: &str) -> &str { "" }
