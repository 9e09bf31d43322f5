//! False positives of the typosquat check, measured on real module sets and
//! pinned: each path is checked against the Debian corpus alone, as a fresh
//! mirror would on its first request for it. A change to the checks or the
//! corpus that flags more (or fewer) real modules fails here and shows which.

use modgate::gate::typosquat::{Corpus, Resemblance};

fn paths(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Checks every path; returns (members or sub-paths, flagged with why).
fn measure(set: &[&str]) -> (usize, Vec<(String, Resemblance)>) {
    let start = std::time::Instant::now();
    let corpus = Corpus::debian();
    let built = start.elapsed();
    let covered = set.iter().filter(|p| corpus.covers(p)).count();
    let start = std::time::Instant::now();
    let flagged = set
        .iter()
        .filter_map(|p| corpus.check(p).map(|r| (p.to_string(), r)))
        .collect();
    let checked = start.elapsed();
    eprintln!(
        "corpus of {} built in {built:?}; {} paths checked in {checked:?}",
        corpus.len(),
        set.len()
    );
    // Generous: a first request pays one check (callers cache the answer).
    assert!(checked.as_secs() < 10, "{checked:?}");
    (covered, flagged)
}

fn show(flagged: &[(String, Resemblance)]) -> String {
    flagged
        .iter()
        .map(|(p, r)| format!("{p} ~ {}: {}\n", r.similar_to, r.how))
        .collect()
}

#[test]
fn the_2020_module_cache_has_no_false_positive() {
    let set = paths(include_str!("fixtures/typosquat/realdata-2020-modules.txt"));
    assert_eq!(set.len(), 42);
    let (covered, flagged) = measure(&set);
    eprintln!(
        "2020 cache: {} paths, {covered} in the corpus or below a member, {} flagged\n{}",
        set.len(),
        flagged.len(),
        show(&flagged)
    );
    assert!(flagged.is_empty(), "{}", show(&flagged));
}

#[test]
fn vulndb_modules_false_positives_are_pinned() {
    let set = paths(include_str!("fixtures/typosquat/vulndb-modules.txt"));
    assert_eq!(set.len(), 1373);
    let (covered, flagged) = measure(&set);
    eprintln!(
        "vulndb: {} paths, {covered} in the corpus or below a member, {} flagged\n{}",
        set.len(),
        flagged.len(),
        show(&flagged)
    );
    let got: Vec<&str> = flagged.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(got, PINNED_VULNDB, "{}", show(&flagged));
}

/// The vulndb modules flagged today. One is the real typosquat (the module
/// of GO-2025-3451 / MAL-2025-2545, which resembles github.com/boltdb/bolt);
/// the other two are false positives: the maintained successor of the
/// archived github.com/mitchellh/mapstructure, flagged by the "very popular
/// repository under a new owner" check — the case an `[[allow]]` is for.
const PINNED_VULNDB: &[&str] = &[
    "github.com/boltdb-go/bolt",
    "github.com/go-viper/mapstructure",
    "github.com/go-viper/mapstructure/v2",
];
