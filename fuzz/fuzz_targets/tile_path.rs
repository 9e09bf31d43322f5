//! Fuzz `parse_tile_path`: never panics; accepted paths round-trip exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::sumdb::tlog::parse_tile_path;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = parse_tile_path(s) {
        assert_eq!(t.path(), s);
        assert_eq!(parse_tile_path(&t.path()), Ok(t));
    }
});
