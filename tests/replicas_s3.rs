//! Replicas on one bucket (`--store s3://…`), against a real S3 server (moto)
//! on loopback and the reference upstream: a module fetched through one
//! replica is served by the other with no upstream request; objects
//! overwritten in the bucket are never served; a fork proven by one replica
//! stops the other and `trust reset` clears both; the trusted head never
//! moves backwards while replicas race; a paused bucket and a replica killed
//! mid-upload leave nothing half-written; an endpoint that ignores
//! conditional writes is refused at start.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::binary::serve_env;
use common::goclient::GoClient;
use common::modgate::{http_get, http_get_from};
use common::refupstream::RefUpstream;
use common::s3::{NaiveS3, S3Server};

const BUCKET: &str = "modgate-replicas";
const PREFIX: &str = "mirror";

/// One replica process: `modgate serve` on the bucket, its own data dir.
struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    fn start(up: &RefUpstream, s3: &[(String, String)], data: &Path) -> Replica {
        Replica::start_with(up, s3, data, "")
    }

    /// `store_extra`: more `[store]` keys.
    fn start_with(
        up: &RefUpstream,
        s3: &[(String, String)],
        data: &Path,
        store_extra: &str,
    ) -> Replica {
        let config = data.with_extension("toml");
        // Short bucket timeouts and trust polls, so outages show in seconds.
        std::fs::write(
            &config,
            format!(
                "[store]\ntimeout_secs = 3\npoll_secs = 1\n{store_extra}\n\
                 [watch]\nhead_interval_secs = 0\n[audit]\npublish_secs = 1\n"
            ),
        )
        .unwrap();
        let store = format!("s3://{BUCKET}/{PREFIX}");
        let gosumdb = up.gosumdb();
        let policy = data.with_extension("policy.toml");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--data-dir"),
            data.as_os_str(),
            OsStr::new("--upstream"),
            OsStr::new(&up.url),
            OsStr::new("--sumdb"),
            OsStr::new(&gosumdb),
            OsStr::new("--store"),
            OsStr::new(&store),
        ];
        // A policy file beside the data dir, if the test wrote one.
        if policy.exists() {
            args.extend([OsStr::new("--policy"), policy.as_os_str()]);
        }
        let (child, url) = serve_env(&args, s3, "info", false);
        Replica { child, url }
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let (s, _, body) = http_get(&format!("{}{path}", self.url));
        (s, body)
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        String::from_utf8_lossy(&body)
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The usual fixture: a bucket, the reference upstream and two replicas on
/// it, each with its own data dir (fields drop in order: replicas first).
struct Two {
    r1: Replica,
    r2: Replica,
    up: RefUpstream,
    s3: S3Server,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Two {
    fn start() -> Two {
        let s3 = bucket();
        let up = RefUpstream::start(&[]);
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let r1 = Replica::start(&up, &s3.env(), &dirs.0.path().join("r1"));
        let r2 = Replica::start(&up, &s3.env(), &dirs.1.path().join("r2"));
        Two {
            r1,
            r2,
            up,
            s3,
            _dirs: dirs,
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bucket() -> S3Server {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    s3
}

fn modgate(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs")
}

/// Waits up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

/// The index entry the bucket holds for `m@v` `kind`, as JSON.
fn entry_json(s3: &S3Server, m: &str, v: &str, kind: &str) -> Option<serde_json::Value> {
    let key = format!("{PREFIX}/versions/{m}/@v/{v}.{kind}.json");
    s3.get_object(BUCKET, &key)
        .map(|b| serde_json::from_slice(&b).expect("entry JSON"))
}

#[test]
fn a_module_fetched_through_one_replica_is_served_by_the_other_without_upstream() {
    let two = Two::start();
    let Two { r1, r2, up, s3, .. } = &two;

    let go = GoClient::new();
    let first = go.mod_download_json(&r1.url, &up.vkey, &["example.com/hello@v1.0.0"]);
    assert_eq!(first[0].error, "", "{first:?}");
    // Published: blobs, then each artifact's entry.
    for kind in ["info", "mod", "zip"] {
        let e = entry_json(s3, "example.com/hello", "v1.0.0", kind).expect(kind);
        let digest = e["digest"].as_str().unwrap().to_string();
        assert!(
            s3.get_object(BUCKET, &format!("{PREFIX}/blobs/sha256/{digest}"))
                .is_some(),
            "{kind} blob missing"
        );
    }

    up.reset_counters();
    let go2 = GoClient::new();
    let second = go2.mod_download_json(&r2.url, &up.vkey, &["example.com/hello@v1.0.0"]);
    assert_eq!(second[0].error, "", "{second:?}");
    assert_eq!(second[0].sum, first[0].sum);
    for ext in ["info", "mod", "zip"] {
        assert_eq!(
            up.hits(&format!("/example.com/hello/@v/v1.0.0.{ext}")),
            0,
            "replica 2 asked upstream for the {ext}; counters: {:?}",
            up.counters()
        );
    }
    assert_eq!(
        r2.metric("modgate_shared_reads_total{outcome=\"adopted\"}"),
        3.0
    );
    // Totals are the bucket's: the same on both replicas, not added up.
    let objects = r1.metric("modgate_store_objects");
    assert!(objects >= 3.0, "{objects}");
    assert!(eventually(20, || r2.metric("modgate_store_objects") == objects));

    // `cache ls` against the bucket, without a replica.
    let scratch = tempfile::tempdir().unwrap();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let dir = scratch.path().to_str().unwrap();
    let o = modgate(
        &["cache", "ls", "--store", &store, "--data-dir", dir],
        &s3.env(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("example.com/hello  v1.0.0   info,mod,zip"),
        "{}",
        text(&o.stdout)
    );
    // `cache verify` re-hashes the bucket's blobs.
    let o = modgate(
        &["cache", "verify", "--store", &store, "--data-dir", dir],
        &s3.env(),
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("checked 3 blobs (3 index entries): all match"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn objects_overwritten_in_the_bucket_are_never_served() {
    let s3 = bucket();
    let up = RefUpstream::start(&[]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1 = Replica::start(&up, &s3.env(), &d1.path().join("r1"));
    let zip = "/example.com/hello/@v/v1.0.0.zip";
    let modp = "/example.com/hello/@v/v1.0.0.mod";
    let (s, honest_zip) = r1.get(zip);
    assert_eq!(s, 200);
    let (s, honest_mod) = r1.get(modp);
    assert_eq!(s, 200);

    // The zip's blob overwritten with other bytes (its entry unchanged).
    let ze = entry_json(&s3, "example.com/hello", "v1.0.0", "zip").unwrap();
    let zdigest = ze["digest"].as_str().unwrap();
    s3.put_object(
        BUCKET,
        &format!("{PREFIX}/blobs/sha256/{zdigest}"),
        b"PK not the zip you verified",
    );
    // The .mod: a consistent pair — a new blob and an entry naming it (its
    // SHA-256 matches), but not the go.mod the checksum database holds.
    let evil = b"module example.com/hello\n\nrequire example.com/evil v1.0.0\n";
    let evil_digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(evil))
    };
    s3.put_object(
        BUCKET,
        &format!("{PREFIX}/blobs/sha256/{evil_digest}"),
        evil,
    );
    let mut me = entry_json(&s3, "example.com/hello", "v1.0.0", "mod").unwrap();
    me["digest"] = serde_json::json!(evil_digest);
    me["size"] = serde_json::json!(evil.len());
    s3.put_object(
        BUCKET,
        &format!("{PREFIX}/versions/example.com/hello/@v/v1.0.0.mod.json"),
        &serde_json::to_vec(&me).unwrap(),
    );

    // A replica with a cold local tier: re-verifies, refuses the bucket's
    // copies, fetches from upstream, serves the honest bytes.
    up.reset_counters();
    let r2 = Replica::start(&up, &s3.env(), &d2.path().join("r2"));
    let (s, m) = r2.get(modp);
    assert_eq!(s, 200, "{}", text(&m));
    assert_eq!(m, honest_mod, "served a go.mod it did not verify");
    let (s, z) = r2.get(zip);
    assert_eq!(s, 200, "{}", text(&z));
    assert!(z == honest_zip, "served a zip it did not verify");
    assert_eq!(up.hits(zip), 1, "{:?}", up.counters());
    assert_eq!(up.hits(modp), 1, "{:?}", up.counters());
    assert_eq!(
        r2.metric("modgate_shared_reads_total{outcome=\"rejected\"}"),
        1.0,
        "the .mod pair was read and rejected (the zip's blob failed its hash first)"
    );
    // Kept for inspection, and the bucket repaired by the upstream fetch.
    let q = std::fs::read_dir(d2.path().join("r2").join("quarantine"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(q, 2, "both bad copies quarantined locally");
    let me = entry_json(&s3, "example.com/hello", "v1.0.0", "mod").unwrap();
    assert_ne!(me["digest"].as_str().unwrap(), evil_digest);
    let fixed = s3
        .get_object(BUCKET, &format!("{PREFIX}/blobs/sha256/{zdigest}"))
        .unwrap();
    assert!(fixed == honest_zip, "the zip blob was not repaired");
    // The first replica serves its own verified copy meanwhile.
    let (s, z) = r1.get(zip);
    assert_eq!(s, 200);
    assert!(z == honest_zip);
}

#[test]
fn a_fork_seen_by_one_replica_stops_the_other_until_trust_reset() {
    let two = Two::start();
    let Two { r1, r2, up, s3, .. } = &two;
    let name = up.sumdb_name.clone();
    assert_eq!(r1.get("/example.com/hello/@v/v1.0.0.mod").0, 200);
    assert_eq!(r2.get("/example.com/nested/@v/v1.0.0.mod").0, 200);

    up.fork();
    up.add("example.com/fresh", "v1.0.0");
    let (s, body) = r1.get("/example.com/fresh/@v/v1.0.0.mod");
    assert_eq!(s, 403, "{}", text(&body));
    assert!(text(&body).contains("forked"), "{}", text(&body));
    // The marker is in the bucket; replica 2 stops within seconds, having
    // seen no fork itself.
    assert!(
        s3.get_object(BUCKET, &format!("{PREFIX}/trust/{name}/fork"))
            .is_some()
    );
    assert!(eventually(10, || {
        let (_, b) = r2.get("/readyz");
        text(&b).contains("\"forked\":true")
    }));
    up.add("example.com/other", "v1.0.0");
    let (s, body) = r2.get("/example.com/other/@v/v1.0.0.mod");
    assert_eq!(s, 403, "{}", text(&body));
    // Verified before: still served.
    assert_eq!(r2.get("/example.com/nested/@v/v1.0.0.mod").0, 200);

    // `trust show` and `trust reset` against the bucket, replicas running.
    let scratch = tempfile::tempdir().unwrap();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let dir = scratch.path().to_str().unwrap();
    let o = modgate(
        &["trust", "show", "--store", &store, "--data-dir", dir],
        &s3.env(),
    );
    assert!(text(&o.stdout).contains("FORKED"), "{}", text(&o.stdout));
    let o = modgate(
        &[
            "trust",
            "reset",
            "--store",
            &store,
            "--data-dir",
            dir,
            "--sumdb",
            &name,
        ],
        &s3.env(),
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    for r in [&r1, &r2] {
        assert!(
            eventually(10, || {
                let (_, b) = r.get("/readyz");
                text(&b).contains("\"forked\":false")
            }),
            "a replica still refuses after the reset"
        );
    }
    // Both verify again (against the database's current head, trusted afresh).
    assert_eq!(r1.get("/example.com/fresh/@v/v1.0.0.mod").0, 200);
    assert_eq!(r2.get("/example.com/other/@v/v1.0.0.mod").0, 200);
}

#[test]
fn the_trusted_head_never_moves_backwards_while_replicas_race() {
    let two = Two::start();
    let Two { r1, r2, up, s3, .. } = &two;
    let name = up.sumdb_name.clone();
    let key = format!("{PREFIX}/trust/{name}/latest");
    let size = |note: &[u8]| -> u64 {
        // "<origin>\n<size>\n<hash>\n\n— sig"
        text(note)
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, key) = (stop.clone(), key.clone());
        let endpoint_env = s3.env();
        let _ = endpoint_env;
        let s3_port = s3.endpoint();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let url = format!("{s3_port}/{BUCKET}/{key}");
                let r = common::refupstream::http_request(
                    "GET",
                    &url,
                    &[("Authorization", common::s3::MOTO_AUTH)],
                    None,
                );
                if let Ok(r) = r
                    && r.status == 200
                {
                    seen.push(r.body);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    // Each round grows the log and sends each replica after a different new
    // version at once, so both advance the shared head concurrently.
    for i in 0..8 {
        let (a, b) = (
            format!("example.com/race{i}a"),
            format!("example.com/race{i}b"),
        );
        up.add(&a, "v1.0.0");
        up.add(&b, "v1.0.0");
        let (u1, u2) = (r1.url.clone(), r2.url.clone());
        let t1 = std::thread::spawn(move || http_get(&format!("{u1}/{a}/@v/v1.0.0.mod")).0);
        let t2 = std::thread::spawn(move || http_get(&format!("{u2}/{b}/@v/v1.0.0.mod")).0);
        assert_eq!(t1.join().unwrap(), 200);
        assert_eq!(t2.join().unwrap(), 200);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen: Vec<u64> = watcher.join().unwrap().iter().map(|n| size(n)).collect();
    assert!(!seen.is_empty());
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the stored head moved backwards: {seen:?}"
    );
    let last = size(&s3.get_object(BUCKET, &key).unwrap());
    let trusted = |r: &Replica| {
        let (_, b) = r.get("/readyz");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["sumdb"]["tree_size"].as_u64().unwrap()
    };
    assert_eq!(
        last,
        trusted(r1).max(trusted(r2)),
        "the newest head is stored"
    );
}

#[test]
fn a_paused_bucket_and_a_replica_killed_mid_upload_leave_nothing_half_written() {
    let s3 = bucket();
    let up = RefUpstream::start(&[]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut r1 = Replica::start(&up, &s3.env(), &d1.path().join("r1"));
    let cached = "/example.com/hello/@v/v1.0.0.zip";
    assert_eq!(r1.get(cached).0, 200);

    s3.pause();
    // Hits from the local tier are served; a miss is a clear 503/504;
    // readiness says why.
    let (s, _) = r1.get(cached);
    assert_eq!(s, 200);
    let (s, body) = r1.get("/example.com/nested/@v/v1.0.0.mod");
    assert!(s == 503 || s == 504, "{s} {}", text(&body));
    assert!(
        text(&body).contains("s3://modgate-replicas"),
        "{}",
        text(&body)
    );
    assert!(eventually(15, || r1.get("/readyz").0 == 503));
    // The limit that bit is named and counted.
    assert!(r1.metric("modgate_limit_hits_total{limit=\"store_timeout\"}") >= 1.0);

    // A zip miss that is uploading when the replica is killed.
    let url = format!("{}/example.com/nested/@v/v1.0.0.zip", r1.url);
    let t = std::thread::spawn(move || common::modgate::http_get(&url).0);
    std::thread::sleep(Duration::from_millis(1500));
    r1.kill();
    let _ = t.join();
    s3.resume();

    // Nothing half-written is visible: no entry without its blob.
    for key in s3.list(BUCKET, &format!("{PREFIX}/versions/")) {
        let e: serde_json::Value =
            serde_json::from_slice(&s3.get_object(BUCKET, &key).unwrap()).unwrap();
        let digest = e["digest"].as_str().unwrap();
        assert!(
            s3.get_object(BUCKET, &format!("{PREFIX}/blobs/sha256/{digest}"))
                .is_some(),
            "{key} names a missing blob"
        );
    }
    assert!(entry_json(&s3, "example.com/nested", "v1.0.0", "zip").is_none());

    // Everything recovers: a new replica, and the first one restarted.
    let r2 = Replica::start(&up, &s3.env(), &d2.path().join("r2"));
    let (s, body) = r2.get("/example.com/nested/@v/v1.0.0.zip");
    assert_eq!(s, 200, "{}", text(&body));
    let r1 = Replica::start(&up, &s3.env(), &d1.path().join("r1"));
    assert_eq!(r1.get(cached).0, 200);
    assert_eq!(r1.get("/example.com/nested/@v/v1.0.0.zip").0, 200);
    assert!(eventually(15, || r1.get("/readyz").0 == 200));
}

#[test]
fn an_endpoint_that_ignores_conditional_writes_is_refused_at_start() {
    let naive = NaiveS3::start();
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--upstream", &up.url, "--sumdb", &up.gosumdb()])
        .args(["--store", &format!("s3://{BUCKET}")])
        .envs(naive.env())
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs");
    let err = text(&o.stderr);
    assert!(!o.status.success(), "started on a naive endpoint: {err}");
    assert!(err.contains("does not enforce conditional writes"), "{err}");
}

#[test]
fn audit_who_answers_for_every_replica() {
    let s3 = bucket();
    let up = RefUpstream::start(&[]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir1, dir2) = (d1.path().join("r1"), d2.path().join("r2"));
    let r1 = Replica::start(&up, &s3.env(), &dir1);
    let r2 = Replica::start(&up, &s3.env(), &dir2);
    let path = "/example.com/hello/@v/v1.0.0.zip";
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let (s, _) = http_get_from(&format!("{}{path}", r1.url), ip("127.0.0.2"), &[]);
    assert_eq!(s, 200);
    let (s, _) = http_get_from(&format!("{}{path}", r2.url), ip("127.0.0.3"), &[]);
    assert_eq!(s, 200);

    let clients = |out: &Output| -> std::collections::BTreeSet<String> {
        text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["kind"] == "zip")
            .filter_map(|r| r["client"].as_str().map(String::from))
            .collect()
    };
    let both: std::collections::BTreeSet<String> =
        ["127.0.0.2", "127.0.0.3"].map(String::from).into();
    // Through replica 1 (its admin socket): its own trail and replica 2's.
    let d = dir1.to_str().unwrap();
    assert!(
        eventually(20, || {
            let o = modgate(
                &[
                    "audit",
                    "who",
                    "--data-dir",
                    d,
                    "--json",
                    "example.com/hello@v1.0.0",
                ],
                &[],
            );
            clients(&o) == both
        }),
        "replica 1 does not see replica 2's fetch"
    );
    // Against the bucket alone, without a replica (each replica publishes
    // every second).
    let scratch = tempfile::tempdir().unwrap();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let sd = scratch.path().to_str().unwrap().to_string();
    let bucket_sees_both = |args: &[&str]| {
        eventually(20, || {
            let mut all = vec![args[0], args[1], "--store", &store, "--data-dir", &sd];
            all.extend_from_slice(&args[2..]);
            let o = modgate(&all, &s3.env());
            o.status.success() && clients(&o) == both
        })
    };
    assert!(bucket_sees_both(&[
        "audit",
        "who",
        "--json",
        "example.com/hello"
    ]));
    // `audit export` too: every replica's records.
    assert!(bucket_sees_both(&["audit", "export", "--since", "1h"]));
    drop((r1, r2));
}

#[test]
fn the_local_tier_is_bounded_and_refilled_from_the_bucket() {
    let s3 = bucket();
    let up = RefUpstream::start(&[]);
    let d = tempfile::tempdir().unwrap();
    // Room for about one version's artifacts.
    let r = Replica::start_with(&up, &s3.env(), &d.path().join("r"), "local_max_bytes = 600");
    for m in ["example.com/hello", "example.com/nested"] {
        for ext in ["info", "mod", "zip"] {
            let (s, b) = r.get(&format!("/{m}/@v/v1.0.0.{ext}"));
            assert_eq!(s, 200, "{}", text(&b));
        }
    }
    // hello, served least recently, left the local tier, not the bucket.
    let zip = entry_json(&s3, "example.com/hello", "v1.0.0", "zip").expect("in the bucket");
    let digest = zip["digest"].as_str().unwrap().to_string();
    let blob = d
        .path()
        .join("r/blobs/sha256")
        .join(&digest[..2])
        .join(&digest);
    assert!(eventually(10, || !blob.exists()), "still in the local tier");
    // Asked again: read back from the bucket and verified, not from upstream.
    up.reset_counters();
    let before = r.metric("modgate_shared_reads_total{outcome=\"adopted\"}");
    let (s, _) = r.get("/example.com/hello/@v/v1.0.0.zip");
    assert_eq!(s, 200);
    assert_eq!(
        up.hits("/example.com/hello/@v/v1.0.0.zip"),
        0,
        "{:?}",
        up.counters()
    );
    assert!(r.metric("modgate_shared_reads_total{outcome=\"adopted\"}") > before);
}

#[test]
fn a_policy_recheck_names_who_fetched_through_any_replica() {
    let s3 = bucket();
    let up = RefUpstream::start(&[]);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir1, dir2) = (d1.path().join("r1"), d2.path().join("r2"));
    let policy = "# nothing denied yet\n";
    std::fs::write(dir1.with_extension("policy.toml"), policy).unwrap();
    std::fs::write(dir2.with_extension("policy.toml"), policy).unwrap();
    let r1 = Replica::start(&up, &s3.env(), &dir1);
    let r2 = Replica::start(&up, &s3.env(), &dir2);
    // Fetched only through replica 2, by 127.0.0.3.
    let path = "/example.com/hello/@v/v1.0.0.zip";
    let (s, _) = http_get_from(
        &format!("{}{path}", r2.url),
        "127.0.0.3".parse().unwrap(),
        &[],
    );
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_secs(2)); // replica 2 publishes its trail
    // The version is denied on replica 1: its re-check of the bucket finds
    // it and names who fetched it, through replica 2.
    std::fs::write(
        dir1.with_extension("policy.toml"),
        "[[deny]]\nmodule = \"example.com/hello\"\nreason = \"SEC-9\"\n",
    )
    .unwrap();
    assert!(
        eventually(20, || {
            let (_, page) = r1.get("/");
            let page = text(&page);
            page.contains("example.com/hello") && page.contains("127.0.0.3")
        }),
        "{}",
        text(&r1.get("/").1)
    );
    assert_eq!(r1.get(path).0, 403);
    // The dashboard's search on replica 1 finds replica 2's record too.
    let (_, page) = r1.get("/?who=example.com/hello%40v1.0.0");
    assert!(text(&page).contains("127.0.0.3"), "{}", text(&page));
    drop(r2);
}

#[test]
fn cache_rm_against_the_bucket_reaches_every_replica() {
    let two = Two::start();
    let Two { r1, r2, up, s3, .. } = &two;
    let zip = "/example.com/hello/@v/v1.0.0.zip";
    assert_eq!(r1.get(zip).0, 200);
    assert_eq!(r2.get(zip).0, 200);
    let scratch = tempfile::tempdir().unwrap();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let o = modgate(
        &[
            "cache",
            "rm",
            "--store",
            &store,
            "--data-dir",
            scratch.path().to_str().unwrap(),
            "example.com/hello@v1.0.0",
        ],
        &s3.env(),
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(entry_json(s3, "example.com/hello", "v1.0.0", "zip").is_none());
    // Replica 2 drops its local copy within a poll: the next request is a
    // miss, fetched and verified again from upstream.
    up.reset_counters();
    assert!(
        eventually(10, || {
            assert_eq!(r2.get(zip).0, 200);
            up.hits(zip) >= 1
        }),
        "replica 2 still serves its local copy after cache rm"
    );
}
