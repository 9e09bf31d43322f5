//! `modgate policy check` and `modgate policy exposure`: the gate's verdict on one
//! module version, and every cached version the policy refuses — computed from the
//! policy file and its advisory sources exactly as a server would.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::gate::advisory::Advisories;
use crate::gate::policy::TyposquatMode;
use crate::gate::recheck;
use crate::gate::{Facts, Gate, Policy, Verdict};
use crate::protocol::ModVersion;
use crate::sumdb::heads::RecordDate;

/// Bounds each HTTP request to an advisory URL.
const ADVISORY_TIMEOUT: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A gate for `policy_file` with its advisories read once; a source that
/// fails is reported on `err` (the verdict is then made without it).
pub async fn load_gate(policy_file: &Path, err: &mut (dyn Write + Send)) -> Result<Arc<Gate>> {
    let policy = Policy::load(policy_file)?;
    let mut adv = Advisories::new(&policy.advisories, ADVISORY_TIMEOUT);
    for r in adv.refresh().await {
        if let Err(e) = &r.result {
            writeln!(
                err,
                "warning: advisory source {} ({}) unavailable: {e}",
                r.location,
                r.class.as_str()
            )?;
        }
    }
    // Records are dated by the data dir's head history when `check` has one.
    let gate = Arc::new(crate::gate::with_policy(
        policy,
        crate::gate::signals::no_heads(),
    ));
    gate.set_advisories(adv.merged());
    Ok(gate)
}

/// Prints the verdict on `target` (`MODULE@VERSION`) and every reason behind
/// it; `Ok(true)` when the version would be served. With a store, also says
/// what of it is cached.
pub async fn check(
    gate: &Gate,
    store: Option<&dyn crate::store::Store>,
    target: &str,
    out: &mut (dyn Write + Send),
) -> Result<bool> {
    let (module, version) = target
        .split_once('@')
        .ok_or_else(|| format!("{target:?}: want MODULE@VERSION"))?;
    let mv = ModVersion::new(module, version).map_err(|e| format!("{target:?}: {e}"))?;
    let now = crate::store::now_secs();
    let facts = match store {
        Some(store) => known_facts(gate, store, &mv).await?,
        None => Facts::default(),
    };
    let v = gate.judge_at(mv.path(), mv.version(), &facts, now);
    let head = match &v {
        Verdict::Allow => "served: nothing against it".to_string(),
        Verdict::Excepted { reason, line, .. } => {
            format!("served by the allow rule at policy line {line}: {reason}")
        }
        Verdict::Warn(_) => "served, with warnings".to_string(),
        Verdict::Refuse(_) => "REFUSED".to_string(),
    };
    writeln!(out, "{mv}: {head}")?;
    for f in v.findings() {
        let effect = match (&v, f.enforce) {
            (Verdict::Excepted { .. }, _) => "overridden",
            (_, true) => "refuses",
            (_, false) => "warns",
        };
        writeln!(
            out,
            "  {:<13} {:<16} {effect:<10} {}",
            f.kind.as_str(),
            f.id,
            f.reason
        )?;
    }
    writeln!(out, "  {}", cooldown_clock(gate, &mv, &facts, now))?;
    writeln!(out, "  {}", resemblance(gate, mv.path()))?;
    if let Some(store) = store {
        let cached: Vec<String> = store
            .entries(&format!("{}@{}", mv.path(), mv.version()))
            .await?
            .into_iter()
            .filter(|e| e.module == mv.path() && e.version == mv.version())
            .map(|e| e.kind)
            .collect();
        if cached.is_empty() {
            writeln!(out, "  not cached")?;
        } else {
            writeln!(out, "  cached: {}", cached.join(", "))?;
        }
    }
    Ok(v.served())
}

/// What the data dir knows of `mv` for the gate, as a server would: the
/// modules it serves join the typosquat corpus, records are dated by its
/// head history, and the version's record id comes from its cached entry or
/// verified lookup (its `.info` Time from the cached `.info`).
async fn known_facts(
    gate: &Gate,
    store: &dyn crate::store::Store,
    mv: &ModVersion,
) -> Result<Facts> {
    let all = store.entries("").await?;
    let mut modules: Vec<&str> = all.iter().map(|e| e.module.as_str()).collect();
    modules.dedup();
    gate.served_modules(modules);
    let mine: Vec<&crate::store::Entry> = all
        .iter()
        .filter(|e| e.module == mv.path() && e.version == mv.version())
        .collect();
    let sumdb = mine
        .first()
        .copied()
        .or(all.first())
        .map_or("sum.golang.org", |e| e.verification.sumdb.as_str());
    gate.set_head_history(crate::trust::stored_head_history(store, sumdb).await?);
    let mut record_id = mine
        .first()
        .and_then(|e| crate::gate::signals::record_of(e));
    if record_id.is_none() {
        let key = format!("{sumdb}/{mv}");
        if let Some(raw) = store.meta_get(crate::store::Meta::Lookup, &key).await? {
            record_id = serde_json::from_slice::<crate::pipeline::Lookup>(&raw)
                .ok()
                .map(|l| l.id);
        }
    }
    let mut info_time = None;
    if let Some(info) = mine.iter().find(|e| e.kind == "info") {
        let mut buf = Vec::new();
        use tokio::io::AsyncReadExt;
        store
            .open(info)
            .await?
            .into_reader()
            .take(1 << 20)
            .read_to_end(&mut buf)
            .await?;
        info_time = crate::gate::cooldown::info_time(&buf);
    }
    Ok(Facts {
        record_id,
        info_time,
        pinned_at: mine
            .first()
            .and_then(|e| crate::gate::signals::pinned_at(e)),
    })
}

/// The cooldown's clock on `mv`, one line.
fn cooldown_clock(gate: &Gate, mv: &ModVersion, facts: &Facts, now: u64) -> String {
    let policy = gate.snapshot().policy.clone();
    let Some(min_age) = policy.cooldown.min_age.filter(|d| !d.is_zero()) else {
        return "cooldown: off (no [cooldown] min_age)".into();
    };
    let min = humantime::format_duration(min_age);
    if !gate.needs_record(mv.path()) {
        return format!("cooldown: {} is exempt (min_age {min})", mv.path());
    }
    if let Some(hold) = gate.cooldown_hold(mv.path(), mv.version(), facts, now) {
        return format!("cooldown: HELD — {}", hold.reason);
    }
    let Some(id) = facts.record_id else {
        return format!(
            "cooldown: min_age {min}; the version's checksum-database record is not known here \
             (not cached): a fetch looks it up and judges its age then"
        );
    };
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    };
    let dated = match gate.head_history().map(|h| h.date(id)) {
        Some(RecordDate::FirstSeen { head }) => format!(
            "its record {id} entered the checksum log by {} ({} ago)",
            at(head.seen),
            humantime::format_duration(Duration::from_secs(now.saturating_sub(head.seen)))
        ),
        Some(RecordDate::BeforeWatch { first }) => format!(
            "its record {id} predates the watch of the checksum log (first head {} seen {})",
            first.size,
            at(first.seen)
        ),
        _ => format!("its record {id} predates every head watched"),
    };
    format!("cooldown: old enough (min_age {min}): {dated}")
}

/// What the typosquat check says of `module`, whatever its mode.
fn resemblance(gate: &Gate, module: &str) -> String {
    let mode = match gate.snapshot().policy.typosquat.mode {
        TyposquatMode::Enforce => "enforce",
        TyposquatMode::Warn => "warn",
        TyposquatMode::Off => "off",
    };
    match gate.resemblance(module) {
        Some(r) => format!(
            "typosquat (mode {mode}): resembles {} ({})",
            r.similar_to, r.how
        ),
        None => format!("typosquat (mode {mode}): resembles no popular or served module"),
    }
}

/// Lists every cached version the gate refuses, with why; returns how many.
pub async fn exposure(
    gate: &Arc<Gate>,
    store: &dyn crate::store::Store,
    trail: Option<&crate::audit::Trail>,
    out: &mut (dyn Write + Send),
) -> Result<usize> {
    // As a server on this data dir would judge: the modules it serves are not
    // typosquats, and records are dated by its head history (the cooldown's
    // holds are listed too).
    let all = store.entries("").await?;
    gate.served_modules(all.iter().map(|e| e.module.as_str()));
    if let Some(e) = all.first() {
        gate.set_head_history(
            crate::trust::stored_head_history(store, &e.verification.sumdb).await?,
        );
    }
    drop(all);
    let refused = recheck::refused_with(store, gate, true).await?;
    for r in &refused {
        writeln!(
            out,
            "{}@{} ({}): {}",
            r.module,
            r.version,
            r.kinds.join(","),
            r.why
        )?;
        if let Some(trail) = trail {
            let who = crate::audit::fetchers(trail, &r.module, &r.version);
            match who.is_empty() {
                true => writeln!(out, "  fetched by: nobody on record")?,
                false => writeln!(out, "  fetched by: {}", who.join(", "))?,
            }
        }
    }
    writeln!(
        out,
        "{} cached version(s) refused by the policy",
        refused.len()
    )?;
    Ok(refused.len())
}
