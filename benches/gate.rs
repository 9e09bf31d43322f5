//! The supply-chain gate on the hit path: one verdict with no policy, and with a
//! policy of 1,000 rules plus the whole Go vulnerability database loaded
//! (../shared/realdata/vulndb when present, else the subset in tests/fixtures), for
//! a module no rule or advisory names (the common hit), one with vulnerabilities,
//! and one a rule refuses. Also: re-judging 100k cached versions.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use modgate::gate::advisory::{Class, DEFAULT_MAX_FILE_BYTES, read_dir_source};
use modgate::gate::{Gate, Policy};

fn vulndb() -> std::path::PathBuf {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata/vulndb");
    let full = if full.is_dir() {
        full
    } else {
        Path::new("/work/shared/realdata/vulndb").to_path_buf()
    };
    if full.is_dir() {
        full
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate/vulndb")
    }
}

/// 1,000 rules of the shapes operators write: hosts, owners, exact modules with
/// version ranges, a few wildcard hosts.
fn thousand_rules() -> String {
    let mut t = String::new();
    for i in 0..1000 {
        let (module, versions) = match i % 4 {
            0 => (format!("github.com/owner{i}/*"), String::new()),
            1 => (
                format!("github.com/org{i}/repo{i}"),
                "versions = [\"<v1.4.0\", \">=v2.0.0, <v2.3.5\"]\n".to_string(),
            ),
            2 => (format!("corp{i}.example.com"), String::new()),
            _ if i % 100 == 3 => (format!("*.evil{i}.org"), String::new()),
            _ => (
                format!("gitlab.com/g{i}/p"),
                "versions = [\"v1.3.1\"]\n".to_string(),
            ),
        };
        t.push_str(&format!(
            "[[deny]]\nmodule = \"{module}\"\n{versions}reason = \"rule {i}\"\n"
        ));
    }
    t
}

fn bench(c: &mut Criterion) {
    let empty = Gate::default();
    let t = Instant::now();
    let db =
        read_dir_source(&vulndb(), Class::Vulnerability, DEFAULT_MAX_FILE_BYTES).expect("vulndb");
    eprintln!("vulndb: {} entries read in {:?}", db.set.len(), t.elapsed());
    let full = Gate::new(
        Policy::parse(&thousand_rules()).expect("policy"),
        Vec::new(),
    );
    full.set_advisories(db.set);

    let mut g = c.benchmark_group("gate");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("empty/unnamed", |b| {
        b.iter(|| black_box(empty.check(black_box("github.com/pkg/errors"), black_box("v0.9.1"))))
    });
    g.bench_function("1000rules+vulndb/unnamed", |b| {
        b.iter(|| black_box(full.check(black_box("github.com/pkg/errors"), black_box("v0.9.1"))))
    });
    g.bench_function("1000rules+vulndb/vulnerable", |b| {
        b.iter(|| black_box(full.check(black_box("golang.org/x/text"), black_box("v0.3.2"))))
    });
    g.bench_function("1000rules+vulndb/denied", |b| {
        b.iter(|| black_box(full.check(black_box("github.com/owner8/x"), black_box("v1.0.0"))))
    });

    // The cooldown and typosquat checks on (gate/signals.rs), as a hit sees
    // them: a cached version with its record id (old: below the watermark),
    // a module path judged before (memoized), and a held version.
    let mut heads = modgate::sumdb::heads::HeadHistory::new();
    let now = modgate::store::now_secs();
    for i in 0..1300u64 {
        heads.record(1_000_000 + 1000 * i as i64, now - 60 * 86_400 + 4000 * i);
    }
    let signals = modgate::gate::with_policy(
        Policy::parse(&format!(
            "{}\n[cooldown]\nmin_age = \"72h\"\nexempt = [\"corp.example/*\"]\n[typosquat]\nmode = \"enforce\"\n",
            thousand_rules()
        ))
        .expect("policy"),
        modgate::gate::signals::fixed_heads(heads),
    );
    let old = modgate::gate::Facts {
        record_id: Some(1_000_500),
        info_time: None,
        pinned_at: None,
    };
    let new = modgate::gate::Facts {
        record_id: Some(2_299_500),
        info_time: None,
        pinned_at: None,
    };
    g.bench_function("1000rules+cooldown+typosquat/cached-old", |b| {
        b.iter(|| {
            black_box(signals.judge(
                black_box("github.com/pkg/errors"),
                black_box("v0.9.1"),
                black_box(&old),
            ))
        })
    });
    g.bench_function("1000rules+cooldown+typosquat/held", |b| {
        b.iter(|| {
            black_box(signals.judge(
                black_box("github.com/pkg/errors"),
                black_box("v0.9.1"),
                black_box(&new),
            ))
        })
    });
    g.finish();

    // Re-judging a 100k-version store (the verdicts; the index walk is the store's).
    let versions: Vec<(String, String)> = (0..100_000)
        .map(|i| {
            (
                format!("github.com/o{}/m{i}", i % 977),
                format!("v1.{}.{}", i % 13, i % 7),
            )
        })
        .collect();
    let t = Instant::now();
    let refused = versions
        .iter()
        .filter(|(m, v)| !full.check(m, v).served())
        .count();
    eprintln!(
        "re-judging 100k versions: {:?} ({refused} refused)",
        t.elapsed()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
