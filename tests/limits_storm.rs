//! Hostile load: a storm of clients asking for uncached zips from a slow
//! upstream and hanging up. modgate must stay bounded (upstream concurrency,
//! memory, spool), clean up after the clients that left, and keep serving
//! what it has cached.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::refupstream::{Json, RefUpstream, http_request};

/// Misses the storm's modgate runs at once (`limits.max_misses`).
const MAX_MISSES: u64 = 4;
/// Clients in the storm, each asking for a different uncached zip.
const CLIENTS: usize = 300;
/// The bound stated for modgate's peak resident memory (VmHWM of the real
/// binary, a child process) over the whole test: start-up, a few cached
/// modules and the storm. Measured ~50 MiB (debug build); the bound leaves room for
/// allocator and thread-stack variation, while a miss per client (300 spool
/// downloads, 300 verifications) would not fit under it with large zips.
const RSS_BOUND_KIB: u64 = 128 * 1024;

/// The real binary, run as a child process with a config file.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    fn start(up: &RefUpstream, data: &Path, config: &Path) -> Proc {
        let gosumdb = up.gosumdb();
        let (child, url) = common::binary::serve(
            &[
                "--config".as_ref(),
                config.as_os_str(),
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--upstream".as_ref(),
                up.url.as_ref(),
                "--sumdb".as_ref(),
                gosumdb.as_ref(),
            ],
            "info,modgate::access=warn",
            true,
        );
        Proc { child, url }
    }

    fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.child.id(), field)
    }

    fn metric(&self, line_prefix: &str) -> f64 {
        let r = http_request("GET", &format!("{}/metrics", self.url), &[], None).expect("metrics");
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn zip_path(i: usize) -> String {
    format!("/example.com/gen/m{i:04}/@v/v1.0.0.zip")
}

fn spool_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn concurrency(up: &RefUpstream, key: &str) -> u64 {
    let json = Json::parse(&up.get("/_control/concurrency").text()).expect("concurrency JSON");
    json.get(key).and_then(|v| v.as_f64()).unwrap_or(0.0) as u64
}

/// Polls `ok` until it holds or `secs` pass; says what it waited for.
fn eventually(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "not within {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn storm_of_abandoned_misses_stays_bounded_and_cleans_up() {
    let up = RefUpstream::start(&["-gen", &(CLIENTS + 1).to_string()]);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("modgate.toml");
    std::fs::write(
        &config,
        format!("[limits]\nmax_misses = {MAX_MISSES}\nmiss_queue_secs = 30\n"),
    )
    .unwrap();
    let store = data.path().join("store");
    let mg = Proc::start(&up, &store, &config);

    // One module cached before the storm.
    for k in ["info", "mod", "zip"] {
        let p = format!("/example.com/gen/m0000/@v/v1.0.0.{k}");
        let r = http_request("GET", &format!("{}{p}", mg.url), &[], None).unwrap();
        assert_eq!(r.status, 200, "{p}");
    }
    let cached = up.get(&zip_path(0)).body;
    // The storm's .mod files (and so their lookups) are cached too: its
    // zip misses then go straight to the download, which is what the
    // upstream limit is about (else most of the 0.5 s goes to proofs).
    for i in 1..=CLIENTS {
        let p = format!("/example.com/gen/m{i:04}/@v/v1.0.0.mod");
        let r = http_request("GET", &format!("{}{p}", mg.url), &[], None).unwrap();
        assert_eq!(r.status, 200, "{p}");
    }

    // A slow upstream: every zip answer is held 120 s, longer than any wait
    // below, so the clean-up seen below is cancellation, not completion.
    up.control("delay?what=zip&ms=120000");
    up.reset_counters();

    // Watch memory and the spool while the storm runs.
    let stop = Arc::new(AtomicBool::new(false));
    let max_spool = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_spool, store) = (stop.clone(), max_spool.clone(), store.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                max_spool.fetch_max(spool_files(&store) as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = mg.url.clone();
    let (hung_up, hit_times) = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut storm = Vec::new();
        for i in 1..=CLIENTS {
            let (client, url) = (client.clone(), url.clone());
            storm.push(tokio::spawn(async move {
                // Hang up after 0.5 s.
                let r = client
                    .get(format!("{url}{}", zip_path(i)))
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await;
                // A hang-up is the point; another local failure (a refused
                // connect on a loaded machine) is reported, not fatal. An
                // answer would be: the upstream holds every zip for 120 s.
                match r {
                    Err(e) if e.is_timeout() => true,
                    Err(e) => {
                        eprintln!("{}: {e}", zip_path(i));
                        false
                    }
                    Ok(r) => panic!(
                        "{}: answered {} before the upstream did",
                        zip_path(i),
                        r.status()
                    ),
                }
            }));
        }
        // Meanwhile, the cached module, several times.
        let mut hit_times = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            let start = Instant::now();
            let r = client
                .get(format!("{url}{}", zip_path(0)))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("cached zip during the storm");
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.unwrap();
            hit_times.push(start.elapsed());
            assert!(body[..] == cached[..], "cached zip: wrong bytes");
        }
        let mut hung_up = 0;
        for t in storm {
            hung_up += t.await.unwrap() as usize;
        }
        (hung_up, hit_times)
    });
    eprintln!("{hung_up} of {CLIENTS} storm clients hung up after 0.5 s");
    assert!(hung_up > CLIENTS / 2, "the storm happened");
    eprintln!("cached hits during the storm: {hit_times:?}");
    for t in &hit_times {
        assert!(
            *t < Duration::from_secs(1),
            "a cached module took {t:?} during the storm"
        );
    }

    // After the storm: nothing left running, nothing left on disk.
    eventually(30, "inflight_fetches back to 0", || {
        mg.metric("modgate_inflight_fetches ") == 0.0
    });
    eventually(30, "the spool directory empties", || {
        let n = spool_files(&store);
        if n > 0 {
            eprintln!(
                "inflight {} upstream now {} spool: {:?}",
                mg.metric("modgate_inflight_fetches "),
                concurrency(&up, "now:zip"),
                std::fs::read_dir(store.join("tmp"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>()
            );
        }
        n == 0
    });
    eventually(30, "no zip request left at the upstream", || {
        concurrency(&up, "now:zip") == 0
    });
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    let max_zip = concurrency(&up, "max:zip");
    let zips_asked = up.hits_suffix(".zip");
    let hwm = mg.status_kib("VmHWM:");
    let queued = mg.metric("modgate_limit_hits_total{limit=\"miss_queued\"} ");
    eprintln!(
        "storm: upstream saw at most {max_zip} zip requests at once ({zips_asked} in all); \
         at most {} spool files; modgate VmHWM {hwm} KiB; {queued} misses queued",
        max_spool.load(Ordering::SeqCst)
    );
    assert!(max_zip >= 1, "the storm reached the upstream");
    assert!(
        max_zip <= MAX_MISSES,
        "upstream saw {max_zip} concurrent zip fetches, more than max_misses = {MAX_MISSES}"
    );
    assert!(queued > 0.0, "the miss limit bit and was counted");
    assert!(hwm > 0, "read modgate's /proc status");
    assert!(
        hwm < RSS_BOUND_KIB,
        "modgate's peak RSS {hwm} KiB is over the stated bound {RSS_BOUND_KIB} KiB"
    );

    // A key whose waiters all gave up is asked again: a fresh attempt
    // (the upstream is asked again), and it succeeds.
    up.control("delay?what=zip&ms=0");
    let abandoned = (1..=CLIENTS)
        .find(|&i| up.hits(&zip_path(i)) > 0)
        .expect("some storm zip reached the upstream");
    let before = up.hits(&zip_path(abandoned));
    let r = http_request(
        "GET",
        &format!("{}{}", mg.url, zip_path(abandoned)),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}: {}", zip_path(abandoned), r.text());
    assert_eq!(r.body, up.get(&zip_path(abandoned)).body);
    assert_eq!(
        up.hits(&zip_path(abandoned)),
        before + 2, // modgate's fresh fetch, and ours just above
        "a fresh attempt reached the upstream"
    );
}

#[test]
fn a_miss_queued_past_miss_queue_secs_is_503_with_retry_after() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::modgate::test_config(data.path(), &up.url, &up.gosumdb());
    cfg.limits.max_misses = 1;
    cfg.limits.miss_queue_secs = 1;
    let mg = common::modgate::Modgate::start(cfg);
    // A cached module first.
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.mod").0, 200);
    up.control("delay?what=zip&ms=10000");
    // One slow zip miss holds the only slot (its client gives up after 4 s).
    let url = mg.url.clone();
    let holder = std::thread::spawn(move || {
        let _ = common::refupstream::http_request_timeout(
            "GET",
            &format!("{url}/example.com/hello/@v/v1.0.0.zip"),
            &[],
            None,
            Duration::from_secs(4),
        );
    });
    eventually(10, "the slow zip reaches the upstream", || {
        concurrency(&up, "now:zip") == 1
    });
    // A second miss waits a second for the slot, then is told to come back.
    let r = http_request(
        "GET",
        &format!("{}/example.com/hello/@v/v1.1.0.mod", mg.url),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.text().contains("max_misses"), "{}", r.text());
    // A hit is never queued behind misses.
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.mod").0, 200);
    let (_, _, m) = mg.get("/metrics");
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("modgate_limit_hits_total{limit=\"miss_queue_timeout\"} 1"),
        "{m}"
    );
    up.control("delay?what=zip&ms=0");
    drop(holder);
}

#[test]
fn a_download_past_the_spool_budget_is_503_and_leaves_nothing() {
    let up = RefUpstream::start(&[]);
    let m = "example.com/limits/spool";
    up.control(&format!("add?module={m}&version=v1.0.0&size={}", 64 << 10));
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::modgate::test_config(data.path(), &up.url, &up.gosumdb());
    cfg.limits.max_spool_bytes = 16 << 10; // less than the zip
    let mg = common::modgate::Modgate::start(cfg);
    let (s, _, _) = mg.get(&format!("/{m}/@v/v1.0.0.mod"));
    assert_eq!(s, 200);
    let r = http_request("GET", &format!("{}/{m}/@v/v1.0.0.zip", mg.url), &[], None).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.text().contains("max_spool_bytes"), "{}", r.text());
    eventually(10, "the spool directory empties", || {
        spool_files(data.path()) == 0
    });
    let (_, _, metrics) = mg.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("modgate_limit_hits_total{limit=\"spool_bytes\"} 1"),
        "{metrics}"
    );
}
