//! Signed notes and ed25519 verifier keys (x/mod `sumdb/note`) — pure, no I/O.
