//! h1 of a generated ~100 MiB (uncompressed) module zip, next to the two floors it is made
//! of: raw SHA-256 over the same uncompressed bytes, and inflate-only over the same
//! compressed streams. Compare the three throughputs (bytes = uncompressed size).

#[path = "../tests/modzip_support.rs"]
mod support;

use std::hint::black_box;
use std::io::{self, Read};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::DeflateDecoder;
use modgate::modzip::check_zip;
use sha2::{Digest, Sha256};
use support::{ZEntry, build_zip, deflate};

const FILES: usize = 400;
const FILE_SIZE: usize = 256 << 10; // 400 × 256 KiB = 100 MiB

/// Source-like text: words from a small vocabulary, pseudo-random (compresses ~3-4×).
fn gen_file(seed: u64) -> Vec<u8> {
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
    let mut out = Vec::with_capacity(FILE_SIZE);
    while out.len() < FILE_SIZE {
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
    out.truncate(FILE_SIZE);
    out
}

fn bench(c: &mut Criterion) {
    let prefix = "example.com/bench@v1.0.0/";
    let contents: Vec<Vec<u8>> = (0..FILES).map(|i| gen_file(i as u64)).collect();
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

criterion_group!(benches, bench);
criterion_main!(benches);
