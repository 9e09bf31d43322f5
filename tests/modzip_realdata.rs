//! Real 2020 proxy.golang.org zips and go.mod files against their sum.golang.org go.sum lines.

use std::fs;
use std::path::{Path, PathBuf};

use modgate::modzip::{check_zip, hash_go_mod};

const ROOT: &str = "tests/fixtures/realdata/sum.golang.org-2020";

/// `!`-case escaping for the proxy directory layout.
fn escape(s: &str) -> String {
    modgate::module::escape_path(s)
        .or_else(|_| modgate::module::escape_version(s).map_err(|_| ()))
        .expect("fixture paths and versions escape")
}

struct Record {
    module: String,
    version: String,
    zip_h1: String,
    mod_h1: String,
}

fn records() -> Vec<Record> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from(ROOT).join("sumdb/lookup")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let zip: Vec<&str> = lines[1].split(' ').collect();
            let m: Vec<&str> = lines[2].split(' ').collect();
            assert_eq!(zip.len(), 3, "{}", p.display());
            assert_eq!(m[1], format!("{}/go.mod", zip[1]));
            Record {
                module: zip[0].to_string(),
                version: zip[1].to_string(),
                zip_h1: zip[2].to_string(),
                mod_h1: m[2].to_string(),
            }
        })
        .collect()
}

fn proxy_file(r: &Record, ext: &str) -> PathBuf {
    Path::new(ROOT)
        .join("proxy")
        .join(escape(&r.module))
        .join("@v")
        .join(format!("{}.{ext}", escape(&r.version)))
}

#[test]
fn every_real_go_mod_hash_matches_go_sum() {
    let recs = records();
    assert_eq!(recs.len(), 53);
    let mut checked = 0;
    for r in &recs {
        let data = fs::read(proxy_file(r, "mod")).unwrap();
        assert_eq!(hash_go_mod(&data), r.mod_h1, "{}@{}", r.module, r.version);
        checked += 1;
    }
    assert_eq!(checked, 53);
}

#[test]
fn every_real_zip_hash_matches_go_sum() {
    let mut checked = 0;
    for r in &records() {
        let zip = proxy_file(r, "zip");
        if !zip.exists() {
            continue;
        }
        let m = fs::read(proxy_file(r, "mod")).unwrap();
        let got = check_zip(&zip, &r.module, &r.version, Some(&m))
            .unwrap_or_else(|e| panic!("{}@{}: {e}", r.module, r.version));
        assert_eq!(got.h1, r.zip_h1, "{}@{}", r.module, r.version);
        if let Some(g) = &got.go_mod {
            assert_eq!(g, &m);
        }
        assert!(got.files > 0);
        checked += 1;
    }
    assert_eq!(checked, 26, "all 26 real zips");
}
