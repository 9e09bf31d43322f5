//! `modgate prefetch` (not yet implemented).
