//! Pseudo-versions (x/mod `module/pseudo.go`): recognising, building and taking them apart.
//!
//! A pseudo-version names an untagged commit and takes one of the forms
//!
//! 1. `vX.0.0-yyyymmddhhmmss-abcdef123456` (no earlier tag),
//! 2. `vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdef123456[+incompatible]` (after tag `vX.Y.Z`),
//! 3. `vX.Y.Z-pre.0.yyyymmddhhmmss-abcdef123456[+incompatible]` (after tag `vX.Y.Z-pre`).

use std::fmt;

use super::semver;
use super::version::{VersionError, VersionReason};

/// The UTC commit time embedded in a pseudo-version, to the second.
///
/// Fields are in significance order, so the derived ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PseudoTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl PseudoTime {
    /// Go's zero `time.Time`, 0001-01-01T00:00:00Z, used by [`zero_pseudo_version`].
    pub const ZERO: PseudoTime = PseudoTime {
        year: 1,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    /// Parses `yyyymmddhhmmss` with Go's `time.Parse` range checks (month 1–12,
    /// day within the month, hour < 24, minute and second < 60).
    pub fn parse(timestamp: &str) -> Option<PseudoTime> {
        let b = timestamp.as_bytes();
        if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |range: std::ops::Range<usize>| {
            b[range]
                .iter()
                .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'))
        };
        let t = PseudoTime {
            year: num(0..4),
            month: u8::try_from(num(4..6)).ok()?,
            day: u8::try_from(num(6..8)).ok()?,
            hour: u8::try_from(num(8..10)).ok()?,
            minute: u8::try_from(num(10..12)).ok()?,
            second: u8::try_from(num(12..14)).ok()?,
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(t.year, t.month)
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        valid.then_some(t)
    }

    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub fn unix_seconds(&self) -> i64 {
        // Days from civil, after Howard Hinnant's algorithm.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The `yyyymmddhhmmss` form used inside pseudo-versions.
    pub fn timestamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// RFC 3339, e.g. `2006-01-02T15:04:05Z`.
impl fmt::Display for PseudoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Builds the pseudo-version for commit `rev` at `time` (x/mod `module.PseudoVersion`),
/// given the major version (`"v1"`; `""` means `"v0"`) and the most recent older
/// tag (`""`, `"v1.2.3"`, `"v1.2.3-pre"`, optionally `+incompatible`).
pub fn pseudo_version(major: &str, older: &str, time: &PseudoTime, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{}-{rev}", time.timestamp());
    let build = semver::build(older);
    let older = semver::canonical(older);
    if older.is_empty() {
        return format!("{major}.0.0-{segment}");
    }
    if !semver::prerelease(&older).is_empty() {
        return format!("{older}.0.{segment}{build}");
    }
    // A canonical release is vX.Y.Z: bump Z and make a prerelease of it.
    let (major_minor, patch) = older.rsplit_once('.').unwrap_or((&older, "0"));
    format!("{major_minor}.{}-0.{segment}{build}", inc_decimal(patch))
}

/// The placeholder pseudo-version with zero time and revision for a major version
/// (x/mod `module.ZeroPseudoVersion`): `v0.0.0-00010101000000-000000000000`.
pub fn zero_pseudo_version(major: &str) -> String {
    pseudo_version(major, "", &PseudoTime::ZERO, "000000000000")
}

/// Reports whether `v` is a [`zero_pseudo_version`].
pub fn is_zero_pseudo_version(v: &str) -> bool {
    v == zero_pseudo_version(semver::major(v))
}

/// Reports whether `v` is a pseudo-version (x/mod `module.IsPseudoVersion`).
pub fn is_pseudo_version(v: &str) -> bool {
    v.matches('-').count() >= 2 && semver::is_valid(v) && matches_pseudo_syntax(v)
}

/// Matches Go's
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`.
fn matches_pseudo_syntax(v: &str) -> bool {
    // Nothing before the build metadata may contain '+'.
    let (head, build) = match v.split_once('+') {
        Some((head, build)) => (head, Some(build)),
        None => (v, None),
    };
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if build.is_some_and(|b| !b.split('.').all(ident)) {
        return false;
    }
    // The revision cannot contain '-', so it follows the last one.
    let Some((rest, rev)) = head.rsplit_once('-') else {
        return false;
    };
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let Some(base_end) = rest.len().checked_sub(14) else {
        return false;
    };
    match (rest.get(..base_end), rest.get(base_end..)) {
        (Some(base), Some(ts)) if ts.bytes().all(|b| b.is_ascii_digit()) => {
            matches_pseudo_base(base)
        }
        _ => false,
    }
}

/// Matches `v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)`, what precedes the timestamp.
fn matches_pseudo_base(base: &str) -> bool {
    fn digits(s: &str) -> Option<&str> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| &s[n..])
    }
    let Some(rest) = base.strip_prefix('v').and_then(digits) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    if rest == "0.0-" {
        return true;
    }
    let after_patch = digits(rest)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(digits)
        .and_then(|r| r.strip_prefix('-'));
    after_patch.is_some_and(|r| r == "0." || r.ends_with(".0."))
}

/// The pieces of a pseudo-version, borrowed from it.
struct Pieces<'a> {
    /// `vX.0.0`, `vX.Y.(Z+1)-0` or `vX.Y.Z-pre.0`.
    base: &'a str,
    timestamp: &'a str,
    rev: &'a str,
    build: &'a str,
}

fn parse_pseudo(v: &str) -> Result<Pieces<'_>, VersionError> {
    let syntax = || VersionError::pseudo(v, VersionReason::PseudoSyntax);
    if !is_pseudo_version(v) {
        return Err(syntax());
    }
    let build = semver::build(v);
    let head = &v[..v.len() - build.len()];
    let (rest, rev) = head.rsplit_once('-').ok_or_else(syntax)?;
    // The timestamp follows "-" in form 1 and ".0." in forms 2 and 3.
    let split = match (rest.rfind('-'), rest.rfind('.')) {
        (Some(dash), Some(dot)) => dash.max(dot),
        (dash, dot) => dash.or(dot).ok_or_else(syntax)?,
    };
    Ok(Pieces {
        base: &rest[..split],
        timestamp: &rest[split + 1..],
        rev,
        build,
    })
}

/// The commit time of pseudo-version `v` (x/mod `module.PseudoVersionTime`).
pub fn pseudo_version_time(v: &str) -> Result<PseudoTime, VersionError> {
    let p = parse_pseudo(v)?;
    PseudoTime::parse(p.timestamp).ok_or_else(|| {
        VersionError::pseudo(v, VersionReason::MalformedTime(p.timestamp.to_string()))
    })
}

/// The revision identifier (usually a 12-char commit hash prefix) of pseudo-version `v`
/// (x/mod `module.PseudoVersionRev`).
pub fn pseudo_version_rev(v: &str) -> Result<&str, VersionError> {
    parse_pseudo(v).map(|p| p.rev)
}

/// The tagged version pseudo-version `v` is based on, keeping `+incompatible` or
/// other build metadata (x/mod `module.PseudoVersionBase`); `""` for a
/// `vX.0.0-yyyymmddhhmmss-rev` pseudo-version, which has none.
pub fn pseudo_version_base(v: &str) -> Result<String, VersionError> {
    let p = parse_pseudo(v)?;
    let fail = |reason| Err(VersionError::pseudo(v, reason));
    match semver::prerelease(p.base) {
        // vX.0.0-yyyymmddhhmmss-rev → "".
        "" if p.build.is_empty() => Ok(String::new()),
        // "vX.0.0-" means no parent tag, "+incompatible" means an incompatible one.
        "" => fail(VersionReason::BuildWithoutBase(p.build.to_string())),
        // vX.Y.(Z+1)-0.yyyymmddhhmmss-rev → vX.Y.Z
        "-0" => {
            let release = &p.base[..p.base.len() - 2];
            let Some((major_minor, patch)) = release.rsplit_once('.') else {
                return fail(VersionReason::PseudoSyntax);
            };
            match dec_decimal(patch) {
                None => fail(VersionReason::NegativePatch(release.to_string())),
                Some(patch) => Ok(format!("{major_minor}.{patch}{}", p.build)),
            }
        }
        // vX.Y.Z-pre.0.yyyymmddhhmmss-rev → vX.Y.Z-pre
        _ => match p.base.strip_suffix(".0") {
            Some(tag) => Ok(format!("{tag}{}", p.build)),
            None => fail(VersionReason::PseudoSyntax),
        },
    }
}

/// The decimal string plus one.
fn inc_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    // Turn trailing 9s into 0s, then bump the next digit (or prepend a 1).
    let nines = digits.iter().rev().take_while(|&&d| d == b'9').count();
    let n = digits.len();
    digits[n - nines..].fill(b'0');
    match (n - nines).checked_sub(1) {
        Some(i) => digits[i] += 1,
        None => digits.insert(0, b'1'),
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// The decimal string minus one, or `None` if it is all zeros (or empty).
fn dec_decimal(decimal: &str) -> Option<String> {
    let mut digits = decimal.as_bytes().to_vec();
    // Turn trailing 0s into 9s, then lower the next digit.
    let zeros = digits.iter().rev().take_while(|&&d| d == b'0').count();
    let n = digits.len();
    let i = (n - zeros).checked_sub(1)?;
    digits[i + 1..].fill(b'9');
    if i == 0 && digits[0] == b'1' && n > 1 {
        digits.remove(0);
    } else {
        digits[i] -= 1;
    }
    String::from_utf8(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pseudo_test.go `pseudoTests`: major, older tag, resulting pseudo-version.
    const PSEUDO_TESTS: &[(&str, &str, &str)] = &[
        ("", "", "v0.0.0-20060102150405-hash"),
        ("v0", "", "v0.0.0-20060102150405-hash"),
        ("v1", "", "v1.0.0-20060102150405-hash"),
        ("v2", "", "v2.0.0-20060102150405-hash"),
        ("unused", "v0.0.0", "v0.0.1-0.20060102150405-hash"),
        ("unused", "v1.2.3", "v1.2.4-0.20060102150405-hash"),
        (
            "unused",
            "v1.2.99999999999999999",
            "v1.2.100000000000000000-0.20060102150405-hash",
        ),
        ("unused", "v1.2.3-pre", "v1.2.3-pre.0.20060102150405-hash"),
        ("unused", "v1.3.0-pre", "v1.3.0-pre.0.20060102150405-hash"),
        ("unused", "v0.0.0--", "v0.0.0--.0.20060102150405-hash"),
        (
            "unused",
            "v1.0.0+metadata",
            "v1.0.1-0.20060102150405-hash+metadata",
        ),
        (
            "unused",
            "v2.0.0+incompatible",
            "v2.0.1-0.20060102150405-hash+incompatible",
        ),
        (
            "unused",
            "v2.3.0-pre+incompatible",
            "v2.3.0-pre.0.20060102150405-hash+incompatible",
        ),
    ];

    const PSEUDO_TIME: PseudoTime = PseudoTime {
        year: 2006,
        month: 1,
        day: 2,
        hour: 15,
        minute: 4,
        second: 5,
    };

    #[test]
    fn pseudo_version_table() {
        for &(major, older, want) in PSEUDO_TESTS {
            assert_eq!(
                pseudo_version(major, older, &PSEUDO_TIME, "hash"),
                want,
                "pseudo_version({major:?}, {older:?})"
            );
        }
    }

    #[test]
    fn is_pseudo_version_table() {
        for &(_, older, v) in PSEUDO_TESTS {
            assert!(is_pseudo_version(v), "is_pseudo_version({v:?})");
            assert!(!is_pseudo_version(older), "is_pseudo_version({older:?})");
        }
        for v in [
            "v1.2.3",
            "v1.2.3-pre",
            "v0.0.0-2006010215040-hash",        // 13 digits
            "v0.0.0-200601021504050-hash",      // 15 digits after "-"
            "v1.2.3-20060102150405-hash",       // form 1 needs .0.0
            "v1.2.3-pre-20060102150405-hash",   // missing ".0."
            "v1.2.3-pre.1.20060102150405-hash", // ".1." is not ".0."
            "v0.0.0-20060102150405-",           // empty rev
            "v0.0.0-20060102150405-ha_sh",      // rev not alphanumeric
            "v0.0.0-20060102150405-hash+",      // empty build
            "v00.0.0-20060102150405-hash",      // not semver
            "v0.0.0-20060102150405-hash\u{e9}", // non-ASCII
            "v0.0.0-\u{e9}0060102150405-hash",  // non-ASCII in the timestamp slot
            "---",
            "",
        ] {
            assert!(!is_pseudo_version(v), "is_pseudo_version({v:?})");
        }
        // Odd but accepted by Go's pattern.
        assert!(is_pseudo_version("v1.2.3-x.y.0.20060102150405-a1"));
        assert!(is_pseudo_version("v1.2.3-0.0.20060102150405-a1"));
        assert!(is_pseudo_version("v0.0.0-00000000000000-hash")); // time is checked elsewhere
    }

    #[test]
    fn pseudo_version_time_table() {
        for &(_, older, v) in PSEUDO_TESTS {
            assert_eq!(pseudo_version_time(v), Ok(PSEUDO_TIME), "{v:?}");
            assert!(pseudo_version_time(older).is_err(), "{older:?}");
        }
        assert!(pseudo_version_time("---").is_err());
        assert_eq!(PSEUDO_TIME.to_string(), "2006-01-02T15:04:05Z");
        assert_eq!(PSEUDO_TIME.unix_seconds(), 1_136_214_245);
        assert_eq!(PseudoTime::ZERO.unix_seconds(), -62_135_596_800);
        for (v, ok) in [
            ("v0.0.0-00000000000000-hash", false),
            ("v0.0.0-20061302150405-hash", false),
            ("v0.0.0-20060230150405-hash", false),
            ("v0.0.0-20000229150405-hash", true),
            ("v0.0.0-19000229150405-hash", false),
            ("v0.0.0-20060102240405-hash", false),
            ("v0.0.0-20060102156005-hash", false),
            ("v0.0.0-20060102150460-hash", false),
            ("v0.0.0-00010101000000-hash", true),
            ("v0.0.0-99991231235959-hash", true),
        ] {
            assert_eq!(
                pseudo_version_time(v).is_ok(),
                ok,
                "pseudo_version_time({v:?})"
            );
        }
        assert_eq!(
            pseudo_version_time("v0.0.0-20061302150405-hash")
                .unwrap_err()
                .to_string(),
            r#"pseudo-version "v0.0.0-20061302150405-hash" invalid: malformed time "20061302150405""#
        );
    }

    #[test]
    fn pseudo_version_rev_table() {
        for &(_, older, v) in PSEUDO_TESTS {
            assert_eq!(pseudo_version_rev(v), Ok("hash"), "{v:?}");
            assert!(pseudo_version_rev(older).is_err(), "{older:?}");
        }
    }

    #[test]
    fn pseudo_version_base_table() {
        for &(_, older, v) in PSEUDO_TESTS {
            assert_eq!(pseudo_version_base(v).as_deref(), Ok(older), "{v:?}");
        }
        for v in [
            "v0.0.0",
            "v0.0.0-",                                 // malformed: empty prerelease
            "v0.0.0-0.20060102150405-hash",            // Z+1 == 0
            "v0.1.0-0.20060102150405-hash",            // Z+1 == 0
            "v1.0.0-0.20060102150405-hash",            // Z+1 == 0
            "v0.0.0-20060102150405-hash+incompatible", // +incompatible without base version
            "v0.0.0-20060102150405-hash+metadata",     // other metadata without base version
        ] {
            assert!(
                pseudo_version_base(v).is_err(),
                "pseudo_version_base({v:?})"
            );
        }
        assert_eq!(
            pseudo_version_base("v1.0.0-0.20060102150405-hash")
                .unwrap_err()
                .to_string(),
            r#"pseudo-version "v1.0.0-0.20060102150405-hash" invalid: version before v1.0.0 would have negative patch number"#
        );
    }

    #[test]
    fn zero_pseudo_versions() {
        assert_eq!(
            zero_pseudo_version(""),
            "v0.0.0-00010101000000-000000000000"
        );
        assert_eq!(
            zero_pseudo_version("v2"),
            "v2.0.0-00010101000000-000000000000"
        );
        assert!(is_zero_pseudo_version("v2.0.0-00010101000000-000000000000"));
        assert!(!is_zero_pseudo_version(
            "v2.0.0-00010101000000-000000000001"
        ));
        assert!(!is_zero_pseudo_version("junk"));
        assert!(is_pseudo_version(&zero_pseudo_version("v3")));
    }

    #[test]
    fn inc_decimal_table() {
        for (input, want) in [
            ("0", "1"),
            ("1", "2"),
            ("99", "100"),
            ("100", "101"),
            ("101", "102"),
        ] {
            assert_eq!(inc_decimal(input), want, "inc_decimal({input:?})");
        }
    }

    #[test]
    fn dec_decimal_table() {
        for (input, want) in [
            ("", None),
            ("0", None),
            ("00", None),
            ("1", Some("0")),
            ("2", Some("1")),
            ("99", Some("98")),
            ("100", Some("99")),
            ("101", Some("100")),
        ] {
            assert_eq!(
                dec_decimal(input).as_deref(),
                want,
                "dec_decimal({input:?})"
            );
        }
    }
}
