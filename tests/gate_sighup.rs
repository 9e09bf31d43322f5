//! SIGHUP reloads the policy even when the file looks unchanged (its own test
//! binary: the signal goes to the whole process).

mod common;

use std::time::{Duration, Instant};

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

fn loads_ok(mg: &Modgate) -> f64 {
    let (_, _, body) = mg.get("/metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("modgate_gate_policy_loads_total{outcome=\"ok\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn sighup_reloads_the_policy() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("policy.toml");
    std::fs::write(
        &file,
        "[[deny]]\nmodule = \"example.com/hello\"\nversions = [\"v1.0.0\"]\nreason = \"held\"\n",
    )
    .unwrap();
    let mut cfg = test_config(&work.path().join("data"), &up.url, &up.gosumdb());
    cfg.policy = Some(file);
    let mg = Modgate::start(cfg);
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.info").0, 403);
    let before = loads_ok(&mg);
    assert!(before >= 1.0);
    // SAFETY: kill(2) on our own pid with a signal the server handles.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGHUP);
    }
    let start = Instant::now();
    while loads_ok(&mg) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.info").0, 403);
}
