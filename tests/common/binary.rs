//! The real `modgate serve` binary as a child process, for tests that must
//! kill it (-9), read its memory, or restart it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `modgate serve` on `127.0.0.1:0` with `args` and `MODGATE_LOG=log`;
/// returns the child and its base URL, read from its JSON start-up line. Its
/// log keeps being drained (echoed to the test's stderr when `echo`), so it
/// never blocks on a full pipe.
pub fn serve(args: &[&OsStr], log: &str, echo: bool) -> (Child, String) {
    serve_env(args, &[], log, echo)
}

/// [`serve`] with extra environment variables (e.g. a bucket's AWS_*).
pub fn serve_env(
    args: &[&OsStr],
    env: &[(String, String)],
    log: &str,
    echo: bool,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("MODGATE_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn modgate");
    // The start-up line names the bound address: {"addr":"127.0.0.1:PORT",...}
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("modgate exited before saying where it listens")
            .unwrap();
        if echo {
            eprintln!("modgate: {line}");
        }
        if let Some(rest) = line.split("\"addr\":\"").nth(1) {
            break format!("http://{}", rest.split('"').next().unwrap());
        }
    };
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if echo {
                eprintln!("modgate: {l}");
            }
        }
    });
    (child, url)
}
