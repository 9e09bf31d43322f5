//! Fuzz `parse_lookup` and `record_hashes`: never panic; accepted responses re-assemble exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::sumdb::lookup::{parse_lookup, record_hashes};

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = parse_lookup(data) {
        let mut again = format!("{}\n", l.id).into_bytes();
        again.extend_from_slice(&l.record);
        again.push(b'\n');
        again.extend_from_slice(&l.note);
        assert_eq!(again, data);
        let _ = record_hashes(&l.record, "example.com/m", "v1.0.0");
    }
});
