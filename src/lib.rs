//! modgate — a verifying, caching Go module proxy.
//!
//! # Layout
//!
//! The verification core is pure and synchronous (no I/O); everything that
//! talks to the network or the disk sits around it.
//!
//! Verification core:
//! - [`module`]: module paths and versions — validation, `!`-case escaping, semver.
//! - [`sumdb`]: the Go checksum database — signed notes ([`sumdb::note`]), the
//!   tiled Merkle log ([`sumdb::tlog`]), lookup responses, and the client that
//!   proves a lookup against a trusted tree head ([`sumdb::client`]).
//! - [`modzip`]: `h1:` hashes of module zips and go.mod files, and the module-zip rules.
//!
//! Serving:
//! - [`protocol`]: GOPROXY request paths parsed into typed requests.
//! - [`pipeline`]: a cache miss top to bottom — fetch, verify, store — with coalescing
//!   ([`flight`]); verified lookups and list/@latest live beside it.
//! - [`evict`]: the store's size cap (`[store] max_bytes`), least recently served first.
//! - [`limits`]: admission of misses (in all, per client, queue wait) and the spool's byte budget.
//! - [`routes`]: path pattern → upstream + authority (checksum database, or pins for
//!   `private` modules, which never reach the public upstream or the database).
//! - [`direct`]: `direct` in the private upstream list — the `go` command fetches from VCS.
//! - [`upstream`]: the shared HTTP client, GOPROXY-list semantics, limits, timeouts.
//! - [`landing`]: where a downloaded zip lands — memory while small, the store's spool beyond.
//! - [`trust`]: the sumdb client's I/O — remote reads, trusted tree heads, tiles, evidence.
//! - [`trust_watch`]: the background task that watches the database's head, so the
//!   head history ([`sumdb::heads`]) dates new records within about a minute.
//! - [`store`]: the `Store` trait, the embedded store (sled index + blob files, proven
//!   small blobs in memory), replicas on an S3 bucket ([`store::s3`]: untrusted shared
//!   tier, bounded local tier), and streaming a blob to a client ([`store::stream`]).
//! - [`http`]: the router and handlers; [`error`] maps every failure to one HTTP status.
//! - [`gate`]: the supply-chain verdict — policy rules, advisories, the release
//!   cooldown, typosquats — consulted before any artifact is served, cached or not.
//! - [`metrics`]: Prometheus metrics; [`admin`]: the `cache`, `trust`, `audit`, `policy`,
//!   `pins`, `origin` and `prefetch` commands, answered by a running server (admin
//!   socket, `/admin/`) or on a stopped data dir.
//! - [`audit`]: the append-only record of who was served or refused what, by module.
//! - [`config`]: defaults < TOML file < environment < flags; [`server`]: wiring and run;
//!   [`logfmt`]: the log line formats; [`logwriter`]: `serve`'s lines written to stderr
//!   by a thread of their own (what a clean shutdown and a `kill -9` can lose).
pub mod admin;
pub mod audit;
pub mod config;
pub mod direct;
pub mod error;
pub mod evict;
pub mod flight;
pub mod gate;
pub mod http;
pub mod landing;
pub mod limits;
pub mod logfmt;
pub mod logwriter;
pub mod metrics;
pub mod module;
pub mod modzip;
pub mod pipeline;
pub mod protocol;
pub mod routes;
pub mod server;
pub mod store;
pub mod sumdb;
pub mod trust;
pub mod trust_watch;
pub mod upstream;
