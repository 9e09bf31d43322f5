//! x/mod v0.7.0 `zip/testdata/{unzip,check_zip}` and `TestUnzipSizeLimits[Special]` vectors,
//! copied into tests/fixtures/xmod_zip and replayed against `check_zip`.

#[path = "modzip_support.rs"]
mod support;

use std::fs;
use std::io::Cursor;
use std::path::Path;

use modgate::modzip::{CheckedZip, ZipError, ZipLimits, check_zip, check_zip_reader};
use support::{ZEntry, build_zip, header, parse_txtar};

const DIR: &str = "tests/fixtures/xmod_zip";

/// Expected errors that come from x/mod `module` rules (CheckPath/CheckFilePath,
/// CanonicalVersion, Check) which `crate::module` does not implement yet.
fn needs_module_rules(want_err: &str) -> bool {
    [
        "malformed file path",
        "malformed module path",
        "missing dot",
        "invalid version",
        "not canonical",
    ]
    .iter()
    .any(|s| want_err.contains(s))
}

fn run_zip(
    entries: &[(String, Vec<u8>)],
    module: &str,
    version: &str,
) -> Result<CheckedZip, ZipError> {
    let z: Vec<ZEntry> = entries.iter().map(|(n, d)| ZEntry::new(n, d)).collect();
    let bytes = build_zip(&z);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.zip");
    fs::write(&p, &bytes).unwrap();
    check_zip(&p, module, version, None)
}

fn unzip_cases(with_module_rules: bool) -> usize {
    let mut n = 0;
    let mut paths: Vec<_> = fs::read_dir(Path::new(DIR).join("unzip"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        // invalid_utf8_mod_path.txt has a raw 0xFF module path: &str cannot carry it.
        let t = parse_txtar(&String::from_utf8_lossy(&fs::read(&p).unwrap()));
        let module = header(&t, "path").unwrap();
        let version = header(&t, "version").unwrap();
        let mut want_err = header(&t, "wantErr").unwrap_or_default();
        if want_err.contains("invalid UTF-8") {
            // Rust strings hold only UTF-8, so the path arrives as U+FFFD and is
            // refused for that character instead (the request layer refuses
            // non-UTF-8 paths with 400 before this point).
            want_err = "malformed module path".into();
        }
        if needs_module_rules(&want_err) != with_module_rules {
            continue;
        }
        n += 1;
        let got = run_zip(&t.files, &module, &version);
        match (got, want_err.is_empty()) {
            (Ok(c), true) => {
                assert_eq!(Some(c.h1), header(&t, "hash"), "{}", p.display());
            }
            (Err(e), false) => {
                assert!(
                    e.to_string().contains(&want_err),
                    "{}: got {e:?} ({e}), want error containing {want_err:?}",
                    p.display()
                );
            }
            (Ok(c), false) => panic!(
                "{}: unexpected success {c:?}; want {want_err:?}",
                p.display()
            ),
            (Err(e), true) => panic!("{}: unexpected error {e}", p.display()),
        }
    }
    n
}

#[test]
fn xmod_unzip_testdata() {
    assert_eq!(unzip_cases(false), 10);
}

#[test]
fn xmod_unzip_testdata_module_rules() {
    assert_eq!(unzip_cases(true), 5);
}

/// check_zip/*.txt: every file listed under `valid:` passes on its own; every `invalid:`
/// line, added to the valid files, yields exactly that error (we report the first error).
fn check_zip_cases(with_module_rules: bool) -> usize {
    let mut n = 0;
    for name in ["empty", "various"] {
        let t = parse_txtar(
            &fs::read_to_string(Path::new(DIR).join(format!("check_zip/{name}.txt"))).unwrap(),
        );
        let module = header(&t, "path").unwrap();
        let version = header(&t, "version").unwrap();
        let want = String::from_utf8(t.files.iter().find(|(n, _)| n == "want").unwrap().1.clone())
            .unwrap();
        let files: Vec<(String, Vec<u8>)> = t
            .files
            .iter()
            .filter(|(n, _)| n != "want")
            .cloned()
            .collect();
        let section = |title: &str| -> Vec<String> {
            want.split("\n\n")
                .find(|s| s.trim_start().starts_with(title))
                .map(|s| s.trim().lines().skip(1).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let valid: Vec<(String, Vec<u8>)> = section("valid:")
            .iter()
            .map(|v| files.iter().find(|(n, _)| n == v).unwrap().clone())
            .collect();
        if !with_module_rules {
            n += 1;
            run_zip(&valid, &module, &version).unwrap();
        }
        assert!(section("omitted:").is_empty());
        for line in section("invalid:") {
            let (file, msg) = line.split_once(": ").unwrap();
            if needs_module_rules(msg) != with_module_rules {
                continue;
            }
            n += 1;
            let mut entries = valid.clone();
            let bad = files.iter().rfind(|(n, _)| n == file).unwrap().clone();
            entries.push(bad);
            let e = run_zip(&entries, &module, &version).unwrap_err();
            assert_eq!(e.to_string(), format!("{file}: {msg}"), "{e:?}");
        }
    }
    n
}

#[test]
fn xmod_check_zip_testdata() {
    assert_eq!(check_zip_cases(false), 6);
}

#[test]
fn xmod_check_zip_testdata_module_rules() {
    assert_eq!(check_zip_cases(true), 1);
}

/// x/mod `sizeLimitTests`, scaled down with ZipLimits (500 MiB -> 1000 B, 16 MiB -> 100 B).
#[test]
fn xmod_size_limit_tests_scaled() {
    let limits = ZipLimits {
        max_zip_file: 1 << 20,
        max_uncompressed: 1000,
        max_go_mod: 100,
        max_license: 100,
    };
    let p = "example.com/large@v1.0.0/";
    let z = |files: &[(&str, usize)]| {
        let e: Vec<ZEntry> = files
            .iter()
            .map(|(n, s)| ZEntry::new(format!("{p}{n}"), vec![0u8; *s]))
            .collect();
        build_zip(&e)
    };
    let check = |bytes: Vec<u8>| {
        let n = bytes.len() as u64;
        check_zip_reader(
            Cursor::new(bytes),
            n,
            "example.com/large",
            "v1.0.0",
            None,
            &limits,
        )
    };
    type Case = (&'static str, Vec<(&'static str, usize)>, &'static str);
    let cases: Vec<Case> = vec![
        ("one_large", vec![("large.go", 1000)], ""),
        (
            "one_too_large",
            vec![("large.go", 1001)],
            "total uncompressed size of module contents too large",
        ),
        ("total_large", vec![("small.go", 10), ("large.go", 990)], ""),
        (
            "total_too_large",
            vec![("small.go", 10), ("large.go", 991)],
            "total uncompressed size of module contents too large",
        ),
        ("large_gomod", vec![("go.mod", 100)], ""),
        (
            "too_large_gomod",
            vec![("go.mod", 101)],
            "go.mod file too large",
        ),
        ("large_license", vec![("LICENSE", 100)], ""),
        (
            "too_large_license",
            vec![("LICENSE", 101)],
            "LICENSE file too large",
        ),
    ];
    for (desc, files, want) in cases {
        match check(z(&files)) {
            Ok(c) if want.is_empty() => assert_eq!(c.files, files.len(), "{desc}"),
            Ok(c) => panic!("{desc}: unexpected success {c:?}"),
            Err(e) => assert!(
                !want.is_empty() && e.to_string().contains(want),
                "{desc}: {e}"
            ),
        }
    }
}

/// TestUnzipSizeLimitsSpecial: a file of exactly MaxZipFile bytes (not a zip) is read and
/// rejected as not a zip; one byte more is rejected by size before reading.
#[test]
fn xmod_size_limits_special() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.zip");
    let f = fs::File::create(&p).unwrap();
    f.set_len(500 << 20).unwrap();
    let e = check_zip(&p, "example.com/m", "v1.0.0", None).unwrap_err();
    assert!(matches!(e, ZipError::NotAZip { .. }), "{e:?}");
    f.set_len((500 << 20) + 1).unwrap();
    let e = check_zip(&p, "example.com/m", "v1.0.0", None).unwrap_err();
    assert!(
        matches!(e, ZipError::ZipFileTooLarge { size, limit } if size == limit + 1),
        "{e:?}"
    );

    // size_is_a_lie: go.mod of 0x0BAD zero bytes declared as 0xAC bytes.
    let bytes =
        build_zip(&[ZEntry::new("example.com/m@v1.0.0/go.mod", vec![0u8; 0x0BAD]).declared(0xAC)]);
    let n = bytes.len() as u64;
    let e = check_zip_reader(
        Cursor::new(bytes),
        n,
        "example.com/m",
        "v1.0.0",
        None,
        &ZipLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ZipError::LargerThanDeclared { file, declared: 0xAC } if file == "example.com/m@v1.0.0/go.mod"),
        "{e:?}"
    );
}
