//! `modgate cache` (not yet implemented).
