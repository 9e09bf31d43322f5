//! The store gauges are exact: a blob found corrupt on disk is quarantined
//! and fetched again, and `store_objects`/`store_bytes` still count each
//! artifact once.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;
use sha2::Digest;

fn metric(mg: &Modgate, name: &str) -> f64 {
    let (status, _, body) = mg.get("/metrics");
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn store_gauges_stay_exact_across_quarantine_and_refetch() {
    let up = RefUpstream::start(&[]);
    let m = "example.com/limits/gauges";
    // Above the size kept in memory, so the file is read (and checked) again.
    up.control(&format!("add?module={m}&version=v1.0.0&size={}", 256 << 10));
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), &up.url, &up.gosumdb()));
    let mut total = 0;
    let mut zip = Vec::new();
    for k in ["info", "mod", "zip"] {
        let (s, _, body) = mg.get(&format!("/{m}/@v/v1.0.0.{k}"));
        assert_eq!(s, 200, "{k}");
        total += body.len();
        zip = body;
    }
    assert_eq!(metric(&mg, "modgate_store_objects"), 3.0);
    assert_eq!(metric(&mg, "modgate_store_bytes"), total as f64);

    // The zip rots on disk: quarantined, fetched and verified again.
    let digest = hex::encode(sha2::Sha256::digest(&zip));
    let blob = data
        .path()
        .join("blobs/sha256")
        .join(&digest[..2])
        .join(&digest);
    std::thread::sleep(Duration::from_millis(20));
    flip_byte(&blob, 5000);
    let (s, _, body) = mg.get(&format!("/{m}/@v/v1.0.0.zip"));
    assert_eq!(s, 200);
    assert!(body == zip, "corrupt zip served");
    assert_eq!(up.hits(&format!("/{m}/@v/v1.0.0.zip")), 2, "fetched again");
    assert_eq!(
        std::fs::read_dir(data.path().join("quarantine"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(metric(&mg, "modgate_store_objects"), 3.0, "counted once");
    assert_eq!(metric(&mg, "modgate_store_bytes"), total as f64);
}
