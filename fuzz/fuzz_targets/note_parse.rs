//! Fuzz `note::open` and key parsing: never panics; anything accepted re-signs consistently.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::sumdb::note::{self, Verifier, VerifierList};

const VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Verifier::new(s);
        let _ = note::Signer::new(s);
    }
    let Ok(v) = Verifier::new(VKEY) else { return };
    let list = VerifierList(vec![v]);
    if let Ok(n) = note::open(data, &list) {
        assert!(n.text.ends_with('\n'));
        assert!(!n.sigs.is_empty());
    }
    let _ = modgate::sumdb::tlog::parse_tree(data);
});
