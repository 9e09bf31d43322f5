//! Property tests: escaping round-trips and no panics on arbitrary input (mirrors the fuzz target).

use proptest::prelude::*;

use super::*;

/// Strings biased towards path and version syntax, with some non-ASCII.
const PATHISH: &str = "[a-zA-Z0-9!./~_+@-]{0,24}|[a-zA-Z0-9!./é☺ -]{0,12}";
const VERSIONISH: &str =
    "v[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(-[0-9A-Za-z.-]{0,20})?(\\+[0-9A-Za-z.-]{0,12})?";

/// The fuzz target's body: nothing panics, and a successful unescape round-trips.
fn exercise(s: &str) {
    if let Ok(path) = unescape_path(s) {
        assert!(check_path(&path).is_ok());
        assert_eq!(escape_path(&path).as_deref(), Ok(s));
    }
    if let Ok(v) = unescape_version(s) {
        assert_eq!(escape_version(&v).as_deref(), Ok(s));
    }
    if let Ok(esc) = escape_path(s) {
        assert_eq!(unescape_path(&esc).as_deref(), Ok(s));
    }
    if let Ok(esc) = escape_version(s) {
        assert_eq!(unescape_version(&esc).as_deref(), Ok(s));
    }
    let _ = check_import_path(s);
    let _ = check_file_path(s);
    if let Some((prefix, major)) = split_path_version(s) {
        assert_eq!(format!("{prefix}{major}"), s);
    }
    let (path, version) = s.split_once('@').unwrap_or((s, "v1.0.0"));
    let _ = check(path, version);
    let _ = check_path_major(version, s);
    let _ = (
        pseudo_version_base(s),
        pseudo_version_time(s),
        pseudo_version_rev(s),
    );
    let _ = (
        semver::major_minor(s),
        semver::build(s),
        semver::prerelease(s),
    );
    assert_eq!(semver::is_valid(s), !semver::canonical(s).is_empty());
}

proptest! {
    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        exercise(&s);
    }

    #[test]
    fn pathish_strings(s in PATHISH) {
        exercise(&s);
    }

    #[test]
    fn versionish_strings(v in VERSIONISH, w in VERSIONISH) {
        exercise(&v);
        let c = semver::canonical(&v);
        if semver::is_valid(&v) {
            // Canonicalising is idempotent and preserves precedence.
            prop_assert_eq!(semver::canonical(&c), c.clone());
            prop_assert_eq!(semver::compare(&v, &c), std::cmp::Ordering::Equal);
        }
        // compare is antisymmetric and agrees with canonical equality.
        prop_assert_eq!(semver::compare(&v, &w), semver::compare(&w, &v).reverse());
        if semver::is_valid(&v) && semver::is_valid(&w) {
            prop_assert_eq!(
                semver::compare(&v, &w) == std::cmp::Ordering::Equal,
                semver::canonical(&v) == semver::canonical(&w)
            );
        }
    }

    #[test]
    fn valid_paths_round_trip(
        host in "[a-z0-9-]{1,8}\\.[a-z]{2,4}",
        elems in prop::collection::vec("[a-zA-Z0-9_~-]{1,8}", 0..4),
    ) {
        let path = std::iter::once(host).chain(elems).collect::<Vec<_>>().join("/");
        if check_path(&path).is_ok() {
            let esc = escape_path(&path).unwrap();
            prop_assert!(!esc.bytes().any(|b| b.is_ascii_uppercase()));
            prop_assert_eq!(unescape_path(&esc).unwrap(), path);
        }
    }

    #[test]
    fn pseudo_versions_round_trip(
        older in prop::option::of(VERSIONISH),
        secs in 0i64..253_402_300_800,
        rev in "[0-9a-f]{12}",
    ) {
        let older = older.filter(|o| semver::is_valid(o)).unwrap_or_default();
        let time = time_from_unix(secs);
        let v = pseudo_version(semver::major(&older), &older, &time, &rev);
        prop_assert!(is_pseudo_version(&v), "{}", v);
        prop_assert_eq!(pseudo_version_time(&v), Ok(time));
        prop_assert_eq!(pseudo_version_rev(&v), Ok(rev.as_str()));
        // A pseudo-version sorts after its base.
        if !older.is_empty() {
            prop_assert_eq!(semver::compare(&v, &older), std::cmp::Ordering::Greater);
        }
    }
}

/// Civil time from Unix seconds (inverse of `PseudoTime::unix_seconds`), for test inputs.
fn time_from_unix(secs: i64) -> PseudoTime {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let t = PseudoTime {
        year: year as u16,
        month: month as u8,
        day: day as u8,
        hour: (rem / 3600) as u8,
        minute: (rem / 60 % 60) as u8,
        second: (rem % 60) as u8,
    };
    assert_eq!(t.unix_seconds(), secs);
    t
}
