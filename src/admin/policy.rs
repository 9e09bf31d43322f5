//! `modgate policy check` and `modgate policy exposure`: the gate's verdict on one
//! module version, and every cached version the policy refuses — computed from the
//! policy file and its advisory sources exactly as a server would.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::gate::advisory::Advisories;
use crate::gate::recheck;
use crate::gate::{Gate, Policy, Verdict};
use crate::protocol::ModVersion;

/// Bounds each HTTP request to an advisory URL.
const ADVISORY_TIMEOUT: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A gate for `policy_file` with its advisories read once; a source that
/// fails is reported on `err` (the verdict is then made without it).
pub async fn load_gate(policy_file: &Path, err: &mut dyn Write) -> Result<Arc<Gate>> {
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
    let gate = Arc::new(crate::gate::with_policy(policy));
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
    out: &mut dyn Write,
) -> Result<bool> {
    let (module, version) = target
        .split_once('@')
        .ok_or_else(|| format!("{target:?}: want MODULE@VERSION"))?;
    let mv = ModVersion::new(module, version).map_err(|e| format!("{target:?}: {e}"))?;
    let v = gate.check(mv.path(), mv.version());
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

/// Lists every cached version the gate refuses, with why; returns how many.
pub async fn exposure(
    gate: &Arc<Gate>,
    store: &dyn crate::store::Store,
    out: &mut dyn Write,
) -> Result<usize> {
    let refused = recheck::refused(store, gate).await?;
    for r in &refused {
        writeln!(
            out,
            "{}@{} ({}): {}",
            r.module,
            r.version,
            r.kinds.join(","),
            r.why
        )?;
    }
    writeln!(
        out,
        "{} cached version(s) refused by the policy",
        refused.len()
    )?;
    Ok(refused.len())
}
