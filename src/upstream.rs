//! Talking to upstream proxies and the checksum database: one shared HTTP client,
//! GOPROXY-list semantics, size limits and timeouts.
//!
//! Every URL is a configured base plus a path that the caller built from
//! validated, re-escaped values ([`crate::protocol::ModVersion::artifact_path`]),
//! so request text can never choose the host (no SSRF).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{Config, ConfigError};
use crate::landing::Landing;
use crate::limits::{SpoolCharge, SpoolFull};
use crate::metrics::{Metrics, upstream_outcome};

/// What went wrong talking to an upstream server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// 404 or 410: the only answers that let `,` fall through to the next proxy.
    #[error("{url}: {status} {body}")]
    NotFound {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unexpected status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: response larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: response truncated ({got} of {want} bytes)")]
    Truncated { url: String, got: u64, want: u64 },
    #[error("upstream is off")]
    Off,
    /// Writing the local spool file failed (the kind tells a full disk apart).
    #[error("writing spool file: {1}")]
    Spool(std::io::ErrorKind, String),
    /// The spool's byte budget is spent by downloads in progress (load, not a fault).
    #[error(transparent)]
    SpoolFull(#[from] SpoolFull),
}

impl UpstreamError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. } | UpstreamError::Off)
    }
}

/// One entry of the GOPROXY list and how to treat its failures.
#[derive(Debug, Clone)]
struct Proxy {
    base: String,
    /// `|` after this entry: fall through on any error, not only 404/410.
    fall_through_any: bool,
    /// `direct`: the `go` command fetches from version control (private routes only).
    direct: Option<Arc<crate::direct::Direct>>,
}

impl Proxy {
    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path)
    }

    /// The `go` command's rule: after `,` only a 404/410 moves on to the
    /// next proxy; after `|` any error does.
    fn moves_on(&self, e: &UpstreamError) -> bool {
        self.fall_through_any || e.is_not_found()
    }
}

/// The shared HTTP client plus the configured upstream list.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    proxies: Vec<Proxy>,
    request_timeout: Duration,
    read_timeout: Duration,
    /// The server's metrics registry; it lives here because every part of a
    /// server shares this object (see [`crate::metrics`]).
    metrics: Arc<Metrics>,
    /// `Authorization` headers by upstream URL prefix (`[[upstream_auth]]`).
    auth: Arc<Vec<(String, reqwest::header::HeaderValue)>>,
}

/// The `Authorization` header of each `[[upstream_auth]]` entry, its secret
/// read from its file (trailing newline dropped) and marked sensitive so it
/// is never printed.
fn load_auth(
    entries: &[crate::config::UpstreamAuth],
) -> Result<Vec<(String, reqwest::header::HeaderValue)>, ConfigError> {
    use base64::Engine;
    let read = |url: &str, f: &std::path::Path| {
        std::fs::read_to_string(f)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| {
                ConfigError::UpstreamAuth(url.into(), format!("reading {}: {e}", f.display()))
            })
    };
    let mut out = Vec::new();
    for a in entries {
        let url = a.url.trim_end_matches('/').to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::UpstreamAuth(
                a.url.clone(),
                "url must be an http(s) URL prefix".into(),
            ));
        }
        let value = match (&a.bearer_file, &a.username, &a.password_file) {
            (Some(f), None, None) => format!("Bearer {}", read(&url, f)?),
            (None, Some(user), Some(f)) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", read(&url, f)?))
            ),
            _ => {
                return Err(ConfigError::UpstreamAuth(
                    a.url.clone(),
                    "give bearer_file, or username and password_file".into(),
                ));
            }
        };
        let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
            ConfigError::UpstreamAuth(
                a.url.clone(),
                "the secret is not a valid header value".into(),
            )
        })?;
        v.set_sensitive(true);
        out.push((url, v));
    }
    Ok(out)
}

/// Parses GOPROXY syntax into proxies. `off` gives an empty list; `direct`
/// is refused: the public route never fetches from version control.
fn parse_list(spec: &str) -> Result<Vec<Proxy>, ConfigError> {
    parse_list_with(spec, None)
}

/// [`parse_list`], where `direct` is accepted when `direct` is given.
fn parse_list_with(
    spec: &str,
    direct: Option<&Arc<crate::direct::Direct>>,
) -> Result<Vec<Proxy>, ConfigError> {
    let err = |m: String| ConfigError::Upstream(spec.to_string(), m);
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        let cut = rest.find([',', '|']).unwrap_or(rest.len());
        let entry = rest[..cut].trim();
        let sep = rest[cut..].chars().next();
        rest = rest.get(cut + 1..).unwrap_or("");
        match entry {
            "" => return Err(err("empty entry in list".into())),
            "off" => {
                if out.is_empty() && rest.is_empty() {
                    return Ok(out);
                }
                return Err(err("`off` must be the whole list".into()));
            }
            "direct" if direct.is_some() => out.push(Proxy {
                base: "direct".into(),
                fall_through_any: sep == Some('|'),
                direct: direct.cloned(),
            }),
            "direct" => {
                return Err(err(
                    "`direct` (fetching from version control) is only for private_upstream; list proxies only"
                        .into(),
                ));
            }
            // Credentials go in [[upstream_auth]], not in a URL that is logged.
            e if (e.starts_with("http://") || e.starts_with("https://"))
                && e.split('/').nth(2).is_some_and(|host| host.contains('@')) =>
            {
                return Err(err(
                    "credentials in a URL end up in logs: put them in [[upstream_auth]] (bearer_file, or username + password_file)".into(),
                ));
            }
            e if e.starts_with("http://") || e.starts_with("https://") => out.push(Proxy {
                base: e.trim_end_matches('/').to_string(),
                fall_through_any: sep == Some('|'),
                direct: None,
            }),
            e => return Err(err(format!("{e:?} is not an http:// or https:// URL"))),
        }
    }
    if out.is_empty() {
        return Err(err("no proxies listed".into()));
    }
    Ok(out)
}

impl Upstream {
    pub fn new(cfg: &Config) -> Result<Upstream, ConfigError> {
        Self::with_metrics(cfg, Arc::new(Metrics::new()))
    }

    /// [`Upstream::new`] counting into the server's registry `metrics`
    /// (the server owns it; every upstream built from this one shares it).
    pub fn with_metrics(cfg: &Config, metrics: Arc<Metrics>) -> Result<Upstream, ConfigError> {
        let proxies = parse_list(&cfg.upstream)?;
        // reqwest is built without a bundled crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("modgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.connect_timeout())
            .read_timeout(cfg.read_timeout())
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| ConfigError::Upstream(cfg.upstream.clone(), e.to_string()))?;
        Ok(Upstream {
            client,
            proxies,
            request_timeout: cfg.request_timeout(),
            read_timeout: cfg.read_timeout(),
            metrics,
            auth: Arc::new(load_auth(&cfg.upstream_auth)?),
        })
    }

    /// Another proxy list (GOPROXY syntax) over this one's HTTP client, limits
    /// and metrics registry: the private route's upstream (see [`crate::routes`]).
    /// `direct` is accepted when `direct` says how to run the go command.
    pub fn for_list(
        &self,
        spec: &str,
        direct: Option<Arc<crate::direct::Direct>>,
    ) -> Result<Upstream, ConfigError> {
        Ok(Upstream {
            proxies: parse_list_with(spec, direct.as_ref())?,
            ..self.clone()
        })
    }

    /// The server's metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether any upstream proxy is configured (`off` gives none).
    pub fn is_off(&self) -> bool {
        self.proxies.is_empty()
    }

    /// Fetches a small file (`.info`, `.mod`, `list`, `@latest`) through the list.
    pub async fn get(&self, path: &str, max: u64) -> Result<Bytes, UpstreamError> {
        let mut last = UpstreamError::Off;
        for p in &self.proxies {
            let r = match &p.direct {
                Some(d) => self.counted("get", d.get(path, max)).await,
                None => self.get_url(&p.url(path), max).await,
            };
            match r {
                Ok(b) => return Ok(b),
                Err(e) if p.moves_on(&e) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Streams a large file (a zip) into `dest` through the list. Returns its
    /// size. The bytes are written, not yet synced.
    pub async fn download(
        &self,
        path: &str,
        max: u64,
        dest: &mut Landing<'_>,
        charge: &mut SpoolCharge,
    ) -> Result<u64, UpstreamError> {
        let mut last = UpstreamError::Off;
        for (i, p) in self.proxies.iter().enumerate() {
            if i > 0 {
                // A previous proxy may have left a partial body.
                dest.clear().await.map_err(spool_err)?;
            }
            let r = match &p.direct {
                Some(d) => {
                    self.counted("download", d.download(path, max, dest, charge))
                        .await
                }
                None => self.download_url(&p.url(path), max, dest, charge).await,
            };
            match r {
                Ok(r) => return Ok(r),
                // Local load: another proxy would not help.
                Err(e @ UpstreamError::SpoolFull(_)) => return Err(e),
                Err(e) if p.moves_on(&e) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Runs `fut` (a `direct` fetch), counted in the metrics like a request.
    async fn counted<T: ByteCount>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let start = Instant::now();
        let r = fut.await;
        let bytes = r.as_ref().map_or(0, |b| b.byte_count());
        self.metrics
            .upstream(op, upstream_outcome(&r), start.elapsed(), bytes);
        r
    }

    /// Fetches one URL whole, bounded in size and time.
    pub async fn get_url(&self, url: &str, max: u64) -> Result<Bytes, UpstreamError> {
        let fut = async {
            let mut resp = self.send(url).await?;
            let want = resp.content_length();
            if want.is_some_and(|n| n > max) {
                return Err(UpstreamError::TooLarge {
                    url: url.to_string(),
                    limit: max,
                });
            }
            let mut body = Vec::with_capacity(want.unwrap_or(0).min(max) as usize);
            while let Some(chunk) = resp.chunk().await.map_err(|e| body_err(url, e))? {
                if body.len() as u64 + chunk.len() as u64 > max {
                    return Err(UpstreamError::TooLarge {
                        url: url.to_string(),
                        limit: max,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            check_length(url, body.len() as u64, want)?;
            Ok(Bytes::from(body))
        };
        let start = Instant::now();
        let r = tokio::time::timeout(self.request_timeout, fut)
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Timeout { url: url.into() }));
        let bytes = r.as_ref().map_or(0, |b| b.len() as u64);
        self.metrics
            .upstream("get", upstream_outcome(&r), start.elapsed(), bytes);
        r
    }

    /// Streams one URL into `file`, counted in the metrics.
    async fn download_url(
        &self,
        url: &str,
        max: u64,
        dest: &mut Landing<'_>,
        charge: &mut SpoolCharge,
    ) -> Result<u64, UpstreamError> {
        let start = Instant::now();
        let r = self.download_url_uncounted(url, max, dest, charge).await;
        let bytes = r.as_ref().map_or(0, |n| *n);
        self.metrics
            .upstream("download", upstream_outcome(&r), start.elapsed(), bytes);
        r
    }

    async fn download_url_uncounted(
        &self,
        url: &str,
        max: u64,
        dest: &mut Landing<'_>,
        charge: &mut SpoolCharge,
    ) -> Result<u64, UpstreamError> {
        let mut resp = tokio::time::timeout(self.request_timeout, self.send(url))
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Timeout { url: url.into() }))?;
        let want = resp.content_length();
        if want.is_some_and(|n| n > max) {
            return Err(UpstreamError::TooLarge {
                url: url.to_string(),
                limit: max,
            });
        }
        // A declared length is charged to the spool's budget up front, so a
        // download that cannot fit is refused before its first byte.
        if let Some(n) = want {
            charge.reserve(n)?;
        }
        let mut got: u64 = 0;
        loop {
            // The stall timeout bounds each read, so a trickling upstream
            // cannot hold a download (and its waiters) forever.
            let chunk = tokio::time::timeout(self.read_timeout, resp.chunk())
                .await
                .map_err(|_| UpstreamError::Timeout { url: url.into() })?
                .map_err(|e| body_err(url, e))?;
            let Some(chunk) = chunk else { break };
            got += chunk.len() as u64;
            if got > max {
                return Err(UpstreamError::TooLarge {
                    url: url.to_string(),
                    limit: max,
                });
            }
            charge.reserve(got)?;
            dest.write(&chunk).await.map_err(spool_err)?;
        }
        check_length(url, got, want)?;
        Ok(got)
    }

    /// The credentials configured for `url`, if any (the longest prefix that
    /// ends at a path boundary).
    fn auth_for(&self, url: &str) -> Option<&reqwest::header::HeaderValue> {
        self.auth
            .iter()
            .filter(|(p, _)| {
                url.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, v)| v)
    }

    async fn send(&self, url: &str) -> Result<reqwest::Response, UpstreamError> {
        let mut req = self.client.get(url);
        if let Some(v) = self.auth_for(url) {
            req = req.header(reqwest::header::AUTHORIZATION, v.clone());
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout { url: url.into() }
            } else {
                UpstreamError::Unreachable {
                    url: url.into(),
                    reason: error_chain(&e),
                }
            }
        })?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(resp);
        }
        // Keep a short excerpt of the body: it often says why. Only its first
        // bytes are read (bounded in size and time), the rest is dropped
        // with the connection.
        let body = tokio::time::timeout(Duration::from_secs(5), error_excerpt(resp))
            .await
            .unwrap_or_default();
        let url = url.to_string();
        Err(match status {
            404 | 410 => UpstreamError::NotFound { url, status, body },
            _ => UpstreamError::Status { url, status, body },
        })
    }
}

/// How many bytes an upstream answer brought (for the metrics).
trait ByteCount {
    fn byte_count(&self) -> u64;
}

impl ByteCount for Bytes {
    fn byte_count(&self) -> u64 {
        self.len() as u64
    }
}

impl ByteCount for u64 {
    fn byte_count(&self) -> u64 {
        *self
    }
}

/// Most bytes of an error answer's body read (for its first line).
const MAX_ERROR_BODY: usize = 512;

/// The first line of an error answer, read from at most [`MAX_ERROR_BODY`] bytes.
async fn error_excerpt(mut resp: reqwest::Response) -> String {
    let mut b = Vec::with_capacity(MAX_ERROR_BODY);
    while b.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => b.extend_from_slice(&c[..c.len().min(MAX_ERROR_BODY - b.len())]),
            _ => break,
        }
    }
    let s = String::from_utf8_lossy(&b);
    s.lines().next().unwrap_or("").trim().to_string()
}

fn spool_err(e: std::io::Error) -> UpstreamError {
    UpstreamError::Spool(e.kind(), e.to_string())
}

fn body_err(url: &str, e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout { url: url.into() }
    } else {
        UpstreamError::Unreachable {
            url: url.into(),
            reason: format!("reading body: {}", error_chain(&e)),
        }
    }
}

fn check_length(url: &str, got: u64, want: Option<u64>) -> Result<(), UpstreamError> {
    match want {
        Some(w) if w != got => Err(UpstreamError::Truncated {
            url: url.to_string(),
            got,
            want: w,
        }),
        _ => Ok(()),
    }
}

/// An error with its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_go_to_their_upstream_only() {
        use axum::http::HeaderMap;
        // An upstream that answers 200 only to the configured token.
        let app = axum::Router::new().fallback(|h: HeaderMap| async move {
            match h.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer s3cret") => (axum::http::StatusCode::OK, "module x\n"),
                Some("Basic Y2k6cHc=") => (axum::http::StatusCode::OK, "module y\n"),
                _ => (axum::http::StatusCode::UNAUTHORIZED, "who are you\n"),
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let (token, pw) = (dir.path().join("token"), dir.path().join("pw"));
        std::fs::write(&token, "s3cret\n").unwrap();
        std::fs::write(&pw, "pw").unwrap();

        let mut cfg = Config {
            upstream: format!("{base}/team"),
            ..Config::default()
        };
        cfg.upstream_auth = vec![crate::config::UpstreamAuth {
            url: format!("{base}/team/"),
            bearer_file: Some(token.clone()),
            ..Default::default()
        }];
        let up = Upstream::new(&cfg).unwrap();
        assert_eq!(
            &up.get("/m/@v/list", 1 << 10).await.unwrap()[..],
            b"module x\n"
        );
        // Not sent to a URL outside the prefix (`/teammates` is not under `/team`).
        let other = up.get_url(&format!("{base}/teammates/x"), 1 << 10).await;
        assert!(
            matches!(other, Err(UpstreamError::Status { status: 401, .. })),
            "{other:?}"
        );
        // Basic auth; the private list shares the credentials.
        cfg.upstream_auth[0].bearer_file = None;
        cfg.upstream_auth[0].username = Some("ci".into());
        cfg.upstream_auth[0].password_file = Some(pw);
        let up = Upstream::new(&cfg).unwrap();
        let private = up.for_list(&format!("{base}/team"), None).unwrap();
        assert_eq!(
            &private.get("/m/@v/list", 1 << 10).await.unwrap()[..],
            b"module y\n"
        );
        // The header is sensitive: its Debug form hides the secret.
        assert!(
            !format!("{:?}", up.auth).contains("Y2k6cHc"),
            "{:?}",
            up.auth
        );

        // Credentials in a URL are refused, and a bad entry names itself.
        let e = parse_list("https://ci:pw@athens.corp.example").unwrap_err();
        assert!(e.to_string().contains("[[upstream_auth]]"), "{e}");
        cfg.upstream_auth[0].password_file = None;
        let e = Upstream::new(&cfg).err().expect("refused");
        assert!(e.to_string().contains("username and password_file"), "{e}");
        cfg.upstream_auth[0].bearer_file = Some(dir.path().join("missing"));
        cfg.upstream_auth[0].username = None;
        let e = Upstream::new(&cfg).err().expect("refused");
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[tokio::test]
    async fn error_bodies_are_read_only_to_their_excerpt() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // An endless error body: only its first bytes are pulled.
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let endless = futures_util::stream::repeat_with(move || {
            p.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from_static(b"upstream says no\nand on and on "))
        });
        let resp = reqwest::Response::from(
            axum::http::Response::builder()
                .status(500)
                .body(reqwest::Body::wrap_stream(endless))
                .unwrap(),
        );
        assert_eq!(error_excerpt(resp).await, "upstream says no");
        let n = pulled.load(Ordering::SeqCst);
        assert!(n <= MAX_ERROR_BODY / 16, "pulled {n} chunks of ~31 bytes");
    }

    #[test]
    fn goproxy_lists() {
        let l = parse_list("https://a.example, https://b.example|https://c.example/").unwrap();
        assert_eq!(l.len(), 3);
        assert!(!l[0].fall_through_any);
        assert!(l[1].fall_through_any);
        assert_eq!(l[2].base, "https://c.example");
        assert!(parse_list("off").unwrap().is_empty());
        assert!(parse_list("https://a.example,direct").is_err());
        assert!(parse_list("https://a.example,,https://b").is_err());
        assert!(parse_list("ftp://a").is_err());
        assert!(parse_list("").is_err());
    }
}
