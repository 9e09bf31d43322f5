//! modgate — a verifying, caching Go module proxy.
//!
//! # Layout
//!
//! The verification core is pure and synchronous (no I/O); everything that
//! talks to the network or the disk sits around it.
//!
//! - [`module`]: module paths and versions — validation, `!`-case escaping, semver.
//! - [`sumdb`]: the Go checksum database — signed notes ([`sumdb::note`]), the
//!   tiled Merkle log ([`sumdb::tlog`]), lookup responses and the client that
//!   proves a lookup against a trusted tree head ([`sumdb::client`]).
//! - [`modzip`]: `h1:` hashes of module zips and go.mod files, and the module-zip rules.
pub mod module;
pub mod modzip;
pub mod sumdb;
