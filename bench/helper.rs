//! Helper for `bench/run.sh` (built as a `harness = false` bench target so it can use the
//! library and the dev-dependencies): the miss-pipeline floor and scratch stores for the
//! scale benchmark. Prints one JSON object per command on stdout.
//!
//! ```text
//! helper floor ZIP [REPS]      best-of-REPS: SHA-256 over the file, then inflate + SHA-256 of
//!                              every entry (the least work a verified zip miss must do)
//! helper populate DIR N [--legacy]
//!                              a scratch EmbeddedStore with N module versions (.info, .mod,
//!                              .zip entries) written straight into its sled index and blob dir;
//!                              `--legacy`: the index layout before (one key per artifact),
//!                              which the server migrates when it opens the store
//! helper trail DIR N           an audit trail in DIR/audit for those N versions: 3 records each
//!                              (`.info`, `.mod`, `.zip` answered), spread over 30 days
//! ```
//!
//! `populate` bypasses verification on purpose: it builds a benchmark's own scratch store,
//! which nothing but the benchmark ever serves.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::read::DeflateDecoder;
use modgate::audit::{Event, Trail};
use modgate::protocol::{Kind, ModVersion};
use modgate::store::embedded::bulk_put;
use modgate::store::{EmbeddedStore, Entry, Store, Verification};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("floor") if args.len() >= 2 => {
            let reps = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
            floor(Path::new(&args[1]), reps)
        }
        Some("populate") if (3..=4).contains(&args.len()) => match args[2].parse() {
            Ok(n) => populate(
                Path::new(&args[1]),
                n,
                args.get(3).is_some_and(|a| a == "--legacy"),
            ),
            Err(e) => Err(format!("N: {e}").into()),
        },
        Some("trail") if args.len() == 3 => match args[2].parse() {
            Ok(n) => trail(Path::new(&args[1]), n),
            Err(e) => Err(format!("N: {e}").into()),
        },
        // `cargo bench` runs every bench target with `--bench`: nothing to do then.
        _ => {
            eprintln!(
                "usage: helper floor ZIP [REPS] | helper populate DIR N [--legacy] | helper trail DIR N"
            );
            Ok(())
        }
    };
    if let Err(e) = r {
        eprintln!("helper: {e}");
        std::process::exit(1);
    }
}

/// Best of `reps` runs of the two passes a zip miss cannot avoid.
fn floor(zip: &Path, reps: usize) -> Res<()> {
    let mut best_sha = Duration::MAX;
    let mut best_inflate = Duration::MAX;
    let mut uncompressed = 0;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let mut f = File::open(zip)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        std::hint::black_box(h.finalize());
        best_sha = best_sha.min(t.elapsed());

        let t = Instant::now();
        uncompressed = inflate_all(zip, &mut buf)?;
        best_inflate = best_inflate.min(t.elapsed());
    }
    println!(
        "{{\"sha256_s\":{:.6},\"inflate_sha256_s\":{:.6},\"floor_s\":{:.6},\"bytes\":{},\"uncompressed\":{}}}",
        best_sha.as_secs_f64(),
        best_inflate.as_secs_f64(),
        (best_sha + best_inflate).as_secs_f64(),
        std::fs::metadata(zip)?.len(),
        uncompressed
    );
    Ok(())
}

fn u16le(b: &[u8], i: usize) -> u64 {
    u16::from_le_bytes([b[i], b[i + 1]]) as u64
}
fn u32le(b: &[u8], i: usize) -> u64 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as u64
}

/// Inflates every entry of a (non-zip64) zip and hashes its content; returns the bytes inflated.
/// A bare reader for well-formed benchmark zips, not a validating one.
fn inflate_all(zip: &Path, buf: &mut [u8]) -> Res<u64> {
    let mut f = File::open(zip)?;
    let len = f.metadata()?.len();
    let tail_len = len.min(65536 + 22);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len))?;
    f.read_exact(&mut tail)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("no end of central directory")?;
    let (count, cd_size, cd_off) = (
        u16le(&tail, eocd + 10),
        u32le(&tail, eocd + 12),
        u32le(&tail, eocd + 16),
    );
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_off))?;
    f.read_exact(&mut cd)?;
    let mut p = 0usize;
    let mut total = 0u64;
    for _ in 0..count {
        let (method, csize) = (u16le(&cd, p + 10), u32le(&cd, p + 20));
        let (nlen, xlen, clen) = (
            u16le(&cd, p + 28) as usize,
            u16le(&cd, p + 30) as usize,
            u16le(&cd, p + 32) as usize,
        );
        let local = u32le(&cd, p + 42);
        p += 46 + nlen + xlen + clen;
        let mut lh = [0u8; 30];
        f.seek(SeekFrom::Start(local))?;
        f.read_exact(&mut lh)?;
        let data = local + 30 + u16le(&lh, 26) + u16le(&lh, 28);
        f.seek(SeekFrom::Start(data))?;
        let raw = (&mut f).take(csize);
        let mut r: Box<dyn Read> = match method {
            8 => Box::new(DeflateDecoder::new(io::BufReader::with_capacity(
                1 << 16,
                raw,
            ))),
            _ => Box::new(raw),
        };
        let mut h = Sha256::new();
        loop {
            let n = r.read(buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        std::hint::black_box(h.finalize());
    }
    Ok(total)
}

/// The module path of the i-th scratch module version.
fn scale_path(i: usize) -> String {
    format!("example.com/scale/m{i:07}")
}

/// Writes `n` module versions into a fresh store under `dir`: distinct `.info` and `.mod`
/// blobs per version and one shared small `.zip` blob, all indexed. Straight into sled in
/// batches (one fsync at the end) because the store's own commit fsyncs every artifact,
/// which would make 100k versions take many minutes; then re-reads samples through
/// `EmbeddedStore` to prove the layout is the one the server reads.
fn populate(dir: &Path, n: usize, legacy: bool) -> Res<()> {
    let t = Instant::now();
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    let write_blob = |data: &[u8]| -> Res<(String, u64)> {
        let digest = hex::encode(Sha256::digest(data));
        let sub = dir.join("blobs/sha256").join(&digest[..2]);
        std::fs::create_dir_all(&sub)?;
        let p = sub.join(&digest);
        if !p.exists() {
            File::create(&p)?.write_all(data)?;
        }
        Ok((digest, data.len() as u64))
    };
    // Sized like real entries: an `h1:` hash, a tree hash, record and tree numbers.
    let verification = |i: usize, data: &[u8]| Verification {
        h1: format!("h1:{}", base64_std(&Sha256::digest(data))),
        sumdb: "bench.scratch".into(),
        record_id: i as i64,
        tree_size: n as i64,
        tree_hash: base64_std(&Sha256::digest(n.to_le_bytes())),
        verified_at: 1_700_000_000,
        authority: Default::default(),
    };
    let zip = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let zip_blob = write_blob(&zip)?;
    {
        let db = sled::Config::new().path(dir.join("index")).open()?;
        let mut batch = Vec::new();
        for i in 0..n {
            let path = scale_path(i);
            let info =
                format!("{{\"Version\":\"v1.0.0\",\"Time\":\"2020-01-01T00:00:00Z\",\"N\":{i}}}\n");
            let gomod = format!("module {path}\n\ngo 1.16\n");
            for (kind, data, (digest, size)) in [
                (Kind::Info, info.as_bytes(), write_blob(info.as_bytes())?),
                (Kind::Mod, gomod.as_bytes(), write_blob(gomod.as_bytes())?),
                (Kind::Zip, &zip[..], zip_blob.clone()),
            ] {
                batch.push(Entry {
                    module: path.clone(),
                    version: "v1.0.0".into(),
                    kind: kind.ext().into(),
                    digest,
                    size,
                    verification: verification(i, data),
                });
            }
            if i % 10_000 == 9_999 {
                bulk_put(&db, &std::mem::take(&mut batch), legacy)?;
            }
        }
        bulk_put(&db, &batch, legacy)?;
        db.flush()?;
    }
    let written = t.elapsed();

    // Read samples back through the store the server uses (not for `--legacy`:
    // opening it through the store would rebuild it in the current layout).
    if legacy {
        println!(
            "{{\"versions\":{n},\"entries\":{},\"populate_s\":{:.3}}}",
            n * 3,
            written.as_secs_f64()
        );
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // sled lets go of its file lock a moment after the last handle is dropped (its
        // flusher thread): on tmpfs the reopen can come first, so retry it for a while.
        let mut tries = 0;
        let store = loop {
            match EmbeddedStore::open(dir) {
                Ok(s) => break s,
                Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        };
        for i in [0, n / 2, n - 1] {
            let mv = ModVersion::new(&scale_path(i), "v1.0.0")?;
            let e = store
                .entry(&mv, Kind::Mod)
                .await?
                .ok_or("sample entry missing")?;
            store.open(&e).await?;
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    println!(
        "{{\"versions\":{n},\"entries\":{},\"populate_s\":{:.3}}}",
        3 * n,
        written.as_secs_f64()
    );
    Ok(())
}

/// Writes an audit trail under `dir/audit` for the `n` versions of [`populate`]: three
/// records per version (its `.info`, `.mod` and `.zip` answered, the `.zip` once a miss),
/// in time order over the last 30 days, the versions in a scattered order (a stride
/// prime to `n`, so each is visited exactly once) from clients of a /16, in the server's
/// batch size. Through `Trail::write`, as the server writes them.
fn trail(dir: &Path, n: usize) -> Res<()> {
    let t = Instant::now();
    let trail = Trail::open(dir)?;
    let records = 3 * n as u64;
    let span_us = 30 * 86_400 * 1_000_000u64;
    let start_us = modgate::audit::now_us() - span_us;
    let step = (span_us / records.max(1)).max(1);
    // A stride prime to n (n of the form 10^k, or anything not a multiple of it).
    let stride = [1_000_003u64, 999_983, 7919]
        .into_iter()
        .find(|p| !(n as u64).is_multiple_of(*p))
        .unwrap_or(1);
    let mut batch = Vec::with_capacity(4096);
    for r in 0..records {
        let v = ((r / 3) * stride % n as u64) as usize;
        let h = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let kind = ["info", "mod", "zip"][(r % 3) as usize];
        batch.push(Event {
            time_us: start_us + r * step,
            client: Some(std::net::IpAddr::from([10, 1, (h >> 8) as u8, h as u8])),
            forwarded_for: None,
            user: None,
            module: scale_path(v),
            version: "v1.0.0".into(),
            kind,
            cache: if kind == "zip" { "miss" } else { "hit" },
            status: 200,
            reason: None,
            tree_size: Some(1_000_000 + r as i64 / 1000),
        });
        if batch.len() == 4096 {
            trail.write(&batch, false)?;
            batch.clear();
        }
    }
    trail.write(&batch, true)?;
    let disk = trail.disk_bytes();
    println!(
        "{{\"records\":{records},\"trail_s\":{:.3},\"disk_bytes\":{disk}}}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Standard base64 with padding, as `h1:` hashes and tree hashes are written.
fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
