//! The real `modgate serve` binary as a child process, for tests that must
//! kill it (-9), read its memory, or restart it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

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
    let (child, url, _) = spawn(args, env, log, echo, None);
    (child, url)
}

/// The log of a child started by [`serve_captured`]: every line of its
/// stderr, in order, until it exits.
pub struct Captured {
    pub lines: mpsc::Receiver<String>,
    resume: Option<mpsc::Sender<()>>,
}

impl Captured {
    /// Lets a held reader go on reading the child's stderr.
    pub fn resume(&mut self) {
        if let Some(tx) = self.resume.take() {
            let _ = tx.send(());
        }
    }

    /// Every line the child wrote, once it has exited (its stderr closed).
    pub fn all(mut self) -> Vec<String> {
        self.resume();
        self.lines.iter().collect()
    }
}

/// [`serve`], keeping every line of its stderr. With `hold`, nothing past the
/// start-up line is read until [`Captured::resume`]: the child's stderr pipe
/// fills and its writes to it block, as with a stalled log reader.
pub fn serve_captured(args: &[&OsStr], log: &str, hold: bool) -> (Child, String, Captured) {
    let (resume_tx, resume_rx) = mpsc::channel();
    let (child, url, lines) = spawn(args, &[], log, false, hold.then_some(resume_rx));
    let captured = Captured {
        lines,
        resume: Some(resume_tx),
    };
    (child, url, captured)
}

fn spawn(
    args: &[&OsStr],
    env: &[(String, String)],
    log: &str,
    echo: bool,
    hold: Option<mpsc::Receiver<()>>,
) -> (Child, String, mpsc::Receiver<String>) {
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
    let (tx, rx) = mpsc::channel();
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
        let addr = line
            .split("\"addr\":\"")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap().to_string());
        let _ = tx.send(line);
        if let Some(addr) = addr {
            break format!("http://{addr}");
        }
    };
    std::thread::spawn(move || {
        if let Some(hold) = hold {
            let _ = hold.recv();
        }
        for l in lines.map_while(Result::ok) {
            if echo {
                eprintln!("modgate: {l}");
            }
            // Nobody keeps the lines of `serve`: they are only drained.
            let _ = tx.send(l);
        }
    });
    (child, url, rx)
}
