//! Admin commands that work on a data dir: `cache`, `trust`, `prefetch`.
pub mod cache;
pub mod prefetch;
pub mod trust;
