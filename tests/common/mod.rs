//! Shared test helpers. (Minimal version from the `refupstream` branch; the
//! `oracle` branch's mod.rs/gobuild.rs supersede it when merged.)
#![allow(dead_code)]

pub mod gobuild;
pub mod goclient;
pub mod refupstream;
