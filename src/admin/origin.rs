//! `origin check [PATTERN] [--origin LIST]`: fetch cached versions again from their
//! origin and compare with what modgate recorded (the checksum database's hash or the
//! pin). A difference is a rewritten tag: reported with who fetched the version (from
//! the audit trail), logged on `modgate::security` and counted
//! (`modgate_origin_rewrites_total`). What is served does not change: the verified
//! content stays.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::cache::AdminError;
use crate::audit::Trail;
use crate::config::Config;
use crate::landing::Landing;
use crate::module::pattern::match_prefix_patterns;
use crate::protocol::{Kind, ModVersion};
use crate::routes::Authority;
use crate::store::{Entry, Store};
use crate::upstream::Upstream;

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    pub checked: usize,
    pub rewritten: usize,
    /// Versions the origin no longer has (or could not be asked about).
    pub unavailable: usize,
}

/// What to check and where from.
pub struct Options<'a> {
    /// Modules (GOPRIVATE syntax); none: every cached module.
    pub pattern: Option<&'a str>,
    /// The origin, GOPROXY syntax (`direct` runs the go command).
    pub origin: &'a str,
    /// Pause between two versions (the rate limit on the origin).
    pub pause: std::time::Duration,
}

/// Re-fetches every cached `.mod`/`.zip` whose module matches `pattern` (GOPRIVATE
/// syntax; none: all) from `origin` (GOPROXY syntax; `direct` runs the go command)
/// and compares its h1 with the recorded one.
pub async fn check(
    store: &dyn Store,
    data_dir: &Path,
    trail: Option<&Trail>,
    metrics: Arc<crate::metrics::Metrics>,
    opts: Options<'_>,
    out: &mut (dyn Write + Send),
) -> Result<Report, AdminError> {
    let Options {
        pattern,
        origin,
        pause,
    } = opts;
    let cfg = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    let base = Upstream::with_metrics(&cfg, metrics.clone())
        .map_err(|e| AdminError::Usage(e.to_string()))?;
    let direct = crate::direct::Direct::new(data_dir, cfg.request_timeout());
    let up = base
        .for_list(origin, Some(Arc::new(direct)))
        .map_err(|e| AdminError::Usage(format!("--origin: {e}")))?;
    let admission = crate::limits::Admission::new(&cfg.limits, metrics.clone());

    let mut versions: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    for e in store.entries("").await? {
        if e.kind == "info" || pattern.is_some_and(|p| !match_prefix_patterns(p, &e.module)) {
            continue;
        }
        versions
            .entry((e.module.clone(), e.version.clone()))
            .or_default()
            .push(e);
    }
    let mut report = Report::default();
    for ((module, version), entries) in versions {
        let Ok(mv) = ModVersion::new(&module, &version) else {
            continue;
        };
        if report.checked > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        for e in entries {
            let Some(kind) = Kind::parse(&e.kind) else {
                continue;
            };
            // A private path is sent to a proxy only when the operator named it:
            // `origin check --origin https://proxy.golang.org` alone must not leak it.
            if e.verification.authority == Authority::Pins
                && pattern.is_none()
                && origin.trim() != "direct"
            {
                report.unavailable += 1;
                writeln!(
                    out,
                    "{mv} {}: not checked: private (pinned); give its PATTERN to check it against {origin}",
                    kind.ext()
                )?;
                continue;
            }
            report.checked += 1;
            let got = match fetch_h1(store, &up, &admission, &cfg, &mv, kind).await {
                Ok(h) => h,
                Err(why) => {
                    report.unavailable += 1;
                    writeln!(out, "{mv} {}: not checked: {why}", kind.ext())?;
                    continue;
                }
            };
            if got == e.verification.h1 {
                writeln!(out, "{mv} {}: ok", kind.ext())?;
                continue;
            }
            report.rewritten += 1;
            let authority = e.verification.authority.as_str();
            metrics
                .origin_rewrites
                .with_label_values(&[authority])
                .inc();
            let who = fetched_by(trail, &mv);
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                kind = kind.ext(), recorded = %e.verification.h1, origin_now = %got, authority,
                fetched_by = %who, "tag rewrite: the origin now serves other content");
            writeln!(
                out,
                "TAG REWRITE: {mv} {}: recorded {} ({authority}), origin {origin} now serves {got}; \
                 fetched by: {who}",
                kind.ext(),
                e.verification.h1
            )?;
        }
    }
    writeln!(
        out,
        "{} checked, {} rewritten, {} not checked",
        report.checked, report.rewritten, report.unavailable
    )?;
    Ok(report)
}

/// `[origin] check_every`: runs the check inside the server, one pass per interval
/// (the first one interval after start), rate-limited by `pause_ms`. Aborted at shutdown.
pub fn start(
    admin: Arc<super::api::Admin>,
    cfg: &crate::config::OriginConfig,
) -> Result<Option<tokio::task::JoinHandle<()>>, crate::config::ConfigError> {
    let Some(every) = cfg.check_every()? else {
        return Ok(None);
    };
    let (list, pause) = (
        cfg.list.clone(),
        std::time::Duration::from_millis(cfg.pause_ms),
    );
    let pattern = Some(cfg.pattern.clone()).filter(|p| !p.trim().is_empty());
    Ok(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let trail = admin.audit.as_ref().map(|a| a.trail().clone());
            // Each finding is logged by `check`; the printed report is not kept.
            let r = check(
                &*admin.store,
                &admin.data_dir,
                trail.as_ref(),
                admin.metrics.clone(),
                Options {
                    pattern: pattern.as_deref(),
                    origin: &list,
                    pause,
                },
                &mut std::io::sink(),
            )
            .await;
            match r {
                Ok(r) => tracing::info!(checked = r.checked, rewritten = r.rewritten,
                    not_checked = r.unavailable, origin = %list, "origin check done"),
                Err(e) => tracing::warn!(error = %e, "origin check failed"),
            }
        }
    })))
}

/// The h1 of `kind` of `mv` as the origin serves it now (zips under the module-zip rules).
async fn fetch_h1(
    store: &dyn Store,
    up: &Upstream,
    admission: &crate::limits::Admission,
    cfg: &Config,
    mv: &ModVersion,
    kind: Kind,
) -> Result<String, String> {
    let limits = &cfg.limits;
    if kind == Kind::Mod {
        let data = up
            .get(&mv.artifact_path(Kind::Mod), limits.max_mod_bytes)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(crate::modzip::hash_go_mod(&data));
    }
    let mut landing = Landing::new(store, limits.zip_in_memory_bytes);
    let mut charge = admission.spool_charge();
    up.download(
        &mv.artifact_path(Kind::Zip),
        limits.max_zip_bytes,
        &mut landing,
        &mut charge,
    )
    .await
    .map_err(|e| e.to_string())?;
    // A spool file is removed when `landed` is dropped (never committed).
    let landed = landing.finish().await.map_err(|e| e.to_string())?;
    landed
        .check_zip(mv.path(), mv.version(), None, limits.zip())
        .await
        .map_err(|e| e.to_string())?
        .map(|c| c.h1)
        .map_err(|e| format!("invalid module zip: {e}"))
}

/// Who was served `mv`, from the audit trail: distinct clients and users.
fn fetched_by(trail: Option<&Trail>, mv: &ModVersion) -> String {
    let Some(trail) = trail else {
        return "(no audit trail)".into();
    };
    let mut who = std::collections::BTreeSet::new();
    let _ = trail.who(mv.path(), Some(mv.version()), 0, |r| {
        if r.status < 400 && r.cache != "admin" {
            who.insert(format!(
                "client={} user={}",
                r.client.as_deref().unwrap_or("-"),
                r.user.as_deref().unwrap_or("-")
            ));
        }
        true
    });
    match who.is_empty() {
        true => "(nobody on record)".into(),
        false => who.into_iter().collect::<Vec<_>>().join(", "),
    }
}
