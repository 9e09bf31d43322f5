//! h1 of a generated ~100 MiB (uncompressed) module zip, next to the two floors it is made
//! of: raw SHA-256 over the same uncompressed bytes, and inflate-only over the same
//! compressed streams. Compare the three throughputs (bytes = uncompressed size).
//!
//! And a typical module zip (22 files of ~6 KiB source, ~40 KiB compressed, like the cold
//! build's), checked from a file (the spool) and from memory (`limits.zip_in_memory_bytes`):
//! there the per-zip and per-file costs (buffers, inflater state) show, not throughput.

#[path = "../tests/modzip_support.rs"]
mod support;

use std::hint::black_box;
use std::io::{self, Read};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::DeflateDecoder;
use modgate::modzip::{ZipLimits, check_zip, check_zip_reader};
use sha2::{Digest, Sha256};
use support::{ZEntry, build_zip, deflate};

const FILES: usize = 400;
const FILE_SIZE: usize = 256 << 10; // 400 × 256 KiB = 100 MiB

/// Source-like text: words from a small vocabulary, pseudo-random (compresses ~3-4×).
fn gen_file(seed: u64, size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "func",
        "return",
        "if",
        "err",
        "!=",
        "nil",
        "{",
        "}",
        "package",
        "import",
        "var",
        "x",
        "y",
        "for",
        "range",
        ":=",
        "string",
        "int",
        "byte",
        "go",
        "defer",
        "struct",
        "type",
        "map",
        "len",
        "append",
        "make",
        "ctx",
        "error",
        "fmt.Errorf",
        "true",
        "false",
    ];
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(s >> 33) as usize % WORDS.len()].as_bytes());
        out.push(if (s >> 20).is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
        if (s >> 40).is_multiple_of(97) {
            out.extend_from_slice(format!("{:x}", s).as_bytes());
        }
    }
    out.truncate(size);
    out
}

fn bench(c: &mut Criterion) {
    let prefix = "example.com/bench@v1.0.0/";
    let contents: Vec<Vec<u8>> = (0..FILES).map(|i| gen_file(i as u64, FILE_SIZE)).collect();
    let entries: Vec<ZEntry> = contents
        .iter()
        .enumerate()
        .map(|(i, d)| ZEntry::new(format!("{prefix}pkg{}/file{i}.go", i % 20), d))
        .collect();
    let zip = build_zip(&entries);
    let compressed: Vec<Vec<u8>> = contents.iter().map(|d| deflate(d)).collect();
    let total: u64 = contents.iter().map(|d| d.len() as u64).sum();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.zip");
    std::fs::write(&path, &zip).unwrap();
    eprintln!(
        "zip: {} files, {} MiB uncompressed, {:.1} MiB on disk",
        FILES,
        total >> 20,
        zip.len() as f64 / (1 << 20) as f64
    );
    drop(zip);

    let mut g = c.benchmark_group("h1_100MiB");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.warm_up_time(Duration::from_secs(1));

    g.bench_function("check_zip_h1", |b| {
        b.iter(|| {
            let c = check_zip(&path, "example.com/bench", "v1.0.0", None).unwrap();
            black_box(c.h1)
        })
    });
    g.bench_function("sha256_raw", |b| {
        b.iter(|| {
            let mut h = Sha256::new();
            for d in &contents {
                h.update(d);
            }
            black_box(h.finalize())
        })
    });
    g.bench_function("inflate_only", |b| {
        let mut buf = vec![0u8; 128 << 10];
        b.iter(|| {
            let mut n = 0u64;
            for z in &compressed {
                let mut d = DeflateDecoder::new(&z[..]);
                loop {
                    match d.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => n += k as u64,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench_small(c: &mut Criterion) {
    let prefix = "example.com/small@v1.0.0/";
    let mut entries: Vec<ZEntry> = (0..20)
        .map(|i| ZEntry::new(format!("{prefix}f{i}.go"), gen_file(1000 + i, 6 << 10)))
        .collect();
    entries.push(ZEntry::new(
        format!("{prefix}go.mod"),
        b"module example.com/small\n\ngo 1.16\n",
    ));
    entries.push(ZEntry::new(
        format!("{prefix}gen.go"),
        b"package small\n\nfunc N() int { return 1 }\n",
    ));
    let zip = build_zip(&entries);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.zip");
    std::fs::write(&path, &zip).unwrap();
    eprintln!(
        "small zip: {} files, {} KiB",
        entries.len(),
        zip.len() >> 10
    );

    let mut g = c.benchmark_group("h1_module_zip_40KiB");
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("check_zip_file", |b| {
        b.iter(|| {
            let c = check_zip(&path, "example.com/small", "v1.0.0", None).unwrap();
            black_box(c.h1)
        })
    });
    g.bench_function("check_zip_memory", |b| {
        let limits = ZipLimits::default();
        b.iter(|| {
            let r = io::Cursor::new(&zip[..]);
            let c = check_zip_reader(
                r,
                zip.len() as u64,
                "example.com/small",
                "v1.0.0",
                None,
                &limits,
            )
            .unwrap();
            black_box(c.h1)
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_small);
criterion_main!(benches);
