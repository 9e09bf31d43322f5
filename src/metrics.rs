//! Prometheus metrics: one registry per server, updated by one-line calls where things happen.
//!
//! The registry lives in an `Arc<Metrics>` created by `server::build` and handed to
//! every part of the server (both routes' upstreams share it), not in a global, so
//! several servers in one process (the tests) keep separate counts. Values that
//! are cheap to read where they live — the trusted tree size, the fork flag,
//! coalesced fetches in flight — are sampled at scrape time instead of being
//! pushed on every change (see [`crate::http::ops::metrics`]).

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The artifact kinds whose cached hits have their counters resolved once.
const HOT_KINDS: [&str; 3] = ["info", "mod", "zip"];

/// Every metric modgate exports.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by endpoint kind (`mod`, `zip`, `info`, `list`, `latest`,
    /// `sumdb`, `ops`, `other`) and status code.
    pub requests: IntCounterVec,
    /// Proxy answers by kind and cache outcome (`hit`, `miss`, `stale`).
    pub cache: IntCounterVec,
    /// The two counters of a cached hit (status 200, outcome `hit`) of each
    /// of [`HOT_KINDS`], resolved on first use: a label lookup hashes its
    /// labels under a lock, twice per request, for the commonest answer.
    hot_hits: [std::sync::OnceLock<(prometheus::IntCounter, prometheus::IntCounter)>; 3],
    /// Requests to upstream proxies and the checksum database, by operation
    /// (`get`, `download`) and outcome.
    pub upstream_fetches: IntCounterVec,
    pub upstream_seconds: HistogramVec,
    pub upstream_bytes: IntCounterVec,
    /// Verifications by outcome (`ok`, `refused`, `error`) and reason.
    pub verifications: IntCounterVec,
    /// Size of the newest signed tree trusted, per checksum database.
    pub sumdb_tree_size: IntGaugeVec,
    /// 1 once a checksum database has been proven to have forked its log.
    pub sumdb_forked: IntGaugeVec,
    /// Artifacts in the store and the sum of their sizes.
    pub store_objects: IntGauge,
    pub store_bytes: IntGauge,
    /// Distinct misses being fetched and verified right now (each coalesces its waiters).
    pub in_flight: IntGauge,
    /// Times a load limit bit, by limit (see [`crate::limits`]).
    pub limit_hits: IntCounterVec,
    /// Zip downloads by where they landed: `memory` (checked there, up to
    /// `limits.zip_in_memory_bytes`) or `spool` (`data_dir/tmp`).
    pub zip_landings: IntCounterVec,
    /// Copies read from a shared bucket on a local miss, by outcome:
    /// `adopted` (verified, no upstream fetch) or `rejected` (failed a check).
    pub shared_reads: IntCounterVec,
    /// Supply-chain gate verdicts on served artifacts, by outcome (`refuse`,
    /// `warn`, `excepted`; `allow` is not counted, it is every other request)
    /// and finding kind (`deny`, `malicious`, `vulnerability`, `cooldown`, `typosquat`, `allow`).
    pub gate_verdicts: IntCounterVec,
    /// Policy file loads by outcome (`ok`, `error`).
    pub gate_policy_loads: IntCounterVec,
    /// Advisory source reads by class (`malicious`, `vulnerabilities`) and outcome (`ok`, `error`).
    pub gate_advisory_reads: IntCounterVec,
    /// Advisory entries in force per source class.
    pub gate_advisory_entries: IntGaugeVec,
    /// Age in seconds of each class's oldest-modified source (now minus its
    /// database `modified` time), set at each refresh.
    pub gate_advisory_age: IntGaugeVec,
    /// Cached versions the gate refuses now (kept as evidence, not served).
    pub gate_blocked_cached: IntGauge,
    /// Audit records written, dropped (queue full past the wait, or a write
    /// failed), times the queue was found full, and records deleted by retention.
    pub audit_records: prometheus::IntCounter,
    pub audit_dropped: prometheus::IntCounter,
    pub audit_queue_full: prometheus::IntCounter,
    pub audit_pruned: prometheus::IntCounter,
    /// Log lines waiting for the log's writer thread (what a `kill -9` would
    /// lose), and lines lost because writing them to stderr failed; sampled
    /// from [`crate::logwriter`] at scrape time.
    pub log_lines_queued: IntGauge,
    pub log_lines_dropped: prometheus::IntCounter,
    /// Admin requests (socket and HTTP) by outcome (`ok`, `error`, `bad_request`, `too_large`, `answer_too_large`).
    pub admin_requests: IntCounterVec,
    /// Versions whose origin now serves other content than was verified (`origin
    /// check`), by who had vouched for it (`checksum_database`, `pins`).
    pub origin_rewrites: IntCounterVec,
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> prometheus::IntCounter {
    let c = prometheus::IntCounter::new(name, help).expect("valid metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modgate_upstream_fetch_duration_seconds",
                "Time to fetch from upstream or the checksum database, by operation and outcome.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["op", "outcome"],
        )
        .expect("valid metric definition");
        r.register(Box::new(upstream_seconds.clone()))
            .expect("metric registered once");
        Metrics {
            hot_hits: Default::default(),
            requests: counter(
                &r,
                "modgate_http_requests_total",
                "HTTP requests by endpoint kind and status code.",
                &["kind", "status"],
            ),
            cache: counter(
                &r,
                "modgate_cache_requests_total",
                "Proxy answers by kind and cache outcome (hit, miss, stale).",
                &["kind", "outcome"],
            ),
            upstream_fetches: counter(
                &r,
                "modgate_upstream_fetches_total",
                "Requests to upstream proxies and the checksum database, by operation and outcome.",
                &["op", "outcome"],
            ),
            upstream_seconds,
            upstream_bytes: counter(
                &r,
                "modgate_upstream_bytes_total",
                "Bytes received from upstream proxies and the checksum database, by operation and outcome.",
                &["op", "outcome"],
            ),
            verifications: counter(
                &r,
                "modgate_verifications_total",
                "Verifications by outcome (ok, refused, error) and reason.",
                &["outcome", "reason"],
            ),
            sumdb_tree_size: gauge_vec(
                &r,
                "modgate_sumdb_tree_size",
                "Size of the newest signed tree head trusted, per checksum database.",
                &["sumdb"],
            ),
            sumdb_forked: gauge_vec(
                &r,
                "modgate_sumdb_forked",
                "1 if the checksum database was proven to have forked its log (modgate then refuses new modules).",
                &["sumdb"],
            ),
            store_objects: gauge(
                &r,
                "modgate_store_objects",
                "Artifacts (.info, .mod, .zip) in the store.",
            ),
            store_bytes: gauge(
                &r,
                "modgate_store_bytes",
                "Total size of the artifacts in the store, in bytes.",
            ),
            in_flight: gauge(
                &r,
                "modgate_inflight_fetches",
                "Distinct cache misses being fetched and verified right now.",
            ),
            limit_hits: counter(
                &r,
                "modgate_limit_hits_total",
                "Times a load limit bit (a miss queued or refused 503, a connection kept waiting), by limit.",
                &["limit"],
            ),
            zip_landings: counter(
                &r,
                "modgate_zip_landings_total",
                "Zip downloads by where they landed: memory (up to limits.zip_in_memory_bytes) or spool (data_dir/tmp).",
                &["where"],
            ),
            shared_reads: counter(
                &r,
                "modgate_shared_reads_total",
                "Copies another replica published, read on a local miss, by outcome (adopted after verification, or rejected).",
                &["outcome"],
            ),
            gate_verdicts: counter(
                &r,
                "modgate_gate_verdicts_total",
                "Supply-chain gate verdicts that were not a plain allow, by outcome and finding kind.",
                &["outcome", "kind"],
            ),
            gate_policy_loads: counter(
                &r,
                "modgate_gate_policy_loads_total",
                "Policy file loads by outcome (ok, error); a failed reload keeps the policy in force.",
                &["outcome"],
            ),
            gate_advisory_reads: counter(
                &r,
                "modgate_gate_advisory_reads_total",
                "Advisory source reads by class and outcome; a failed read keeps the source's last good set.",
                &["class", "outcome"],
            ),
            gate_advisory_entries: gauge_vec(
                &r,
                "modgate_gate_advisory_entries",
                "Advisory entries in force, by class.",
                &["class"],
            ),
            gate_advisory_age: gauge_vec(
                &r,
                "modgate_gate_advisory_age_seconds",
                "Seconds since the stalest source of each class was last modified (as it says), at the last refresh.",
                &["class"],
            ),
            gate_blocked_cached: gauge(
                &r,
                "modgate_gate_blocked_cached_versions",
                "Cached module versions the gate refuses now (kept, not served).",
            ),
            audit_records: plain_counter(
                &r,
                "modgate_audit_records_total",
                "Audit records written.",
            ),
            audit_dropped: plain_counter(
                &r,
                "modgate_audit_records_dropped_total",
                "Audit records lost: the queue stayed full, or writing failed.",
            ),
            audit_queue_full: plain_counter(
                &r,
                "modgate_audit_queue_full_total",
                "Times an audit record found the writer's queue full.",
            ),
            audit_pruned: plain_counter(
                &r,
                "modgate_audit_records_pruned_total",
                "Audit records deleted by retention.",
            ),
            log_lines_queued: gauge(
                &r,
                "modgate_log_lines_queued",
                "Log lines queued for the writer thread, not yet written to stderr.",
            ),
            log_lines_dropped: plain_counter(
                &r,
                "modgate_log_lines_dropped_total",
                "Log lines lost: writing them to stderr failed.",
            ),
            admin_requests: counter(
                &r,
                "modgate_admin_requests_total",
                "Admin requests (socket and HTTP) by outcome.",
                &["outcome"],
            ),
            origin_rewrites: counter(
                &r,
                "modgate_origin_rewrites_total",
                "Cached versions whose origin now serves other content (origin check), by authority.",
                &["authority"],
            ),
            registry: r,
        }
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a failure would be a bug in a metric.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// One answered HTTP request.
    pub fn request(&self, kind: &str, status: u16, cache: &str) {
        let hot = HOT_KINDS.iter().position(|k| *k == kind);
        if let (200, "hit", Some(i)) = (status, cache, hot) {
            let (requests, hits) = self.hot_hits[i].get_or_init(|| {
                (
                    self.requests.with_label_values(&[kind, "200"]),
                    self.cache.with_label_values(&[kind, "hit"]),
                )
            });
            requests.inc();
            hits.inc();
            return;
        }
        self.requests
            .with_label_values(&[kind, &status.to_string()])
            .inc();
        if !cache.is_empty() {
            self.cache.with_label_values(&[kind, cache]).inc();
        }
    }

    /// One request to upstream or the checksum database.
    pub fn upstream(&self, op: &str, outcome: &str, took: Duration, bytes: u64) {
        self.upstream_fetches
            .with_label_values(&[op, outcome])
            .inc();
        self.upstream_seconds
            .with_label_values(&[op, outcome])
            .observe(took.as_secs_f64());
        self.upstream_bytes
            .with_label_values(&[op, outcome])
            .inc_by(bytes);
    }

    /// One verification verdict.
    pub fn verification(&self, outcome: &str, reason: &str) {
        self.verifications
            .with_label_values(&[outcome, reason])
            .inc();
    }

    /// A copy read from the shared bucket was adopted or rejected.
    pub fn shared_read(&self, outcome: &str) {
        self.shared_reads.with_label_values(&[outcome]).inc();
    }

    /// A load limit bit.
    pub fn limit_hit(&self, limit: &str) {
        self.limit_hits.with_label_values(&[limit]).inc();
    }

    /// One gate verdict that was not a plain allow: counted once per finding kind.
    pub fn gate_verdict(&self, v: &crate::gate::Verdict) {
        let outcome = v.outcome();
        if let crate::gate::Verdict::Excepted { .. } = v {
            self.gate_verdicts
                .with_label_values(&[outcome, "allow"])
                .inc();
            return;
        }
        let mut seen: [bool; 5] = [false; 5];
        for f in v.findings() {
            let i = f.kind as usize;
            if !seen[i] {
                seen[i] = true;
                self.gate_verdicts
                    .with_label_values(&[outcome, f.kind.as_str()])
                    .inc();
            }
        }
    }

    /// An artifact entered (`+1`) or left (`-1`) the store.
    pub fn stored(&self, objects: i64, bytes: i64) {
        self.store_objects.add(objects);
        self.store_bytes.add(bytes);
    }
}

/// The `outcome` label of an upstream result.
pub fn upstream_outcome<T>(r: &Result<T, crate::upstream::UpstreamError>) -> &'static str {
    use crate::upstream::UpstreamError as E;
    match r {
        Ok(_) => "ok",
        Err(E::NotFound { .. }) | Err(E::Off) => "not_found",
        Err(E::Status { .. }) => "status",
        Err(E::Unreachable { .. }) => "unreachable",
        Err(E::Timeout { .. }) => "timeout",
        Err(E::TooLarge { .. }) => "too_large",
        Err(E::Truncated { .. }) => "truncated",
        Err(E::Spool(..)) => "spool_error",
        Err(E::SpoolFull(_)) => "spool_full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_hits_count_into_the_same_series_as_every_other_answer() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request("mod", 200, "hit");
        }
        m.request("mod", 200, "miss");
        m.request("mod", 404, "");
        m.request("list", 200, "hit");
        let text = m.render();
        for line in [
            "modgate_http_requests_total{kind=\"mod\",status=\"200\"} 4",
            "modgate_http_requests_total{kind=\"mod\",status=\"404\"} 1",
            "modgate_cache_requests_total{kind=\"mod\",outcome=\"hit\"} 3",
            "modgate_cache_requests_total{kind=\"mod\",outcome=\"miss\"} 1",
            "modgate_cache_requests_total{kind=\"list\",outcome=\"hit\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        // Nothing appears for kinds never answered.
        assert!(!text.contains("kind=\"zip\""), "{text}");
    }
}
