//! The tiled transparency log (x/mod `sumdb/tlog`) — pure, no I/O.
