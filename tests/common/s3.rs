//! S3-compatible object stores for the replica tests (`--store s3://…`).
//!
//! [`S3Server`] is moto's S3 server (`moto_server`, installed by
//! `scripts/test.sh`; `MODGATE_MOTO_SERVER` may name the binary) as a child
//! process on 127.0.0.1; [`NaiveS3`] is an in-process endpoint that stores
//! and serves objects but ignores conditional writes, the kind of endpoint
//! modgate must refuse at start. Both hand out the AWS environment a
//! replica reads ([`S3Server::env`], [`NaiveS3::env`]) and raw object
//! helpers for tests that read or tamper with the bucket behind modgate's back.
//!
//! What moto does, as `tests/s3_harness.rs` checks against the real server
//! (moto 5.2):
//!
//! - Path-style URLs, `http://127.0.0.1:PORT/BUCKET/KEY`; no virtual hosts.
//! - Signatures are never checked, but a request should carry an
//!   `Authorization` header: moto routes a request to a service by the
//!   header's credential scope (`…/us-east-1/s3/aws4_request`; a header
//!   without one is a 500), and it answers `403` with an empty body to a
//!   request without the header (anonymous) for an existing object that is
//!   not public-read: anonymous GET, HEAD, DELETE and overwrite all fail,
//!   only creating a new key works. The raw helpers here send a
//!   SigV4-shaped header with a dummy signature ([`MOTO_AUTH`]).
//! - PutObject with `If-None-Match: *` on an existing key: `412`, XML body
//!   with `<Code>PreconditionFailed</Code>` and
//!   `<Condition>If-None-Match</Condition>`; the object is unchanged.
//! - PutObject with `If-Match: <etag>` naming another ETag: `412`,
//!   `<Condition>If-Match</Condition>`; on a missing key: `404 NoSuchKey`
//!   (as AWS does; object_store turns that into `Precondition` too). Quotes
//!   around the ETag are optional to moto.
//! - ETag: the quoted lower-case MD5 hex of the body (single-part PUT);
//!   `Content-MD5` is not required.
//! - A PUT body sent as `application/x-www-form-urlencoded` (curl `-d`'s
//!   default) is swallowed as form data and stored empty; the helpers send
//!   no Content-Type.
//! - The conditional check and the write are not atomic: moto's server is
//!   threaded and takes no lock across them. In one run, 1 round in 1,000
//!   of four simultaneous `If-None-Match: *` creates of one key let two of
//!   them succeed. Tests that race writers must not need moto to pick
//!   exactly one winner every time.
//!
//! [`S3Server::pause`] stops the server with SIGSTOP: the kernel still
//! accepts connections, nothing answers, so clients time out (an outage
//! that hangs rather than refuses); [`S3Server::resume`] continues it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::refupstream::{HttpResponse, http_request, http_request_timeout, query_escape};

/// The `Authorization` header the raw helpers send to moto: SigV4-shaped so
/// moto routes it to S3 in us-east-1 and treats it as authenticated; the
/// signature is never checked.
pub const MOTO_AUTH: &str = "AWS4-HMAC-SHA256 \
     Credential=modgate-test/20260101/us-east-1/s3/aws4_request, \
     SignedHeaders=host, Signature=0000";

/// Credentials for the test stores (any pair works with moto and [`NaiveS3`]).
pub const ACCESS_KEY_ID: &str = "modgate-test";
pub const SECRET_ACCESS_KEY: &str = "modgate-test-secret";
pub const REGION: &str = "us-east-1";

/// The AWS environment of a replica using the store at `endpoint`.
fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_REGION", REGION),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Percent-escapes an object key for a URL path (everything but unreserved
/// characters and `/`, as object_store does).
pub fn escape_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------- moto

/// moto's S3 server on 127.0.0.1, killed on drop (its log is printed if the
/// test is panicking).
pub struct S3Server {
    port: u16,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>` and waits (up to 60 s)
    /// until it answers. The binary is `MODGATE_MOTO_SERVER` if set, else
    /// `moto_server` from PATH.
    pub fn start() -> S3Server {
        let bin = std::env::var("MODGATE_MOTO_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "moto_server".to_string());
        let mut last_log = String::new();
        // The port can be taken between finding it and moto binding it: retry.
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("log file");
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.reopen().expect("reopen log"))
                .stderr(log.reopen().expect("reopen log"))
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "spawn {bin}: {e}; scripts/test.sh installs moto_server \
                         (or set MODGATE_MOTO_SERVER to its path)"
                    )
                });
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_log = std::fs::read_to_string(log.path()).unwrap_or_default();
                    eprintln!("moto_server on port {port} exited ({status}); retrying");
                    break;
                }
                let answer = http_request_timeout(
                    "GET",
                    &format!("{endpoint}/"),
                    &[("Authorization", MOTO_AUTH)],
                    None,
                    Duration::from_secs(5),
                );
                if answer.is_ok_and(|r| r.status == 200) {
                    return S3Server { port, child, log };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(log.path()).unwrap_or_default();
                    panic!("moto_server did not answer within 60 s; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto_server would not start; its last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (moto's Python process: the console script
    /// and pyenv's shims exec into it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION` (us-east-1) and `AWS_ALLOW_HTTP=true` for a replica.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(&self.endpoint())
    }

    /// Creates a bucket (in us-east-1).
    pub fn create_bucket(&self, name: &str) {
        let r = self.request("PUT", &format!("/{name}"), &[], None);
        assert_eq!(r.status, 200, "create bucket {name}: {}", r.text());
    }

    /// Stops the server (SIGSTOP): connections are accepted by the kernel
    /// but never answered until [`resume`](Self::resume).
    pub fn pause(&self) {
        signal(self.pid(), libc::SIGSTOP);
    }

    /// Continues a paused server (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    /// One request to moto with [`MOTO_AUTH`] and `headers`; `path` starts
    /// with `/BUCKET` and is sent as is (escape keys with [`escape_key`]).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let mut all = vec![("Authorization", MOTO_AUTH)];
        all.extend_from_slice(headers);
        http_request(method, &format!("{}{path}", self.endpoint()), &all, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A request on one object, `key` escaped here.
    pub fn object_request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        self.request(
            method,
            &format!("/{bucket}/{}", escape_key(key)),
            headers,
            body,
        )
    }

    /// Writes an object unconditionally; returns its ETag (quoted).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) -> String {
        let r = self.object_request("PUT", bucket, key, &[], Some(bytes));
        assert_eq!(r.status, 200, "PUT {bucket}/{key}: {}", r.text());
        r.header("etag").unwrap_or_default().to_string()
    }

    /// An object's bytes, `None` if it does not exist.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = self.object_request("GET", bucket, key, &[], None);
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET {bucket}/{key}: {s} {}", r.text()),
        }
    }

    /// Deletes an object (no error if it does not exist).
    pub fn delete_object(&self, bucket: &str, key: &str) {
        let r = self.object_request("DELETE", bucket, key, &[], None);
        assert!(
            r.status == 204 || r.status == 200,
            "DELETE {bucket}/{key}: {} {}",
            r.status,
            r.text()
        );
    }

    /// Every key under `prefix`, in S3's (byte) order; follows continuation tokens.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{bucket}?list-type=2&prefix={}", query_escape(prefix));
            if let Some(t) = &token {
                path.push_str(&format!("&continuation-token={}", query_escape(t)));
            }
            let r = self.request("GET", &path, &[], None);
            assert_eq!(r.status, 200, "list {bucket}/{prefix}: {}", r.text());
            let xml = r.text();
            keys.extend(xml_elements(&xml, "Key"));
            token = xml_elements(&xml, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none() || !xml.contains("<IsTruncated>true</IsTruncated>") {
                return keys;
            }
        }
    }

    /// Everything moto logged so far (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too; SIGCONT first anyway.
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(100).collect();
            eprintln!("---- moto_server log (last 100 lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        panic!("pid {pid} out of range");
    };
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// The text of every `<name>…</name>` element, XML entities decoded.
pub fn xml_elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..j]));
        rest = &rest[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

// ---------------------------------------------------------------- naive

/// One object held by [`NaiveS3`].
#[derive(Debug, Clone)]
struct NaiveObject {
    body: Vec<u8>,
    etag: String,
    modified: SystemTime,
}

/// One request [`NaiveS3`] answered: method, request target (path and
/// query, as sent) and headers (names lower-cased).
#[derive(Debug, Clone)]
pub struct NaiveRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl NaiveRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct NaiveState {
    /// (bucket, key) → object. Every bucket exists.
    objects: BTreeMap<(String, String), NaiveObject>,
    requests: Vec<NaiveRequest>,
    conns: Vec<TcpStream>,
}

/// An S3 endpoint that ignores conditional writes: a small HTTP/1.1 server
/// on 127.0.0.1 (a thread per connection, keep-alive) that keeps objects in
/// memory. Enough S3 for object_store's AmazonS3 client (path style):
///
/// - `PUT /b/k`: stores the body, `200` with an ETag, **whatever
///   `If-None-Match` / `If-Match` say**; with `x-amz-copy-source` it copies.
/// - `GET` / `HEAD /b/k`: the object with `ETag` (quoted, the first 32 hex
///   digits of its SHA-256: an MD5-sized tag), `Last-Modified`,
///   `Content-Length`; `Range: bytes=a-b` gives `206`; missing: `404 NoSuchKey`.
/// - `DELETE /b/k`: `204`. `POST /b?delete`: DeleteObjects.
/// - `GET /b?list-type=2&prefix=…` (also `delimiter`, `start-after`,
///   `max-keys`, `continuation-token`): a ListObjectsV2 result.
/// - `PUT` / `HEAD /b`: `200` (every bucket exists).
///
/// Stopped on drop (open connections are shut down).
pub struct NaiveS3 {
    addr: SocketAddr,
    state: Arc<Mutex<NaiveState>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl NaiveS3 {
    pub fn start() -> NaiveS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(NaiveState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if let Ok(c) = conn.try_clone() {
                        state.lock().unwrap().conns.push(c);
                    }
                    let state = state.clone();
                    std::thread::spawn(move || naive_connection(conn, &state));
                }
            })
        };
        NaiveS3 {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same AWS environment as [`S3Server::env`], for this endpoint.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(&self.endpoint())
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<NaiveRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) -> String {
        let obj = NaiveObject::new(bytes.to_vec());
        let etag = obj.etag.clone();
        self.state
            .lock()
            .unwrap()
            .objects
            .insert((bucket.to_string(), key.to_string()), obj);
        etag
    }

    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let st = self.state.lock().unwrap();
        st.objects
            .get(&(bucket.to_string(), key.to_string()))
            .map(|o| o.body.clone())
    }

    pub fn delete_object(&self, bucket: &str, key: &str) {
        self.state
            .lock()
            .unwrap()
            .objects
            .remove(&(bucket.to_string(), key.to_string()));
    }

    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.objects
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }
}

impl Drop for NaiveS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Ok(st) = self.state.lock() {
            for c in &st.conns {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl NaiveObject {
    fn new(body: Vec<u8>) -> NaiveObject {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        NaiveObject {
            body,
            etag,
            modified: SystemTime::now(),
        }
    }
}

/// A response: status, extra headers, body, and whether to send the body (HEAD).
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    send_body: bool,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            send_body: true,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn xml(status: u16, body: String) -> Reply {
        let mut r = Reply::new(status).header("Content-Type", "application/xml");
        r.body = body.into_bytes();
        r
    }
    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::xml(
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>{}</Message></Error>",
                xml_escape(message)
            ),
        )
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Status",
    }
}

/// Serves requests on one connection until the client closes it, asks to
/// close, or sends something unreadable; then shuts it down (a clone of the
/// socket stays in `NaiveState::conns`, so dropping it would not close it).
fn naive_connection(conn: TcpStream, state: &Mutex<NaiveState>) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    serve_connection(BufReader::new(conn), &mut out, state);
    let _ = out.shutdown(std::net::Shutdown::Both);
}

fn serve_connection(
    mut input: BufReader<TcpStream>,
    out: &mut TcpStream,
    state: &Mutex<NaiveState>,
) {
    loop {
        let Some((req, body)) = read_request(&mut input, out) else {
            return;
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = {
            let mut st = state.lock().unwrap();
            st.requests.push(req.clone());
            naive_answer(&mut st, &req, &body)
        };
        let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !reply.headers.iter().any(|(k, _)| k == "Content-Length") {
            head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if reply.send_body {
            bytes.extend_from_slice(&reply.body);
        }
        if out.write_all(&bytes).and_then(|_| out.flush()).is_err() || close {
            return;
        }
    }
}

/// Reads one request: its line, headers and body (Content-Length or chunked).
fn read_request(
    input: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
) -> Option<(NaiveRequest, Vec<u8>)> {
    let mut line = String::new();
    // Skip stray empty lines between requests.
    while line.trim().is_empty() {
        line.clear();
        if input.read_line(&mut line).ok()? == 0 {
            return None;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut total = 0usize;
    loop {
        let mut h = String::new();
        let n = input.read_line(&mut h).ok()?;
        total += n;
        if n == 0 || total > 64 * 1024 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let req = NaiveRequest {
        method,
        target,
        headers,
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let mut body = Vec::new();
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let mut size = String::new();
            input.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = String::new();
                    if input.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            input.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            input.read_exact(&mut crlf).ok()?;
        }
    } else if let Some(n) = req.header("content-length") {
        let n: usize = n.parse().ok()?;
        body.resize(n, 0);
        input.read_exact(&mut body).ok()?;
    }
    Some((req, body))
}

/// Decodes `%XX` escapes (and nothing else).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_digit(b[i + 1]), hex_digit(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn naive_answer(st: &mut NaiveState, req: &NaiveRequest, body: &[u8]) -> Reply {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let path = percent_decode(path.trim_start_matches('/'));
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b.to_string(), Some(k.to_string())),
        Some((b, _)) => (b.to_string(), None),
        None => (path.clone(), None),
    };
    if bucket.is_empty() {
        return Reply::xml(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult>\
             <Buckets></Buckets></ListAllMyBucketsResult>"
                .to_string(),
        );
    }
    let Some(key) = key else {
        return match req.method.as_str() {
            "PUT" | "HEAD" => Reply::new(200),
            "GET" => naive_list(st, &bucket, &query),
            "POST" if query.contains_key("delete") => {
                let body = String::from_utf8_lossy(body);
                let mut out = String::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                     <DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
                );
                for k in xml_elements(&body, "Key") {
                    st.objects.remove(&(bucket.clone(), k.clone()));
                    out.push_str(&format!("<Deleted><Key>{}</Key></Deleted>", xml_escape(&k)));
                }
                out.push_str("</DeleteResult>");
                Reply::xml(200, out)
            }
            _ => Reply::error(405, "MethodNotAllowed", "not supported here"),
        };
    };
    let id = (bucket.clone(), key.clone());
    match req.method.as_str() {
        // Conditional headers are read by nobody: that is the point.
        "PUT" => {
            if let Some(src) = req.header("x-amz-copy-source") {
                let src = percent_decode(src.trim_start_matches('/'));
                let Some((sb, sk)) = src.split_once('/') else {
                    return Reply::error(400, "InvalidArgument", "bad x-amz-copy-source");
                };
                let Some(o) = st.objects.get(&(sb.to_string(), sk.to_string())).cloned() else {
                    return Reply::error(404, "NoSuchKey", "The specified key does not exist.");
                };
                let o = NaiveObject::new(o.body);
                let out = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>\
                     <ETag>{}</ETag><LastModified>{}</LastModified></CopyObjectResult>",
                    xml_escape(&o.etag),
                    rfc3339(o.modified)
                );
                st.objects.insert(id, o);
                return Reply::xml(200, out);
            }
            let o = NaiveObject::new(body.to_vec());
            let etag = o.etag.clone();
            st.objects.insert(id, o);
            Reply::new(200).header("ETag", etag)
        }
        "GET" | "HEAD" => {
            let Some(o) = st.objects.get(&id) else {
                let mut r = Reply::error(404, "NoSuchKey", "The specified key does not exist.");
                r.send_body = req.method == "GET";
                return r;
            };
            let len = o.body.len();
            let mut r = Reply::new(200)
                .header("ETag", o.etag.clone())
                .header("Last-Modified", httpdate::fmt_http_date(o.modified))
                .header("Content-Type", "application/octet-stream")
                .header("Accept-Ranges", "bytes");
            let range = req
                .header("range")
                .and_then(|v| v.strip_prefix("bytes="))
                .filter(|_| req.method == "GET");
            match range.map(|r| parse_range(r, len)) {
                None => r.body = o.body.clone(),
                Some(Some((a, b))) => {
                    r.status = 206;
                    r = r.header("Content-Range", format!("bytes {a}-{b}/{len}"));
                    r.body = o.body[a..=b].to_vec();
                }
                Some(None) => {
                    return Reply::error(
                        416,
                        "InvalidRange",
                        "The requested range is not satisfiable",
                    )
                    .header("Content-Range", format!("bytes */{len}"));
                }
            }
            if req.method == "HEAD" {
                r = r.header("Content-Length", len.to_string());
                r.send_body = false;
            }
            r
        }
        "DELETE" => {
            st.objects.remove(&id);
            Reply::new(204)
        }
        _ => Reply::error(405, "MethodNotAllowed", "not supported here"),
    }
}

/// `a-b`, `a-` or `-n` within an object of `len` bytes; inclusive bounds.
fn parse_range(spec: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<usize>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (a <= b && b < len).then_some((a, b))
}

fn naive_list(st: &NaiveState, bucket: &str, q: &BTreeMap<String, String>) -> Reply {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max_keys: usize = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .max(1);
    // The continuation token is the last key or common prefix returned.
    let after = q
        .get("continuation-token")
        .or_else(|| q.get("start-after"))
        .cloned()
        .unwrap_or_default();
    let mut contents = String::new();
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    let (mut count, mut last, mut truncated) = (0usize, String::new(), false);
    for ((b, k), o) in &st.objects {
        if b != bucket || !k.starts_with(&prefix) || *k <= after {
            continue;
        }
        if delimiter
            .as_ref()
            .is_some_and(|d| after.ends_with(d.as_str()))
            && k.starts_with(&after)
        {
            continue; // under a common prefix already returned
        }
        let common = delimiter.as_ref().and_then(|d| {
            k[prefix.len()..]
                .find(d.as_str())
                .map(|i| k[..prefix.len() + i + d.len()].to_string())
        });
        if let Some(p) = &common
            && prefixes.contains(p)
        {
            continue;
        }
        if count == max_keys {
            truncated = true;
            break;
        }
        count += 1;
        match common {
            Some(p) => {
                last = p.clone();
                prefixes.insert(p);
            }
            None => {
                last = k.clone();
                contents.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>{}</LastModified>\
                     <ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    xml_escape(k),
                    rfc3339(o.modified),
                    xml_escape(&o.etag),
                    o.body.len()
                ));
            }
        }
    }
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>{}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount>\
         <MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(&prefix)
    );
    if let Some(d) = &delimiter {
        out.push_str(&format!("<Delimiter>{}</Delimiter>", xml_escape(d)));
    }
    if truncated {
        out.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(&last)
        ));
    }
    out.push_str(&contents);
    for p in &prefixes {
        out.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            xml_escape(p)
        ));
    }
    out.push_str("</ListBucketResult>");
    Reply::xml(200, out)
}

/// `2026-11-30T14:00:29.000Z` (UTC, millisecond precision).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}
