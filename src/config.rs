//! Configuration: defaults < TOML file < environment < command-line flags.
//!
//! The reference for every key is `config/modgate.toml` (embedded below, so
//! `modgate config` style tooling and tests can check it parses to the defaults).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The fully commented reference configuration shipped in the repository.
pub const REFERENCE_TOML: &str = include_str!("../config/modgate.toml");

/// The well-known key of the public Go checksum database.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// modgate's whole configuration. Unknown keys in a file are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Where the index, blobs, trust state and evidence live.
    pub data_dir: PathBuf,
    /// Upstream proxies in GOPROXY syntax (`,` falls through on 404/410, `|` on any error).
    pub upstream: String,
    /// Private module path patterns in GOPRIVATE syntax (see [`crate::routes`]):
    /// never sent to `upstream` or the checksum database.
    pub private: String,
    /// Upstream proxies for private modules in GOPROXY syntax; empty: none (404).
    pub private_upstream: String,
    /// The checksum database in GOSUMDB syntax: `name`, `name+key` or `name+key URL`.
    pub sumdb: String,
    /// Serve only what is cached; never contact upstream or the checksum database.
    pub offline: bool,
    /// Log format: `text` or `json`.
    pub log_format: String,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub cache: CacheConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    #[serde(deserialize_with = "store_config")]
    pub store: StoreConfig,
    /// The supply-chain policy file (`gate::policy`); none: verification alone decides.
    pub policy: Option<PathBuf>,
    pub watch: WatchConfig,
    pub audit: AuditConfig,
    pub admin: AdminConfig,
    pub origin: OriginConfig,
    /// Credentials for upstream proxies (`[[upstream_auth]]`), matched by URL
    /// prefix; secrets are read from files, never written in a URL.
    pub upstream_auth: Vec<UpstreamAuth>,
}

/// Credentials sent to the upstream proxies whose URLs start with `url`
/// (public or private list): a bearer token, or basic auth. The secret is
/// read from a file at start, so it is in neither the config nor a URL that
/// ends up in logs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamAuth {
    /// A URL prefix, e.g. `https://athens.corp.example` (matched at a `/`).
    pub url: String,
    /// A file holding the bearer token.
    pub bearer_file: Option<PathBuf>,
    /// The basic-auth user, with `password_file`.
    pub username: Option<String>,
    /// A file holding the basic-auth password.
    pub password_file: Option<PathBuf>,
}

/// Where artifacts are kept and how much of them (see [`crate::store`],
/// [`crate::evict`]). Written as a table, or as `store = "s3://…"` for the
/// location alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (sled and files in the data dir, the default) or
    /// `s3://BUCKET[/PREFIX]` (replicas sharing a bucket; endpoint and
    /// credentials from the AWS environment).
    pub location: String,
    /// Bytes of artifacts kept; past it the versions served least recently
    /// are evicted (and fetched and verified again on demand). 0: no cap.
    /// (Embedded store only; a bucket replica's local tier has `local_max_bytes`.)
    pub max_bytes: u64,
    /// With a bucket: bytes of this replica's local tier (recently served,
    /// verified copies); past it the least recently served are dropped from
    /// it (the bucket keeps them). 0: no cap.
    pub local_max_bytes: u64,
    /// With a bucket: the longest one bucket call may wait (a stalled bucket
    /// then costs a miss a 504, not a hang).
    pub timeout_secs: u64,
    /// With a bucket: seconds between re-reads of the shared trust state,
    /// so a fork marker another replica wrote stops this one.
    pub poll_secs: u64,
    /// With a bucket: this replica's name there (its audit trail's folder);
    /// empty: the host name and a hash of the data dir.
    pub replica: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            location: String::new(),
            max_bytes: 0,
            local_max_bytes: 10 << 30,
            timeout_secs: 10,
            poll_secs: 2,
            replica: String::new(),
        }
    }
}

impl StoreConfig {
    /// The parsed location.
    pub fn location(&self) -> Result<crate::store::Location, String> {
        self.location.parse()
    }

    /// The cap eviction enforces: the store's, or a replica's local tier's.
    pub fn evict_cap(&self) -> u64 {
        match self.location() {
            Ok(crate::store::Location::S3 { .. }) => self.local_max_bytes,
            _ => self.max_bytes,
        }
    }
}

/// `store = "s3://…"` or a `[store]` table.
fn store_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StoreConfig, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Location(String),
        Table(StoreConfig),
    }
    Ok(match Either::deserialize(d)? {
        Either::Location(location) => StoreConfig {
            location,
            ..StoreConfig::default()
        },
        Either::Table(t) => t,
    })
}

/// Watching the checksum database's head (which dates new records, see
/// `trust_watch`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Seconds between fetches of the database's signed head; 0 turns it off.
    pub head_interval_secs: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            head_interval_secs: 30,
        }
    }
}

/// The audit trail (see `crate::audit`): how long records are kept, and its writer's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long records are kept (humantime: `400d`, `90d`, `12h`).
    pub retention: String,
    /// Records queued for the writer at most; when full, a hit waits briefly
    /// and is then dropped (counted), a miss or refusal waits.
    pub queue: usize,
    /// Milliseconds between flushes of batched hit records (at most 1000):
    /// the most a crash can lose.
    pub flush_ms: u64,
    /// With a shared bucket: seconds between uploads of the trail's changed
    /// files, so `audit who` on any replica sees the others' records.
    pub publish_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention: "400d".into(),
            queue: 65536,
            flush_ms: 500,
            publish_secs: 10,
        }
    }
}

impl AuditConfig {
    /// The retention as a duration; an error names the key.
    pub fn retention(&self) -> Result<Duration, crate::audit::AuditError> {
        humantime::parse_duration(&self.retention).map_err(|e| {
            crate::audit::AuditError::Usage(format!("audit.retention {:?}: {e}", self.retention))
        })
    }
}

/// `origin check` inside the server (see `admin::origin`): off unless `check_every` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginConfig {
    /// How often cached versions are re-fetched from their origin (humantime:
    /// `24h`); empty: never (the `origin check` command still works).
    pub check_every: String,
    /// Where from, GOPROXY syntax (`direct` runs the go command).
    pub list: String,
    /// Which modules (GOPRIVATE syntax); empty: every cached module.
    pub pattern: String,
    /// Pause between two versions, in milliseconds: the rate limit on the origin.
    pub pause_ms: u64,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            check_every: String::new(),
            list: "direct".into(),
            pattern: String::new(),
            pause_ms: 1000,
        }
    }
}

impl OriginConfig {
    /// The interval, if set; an error names the key.
    pub fn check_every(&self) -> Result<Option<Duration>, ConfigError> {
        match self.check_every.trim() {
            "" => Ok(None),
            s => humantime::parse_duration(s)
                .map(Some)
                .map_err(|e| ConfigError::Origin(s.to_string(), e.to_string())),
        }
    }
}

/// The admin API over HTTP (`/admin/`), for remote operators. The local
/// admin socket (`<data-dir>/admin.sock`, mode 0600) needs no token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// SHA-256 (hex) of each admin bearer token; empty: no `/admin/` over HTTP.
    pub bearer_sha256: Vec<String>,
    /// Largest admin request accepted, in bytes (socket and HTTP).
    pub max_request_bytes: usize,
    /// Largest answer a running server builds for one admin request, in bytes.
    pub max_response_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            bearer_sha256: Vec::new(),
            max_request_bytes: 64 << 10,
            max_response_bytes: 256 << 20,
        }
    }
}

/// Serving HTTPS: both files set turns TLS on; neither leaves plain HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }
}

/// Client authentication. Secrets are configured as SHA-256 hex digests, so
/// the file never holds a usable credential; empty lists mean no authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// SHA-256 (hex) of each accepted bearer token.
    pub bearer_sha256: Vec<String>,
    /// Basic-auth users: name → SHA-256 (hex) of the password.
    pub basic_sha256: std::collections::BTreeMap<String, String>,
}

impl AuthConfig {
    pub fn enabled(&self) -> bool {
        !self.bearer_sha256.is_empty() || !self.basic_sha256.is_empty()
    }
}

/// Size limits on what is read from upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest module zip accepted (Go's own limit is 500 MiB).
    pub max_zip_bytes: u64,
    /// Largest go.mod accepted (Go's limit is 16 MiB).
    pub max_mod_bytes: u64,
    /// Largest `.info`, `list`, `@latest` or sumdb response accepted.
    pub max_meta_bytes: u64,
    /// Misses (fetch and verify) running at once; more wait in a queue.
    pub max_misses: usize,
    /// Misses one client address may have running; more from it queue (0: no limit).
    pub max_misses_per_client: usize,
    /// Seconds a miss may wait in the queue before it is answered 503.
    pub miss_queue_secs: u64,
    /// `Retry-After` seconds sent with a 503 for load.
    pub retry_after_secs: u64,
    /// Bytes all downloads being verified may hold in the spool together.
    pub max_spool_bytes: u64,
    /// A zip miss up to this size is downloaded, checked and hashed in
    /// memory; a larger one is spooled to `data_dir/tmp` (see [`crate::landing`]).
    pub zip_in_memory_bytes: u64,
    /// Client connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Seconds `/readyz` reuses its store write probe (at most one run, and
    /// so one pair of fsyncs, per interval however often it is probed).
    pub readyz_probe_secs: u64,
}

/// Network timeouts towards upstream and the checksum database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Seconds to establish a connection.
    pub connect_secs: u64,
    /// Seconds a small request (info, mod, list, lookup, tile) may take in all.
    pub request_secs: u64,
    /// Seconds a read may stall while streaming a zip.
    pub read_secs: u64,
    /// Seconds a client may take to send its request headers (slowloris guard).
    pub client_header_secs: u64,
    /// Seconds a client may leave a response unread before it is dropped.
    pub client_stall_secs: u64,
}

/// How long clients and modgate may keep what it serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// `Cache-Control: max-age` for the immutable `.info`, `.mod`, `.zip`.
    pub immutable_max_age_secs: u64,
    /// How long a `list` or `@latest` answer is reused before asking upstream again.
    pub list_ttl_secs: u64,
    /// MiB of small proven blobs (`.info`, `.mod`) kept in memory to serve hits
    /// without disk I/O; 0 reads and hashes them from disk on every hit.
    pub memory_mib: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./modgate-data"),
            upstream: "https://proxy.golang.org".into(),
            private: String::new(),
            private_upstream: String::new(),
            sumdb: "sum.golang.org".into(),
            offline: false,
            log_format: "text".into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            cache: CacheConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            store: StoreConfig::default(),
            policy: None,
            watch: WatchConfig::default(),
            audit: AuditConfig::default(),
            admin: AdminConfig::default(),
            origin: OriginConfig::default(),
            upstream_auth: Vec::new(),
        }
    }
}

impl Limits {
    /// The module-zip rules' size limits: the configured ones (x/mod's by
    /// default), which bound the decompression too.
    pub fn zip(&self) -> crate::modzip::ZipLimits {
        crate::modzip::ZipLimits {
            max_zip_file: self.max_zip_bytes,
            max_uncompressed: self.max_zip_bytes,
            max_go_mod: self.max_mod_bytes,
            ..crate::modzip::ZipLimits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_zip_bytes: 500 << 20,
            max_mod_bytes: 16 << 20,
            max_meta_bytes: 4 << 20,
            max_misses: 64,
            max_misses_per_client: 32,
            miss_queue_secs: 10,
            retry_after_secs: 5,
            max_spool_bytes: 4 << 30,
            zip_in_memory_bytes: 1 << 20,
            max_connections: 4096,
            readyz_probe_secs: 5,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_secs: 10,
            request_secs: 60,
            read_secs: 60,
            client_header_secs: 30,
            client_stall_secs: 60,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            immutable_max_age_secs: 365 * 24 * 3600,
            list_ttl_secs: 60,
            memory_mib: crate::store::embedded::DEFAULT_MEMORY_BYTES >> 20,
        }
    }
}

/// A configuration problem, named precisely enough to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid upstream {0:?}: {1}")]
    Upstream(String, String),
    #[error("invalid sumdb {0:?}: {1}")]
    Sumdb(String, String),
    #[error("invalid private {0:?}: {1}")]
    Private(String, String),
    #[error("invalid origin.check_every {0:?}: {1}")]
    Origin(String, String),
    #[error("[[upstream_auth]] for {0:?}: {1}")]
    UpstreamAuth(String, String),
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text over the defaults.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.connect_secs)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.request_secs)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.read_secs)
    }
    pub fn client_header_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.client_header_secs)
    }
    pub fn client_stall_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.client_stall_secs)
    }

    /// The parsed checksum database spec.
    pub fn sumdb_spec(&self) -> Result<SumdbSpec, ConfigError> {
        SumdbSpec::parse(&self.sumdb)
    }
}

/// A checksum database: its name, verifier key and base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbSpec {
    pub name: String,
    pub vkey: String,
    pub url: String,
}

impl SumdbSpec {
    /// Parses GOSUMDB syntax: `sum.golang.org`, `name+hash+key`, or `name+hash+key URL`.
    /// `off` is refused: modgate exists to verify.
    pub fn parse(spec: &str) -> Result<SumdbSpec, ConfigError> {
        let err = |m: &str| ConfigError::Sumdb(spec.to_string(), m.to_string());
        let mut fields = spec.split_whitespace();
        let key = fields.next().ok_or_else(|| err("empty"))?;
        let url = fields.next();
        if fields.next().is_some() {
            return Err(err("expected `name+key [URL]`"));
        }
        if key == "off" {
            return Err(err("modgate always verifies; `off` is not supported"));
        }
        let (vkey, default_url) = match key {
            "sum.golang.org" => (SUM_GOLANG_ORG_KEY.to_string(), "https://sum.golang.org"),
            "sum.golang.google.cn" => (
                SUM_GOLANG_ORG_KEY.to_string(),
                "https://sum.golang.google.cn",
            ),
            k if k.contains('+') => (k.to_string(), ""),
            _ => {
                return Err(err(
                    "unknown checksum database: give its key as `name+hash+key`",
                ));
            }
        };
        let name = vkey.split('+').next().unwrap_or_default().to_string();
        let url = match url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if !default_url.is_empty() => default_url.to_string(),
            None => format!("https://{name}"),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err("URL must start with http:// or https://"));
        }
        Ok(SumdbSpec { name, vkey, url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_file_parses_to_defaults() {
        let c = Config::from_toml(REFERENCE_TOML).expect("reference config parses");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.data_dir, d.data_dir);
        assert_eq!(c.upstream, d.upstream);
        assert_eq!(c.private, d.private);
        assert_eq!(c.private_upstream, d.private_upstream);
        assert_eq!(c.origin.check_every, d.origin.check_every);
        assert_eq!(c.origin.list, d.origin.list);
        assert_eq!(c.origin.pattern, d.origin.pattern);
        assert_eq!(c.origin.pause_ms, d.origin.pause_ms);
        assert_eq!(c.sumdb, d.sumdb);
        assert_eq!(c.limits.max_zip_bytes, d.limits.max_zip_bytes);
        assert_eq!(c.cache.list_ttl_secs, d.cache.list_ttl_secs);
        assert_eq!(c.offline, d.offline);
        assert_eq!(c.log_format, d.log_format);
        assert_eq!(c.limits.max_mod_bytes, d.limits.max_mod_bytes);
        assert_eq!(c.limits.max_meta_bytes, d.limits.max_meta_bytes);
        assert_eq!(c.timeouts.connect_secs, d.timeouts.connect_secs);
        assert_eq!(c.timeouts.request_secs, d.timeouts.request_secs);
        assert_eq!(c.timeouts.read_secs, d.timeouts.read_secs);
        assert_eq!(
            c.cache.immutable_max_age_secs,
            d.cache.immutable_max_age_secs
        );
        assert!(!c.tls.enabled() && !c.auth.enabled());
        assert_eq!(c.limits.max_misses, d.limits.max_misses);
        assert_eq!(
            c.limits.max_misses_per_client,
            d.limits.max_misses_per_client
        );
        assert_eq!(c.limits.miss_queue_secs, d.limits.miss_queue_secs);
        assert_eq!(c.limits.retry_after_secs, d.limits.retry_after_secs);
        assert_eq!(c.limits.max_spool_bytes, d.limits.max_spool_bytes);
        assert_eq!(c.limits.zip_in_memory_bytes, d.limits.zip_in_memory_bytes);
        assert_eq!(c.limits.max_connections, d.limits.max_connections);
        assert_eq!(c.limits.readyz_probe_secs, d.limits.readyz_probe_secs);
        assert_eq!(c.store.max_bytes, d.store.max_bytes);
        assert_eq!(c.policy, d.policy);
        assert_eq!(c.watch.head_interval_secs, d.watch.head_interval_secs);
        assert_eq!(c.audit.retention, d.audit.retention);
        assert_eq!(c.audit.queue, d.audit.queue);
        assert_eq!(c.audit.flush_ms, d.audit.flush_ms);
        assert_eq!(c.admin.bearer_sha256, d.admin.bearer_sha256);
        assert_eq!(c.admin.max_request_bytes, d.admin.max_request_bytes);
        assert_eq!(c.admin.max_response_bytes, d.admin.max_response_bytes);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("listen = \"x\"\nlisten_adress = 1\n").unwrap_err();
        assert!(e.contains("listen_adress"), "{e}");
    }

    #[test]
    fn sumdb_specs() {
        let s = SumdbSpec::parse("sum.golang.org").unwrap();
        assert_eq!(s.name, "sum.golang.org");
        assert_eq!(s.url, "https://sum.golang.org");
        let s = SumdbSpec::parse("x.test+abcd1234+AAAA http://127.0.0.1:9/sumdb/x.test/").unwrap();
        assert_eq!(s.name, "x.test");
        assert_eq!(s.vkey, "x.test+abcd1234+AAAA");
        assert_eq!(s.url, "http://127.0.0.1:9/sumdb/x.test");
        assert!(SumdbSpec::parse("off").is_err());
        assert!(SumdbSpec::parse("unknown.example").is_err());
        assert!(SumdbSpec::parse("a+b+c ftp://x").is_err());
    }
}
