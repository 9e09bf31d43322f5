//! The heart of modgate: a cache miss, top to bottom — look up, fetch, verify, store, serve.
//!
//! ```text
//! .mod  miss: fetch go.mod ─► sumdb lookup (signed note, record proven in the
//!             trusted tree) ─► h1(go.mod) == lookup's go.mod hash ─► commit
//! .zip  miss: .mod first (verified as above) ─► stream zip to a spool file
//!             (hashing, size-bounded) ─► module-zip rules + h1 in one pass
//!             (zip's go.mod must equal the .mod) ─► h1 == lookup's hash ─► commit
//! .info miss: fetch ─► its Version must be the one asked ─► the sumdb must
//!             know that version ─► commit
//! ```
//!
//! Invariant: nothing reaches the store without a proof against a trusted
//! tree head, and nothing is served that is not in the store (apart from
//! list/@latest metadata and sumdb passthrough). Every refusal is logged on
//! the `modgate::security` target and answered 403.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::metrics::Metrics;
use crate::module::semver;
use crate::modzip;
use crate::protocol::{Kind, ModPath, ModVersion};
use crate::store::{
    Blob, Entry, Meta, Spool, Store, StoreError, Verification, artifact_key, now_secs,
};
use crate::sumdb::client::{Client, ClientError};
use crate::upstream::{Upstream, UpstreamError};

/// What the checksum database proved about one module version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lookup {
    pub id: i64,
    pub zip_h1: Option<String>,
    pub mod_h1: String,
    pub tree_size: i64,
    pub tree_hash: String,
    /// The lookup response exactly as verified, served to `go` clients by
    /// `/sumdb/<name>/lookup/...` (absent in entries cached before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Whether an answer came from the store or needed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Hit,
    Miss,
    /// list/@latest served from an expired cache entry because upstream failed.
    Stale,
}

impl Cache {
    pub fn as_str(self) -> &'static str {
        match self {
            Cache::Hit => "hit",
            Cache::Miss => "miss",
            Cache::Stale => "stale",
        }
    }
}

/// A cached list or @latest answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedMeta {
    fetched_at: u64,
    body: String,
}

pub struct Pipeline {
    store: Arc<dyn Store>,
    upstream: Upstream,
    sumdb: Arc<Client>,
    cfg: Arc<Config>,
    artifacts: Flights<Entry>,
    lookups: Flights<Lookup>,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        sumdb: Arc<Client>,
        cfg: Arc<Config>,
    ) -> Arc<Pipeline> {
        Arc::new(Pipeline {
            store,
            upstream,
            sumdb,
            cfg,
            artifacts: Flights::default(),
            lookups: Flights::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn sumdb(&self) -> &Arc<Client> {
        &self.sumdb
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The server's metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.upstream.metrics()
    }

    /// Misses being fetched and verified right now (for metrics).
    pub fn in_flight(&self) -> usize {
        self.artifacts.len()
    }

    /// An artifact ready to stream: from the store, or through a verified miss.
    /// A blob found corrupt on disk is dropped from the index and fetched and
    /// verified again rather than served.
    pub async fn open(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
    ) -> Result<(Entry, Blob, Cache)> {
        let (entry, cache) = self.artifact(mv, kind).await?;
        match self.store.open(&entry).await {
            Ok(blob) => Ok((entry, blob, cache)),
            Err(StoreError::Corrupt { digest, reason }) => {
                tracing::error!(module = %mv.path(), version = %mv.version(), kind = kind.ext(),
                    %digest, %reason, "stored blob corrupt; refetching");
                if self.store.remove(mv, kind).await? {
                    self.metrics().stored(-1, -(entry.size as i64));
                }
                let (entry, cache) = self.artifact(mv, kind).await?;
                let blob = self.store.open(&entry).await?;
                Ok((entry, blob, cache))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The index entry of a verified artifact, fetching and verifying it on a miss.
    pub async fn artifact(self: &Arc<Self>, mv: &ModVersion, kind: Kind) -> Result<(Entry, Cache)> {
        if let Some(e) = self.store.entry(mv, kind).await? {
            return Ok((e, Cache::Hit));
        }
        if self.cfg.offline {
            return Err(Error::Offline(format!("{mv} {}", kind.ext())));
        }
        let this = self.clone();
        let owned = mv.clone();
        let entry = self
            .artifacts
            .run(&artifact_key(mv, kind), move || async move {
                this.fetch_verify_store(&owned, kind).await
            })
            .await?;
        Ok((entry, Cache::Miss))
    }

    /// One miss. Runs once per artifact however many clients asked (see [`Flights`]).
    async fn fetch_verify_store(self: Arc<Self>, mv: &ModVersion, kind: Kind) -> Result<Entry> {
        // A flight that finished just before ours started may have stored it.
        if let Some(e) = self.store.entry(mv, kind).await? {
            return Ok(e);
        }
        // After a fork only what was proven before is served: refuse at once
        // rather than fetch from upstream what cannot be verified.
        if self.sumdb.is_forked() && self.cached_lookup(mv).await?.is_none() {
            return Err(self.sumdb_error(mv, ClientError::Forked));
        }
        match kind {
            Kind::Mod => self.miss_mod(mv).await,
            Kind::Zip => self.miss_zip(mv).await,
            Kind::Info => self.miss_info(mv).await,
        }
    }

    async fn miss_mod(self: &Arc<Self>, mv: &ModVersion) -> Result<Entry> {
        let limits = &self.cfg.limits;
        let data = self
            .upstream
            .get(&mv.artifact_path(Kind::Mod), limits.max_mod_bytes)
            .await
            .map_err(|e| upstream_error(mv, Kind::Mod, e))?;
        let lookup = self.lookup(mv).await?;
        let got = modzip::hash_go_mod(&data);
        if got != lookup.mod_h1 {
            return Err(self.refuse(
                mv,
                Kind::Mod,
                "mismatch",
                format!(
                    "go.mod checksum mismatch: upstream served {got}, {} has {}",
                    self.sumdb.name(),
                    lookup.mod_h1
                ),
            ));
        }
        let entry = self.entry(mv, Kind::Mod, &data, got, &lookup);
        Ok(self.verified(self.store.commit_bytes(&data, entry).await?))
    }

    async fn miss_zip(self: &Arc<Self>, mv: &ModVersion) -> Result<Entry> {
        // The zip's go.mod must equal the verified .mod, so that comes first.
        let (mod_entry, _) = self.mod_first(mv).await?;
        let go_mod = self.read_small(&mod_entry).await?;
        let lookup = self.lookup(mv).await?;
        let Some(want) = lookup.zip_h1.clone() else {
            return Err(self.refuse(
                mv,
                Kind::Zip,
                "no_zip_hash",
                format!("{} has no zip hash for this version", self.sumdb.name()),
            ));
        };

        // Stream to a spool file; the Spool guard deletes it on any early return.
        let (path, mut file) = self.store.spool_file().await?;
        let mut spool = Spool::new(path, String::new(), 0);
        let (size, digest) = self
            .upstream
            .download(
                &mv.artifact_path(Kind::Zip),
                self.cfg.limits.max_zip_bytes,
                &mut file,
            )
            .await
            .map_err(|e| upstream_error(mv, Kind::Zip, e))?;
        drop(file);
        spool.size = size;
        spool.digest = digest;

        // Zip rules and h1 in one streaming pass, off the async runtime.
        let (p, m, v) = (
            spool.path.clone(),
            mv.path().to_string(),
            mv.version().to_string(),
        );
        // The configured limits (x/mod's by default) bound the decompression too.
        let limits = modzip::ZipLimits {
            max_zip_file: self.cfg.limits.max_zip_bytes,
            max_uncompressed: self.cfg.limits.max_zip_bytes,
            max_go_mod: self.cfg.limits.max_mod_bytes,
            ..modzip::ZipLimits::default()
        };
        let checked = tokio::task::spawn_blocking(move || {
            modzip::check_zip_with_limits(&p, &m, &v, Some(&go_mod), &limits)
        })
        .await
        .map_err(|e| Error::Internal(format!("zip check task: {e}")))?
        .map_err(|e| {
            self.refuse(
                mv,
                Kind::Zip,
                "zip_rule",
                format!("invalid module zip: {e}"),
            )
        })?;
        if checked.h1 != want {
            return Err(self.refuse(
                mv,
                Kind::Zip,
                "mismatch",
                format!(
                    "zip checksum mismatch: upstream served {}, {} has {want}",
                    checked.h1,
                    self.sumdb.name()
                ),
            ));
        }
        let entry = Entry {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: Kind::Zip.ext().to_string(),
            digest: spool.digest.clone(),
            size: spool.size,
            verification: self.verification(want, &lookup),
        };
        Ok(self.verified(self.store.commit(spool, entry).await?))
    }

    /// `artifact(mv, Mod)` behind a boxed `Send` future: the zip miss needs
    /// the verified `.mod`, and the recursion must be boxed to have a type.
    fn mod_first<'a>(
        self: &'a Arc<Self>,
        mv: &'a ModVersion,
    ) -> BoxFuture<'a, Result<(Entry, Cache)>> {
        Box::pin(self.artifact(mv, Kind::Mod))
    }

    async fn miss_info(self: &Arc<Self>, mv: &ModVersion) -> Result<Entry> {
        let data = self
            .upstream
            .get(
                &mv.artifact_path(Kind::Info),
                self.cfg.limits.max_meta_bytes,
            )
            .await
            .map_err(|e| upstream_error(mv, Kind::Info, e))?;
        let info = parse_info(&data).map_err(|reason| {
            tracing::warn!(module = %mv.path(), version = %mv.version(), %reason, "bad .info from upstream");
            Error::UpstreamUnavailable(format!("{mv}: upstream served an invalid .info: {reason}"))
        })?;
        if info.version != mv.version() {
            tracing::warn!(module = %mv.path(), version = %mv.version(), served = %info.version,
                "upstream .info names another version");
            return Err(Error::UpstreamUnavailable(format!(
                "{mv}: upstream .info names version {:?}",
                info.version
            )));
        }
        // Only versions the checksum database knows are served.
        let lookup = self.lookup(mv).await?;
        let entry = self.entry(mv, Kind::Info, &data, String::new(), &lookup);
        Ok(self.verified(self.store.commit_bytes(&data, entry).await?))
    }

    /// The verified lookup of a module version: from the store, or proven
    /// through the sumdb client (one lookup serves `.info`, `.mod` and `.zip`).
    pub async fn lookup(self: &Arc<Self>, mv: &ModVersion) -> Result<Lookup> {
        if let Some(l) = self.cached_lookup(mv).await? {
            return Ok(l);
        }
        self.verify_lookup(mv).await
    }

    /// The lookup response for `/sumdb/<name>/lookup/<mv>`, byte for byte as
    /// the database served it and modgate verified it (signature, inclusion,
    /// consistency): from the store when verified before — even while the
    /// database is down or forked — else fetched and verified now.
    pub async fn lookup_response(self: &Arc<Self>, mv: &ModVersion) -> Result<(Bytes, Cache)> {
        if let Some(raw) = self.cached_lookup(mv).await?.and_then(|l| l.raw) {
            return Ok((Bytes::from(raw), Cache::Hit));
        }
        if self.cfg.offline {
            return Err(Error::Offline(format!("{mv} checksum database lookup")));
        }
        let l = self.verify_lookup(mv).await?;
        let raw = l.raw.ok_or_else(|| {
            Error::Internal(format!("{mv}: verified lookup response is not UTF-8"))
        })?;
        Ok((Bytes::from(raw), Cache::Miss))
    }

    /// The fork state of the checksum database (`None` while it is trusted):
    /// for `/readyz` and metrics.
    pub fn fork_status(&self) -> Option<crate::trust::ForkStatus> {
        if !self.sumdb.is_forked() {
            return None;
        }
        let name = self.sumdb.name();
        Some(crate::trust::ForkStatus {
            sumdb: name.to_string(),
            marker: self.sumdb.fork_marker().unwrap_or_else(|| {
                crate::sumdb::client::ForkMarker::parse(b"(fork marker not loaded)")
            }),
            evidence: crate::trust::evidence_dirs(&self.cfg.data_dir, name),
        })
    }

    fn lookup_key(&self, mv: &ModVersion) -> String {
        format!("{}/{mv}", self.sumdb.name())
    }

    async fn cached_lookup(&self, mv: &ModVersion) -> Result<Option<Lookup>> {
        Ok(self
            .store
            .meta_get(Meta::Lookup, &self.lookup_key(mv))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// Proves a lookup through the sumdb client and caches it (coalesced).
    async fn verify_lookup(self: &Arc<Self>, mv: &ModVersion) -> Result<Lookup> {
        let key = self.lookup_key(mv);
        let this = self.clone();
        let owned = mv.clone();
        let k = key.clone();
        self.lookups
            .run(&key, move || async move {
                let v = this
                    .sumdb
                    .lookup(owned.path(), owned.version())
                    .await
                    .map_err(|e| this.sumdb_error(&owned, e))?;
                let l = Lookup {
                    id: v.id,
                    zip_h1: v.zip_h1,
                    mod_h1: v.mod_h1,
                    tree_size: v.tree.n,
                    tree_hash: v.tree.hash.to_string(),
                    raw: String::from_utf8(v.raw).ok(),
                };
                let raw = serde_json::to_vec(&l).map_err(|e| Error::Internal(e.to_string()))?;
                this.store.meta_put(Meta::Lookup, &k, &raw).await?;
                Ok(l)
            })
            .await
    }

    /// `list`: upstream's versions merged with the cached ones, reused for
    /// `list_ttl_secs`, served stale when upstream fails.
    pub async fn list(self: &Arc<Self>, m: &ModPath) -> Result<(Bytes, Cache)> {
        let local = self.cached_versions(m).await?;
        let (upstream, cache) = self
            .cached_meta(
                m,
                "list",
                &format!("{}/@v/list", m.escaped()),
                !local.is_empty(),
            )
            .await?;
        let mut versions: Vec<String> = upstream
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|v| semver::is_valid(v))
            .map(str::to_string)
            .chain(local)
            .collect();
        versions.sort_by(|a, b| semver::compare(a, b));
        versions.dedup();
        let mut body = versions.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        Ok((Bytes::from(body), cache))
    }

    /// `@latest`: upstream's answer, reused and served stale like `list`;
    /// offline, the newest cached version's `.info`.
    pub async fn latest(self: &Arc<Self>, m: &ModPath) -> Result<(Bytes, Cache)> {
        if self.cfg.offline {
            let mut versions = self.cached_versions(m).await?;
            versions.sort_by(|a, b| semver::compare(a, b));
            for v in versions.iter().rev() {
                let Ok(mv) = ModVersion::new(m.as_str(), v) else {
                    continue;
                };
                if let Some(e) = self.store.entry(&mv, Kind::Info).await? {
                    return Ok((Bytes::from(self.read_small(&e).await?), Cache::Hit));
                }
            }
            return Err(Error::Offline(format!("{m}@latest")));
        }
        let (body, cache) = self
            .cached_meta(m, "latest", &format!("{}/@latest", m.escaped()), false)
            .await?;
        parse_info(body.as_bytes()).map_err(|r| {
            Error::UpstreamUnavailable(format!("{m}: upstream served an invalid @latest: {r}"))
        })?;
        Ok((Bytes::from(body), cache))
    }

    /// A non-canonical `.info` query (`@v/master.info`): resolved upstream,
    /// passed through after checking it names a valid version, never cached.
    pub async fn info_query(self: &Arc<Self>, m: &ModPath, query: &str) -> Result<Bytes> {
        if self.cfg.offline {
            return Err(Error::Offline(format!("{m}@{query}")));
        }
        let esc =
            crate::module::escape_version(query).map_err(|e| Error::BadRequest(e.to_string()))?;
        let data = self
            .upstream
            .get(
                &format!("{}/@v/{esc}.info", m.escaped()),
                self.cfg.limits.max_meta_bytes,
            )
            .await
            .map_err(|e| upstream_meta_error(m, e))?;
        parse_info(&data).map_err(|r| {
            Error::UpstreamUnavailable(format!(
                "{m}@{query}: upstream served an invalid .info: {r}"
            ))
        })?;
        Ok(data)
    }

    /// Reads a list/@latest answer through the TTL cache. `have_local` says
    /// there is something to serve even if upstream knows nothing.
    async fn cached_meta(
        &self,
        m: &ModPath,
        what: &str,
        upstream_path: &str,
        have_local: bool,
    ) -> Result<(String, Cache)> {
        let key = format!("{what}/{m}");
        let cached: Option<CachedMeta> = self
            .store
            .meta_get(Meta::List, &key)
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        if self.cfg.offline {
            return match cached {
                Some(c) => Ok((c.body, Cache::Stale)),
                None if have_local => Ok((String::new(), Cache::Hit)),
                None => Err(Error::Offline(format!("{m} {what}"))),
            };
        }
        if let Some(c) = &cached
            && now_secs().saturating_sub(c.fetched_at) < self.cfg.cache.list_ttl_secs
        {
            return Ok((c.body.clone(), Cache::Hit));
        }
        match self
            .upstream
            .get(upstream_path, self.cfg.limits.max_meta_bytes)
            .await
        {
            Ok(data) => {
                let body = String::from_utf8(data.to_vec()).map_err(|_| {
                    Error::UpstreamUnavailable(format!("{m}: upstream {what} is not UTF-8"))
                })?;
                let c = CachedMeta {
                    fetched_at: now_secs(),
                    body,
                };
                let raw = serde_json::to_vec(&c).map_err(|e| Error::Internal(e.to_string()))?;
                self.store.meta_put(Meta::List, &key, &raw).await?;
                Ok((c.body, Cache::Miss))
            }
            Err(e) if e.is_not_found() && have_local => Ok((String::new(), Cache::Miss)),
            Err(e) if e.is_not_found() => Err(upstream_meta_error(m, e)),
            Err(e) => match cached {
                Some(c) => {
                    tracing::warn!(module = %m, what, error = %e, "upstream failed; serving stale answer");
                    Ok((c.body, Cache::Stale))
                }
                None if have_local => {
                    tracing::warn!(module = %m, what, error = %e, "upstream failed; serving cached versions only");
                    Ok((String::new(), Cache::Stale))
                }
                None => Err(upstream_meta_error(m, e)),
            },
        }
    }

    /// Versions of a module with at least one stored artifact.
    async fn cached_versions(&self, m: &ModPath) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .store
            .entries(&format!("{m}@"))
            .await?
            .into_iter()
            .filter(|e| e.module == m.as_str())
            .map(|e| e.version)
            .collect();
        v.dedup();
        Ok(v)
    }

    async fn read_small(&self, entry: &Entry) -> Result<Vec<u8>> {
        let mut blob = self.store.open(entry).await?;
        let mut buf = Vec::with_capacity(blob.size as usize);
        let limit = self
            .cfg
            .limits
            .max_mod_bytes
            .max(self.cfg.limits.max_meta_bytes);
        (&mut blob.reader)
            .take(limit)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        Ok(buf)
    }

    fn verification(&self, h1: String, lookup: &Lookup) -> Verification {
        Verification {
            h1,
            sumdb: self.sumdb.name().to_string(),
            record_id: lookup.id,
            tree_size: lookup.tree_size,
            tree_hash: lookup.tree_hash.clone(),
            verified_at: now_secs(),
        }
    }

    fn entry(
        &self,
        mv: &ModVersion,
        kind: Kind,
        data: &[u8],
        h1: String,
        lookup: &Lookup,
    ) -> Entry {
        use sha2::Digest;
        Entry {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: kind.ext().to_string(),
            digest: hex::encode(sha2::Sha256::digest(data)),
            size: data.len() as u64,
            verification: self.verification(h1, lookup),
        }
    }

    /// Counts a verified, committed artifact.
    fn verified(&self, e: Entry) -> Entry {
        self.metrics().verification("ok", "ok");
        self.metrics().stored(1, e.size as i64);
        e
    }

    /// Logs a security refusal and builds its 403; `label` is its metrics reason.
    fn refuse(&self, mv: &ModVersion, kind: Kind, label: &str, reason: String) -> Error {
        self.metrics().verification("refused", label);
        tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
            kind = kind.ext(), %reason, "refused: verification failed");
        Error::Security(format!("{mv}: {reason}"))
    }

    fn sumdb_error(&self, mv: &ModVersion, e: ClientError) -> Error {
        let name = self.sumdb.name();
        let m = self.metrics();
        if matches!(e, ClientError::Fork(_) | ClientError::Forked) {
            m.verification("refused", "fork");
            // The evidence itself was logged and saved by the client's ops;
            // the body stays one line so the go command shows all of it.
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                sumdb = name, "refused: checksum database presented a forked log");
            return Error::Security(format!("{mv}: {}", forked_message(name)));
        }
        if e.is_security() {
            let label = match e {
                ClientError::Note(_) => "bad_signature",
                ClientError::Lookup(_) => "bad_lookup",
                _ => "bad_proof",
            };
            m.verification("refused", label);
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                sumdb = name, error = %e, "refused: checksum database verification failed");
            return Error::Security(format!("{mv}: {name}: {e}"));
        }
        match e {
            // Our own disk, not the checksum database.
            ClientError::Storage(m) => {
                Error::Storage(format!("{mv}: checksum database state: {m}"))
            }
            ClientError::NotFound(_) => {
                m.verification("refused", "not_in_sumdb");
                tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                    sumdb = name, error = %e, "refused: not in the checksum database");
                Error::Security(format!("{mv}: not in the checksum database {name}: {e}"))
            }
            e => {
                m.verification("error", "sumdb_unreachable");
                tracing::warn!(module = %mv.path(), version = %mv.version(), sumdb = name, error = %e,
                    "checksum database unavailable");
                let msg = format!(
                    "{mv}: cannot be verified now: checksum database {name} unavailable: {e}"
                );
                if e.to_string().contains("timed out") {
                    Error::Timeout(msg)
                } else {
                    Error::UpstreamUnavailable(msg)
                }
            }
        }
    }
}

/// Why everything new is refused after a fork (one line: the go command shows all of it).
pub fn forked_message(sumdb: &str) -> String {
    format!(
        "checksum database {sumdb} presented a forked log (server misbehavior); \
         modgate refuses new modules until an operator runs `modgate trust reset --sumdb {sumdb}`"
    )
}

/// The fields of a `.info` that are checked.
#[derive(Debug, Deserialize)]
struct Info {
    #[serde(rename = "Version")]
    version: String,
}

fn parse_info(data: &[u8]) -> std::result::Result<Info, String> {
    let info: Info = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if !semver::is_valid(&info.version) {
        return Err(format!("Version {:?} is not a valid version", info.version));
    }
    Ok(info)
}

fn upstream_error(mv: &ModVersion, kind: Kind, e: UpstreamError) -> Error {
    let what = format!("{mv} {}", kind.ext());
    tracing::warn!(module = %mv.path(), version = %mv.version(), kind = kind.ext(), error = %e, "upstream fetch failed");
    upstream_to_error(what, e)
}

fn upstream_meta_error(m: &ModPath, e: UpstreamError) -> Error {
    upstream_to_error(m.to_string(), e)
}

fn upstream_to_error(what: String, e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound {
            status: 410, body, ..
        } => Error::Gone(format!("{what}: {body}")),
        UpstreamError::NotFound { body, .. } => Error::NotFound(format!("{what}: {body}")),
        UpstreamError::Off => Error::NotFound(format!("{what}: no upstream configured")),
        UpstreamError::Timeout { .. } => Error::Timeout(format!("{what}: upstream timed out: {e}")),
        // Our own disk failed, not upstream: say so (507 when it is full).
        UpstreamError::Spool(kind, _) => Error::storage(kind, format!("{what}: {e}")),
        e => Error::UpstreamUnavailable(format!("{what}: upstream failed: {e}")),
    }
}
