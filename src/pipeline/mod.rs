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
//! Private modules (`private`, see [`crate::routes`]) take the same steps with
//! their own upstream, and the authority step (`authority.rs`) checks or makes
//! the version's pin instead of asking the checksum database.
//!
//! Invariant: nothing reaches the store without a proof against a trusted
//! tree head, and nothing is served that is not in the store (apart from
//! list/@latest metadata and sumdb passthrough). Every refusal is logged on
//! the `modgate::security` target and answered 403.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::flight::{Flights, Progress};
use crate::landing::{Landed, Landing};
use crate::metrics::Metrics;
use crate::module::semver;
use crate::modzip;
use crate::protocol::{Kind, ModVersion};
use crate::routes::Authority;
use crate::store::{Blob, Entry, Store, StoreError, Verification, artifact_key};
use crate::sumdb::client::Client;

mod authority;
mod gated;
mod listing;
mod lookup;
mod shared;

use crate::upstream::{Upstream, UpstreamError};
pub use authority::Pin;
pub use lookup::forked_message;

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

pub struct Pipeline {
    store: Arc<dyn Store>,
    /// Where each module is fetched from and who vouches for it.
    routes: crate::routes::Routes,
    sumdb: Arc<Client>,
    cfg: Arc<Config>,
    artifacts: Flights<Arc<Entry>>,
    lookups: Flights<Lookup>,
    /// Admission of misses and the spool's byte budget (see [`crate::limits`]).
    admission: crate::limits::Admission,
    /// `/readyz`'s store write probe, run at most once per interval.
    write_probe: crate::limits::Throttled,
    /// The store's size cap (`[store] max_bytes`, see [`crate::evict`]).
    evictor: Arc<crate::evict::Evictor>,
    /// The supply-chain gate, consulted by `artifact` (and list/@latest).
    gate: Arc<crate::gate::Gate>,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        sumdb: Arc<Client>,
        cfg: Arc<Config>,
    ) -> Arc<Pipeline> {
        Self::new_with_gate(store, upstream, sumdb, cfg, Arc::default())
    }

    /// [`Pipeline::new`] with a supply-chain gate (`server::build` makes it from the policy).
    pub fn new_with_gate(
        store: Arc<dyn Store>,
        upstream: Upstream,
        sumdb: Arc<Client>,
        cfg: Arc<Config>,
        gate: Arc<crate::gate::Gate>,
    ) -> Arc<Pipeline> {
        let routes = crate::routes::Routes::public_only(upstream);
        Self::new_routed(store, routes, sumdb, cfg, gate)
    }

    /// [`Pipeline::new_with_gate`] with private routes (`server::build`).
    pub fn new_routed(
        store: Arc<dyn Store>,
        routes: crate::routes::Routes,
        sumdb: Arc<Client>,
        cfg: Arc<Config>,
        gate: Arc<crate::gate::Gate>,
    ) -> Arc<Pipeline> {
        let upstream = routes.public();
        let admission = crate::limits::Admission::new(&cfg.limits, upstream.metrics().clone());
        let probe_every = std::time::Duration::from_secs(cfg.limits.readyz_probe_secs);
        let write_probe = crate::limits::Throttled::new(probe_every);
        let max_bytes = cfg.store.evict_cap();
        Arc::new(Pipeline {
            store,
            routes,
            sumdb,
            cfg,
            artifacts: Flights::default(),
            lookups: Flights::default(),
            admission,
            write_probe,
            evictor: Arc::new(crate::evict::Evictor::new(max_bytes)),
            gate,
        })
    }

    /// The supply-chain gate.
    pub fn gate(&self) -> &Arc<crate::gate::Gate> {
        &self.gate
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
        self.routes.public().metrics()
    }

    /// The store's size cap; [`crate::evict::Evictor::set_is_held`] marks
    /// versions never to evict.
    pub fn evictor(&self) -> &Arc<crate::evict::Evictor> {
        &self.evictor
    }

    /// `/readyz`'s store write probe (see [`crate::limits::Throttled`]).
    pub fn write_probe(&self) -> &crate::limits::Throttled {
        &self.write_probe
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
    ) -> Result<(Arc<Entry>, Blob, Cache)> {
        self.open_from(None, mv, kind).await
    }

    /// [`Pipeline::open`] for a client at `client` (its address counts
    /// against the per-client miss limit).
    pub async fn open_from(
        self: &Arc<Self>,
        client: Option<std::net::IpAddr>,
        mv: &ModVersion,
        kind: Kind,
    ) -> Result<(Arc<Entry>, Blob, Cache)> {
        let (entry, cache) = self.artifact_admitted(mv, kind, Some(client)).await?;
        match self.store.open(&entry).await {
            Ok(blob) => Ok((entry, blob, cache)),
            Err(StoreError::Corrupt { digest, reason }) => {
                tracing::error!(module = %mv.path(), version = %mv.version(), kind = kind.ext(),
                    %digest, %reason, "stored blob corrupt; refetching");
                if self.store.forget_local(mv, kind).await? {
                    self.metrics().stored(-1, -(entry.size as i64));
                }
                let (entry, cache) = self.artifact_admitted(mv, kind, Some(client)).await?;
                let blob = self.store.open(&entry).await?;
                Ok((entry, blob, cache))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The index entry of a verified artifact, fetching and verifying it on a miss.
    pub async fn artifact(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
    ) -> Result<(Arc<Entry>, Cache)> {
        self.artifact_admitted(mv, kind, Some(None)).await
    }

    /// [`Pipeline::artifact`], where a miss is admitted for `admit`'s client
    /// first (see [`crate::limits`]); `None`: it is part of a miss already
    /// admitted (a zip miss's `.mod`). This is the one place a miss starts.
    async fn artifact_admitted(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        admit: Option<Option<std::net::IpAddr>>,
    ) -> Result<(Arc<Entry>, Cache)> {
        // The supply-chain gate: the one place every .info/.mod/.zip passes,
        // cached or not, judged before a byte is served. A cached artifact is
        // judged with its checksum-database record (the release cooldown).
        if let Some(e) = self.store.entry(mv, kind).await? {
            self.admit_entry(mv, &e).await?;
            self.evictor.served(mv.path(), mv.version());
            return Ok((e, Cache::Hit));
        }
        // A miss: refused before upstream is asked if what is known refuses it.
        self.screen_miss(mv).await?;
        if self.cfg.offline {
            return Err(Error::Offline(format!("{mv} {}", kind.ext())));
        }
        let key = artifact_key(mv, kind);
        // Joining a miss already running needs no slot of its own.
        let waiter = match self.artifacts.join(&key) {
            Some(w) => w,
            None => {
                let permit = match admit {
                    Some(client) => Some(
                        self.admission
                            .admit(client, &format!("{mv} {}", kind.ext()))
                            .await?,
                    ),
                    None => None,
                };
                let this = self.clone();
                let owned = mv.clone();
                self.artifacts.start(&key, move |progress| async move {
                    // Cancelled (dropped) or failed, the permit lingers a
                    // moment (see `limits::CANCEL_LINGER`).
                    let r = this.fetch_verify_store(&owned, kind, progress).await;
                    if let (Ok(_), Some(p)) = (&r, permit) {
                        p.succeeded();
                    }
                    r
                })
            }
        };
        let entry = waiter.wait().await?;
        // Its record id is known only now (the lookup this miss proved): the
        // same verdict again, before a byte is served. A version the cooldown
        // holds stays cached (verified) and is served once it is old enough.
        let admitted = self.admit_entry(mv, &entry).await;
        // The module is in the store now: the typosquat check (which judged
        // it above, warning if it warns) never flags it again.
        self.gate.served_module(mv.path());
        admitted?;
        self.evictor.served(mv.path(), mv.version());
        if self.evictor.enabled() {
            self.evictor
                .after_commit(self.store.clone().evictable(), self.metrics().clone());
        }
        Ok((entry, Cache::Miss))
    }

    /// One miss. Runs once per artifact however many clients asked (see [`Flights`]);
    /// cancelled if they all leave before `progress` says it is far along.
    async fn fetch_verify_store(
        self: Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        progress: Progress,
    ) -> Result<Arc<Entry>> {
        // A flight that finished just before ours started may have stored it.
        if let Some(e) = self.store.entry(mv, kind).await? {
            return Ok(e);
        }
        let authority = self.route(mv.path())?.authority;
        if authority == Authority::ChecksumDatabase {
            self.refuse_if_forked(mv).await?;
        }
        let entry = match kind {
            Kind::Mod => self.miss_mod(mv, &progress).await,
            Kind::Zip => self.miss_zip(mv, &progress).await,
            Kind::Info => self.miss_info(mv, &progress).await,
        };
        entry.map(Arc::new)
    }

    async fn miss_mod(self: &Arc<Self>, mv: &ModVersion, progress: &Progress) -> Result<Entry> {
        let limits = &self.cfg.limits;
        let route = self.route(mv.path())?;
        // Another replica's published copy, verified as below, saves the fetch.
        if let Some(e) = self.shared_small(mv, Kind::Mod, route.authority).await? {
            return Ok(self.verified(e));
        }
        let path = mv.artifact_path(Kind::Mod);
        let fetch = route.upstream.get(&path, limits.max_mod_bytes);
        let data = self
            .beside_lookup(mv, Kind::Mod, route.authority, fetch)
            .await?;
        progress.far_along();
        let got = modzip::hash_go_mod(&data);
        let verification = self.vouch(mv, Kind::Mod, route.authority, got).await?;
        let entry = self.entry(mv, Kind::Mod, &data, verification);
        let stored = self.store.commit_bytes(&data, entry).await;
        Ok(self.verified(stored.map_err(|e| Error::storing(&format_args!("{mv} mod"), e))?))
    }

    async fn miss_zip(self: &Arc<Self>, mv: &ModVersion, progress: &Progress) -> Result<Entry> {
        // The zip's go.mod must equal the verified .mod, so that comes first.
        let (mod_entry, _) = self.mod_first(mv).await?;
        let go_mod = self.read_small(&mod_entry).await?;
        let route = self.route(mv.path())?;
        if let Some(e) = self.shared_zip(mv, &go_mod, route.authority).await? {
            return Ok(self.verified(e));
        }

        // Into memory if small, else a spool file, which its guard deletes on
        // any early return (see `crate::landing`).
        let mut landing = Landing::new(self.store.as_ref(), self.cfg.limits.zip_in_memory_bytes);
        // Held until the body is committed or dropped (this function's end).
        let mut charge = self.admission.spool_charge();
        route
            .upstream
            .download(
                &mv.artifact_path(Kind::Zip),
                self.cfg.limits.max_zip_bytes,
                &mut landing,
                &mut charge,
            )
            .await
            .map_err(|e| upstream_error(mv, Kind::Zip, e))?;
        let landed = landing
            .finish()
            .await
            .map_err(|e| Error::storage(e.kind(), format!("{mv} zip: spool: {e}")))?;
        let landed_in = match landed {
            Landed::Memory(_) => "memory",
            Landed::Spool(_) => "spool",
        };
        self.metrics()
            .zip_landings
            .with_label_values(&[landed_in])
            .inc();
        progress.far_along();

        // Three things at once, all finished before anything is committed: a
        // spool file's fsync (waiting on the disk), the SHA-256 (the content
        // address) and the zip rules + h1 in one streaming pass (one core
        // each, off the async runtime; hashing while downloading instead made
        // a fast upstream wait on the hash, BENCHMARKS.md).
        let check = landed.check_zip(mv.path(), mv.version(), Some(go_mod), self.cfg.limits.zip());
        let (synced, digest, checked) = tokio::join!(landed.sync(), landed.sha256(), check);
        let checked = checked?.map_err(|e| match e {
            // Reading our own spool file failed (the disk, not the zip's
            // content, which the check reports as format errors): a 5xx.
            modzip::ZipError::Io(e) if matches!(landed, Landed::Spool(_)) && disk_failed(&e) => {
                Error::storage(e.kind(), format!("{mv} zip: reading the spool: {e}"))
            }
            e => self.refuse(
                mv,
                Kind::Zip,
                "zip_rule",
                format!("invalid module zip: {e}"),
            ),
        })?;
        let verification = self
            .vouch(mv, Kind::Zip, route.authority, checked.h1)
            .await?;
        let entry = Entry {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: Kind::Zip.ext().to_string(),
            digest: digest?,
            size: landed.size(),
            verification,
        };
        synced?;
        let stored = landed.commit(self.store.as_ref(), entry).await;
        Ok(self.verified(stored.map_err(|e| Error::storing(&format_args!("{mv} zip"), e))?))
    }

    /// `artifact(mv, Mod)` behind a boxed `Send` future: the zip miss needs
    /// the verified `.mod`, and the recursion must be boxed to have a type.
    fn mod_first<'a>(
        self: &'a Arc<Self>,
        mv: &'a ModVersion,
    ) -> BoxFuture<'a, Result<(Arc<Entry>, Cache)>> {
        Box::pin(self.artifact(mv, Kind::Mod))
    }

    async fn miss_info(self: &Arc<Self>, mv: &ModVersion, progress: &Progress) -> Result<Entry> {
        let route = self.route(mv.path())?;
        if let Some(e) = self.shared_small(mv, Kind::Info, route.authority).await? {
            return Ok(self.verified(e));
        }
        let path = mv.artifact_path(Kind::Info);
        let fetch = route.upstream.get(&path, self.cfg.limits.max_meta_bytes);
        let data = self
            .beside_lookup(mv, Kind::Info, route.authority, fetch)
            .await?;
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
        // Only versions the checksum database knows are served (public ones).
        progress.far_along();
        let verification = self
            .vouch(mv, Kind::Info, route.authority, String::new())
            .await?;
        let entry = self.entry(mv, Kind::Info, &data, verification);
        let stored = self.store.commit_bytes(&data, entry).await;
        Ok(self.verified(stored.map_err(|e| Error::storing(&format_args!("{mv} info"), e))?))
    }

    /// Runs an upstream fetch of a small artifact and, for a version the
    /// checksum database vouches for, its lookup at the same time, so a miss
    /// waits for the slower of the two round trips instead of their sum (the
    /// cold build of BENCHMARKS.md). Failures are reported in the order they
    /// were when the two ran in turn: the fetch's first, then the lookup's —
    /// so a version the upstream does not have is a 404, not a logged
    /// "not in the checksum database" refusal.
    /// The proven lookup is cached in the store, where `vouch` reads it once
    /// the fetched bytes are hashed; nothing fetched is trusted before that.
    async fn beside_lookup(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        authority: Authority,
        fetch: impl std::future::Future<Output = std::result::Result<bytes::Bytes, UpstreamError>>,
    ) -> Result<bytes::Bytes> {
        if authority != Authority::ChecksumDatabase {
            return fetch.await.map_err(|e| upstream_error(mv, kind, e));
        }
        let (fetched, looked_up) = tokio::join!(fetch, self.lookup_unlogged(mv));
        let data = fetched.map_err(|e| upstream_error(mv, kind, e))?;
        looked_up.map_err(|e| self.answered(mv, e))?;
        Ok(data)
    }

    async fn read_small(&self, entry: &Entry) -> Result<Vec<u8>> {
        let blob = self.store.open(entry).await?;
        let mut buf = Vec::with_capacity(blob.size as usize);
        let limit = self
            .cfg
            .limits
            .max_mod_bytes
            .max(self.cfg.limits.max_meta_bytes);
        blob.into_reader()
            .take(limit)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        Ok(buf)
    }

    fn entry(&self, mv: &ModVersion, kind: Kind, data: &[u8], verification: Verification) -> Entry {
        use sha2::Digest;
        Entry {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: kind.ext().to_string(),
            digest: hex::encode(sha2::Sha256::digest(data)),
            size: data.len() as u64,
            verification,
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

/// Whether an I/O error reading a spool file was the disk's (not a short or
/// malformed file, which is the content's).
fn disk_failed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    !matches!(e.kind(), UnexpectedEof | InvalidData | InvalidInput)
}

fn upstream_error(mv: &ModVersion, kind: Kind, e: UpstreamError) -> Error {
    let what = format!("{mv} {}", kind.ext());
    tracing::warn!(module = %mv.path(), version = %mv.version(), kind = kind.ext(), error = %e, "upstream fetch failed");
    upstream_to_error(what, e)
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
        UpstreamError::SpoolFull(full) => Error::Overloaded {
            reason: format!("{what}: {full}"),
            retry_after: full.retry_after,
        },
        e => Error::UpstreamUnavailable(format!("{what}: upstream failed: {e}")),
    }
}
