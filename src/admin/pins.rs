//! `pins ls [PATTERN]` and `pins rm MODULE@VERSION --reason "…"`: the pins of private
//! versions (see `pipeline::authority`). Removing one is a security decision (the next
//! fetch pins whatever the private upstream serves then), so it needs a reason and is
//! written to the audit trail and logged on `modgate::security`.

use std::io::Write;

use super::cache::AdminError;
use crate::module::pattern::match_prefix_patterns;
use crate::pipeline::Pin;
use crate::protocol::{Kind, ModVersion};
use crate::store::{Meta, Store, artifact_key};

/// Every pin whose module matches `pattern` (GOPRIVATE syntax; none: all), in key order.
pub async fn list(store: &dyn Store, pattern: Option<&str>) -> Result<Vec<Pin>, AdminError> {
    let mut pins = Vec::new();
    for (key, value) in store.meta_scan(Meta::Pin, "").await? {
        let pin: Pin = serde_json::from_slice(&value)
            .map_err(|e| AdminError::Usage(format!("pin {key} is unreadable: {e}")))?;
        if pattern.is_none_or(|p| match_prefix_patterns(p, &pin.module)) {
            pins.push(pin);
        }
    }
    Ok(pins)
}

/// `pins ls`: one line per pinned artifact.
pub async fn ls(
    store: &dyn Store,
    pattern: Option<&str>,
    out: &mut (dyn Write + Send),
) -> Result<(), AdminError> {
    let pins = list(store, pattern).await?;
    if pins.is_empty() {
        writeln!(out, "no pins")?;
    }
    for p in pins {
        writeln!(
            out,
            "{}@{} {} {} pinned {}",
            p.module,
            p.version,
            p.kind,
            p.h1,
            p.pinned_date()
        )?;
    }
    Ok(())
}

/// `pins rm`: removes the `.mod` and `.zip` pins of one version. Returns the
/// audit reason to record (the caller writes it to the trail), and prints what went.
pub async fn rm(
    store: &dyn Store,
    target: &str,
    reason: &str,
    out: &mut (dyn Write + Send),
) -> Result<(ModVersion, String), AdminError> {
    let (m, v) = target
        .split_once('@')
        .ok_or_else(|| AdminError::Usage(format!("{target:?}: give MODULE@VERSION")))?;
    let mv = ModVersion::new(m, v).map_err(|e| AdminError::Usage(format!("{target:?}: {e}")))?;
    if reason.trim().is_empty() {
        return Err(AdminError::Usage(
            "removing a pin needs --reason \"…\" (it is audited)".into(),
        ));
    }
    let mut removed = Vec::new();
    for kind in [Kind::Mod, Kind::Zip] {
        let key = artifact_key(&mv, kind);
        if let Some(raw) = store.meta_get(Meta::Pin, &key).await? {
            store.meta_remove(Meta::Pin, &key).await?;
            let was = serde_json::from_slice::<Pin>(&raw)
                .map(|p| format!("{} {} pinned {}", kind.ext(), p.h1, p.pinned_date()))
                .unwrap_or_else(|_| format!("{} (unreadable pin)", kind.ext()));
            removed.push(was);
        }
    }
    if removed.is_empty() {
        return Err(AdminError::Usage(format!("{mv} has no pin")));
    }
    let was = removed.join(", ");
    tracing::warn!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
        %reason, removed = %was, "pin removed by an operator");
    writeln!(out, "removed the pin of {mv} ({was}); reason: {reason}")?;
    Ok((mv, format!("pins rm: {reason} (was {was})")))
}

/// The audit record of a `pins rm`.
pub fn audit_event(mv: &ModVersion, reason: String) -> crate::audit::Event {
    crate::audit::Event {
        time_us: crate::audit::now_us(),
        user: std::env::var("USER").ok(),
        module: mv.path().to_string(),
        version: mv.version().to_string(),
        kind: "pin",
        cache: "admin",
        status: 200,
        reason: Some(reason),
        ..Default::default()
    }
}
