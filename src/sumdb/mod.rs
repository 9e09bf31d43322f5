//! The Go checksum database: signed notes, the tiled log, lookups, and the verifying client.
pub mod client;
pub mod heads;
pub mod lookup;
pub mod note;
pub mod tlog;
