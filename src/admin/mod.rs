//! Admin commands that work on a data dir: `cache`, `trust`, `prefetch`, `policy`.
pub mod cache;
pub mod policy;
pub mod prefetch;
pub mod trust;
