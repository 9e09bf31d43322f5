//! End to end: trust that survives restarts, a forked checksum database, the
//! checksum database through the proxy (`/sumdb/<name>/...`), and a database
//! that is down — with the real `go` command and the Go reference upstream.

mod common;

use std::process::Command;

use common::goclient::{GoClient, output_text};
use common::modgate::{Modgate, test_config};
use common::refupstream::{BUILTIN_MODULES, RefUpstream};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The go command's `!`-escaping of a module path or version.
fn esc(s: &str) -> String {
    modgate::module::escape_path(s)
        .or_else(|_| modgate::module::escape_version(s))
        .unwrap()
}

/// Runs the modgate binary; returns (success, stdout + stderr).
fn modgate_bin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .env_remove("MODGATE_DATA_DIR")
        .env_remove("MODGATE_CONFIG")
        .output()
        .expect("run modgate");
    (out.status.success(), output_text(&out))
}

#[test]
fn go_verifies_through_modgate_sumdb_endpoints() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::against(&up, data.path());
    let name = up.sumdb_name.clone();

    // Only the configured database is proxied.
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/supported"));
    assert_eq!(s, 200);
    let (s, _, _) = mg.get("/sumdb/sum.golang.org/supported");
    assert_eq!(s, 404);
    let (s, _, _) = mg.get("/sumdb/other.example/lookup/example.com/hello@v1.0.0");
    assert_eq!(s, 404);

    // GOSUMDB is the key alone: its name's host does not exist, so the go
    // command can only reach the database through modgate's /sumdb/.
    let go = GoClient::new();
    let results = go.mod_download_json(&mg.url, &up.vkey, BUILTIN_MODULES);
    let reference = up.modules();
    assert_eq!(results.len(), BUILTIN_MODULES.len());
    for r in &results {
        assert_eq!(r.error, "", "{r:?}");
        let m = reference
            .iter()
            .find(|m| m.path == r.path && m.version == r.version)
            .unwrap();
        assert_eq!(r.sum, m.sum, "{}", r.path);
        assert_eq!(r.go_mod_sum, m.gomodsum, "{}", r.path);
    }
    // go did look each module up in the database (its module cache keeps
    // the lookups) — and the database saw each lookup once, from modgate:
    // go's lookups were answered from modgate's cache of verified responses.
    let counters = up.counters();
    for m in BUILTIN_MODULES {
        let (p, v) = m.split_once('@').unwrap();
        let cached = go
            .modcache()
            .join(format!("cache/download/sumdb/{name}/lookup"))
            .join(format!("{}@{}", esc(p), esc(v)));
        assert!(
            cached.exists(),
            "go did not look up {m}: {}",
            cached.display()
        );
        let hits = counters
            .get(&format!("/sumdb/{name}/lookup/{}@{}", esc(p), esc(v)))
            .copied()
            .unwrap_or(0);
        assert_eq!(hits, 1, "{m}: {counters:?}");
    }

    let db_tiles: u64 = counters
        .iter()
        .filter(|(k, _)| k.contains("/tile/"))
        .map(|(_, v)| v)
        .sum();
    eprintln!("database tile requests: {db_tiles}; counters: {counters:?}");

    // The served lookup is the database's response byte for byte.
    let path = "/lookup/example.com/hello@v1.1.0";
    let direct = up.get(&format!("/sumdb/{name}{path}"));
    let (s, _, via) = mg.get(&format!("/sumdb/{name}{path}"));
    assert_eq!(s, 200);
    assert_eq!(
        text(&via).split("\n\n").next(),
        direct.text().split("\n\n").next()
    );

    // latest is verified and served; tiles are authenticated ones.
    let (s, _, latest) = mg.get(&format!("/sumdb/{name}/latest"));
    assert_eq!(s, 200, "{}", text(&latest));
    assert!(text(&latest).starts_with("go.sum database tree\n"));
    let (s, _, tile) = mg.get(&format!("/sumdb/{name}/tile/8/0/000.p/3"));
    assert_eq!(s, 200, "{}", text(&tile));
    assert_eq!(
        tile,
        up.get(&format!("/sumdb/{name}/tile/8/0/000.p/3")).body
    );
    // Beyond the database's tree, malformed, record data: not served.
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/tile/8/0/001"));
    assert_eq!(s, 404);
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/tile/8/0/000.p/0"));
    assert_eq!(s, 400);
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/tile/8/data/000.p/1"));
    assert_eq!(s, 404);
}

#[test]
fn fork_is_refused_across_restarts_until_reset() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let name = up.sumdb_name.clone();
    let mut mg = Modgate::against(&up, data.path());

    // modgate comes to trust the honest tree.
    let go = GoClient::new();
    let first = go.mod_download_json(
        &mg.url,
        &up.vkey,
        &["example.com/hello@v1.0.0", "example.com/nested@v1.0.0"],
    );
    assert!(first.iter().all(|r| r.error.is_empty()), "{first:?}");

    // Same key, a different log; then a version only the forked log has.
    up.fork();
    up.add("example.com/fresh", "v1.0.0");
    let (s, _, body) = mg.get("/example.com/fresh/@v/v1.0.0.mod");
    let body = text(&body);
    assert_eq!(s, 403, "{body}");
    assert!(
        body.starts_with("SECURITY: example.com/fresh@v1.0.0: ")
            && body.contains("presented a forked log")
            && body.contains(&format!("modgate trust reset --sumdb {name}")),
        "{body}"
    );

    // The go command shows why.
    let go2 = GoClient::new();
    let env = [("GOPROXY", mg.url.as_str()), ("GOSUMDB", "off")];
    let out = go2.run(
        &["mod", "download", "-json", "example.com/fresh@v1.0.0"],
        &env,
    );
    let out_text = output_text(&out);
    assert!(!out.status.success(), "{out_text}");
    assert!(
        out_text.contains("403") && out_text.contains("presented a forked log"),
        "{out_text}"
    );

    // What was verified before is still served (proxy and sumdb lookups);
    // everything new is refused, the database's latest included.
    let again = go2.mod_download_json_env(&["example.com/hello@v1.0.0"], &env);
    assert_eq!(again[0].error, "", "{again:?}");
    let (s, _, _) = mg.get("/example.com/nested/@v/v1.0.0.zip");
    assert_eq!(s, 200);
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/lookup/example.com/hello@v1.0.0"));
    assert_eq!(s, 200);
    let (s, _, body) = mg.get(&format!("/sumdb/{name}/latest"));
    assert_eq!(s, 403, "{}", text(&body));
    assert!(text(&body).contains("presented a forked log"));
    let (s, _, _) = mg.get("/example.com/hello/@v/v1.1.0.info");
    assert_eq!(s, 403);

    // The evidence: both signed notes and the proof hashes.
    let evidence = modgate::trust::evidence_dirs(data.path(), &name);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    for f in ["old_note", "new_note", "proof", "evidence.txt"] {
        assert!(evidence[0].join(f).is_file(), "{f} missing");
    }
    let ev = std::fs::read_to_string(evidence[0].join("evidence.txt")).unwrap();
    assert!(
        ev.contains("go.sum database server misbehavior detected!"),
        "{ev}"
    );
    let old_note = std::fs::read_to_string(evidence[0].join("old_note")).unwrap();
    let new_note = std::fs::read_to_string(evidence[0].join("new_note")).unwrap();
    assert_ne!(old_note, new_note);
    assert!(
        !std::fs::read_to_string(evidence[0].join("proof"))
            .unwrap()
            .is_empty()
    );

    // While the server holds the data dir, `trust show` is answered by the
    // server (admin socket); `trust reset` refuses, names the way, and
    // touches nothing.
    let (ok, out) = modgate_bin(&["trust", "show", "--data-dir", &dir]);
    assert!(ok && out.contains("FORKED"), "{out}");
    let (ok, out) = modgate_bin(&["trust", "reset", "--data-dir", &dir, "--sumdb", &name]);
    assert!(!ok, "{out}");
    assert!(out.contains("stop `modgate serve`"), "{out}");
    let e = modgate::admin::trust::reset(data.path(), &name).unwrap_err();
    assert!(
        matches!(e, modgate::admin::trust::TrustAdminError::Locked(_)),
        "{e}"
    );
    let (s, _, _) = mg.get("/example.com/hello/@v/v1.0.0.zip");
    assert_eq!(s, 200);

    // A restart keeps refusing.
    mg.stop();
    let mut mg = Modgate::against(&up, data.path());
    let (s, _, body) = mg.get("/example.com/fresh/@v/v1.0.0.mod");
    assert_eq!(s, 403, "{}", text(&body));
    assert!(text(&body).contains("presented a forked log"));
    let (s, _, _) = mg.get("/example.com/hello/@v/v1.0.0.zip");
    assert_eq!(s, 200);
    mg.stop();

    // The operator looks, then resets.
    let (ok, shown) = modgate_bin(&["trust", "show", "--data-dir", &dir]);
    assert!(ok, "{shown}");
    assert!(
        shown.contains(&format!("checksum database {name}")),
        "{shown}"
    );
    assert!(shown.contains("FORKED"), "{shown}");
    assert!(
        shown.contains("go.sum database server misbehavior detected!"),
        "{shown}"
    );
    assert!(shown.contains("evidence directory:"), "{shown}");
    let report = modgate::admin::trust::reset(data.path(), &name).unwrap();
    assert!(report.cleared_fork);
    assert!(report.cleared_tree.is_some());
    let (ok, shown) = modgate_bin(&["trust", "show", "--data-dir", &dir, "--sumdb", &name]);
    assert!(ok, "{shown}");
    assert!(
        shown.contains("fork: none") && shown.contains("trusted tree: none"),
        "{shown}"
    );
    // Idempotent, through the binary too.
    let (ok, out) = modgate_bin(&["trust", "reset", "--data-dir", &dir, "--sumdb", &name]);
    assert!(ok && out.contains("was not set"), "{out}");

    // New modules verify again, against the current head, trusted afresh.
    let mg = Modgate::against(&up, data.path());
    let (s, _, body) = mg.get("/example.com/fresh/@v/v1.0.0.mod");
    assert_eq!(s, 200, "{}", text(&body));
    let go3 = GoClient::new();
    let r = go3.mod_download_json(&mg.url, &up.vkey, &["example.com/fresh@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    let state = modgate::admin::trust::show(data.path(), None);
    assert!(state.is_err(), "the running server holds the data dir");
}

fn sumdb_down(mode: &str) {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    if mode == "hang" {
        cfg.timeouts.request_secs = 2;
    }
    let name = up.sumdb_name.clone();
    let mg = Modgate::start(cfg);
    let go = GoClient::new();
    let first = go.mod_download_json(&mg.url, &up.vkey, &["example.com/hello@v1.0.0"]);
    assert_eq!(first[0].error, "", "{first:?}");

    up.down("sumdb", mode);
    // Cached: served without the database.
    let go2 = GoClient::new();
    let env = [("GOPROXY", mg.url.as_str()), ("GOSUMDB", "off")];
    let again = go2.mod_download_json_env(&["example.com/hello@v1.0.0"], &env);
    assert_eq!(again[0].error, "", "{again:?}");
    assert_eq!(again[0].sum, first[0].sum);
    let (s, _, _) = mg.get(&format!("/sumdb/{name}/lookup/example.com/hello@v1.0.0"));
    assert_eq!(s, 200);
    // latest falls back to the last trusted note.
    let (s, _, body) = mg.get(&format!("/sumdb/{name}/latest"));
    assert_eq!(s, 200, "{}", text(&body));
    assert!(text(&body).starts_with("go.sum database tree\n"));

    // Not cached: cannot be verified now — 502 or 504, never 403/404.
    let want = if mode == "hang" { 504 } else { 502 };
    for p in [
        "/example.com/hello/@v/v1.1.0.mod".to_string(),
        format!("/sumdb/{name}/lookup/example.com/nested@v1.0.0"),
    ] {
        let (s, _, body) = mg.get(&p);
        let body = text(&body);
        assert_eq!(s, want, "{p}: {body}");
        assert!(body.contains("cannot be verified now"), "{p}: {body}");
    }
    let out = go2.run(
        &["mod", "download", "-json", "example.com/hello@v1.1.0"],
        &env,
    );
    let out_text = output_text(&out);
    assert!(!out.status.success(), "{out_text}");
    assert!(out_text.contains("cannot be verified now"), "{out_text}");

    // Back up: verifies again.
    up.up();
    let (s, _, body) = mg.get("/example.com/hello/@v/v1.1.0.mod");
    assert_eq!(s, 200, "{}", text(&body));
}

#[test]
fn sumdb_down_503_serves_cache_and_refuses_new_with_502() {
    sumdb_down("503");
}

#[test]
fn sumdb_hanging_serves_cache_and_refuses_new_with_504() {
    sumdb_down("hang");
}

// ------------------------------------------------------------------------
// The client's proxy and fork-marker paths on logs built here (larger than
// the reference's: full tiles, two tiling levels), with in-memory ops.

#[path = "sumdb_support/mod.rs"]
mod sumdb_support;

mod client_level {
    use super::sumdb_support::{DirOps, block_on};
    use modgate::sumdb::client::{Client, ClientError, fork_file, latest_file};
    use modgate::sumdb::note::{self, Signer, key_pair_from_seed};
    use modgate::sumdb::tlog::*;
    use std::sync::Arc;

    struct Log {
        records: Vec<String>,
        storage: Vec<Hash>,
    }

    impl Log {
        fn new(prefix: &str, n: usize) -> Log {
            let records: Vec<String> = (0..n)
                .map(|i| {
                    let h = record_hash(format!("{prefix}{i}").as_bytes());
                    format!(
                        "example.com/{prefix}{i} v1.0.0 h1:{h}\n\
                         example.com/{prefix}{i} v1.0.0/go.mod h1:{h}\n"
                    )
                })
                .collect();
            let mut storage = Vec::new();
            for (i, r) in records.iter().enumerate() {
                let hs = stored_hashes(i as i64, r.as_bytes(), &storage).unwrap();
                storage.extend(hs);
            }
            Log { records, storage }
        }
        fn note(&self, n: i64, s: &Signer) -> Vec<u8> {
            let tree = Tree {
                n,
                hash: tree_hash(n, &self.storage).unwrap(),
            };
            note::sign(std::str::from_utf8(&format_tree(&tree)).unwrap(), &[s]).unwrap()
        }
        fn serve(&self, ops: &DirOps, n: i64, s: &Signer) {
            for t in new_tiles(8, 0, n) {
                ops.set(&t.path(), read_tile_data(&t, &self.storage).unwrap());
            }
            let note = self.note(n, s);
            for id in 0..n as usize {
                let mut resp = format!("{id}\n{}\n", self.records[id]).into_bytes();
                resp.extend_from_slice(&note);
                let name = self.records[id].split(' ').next().unwrap();
                ops.set(&format!("lookup/{name}@v1.0.0"), resp);
            }
            ops.set("latest", note);
        }
        fn tile(&self, path: &str) -> Vec<u8> {
            read_tile_data(&parse_tile_path(path).unwrap(), &self.storage).unwrap()
        }
    }

    fn keys() -> (Signer, String) {
        let (skey, vkey) = key_pair_from_seed("test.sumdb", &[9u8; 32]);
        (Signer::new(&skey).unwrap(), vkey)
    }

    fn tile(c: &Client, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
        block_on(c.proxy_tile(parse_tile_path(path).unwrap())).map(|t| t.map(|t| t.data))
    }

    #[test]
    fn proxied_tiles_are_authenticated_and_full_ones_cached() {
        let (s, vkey) = keys();
        let log = Log::new("m", 70_000);
        let ops = Arc::new(DirOps::new("/nonexistent"));
        log.serve(&ops, 66_000, &s);
        let c = Client::new(ops.clone(), &vkey).unwrap();
        // A lookup makes modgate trust the tree of size 66000.
        let v = block_on(c.lookup("example.com/m65999", "v1.0.0")).unwrap();
        assert_eq!(v.tree.n, 66_000);
        assert!(v.raw.starts_with(b"65999\n"));

        for path in [
            "tile/8/0/000",
            "tile/8/0/256",
            "tile/8/0/257.p/7",
            "tile/8/1/000",
            "tile/8/1/000.p/200",
            "tile/8/1/001.p/1",
            "tile/8/2/000.p/1",
            "tile/8/0/257.p/208",
        ] {
            assert_eq!(tile(&c, path).unwrap().unwrap(), log.tile(path), "{path}");
        }
        // Full tiles went to the tile cache; partial ones did not.
        let cache = ops.cache.lock().unwrap().clone();
        assert!(cache.contains_key("test.sumdb/tile/8/0/000"));
        assert!(cache.contains_key("test.sumdb/tile/8/1/000"));
        assert!(
            cache.keys().all(|k| !k.contains(".p/")),
            "{:?}",
            cache.keys()
        );

        // A forged tile (not yet cached) does not authenticate: a security error.
        let mut forged = log.tile("tile/8/0/100");
        forged[5] ^= 1;
        ops.set("tile/8/0/100", forged);
        let err = tile(&c, "tile/8/0/100").unwrap_err();
        assert!(err.is_security(), "{err}");

        // A client asking about a newer tree: modgate advances to the
        // database's latest first, then serves the tile authenticated.
        log.serve(&ops, 69_000, &s);
        assert_eq!(
            tile(&c, "tile/8/0/268.p/8").unwrap().unwrap(),
            log.tile("tile/8/0/268.p/8")
        );
        assert_eq!(c.latest().n, 69_000);

        // Beyond the database's own tree: not served. Data tiles: not served.
        assert_eq!(tile(&c, "tile/8/0/270").unwrap(), None);
        assert_eq!(tile(&c, "tile/8/1/001.p/14").unwrap(), None);
        assert_eq!(tile(&c, "tile/8/data/000").unwrap(), None);

        // latest: verified and merged; the database gone, the trusted one.
        let l = block_on(c.proxy_latest()).unwrap();
        assert!(!l.stale);
        assert_eq!(l.note, log.note(69_000, &s));
        ops.overrides.lock().unwrap().remove("latest");
        // (within the reuse window the cached answer stands)
        assert!(!block_on(c.proxy_latest()).unwrap().stale);
        let c2 = Client::new(ops.clone(), &vkey).unwrap();
        let l = block_on(c2.proxy_latest()).unwrap();
        assert!(l.stale, "served from the trusted note");
        assert_eq!(l.note, log.note(69_000, &s));
    }

    #[test]
    fn fork_marker_is_persisted_and_restores_the_refusal() {
        let (s, vkey) = keys();
        let a = Log::new("a", 600);
        let b = Log::new("b", 700);
        let ops = Arc::new(DirOps::new("/nonexistent"));
        a.serve(&ops, 600, &s);
        let c = Client::new(ops.clone(), &vkey).unwrap();
        block_on(c.lookup("example.com/a5", "v1.0.0")).unwrap();
        assert!(tile(&c, "tile/8/0/001").unwrap().is_some());

        b.serve(&ops, 700, &s);
        let err = block_on(c.lookup("example.com/b650", "v1.0.0")).unwrap_err();
        assert!(matches!(err, ClientError::Fork(_)), "{err}");
        let marker = c.fork_marker().expect("marker in memory");
        assert_eq!((marker.old_tree_size, marker.new_tree_size), (600, 700));
        assert!(marker.evidence.contains("SECURITY ERROR"));
        let stored = ops
            .config
            .lock()
            .unwrap()
            .get(&fork_file("test.sumdb"))
            .cloned();
        assert!(stored.is_some(), "fork marker persisted");

        // A new client on the same trust store (a restart) refuses at once.
        let c2 = Client::new(ops.clone(), &vkey).unwrap();
        assert!(!c2.is_forked(), "not loaded yet");
        block_on(c2.load()).unwrap();
        assert!(c2.is_forked());
        assert_eq!(c2.fork_marker(), Some(marker));
        assert_eq!(c2.latest().n, 600, "trusted tree restored too");
        assert!(matches!(
            block_on(c2.lookup("example.com/a6", "v1.0.0")),
            Err(ClientError::Forked)
        ));
        assert!(matches!(
            block_on(c2.proxy_latest()),
            Err(ClientError::Forked)
        ));
        // Cached full tiles (authenticated before) are still served; nothing new is.
        assert!(tile(&c2, "tile/8/0/001").unwrap().is_some());
        assert!(matches!(
            tile(&c2, "tile/8/0/002.p/5"),
            Err(ClientError::Forked)
        ));
        // Even a client that never looked up anything loads it lazily.
        let c3 = Client::new(ops.clone(), &vkey).unwrap();
        assert!(matches!(
            block_on(c3.verify_note(&b.note(700, &s))),
            Err(ClientError::Forked)
        ));

        // The operator's reset (marker and latest gone): trusts afresh.
        ops.config.lock().unwrap().remove(&fork_file("test.sumdb"));
        ops.config
            .lock()
            .unwrap()
            .remove(&latest_file("test.sumdb"));
        ops.cache.lock().unwrap().clear();
        let c4 = Client::new(ops.clone(), &vkey).unwrap();
        let v = block_on(c4.lookup("example.com/b650", "v1.0.0")).unwrap();
        assert_eq!(v.tree.n, 700);
        assert!(!c4.is_forked());
    }
}
