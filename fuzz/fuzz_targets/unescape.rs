//! Fuzzes the `!`-case decoding of module paths and versions: arbitrary input
//! must never panic, and whatever decodes must re-encode to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate::module::{
    self, check, check_file_path, check_import_path, check_path, escape_path, escape_version,
    unescape_path, unescape_version,
};

fuzz_target!(|data: &[u8]| {
    // Go's checks reject invalid UTF-8 outright; a &str cannot hold it, so
    // exercise both the strict and the lossy decodings of the input.
    let lossy = String::from_utf8_lossy(data);
    let strict = std::str::from_utf8(data).ok();
    for s in std::iter::once(lossy.as_ref()).chain(strict) {
        if let Ok(path) = unescape_path(s) {
            assert!(
                check_path(&path).is_ok(),
                "unescaped {s:?} to invalid {path:?}"
            );
            assert_eq!(escape_path(&path).as_deref(), Ok(s), "path round trip");
        }
        if let Ok(v) = unescape_version(s) {
            assert_eq!(escape_version(&v).as_deref(), Ok(s), "version round trip");
        }
        if let Ok(esc) = escape_path(s) {
            assert_eq!(
                unescape_path(&esc).as_deref(),
                Ok(s),
                "escaped path round trip"
            );
        }
        if let Ok(esc) = escape_version(s) {
            assert_eq!(
                unescape_version(&esc).as_deref(),
                Ok(s),
                "escaped version round trip"
            );
        }
        let _ = (check_import_path(s), check_file_path(s));
        let (path, version) = s.split_once('@').unwrap_or((s, "v1.0.0"));
        if check(path, version).is_ok() {
            assert!(check_path(path).is_ok() && module::semver::is_valid(version));
        }
        let _ = module::pseudo_version_base(s);
        let _ = module::pseudo_version_time(s);
    }
});
