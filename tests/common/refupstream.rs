//! Harness for the reference upstream (`tests/refupstream/`, a Go module
//! proxy + checksum database built from golang.org/x/mod): start it, read
//! its URL and verifier key, and drive its `/_control/` API.
//!
//! Also home of two tiny std-only helpers the other harness files share:
//! an HTTP/1.1 client ([`http_request`]) and a JSON parser ([`Json`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use super::gobuild::go_binary;

/// A running reference upstream. Killed on drop (its stderr log is printed
/// if the test is panicking).
pub struct RefUpstream {
    /// `http://127.0.0.1:PORT` (no trailing slash): the GOPROXY URL.
    pub url: String,
    /// Verifier key of the checksum database (`<name>+<hash>+<key>`).
    pub vkey: String,
    /// Checksum database name (default `refsum.test`).
    pub sumdb_name: String,
    child: Child,
    // Kept open so a late write to stdout can never SIGPIPE the server.
    _stdout: BufReader<ChildStdout>,
    log: tempfile::NamedTempFile,
}

/// One row of `GET /_control/modules`: the honest sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    pub path: String,
    pub version: String,
    /// `h1:` hash of the zip ("" if the upstream has no zip).
    pub sum: String,
    /// `h1:` hash of the go.mod file.
    pub gomodsum: String,
}

impl RefUpstream {
    /// Starts the reference upstream with extra flags, e.g.
    /// `&["-gen", "50"]` or `&["-static-proxy", dir]`.
    pub fn start(args: &[&str]) -> RefUpstream {
        let bin = go_binary("refupstream");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("reopen log"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let mut stdout = BufReader::new(stdout);
        let (mut url, mut vkey, mut name) = (None, None, None);
        while url.is_none() || vkey.is_none() || name.is_none() {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(n) if n > 0 => {}
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = std::fs::read_to_string(log.path()).unwrap_or_default();
                    panic!("refupstream exited before printing its address; stderr:\n{err}");
                }
            };
            if let Some(v) = line.strip_prefix("URL ") {
                url = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("VKEY ") {
                vkey = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("SUMDB ") {
                name = Some(v.trim().to_string());
            }
        }
        RefUpstream {
            url: url.unwrap(),
            vkey: vkey.unwrap(),
            sumdb_name: name.unwrap(),
            child,
            _stdout: stdout,
            log,
        }
    }

    /// `http://127.0.0.1:PORT/sumdb/<name>`: the checksum database URL.
    pub fn sumdb_url(&self) -> String {
        format!("{}/sumdb/{}", self.url, self.sumdb_name)
    }

    /// The value for `GOSUMDB` that makes `go` use this checksum database
    /// directly: `"<vkey> <sumdb_url>"`.
    pub fn gosumdb(&self) -> String {
        format!("{} {}", self.vkey, self.sumdb_url())
    }

    /// Everything the upstream logged to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// GET `url + path` (path starts with `/`).
    pub fn get(&self, path: &str) -> HttpResponse {
        http_request("GET", &format!("{}{}", self.url, path), &[], None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POSTs a control request and asserts the answer is 200 "ok".
    pub fn control(&self, path_and_query: &str) {
        let url = format!("{}/_control/{}", self.url, path_and_query);
        let r = http_request("POST", &url, &[], None).unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(r.status, 200, "POST {url}: {}", r.text());
    }

    /// Serve a tampered `what` ("zip" or "mod") for module@version from
    /// now on; the checksum database keeps the honest hashes.
    pub fn tamper(&self, module: &str, version: &str, what: &str) {
        self.control(&format!(
            "tamper?module={}&version={}&what={}",
            query_escape(module),
            query_escape(version),
            what
        ));
    }

    /// Take down `what` ("proxy", "sumdb", "all") in `mode` ("503",
    /// "close": accept then close the connection, "hang": 60 s then 503).
    pub fn down(&self, what: &str, mode: &str) {
        self.control(&format!("down?what={what}&mode={mode}"));
    }

    /// Undo every `down`.
    pub fn up(&self) {
        self.control("up");
    }

    /// Switch the checksum database to a different log signed by the same
    /// key (one marker record first, then the old records), larger than the
    /// current tree and inconsistent with it.
    pub fn fork(&self) {
        self.control("fork");
    }

    /// Undo tampering, outages and forks (not counters, not added modules).
    pub fn reset(&self) {
        self.control("reset");
    }

    /// Add a generated module version at runtime.
    pub fn add(&self, module: &str, version: &str) {
        self.control(&format!(
            "add?module={}&version={}",
            query_escape(module),
            query_escape(version)
        ));
    }

    /// Raw JSON of `GET /_control/counters`.
    pub fn counters_raw(&self) -> String {
        self.get("/_control/counters").text()
    }

    /// Hit counters per request path (proxy and sumdb paths, as requested,
    /// e.g. `/example.com/hello/@v/v1.0.0.zip`, `/sumdb/refsum.test/latest`).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let json = Json::parse(&self.counters_raw()).expect("counters JSON");
        let mut out = BTreeMap::new();
        if let Json::Object(fields) = json {
            for (k, v) in fields {
                out.insert(k, v.as_f64().unwrap_or(0.0) as u64);
            }
        }
        out
    }

    /// Hits of one request path (0 if never requested).
    pub fn hits(&self, path: &str) -> u64 {
        self.counters().get(path).copied().unwrap_or(0)
    }

    /// Sum of hits over all paths ending in `suffix` (e.g. ".zip").
    pub fn hits_suffix(&self, suffix: &str) -> u64 {
        self.counters()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v)
            .sum()
    }

    /// Zero all counters.
    pub fn reset_counters(&self) {
        self.control("counters/reset");
    }

    /// Every module version served, with its honest sums.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        let json = Json::parse(&self.get("/_control/modules").text()).expect("modules JSON");
        json.as_array()
            .expect("modules array")
            .iter()
            .map(|m| ModuleInfo {
                path: m.str_field("path").to_string(),
                version: m.str_field("version").to_string(),
                sum: m.str_field("sum").to_string(),
                gomodsum: m.str_field("gomodsum").to_string(),
            })
            .collect()
    }
}

impl Drop for RefUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- refupstream stderr ----\n{}", self.log());
        }
    }
}

/// Percent-escapes a query parameter value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------- HTTP

/// A response read by [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Minimal HTTP/1.1 client over std::net for `http://host:port/path` URLs
/// (one request per connection, `Connection: close`; handles
/// Content-Length, chunked and read-to-EOF bodies). 30 s timeouts.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<HttpResponse> {
    http_request_timeout(method, url, headers, body, Duration::from_secs(30))
}

/// [`http_request`] with an explicit read/write timeout.
pub fn http_request_timeout(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    use std::io::{Error, ErrorKind};
    let bad = |m: &str| Error::new(ErrorKind::InvalidData, m.to_string());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::new(ErrorKind::UnexpectedEof, "connection closed before headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut data = raw[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut hdrs = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            hdrs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let resp_header = |n: &str| hdrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if resp_header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut rest = &data[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size_str = String::from_utf8_lossy(&rest[..nl]);
            let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size + 2 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "truncated chunk"));
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        data = out;
    } else if let Some(n) = resp_header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if data.len() < n && method != "HEAD" {
            return Err(Error::new(ErrorKind::UnexpectedEof, "truncated body"));
        }
        data.truncate(n);
    }
    Ok(HttpResponse {
        status,
        headers: hdrs,
        body: data,
    })
}

// ---------------------------------------------------------------- JSON

/// A parsed JSON value (tiny std-only parser for test output).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Fields in document order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON value (surrounding whitespace allowed).
    pub fn parse(s: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }

    /// Parses a stream of concatenated JSON values (as `go ... -json` prints).
    pub fn parse_stream(s: &str) -> Result<Vec<Json>, String> {
        let mut p = JsonParser {
            s: s.as_bytes(),
            i: 0,
        };
        let mut out = Vec::new();
        loop {
            p.ws();
            if p.i >= p.s.len() {
                return Ok(out);
            }
            out.push(p.value()?);
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    /// String field `key`, or "" if absent / not a string.
    pub fn str_field(&self, key: &str) -> &str {
        self.get(key).and_then(Json::as_str).unwrap_or("")
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn err<T>(&self, m: &str) -> Result<T, String> {
        Err(format!("json: {m} at byte {}", self.i))
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return self.err("expected ':'");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    fields.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(fields));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                t.parse()
                    .map(Json::Number)
                    .or_else(|_| self.err("bad number"))
            }
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return self.err("expected string");
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("bad escape");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00));
                            }
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        }
                        _ => return self.err("bad escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or("json: short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())
    }
}

/// Every built-in module of the reference upstream, as `path@version`.
pub const BUILTIN_MODULES: &[&str] = &[
    "example.com/hello@v1.0.0",
    "example.com/hello@v1.1.0",
    "example.com/Upper/Case@v1.0.0",
    "example.com/multi/v2@v2.0.0",
    "example.com/incompat@v2.0.1+incompatible",
    "example.com/pseudo@v0.0.0-20200101000000-abcdefabcdef",
    "example.com/nested@v1.0.0",
    "example.com/app@v1.0.0",
];
