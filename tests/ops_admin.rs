//! The admin commands, run as the real binary against data dirs that a real
//! modgate filled from the reference upstream: `cache ls | verify | rm`,
//! `prefetch`, and their refusal while a server holds the data dir.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;
use serde_json::Value;

fn modgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn start(up: &RefUpstream, data: &Path) -> Modgate {
    Modgate::start(test_config(data, &up.url, &up.gosumdb()))
}

/// Fetches all three artifacts of each module version through modgate.
fn traffic(mg: &Modgate, versions: &[(&str, &str)]) {
    for (m, v) in versions {
        for ext in ["info", "mod", "zip"] {
            let (status, _, body) = mg.get(&format!("/{m}/@v/{v}.{ext}"));
            assert_eq!(
                status,
                200,
                "{m}@{v}.{ext}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

fn ls_json(data: &str) -> Vec<Value> {
    let out = modgate(&["cache", "ls", "--json", "--data-dir", data]);
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn cache_ls_verify_rm_on_a_served_data_dir() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut mg = start(&up, dir.path());
    traffic(
        &mg,
        &[
            ("example.com/hello", "v1.0.0"),
            ("example.com/hello", "v1.1.0"),
            ("example.com/nested", "v1.0.0"),
        ],
    );

    // While the server holds the index, the commands are answered by the
    // server through its admin socket (rm is tested in tests/admin_socket.rs).
    for (args, says) in [
        (vec!["cache", "ls", "--data-dir", data], "example.com/hello"),
        (
            vec!["cache", "verify", "--data-dir", data],
            "all match what was verified",
        ),
    ] {
        let out = modgate(&args);
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(stdout.contains(says), "{args:?}: {stdout}");
    }
    mg.stop();
    drop(mg);

    // ls: one line per version, with kinds, size, and the tree it was proven in.
    let out = modgate(&["cache", "ls", "--data-dir", data]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("MODULE"), "{stdout}");
    assert_eq!(lines.len(), 4, "{stdout}");
    let hello = lines
        .iter()
        .find(|l| l.starts_with("example.com/hello ") && l.contains("v1.1.0"))
        .expect("hello v1.1.0 listed");
    assert!(hello.contains("info,mod,zip"), "{hello}");
    assert!(hello.contains("refsum.test size "), "{hello}");
    // Patterns: a glob, a prefix, a version glob.
    for (pat, n) in [
        ("example.com/hel*", 2),
        ("example.com/nested", 1),
        ("*@v1.1.*", 1),
        ("nothing.example", 0),
    ] {
        let out = modgate(&["cache", "ls", "--data-dir", data, pat]);
        assert_eq!(
            text(&out).0.lines().count(),
            n + 1,
            "{pat}: {:?}",
            text(&out)
        );
    }
    let entries = ls_json(data);
    assert_eq!(entries.len(), 9);
    assert!(
        entries
            .iter()
            .all(|e| e["verification"]["tree_size"].as_i64() > Some(0))
    );

    // verify: everything holds.
    let out = modgate(&["cache", "verify", "--data-dir", data]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(stdout.contains("all match what was verified"), "{stdout}");

    // Corrupt one stored zip on disk (same size, one byte flipped).
    let zip = entries
        .iter()
        .find(|e| {
            e["module"] == "example.com/hello" && e["version"] == "v1.1.0" && e["kind"] == "zip"
        })
        .unwrap();
    let digest = zip["digest"].as_str().unwrap();
    let blob = dir
        .path()
        .join("blobs/sha256")
        .join(&digest[..2])
        .join(digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();

    let out = modgate(&["cache", "verify", "--data-dir", data]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{err}");
    assert!(
        stdout.contains("BAD example.com/hello@v1.1.0 zip: content hash is"),
        "{stdout}"
    );
    assert!(stdout.contains("1 entries quarantined"), "{stdout}");
    assert!(!blob.exists(), "the bad blob was moved aside");
    let quarantined: Vec<_> = std::fs::read_dir(dir.path().join("quarantine"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].starts_with(digest));
    assert_eq!(ls_json(data).len(), 8, "the index entry was dropped");
    // Now everything left holds again.
    let out = modgate(&["cache", "verify", "--data-dir", data]);
    assert!(out.status.success(), "{:?}", text(&out));

    // rm: one version, then a whole module.
    let out = modgate(&[
        "cache",
        "rm",
        "--data-dir",
        data,
        "example.com/hello@v1.0.0",
    ]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        stdout.matches("removed example.com/hello@v1.0.0").count(),
        3,
        "{stdout}"
    );
    let out = modgate(&["cache", "rm", "--data-dir", data, "example.com/nested"]);
    assert!(out.status.success());
    let left = ls_json(data);
    assert!(
        left.iter()
            .all(|e| e["module"] == "example.com/hello" && e["version"] == "v1.1.0"),
        "{left:?}"
    );
    let out = modgate(&["cache", "rm", "--data-dir", data, "not a module"]);
    assert!(!out.status.success());

    // The server re-fetches and re-verifies what was quarantined or removed.
    let zips_before = up.hits_suffix(".zip");
    let mg = start(&up, dir.path());
    traffic(
        &mg,
        &[
            ("example.com/hello", "v1.0.0"),
            ("example.com/hello", "v1.1.0"),
            ("example.com/nested", "v1.0.0"),
        ],
    );
    assert_eq!(up.hits_suffix(".zip"), zips_before + 3);
    drop(mg);
    let out = modgate(&["cache", "verify", "--data-dir", data]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(ls_json(data).len(), 9);

    // A missing data dir is named, not created.
    let missing = dir.path().join("nope");
    let out = modgate(&["cache", "ls", "--data-dir", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("holds no modgate data"));
    assert!(!missing.exists());
}

#[test]
fn prefetch_go_sum_and_go_mod_through_the_pipeline() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let data_s = data.to_str().unwrap();
    let sums = up.modules();
    let sum_of = |m: &str, v: &str| {
        sums.iter()
            .find(|x| x.path == m && x.version == v)
            .unwrap_or_else(|| panic!("{m}@{v} in the reference"))
            .clone()
    };
    // A go.sum with full and go.mod-only lines, and a go.mod with a require block.
    let hello = sum_of("example.com/hello", "v1.1.0");
    let upper = sum_of("example.com/Upper/Case", "v1.0.0");
    let old = sum_of("example.com/hello", "v1.0.0");
    let go_sum = work.path().join("go.sum");
    std::fs::write(
        &go_sum,
        format!(
            "{p} {v} {s}\n{p} {v}/go.mod {g}\n{u} {uv} {us}\n{u} {uv}/go.mod {ug}\n{p} {ov}/go.mod {og}\n",
            p = hello.path,
            v = hello.version,
            s = hello.sum,
            g = hello.gomodsum,
            u = upper.path,
            uv = upper.version,
            us = upper.sum,
            ug = upper.gomodsum,
            ov = old.version,
            og = old.gomodsum,
        ),
    )
    .unwrap();
    let go_mod = work.path().join("go.mod");
    std::fs::write(
        &go_mod,
        "module example.com/main\n\ngo 1.19\n\nrequire (\n\texample.com/app v1.0.0\n\texample.com/nested v1.0.0 // indirect\n)\n",
    )
    .unwrap();
    let gosumdb = up.gosumdb();
    let base = [
        "prefetch",
        "--data-dir",
        data_s,
        "--upstream",
        up.url.as_str(),
        "--sumdb",
        gosumdb.as_str(),
    ];
    let run = |files: &[&Path]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        modgate(&args)
    };

    let out = run(&[&go_sum, &go_mod]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    // 4 full versions × 3 artifacts + hello v1.0.0's go.mod only.
    assert!(
        err.contains("prefetched 5 module versions: 13 artifacts fetched and verified, 0 already cached, 0 failed"),
        "{err}"
    );
    // Everything is in the store, as a served miss would have left it.
    let out = modgate(&["cache", "ls", "--json", "--data-dir", data_s]);
    let stored = text(&out).0;
    assert_eq!(stored.lines().count(), 13, "{stored}");
    let kinds_of_old: Vec<String> = stored
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["module"] == "example.com/hello" && e["version"] == "v1.0.0")
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds_of_old,
        ["mod"],
        "a go.mod-only go.sum line fetches only the go.mod"
    );

    // Again: all cached, nothing fetched.
    let zips = up.hits_suffix(".zip");
    let out = run(&[&go_sum]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("0 artifacts fetched and verified, 7 already cached"),
        "{err}"
    );
    assert_eq!(up.hits_suffix(".zip"), zips);

    // A go.sum whose hash disagrees with what the checksum database proved fails.
    let bad_sum = work.path().join("bad.sum");
    std::fs::write(
        &bad_sum,
        format!(
            "{} {} h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            hello.path, hello.version
        ),
    )
    .unwrap();
    let out = run(&[&bad_sum]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FAILED example.com/hello@v1.1.0"), "{err}");
    assert!(err.contains("but refsum.test proved h1:"), "{err}");

    // A tampered upstream is refused: nothing stored, non-zero exit.
    up.tamper("example.com/multi/v2", "v2.0.0", "zip");
    let tampered = work.path().join("multi.sum");
    let multi = sum_of("example.com/multi/v2", "v2.0.0");
    std::fs::write(
        &tampered,
        format!("{} {} {}\n", multi.path, multi.version, multi.sum),
    )
    .unwrap();
    let out = run(&[&tampered]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("FAILED example.com/multi/v2@v2.0.0: SECURITY: ")
            && err.contains("zip checksum mismatch"),
        "{err}"
    );
    let out = modgate(&["cache", "ls", "--data-dir", data_s, "example.com/multi/v2@"]);
    let listed = text(&out).0;
    assert!(!listed.contains("zip"), "{listed}");

    // While a server holds the data dir, prefetch asks it (admin socket):
    // the server's own pipeline fetches and verifies, and a go.sum hash that
    // disagrees still fails.
    let mg = Modgate::start(test_config(&data, &up.url, &up.gosumdb()));
    let out = run(&[&go_sum]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("0 artifacts fetched and verified, 7 already cached"),
        "{err}"
    );
    let app = sum_of("example.com/app", "v1.0.0");
    let app_sum = work.path().join("app.sum");
    std::fs::write(&app_sum, format!("{} {} {}\n", app.path, "v1.0.0", app.sum)).unwrap();
    let out = run(&[&app_sum, &bad_sum]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FAILED example.com/hello@v1.1.0"), "{err}");
    assert!(err.contains("prefetched 1 module versions"), "{err}");
    drop(mg);
}
