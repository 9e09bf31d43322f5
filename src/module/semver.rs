//! Go-flavoured semantic versions (x/mod `semver`): parsing, canonical form, precedence.
//!
//! A version is `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`; `vMAJOR` and
//! `vMAJOR.MINOR` (without suffixes) are shorthands for `.0` components.
//! Every function accepts any string: invalid versions yield `""`/`false`
//! exactly where Go does, and never panic.

use std::cmp::Ordering;

/// The components of a valid version, borrowed from the input.
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What [`canonical`] appends to a shorthand (`".0.0"`, `".0"` or `""`).
    short: &'static str,
    /// Including the leading `-`, or empty.
    prerelease: &'a str,
    /// Including the leading `+`, or empty.
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    let mut p = Parsed {
        major,
        minor: "0",
        patch: "0",
        short: ".0.0",
        prerelease: "",
        build: "",
    };
    if rest.is_empty() {
        return Some(p);
    }
    let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
    p.minor = minor;
    p.short = ".0";
    if rest.is_empty() {
        return Some(p);
    }
    let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
    p.patch = patch;
    p.short = "";
    if rest.starts_with('-') {
        // The prerelease runs up to the build metadata, if any.
        let end = rest.find('+').unwrap_or(rest.len());
        let (pre, after) = rest.split_at(end);
        let idents_ok = pre[1..]
            .split('.')
            .all(|id| is_ident(id) && !is_bad_num(id));
        if !idents_ok {
            return None;
        }
        p.prerelease = pre;
        rest = after;
    }
    if let Some(meta) = rest.strip_prefix('+') {
        if !meta.split('.').all(is_ident) {
            return None;
        }
        p.build = rest;
        rest = "";
    }
    rest.is_empty().then_some(p)
}

/// Splits a leading decimal number without extra leading zeros off `s`.
fn parse_int(s: &str) -> Option<(&str, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (n > 1 && s.starts_with('0')) {
        return None;
    }
    Some(s.split_at(n))
}

/// A non-empty run of `[0-9A-Za-z-]`.
fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_num(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A numeric identifier with a leading zero, which semver forbids in prereleases.
fn is_bad_num(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0') && is_num(s)
}

/// Reports whether `v` is a valid semantic version string.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form of `v`: missing `.MINOR`/`.PATCH` filled in, build metadata
/// dropped. Two versions compare equal iff their canonical forms are identical.
/// Returns `""` for an invalid version.
pub fn canonical(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        Some(p) => {
            let without_build = &v[..v.len() - p.build.len()];
            format!("{without_build}{}", p.short)
        }
    }
}

/// The major version prefix, e.g. `"v2"` for `"v2.1.0"`; `""` if `v` is invalid.
pub fn major(v: &str) -> &str {
    parse(v).map_or("", |p| &v[..1 + p.major.len()])
}

/// The `major.minor` prefix, e.g. `"v2.1"` for `"v2.1.0"` and `"v2.0"` for `"v2"`;
/// `""` if `v` is invalid.
pub fn major_minor(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        // The shorthand `vN` has no minor component in the input to borrow.
        Some(p) if p.short == ".0.0" => format!("{v}.0"),
        Some(p) => v[..1 + p.major.len() + 1 + p.minor.len()].to_string(),
    }
}

/// The prerelease suffix including its `-`, e.g. `"-pre"` for `"v2.1.0-pre+meta"`;
/// `""` if there is none or `v` is invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// The build suffix including its `+`, e.g. `"+meta"` for `"v2.1.0+meta"`;
/// `""` if there is none or `v` is invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// Compares two versions by semantic version precedence (build metadata ignored).
///
/// An invalid version is less than any valid one; all invalid versions are equal.
pub fn compare(v: &str, w: &str) -> Ordering {
    match (parse(v), parse(w)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => compare_int(a.major, b.major)
            .then_with(|| compare_int(a.minor, b.minor))
            .then_with(|| compare_int(a.patch, b.patch))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease)),
    }
}

/// Sorts versions by [`compare`], breaking ties (e.g. differing build metadata,
/// or two invalid strings) by plain string order, like Go's `semver.Sort`.
pub fn sort<S: AsRef<str>>(list: &mut [S]) {
    list.sort_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        compare(a, b).then_with(|| a.cmp(b))
    });
}

/// Compares decimal strings without leading zeros.
fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Compares prerelease suffixes (with their leading `-`, or empty) per semver 2.0.0 §11.
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    match (x.is_empty(), y.is_empty()) {
        (true, true) => return Ordering::Equal,
        // A release has higher precedence than any of its prereleases.
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            // A larger set of identifiers wins when all preceding ones are equal.
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(dx), Some(dy)) => {
                let ord = match (is_num(dx), is_num(dy)) {
                    (true, true) => compare_int(dx, dy),
                    // Numeric identifiers have lower precedence than alphanumeric ones.
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => dx.cmp(dy),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// semver_test.go `tests`: input and canonical form, in increasing precedence
    /// (invalid versions first).
    const TESTS: &[(&str, &str)] = &[
        ("bad", ""),
        ("v1-alpha.beta.gamma", ""),
        ("v1-pre", ""),
        ("v1+meta", ""),
        ("v1-pre+meta", ""),
        ("v1.2-pre", ""),
        ("v1.2+meta", ""),
        ("v1.2-pre+meta", ""),
        ("v1.0.0-alpha", "v1.0.0-alpha"),
        ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
        ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
        ("v1.0.0-beta", "v1.0.0-beta"),
        ("v1.0.0-beta.2", "v1.0.0-beta.2"),
        ("v1.0.0-beta.11", "v1.0.0-beta.11"),
        ("v1.0.0-rc.1", "v1.0.0-rc.1"),
        ("v1", "v1.0.0"),
        ("v1.0", "v1.0.0"),
        ("v1.0.0", "v1.0.0"),
        ("v1.2", "v1.2.0"),
        ("v1.2.0", "v1.2.0"),
        ("v1.2.3-456", "v1.2.3-456"),
        ("v1.2.3-456.789", "v1.2.3-456.789"),
        ("v1.2.3-456-789", "v1.2.3-456-789"),
        ("v1.2.3-456a", "v1.2.3-456a"),
        ("v1.2.3-pre", "v1.2.3-pre"),
        ("v1.2.3-pre+meta", "v1.2.3-pre"),
        ("v1.2.3-pre.1", "v1.2.3-pre.1"),
        ("v1.2.3-zzz", "v1.2.3-zzz"),
        ("v1.2.3", "v1.2.3"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v1.2.3+meta-pre", "v1.2.3"),
        ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
    ];

    #[test]
    fn is_valid_table() {
        for &(v, out) in TESTS {
            assert_eq!(is_valid(v), !out.is_empty(), "is_valid({v:?})");
        }
    }

    #[test]
    fn canonical_table() {
        for &(v, out) in TESTS {
            assert_eq!(canonical(v), out, "canonical({v:?})");
        }
    }

    #[test]
    fn major_table() {
        for &(v, out) in TESTS {
            let want = out.split_once('.').map_or("", |(m, _)| m);
            assert_eq!(major(v), want, "major({v:?})");
        }
    }

    #[test]
    fn major_minor_table() {
        for &(v, out) in TESTS {
            let want = if out.is_empty() {
                String::new()
            } else {
                let core = v.split(['+', '-']).next().unwrap_or_default();
                match core.matches('.').count() {
                    0 => format!("{core}.0"),
                    1 => core.to_string(),
                    _ => core[..core.rfind('.').unwrap_or(core.len())].to_string(),
                }
            };
            assert_eq!(major_minor(v), want, "major_minor({v:?})");
        }
    }

    #[test]
    fn prerelease_table() {
        for &(v, out) in TESTS {
            let want = out.find('-').map_or("", |i| &out[i..]);
            assert_eq!(prerelease(v), want, "prerelease({v:?})");
        }
    }

    #[test]
    fn build_table() {
        for &(v, out) in TESTS {
            let want = match v.find('+') {
                Some(i) if !out.is_empty() => &v[i..],
                _ => "",
            };
            assert_eq!(build(v), want, "build({v:?})");
        }
    }

    #[test]
    fn compare_table() {
        for (i, &(vi, oi)) in TESTS.iter().enumerate() {
            for (j, &(vj, oj)) in TESTS.iter().enumerate() {
                let want = if oi == oj { Ordering::Equal } else { i.cmp(&j) };
                assert_eq!(compare(vi, vj), want, "compare({vi:?}, {vj:?})");
            }
        }
    }

    #[test]
    fn compare_more() {
        use Ordering::*;
        for (a, b, want) in [
            ("v1.0.0+metadata-dash", "v1.0.0+metadata-dash1", Equal),
            ("v1.10.0", "v1.9.0", Greater),
            ("v2.0.0", "v10.0.0", Less),
            ("v1.0.0-alpha.10", "v1.0.0-alpha.9", Greater),
            ("v1.0.0-alpha.9", "v1.0.0-alpha.a", Less),
            ("v1.0.0-a.b", "v1.0.0-a.b.c", Less),
            ("v1.0.0-B", "v1.0.0-a", Less),
            ("", "v0.0.0", Less),
            ("", "bad", Equal),
            ("v01.0.0", "v1.0.0", Less),
        ] {
            assert_eq!(compare(a, b), want, "compare({a:?}, {b:?})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b:?}, {a:?})");
        }
    }

    #[test]
    fn invalid_inputs() {
        for v in [
            "",
            "v",
            "v.",
            "v1.",
            "v1.2.",
            "v1.2.3-",
            "v1.2.3+",
            "v1.2.3-a..b",
            "v1.2.3+a..b",
            "v1.2.3-01",
            "v01",
            "v1.02",
            "v1.2.03",
            "V1.2.3",
            "1.2.3",
            "v1.2.3.4",
            "v1.2.3-é",
            "vé",
            "v1.2.3-a+b+c",
            "v1.2.3 ",
            "v1.2.3-a_b",
        ] {
            assert!(!is_valid(v), "is_valid({v:?})");
            assert_eq!(canonical(v), "");
            assert_eq!(major(v), "");
            assert_eq!(major_minor(v), "");
            assert_eq!(prerelease(v), "");
            assert_eq!(build(v), "");
        }
        // Numeric identifiers with leading zeros are fine in build metadata,
        // and so is a leading zero in an alphanumeric prerelease identifier.
        assert!(is_valid("v1.2.3+01"));
        assert!(is_valid("v1.2.3-01a"));
        assert!(is_valid("v1.2.3-0"));
        assert!(is_valid("v1.2.3--"));
    }

    #[test]
    fn sort_table() {
        // Reverse the table, sort it, and expect the table's precedence order back;
        // equal versions fall back to string order.
        let mut list: Vec<&str> = TESTS.iter().rev().map(|&(v, _)| v).collect();
        sort(&mut list);
        for w in list.windows(2) {
            let ord = compare(w[0], w[1]);
            assert!(
                ord == Ordering::Less || (ord == Ordering::Equal && w[0] <= w[1]),
                "{list:?}"
            );
        }
        assert_eq!(list[0], "bad");
        assert_eq!(list[list.len() - 1], "v1.2.3+meta-pre.sha.256a");

        let mut owned = vec![
            "v1.10.0".to_string(),
            "v1.2.0".into(),
            "v1.2.0-rc.1".into(),
            "junk".into(),
        ];
        sort(&mut owned);
        assert_eq!(owned, ["junk", "v1.2.0-rc.1", "v1.2.0", "v1.10.0"]);
    }
}
