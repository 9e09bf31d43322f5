//! `modgate trust` (not yet implemented).
