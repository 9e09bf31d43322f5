//! Fuzz the OSV entry parser: never panic; every claim it accepts answers
//! `covers` for any version without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::gate::advisory::{AdvisorySet, Class, parse_osv};

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = parse_osv(data, Class::Malicious) {
        for (_, a) in &claims {
            for v in ["v0.0.0", "v1.3.1", "v2.0.0-rc.1", "v0.0.0-20200101000000-abcdefabcdef", "junk"] {
                let _ = a.covers(v);
            }
        }
        let mut set = AdvisorySet::default();
        let _ = set.add_json(data, Class::Vulnerability);
        for (m, _) in &claims {
            let _ = set.affecting(m, "v1.0.0").count();
        }
    }
});
