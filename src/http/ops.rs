//! Operational endpoints: liveness (`/healthz`), readiness (`/readyz`), metrics (`/metrics`),
//! and the client side of `modgate healthcheck`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::Shared;
use crate::store::{Meta, Store};

/// `/healthz`: the process is up and serving HTTP. Nothing else is checked,
/// so a liveness probe never restarts modgate for a full disk or an unreachable upstream.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: ready to serve — the store takes writes, the trust state is
/// readable, and the checksum database has not been caught forking its log.
/// The JSON body names every check and what is wrong; 503 when not ready.
pub async fn readyz(State(st): State<Shared>) -> Response {
    let p = &st.pipeline;
    // Reused for `limits.readyz_probe_secs`: a probe cannot cost more than
    // one spool fsync and one index flush per interval.
    let store = p
        .write_probe()
        .get(|| store_writable(p.store().as_ref()))
        .await;
    let sumdb = p.sumdb();
    let trust = p
        .store()
        .meta_get(Meta::Trust, &format!("{}/latest", sumdb.name()))
        .await
        .map(|_| ())
        .map_err(|e| format!("trust state unreadable: {e}"));
    let fork = if sumdb.is_forked() {
        Err(format!(
            "checksum database {} presented a forked log; run `modgate trust reset --sumdb {}` after investigating",
            sumdb.name(),
            sumdb.name()
        ))
    } else {
        Ok(())
    };
    let checks = [("store", &store), ("trust", &trust), ("fork", &fork)];
    let problems: Vec<String> = checks
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    let ready = problems.is_empty();
    let body = json!({
        "ready": ready,
        "checks": checks.iter().map(|(n, r)| (n.to_string(), json!(r.as_ref().err().map_or("ok", |e| e.as_str())))).collect::<serde_json::Map<_, _>>(),
        "problems": problems,
        "sumdb": {"name": sumdb.name(), "tree_size": sumdb.latest().n, "forked": sumdb.is_forked()},
        "offline": p.config().offline,
        "gate": p.gate().status_json(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        tracing::warn!(?problems, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut r = (status, body.to_string() + "\n").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Writes, reads back and removes a small file where downloads are spooled,
/// and a key in the index: the two writes every verified miss needs.
async fn store_writable(store: &dyn Store) -> Result<(), String> {
    const PROBE: &[u8] = b"modgate readiness probe\n";
    // The guard deletes the probe file however this returns.
    let (guard, mut file) = store
        .spool()
        .await
        .map_err(|e| format!("cannot create a spool file: {e}"))?;
    async {
        file.write_all(PROBE).await?;
        file.sync_all().await
    }
    .await
    .map_err(|e| format!("cannot write a spool file: {e}"))?;
    drop(file);
    // The spool file is opened write-only: read it back through a new handle.
    let back = tokio::fs::read(&guard.path)
        .await
        .map_err(|e| format!("cannot read the spool file back: {e}"))?;
    if back != PROBE {
        return Err("spool file read back differs from what was written".into());
    }
    let stamp = crate::store::now_secs().to_string();
    store
        .meta_put(Meta::List, "readyz-probe", stamp.as_bytes())
        .await
        .map_err(|e| format!("cannot write the index: {e}"))?;
    match store.meta_get(Meta::List, "readyz-probe").await {
        Ok(Some(v)) if v == stamp.as_bytes() => {}
        Ok(_) => return Err("index read back differs from what was written".into()),
        Err(e) => return Err(format!("cannot read the index: {e}")),
    }
    // A shared bucket must answer too (misses need it; local hits do not).
    store.ready().await.map_err(|e| e.to_string())
}

/// `/metrics`: the Prometheus text format. Gauges that are cheap to read
/// where they live are sampled here rather than pushed on every change.
pub async fn metrics(State(st): State<Shared>) -> Response {
    let p = &st.pipeline;
    let m = p.metrics();
    let sumdb = p.sumdb();
    m.sumdb_tree_size
        .with_label_values(&[sumdb.name()])
        .set(sumdb.latest().n);
    m.sumdb_forked
        .with_label_values(&[sumdb.name()])
        .set(i64::from(sumdb.is_forked()));
    m.in_flight.set(p.in_flight() as i64);
    m.log_lines_queued
        .set(crate::logwriter::lines_queued() as i64);
    let dropped = crate::logwriter::lines_dropped();
    m.log_lines_dropped
        .inc_by(dropped.saturating_sub(m.log_lines_dropped.get()));
    // The store keeps its totals in the same transaction as every index
    // write (commit, quarantine, refetch, `cache rm`, eviction): read them
    // rather than trust increments, which cannot see every path.
    match p.store().totals().await {
        Ok((objects, bytes)) => {
            m.store_objects.set(objects as i64);
            m.store_bytes.set(bytes as i64);
        }
        Err(e) => tracing::warn!(error = %e, "reading the store totals for metrics"),
    }
    let mut r = m.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `modgate healthcheck`: GETs `url` (normally `/healthz` on the loopback)
/// and succeeds on 200. Certificates are not checked: the probe talks to
/// its own process, and a certificate is issued for a public name, not 127.0.0.1.
pub async fn probe(url: &str) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if resp.status() == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{url}: status {}", resp.status()))
    }
}

/// The `/healthz` URL for a listen address: wildcard addresses become the loopback.
pub fn healthz_url(listen: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let (host, port) = match listen.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("127.0.0.1", listen),
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    format!("{scheme}://{host}:{port}/healthz")
}

#[cfg(test)]
mod tests {
    use super::healthz_url;

    #[test]
    fn healthz_urls() {
        assert_eq!(
            healthz_url("0.0.0.0:8080", false),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(healthz_url("[::]:9", true), "https://[::1]:9/healthz");
        assert_eq!(
            healthz_url("10.1.2.3:80", false),
            "http://10.1.2.3:80/healthz"
        );
    }
}
