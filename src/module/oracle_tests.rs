//! Differential tests: our verdicts against golang.org/x/mod's on fuzzed inputs (testdata/x_mod_oracle.tsv).

use super::*;

const ORACLE: &str = include_str!("testdata/x_mod_oracle.tsv");
const PATH_MAJORS: [&str; 7] = [
    "",
    "/v2",
    ".v1",
    ".v0",
    ".v2-unstable",
    ".v1-unstable",
    "/v3",
];

fn verdict<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() { "O" } else { "E" }
}

fn result<T: std::fmt::Display, E>(r: Result<T, E>) -> String {
    r.map_or_else(|_| "E".to_string(), |s| format!("O:{s}"))
}

/// Our answers in the row layout of oracle.go.
fn row(s: &str) -> Vec<String> {
    let (path, version) = s.split_once('@').unwrap_or((s, "v1.0.0"));
    vec![
        s.to_string(),
        [
            verdict(&check_path(s)),
            verdict(&check_import_path(s)),
            verdict(&check_file_path(s)),
        ]
        .concat(),
        result(escape_path(s)),
        result(unescape_path(s)),
        result(escape_version(s)),
        result(unescape_version(s)),
        split_path_version(s).map_or("E".into(), |(p, m)| format!("O:{p}|{m}")),
        format!(
            "{}|{}|{}|{}|{}|{}",
            semver::is_valid(s),
            semver::canonical(s),
            semver::major(s),
            semver::major_minor(s),
            semver::prerelease(s),
            semver::build(s)
        ),
        is_pseudo_version(s).to_string(),
        result(pseudo_version_base(s)),
        result(pseudo_version_time(s)),
        result(pseudo_version_rev(s)),
        PATH_MAJORS
            .map(|pm| match_path_major(s, pm).to_string())
            .join(","),
        verdict(&check(path, version)).to_string(),
    ]
}

#[test]
fn agrees_with_x_mod() {
    let mut rows = 0;
    for line in ORACLE.lines().filter(|l| !l.starts_with('#')) {
        let want: Vec<&str> = line.split('\t').collect();
        assert_eq!(row(want[0]), want, "input {:?}", want[0]);
        rows += 1;
    }
    assert!(rows > 400, "only {rows} oracle rows");
}
