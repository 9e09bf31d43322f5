//! Fuzz the policy file parser and its matching: never panic; a policy that
//! parses answers every query, and an error always names a line inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::gate::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text) {
        Ok(p) => {
            for (m, v) in [
                ("github.com/boltdb-go/bolt", "v1.3.1"),
                ("example.com/a/b/c", "v0.0.0-20200101000000-abcdefabcdef"),
                ("x", "v2.0.0+incompatible"),
            ] {
                let _ = p.denying(m, v);
                let _ = p.allowing(m, v, 0);
                let _ = p.allowing(m, v, u64::MAX);
            }
        }
        Err((line, problem)) => {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "{line}");
            assert!(!problem.is_empty());
        }
    }
    // Each line as a module pattern, matched against a few paths.
    for l in text.lines().take(8) {
        if let Ok(p) = modgate::module::pattern::Pattern::new(l) {
            let _ = p.matches("github.com/boltdb-go/bolt");
            let _ = p.matches(l);
        }
        let _ = modgate::module::pattern::match_prefix_patterns(l, "rsc.io/quote/v3");
    }
});
