//! Hostile requests, sent raw (nothing normalises the path): malformed or
//! mis-escaped module paths and versions, traversal attempts, control
//! characters, invalid UTF-8, unknown suffixes, other methods, huge heads —
//! each answered 400/404/405/431 with a short reason, never a panic, never a
//! file named from request text, never a fetch from a host the request chose.

mod common;
mod hardening_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::refupstream::{RefUpstream, http_request};
use hardening_support::*;

/// Sends raw bytes as a whole request; returns the status line's code (0 if
/// the server closed without answering).
fn raw_bytes(url: &str, request: &[u8]) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.to_string_lossy().into_owned());
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn malformed_requests_get_a_short_reason() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let (data, mut mg) = fresh(&up, |_| {});
    let long = format!("/example.com/{}/@v/v1.0.0.mod", "a".repeat(5000));
    let cases: Vec<(&str, u16)> = vec![
        // `!` misuse and unescaped upper case.
        ("/example.com/!!hello/@v/v1.0.0.mod", 400),
        ("/example.com/hello!/@v/v1.0.0.mod", 400),
        ("/example.com/!1hello/@v/v1.0.0.mod", 400),
        ("/example.com/Upper/Case/@v/v1.0.0.mod", 400),
        ("/example.com/hello/@v/v1.0.0-RC.mod", 400),
        ("/example.com/hello/@v/v1.0.0-!!rc.mod", 400),
        ("/example.com/hello/@v/V1.0.0.mod", 400),
        ("/example.com/hello/@v/v1.0.mod", 400),
        ("/example.com/hello/@v/v01.0.0.zip", 400),
        ("/example.com/hello/@v/master.zip", 400),
        // Traversal, percent-encoded or not.
        ("/example.com/%2e%2e/@v/v1.0.0.mod", 400),
        ("/example.com/%2E%2E/%2e%2e/etc/@v/v1.0.0.mod", 400),
        ("/example.com/../../etc/@v/v1.0.0.mod", 400),
        ("/example.com/hello/@v/..%2f..%2fpasswd.mod", 400),
        ("/example.com%2f..%2f..%2fetc/@v/v1.0.0.mod", 400),
        ("/example.com//hello/@v/v1.0.0.mod", 400),
        ("//example.com/hello/@v/v1.0.0.mod", 400),
        ("/example.com/hello\\..\\x/@v/v1.0.0.mod", 400),
        ("/example.com/hello%5c..%5cx/@v/v1.0.0.mod", 400),
        ("/sumdb/refsum.test/tile/../../../etc/passwd", 400),
        ("/sumdb/refsum.test/tile/8/0/%2e%2e/x", 400),
        ("/sumdb/refsum.test/lookup/example.com/%2e%2e@v1.0.0", 400),
        // Control characters and invalid UTF-8.
        ("/example.com/hello%00/@v/v1.0.0.mod", 400),
        ("/example.com/hel%0alo/@v/v1.0.0.mod", 400),
        ("/example.com/hello/@v/v1.0.0%7f.mod", 400),
        ("/example.com/hello/@v/v1.0.0%ff.mod", 400),
        ("/example.com/%c3%28/@v/v1.0.0.mod", 400),
        ("/example.com/hello/@v/v1.0.0%zz.mod", 400),
        ("/example.com/hello/@v/v1.0.0%2.mod", 400),
        // Over-long.
        (long.as_str(), 400),
        // Unknown suffixes and routes.
        ("/example.com/hello/@v/v1.0.0.exe", 404),
        ("/example.com/hello/@v/v1.0.0", 404),
        ("/example.com/hello/@v/v1.0.0.zip.mod.gz", 404),
        ("/example.com/hello/@x", 404),
        ("/example.com/hello", 404),
        ("/sumdb/refsum.test/nonsense", 404),
    ];
    for (path, want) in &cases {
        let r = raw(&mg, "GET", path);
        let body = r.text();
        let shown = &path[..path.len().min(80)];
        assert_eq!(r.status, *want, "{shown}: {body}");
        assert!(!body.trim().is_empty(), "{shown}: empty body");
        assert!(
            body.len() < 600 && body.lines().count() == 1,
            "{shown}: {body}"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"), "{shown}");
        // HEAD answers the same status without a body.
        let h = raw(&mg, "HEAD", path);
        assert_eq!(h.status, *want, "HEAD {shown}");
        assert!(h.body.is_empty(), "HEAD {shown}");
    }

    // Raw control characters in the request line never reach the router.
    for req in [
        &b"GET /example.com/hel\x01lo/@v/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /example.com/hel\x7flo/@v/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /example.com/\xff\xfe/@v/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET example.com/hello/@v/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let (status, text) = raw_bytes(&mg.url, req);
        assert!(status == 400 || status == 404, "{status}: {text}");
    }

    // The server is alive and well, and serves honest requests.
    let r = raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.mod");
    assert_eq!(r.status, 200, "{}", r.text());

    mg.stop();
    // Nothing named after request text was created under the data dir.
    let mut files = Vec::new();
    walk(data.path(), &mut files);
    for f in &files {
        for word in ["passwd", "etc", "..", "%", "!"] {
            let rel = f.strip_prefix(&*data.path().to_string_lossy()).unwrap();
            assert!(!rel.contains(word), "{f} created");
        }
    }
    verify_store(data.path());
}

#[test]
fn methods_heads_and_limits() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let (data, mut mg) = fresh(&up, |_| {});

    // Only GET and HEAD: 405 with Allow.
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"] {
        let r = raw(&mg, m, "/example.com/hello/@v/v1.0.0.mod");
        assert_eq!(r.status, 405, "{m}: {}", r.text());
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{m}");
    }
    // A POST announcing a huge body is answered at once, its body never read.
    let (status, _) = raw_bytes(
        &mg.url,
        b"POST /example.com/hello/@v/list HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\npartial",
    );
    assert_eq!(status, 405);

    // HEAD: same headers as GET, right Content-Length, no body.
    for path in [
        "/example.com/hello/@v/v1.0.0.zip",
        "/example.com/hello/@v/v1.0.0.mod",
        "/example.com/hello/@v/v1.0.0.info",
    ] {
        let get = raw(&mg, "GET", path);
        assert_eq!(get.status, 200);
        let head = raw(&mg, "HEAD", path);
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
        assert_eq!(head.header("etag"), get.header("etag"));
        assert_eq!(head.header("content-type"), get.header("content-type"));
    }

    // Request heads are bounded: a huge header or too many headers get 431
    // (or the connection is closed), and the server carries on.
    let big = "x".repeat(200 * 1024);
    let req = format!(
        "GET /example.com/hello/@v/list HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
    );
    let (status, _) = raw_bytes(&mg.url, req.as_bytes());
    assert!(status == 431 || status == 0, "{status}");
    let mut many = String::from("GET /example.com/hello/@v/list HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let (status, _) = raw_bytes(&mg.url, many.as_bytes());
    assert!(status == 431 || status == 0, "{status}");
    let r = http_request(
        "GET",
        &format!("{}/example.com/hello/@v/list", mg.url),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200);

    mg.stop();
    verify_store(data.path());
}

/// Request text never chooses the host modgate fetches from (no SSRF): paths
/// that look like hosts, userinfo or URLs are refused or fetched from the
/// configured upstream only.
#[test]
fn request_paths_cannot_redirect_the_fetch() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let evil = TcpListener::bind("127.0.0.1:0").unwrap();
    evil.set_nonblocking(true).unwrap();
    let evil_addr = evil.local_addr().unwrap().to_string();
    let (data, mut mg) = fresh(&up, |_| {});
    up.reset_counters();

    let paths = [
        format!("/evil.com@{evil_addr}/@v/v1.0.0.mod"),
        format!("/{evil_addr}/x/@v/v1.0.0.mod"),
        format!("/@{evil_addr}/@v/v1.0.0.mod"),
        "//evil.com/x/@v/v1.0.0.mod".to_string(),
        format!("/http:%2f%2f{evil_addr}/x/@v/v1.0.0.mod"),
        format!("/http://{evil_addr}/x/@v/v1.0.0.mod"),
        format!("/example.com%40{evil_addr}/@v/v1.0.0.mod"),
        format!("/example.com/x/@v/v1.0.0@{evil_addr}.mod"),
        format!("/example.com/x/@v/v1.0.0%23@{evil_addr}.mod"),
        format!("/example.com/x/@v/v1.0.0%3f@{evil_addr}.mod"),
        format!("/sumdb/refsum.test/lookup/evil.com@{evil_addr}"),
        format!("/sumdb/{evil_addr}/latest"),
        "/evil.test/x/@v/v1.0.0.mod".to_string(),
        "/evil.test/x/@v/list".to_string(),
        "/evil.test/x/@latest".to_string(),
    ];
    for p in &paths {
        let r = raw(&mg, "GET", p);
        assert!(
            [400, 403, 404, 502].contains(&r.status),
            "{p}: {} {}",
            r.status,
            r.text()
        );
    }
    // Nothing ever connected to the "evil" host.
    assert!(
        evil.accept().is_err(),
        "a request path made modgate connect to {evil_addr}"
    );
    // What reached the configured upstream are well-formed proxy paths of
    // valid module paths (the escaping of validated values).
    for path in up.counters().keys() {
        assert!(
            path.starts_with("/evil.test/x/@") || path.starts_with("/sumdb/refsum.test/"),
            "unexpected upstream request {path}"
        );
    }
    mg.stop();
    verify_store(data.path());
}
