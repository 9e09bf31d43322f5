//! `limits.max_connections`: past it, new connections wait (unaccepted, in
//! the listen backlog) until an open one closes, and the bite is counted.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

/// GET `path` on a fresh connection; `None` if no answer within `wait`.
fn get_within(url: &str, path: &str, wait: Duration) -> Option<String> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    match s.read_to_string(&mut out) {
        Ok(_) if !out.is_empty() => Some(out),
        _ => None,
    }
}

#[test]
fn connections_past_the_limit_wait_and_are_counted() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.limits.max_connections = 2;
    let mg = Modgate::start(cfg);
    let addr = mg.url.trim_start_matches("http://").to_string();

    // Two idle connections hold both slots.
    let a = TcpStream::connect(&addr).unwrap();
    let b = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        get_within(&mg.url, "/healthz", Duration::from_millis(500)).is_none(),
        "a third connection was served while two were open"
    );

    // One closes: the waiting connections are served.
    drop(a);
    let r = get_within(&mg.url, "/healthz", Duration::from_secs(10)).expect("served");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let m = get_within(&mg.url, "/metrics", Duration::from_secs(10)).expect("metrics");
    let bites = m
        .lines()
        .find_map(|l| l.strip_prefix("modgate_limit_hits_total{limit=\"connections\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        bites >= 1.0,
        "the connection limit bit and was counted:\n{m}"
    );
    drop(b);
}
