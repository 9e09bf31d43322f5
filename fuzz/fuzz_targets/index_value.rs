//! Fuzz the embedded store's index value decoder: never panic, and what decodes re-encodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    modgate::store::embedded::fuzz_index_value(data);
});
