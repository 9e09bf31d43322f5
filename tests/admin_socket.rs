//! Admin commands beside a running server: the real binary asks the server
//! through `<data-dir>/admin.sock` (`cache ls|rm|verify`, `trust show`,
//! `audit who`), and runs the same commands on the data dir once it stops.
//! Bad and oversized requests get clear errors and the server keeps serving;
//! a stale socket file is replaced at start.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};

use common::modgate::Modgate;
use common::refupstream::RefUpstream;

fn modgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs")
}

fn run(args: &[&str]) -> (bool, String, String) {
    let o = modgate(args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (ok, out, err) = run(args);
    assert!(ok, "{args:?}: {err}\n{out}");
    out
}

/// One raw request on the socket; the parsed answer.
fn raw(sock: &Path, body: &[u8]) -> serde_json::Value {
    let mut s = UnixStream::connect(sock).unwrap();
    // The server may answer (and close) before reading everything we send.
    let _ = s.write_all(body);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// The commands every state must answer, and what each must say.
fn read_only_commands(data: &str) {
    let ls = ok(&["cache", "ls", "--data-dir", data]);
    assert!(
        ls.contains("example.com/hello") && ls.contains("v1.0.0"),
        "{ls}"
    );
    let v = ok(&["cache", "verify", "--data-dir", data]);
    assert!(v.contains("all match what was verified"), "{v}");
    let t = ok(&["trust", "show", "--data-dir", data]);
    assert!(
        t.contains("trusted tree size:") && t.contains("fork: none"),
        "{t}"
    );
    let w = ok(&[
        "audit",
        "who",
        "--data-dir",
        data,
        "example.com/hello@v1.0.0",
    ]);
    assert!(w.contains("client=127.0.0.1") && w.contains("zip"), "{w}");
}

#[test]
fn admin_commands_while_serving_and_stopped() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let sock = dir.path().join("admin.sock");
    // A socket file left by a killed server: replaced at start.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());

    let mut mg = Modgate::against(&up, dir.path());
    for (m, v) in [
        ("example.com/hello", "v1.0.0"),
        ("example.com/hello", "v1.1.0"),
        ("example.com/nested", "v1.0.0"),
    ] {
        for ext in ["info", "mod", "zip"] {
            let (s, _, _) = mg.get(&format!("/{m}/@v/{v}.{ext}"));
            assert_eq!(s, 200);
        }
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // While serving, through the socket.
    read_only_commands(&data);
    let rm = ok(&[
        "cache",
        "rm",
        "--data-dir",
        &data,
        "example.com/hello@v1.1.0",
    ]);
    assert!(rm.contains("removed example.com/hello@v1.1.0 zip"), "{rm}");
    let ls = ok(&["cache", "ls", "--data-dir", &data, "example.com/hello"]);
    assert!(!ls.contains("v1.1.0"), "{ls}");
    // The server fetches and verifies it again.
    let (s, _, _) = mg.get("/example.com/hello/@v/v1.1.0.zip");
    assert_eq!(s, 200);
    // What must not run beside a server says so and names the way.
    let (okay, _, err) = run(&["trust", "reset", "--data-dir", &data, "--sumdb", "x"]);
    assert!(!okay);
    assert!(err.contains("stop `modgate serve`"), "{err}");

    // Bad requests get clear errors; the server keeps answering.
    let a = raw(&sock, b"{\"cmd\":\"format_disk\"}\n");
    assert_eq!(a["ok"], false);
    assert!(
        a["error"].as_str().unwrap().contains("bad admin request"),
        "{a}"
    );
    let a = raw(&sock, b"not json at all");
    assert!(
        a["error"].as_str().unwrap().contains("bad admin request"),
        "{a}"
    );
    let a = raw(&sock, &vec![b'x'; 200 << 10]);
    assert!(
        a["error"].as_str().unwrap().contains("max_request_bytes"),
        "{a}"
    );
    let a = raw(&sock, br#"{"cmd":"audit_who","target":"../../etc"}"#);
    assert_eq!(a["ok"], false, "{a}");
    let a = raw(
        &sock,
        br#"{"cmd":"cache_ls","pattern":"example.com/nested"}"#,
    );
    assert_eq!(a["ok"], true, "{a}");
    assert!(a["output"].as_str().unwrap().contains("example.com/nested"));
    let (s, _, _) = mg.get("/example.com/hello/@v/v1.0.0.info");
    assert_eq!(s, 200);

    // Stopped: the same commands open the data dir.
    mg.stop();
    drop(mg);
    assert!(!sock.exists());
    read_only_commands(&data);
    let rm = ok(&["cache", "rm", "--data-dir", &data, "example.com/nested"]);
    assert!(rm.contains("removed example.com/nested@v1.0.0"), "{rm}");
}
