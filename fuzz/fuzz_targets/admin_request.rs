//! Fuzz the admin API's request parser and the audit target/date parsers: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::admin::api::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse(data) {
        // A request that parses must not need a stopped server unless it is a reset.
        let _ = r.needs_stopped_server();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = modgate::audit::split_target(s);
        let _ = modgate::audit::parse_when(s, 1_800_000_000_000_000);
    }
});
