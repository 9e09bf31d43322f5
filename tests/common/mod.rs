//! Helpers shared by integration tests. Each test crate uses a different
//! subset, hence `dead_code` is allowed.
#![allow(dead_code)]

pub mod binary;
pub mod gobuild;
pub mod goclient;
pub mod modgate;
pub mod refupstream;
pub mod s3;
