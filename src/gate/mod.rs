//! The supply-chain gate: the one decision whether a verified module version may be served.
//!
//! Verification answers "is this the same content everyone else gets?"; the
//! gate answers "should anyone get it?". A verdict is a pure function of
//! (module, version, what we know) — see [`verdict`] — where what we know is a
//! [`Snapshot`]: the policy file ([`policy`]) and the advisories
//! ([`advisory`]), plus findings of further checks (the release cooldown and
//! typosquat detection, wired in [`signals`]) handed in as [`Finding`]s by
//! [`Check`] objects. What the pipeline knows of the version beyond its name
//! — its checksum-database record id, for the cooldown — comes as [`Facts`]:
//! a cached artifact is judged with its entry's record, and a miss is
//! screened before upstream is asked and judged again, in full, once its
//! lookup is proven and before a byte is served (`pipeline/gated.rs`).
//!
//! ```text
//!   findings: deny rules ─┐
//!   malicious advisories ─┼─► any enforcing finding? ──► Refuse(all findings)
//!   vulnerabilities ──────┤   only warning ones?     ──► Warn(findings)
//!   cooldown, typosquat ──┘   none                   ──► Allow
//!   an unexpired [[allow]] rule covering the version ──► Excepted (served; findings kept for reports)
//! ```
//!
//! The [`Gate`] holds the current snapshot behind an `ArcSwap`: a verdict reads
//! it without a lock or a reference-count write, and a reload swaps it whole,
//! bumping [`Snapshot::generation`] (so callers may cache verdicts per
//! generation). Rules are indexed by their first path element and advisories
//! by module, so a verdict costs a few hash lookups however large the policy
//! or the database — and nothing at all is allocated unless something matches.

pub mod advisory;
pub mod cooldown;
pub mod policy;
pub mod recheck;
pub mod reload;
pub mod serve;
pub mod signals;
pub mod typosquat;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use advisory::{AdvisorySet, Class};
pub use policy::{Mode, Policy, PolicyError};

/// What kind of knowledge a finding comes from (also a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A `[[deny]]` rule of the policy file.
    Deny,
    /// An entry of a `malicious` advisory source: every covered version is blocked.
    Malicious,
    /// An entry of a `vulnerabilities` source: reported, blocked only by
    /// `block_vulnerable = true` (or a deny rule).
    Vulnerability,
    /// The release cooldown (`gate/cooldown.rs`): the version is too new.
    Cooldown,
    /// The typosquat check (`gate/typosquat.rs`): the path resembles a popular module.
    Typosquat,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Deny => "deny",
            FindingKind::Malicious => "malicious",
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Cooldown => "cooldown",
            FindingKind::Typosquat => "typosquat",
        }
    }
}

/// One reason a version should not be (or should only warily be) served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The advisory id (`MAL-2025-2545`, `GO-2025-3451`), or where the rule is
    /// (`policy line 12`), or the check's own id (e.g. the module resembled).
    pub id: String,
    /// Why, in words a user refused can act on.
    pub reason: String,
    /// `true` refuses; `false` serves anyway and logs (a warn-mode rule, a
    /// vulnerability report, a typosquat check in warn mode).
    pub enforce: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind.as_str(), self.id, self.reason)
    }
}

/// The gate's answer for one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing against it.
    Allow,
    /// Served because an `[[allow]]` rule covers it; `overridden` is what it
    /// would have been refused or warned for.
    Excepted {
        reason: String,
        line: usize,
        overridden: Vec<Finding>,
    },
    /// Served, with findings to log and count (none enforcing).
    Warn(Vec<Finding>),
    /// Not served. The enforcing findings come first.
    Refuse(Vec<Finding>),
}

impl Verdict {
    /// Whether the version is served.
    pub fn served(&self) -> bool {
        !matches!(self, Verdict::Refuse(_))
    }

    /// `allow`, `excepted`, `warn` or `refuse` (a metrics label).
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Excepted { .. } => "excepted",
            Verdict::Warn(_) => "warn",
            Verdict::Refuse(_) => "refuse",
        }
    }

    /// The findings behind the verdict (overridden ones for an exception).
    pub fn findings(&self) -> &[Finding] {
        match self {
            Verdict::Allow => &[],
            Verdict::Excepted { overridden, .. } => overridden,
            Verdict::Warn(f) | Verdict::Refuse(f) => f,
        }
    }

    /// The one-line why of a refusal: the enforcing findings, `; `-separated.
    pub fn why(&self) -> String {
        let enforcing: Vec<String> = self
            .findings()
            .iter()
            .filter(|f| f.enforce || !matches!(self, Verdict::Refuse(_)))
            .map(Finding::to_string)
            .collect();
        enforcing.join("; ")
    }
}

/// A further check contributing findings to every verdict: the seam where the
/// release cooldown (`gate/cooldown.rs`) and typosquat detection
/// (`gate/typosquat.rs`) plug in. It must be cheap and must not block (it runs
/// on every request, cached or not): keep what it needs in memory and refresh
/// that in the background. `[[allow]]` rules override its findings like any other.
pub trait Check: Send + Sync {
    /// Whether the check can find anything under `policy` (a check that is
    /// off costs the verdict nothing).
    fn applies(&self, _policy: &Policy) -> bool {
        true
    }

    /// Appends this check's findings for `module@version` to `out`; `now` is
    /// Unix seconds. `policy` is the policy in force (for its `[cooldown]` /
    /// `[typosquat]` sections); `facts` what the pipeline knows of the version.
    fn check(
        &self,
        policy: &Policy,
        module: &str,
        version: &str,
        facts: &Facts,
        now: u64,
        out: &mut Vec<Finding>,
    );
}

/// What the pipeline knows about a version beyond its name, for checks that
/// need it (the release cooldown). Unknown facts find nothing: the version is
/// judged again when they are known (a miss, once its lookup is proven).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Its checksum-database record id: a cached entry's
    /// `verification.record_id`, or a verified lookup's id.
    pub record_id: Option<i64>,
    /// The `.info` Time in Unix seconds, when the mirror holds the `.info`
    /// and the cooldown asked for it ([`Gate::needs_info_time`]).
    pub info_time: Option<u64>,
    /// For a private version (vouched for by its pin, not the checksum
    /// database): when it was first seen and pinned, Unix seconds — its age
    /// for the release cooldown.
    pub pinned_at: Option<u64>,
}

/// Everything the gate knows at one moment; replaced whole on every change.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub policy: Arc<Policy>,
    pub advisories: Arc<AdvisorySet>,
    /// Bumped on every change: a verdict cached with generation `g` is valid
    /// while `generation == g` (and, for allow rules with `expires`, the clock).
    pub generation: u64,
}

impl Snapshot {
    /// Whether no verdict can be anything but `Allow` (no rules, no advisories).
    fn is_empty(&self) -> bool {
        self.policy.is_empty() && self.advisories.is_empty()
    }
}

/// The verdict for `module@version` given `snap` and `extra` findings from
/// further checks, at `now` (Unix seconds; only allow rules' expiry reads it).
pub fn verdict(
    snap: &Snapshot,
    module: &str,
    version: &str,
    now: u64,
    extra: Vec<Finding>,
) -> Verdict {
    if extra.is_empty() && snap.is_empty() {
        return Verdict::Allow;
    }
    let mut findings = extra;
    for rule in snap.policy.denying(module, version) {
        findings.push(Finding {
            kind: FindingKind::Deny,
            id: format!("policy line {}", rule.line),
            reason: rule.reason.clone(),
            enforce: rule.mode == Mode::Enforce,
        });
    }
    let block_vulnerable = snap.policy.advisories.block_vulnerable;
    for a in snap.advisories.affecting(module, version) {
        let (kind, enforce) = match a.class {
            Class::Malicious => (FindingKind::Malicious, true),
            Class::Vulnerability => (FindingKind::Vulnerability, block_vulnerable),
        };
        // The same entry can reach us from two sources (or name a module twice).
        if findings.iter().any(|f| f.kind == kind && f.id == *a.id) {
            continue;
        }
        findings.push(Finding {
            kind,
            id: a.id.to_string(),
            reason: a.summary.to_string(),
            enforce,
        });
    }
    if findings.is_empty() {
        return Verdict::Allow;
    }
    if let Some(rule) = snap.policy.allowing(module, version, now) {
        return Verdict::Excepted {
            reason: rule.reason.clone(),
            line: rule.line,
            overridden: findings,
        };
    }
    if findings.iter().any(|f| f.enforce) {
        // Enforcing first, so the first thing a refused user reads is why.
        findings.sort_by_key(|f| !f.enforce);
        Verdict::Refuse(findings)
    } else {
        Verdict::Warn(findings)
    }
}

/// The current snapshot and the checks, shared by the server and its reload tasks.
pub struct Gate {
    current: ArcSwap<Snapshot>,
    next_generation: AtomicU64,
    checks: Vec<Arc<dyn Check>>,
    /// The typosquat check among `checks`, fed the modules the mirror serves.
    typosquat: Option<Arc<signals::TyposquatCheck>>,
    /// The release cooldown among `checks`.
    cooldown: Option<Arc<signals::CooldownCheck>>,
    /// What the reload task last saw, for `/readyz` (never read on the hit path).
    status: Mutex<Status>,
    /// The cached versions the last re-check found refused, for the dashboard
    /// and the evictor (kept as evidence); replaced whole by each re-check.
    blocked: Mutex<Arc<Vec<recheck::Refused>>>,
}

/// The gate's health for operators: the last policy reload error and each
/// advisory source's state.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    pub policy_error: Option<String>,
    pub sources: Vec<SourceStatus>,
}

/// One advisory source as last read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceStatus {
    pub location: String,
    pub class: &'static str,
    /// Entries in force from it (its last good read).
    pub entries: usize,
    /// When the database says it was modified (else when it was read), Unix seconds.
    pub modified: Option<u64>,
    pub read_at: Option<u64>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
}

/// The gate a server starts with: its policy file (`cfg.policy`) or none;
/// `heads` dates checksum-database records for the cooldown (the client's
/// trusted-head history).
pub fn build(cfg: &crate::config::Config, heads: signals::HeadSource) -> Result<Gate, PolicyError> {
    let policy = match &cfg.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    Ok(with_policy(policy, heads))
}

/// A gate enforcing `policy` with every check there is (for the server and
/// the `policy` commands alike): the release cooldown, dating records by
/// `heads`, and the typosquat check over the Debian corpus (the modules the
/// mirror serves are added with [`Gate::served_module`]).
pub fn with_policy(policy: Policy, heads: signals::HeadSource) -> Gate {
    let typosquat = Arc::new(signals::TyposquatCheck::new(typosquat::Corpus::debian()));
    let cooldown = Arc::new(signals::CooldownCheck::new(heads));
    let checks: Vec<Arc<dyn Check>> = vec![cooldown.clone(), typosquat.clone()];
    let mut g = Gate::new(policy, checks);
    g.typosquat = Some(typosquat);
    g.cooldown = Some(cooldown);
    g
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(Policy::default(), Vec::new())
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("generation", &self.current.load().generation)
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl Gate {
    /// A gate enforcing `policy` (no advisories loaded yet) and `checks`.
    pub fn new(policy: Policy, checks: Vec<Arc<dyn Check>>) -> Gate {
        Gate {
            current: ArcSwap::from_pointee(Snapshot {
                policy: Arc::new(policy),
                advisories: Arc::default(),
                generation: 1,
            }),
            next_generation: AtomicU64::new(2),
            checks,
            typosquat: None,
            cooldown: None,
            status: Mutex::default(),
            blocked: Mutex::default(),
        }
    }

    /// The cached versions refused at the last re-check (see [`recheck`]).
    pub fn blocked(&self) -> Arc<Vec<recheck::Refused>> {
        self.blocked.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Records what a re-check found refused.
    pub fn set_blocked(&self, refused: Vec<recheck::Refused>) {
        if let Ok(mut b) = self.blocked.lock() {
            *b = Arc::new(refused);
        }
    }

    /// Whether `module@version` was refused at the last re-check: such a
    /// version is held as evidence (never evicted).
    pub fn is_blocked(&self, module: &str, version: &str) -> bool {
        self.blocked
            .lock()
            .map(|b| b.iter().any(|r| r.module == module && r.version == version))
            .unwrap_or(false)
    }

    /// The gate's status for `/readyz`, with each source's age in seconds.
    pub fn status_json(&self) -> serde_json::Value {
        let st = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let snap = self.current.load();
        let mut v = serde_json::json!({
            "generation": snap.generation,
            "deny_rules": snap.policy.deny.len(),
            "allow_rules": snap.policy.allow.len(),
            "advisories": snap.advisories.len(),
            "policy_error": st.policy_error,
            "sources": st.sources,
        });
        if let Some(list) = v["sources"].as_array_mut() {
            for s in list {
                if let Some(m) = s["modified"].as_u64() {
                    s["age_secs"] = advisory::age_secs(m).into();
                }
            }
        }
        v
    }

    /// Records the last policy reload's failure (`None` once one succeeds).
    pub fn set_policy_error(&self, e: Option<String>) {
        if let Ok(mut s) = self.status.lock() {
            s.policy_error = e;
        }
    }

    /// Records the advisory sources' state after a refresh.
    pub fn set_sources(&self, sources: Vec<SourceStatus>) {
        if let Ok(mut s) = self.status.lock() {
            s.sources = sources;
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The verdict for `module@version` now, knowing nothing more of it (the
    /// cooldown cannot hold it then: see [`Gate::judge`]). Lock-free;
    /// allocates only when something matches.
    pub fn check(&self, module: &str, version: &str) -> Verdict {
        self.judge(module, version, &Facts::default())
    }

    /// The verdict for `module@version` now, given what is known of it.
    pub fn judge(&self, module: &str, version: &str, facts: &Facts) -> Verdict {
        let snap = self.current.load();
        if !self.checks.iter().any(|c| c.applies(&snap.policy)) {
            // The clock is read only when an allow rule's expiry matters.
            let v = verdict(&snap, module, version, 0, Vec::new());
            if matches!(v, Verdict::Allow) || snap.policy.allow.is_empty() {
                return v;
            }
        }
        drop(snap);
        self.judge_at(module, version, facts, crate::store::now_secs())
    }

    /// [`Gate::check`] at a given time (tests, `policy check`).
    pub fn check_at(&self, module: &str, version: &str, now: u64) -> Verdict {
        self.judge_at(module, version, &Facts::default(), now)
    }

    /// [`Gate::check_at`] with findings the caller already has; `[[allow]]`
    /// rules override them too.
    pub fn check_with(
        &self,
        module: &str,
        version: &str,
        now: u64,
        extra: Vec<Finding>,
    ) -> Verdict {
        self.judge_with(module, version, &Facts::default(), now, extra)
    }

    /// [`Gate::judge`] at a given time.
    pub fn judge_at(&self, module: &str, version: &str, facts: &Facts, now: u64) -> Verdict {
        self.judge_with(module, version, facts, now, Vec::new())
    }

    /// [`Gate::judge_at`] with findings the caller already has.
    pub fn judge_with(
        &self,
        module: &str,
        version: &str,
        facts: &Facts,
        now: u64,
        mut extra: Vec<Finding>,
    ) -> Verdict {
        let snap = self.current.load();
        for c in &self.checks {
            if c.applies(&snap.policy) {
                c.check(&snap.policy, module, version, facts, now, &mut extra);
            }
        }
        verdict(&snap, module, version, now, extra)
    }

    /// Whether the cooldown could hold a version of `module` (it is on and
    /// the module is not exempt): only then is its record id worth finding.
    pub fn needs_record(&self, module: &str) -> bool {
        let snap = self.current.load();
        self.cooldown
            .as_ref()
            .is_some_and(|c| c.holds_module(&snap.policy, module))
    }

    /// Whether judging record `record_id` of `module` needs the version's
    /// `.info` Time: only a record older than the watch, within `min_age` of
    /// the watch's start (see `gate/cooldown.rs`).
    pub fn needs_info_time(&self, module: &str, record_id: i64, now: u64) -> bool {
        let snap = self.current.load();
        self.cooldown
            .as_ref()
            .is_some_and(|c| c.needs_info_time(&snap.policy, module, record_id, now))
    }

    /// The `.info` Time remembered for record `record_id` (see
    /// [`Gate::needs_info_time`]); `Some(None)`: read, and it has none.
    pub fn known_info_time(&self, record_id: i64) -> Option<Option<u64>> {
        self.cooldown
            .as_ref()
            .and_then(|c| c.known_info_time(record_id))
    }

    /// Remembers the `.info` Time read for record `record_id`.
    pub fn remember_info_time(&self, record_id: i64, time: Option<u64>) {
        if let Some(c) = &self.cooldown {
            c.remember_info_time(record_id, time);
        }
    }

    /// Notes that the mirror serves (has committed) `module`: the typosquat
    /// check never flags it, nor paths below it, and flags near-copies of it.
    pub fn served_module(&self, module: &str) {
        if let Some(t) = &self.typosquat {
            t.add(module);
        }
    }

    /// Notes many served modules at once (the store's, at start).
    pub fn served_modules<'a>(&self, modules: impl IntoIterator<Item = &'a str>) {
        if let Some(t) = &self.typosquat {
            t.add_all(modules);
        }
    }

    /// The cooldown's hold on `module@version` (for `policy check`).
    pub fn cooldown_hold(
        &self,
        module: &str,
        version: &str,
        facts: &Facts,
        now: u64,
    ) -> Option<cooldown::Hold> {
        let snap = self.current.load();
        self.cooldown
            .as_ref()
            .and_then(|c| c.hold(&snap.policy, module, version, facts, now))
    }

    /// The typosquat check's finding on `module` whatever the mode (for
    /// `policy check`), `None` for a module the mirror serves.
    pub fn resemblance(&self, module: &str) -> Option<Arc<typosquat::Resemblance>> {
        self.typosquat.as_ref().and_then(|t| t.resemblance(module))
    }

    /// Dates records by `h` from now on, not by the head source the gate was
    /// built with (`policy check` on a data dir; set once).
    pub fn set_head_history(&self, h: crate::sumdb::heads::HeadHistory) {
        if let Some(c) = &self.cooldown {
            c.set_history(h);
        }
    }

    /// The head history the cooldown dates records by, if it has one.
    pub fn head_history(&self) -> Option<Arc<crate::sumdb::heads::HeadHistory>> {
        self.cooldown.as_ref().map(|c| c.history())
    }

    /// Puts a new policy in force (keeping the advisories); returns the new generation.
    pub fn set_policy(&self, policy: Policy) -> u64 {
        let policy = Arc::new(policy);
        self.swap(|old| Snapshot {
            policy: policy.clone(),
            advisories: old.advisories.clone(),
            generation: 0,
        })
    }

    /// Puts a new advisory set in force (keeping the policy); returns the new generation.
    pub fn set_advisories(&self, advisories: AdvisorySet) -> u64 {
        let advisories = Arc::new(advisories);
        self.swap(|old| Snapshot {
            policy: old.policy.clone(),
            advisories: advisories.clone(),
            generation: 0,
        })
    }

    fn swap(&self, f: impl Fn(&Snapshot) -> Snapshot) -> u64 {
        let mut generation = 0;
        self.current.rcu(|old| {
            generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
            let mut s = f(old);
            s.generation = generation;
            s
        });
        generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::advisory::AdvisorySet;

    fn policy(text: &str) -> Policy {
        Policy::parse(text).unwrap()
    }

    const MAL: &str = r#"{"id":"MAL-2025-2545","summary":"Malicious code in github.com/boltdb-go/bolt (Go)",
        "affected":[{"package":{"ecosystem":"Go","name":"github.com/boltdb-go/bolt"},
        "ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#;
    const VULN: &str = r#"{"id":"GO-2099-0001","summary":"Something in example.com/lib",
        "affected":[{"package":{"ecosystem":"Go","name":"example.com/lib"},
        "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}"#;

    fn advisories() -> AdvisorySet {
        let mut s = AdvisorySet::default();
        s.add_json(MAL.as_bytes(), Class::Malicious).unwrap();
        s.add_json(VULN.as_bytes(), Class::Vulnerability).unwrap();
        s
    }

    #[test]
    fn empty_gate_allows_everything() {
        let g = Gate::default();
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1"),
            Verdict::Allow
        );
    }

    #[test]
    fn malicious_refuses_vulnerable_warns() {
        let g = Gate::default();
        g.set_advisories(advisories());
        let v = g.check("github.com/boltdb-go/bolt", "v1.3.1");
        assert!(!v.served());
        assert!(v.why().contains("MAL-2025-2545"), "{}", v.why());
        let v = g.check("example.com/lib", "v1.1.0");
        assert!(matches!(v, Verdict::Warn(_)), "{v:?}");
        assert_eq!(v.findings()[0].id, "GO-2099-0001");
        assert_eq!(g.check("example.com/lib", "v1.2.0"), Verdict::Allow);
        assert_eq!(g.check("github.com/boltdb/bolt", "v1.3.1"), Verdict::Allow);

        g.set_policy(policy("[advisories]\nblock_vulnerable = true\n"));
        assert!(!g.check("example.com/lib", "v1.1.0").served());
    }

    #[test]
    fn allow_overrides_everything_until_it_expires() {
        let g = Gate::default();
        g.set_advisories(advisories());
        g.set_policy(policy(
            r#"
[[deny]]
module = "github.com/boltdb-go"
reason = "typosquat"
[[allow]]
module = "github.com/boltdb-go/bolt"
versions = ["v1.3.1"]
reason = "we audited it, SEC-1"
expires = "2027-03-31"
"#,
        ));
        let before = 1806537600 - 1;
        match g.check_at("github.com/boltdb-go/bolt", "v1.3.1", before) {
            Verdict::Excepted {
                reason, overridden, ..
            } => {
                assert_eq!(reason, "we audited it, SEC-1");
                let kinds: Vec<_> = overridden.iter().map(|f| f.kind).collect();
                assert_eq!(kinds, [FindingKind::Deny, FindingKind::Malicious]);
            }
            v => panic!("{v:?}"),
        }
        let v = g.check_at("github.com/boltdb-go/bolt", "v1.3.1", before + 1);
        assert!(!v.served());
        assert!(v.why().contains("typosquat") && v.why().contains("MAL-2025-2545"));
        assert!(
            !g.check_at("github.com/boltdb-go/bolt", "v1.3.2", before)
                .served()
        );
    }

    #[test]
    fn warn_mode_serves_and_reports() {
        let g = Gate::new(
            policy("[[deny]]\nmodule = \"example.com/*\"\nreason = \"dry run\"\nmode = \"warn\"\n"),
            Vec::new(),
        );
        let v = g.check("example.com/x", "v1.0.0");
        assert!(v.served());
        assert_eq!(v.outcome(), "warn");
        assert_eq!(v.findings()[0].id, "policy line 2");
    }

    struct TooNew;
    impl Check for TooNew {
        fn check(
            &self,
            policy: &Policy,
            module: &str,
            _: &str,
            _: &Facts,
            _: u64,
            out: &mut Vec<Finding>,
        ) {
            if !policy.cooldown.exempt.iter().any(|p| p.matches(module)) {
                out.push(Finding {
                    kind: FindingKind::Cooldown,
                    id: "cooldown".into(),
                    reason: "first seen 1h ago, served after 72h".into(),
                    enforce: true,
                });
            }
        }
    }

    #[test]
    fn checks_plug_in_and_allow_rules_cover_them() {
        let g = Gate::new(
            policy(
                "[cooldown]\nmin_age = \"72h\"\nexempt = [\"corp.example/*\"]\n\
                 [[allow]]\nmodule = \"ok.example/m\"\nreason = \"vendor hotfix\"\n",
            ),
            vec![Arc::new(TooNew)],
        );
        let v = g.check("example.com/x", "v1.0.0");
        assert_eq!(v.findings()[0].kind, FindingKind::Cooldown);
        assert!(!v.served());
        assert_eq!(g.check("corp.example/x/y", "v1.0.0"), Verdict::Allow);
        assert_eq!(g.check("ok.example/m", "v1.0.0").outcome(), "excepted");
    }

    #[test]
    fn generations_advance_on_every_swap() {
        let g = Gate::default();
        let g1 = g.snapshot().generation;
        let g2 = g.set_policy(Policy::default());
        let g3 = g.set_advisories(AdvisorySet::default());
        assert!(g1 < g2 && g2 < g3);
        assert_eq!(g.snapshot().generation, g3);
    }
}
