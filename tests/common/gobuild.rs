//! Builds the Go helper programs under `tests/<name>/` in GOPATH mode
//! against Debian's golang.org/x/mod in /usr/share/gocode.
//! (Minimal version; the `oracle` branch's gobuild.rs supersedes it.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds `tests/<name>/` (once per test process) and returns the binary.
pub fn go_binary(name: &str) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // target/<profile>/deps/<test exe> -> target/<profile>/gobin
    let exe = std::env::current_exe().expect("current_exe");
    let out_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("gobin"))
        .unwrap_or_else(|| manifest.join("target/gobin"));
    std::fs::create_dir_all(&out_dir).expect("create gobin dir");
    let gopath = out_dir.join("gopath");
    std::fs::create_dir_all(&gopath).expect("create gopath");
    let out = out_dir.join(name);
    // Build to a unique name then rename, so concurrent test processes
    // never see a half-written binary.
    let tmp_out = out_dir.join(format!(".{name}.{}", std::process::id()));
    let status = Command::new("go")
        .current_dir(manifest)
        .args(["build", "-o"])
        .arg(&tmp_out)
        .arg(format!("./tests/{name}"))
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .env("GOCACHE", out_dir.join("gocache"))
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("running go build (is golang-go installed?)");
    assert!(status.success(), "go build ./tests/{name} failed");
    std::fs::rename(&tmp_out, &out).expect("rename go binary");
    map.insert(name.to_string(), out.clone());
    out
}
