//! The policy file: `[[deny]]` and `[[allow]]` rules, advisory sources, cooldown and
//! typosquat settings — parsed strictly, with errors that name the file, the line and
//! the problem, and rules indexed so a verdict costs a hash lookup, not a scan.
//!
//! ```toml
//! [[deny]]
//! module = "github.com/boltdb-go/*"       # GOPRIVATE-style pattern (src/module/pattern.rs)
//! versions = ["v1.3.1", "<v1.4.0", ">=v2.0.0, <v2.3.5"]   # absent = all versions
//! reason = "typosquat of github.com/boltdb/bolt"
//! mode = "enforce"                        # or "warn"
//!
//! [[allow]]
//! module = "example.com/legacy"
//! versions = ["v1.2.3"]
//! reason = "accepted risk, SEC-123"
//! expires = "2027-03-31"                  # through the end of that day, UTC
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;

use crate::module::pattern::Pattern;
use crate::module::semver;

/// The default advisory refresh interval.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// A policy file that cannot be used, said precisely enough to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("policy file {path}, line {line}: {problem}")]
    Invalid {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// Whether a rule refuses or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse the version (403).
    #[default]
    Enforce,
    /// Serve it anyway; log a security event and count it (a dry run).
    Warn,
}

/// Typosquat checking's mode (the check itself lives in `gate/typosquat.rs`):
/// `Off` without a policy file, `Warn` in a policy file that does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TyposquatMode {
    Enforce,
    Warn,
    #[default]
    Off,
}

/// A `[[deny]]` rule.
#[derive(Debug, Clone)]
pub struct DenyRule {
    pub module: Pattern,
    pub versions: Option<VersionSet>,
    pub reason: String,
    pub mode: Mode,
    /// Line of the rule's `module` key in the file (for messages).
    pub line: usize,
}

/// An `[[allow]]` rule: an exception to every other verdict until it expires.
#[derive(Debug, Clone)]
pub struct AllowRule {
    pub module: Pattern,
    pub versions: Option<VersionSet>,
    pub reason: String,
    /// Unix seconds from which the exception no longer applies (the start of
    /// the day after `expires`, UTC).
    pub expires_at: Option<u64>,
    /// `expires` as written.
    pub expires: Option<String>,
    pub line: usize,
}

/// `[advisories]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryConfig {
    /// Sources whose every covered version is blocked (URLs or directories).
    pub malicious: Vec<String>,
    /// Sources whose entries are reported, blocked only with `block_vulnerable`.
    pub vulnerabilities: Vec<String>,
    pub refresh: Duration,
    pub block_vulnerable: bool,
}

impl Default for AdvisoryConfig {
    fn default() -> Self {
        AdvisoryConfig {
            malicious: Vec::new(),
            vulnerabilities: Vec::new(),
            refresh: DEFAULT_REFRESH,
            block_vulnerable: false,
        }
    }
}

/// `[cooldown]` (applied by `gate/cooldown.rs`).
#[derive(Debug, Clone, Default)]
pub struct CooldownConfig {
    /// How old a version must be before it is served; `None` = no cooldown.
    pub min_age: Option<Duration>,
    /// Modules never held.
    pub exempt: Vec<Pattern>,
}

/// `[typosquat]` (applied by `gate/typosquat.rs`).
#[derive(Debug, Clone, Default)]
pub struct TyposquatConfig {
    pub mode: TyposquatMode,
}

/// A parsed, indexed policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub deny: Vec<DenyRule>,
    pub allow: Vec<AllowRule>,
    pub advisories: AdvisoryConfig,
    pub cooldown: CooldownConfig,
    pub typosquat: TyposquatConfig,
    deny_index: RuleIndex,
    allow_index: RuleIndex,
}

/// Rules by their pattern's literal leading elements (`github.com/boltdb-go`
/// for `github.com/boltdb-go/*`), as a trie of path elements: a path walks it
/// one element at a time and stops at the first element no rule names, so a
/// verdict costs one short hash per shared element however many rules there
/// are (an unrelated host: one). Rules whose first element is a wildcard are
/// kept apart, by the last byte that element must end with.
#[derive(Debug, Clone, Default)]
struct RuleIndex {
    root: Node,
    /// Rules with a wildcard first element, by the last byte that element
    /// must end with (`*.corp.example` → `e`), so an unrelated host skips them
    /// with one table read; `any_end` holds the ones that fix no last byte.
    wild_by_last: Vec<Vec<usize>>,
    any_end: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Rules whose literal prefix ends at this element.
    rules: Vec<usize>,
    children: FxHashMap<String, Node>,
}

impl RuleIndex {
    fn build<'a>(patterns: impl Iterator<Item = &'a Pattern>) -> RuleIndex {
        let mut ix = RuleIndex {
            wild_by_last: vec![Vec::new(); 256],
            ..Default::default()
        };
        for (i, p) in patterns.enumerate() {
            match (p.literal_prefix(), p.first_last_byte()) {
                (Some(prefix), _) => {
                    let mut node = &mut ix.root;
                    for el in prefix.split('/') {
                        node = node.children.entry(el.to_string()).or_default();
                    }
                    node.rules.push(i);
                }
                (None, Some(b)) => ix.wild_by_last[b as usize].push(i),
                (None, None) => ix.any_end.push(i),
            }
        }
        ix
    }

    /// Calls `f` with every candidate rule for `module` (a superset of the
    /// matching ones), in no particular order. A plain byte loop: this runs on
    /// every request, and iterator adapters over `match_indices` cost several
    /// times the instructions (callgrind).
    fn for_each_candidate(&self, module: &str, mut f: impl FnMut(usize)) {
        let b = module.as_bytes();
        let mut node = &self.root;
        let mut start = 0;
        while !node.children.is_empty() && start < b.len() {
            let end = b[start..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(b.len(), |p| start + p);
            match node.children.get(&module[start..end]) {
                Some(n) => {
                    n.rules.iter().for_each(|&r| f(r));
                    node = n;
                }
                None => break,
            }
            start = end + 1;
        }
        let first_end = b.iter().position(|&c| c == b'/').unwrap_or(b.len());
        if first_end > 0
            && let Some(rules) = self.wild_by_last.get(b[first_end - 1] as usize)
        {
            rules.iter().for_each(|&r| f(r));
        }
        self.any_end.iter().for_each(|&r| f(r));
    }
}

impl Policy {
    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.to_owned(),
            source: std::sync::Arc::new(e),
        })?;
        Policy::parse(&text).map_err(|(line, problem)| PolicyError::Invalid {
            path: path.to_owned(),
            line,
            problem,
        })
    }

    /// Parses policy text; an error is `(line, problem)`, line 1-based.
    pub fn parse(text: &str) -> Result<Policy, (usize, String)> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            (line, e.message().trim().to_string())
        })?;
        let at = |span: Range<usize>, problem: String| (line_of(text, span.start), problem);

        let mut deny = Vec::with_capacity(raw.deny.len());
        for r in raw.deny {
            let line = line_of(text, r.module.span().start);
            deny.push(DenyRule {
                module: pattern(&r.module).map_err(|p| at(r.module.span(), p))?,
                versions: versions(r.versions.as_ref()).map_err(|(s, p)| at(s, p))?,
                reason: nonempty_reason(&r.reason).map_err(|p| at(r.reason.span(), p))?,
                mode: r.mode,
                line,
            });
        }
        let mut allow = Vec::with_capacity(raw.allow.len());
        for r in raw.allow {
            let line = line_of(text, r.module.span().start);
            let expires_at = match &r.expires {
                None => None,
                Some(e) => Some(day_after(e.get_ref()).map_err(|p| at(e.span(), p))?),
            };
            allow.push(AllowRule {
                module: pattern(&r.module).map_err(|p| at(r.module.span(), p))?,
                versions: versions(r.versions.as_ref()).map_err(|(s, p)| at(s, p))?,
                reason: nonempty_reason(&r.reason).map_err(|p| at(r.reason.span(), p))?,
                expires: r.expires.map(Spanned::into_inner),
                expires_at,
                line,
            });
        }
        let a = raw.advisories;
        let refresh = match &a.refresh {
            None => DEFAULT_REFRESH,
            Some(s) => duration(s.get_ref()).map_err(|p| at(s.span(), p))?,
        };
        if refresh < Duration::from_secs(1) {
            return Err(at(
                a.refresh.as_ref().map_or(0..0, |s| s.span()),
                "refresh must be at least 1s".into(),
            ));
        }
        for s in a.malicious.iter().chain(&a.vulnerabilities) {
            if s.get_ref().trim().is_empty() {
                return Err(at(s.span(), "an empty advisory source".into()));
            }
        }
        let advisories = AdvisoryConfig {
            malicious: a.malicious.into_iter().map(Spanned::into_inner).collect(),
            vulnerabilities: a
                .vulnerabilities
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            refresh,
            block_vulnerable: a.block_vulnerable,
        };
        let cooldown = CooldownConfig {
            min_age: match &raw.cooldown.min_age {
                None => None,
                Some(s) => Some(duration(s.get_ref()).map_err(|p| at(s.span(), p))?),
            },
            exempt: raw
                .cooldown
                .exempt
                .iter()
                .map(|s| pattern(s).map_err(|p| at(s.span(), p)))
                .collect::<Result<_, _>>()?,
        };
        let deny_index = RuleIndex::build(deny.iter().map(|r| &r.module));
        let allow_index = RuleIndex::build(allow.iter().map(|r| &r.module));
        Ok(Policy {
            deny,
            allow,
            advisories,
            cooldown,
            typosquat: TyposquatConfig {
                // A policy file without `[typosquat]` (or without its
                // `mode`) warns: measured false positives (gate/typosquat.rs)
                // make refusing an opt-in; no policy file checks nothing.
                mode: raw.typosquat.mode.unwrap_or(TyposquatMode::Warn),
            },
            deny_index,
            allow_index,
        })
    }

    /// Whether the policy says nothing at all (the gate's fast path).
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }

    /// Deny rules covering `module@version`, in file order.
    pub fn denying<'a>(&'a self, module: &str, version: &str) -> Vec<&'a DenyRule> {
        let mut hits: Vec<usize> = Vec::new();
        if self.deny.is_empty() {
            return Vec::new();
        }
        self.deny_index.for_each_candidate(module, |i| {
            if self.deny[i].covers(module, version) {
                hits.push(i);
            }
        });
        hits.sort_unstable();
        hits.into_iter().map(|i| &self.deny[i]).collect()
    }

    /// The first allow rule (in file order) covering `module@version` that
    /// has not expired at `now` (Unix seconds).
    pub fn allowing(&self, module: &str, version: &str, now: u64) -> Option<&AllowRule> {
        if self.allow.is_empty() {
            return None;
        }
        let mut first: Option<usize> = None;
        self.allow_index.for_each_candidate(module, |i| {
            let r = &self.allow[i];
            if first.is_none_or(|f| i < f)
                && r.expires_at.is_none_or(|t| now < t)
                && r.module.matches(module)
                && r.versions.as_ref().is_none_or(|v| v.contains(version))
            {
                first = Some(i);
            }
        });
        first.map(|i| &self.allow[i])
    }
}

impl DenyRule {
    pub fn covers(&self, module: &str, version: &str) -> bool {
        self.module.matches(module) && self.versions.as_ref().is_none_or(|v| v.contains(version))
    }
}

/// Versions a rule applies to: any of its entries, each an exact version or a
/// conjunction of comparisons (`>=v2.0.0, <v2.3.5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSet {
    entries: Vec<Vec<(Op, String)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl VersionSet {
    /// Parses the entries of a `versions` list; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<VersionSet, (usize, String)> {
        let mut entries = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let s = s.as_ref();
            let mut conj = Vec::new();
            for part in s.split(',') {
                let part = part.trim();
                let (op, v) = if let Some(v) = part.strip_prefix(">=") {
                    (Op::Ge, v)
                } else if let Some(v) = part.strip_prefix("<=") {
                    (Op::Le, v)
                } else if let Some(v) = part.strip_prefix('>') {
                    (Op::Gt, v)
                } else if let Some(v) = part.strip_prefix('<') {
                    (Op::Lt, v)
                } else if let Some(v) = part.strip_prefix('=') {
                    (Op::Eq, v)
                } else {
                    (Op::Eq, part)
                };
                let v = v.trim();
                if !semver::is_valid(v) {
                    return Err((
                        i,
                        format!(
                            "versions: {s:?}: {v:?} is not a semantic version (like v1.2.3; \
                             ranges are <, <=, >, >= joined by commas)"
                        ),
                    ));
                }
                // An exact version must be a full one: `v1` would match nothing.
                let base = v.strip_suffix("+incompatible").unwrap_or(v);
                if op == Op::Eq && semver::canonical(base) != base {
                    return Err((
                        i,
                        format!("versions: {v:?} is not a full module version (like v1.2.3)"),
                    ));
                }
                conj.push((op, v.to_string()));
            }
            entries.push(conj);
        }
        if entries.is_empty() {
            return Err((
                0,
                "versions is empty (leave it out to cover every version)".into(),
            ));
        }
        Ok(VersionSet { entries })
    }

    /// Whether `version` is in the set (semver order; an invalid version is in no range).
    pub fn contains(&self, version: &str) -> bool {
        use std::cmp::Ordering::*;
        self.entries.iter().any(|conj| {
            conj.iter().all(|(op, v)| {
                if *op == Op::Eq {
                    // Exact: `v1.3.1` is not `v1.3.1+incompatible` (they are
                    // different module versions, though semver ranks them equal).
                    return version == v;
                }
                if !semver::is_valid(version) {
                    return false;
                }
                let c = semver::compare(version, v);
                match op {
                    Op::Lt => c == Less,
                    Op::Le => c != Greater,
                    Op::Gt => c == Greater,
                    Op::Ge => c != Less,
                    Op::Eq => unreachable!("handled above"),
                }
            })
        })
    }
}

fn pattern(s: &Spanned<String>) -> Result<Pattern, String> {
    Pattern::new(s.get_ref()).map_err(|e| e.to_string())
}

fn versions(
    v: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Option<VersionSet>, (Range<usize>, String)> {
    let Some(list) = v else {
        return Ok(None);
    };
    let items = list.get_ref();
    let texts: Vec<&str> = items.iter().map(|s| s.get_ref().as_str()).collect();
    VersionSet::parse(&texts).map(Some).map_err(|(i, p)| {
        let span = items.get(i).map_or(list.span(), |s| s.span());
        (span, p)
    })
}

fn nonempty_reason(r: &Spanned<String>) -> Result<String, String> {
    let t = r.get_ref().trim();
    if t.is_empty() {
        return Err("reason is empty: say why (it is shown to the user refused)".into());
    }
    Ok(t.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like \"72h\": {e}"))
}

/// `YYYY-MM-DD` → the Unix time of the start of the next day (UTC).
fn day_after(s: &str) -> Result<u64, String> {
    let bad = || format!("expires {s:?} is not a date like \"2027-03-31\"");
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: Range<usize>| s[r].parse::<u32>().map_err(|_| bad());
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || d == 0
        || d > days_in[m as usize - 1]
    {
        return Err(bad());
    }
    Ok((days_from_civil(y as i64, m, d) + 1) as u64 * 86400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The 1-based line of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

// The file as written; checked and indexed into `Policy` above.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    deny: Vec<RawDeny>,
    #[serde(default)]
    allow: Vec<RawAllow>,
    #[serde(default)]
    advisories: RawAdvisories,
    #[serde(default)]
    cooldown: RawCooldown,
    #[serde(default)]
    typosquat: RawTyposquat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeny {
    module: Spanned<String>,
    versions: Option<Spanned<Vec<Spanned<String>>>>,
    reason: Spanned<String>,
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    module: Spanned<String>,
    versions: Option<Spanned<Vec<Spanned<String>>>>,
    reason: Spanned<String>,
    expires: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdvisories {
    #[serde(default)]
    malicious: Vec<Spanned<String>>,
    #[serde(default)]
    vulnerabilities: Vec<Spanned<String>>,
    refresh: Option<Spanned<String>>,
    #[serde(default)]
    block_vulnerable: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCooldown {
    min_age: Option<Spanned<String>>,
    #[serde(default)]
    exempt: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTyposquat {
    mode: Option<TyposquatMode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[[deny]]
module = "github.com/boltdb-go/*"   # a path, or a pattern
versions = ["v1.3.1", "<v1.4.0", ">=v2.0.0, <v2.3.5"]
reason = "typosquat of github.com/boltdb/bolt"
mode = "enforce"

[[allow]]
module = "example.com/legacy"
versions = ["v1.2.3"]
reason = "accepted risk, SEC-123"
expires = "2027-03-31"

[advisories]
malicious = ["/srv/malicious-packages"]
vulnerabilities = ["https://vuln.go.dev"]
refresh = "1h"

[cooldown]
min_age = "72h"
exempt = ["example.com/internal/*"]

[typosquat]
mode = "enforce"
"#;

    #[test]
    fn the_issues_example_parses() {
        let p = Policy::parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(p.deny.len(), 1);
        assert_eq!(p.deny[0].line, 3);
        assert_eq!(p.deny[0].mode, Mode::Enforce);
        assert_eq!(p.allow[0].expires.as_deref(), Some("2027-03-31"));
        // 2027-04-01T00:00:00Z
        assert_eq!(p.allow[0].expires_at, Some(1806537600));
        assert_eq!(p.advisories.malicious, ["/srv/malicious-packages"]);
        assert_eq!(p.advisories.refresh, Duration::from_secs(3600));
        assert_eq!(p.cooldown.min_age, Some(Duration::from_secs(72 * 3600)));
        assert!(p.cooldown.exempt[0].matches("example.com/internal/x/y"));
        assert_eq!(p.typosquat.mode, TyposquatMode::Enforce);

        let m = "github.com/boltdb-go/bolt";
        for (v, denied) in [
            ("v1.3.1", true),
            ("v1.3.9", true),
            ("v1.4.0", false),
            ("v1.9.0", false),
            ("v2.0.0", true),
            ("v2.3.4", true),
            ("v2.3.5", false),
        ] {
            assert_eq!(!p.denying(m, v).is_empty(), denied, "{v}");
        }
        assert!(p.denying("github.com/boltdb/bolt", "v1.3.1").is_empty());
        assert!(p.allowing("example.com/legacy", "v1.2.3", 0).is_some());
        assert!(p.allowing("example.com/legacy", "v1.2.4", 0).is_none());
        // Valid through the last second of 2027-03-31, not after.
        assert!(
            p.allowing("example.com/legacy", "v1.2.3", 1806537599)
                .is_some()
        );
        assert!(
            p.allowing("example.com/legacy", "v1.2.3", 1806537600)
                .is_none()
        );
    }

    #[test]
    fn the_example_file_parses() {
        let p = Policy::parse(include_str!("../../config/policy.example.toml")).unwrap();
        assert_eq!((p.deny.len(), p.allow.len()), (3, 1));
        assert!(!p.denying("github.com/boltdb-go/bolt", "v1.3.1").is_empty());
        assert!(p.denying("example.com/logging", "v1.4.0").is_empty());
        assert_eq!(p.deny[2].mode, Mode::Warn);
        assert!(!p.denying("a.internal.example.net/x", "v0.1.0").is_empty());
    }

    fn err(text: &str) -> (usize, String) {
        Policy::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        let (line, p) = err("[[deny]]\nmodule = \"a.com/x\"\nreason = \"r\"\nmood = \"warn\"\n");
        assert_eq!(line, 4, "{p}");
        assert!(p.contains("mood"), "{p}");

        let (line, p) = err("[[deny]]\nmodule = \"a.com/[x\"\nreason = \"r\"\n");
        assert_eq!(line, 2);
        assert!(p.contains("unclosed"), "{p}");

        let (line, p) = err(
            "[[deny]]\nmodule = \"a.com/x\"\nversions = [\n  \"v1.0.0\",\n  \"<1.2\",\n]\nreason = \"r\"\n",
        );
        assert_eq!(line, 5, "{p}");
        assert!(p.contains("\"1.2\""), "{p}");

        let (line, p) =
            err("[[allow]]\nmodule = \"a.com/x\"\nreason = \"r\"\nexpires = \"2027-02-30\"\n");
        assert_eq!(line, 4);
        assert!(p.contains("2027-02-30"), "{p}");

        let (line, p) = err("[advisories]\nrefresh = \"soon\"\n");
        assert_eq!(line, 2);
        assert!(p.contains("soon"), "{p}");

        let (line, p) = err("\n\n[[deny]]\nmodule = \"a.com/x\"\nreason = \"\"\n");
        assert_eq!(line, 5);
        assert!(p.contains("reason"), "{p}");

        let (line, p) = err("[[deny]]\nreason = \"r\"\n");
        assert!(p.contains("module"), "{line} {p}");

        let (line, p) = err("[[deny]]\nmodule = \"a.com/x\"\nreason = \"r\"\nmode = \"maybe\"\n");
        assert_eq!(line, 4, "{p}");

        let (line, _) = err("x = [\n");
        assert!(line >= 1);
        assert!(err("[typosquat]\nmode = \"loud\"\n").1.contains("loud"));
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("policy.toml");
        std::fs::write(
            &f,
            "[[deny]]\nmodule = \"a.com/x\"\nreason = \"r\"\nextra = 1\n",
        )
        .unwrap();
        let e = Policy::load(&f).unwrap_err().to_string();
        assert!(
            e.contains("policy.toml") && e.contains("line 4") && e.contains("extra"),
            "{e}"
        );
        let e = Policy::load(&dir.path().join("nope.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn rules_are_indexed_and_keep_file_order() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!(
                "[[deny]]\nmodule = \"example{i}.com/m\"\nreason = \"r{i}\"\n"
            ));
        }
        text.push_str("[[deny]]\nmodule = \"*.org/evil\"\nreason = \"wild\"\n");
        text.push_str("[[deny]]\nmodule = \"example7.com\"\nreason = \"whole host\"\n");
        let p = Policy::parse(&text).unwrap();
        let hits: Vec<_> = p
            .denying("example7.com/m/sub", "v1.0.0")
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(hits, ["r7", "whole host"]);
        assert_eq!(p.denying("x.org/evil", "v0.0.1")[0].reason, "wild");
        assert!(p.denying("x.org/good", "v0.0.1").is_empty());
    }

    #[test]
    fn version_sets() {
        let s = VersionSet::parse(&["v1.3.1", "<=v0.2.0", ">v3.0.0-rc.1, <v3.0.0"]).unwrap();
        for (v, want) in [
            ("v1.3.1", true),
            ("v1.3.1+incompatible", false),
            ("v0.2.0", true),
            ("v0.0.0-20200101000000-abcdefabcdef", true),
            ("v3.0.0-rc.2", true),
            ("v3.0.0", false),
            ("v1.3.2", false),
            ("garbage", false),
        ] {
            assert_eq!(s.contains(v), want, "{v}");
        }
        assert!(VersionSet::parse::<&str>(&[]).is_err());
        assert!(VersionSet::parse(&["v1"]).is_err());
        assert!(VersionSet::parse(&["v1.0.0+meta"]).is_err());
        assert!(
            VersionSet::parse(&["v2.0.1+incompatible"])
                .unwrap()
                .contains("v2.0.1+incompatible")
        );
        assert!(VersionSet::parse(&["<v2"]).unwrap().contains("v1.9.9"));
        assert!(
            VersionSet::parse(&[">= v1.0.0 ,< v2.0.0"])
                .unwrap()
                .contains("v1.5.0")
        );
    }
}
