//! The gate on the serving path: a verdict turned into "go on", a logged warning,
//! or the typed refusal that `error.rs` answers 403.

use super::{Facts, Gate, Verdict};
use crate::error::Error;
use crate::metrics::Metrics;

/// Lets `module@version` be served, or refuses it. Allowed versions cost a
/// lock-free snapshot read and a few hash lookups, and log nothing.
pub fn admit(gate: &Gate, metrics: &Metrics, module: &str, version: &str) -> Result<(), Error> {
    admit_with(gate, metrics, module, version, &Facts::default())
}

/// [`admit`] knowing `facts` of the version (its record id for the cooldown).
pub fn admit_with(
    gate: &Gate,
    metrics: &Metrics,
    module: &str,
    version: &str,
    facts: &Facts,
) -> Result<(), Error> {
    report(metrics, module, version, gate.judge(module, version, facts))
}

/// Before a miss: refuses what `facts` already refuse, before upstream is
/// asked; logs and counts nothing else, since the miss is judged again in
/// full by [`admit_with`] once its lookup is proven (one warning per request).
pub fn screen(
    gate: &Gate,
    metrics: &Metrics,
    module: &str,
    version: &str,
    facts: &Facts,
) -> Result<(), Error> {
    match gate.judge(module, version, facts) {
        v @ Verdict::Refuse(_) => report(metrics, module, version, v),
        _ => Ok(()),
    }
}

fn report(metrics: &Metrics, module: &str, version: &str, v: Verdict) -> Result<(), Error> {
    match &v {
        Verdict::Allow => Ok(()),
        Verdict::Excepted { reason, line, .. } => {
            metrics.gate_verdict(&v);
            tracing::debug!(target: "modgate::security", module, version, why = %v.why(),
                exception = %reason, line, "served by an allow rule");
            Ok(())
        }
        Verdict::Warn(_) => {
            metrics.gate_verdict(&v);
            tracing::warn!(target: "modgate::security", module, version, why = %v.why(),
                "served with a warning (not enforced)");
            Ok(())
        }
        Verdict::Refuse(_) => {
            metrics.gate_verdict(&v);
            let why = v.why();
            tracing::error!(target: "modgate::security", module, version, %why,
                "refused by the supply-chain policy");
            Err(refusal(module, version, &why))
        }
    }
}

/// The refusal a client reads (first line of a 403 body, after `SECURITY: `).
pub fn refusal(module: &str, version: &str, why: &str) -> Error {
    Error::Refused(format!(
        "{module}@{version} is refused by this proxy's supply-chain policy: {why}"
    ))
}
