//! Admin commands that work on a data dir: `cache`, `trust`, `audit`, `policy`, `pins`, `prefetch`.
//!
//! [`api`] names every request; a running server answers them on its
//! [`socket`] (and over HTTP under `/admin/`), and without a server the CLI
//! runs the same code on the data dir itself.
pub mod api;
pub mod cache;
pub mod lock;
pub mod origin;
pub mod pins;
pub mod policy;
pub mod prefetch;
pub mod socket;
pub mod trust;
