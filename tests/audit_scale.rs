//! Measures the audit trail at scale (ignored by default: minutes and GBs).
//!
//! ```sh
//! AUDIT_SCALE_RECORDS=10000000 cargo test --release --test audit_scale -- --ignored --nocapture
//! ```
//!
//! Writes N synthetic records (10,000 modules x 10 versions, clients from a
//! /16, spread over 400 days) in the writer's batch size, then times
//! `audit who` for one module and for one version, cold (freshly opened
//! trail) and warm, and reports disk bytes per record.

use std::time::Instant;

use modgate::audit::{Event, Trail};

#[test]
#[ignore]
fn ten_million_records() {
    let n: u64 = std::env::var("AUDIT_SCALE_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir =
        tempfile::tempdir_in(std::env::var("AUDIT_SCALE_DIR").unwrap_or("/tmp".into())).unwrap();
    let trail = Trail::open(dir.path()).unwrap();
    let start_us = modgate::audit::now_us() - 400 * 86_400 * 1_000_000;
    let step = 400 * 86_400 * 1_000_000 / n;
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(4096);
    for i in 0..n {
        // A multiplicative hash spreads modules and clients like real traffic.
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let m = (h >> 20) % 10_000;
        let v = (h >> 40) % 10;
        let kind = ["info", "mod", "zip"][(i % 3) as usize];
        batch.push(Event {
            time_us: start_us + i * step,
            client: Some(std::net::IpAddr::from([10, 1, (h >> 8) as u8, h as u8])),
            forwarded_for: None,
            user: if i % 4 == 0 {
                Some(format!("bearer[{}]", i % 3))
            } else {
                None
            },
            module: format!("github.com/org{}/module{m}", m % 100),
            version: format!("v1.{v}.0"),
            kind,
            cache: if i % 10 == 0 { "miss" } else { "hit" },
            status: 200,
            reason: None,
            tree_size: Some(30_000_000 + (i / 1000) as i64),
        });
        if batch.len() == 4096 {
            trail.write(&batch, false).unwrap();
            batch.clear();
        }
    }
    trail.write(&batch, true).unwrap();
    let wrote = t0.elapsed();
    let disk = trail.disk_bytes();
    drop(trail);
    let du = dir_bytes(dir.path());
    let (mut segs, mut index, mut files) = (0u64, 0u64, 0);
    for e in std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .flatten()
    {
        let len = e.metadata().unwrap().len();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") {
            segs += len;
            files += 1;
        } else if name.ends_with(".idx") {
            index += len;
        }
    }
    eprintln!("AUDIT_SCALE segment_files={files} segments={segs} index={index}");
    eprintln!(
        "AUDIT_SCALE records={n} write={wrote:?} ({:.0} records/s) trail_disk_bytes={disk} \
         du={du} bytes/record={:.1}",
        n as f64 / wrote.as_secs_f64(),
        du as f64 / n as f64
    );
    for (label, module, version) in [
        ("module", "github.com/org42/module4242", None),
        ("version", "github.com/org42/module4242", Some("v1.3.0")),
    ] {
        let t = Instant::now();
        let trail = Trail::open(dir.path()).unwrap();
        let opened = t.elapsed();
        let mut hits = 0;
        let t = Instant::now();
        trail
            .who(module, version, 0, |_| {
                hits += 1;
                true
            })
            .unwrap();
        let cold = t.elapsed();
        let t = Instant::now();
        let mut again = 0;
        trail
            .who(module, version, 0, |_| {
                again += 1;
                true
            })
            .unwrap();
        let warm = t.elapsed();
        assert_eq!(hits, again);
        eprintln!(
            "AUDIT_SCALE who {label}: {hits} records, open={opened:?} cold={cold:?} warm={warm:?}"
        );
        drop(trail);
    }
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}
