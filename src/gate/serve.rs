//! The gate on the serving path: a verdict turned into "go on", a logged warning,
//! or the typed refusal that `error.rs` answers 403.

use super::{Gate, Verdict};
use crate::error::Error;
use crate::metrics::Metrics;

/// Lets `module@version` be served, or refuses it. Allowed versions cost a
/// lock-free snapshot read and a few hash lookups, and log nothing.
pub fn admit(gate: &Gate, metrics: &Metrics, module: &str, version: &str) -> Result<(), Error> {
    let v = gate.check(module, version);
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
