//! The GOPROXY path router must never panic, and whatever it accepts must
//! re-escape to a path of the same request.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::protocol::{self, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(Request::Artifact(mv, kind)) = protocol::parse(s) {
        let again = format!("/{}", mv.artifact_path(kind));
        match protocol::parse(&again) {
            Ok(Request::Artifact(mv2, kind2)) => assert!(mv == mv2 && kind == kind2),
            other => panic!("{again} reparsed as {other:?}"),
        }
    }
});
