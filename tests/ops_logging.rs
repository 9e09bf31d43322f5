//! The access log of the real binary: written off the request path by a
//! thread of its own (`src/logwriter.rs`), and still whole after a clean
//! shutdown — even when the log's reader was behind at the time.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Requests made before the SIGTERM, each on a path of its own.
const N: usize = 2000;

/// The child, killed if the test fails before it exits.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_writes_every_queued_access_line() {
    let dir = tempfile::tempdir().unwrap();
    // Held: past the start-up line the test reads none of modgate's stderr
    // until after the SIGTERM, so its pipe fills and most lines are still
    // queued inside the process when the shutdown starts.
    let (child, url, mut log) = common::binary::serve_captured(
        &[
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
            "--offline".as_ref(),
        ],
        "info",
        true,
    );
    let mut child = Served(child);
    // reqwest is built without a default crypto provider (see upstream.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let queued = rt.block_on(async {
        let client = reqwest::Client::new();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, next, url) = (client.clone(), next.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= N {
                        break;
                    }
                    let r = client
                        .get(format!("{url}/example.com/m{i}/@v/list"))
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .expect("request");
                    r.bytes().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("modgate_log_lines_queued "))
            .expect("modgate_log_lines_queued")
            .parse::<u64>()
            .unwrap()
    });
    // The premise: lines were waiting in the queue, not only in the pipe.
    assert!(queued > 0, "no line was queued");

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    // The shutdown waits for the writer, which waits for the reader.
    std::thread::sleep(Duration::from_millis(300));
    log.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "modgate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");

    let lines = log.all();
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let paths: Vec<&str> = parsed
        .iter()
        .filter(|v| v["target"] == "modgate::access")
        .filter_map(|v| v["fields"]["path"].as_str())
        .filter(|p| p.ends_with("/@v/list"))
        .collect();
    let unique: BTreeSet<&str> = paths.iter().copied().collect();
    assert_eq!(paths.len(), N, "access lines for the {N} requests");
    assert_eq!(unique.len(), N);
    for i in 0..N {
        assert!(unique.contains(format!("/example.com/m{i}/@v/list").as_str()));
    }
    // Lines logged during the shutdown itself come out too.
    assert!(
        parsed
            .iter()
            .any(|v| v["fields"]["message"] == "shutting down: finishing in-flight requests"),
        "no shutdown line"
    );
}
