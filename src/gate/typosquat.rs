//! Typosquat checks: does a module path, requested for the first time, resemble a popular module path it is not?
//!
//! # The corpus
//!
//! Popular module paths come from a real public source: the Go import paths
//! of Debian's `golang-*-dev` packages (`data/typosquat/corpus.txt`, made by
//! `scripts/typosquat-corpus.sh` from the archive's Sources index), each with
//! the number of Debian source packages that build-depend on it. The mirror
//! adds every module it already serves ([`Corpus::add`]). A path that is a
//! member, or lies below one (`golang.org/x/tools/gopls` under
//! `golang.org/x/tools`), is never flagged. Case is ignored throughout:
//! `github.com/Sirupsen/logrus` is `github.com/sirupsen/logrus` (one
//! repository on the host; Go's case-encoding keeps both safe on disk).
//!
//! # The checks
//!
//! Each compares the path (or a prefix of it) with members of the same
//! shape that differ in exactly one element — found through an index of
//! "siblings": for every member and element position, the member's other
//! elements — so a check costs a few hash lookups, not a corpus scan:
//! - **affix**: the elements are equal once a `go-`, `golang-`, `-go`,
//!   `-golang` (or `_`, `.` spelling) is removed from either
//!   (`github.com/boltdb-go/bolt` is `github.com/boltdb/bolt`);
//! - **homoglyph**: equal once `1`/`i` read as `l`, `0` as `o`, `rn` as `m`,
//!   `vv` as `w` (`go1ang.org/x/net`);
//! - **one edit**: one character substituted, inserted, omitted, or two
//!   adjacent ones swapped, in an element of at least [`MIN_EDIT_LEN`]
//!   characters; edits that only touch digits are versions, not typos
//!   (`yaml.v2`/`yaml.v3`, `oauth`/`oauth2`);
//! - **new owner**: `host/owner/repo` on a code host, where `repo` (or it
//!   without an affix) is the repository name of a *very popular* module —
//!   [`VERY_POPULAR_USERS`] or more Debian packages build on it (about 110
//!   of the corpus) — and no other owner in the corpus uses that name (a
//!   name several owners use, like `errors` or `uuid`, says nothing).
//!
//! On a code host (`host/owner/repo`), the first three checks compare only
//! the host and owner elements: the owner controls every repository under
//! it, so `minio/minio` beside `minio/minio-go` is one party, not a squatter.
//!
//! # False positives, measured
//!
//! On the real module sets in `shared/realdata`, copied to
//! `tests/fixtures/typosquat/` and pinned by `tests/gate_signals_typosquat.rs`
//! (each path checked against the Debian corpus alone, as on a fresh mirror):
//! - the 42 module paths of the 2020 module cache (`sum.golang.org-2020/proxy`;
//!   28 of them in the corpus or below a member): **0 flagged**;
//! - the 1,373 module paths of the Go vulnerability database's
//!   `index/modules.json` (real modules; 182 in the corpus or below a
//!   member): **3 flagged** — `github.com/boltdb-go/bolt`, the real
//!   typosquat (GO-2025-3451), and 2 false positives,
//!   `github.com/go-viper/mapstructure` and its `/v2`, the maintained
//!   successor of the very popular, archived `github.com/mitchellh/mapstructure`
//!   (the "new owner" check; what `[[allow]]` is for). 2 of 1,373 (0.15%).
//!   With the other 1,372 fed in as modules the mirror serves, each path
//!   resembles none of them: the same `boltdb-go/bolt` and
//!   `go-viper/mapstructure` are flagged (its `/v2` then lies below a served
//!   module), nothing else (measured once, not pinned: 1,373 corpora).
//!
//! Before the code-host owner rule (an owner's own repositories are never
//! compared with each other) the vulndb set had 8 more:
//! `aws/aws-cdk-go` ~ `aws/aws-sdk-go`, `centrifugal/centrifugo` ~
//! `centrifugal/centrifuge` (5 major versions), `minio/minio` ~ `minio/minio-go`.
//! Lowering [`VERY_POPULAR_USERS`] to 5 adds 4 (`distribution/distribution`,
//! two `*/console`); [`MIN_EDIT_LEN`] from 5 down to 3 adds none. A check
//! costs about 3 µs and the corpus builds in about 3 ms (release build).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The embedded corpus (see the module doc).
pub const DEBIAN_CORPUS: &str = include_str!("../../data/typosquat/corpus.txt");

/// Modules with at least this many Debian source packages building on them
/// are "very popular": their repository name under a new owner is flagged.
pub const VERY_POPULAR_USERS: u32 = 10;

/// Shortest element (of the corpus member) an edit is looked for in: in a
/// two-letter name every edit is another plausible name (`kr`/`kt`).
pub const MIN_EDIT_LEN: usize = 3;

/// Code hosts whose paths are `host/owner/repo`.
const CODE_HOSTS: &[&str] = &[
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "gitee.com",
    "git.sr.ht",
];

const PREFIXES: &[&str] = &["golang-", "golang_", "go-", "go_", "go."];
const SUFFIXES: &[&str] = &["-golang", "_golang", "-go", "_go", ".go"];

/// What a flagged path resembles, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resemblance {
    /// The corpus member it resembles.
    pub similar_to: String,
    /// Why, for people: e.g. "`boltdb-go` is `boltdb` with `-go` added".
    pub how: String,
}

struct Member {
    /// As given (case kept, for messages).
    path: String,
    /// Lower-cased.
    lower: String,
    users: u32,
}

/// Repository names of the corpus's code-host modules.
#[derive(Default)]
struct RepoName {
    /// Distinct owners using the name.
    owners: HashSet<String>,
    /// The most used very popular member with this name, if any.
    popular: Option<u32>,
}

/// The corpus of popular module paths, indexed for the checks.
#[derive(Default)]
pub struct Corpus {
    members: Vec<Member>,
    /// Lower-cased path → member.
    exact: HashMap<String, u32>,
    /// (element count, position, the other elements) hashed → members.
    siblings: HashMap<u64, Vec<u32>>,
    /// Repository name (lower-cased, and without affix) → who uses it; only
    /// the Debian corpus counts, so a module the mirror serves cannot make a
    /// popular name look common.
    repos: HashMap<String, RepoName>,
}

fn sibling_key(elems: &[&str], pos: usize) -> u64 {
    let mut h = DefaultHasher::new();
    (elems.len(), pos).hash(&mut h);
    for (i, e) in elems.iter().enumerate() {
        if i != pos {
            e.hash(&mut h);
        }
    }
    h.finish()
}

/// A module path worth judging: a dotted first element, no empty element.
fn elements(lower: &str) -> Option<Vec<&str>> {
    let elems: Vec<&str> = lower.split('/').collect();
    let ok = elems[0].contains('.') && elems.iter().all(|e| !e.is_empty());
    ok.then_some(elems)
}

impl Corpus {
    /// An empty corpus.
    pub fn new() -> Corpus {
        Corpus::default()
    }

    /// The Debian corpus shipped with modgate.
    pub fn debian() -> Corpus {
        let mut c = Corpus::new();
        c.add_listing(DEBIAN_CORPUS);
        c
    }

    /// Adds a listing in the corpus file's form: one path per line, optionally
    /// a tab and its number of users; `#` lines are comments.
    pub fn add_listing(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(path) = fields.next() else { continue };
            let users = fields.next().and_then(|u| u.parse().ok()).unwrap_or(0);
            self.insert(path, users, true);
        }
    }

    /// Adds a module path the mirror serves (it and its sub-paths are then
    /// never flagged, and near-copies of it are).
    pub fn add(&mut self, path: &str) {
        self.insert(path, 0, false);
    }

    /// How many module paths the corpus holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// True if `path` is a member or lies below one.
    pub fn covers(&self, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        let elems: Vec<&str> = lower.split('/').collect();
        (1..=elems.len()).any(|j| self.exact.contains_key(&elems[..j].join("/")))
    }

    fn insert(&mut self, path: &str, users: u32, base: bool) {
        let lower = path.to_ascii_lowercase();
        let Some(elems) = elements(&lower) else {
            return;
        };
        if let Some(&i) = self.exact.get(&lower) {
            let m = &mut self.members[i as usize];
            m.users = m.users.max(users);
            return;
        }
        let idx = self.members.len() as u32;
        for pos in 0..elems.len() {
            self.siblings
                .entry(sibling_key(&elems, pos))
                .or_default()
                .push(idx);
        }
        if base && elems.len() == 3 && CODE_HOSTS.contains(&elems[0]) {
            let mut names = vec![elems[2].to_string()];
            let bare = strip_affix(elems[2]);
            if bare != elems[2] && bare.len() >= MIN_EDIT_LEN {
                names.push(bare.to_string());
            }
            for name in names {
                let r = self.repos.entry(name).or_default();
                r.owners.insert(elems[1].to_string());
                if users >= VERY_POPULAR_USERS
                    && r.popular
                        .is_none_or(|p| self.members[p as usize].users < users)
                {
                    r.popular = Some(idx);
                }
            }
        }
        self.exact.insert(lower.clone(), idx);
        self.members.push(Member {
            path: path.to_string(),
            lower,
            users,
        });
    }

    /// Whether `path` resembles a corpus member it is not (see the module
    /// doc). `None` for members, their sub-paths, and paths that resemble
    /// nothing. Among several resemblances, the most used member is named.
    pub fn check(&self, path: &str) -> Option<Resemblance> {
        let lower = path.to_ascii_lowercase();
        let elems = elements(&lower)?;
        if self.covers(&lower) {
            return None;
        }
        let mut best: Option<(u32, Resemblance)> = None;
        let mut consider = |users: u32, r: Resemblance| {
            if best.as_ref().is_none_or(|(u, _)| users > *u) {
                best = Some((users, r));
            }
        };
        // On a code host the owner controls every repository under it: a
        // near-copy in the repository (or below) of the same owner's module
        // is that owner's own (centrifugal/centrifugo beside
        // centrifugal/centrifuge), so only host and owner are compared there.
        let code_host = CODE_HOSTS.contains(&elems[0]);
        for j in 1..=elems.len() {
            let prefix = &elems[..j];
            for pos in 0..j {
                if code_host && pos >= 2 {
                    continue;
                }
                let Some(sibs) = self.siblings.get(&sibling_key(prefix, pos)) else {
                    continue;
                };
                for &idx in sibs {
                    let m = &self.members[idx as usize];
                    let m_elems: Vec<&str> = m.lower.split('/').collect();
                    // The hash matched; make sure the other elements do.
                    if m_elems.len() != j || (0..j).any(|i| i != pos && m_elems[i] != prefix[i]) {
                        continue;
                    }
                    if let Some(how) = compare(prefix[pos], m_elems[pos]) {
                        consider(
                            m.users,
                            Resemblance {
                                similar_to: m.path.clone(),
                                how,
                            },
                        );
                    }
                }
            }
        }
        if let Some(r) = self.new_owner(&elems) {
            let users = self.exact.get(&r.similar_to.to_ascii_lowercase());
            consider(users.map_or(0, |&i| self.members[i as usize].users), r);
        }
        best.map(|(_, r)| r)
    }

    /// The "same repository, new owner" check for very popular modules.
    fn new_owner(&self, elems: &[&str]) -> Option<Resemblance> {
        if elems.len() < 3 || !CODE_HOSTS.contains(&elems[0]) {
            return None;
        }
        let (owner, repo) = (elems[1], elems[2]);
        for name in [repo, strip_affix(repo)] {
            let Some(r) = self.repos.get(name) else {
                continue;
            };
            let Some(p) = r.popular else { continue };
            if r.owners.len() != 1 || r.owners.contains(owner) {
                continue;
            }
            let m = &self.members[p as usize];
            let m_owner = m.lower.split('/').nth(1).unwrap_or_default();
            return Some(Resemblance {
                similar_to: m.path.clone(),
                how: format!(
                    "the repository name `{repo}` of the very popular {} ({} Debian packages build on it), under another owner: `{owner}`, not `{m_owner}`",
                    m.path, m.users
                ),
            });
        }
        None
    }
}

/// How element `c` (of the checked path) resembles `m` (of a member), if it does.
fn compare(c: &str, m: &str) -> Option<String> {
    if c == m {
        return None;
    }
    if fold(c) == fold(m) {
        return Some(format!("`{c}` looks like `{m}` (homoglyphs)"));
    }
    let (bc, bm) = (strip_affix(c), strip_affix(m));
    if bc == bm && bc.len() >= 3 {
        // The affix itself: what one has around the other.
        let around = |long: &str, short: &str| {
            long.strip_prefix(short)
                .or_else(|| long.strip_suffix(short))
                .map(str::to_string)
        };
        return Some(match (around(c, m), around(m, c)) {
            (Some(a), _) => format!("`{c}` is `{m}` with `{a}` added"),
            (_, Some(a)) => format!("`{c}` is `{m}` without `{a}`"),
            _ => format!("`{c}` is `{m}` with another affix"),
        });
    }
    if m.chars().count() < MIN_EDIT_LEN {
        return None;
    }
    one_edit(c, m).map(|e| format!("`{c}` is one edit from `{m}` ({e})"))
}

/// Reads look-alike characters as the letter they imitate.
fn fold(s: &str) -> String {
    s.replace("rn", "m")
        .replace("vv", "w")
        .chars()
        .map(|ch| match ch {
            '1' | 'i' => 'l',
            '0' => 'o',
            c => c,
        })
        .collect()
}

fn strip_affix(e: &str) -> &str {
    let mut s = e;
    if let Some(p) = PREFIXES
        .iter()
        .find(|p| s.len() > p.len() && s.starts_with(*p))
    {
        s = &s[p.len()..];
    }
    if let Some(x) = SUFFIXES
        .iter()
        .find(|x| s.len() > x.len() && s.ends_with(*x))
    {
        s = &s[..s.len() - x.len()];
    }
    s
}

/// Describes the single edit turning `m` into `c`, if there is exactly one
/// that does not only touch digits.
fn one_edit(c: &str, m: &str) -> Option<String> {
    let (c, m): (Vec<char>, Vec<char>) = (c.chars().collect(), m.chars().collect());
    let p = c.iter().zip(&m).position(|(a, b)| a != b);
    match c.len() as isize - m.len() as isize {
        0 => {
            let p = p?;
            if c[p + 1..] == m[p + 1..] {
                if c[p].is_ascii_digit() && m[p].is_ascii_digit() {
                    return None;
                }
                return Some(format!("`{}` for `{}`", c[p], m[p]));
            }
            let swapped =
                p + 1 < c.len() && c[p] == m[p + 1] && c[p + 1] == m[p] && c[p + 2..] == m[p + 2..];
            let digits = c[p].is_ascii_digit() && c[p + 1].is_ascii_digit();
            (swapped && !digits).then(|| format!("`{}{}` swapped", m[p], m[p + 1]))
        }
        1 => {
            let p = p.unwrap_or(m.len());
            (c[p + 1..] == m[p..] && !c[p].is_ascii_digit()).then(|| format!("`{}` added", c[p]))
        }
        -1 => {
            let p = p.unwrap_or(c.len());
            (m[p + 1..] == c[p..] && !m[p].is_ascii_digit()).then(|| format!("`{}` left out", m[p]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Corpus {
        Corpus::debian()
    }

    fn flagged(c: &Corpus, path: &str) -> Resemblance {
        c.check(path)
            .unwrap_or_else(|| panic!("{path} not flagged"))
    }

    #[test]
    fn the_corpus_is_the_debian_listing() {
        let c = corpus();
        assert!(c.len() > 1500, "{}", c.len());
        assert!(c.covers("github.com/boltdb/bolt"));
        assert!(c.covers("golang.org/x/mod/sumdb/note"));
        assert!(c.covers("github.com/Sirupsen/logrus"));
        assert!(!c.covers("github.com/boltdb-go/bolt"));
    }

    #[test]
    fn the_boltdb_go_case() {
        let r = flagged(&corpus(), "github.com/boltdb-go/bolt");
        assert_eq!(r.similar_to, "github.com/boltdb/bolt");
        assert_eq!(r.how, "`boltdb-go` is `boltdb` with `-go` added");
    }

    #[test]
    fn affixes_added_dropped_or_changed() {
        let c = corpus();
        let r = flagged(&c, "github.com/golang-boltdb/bolt");
        assert_eq!(r.similar_to, "github.com/boltdb/bolt");
        let r = flagged(&c, "github.com/mattn-golang/go-sqlite3");
        assert_eq!(r.similar_to, "github.com/mattn/go-sqlite3");
        let r = flagged(&c, "golang.org/x/crypto-go");
        assert_eq!(r.similar_to, "golang.org/x/crypto");
        let r = flagged(&c, "github.com/kit/kit");
        assert_eq!(r.similar_to, "github.com/go-kit/kit");
        assert_eq!(r.how, "`kit` is `go-kit` without `go-`");
        let r = flagged(&c, "github.com/golang-kit/kit");
        assert_eq!(r.how, "`golang-kit` is `go-kit` with another affix");
        let r = flagged(&c, "github.com/golang-hashicorp/multierror-go");
        assert_eq!(r.similar_to, "github.com/hashicorp/go-multierror");
        // On a code host an owner's own repositories are its own: no affix
        // or edit check between them (minio/minio beside minio/minio-go).
        assert_eq!(c.check("github.com/mattn/sqlite3"), None);
        assert_eq!(c.check("github.com/minio/minio"), None);
        assert_eq!(c.check("github.com/stretchr/testify-go"), None);
    }

    #[test]
    fn one_edit_swap_or_omission() {
        let c = corpus();
        let r = flagged(&c, "github.com/siruspen/logrus");
        assert_eq!(r.similar_to, "github.com/sirupsen/logrus");
        assert!(r.how.contains("swapped"), "{}", r.how);
        let r = flagged(&c, "github.com/strechr/testify");
        assert_eq!(r.similar_to, "github.com/stretchr/testify");
        assert!(r.how.contains("left out"), "{}", r.how);
        let r = flagged(&c, "github.com/stretchrr/testify");
        assert!(r.how.contains("added"), "{}", r.how);
        let r = flagged(&c, "githab.com/pkg/errors");
        assert_eq!(r.similar_to, "github.com/pkg/errors");
        let r = flagged(&c, "golang.org/x/crytpo");
        assert!(r.how.contains("swapped"), "{}", r.how);
        let r = flagged(&c, "gopkg.in/yml.v3");
        assert_eq!(r.similar_to, "gopkg.in/yaml.v3");
        // Below the near-copy: still flagged (the prefix resembles).
        let r = flagged(&c, "github.com/siruspen/logrus/hooks/syslog");
        assert_eq!(r.similar_to, "github.com/sirupsen/logrus");
    }

    #[test]
    fn homoglyphs() {
        let c = corpus();
        let r = flagged(&c, "go1ang.org/x/net");
        assert_eq!(r.similar_to, "golang.org/x/net");
        assert!(r.how.contains("homoglyph"), "{}", r.how);
        let r = flagged(&c, "github.com/s1rupsen/logrus");
        assert_eq!(r.similar_to, "github.com/sirupsen/logrus");
        let r = flagged(&c, "github.com/rnattn/go-isatty");
        assert_eq!(r.similar_to, "github.com/mattn/go-isatty");
        assert!(r.how.contains("homoglyph"), "{}", r.how);
        let r = flagged(&c, "github.com/g0rilla/mux");
        assert_eq!(r.similar_to, "github.com/gorilla/mux");
        let r = flagged(&c, "golang.org/x/rnod");
        assert_eq!(r.similar_to, "golang.org/x/mod");
    }

    #[test]
    fn a_very_popular_repository_under_a_new_owner() {
        let c = corpus();
        let r = flagged(&c, "github.com/evil/cobra");
        assert_eq!(r.similar_to, "github.com/spf13/cobra");
        assert!(r.how.contains("very popular"), "{}", r.how);
        let r = flagged(&c, "gitlab.com/someone/testify/assert");
        assert_eq!(r.similar_to, "github.com/stretchr/testify");
        // A name several owners use says nothing; nor does a less used module's.
        assert_eq!(c.check("github.com/someone/errors"), None);
        assert_eq!(c.check("github.com/someone/bolt"), None);
    }

    #[test]
    fn members_sub_paths_and_unrelated_paths_pass() {
        let c = corpus();
        for ok in [
            "github.com/boltdb/bolt",
            "github.com/BoltDB/Bolt",
            "golang.org/x/tools/gopls",
            "github.com/spf13/cobra/doc",
            "gopkg.in/yaml.v3",
            "gopkg.in/yaml.v4",         // a version, not a typo
            "github.com/golang/oauth3", // digits only
            "github.com/kr/tty",        // the owner's own repository
            "github.com/kz/pty",        // two letters: too short to mean anything
            "example.com/hello",
            "github.com/someone/something-new",
            "stdlib",
            "",
            "github.com//x",
        ] {
            assert_eq!(c.check(ok), None, "{ok}");
        }
    }

    #[test]
    fn modules_the_mirror_serves_join_the_corpus() {
        let mut c = corpus();
        assert_eq!(c.check("corp.example/platform/authz"), None);
        c.add("corp.example/platform/authz");
        assert_eq!(c.check("corp.example/platform/authz/v2"), None);
        let r = flagged(&c, "corp.example/platform/auth2");
        assert_eq!(r.similar_to, "corp.example/platform/authz");
        let r = flagged(&c, "corp.example/platform-go/authz");
        assert_eq!(r.similar_to, "corp.example/platform/authz");
        // Serving a near-copy makes it a member (the mirror vouched for it).
        c.add("github.com/boltdb-go/bolt");
        assert_eq!(c.check("github.com/boltdb-go/bolt"), None);
    }

    #[test]
    fn edits() {
        assert_eq!(one_edit("abcd", "abce").as_deref(), Some("`d` for `e`"));
        assert_eq!(one_edit("abdc", "abcd").as_deref(), Some("`cd` swapped"));
        assert_eq!(one_edit("abcde", "abcd").as_deref(), Some("`e` added"));
        assert_eq!(one_edit("xabcd", "abcd").as_deref(), Some("`x` added"));
        assert_eq!(one_edit("abd", "abcd").as_deref(), Some("`c` left out"));
        assert_eq!(one_edit("abc", "abcd").as_deref(), Some("`d` left out"));
        assert_eq!(one_edit("abcd", "abcd"), None);
        assert_eq!(one_edit("abdd", "abcc"), None);
        assert_eq!(one_edit("ab", "abcd"), None);
        assert_eq!(one_edit("yaml.v2", "yaml.v3"), None);
        assert_eq!(one_edit("oauth2", "oauth"), None);
        assert_eq!(one_edit("v12", "v21"), None);
        assert_eq!(strip_affix("go-bolt-go"), "bolt");
        assert_eq!(strip_affix("go"), "go");
        assert_eq!(strip_affix("go-"), "go-");
        assert_eq!(fold("rnux"), "mux");
        assert_eq!(fold("go1ang"), "golang");
    }
}
