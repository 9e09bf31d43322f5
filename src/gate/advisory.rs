//! Advisories: OSV entries from the Go vulnerability database (vuln.go.dev's layout)
//! and from directory trees such as github.com/ossf/malicious-packages, read into a
//! per-module index; each source keeps its last good set when a refresh fails.
//!
//! Layouts read:
//! ```text
//! <vulndb URL or dir>/index/db.json        {"modified": "2026-08-21T00:00:00Z"}
//!                    /index/modules.json   [{"path": "aahframe.work", "vulns": [{"id": "GO-2020-0033", "modified": ...}]}]
//!                    /ID/GO-2020-0033.json an OSV entry
//! <ossf checkout>/osv/malicious/go/<module>/MAL-2026-17454.json   (any *.json below the dir;
//!                 anything under a `withdrawn/` directory is skipped)
//! ```
//! An entry with a `withdrawn` field does not apply. Go vulndb versions carry
//! no `v` (`"fixed": "0.12.4"`); ossf entries may; both are read as Go semver.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::Deserialize;

use crate::module::semver;

/// Largest advisory file read (an OSV entry, or a vulndb index). A larger one
/// fails the source's refresh (its last good set stays).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
/// OSV entries fetched at once from a vulndb URL.
const FETCH_CONCURRENCY: usize = 16;

/// How a source's entries are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Every covered version is blocked.
    Malicious,
    /// Reported; blocked only with `block_vulnerable = true`.
    Vulnerability,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Malicious => "malicious",
            Class::Vulnerability => "vulnerabilities",
        }
    }
}

/// One entry's claims: (module path, claim) per Go package it names.
pub type Claims = Vec<(String, Arc<Affected>)>;
/// Entries fetched from a vulndb URL: id → (`modified`, claims).
type Fetched = HashMap<String, (String, Claims)>;

/// One entry's claim about one module.
#[derive(Debug, Clone)]
pub struct Affected {
    pub id: Arc<str>,
    pub summary: Arc<str>,
    pub class: Class,
    /// SEMVER ranges, each events sorted by version; empty with empty
    /// `versions` means every version.
    ranges: Vec<Vec<Event>>,
    versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) => v,
        }
    }
}

impl Affected {
    /// Whether `version` is affected (OSV's range evaluation, in Go semver order).
    pub fn covers(&self, version: &str) -> bool {
        if self.ranges.is_empty() && self.versions.is_empty() {
            return true;
        }
        if self.versions.iter().any(|v| v == version) {
            return true;
        }
        if !semver::is_valid(version) {
            return false;
        }
        self.ranges.iter().any(|events| {
            use std::cmp::Ordering::*;
            let mut affected = false;
            for e in events {
                let c = semver::compare(e.version(), version);
                match e {
                    // "0" (stored as "") is before every version.
                    Event::Introduced(v) if v.is_empty() || c != Greater => affected = true,
                    Event::Fixed(_) if c != Greater => affected = false,
                    Event::LastAffected(_) if c == Less => affected = false,
                    _ => {}
                }
            }
            affected
        })
    }
}

/// Every advisory in force, by module path.
#[derive(Debug, Default, Clone)]
pub struct AdvisorySet {
    // FxHash: keys come from the advisory sources, lookups from requests, and
    // SipHash's flood resistance buys nothing for a map nobody else inserts into.
    by_module: rustc_hash::FxHashMap<String, Vec<Arc<Affected>>>,
    entries: usize,
}

impl AdvisorySet {
    pub fn is_empty(&self) -> bool {
        self.by_module.is_empty()
    }

    /// Entries (OSV files) added.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Advisories covering `module@version`. No allocation when none name the module.
    pub fn affecting<'a>(
        &'a self,
        module: &str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Affected> + 'a {
        self.by_module
            .get(module)
            .into_iter()
            .flatten()
            .map(|a| a.as_ref())
            .filter(move |a| a.covers(version))
    }

    /// Every advisory naming `module`, whatever the version.
    pub fn for_module(&self, module: &str) -> &[Arc<Affected>] {
        self.by_module.get(module).map_or(&[], |v| v.as_slice())
    }

    /// Parses one OSV entry and adds it; `Ok(false)` when it does not apply
    /// (withdrawn, or no Go package).
    pub fn add_json(&mut self, data: &[u8], class: Class) -> Result<bool, String> {
        let claims = parse_osv(data, class)?;
        let applied = !claims.is_empty();
        self.add_claims(claims);
        Ok(applied)
    }

    fn add_claims(&mut self, claims: Claims) {
        if claims.is_empty() {
            return;
        }
        self.entries += 1;
        for (module, a) in claims {
            self.by_module.entry(module).or_default().push(a);
        }
    }

    /// Adds every claim of `other` (another source's set).
    pub fn extend(&mut self, other: &AdvisorySet) {
        self.entries += other.entries;
        for (m, list) in &other.by_module {
            self.by_module
                .entry(m.clone())
                .or_default()
                .extend(list.iter().cloned());
        }
    }
}

/// Parses one OSV entry into (module, claim) pairs for its Go packages.
/// Empty for a withdrawn entry. Unknown range types (GIT, ECOSYSTEM) are
/// skipped; an entry whose only ranges were skipped claims nothing.
pub fn parse_osv(data: &[u8], class: Class) -> Result<Claims, String> {
    let e: OsvEntry = serde_json::from_slice(data).map_err(|e| format!("not an OSV entry: {e}"))?;
    if e.id.is_empty() {
        return Err("OSV entry without an id".into());
    }
    if e.withdrawn.is_some() {
        return Ok(Vec::new());
    }
    let id: Arc<str> = e.id.as_str().into();
    let summary: Arc<str> = if !e.summary.trim().is_empty() {
        e.summary.trim().into()
    } else {
        let first = e.details.lines().next().unwrap_or("").trim();
        let first: String = first.chars().take(200).collect();
        if first.is_empty() {
            format!("{} advisory", class.as_str()).into()
        } else {
            first.into()
        }
    };
    let mut out = Vec::new();
    for a in e.affected {
        let Some(pkg) = a.package else { continue };
        if !pkg.ecosystem.eq_ignore_ascii_case("go") || pkg.name.is_empty() {
            continue;
        }
        let mut ranges = Vec::new();
        let mut skipped = false;
        for r in a.ranges {
            if r.kind != "SEMVER" {
                skipped = true;
                continue;
            }
            let mut events = Vec::with_capacity(r.events.len());
            for ev in r.events {
                let (mk, raw): (fn(String) -> Event, &str) =
                    match (&ev.introduced, &ev.fixed, &ev.last_affected) {
                        (Some(v), None, None) => (Event::Introduced, v),
                        (None, Some(v), None) => (Event::Fixed, v),
                        (None, None, Some(v)) => (Event::LastAffected, v),
                        // `limit` events (and empty ones) do not change what is affected.
                        (None, None, None) => continue,
                        _ => return Err(format!("{}: an event with two kinds", e.id)),
                    };
                let v = go_version(raw)
                    .ok_or_else(|| format!("{}: {raw:?} is not a semantic version", e.id))?;
                events.push(mk(v));
            }
            events.sort_by(|a, b| {
                let (va, vb) = (a.version(), b.version());
                match (va.is_empty(), vb.is_empty()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Less,
                    (false, true) => std::cmp::Ordering::Greater,
                    _ => semver::compare(va, vb),
                }
                // At one version, introduced before fixed: fixed wins.
                .then_with(|| {
                    matches!(b, Event::Introduced(_)).cmp(&matches!(a, Event::Introduced(_)))
                })
            });
            ranges.push(events);
        }
        let versions: Vec<String> = a
            .versions
            .iter()
            .filter_map(|v| go_version(v).filter(|v| !v.is_empty()))
            .collect();
        if ranges.is_empty() && versions.is_empty() && skipped {
            // Only ranges we cannot read: claiming every version would be a guess.
            continue;
        }
        out.push((
            pkg.name,
            Arc::new(Affected {
                id: id.clone(),
                summary: summary.clone(),
                class,
                ranges,
                versions,
            }),
        ));
    }
    Ok(out)
}

/// An OSV version as a Go version: `"0"` → `""` (before everything);
/// `"1.2.3"` → `"v1.2.3"`.
fn go_version(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw == "0" {
        return Some(String::new());
    }
    let v = if raw.starts_with('v') {
        raw.to_string()
    } else {
        format!("v{raw}")
    };
    semver::is_valid(&v).then_some(v)
}

#[derive(Deserialize)]
struct OsvEntry {
    #[serde(default)]
    id: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    withdrawn: Option<serde_json::Value>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct OsvPackage {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    events: Vec<OsvEvent>,
}

#[derive(Deserialize)]
struct OsvEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
}

/// `index/modules.json` of the vulndb layout.
#[derive(Deserialize)]
struct ModuleIndex {
    #[serde(default)]
    vulns: Vec<VulnRef>,
}

#[derive(Deserialize)]
struct VulnRef {
    id: String,
    #[serde(default)]
    modified: String,
}

#[derive(Deserialize)]
struct DbIndex {
    #[serde(default)]
    modified: String,
}

/// What one source held at its last good read.
#[derive(Debug, Clone)]
pub struct SourceData {
    pub set: AdvisorySet,
    /// When the database says it was last modified (Unix seconds), if it says.
    pub modified: Option<u64>,
    /// When it was read.
    pub read_at: u64,
    /// A hash of what was read (entries and their contents or `modified`):
    /// equal fingerprints mean nothing changed, so nothing needs re-checking.
    pub fingerprint: u64,
}

/// One configured source and its last good read.
#[derive(Debug)]
pub struct Source {
    pub location: String,
    pub class: Class,
    pub last_good: Option<Arc<SourceData>>,
    /// Entries fetched from a vulndb URL by id, with their `modified`, so a
    /// refresh fetches only what changed.
    fetched: Fetched,
}

/// The outcome of refreshing one source.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub location: String,
    pub class: Class,
    /// Entries read, or why the read failed (the last good set stays).
    pub result: Result<usize, String>,
    /// Whether what the source holds differs from its previous good read.
    pub changed: bool,
}

/// Reads advisory sources and keeps each one's last good set.
pub struct Advisories {
    sources: Vec<Source>,
    client: reqwest::Client,
    max_file_bytes: u64,
    timeout: Duration,
}

impl Advisories {
    /// Sources of `[advisories]`. `timeout` bounds each HTTP request.
    pub fn new(cfg: &super::policy::AdvisoryConfig, timeout: Duration) -> Advisories {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("modgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        let mut a = Advisories {
            sources: Vec::new(),
            client,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            timeout,
        };
        a.configure(cfg);
        a
    }

    /// Takes a new source list, keeping the last good data of sources that stay.
    pub fn configure(&mut self, cfg: &super::policy::AdvisoryConfig) {
        let want: Vec<(String, Class)> = cfg
            .malicious
            .iter()
            .map(|l| (l.clone(), Class::Malicious))
            .chain(
                cfg.vulnerabilities
                    .iter()
                    .map(|l| (l.clone(), Class::Vulnerability)),
            )
            .collect();
        let mut old = std::mem::take(&mut self.sources);
        for (location, class) in want {
            match old
                .iter()
                .position(|s| s.location == location && s.class == class)
            {
                Some(i) => self.sources.push(old.swap_remove(i)),
                None => self.sources.push(Source {
                    location,
                    class,
                    last_good: None,
                    fetched: HashMap::new(),
                }),
            }
        }
    }

    /// Whether the configured sources equal `cfg`'s.
    pub fn same_sources(&self, cfg: &super::policy::AdvisoryConfig) -> bool {
        let mal = self.sources.iter().filter(|s| s.class == Class::Malicious);
        let vul = self
            .sources
            .iter()
            .filter(|s| s.class == Class::Vulnerability);
        mal.map(|s| &s.location).eq(cfg.malicious.iter())
            && vul.map(|s| &s.location).eq(cfg.vulnerabilities.iter())
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Reads every source again. A source that fails keeps its last good data.
    pub async fn refresh(&mut self) -> Vec<SourceReport> {
        let mut reports = Vec::with_capacity(self.sources.len());
        for i in 0..self.sources.len() {
            let (location, class) = (self.sources[i].location.clone(), self.sources[i].class);
            let result = if is_url(&location) {
                let mut fetched = std::mem::take(&mut self.sources[i].fetched);
                let r = self.read_url(&location, class, &mut fetched).await;
                self.sources[i].fetched = fetched;
                r
            } else {
                let (dir, max) = (PathBuf::from(&location), self.max_file_bytes);
                tokio::task::spawn_blocking(move || read_dir_source(&dir, class, max))
                    .await
                    .unwrap_or_else(|e| Err(format!("reading task failed: {e}")))
            };
            let mut changed = false;
            let result = result.map(|data| {
                let n = data.set.len();
                let src = &mut self.sources[i];
                changed = src
                    .last_good
                    .as_ref()
                    .is_none_or(|old| old.fingerprint != data.fingerprint);
                src.last_good = Some(Arc::new(data));
                n
            });
            reports.push(SourceReport {
                location,
                class,
                result,
                changed,
            });
        }
        reports
    }

    /// Every source's last good set, merged.
    pub fn merged(&self) -> AdvisorySet {
        let mut all = AdvisorySet::default();
        for s in &self.sources {
            if let Some(d) = &s.last_good {
                all.extend(&d.set);
            }
        }
        all
    }

    async fn get(&self, url: &str) -> Result<bytes::Bytes, String> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        if resp.content_length().unwrap_or(0) > self.max_file_bytes {
            return Err(format!(
                "GET {url}: larger than {} bytes",
                self.max_file_bytes
            ));
        }
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| format!("GET {url}: timed out"))?
            .map_err(|e| format!("GET {url}: {e}"))?;
        if body.len() as u64 > self.max_file_bytes {
            return Err(format!(
                "GET {url}: larger than {} bytes",
                self.max_file_bytes
            ));
        }
        Ok(body)
    }

    /// A vulndb published at a URL: the module index, then every entry not
    /// already fetched at the same `modified`.
    async fn read_url(
        &self,
        base: &str,
        class: Class,
        fetched: &mut Fetched,
    ) -> Result<SourceData, String> {
        let base = base.trim_end_matches('/');
        let db: DbIndex =
            serde_json::from_slice(&self.get(&format!("{base}/index/db.json")).await?)
                .map_err(|e| format!("{base}/index/db.json: {e}"))?;
        let modules: Vec<ModuleIndex> =
            serde_json::from_slice(&self.get(&format!("{base}/index/modules.json")).await?)
                .map_err(|e| format!("{base}/index/modules.json: {e}"))?;
        let mut want: HashMap<String, String> = HashMap::new();
        for m in modules {
            for v in m.vulns {
                let e = want.entry(v.id).or_default();
                if v.modified > *e {
                    *e = v.modified;
                }
            }
        }
        fetched.retain(|id, (modified, _)| want.get(id) == Some(modified));
        let todo: Vec<(String, String)> = want
            .iter()
            .filter(|(id, _)| !fetched.contains_key(*id))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        let mut results = futures_util::stream::iter(todo.into_iter().map(|(id, modified)| {
            let url = format!("{base}/ID/{id}.json");
            async move {
                let data = self.get(&url).await?;
                let claims = parse_osv(&data, class).map_err(|e| format!("{url}: {e}"))?;
                Ok::<_, String>((id, modified, claims))
            }
        }))
        .buffer_unordered(FETCH_CONCURRENCY);
        while let Some(r) = results.next().await {
            let (id, modified, claims) = r?;
            fetched.insert(id, (modified, claims));
        }
        let mut set = AdvisorySet::default();
        let mut ids: Vec<&String> = fetched.keys().collect();
        ids.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for id in ids {
            (id, &fetched[id].0).hash(&mut h);
            set.add_claims(fetched[id].1.clone());
        }
        Ok(SourceData {
            set,
            modified: parse_rfc3339(&db.modified),
            read_at: crate::store::now_secs(),
            fingerprint: h.finish(),
        })
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A local source: a vulndb layout (it has `index/db.json`) or a tree of OSV files.
pub fn read_dir_source(dir: &Path, class: Class, max: u64) -> Result<SourceData, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let db_index = dir.join("index").join("db.json");
    let (root, modified) = if db_index.exists() {
        let db: DbIndex = serde_json::from_slice(&read_limited(&db_index, max)?)
            .map_err(|e| format!("{}: {e}", db_index.display()))?;
        (dir.join("ID"), parse_rfc3339(&db.modified))
    } else {
        (dir.to_path_buf(), None)
    };
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    files.sort();
    let mut set = AdvisorySet::default();
    let mut newest: Option<u64> = None;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        let data = read_limited(&f, max)?;
        (&f, &data).hash(&mut h);
        let claims = parse_osv(&data, class).map_err(|e| format!("{}: {e}", f.display()))?;
        if modified.is_none()
            && !claims.is_empty()
            && let Some(t) = osv_modified(&data)
        {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
        set.add_claims(claims);
    }
    Ok(SourceData {
        set,
        modified: modified.or(newest),
        read_at: crate::store::now_secs(),
        fingerprint: h.finish(),
    })
}

fn osv_modified(data: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct M {
        modified: Option<String>,
    }
    serde_json::from_slice::<M>(data)
        .ok()?
        .modified
        .as_deref()
        .and_then(parse_rfc3339)
}

/// Every `*.json` below `dir`, skipping `withdrawn/` directories and dot-directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for ent in rd {
        let ent = ent.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        let ft = ent
            .file_type()
            .map_err(|e| format!("{}: {e}", ent.path().display()))?;
        if ft.is_dir() {
            if name == "withdrawn" || name.starts_with('.') {
                continue;
            }
            walk(&ent.path(), out)?;
        } else if ft.is_file() && name.ends_with(".json") {
            out.push(ent.path());
        }
    }
    Ok(())
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > max {
        return Err(format!("{}: larger than {max} bytes", path.display()));
    }
    Ok(buf)
}

/// `2026-08-21T00:00:00Z` (or with fractional seconds / an offset) → Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z').split('+').next()?)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// Seconds since `t` (Unix seconds), 0 if in the future.
pub fn age_secs(t: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now.saturating_sub(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Vec<(String, Arc<Affected>)> {
        parse_osv(json.as_bytes(), Class::Vulnerability).unwrap()
    }

    #[test]
    fn semver_events_without_v() {
        let c = claims(
            r#"{"id":"GO-X","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.12.4"},
            {"introduced":"1.0.0"},{"last_affected":"1.2.0"}]}]}]}"#,
        );
        let a = &c[0].1;
        for (v, want) in [
            ("v0.0.1", true),
            ("v0.12.3", true),
            ("v0.12.4", false),
            ("v0.13.0", false),
            ("v1.0.0", true),
            ("v1.2.0", true),
            ("v1.2.1", false),
            ("v0.0.0-20200101000000-abcdefabcdef", true),
        ] {
            assert_eq!(a.covers(v), want, "{v}");
        }
        assert_eq!(a.summary.as_ref(), "vulnerabilities advisory");
    }

    #[test]
    fn explicit_versions_and_withdrawn() {
        let c = claims(
            r#"{"id":"MAL-1","summary":"bad","affected":[{"package":{"ecosystem":"Go","name":"e.com/m"},
            "versions":["v1.0.0","1.0.1"]}]}"#,
        );
        assert!(c[0].1.covers("v1.0.0") && c[0].1.covers("v1.0.1"));
        assert!(!c[0].1.covers("v1.0.2"));
        assert!(claims(
            r#"{"id":"MAL-2","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"e.com/m"}}]}"#
        )
        .is_empty());
        // Other ecosystems and unreadable-only ranges claim nothing.
        assert!(
            claims(r#"{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"left-pad"}}]}"#)
                .is_empty()
        );
        assert!(
            claims(
                r#"{"id":"X","affected":[{"package":{"ecosystem":"Go","name":"e.com/m"},
            "ranges":[{"type":"GIT","events":[{"introduced":"abc"}]}]}]}"#
            )
            .is_empty()
        );
        // No ranges or versions: every version.
        let all =
            claims(r#"{"id":"X","affected":[{"package":{"ecosystem":"Go","name":"e.com/m"}}]}"#);
        assert!(all[0].1.covers("v9.9.9"));
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "",
            "[]",
            r#"{"affected":[]}"#,
            r#"{"id":"X","affected":[{"package":{"ecosystem":"Go","name":"e.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"one"}]}]}]}"#,
        ] {
            assert!(
                parse_osv(bad.as_bytes(), Class::Malicious).is_err(),
                "{bad:?}"
            );
        }
    }

    fn fixture(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/gate")
            .join(p)
    }

    #[test]
    fn real_vulndb_subset() {
        let d = read_dir_source(
            &fixture("vulndb"),
            Class::Vulnerability,
            DEFAULT_MAX_FILE_BYTES,
        )
        .unwrap();
        // Nine files, one withdrawn (GO-2024-2730, gorilla/sessions).
        assert_eq!(d.set.len(), 8);
        assert_eq!(d.modified, Some(1787270400));
        assert!(d.set.for_module("github.com/gorilla/sessions").is_empty());
        let ids = |m: &str, v: &str| -> Vec<String> {
            let mut ids: Vec<String> = d.set.affecting(m, v).map(|a| a.id.to_string()).collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids("golang.org/x/text", "v0.3.2"),
            [
                "GO-2020-0015",
                "GO-2021-0113",
                "GO-2022-1059",
                "GO-2026-5970"
            ]
        );
        assert_eq!(
            ids("golang.org/x/text", "v0.3.7"),
            ["GO-2022-1059", "GO-2026-5970"]
        );
        assert!(ids("golang.org/x/text", "v0.39.0").is_empty());
        assert_eq!(ids("github.com/boltdb-go/bolt", "v1.3.1"), ["GO-2025-3451"]);
        assert!(ids("github.com/boltdb/bolt", "v1.3.1").is_empty());
        assert!(ids("github.com/gin-gonic/gin", "v1.5.0").contains(&"GO-2020-0001".to_string()));
        assert!(!ids("github.com/gin-gonic/gin", "v1.6.0").contains(&"GO-2020-0001".to_string()));
        // The same read again has the same fingerprint.
        let again = read_dir_source(
            &fixture("vulndb"),
            Class::Vulnerability,
            DEFAULT_MAX_FILE_BYTES,
        )
        .unwrap();
        assert_eq!(again.fingerprint, d.fingerprint);
    }

    #[test]
    fn real_ossf_sample_and_withdrawn_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let copy = |from: &Path, to: &Path| {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, to).unwrap();
        };
        let sample =
            fixture("malicious-sample/osv/malicious/go/gogets.dev/btreex/MAL-2026-17454.json");
        copy(
            &sample,
            &dir.path()
                .join("osv/malicious/go/gogets.dev/btreex/MAL-2026-17454.json"),
        );
        copy(
            &sample,
            &dir.path()
                .join("osv/withdrawn/go/gogets.dev/btreex/MAL-2026-17454.json"),
        );
        let d = read_dir_source(dir.path(), Class::Malicious, DEFAULT_MAX_FILE_BYTES).unwrap();
        assert_eq!(d.set.len(), 1);
        let a: Vec<_> = d.set.affecting("gogets.dev/btreex", "v0.1.0").collect();
        assert_eq!(a[0].id.as_ref(), "MAL-2026-17454");
        assert_eq!(a[0].class, Class::Malicious);
        assert_eq!(
            a[0].summary.as_ref(),
            "Malicious code in gogets.dev/btreex (Go)"
        );
        // A broken file fails the whole read (the caller keeps the last good set).
        std::fs::write(dir.path().join("osv/malicious/go/bad.json"), "{").unwrap();
        let e = read_dir_source(dir.path(), Class::Malicious, DEFAULT_MAX_FILE_BYTES).unwrap_err();
        assert!(e.contains("bad.json"), "{e}");
        assert!(read_dir_source(&dir.path().join("nope"), Class::Malicious, 1).is_err());
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_last_good_set() {
        let dir = tempfile::tempdir().unwrap();
        let sample =
            fixture("malicious-sample/osv/malicious/go/gogets.dev/btreex/MAL-2026-17454.json");
        std::fs::copy(&sample, dir.path().join("MAL-2026-17454.json")).unwrap();
        let cfg = crate::gate::policy::AdvisoryConfig {
            malicious: vec![dir.path().display().to_string()],
            ..Default::default()
        };
        let mut a = Advisories::new(&cfg, Duration::from_secs(5));
        let r = a.refresh().await;
        assert_eq!(r[0].result, Ok(1));
        assert!(r[0].changed);
        let r = a.refresh().await;
        assert!(!r[0].changed);
        std::fs::write(dir.path().join("broken.json"), "not json").unwrap();
        let r = a.refresh().await;
        assert!(r[0].result.is_err());
        assert_eq!(a.merged().len(), 1);
        assert!(a.same_sources(&cfg));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("2026-08-21T00:00:00Z"), Some(1787270400));
        assert_eq!(parse_rfc3339("2026-08-21T00:00:00.5Z"), Some(1787270400));
        assert_eq!(parse_rfc3339("nope"), None);
    }
}
