//! Fuzz the gate signals' readers: the stored head history (decode never panics; what decodes re-encodes to itself), a `.info` Time, and the typosquat check on any path (never panics; members are never flagged).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modgate::gate::cooldown::info_time;
use modgate::gate::typosquat::Corpus;
use modgate::sumdb::heads::HeadHistory;

static CORPUS: OnceLock<Corpus> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(h) = HeadHistory::decode(rest) {
                let again = HeadHistory::decode(&h.encode()).expect("re-encoded history decodes");
                assert_eq!(again, h);
                for id in [0, 1, i64::MAX, -1] {
                    let _ = h.date(id);
                }
            }
        }
        1 => {
            let _ = info_time(rest);
        }
        _ => {
            let corpus = CORPUS.get_or_init(Corpus::debian);
            let path = String::from_utf8_lossy(rest);
            if corpus.check(&path).is_some() {
                assert!(!corpus.covers(&path), "a member was flagged: {path}");
            }
        }
    }
});
