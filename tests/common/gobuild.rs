//! Building and running the Go helper programs under `tests/<name>/`
//! (such as the x/mod oracle in `tests/oracle/`).
//!
//! Programs are built in GOPATH mode against the Debian-packaged
//! golang.org/x/mod in `/usr/share/gocode`, so no network is needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// GOPATH holding golang.org/x/mod (Debian's golang-golang-x-mod-dev).
const GOPATH: &str = "/usr/share/gocode";

const MISSING: &str = "Go and golang.org/x/mod are needed for this test: run scripts/test.sh, \
     or apt-get install -y golang-go golang-golang-x-mod-dev";

/// Builds the Go program in `tests/<name>/` (at most once per test process,
/// and only if the cached binary is older than its sources) and returns the
/// path of the binary.
///
/// Panics with install instructions if Go or x/mod are missing.
pub fn go_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(bin) = built.get(name) {
        return bin.clone();
    }
    let bin = build(name);
    built.insert(name.to_string(), bin.clone());
    bin
}

fn build(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("tests").join(name);
    assert!(src.is_dir(), "no Go program at {}", src.display());

    let have_go = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_go
        || !Path::new(GOPATH)
            .join("src/golang.org/x/mod/sumdb")
            .is_dir()
    {
        panic!("{MISSING}");
    }

    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let bin = cache.join("bin").join(name);
    if newest_mtime(&src) < mtime(&bin) {
        return bin; // up to date (built by an earlier test process)
    }

    // Build under a unique name, then rename into place: test binaries
    // running in parallel may race here, and rename is atomic.
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let tmp = bin.with_file_name(format!("{name}.tmp.{}", std::process::id()));
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .arg(format!("./tests/{name}"))
        .current_dir(root)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", cache.join("cache"))
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap_or_else(|e| panic!("{MISSING} (running go: {e})"));
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "go build ./tests/{name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&tmp, &bin).unwrap();
    bin
}

/// Modification time of `p`, or the epoch if it doesn't exist.
fn mtime(p: &Path) -> SystemTime {
    p.metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Newest modification time of any file under `dir`.
fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = mtime(dir);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            mtime(&path)
        };
        newest = newest.max(t);
    }
    newest
}

/// Runs the x/mod oracle (`tests/oracle`), writing its output to `out`.
/// See `tests/oracle/README.md` for the layout. `sizes` must be ascending.
pub fn run_oracle(out: &Path, sizes: &[i64], seed: u64, zips: usize) {
    let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    let output = Command::new(go_binary("oracle"))
        .arg("-out")
        .arg(out)
        .arg("-sizes")
        .arg(sizes.join(","))
        .arg("-seed")
        .arg((seed as i64).to_string()) // Go flag is int64; wrap large seeds
        .arg("-zips")
        .arg(zips.to_string())
        .output()
        .expect("running oracle");
    assert!(
        output.status.success(),
        "oracle failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
