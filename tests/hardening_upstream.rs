//! A hostile or broken upstream (the Go reference upstream's `hostile`
//! switches): every case is refused — 403 for what fails verification,
//! 502/504 for upstream faults — with a body that says what and why, a log
//! line naming the module and version, and nothing stored.

mod common;
mod hardening_support;

use std::time::{Duration, Instant};

use common::refupstream::RefUpstream;
use hardening_support::*;
use modgate::protocol::Kind;

const V: &str = "v1.0.0";

/// Small limits so zip bombs need not be 500 MiB.
fn small_limits(c: &mut modgate::config::Config) {
    c.limits.max_zip_bytes = 1 << 20;
    c.timeouts.read_secs = 2;
}

#[test]
fn hostile_zips_are_refused_and_nothing_is_stored() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    // (behaviour, what the refusal must say)
    let cases = [
        ("zip-outside", "example.com/elsewhere@v1.0.0/evil.go"),
        ("zip-abs", "/etc/evil.go"),
        ("zip-dotdot", "evil.go"),
        ("zip-casedup", "case-insensitive"),
        ("zip-gomod", "go.mod"),
        ("zip-bomb", "bomb.txt"),
        ("zip-huge-content", "size"),
        // Content-Length short: the bytes read are a truncated zip.
        ("cl-short", "invalid module zip"),
    ];
    for (what, _) in &cases {
        let m = format!("example.com/hostile/{what}");
        add_module(&up, &m, V, 0);
        hostile(&up, &m, V, what, "");
    }
    add_module(&up, "example.com/hostile/honest", V, 0);
    let (data, mut mg) = fresh(&up, small_limits);

    for (what, reason) in &cases {
        let m = format!("example.com/hostile/{what}");
        let start = Instant::now();
        let r = raw(&mg, "GET", &format!("/{m}/@v/{V}.zip"));
        let body = r.text();
        eprintln!("{what}: {} {body}", r.status);
        assert_eq!(r.status, 403, "{what}: {body}");
        assert!(
            body.starts_with(&format!("SECURITY: {m}@{V}: ")),
            "{what}: {body}"
        );
        assert!(body.contains("invalid module zip"), "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        assert_eq!(
            body.lines().count(),
            1,
            "{what}: one line for the go command"
        );
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what} took {:?}",
            start.elapsed()
        );
        assert_logged(&m, V, "refused");
    }
    // Honest neighbours are unaffected.
    let r = raw(
        &mg,
        "GET",
        &format!("/example.com/hostile/honest/@v/{V}.zip"),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    mg.stop();
    assert_eq!(tmp_files(data.path()), Vec::<String>::new());
    for (what, _) in &cases {
        let m = format!("example.com/hostile/{what}");
        // The .mod verified fine and may stay; the zip must not be there.
        assert!(
            !stored(data.path(), &m, V).contains(&Kind::Zip),
            "{what} stored"
        );
    }
    assert!(stored(data.path(), "example.com/hostile/honest", V).contains(&Kind::Zip));
    assert!(verify_store(data.path()) > 0);
}

#[test]
fn broken_upstream_bodies_are_upstream_faults() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    // (behaviour, params, status, what the body must say)
    let cases: &[(&str, &str, u16, &str)] = &[
        ("truncate", "", 502, "upstream failed"),
        ("cl-huge", "", 502, "larger than the limit"),
        ("endless", "", 502, "larger than the limit"),
        ("trickle", "&chunk=1&ms=4000", 504, "timed out"),
    ];
    for (what, extra, _, _) in cases {
        let m = format!("example.com/broken/{what}");
        add_module(&up, &m, V, 0);
        hostile(&up, &m, V, what, extra);
    }
    let (data, mut mg) = fresh(&up, small_limits);
    for (what, _, status, reason) in cases {
        let m = format!("example.com/broken/{what}");
        let start = Instant::now();
        let r = raw(&mg, "GET", &format!("/{m}/@v/{V}.zip"));
        let body = r.text();
        eprintln!("{what}: {} {body} ({:?})", r.status, start.elapsed());
        assert_eq!(r.status, *status, "{what}: {body}");
        assert!(
            body.starts_with(&format!("{m}@{V} zip: ")),
            "{what}: {body}"
        );
        assert!(body.contains(reason), "{what}: {body}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what} took {:?}",
            start.elapsed()
        );
        assert_logged(&m, V, "upstream fetch failed");
    }
    // modgate stopped reading the endless body near the limit: the upstream
    // could not push more than the limit plus socket buffers.
    let log = up.log();
    let sent: u64 = log
        .lines()
        .find_map(|l| {
            l.split("endless example.com/broken/endless@v1.0.0: client stopped reading after ")
                .nth(1)
        })
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no endless line in upstream log:\n{log}"));
    eprintln!("endless: upstream managed to send {sent} bytes (limit 1 MiB)");
    assert!(sent < 64 << 20, "{sent}");

    mg.stop();
    assert_eq!(tmp_files(data.path()), Vec::<String>::new());
    for (what, ..) in cases {
        let m = format!("example.com/broken/{what}");
        assert!(
            !stored(data.path(), &m, V).contains(&Kind::Zip),
            "{what} stored"
        );
    }
    verify_store(data.path());
}

#[test]
fn bad_info_files_are_upstream_faults() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let cases = [
        ("info-garbage", "invalid .info"),
        ("info-other", "names version \"v9.9.9\""),
    ];
    for (what, _) in &cases {
        let m = format!("example.com/info/{what}");
        add_module(&up, &m, V, 0);
        hostile(&up, &m, V, what, "");
    }
    let (data, mut mg) = fresh(&up, |_| {});
    for (what, reason) in &cases {
        let m = format!("example.com/info/{what}");
        let r = raw(&mg, "GET", &format!("/{m}/@v/{V}.info"));
        let body = r.text();
        eprintln!("{what}: {} {body}", r.status);
        assert_eq!(r.status, 502, "{what}: {body}");
        assert!(body.starts_with(&format!("{m}@{V}: ")), "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        assert_logged(&m, V, ".info");
    }
    mg.stop();
    for (what, _) in &cases {
        let m = format!("example.com/info/{what}");
        assert!(
            !stored(data.path(), &m, V).contains(&Kind::Info),
            "{what} stored"
        );
    }
}

#[test]
fn hostile_checksum_database_is_refused() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let cases = [
        ("lookup-garbage", "malformed lookup"),
        ("lookup-badkey", "verifying signed note"),
    ];
    for (what, _) in &cases {
        let m = format!("example.com/sumdb/{what}");
        add_module(&up, &m, V, 0);
        hostile(&up, &m, V, what, "");
    }
    let (data, mut mg) = fresh(&up, |_| {});
    for (what, reason) in &cases {
        let m = format!("example.com/sumdb/{what}");
        let r = raw(&mg, "GET", &format!("/{m}/@v/{V}.mod"));
        let body = r.text();
        eprintln!("{what}: {} {body}", r.status);
        assert_eq!(r.status, 403, "{what}: {body}");
        assert!(
            body.starts_with(&format!("SECURITY: {m}@{V}: ")),
            "{what}: {body}"
        );
        assert!(body.contains(reason), "{what}: {body}");
        assert_logged(&m, V, "refused");
    }
    mg.stop();
    for (what, _) in &cases {
        let m = format!("example.com/sumdb/{what}");
        assert_eq!(stored(data.path(), &m, V), vec![], "{what} stored");
    }

    // Tiles that do not hash to the signed tree (a fresh modgate: no tiles cached).
    let m = "example.com/sumdb/tiles";
    add_module(&up, m, V, 0);
    up.control("hostile?what=tiles");
    let (data, mut mg) = fresh(&up, |_| {});
    let r = raw(&mg, "GET", &format!("/{m}/@v/{V}.mod"));
    let body = r.text();
    eprintln!("tiles: {} {body}", r.status);
    assert_eq!(r.status, 403, "{body}");
    assert!(body.starts_with(&format!("SECURITY: {m}@{V}: ")), "{body}");
    assert_logged(m, V, "refused");
    mg.stop();
    assert_eq!(stored(data.path(), m, V), vec![]);
}
