//! Fuzz the module-zip reader and rules on arbitrary bytes: never panics,
//! never decompresses past the limits, and whatever passes has every file
//! under the module prefix and a well-formed `h1:`.
#![no_main]
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use modgate::modzip::{ZipLimits, check_zip_reader};

fuzz_target!(|data: &[u8]| {
    // Small limits: a bomb must be stopped by them, not by the fuzzer's RSS cap.
    let limits = ZipLimits {
        max_zip_file: 1 << 20,
        max_uncompressed: 1 << 20,
        max_go_mod: 64 << 10,
        max_license: 64 << 10,
    };
    let go_mod = b"module example.com/m\n";
    for mod_file in [None, Some(&go_mod[..])] {
        if let Ok(z) = check_zip_reader(
            Cursor::new(data),
            data.len() as u64,
            "example.com/m",
            "v1.0.0",
            mod_file,
            &limits,
        ) {
            assert!(z.h1.starts_with("h1:"), "{}", z.h1);
            assert!(z.uncompressed <= limits.max_uncompressed);
            if let (Some(want), Some(got)) = (mod_file, &z.go_mod) {
                assert_eq!(want, &got[..]);
            }
        }
    }
});
