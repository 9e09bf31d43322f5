//! Smoke test for the Go x/mod oracle (`tests/oracle`): runs it with small
//! sizes and checks the output layout. Independent of modgate's own code.

mod common;

use std::fs;
use std::path::Path;

fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn assert_file(dir: &Path, rel: &str) {
    assert!(dir.join(rel).is_file(), "missing {rel}");
}

/// All files under `dir`, as paths relative to it.
fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, base, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().to_str().unwrap().to_string());
        }
    }
}

#[test]
fn oracle_output_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let sizes = [1, 255, 256, 257, 600];
    common::gobuild::run_oracle(out, &sizes, 3, 2);

    // Keys: "<name>+<hash>+<base64>" and "PRIVATE+KEY+<name>+...".
    let vkey = read(out, "vkey");
    assert!(vkey.starts_with("oracle.test+"), "{vkey:?}");
    assert_eq!(vkey.lines().count(), 1);
    assert!(read(out, "skey").starts_with("PRIVATE+KEY+oracle.test+"));
    let listed: Vec<i64> = read(out, "sizes")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(listed, sizes);

    // Signed notes: text "go.sum database tree\nN\nHASH\n", blank line, signature.
    for s in sizes {
        let note = read(out, &format!("note/{s}"));
        let header = format!("go.sum database tree\n{s}\n");
        assert!(note.starts_with(&header), "note/{s}: {note:?}");
        let sig = note.split("\n\n").nth(1).expect("signature block");
        assert!(sig.starts_with("— oracle.test "), "note/{s}: {note:?}");
    }

    // Tiles: full tiles once, partial tiles for every width (NewTiles(8, 0, size)).
    for t in [
        "tile/8/0/000",
        "tile/8/0/001",
        "tile/8/0/000.p/1",
        "tile/8/0/000.p/255",
        "tile/8/0/001.p/1",
        "tile/8/0/002.p/88", // 600 = 2*256 + 88
        "tile/8/1/000.p/1",
        "tile/8/1/000.p/2",
        "tile/8/data/000",
        "tile/8/data/001",
        "tile/8/data/000.p/1",
        "tile/8/data/002.p/88",
    ] {
        assert_file(out, t);
    }
    assert!(!out.join("tile/8/0/000.p/256").exists());
    assert_eq!(fs::read(out.join("tile/8/0/000")).unwrap().len(), 256 * 32);
    assert_eq!(
        fs::read(out.join("tile/8/1/000.p/2")).unwrap().len(),
        2 * 32
    );
    assert_eq!(
        fs::read(out.join("tile/8/0/002.p/88")).unwrap().len(),
        88 * 32
    );

    // Records: one per id, two go.sum lines each; data tiles are "id\nrecord\n" runs.
    for id in 0..600 {
        let rec = read(out, &format!("records/{id}"));
        assert_eq!(rec.lines().count(), 2, "records/{id}: {rec:?}");
        assert!(rec.lines().all(|l| l.contains(" h1:")), "records/{id}");
    }
    assert!(!out.join("records/600").exists());
    let data = read(out, "tile/8/data/000.p/1");
    assert_eq!(data, format!("0\n{}\n", read(out, "records/0")));

    // Lookups: "id\nrecord\n" then the signed note at the final size.
    let mut lookups = Vec::new();
    walk(&out.join("lookup"), &out.join("lookup"), &mut lookups);
    assert!(lookups.len() >= 10, "{lookups:?}");
    let final_note = read(out, "note/600");
    let mut ids = Vec::new();
    for l in &lookups {
        assert!(l.contains('@'), "{l}");
        let body = read(out, &format!("lookup/{l}"));
        let (id, rest) = body.split_once('\n').unwrap();
        let id: usize = id.parse().unwrap();
        let rec = read(out, &format!("records/{id}"));
        assert_eq!(rest, format!("{rec}\n{final_note}"), "lookup/{l}");
        ids.push(id);
    }
    assert!(ids.contains(&0) && ids.contains(&599), "{ids:?}");

    // Zips.
    for i in 0..2 {
        let zip = fs::read(out.join(format!("zips/{i}.zip"))).unwrap();
        assert!(zip.starts_with(b"PK\x03\x04"));
        assert!(read(out, &format!("zips/{i}.mod")).starts_with("module "));
        assert_eq!(
            read(out, &format!("zips/{i}.version")).split(' ').count(),
            2
        );
        for h in ["h1", "mod.h1"] {
            let h1 = read(out, &format!("zips/{i}.{h}"));
            assert!(h1.starts_with("h1:") && h1.len() == 48, "{h1:?}");
        }
    }

    // Deterministic for a given seed.
    let again = tempfile::tempdir().unwrap();
    common::gobuild::run_oracle(again.path(), &sizes, 3, 2);
    for f in ["vkey", "note/600", "zips/1.h1", "tile/8/0/002.p/88"] {
        assert_eq!(
            fs::read(out.join(f)).unwrap(),
            fs::read(again.path().join(f)).unwrap(),
            "{f}"
        );
    }
}
