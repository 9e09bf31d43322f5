//! `direct` in the private upstream list: fetching from version control by running
//! the `go` command, as Athens does.
//!
//! Each request runs `go mod download -json M@V` (or `go list -m -json` for `list`
//! and `@latest`) with `GOPROXY=direct`, `GOSUMDB=off` (a private path must not reach
//! a checksum database) and a module cache of modgate's own, then reads the answer
//! from that cache. The cache is fresh for each run (`DATA_DIR/direct/runs/N`, removed
//! after): a go module cache never fetches a version again, and modgate's fetch must
//! see what the origin holds *now* — a moved tag must meet its pin. (Misses are rare:
//! what is fetched is kept in modgate's store.) Credentials are the operator's: the
//! process's git config, `.netrc` and SSH agent (`HOME`, `GIT_CONFIG_GLOBAL`,
//! `SSH_AUTH_SOCK` pass through). Only private routes may use it (see
//! [`crate::routes`]); the public route refuses `direct`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::protocol::{Kind, Request};
use crate::upstream::UpstreamError;

/// The `go` command and the module cache it fills.
#[derive(Debug, Clone)]
pub struct Direct {
    /// The `go` binary (`go` on `PATH` unless `MODGATE_GO` names one).
    go: PathBuf,
    /// `DATA_DIR/direct`: GOPATH, GOMODCACHE and GOCACHE of modgate's go runs.
    root: PathBuf,
    /// Each go run is killed after this long (`timeouts.request_secs`).
    timeout: Duration,
}

/// What `go mod download -json` and `go list -m -json` print (the fields used).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GoModule {
    version: String,
    time: Option<String>,
    versions: Vec<String>,
    info: String,
    go_mod: String,
    zip: String,
    error: Option<GoError>,
}

/// `Error` is a string in `go mod download -json`, an object in `go list -m -json`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GoError {
    Text(String),
    Object {
        #[serde(rename = "Err")]
        err: String,
    },
}

impl GoError {
    fn text(&self) -> &str {
        match self {
            GoError::Text(t) => t,
            GoError::Object { err } => err,
        }
    }
}

impl Direct {
    pub fn new(data_dir: &std::path::Path, timeout: Duration) -> Direct {
        // Runs left by a crash (the data dir is this process's alone: sled's lock).
        let _ = std::fs::remove_dir_all(data_dir.join("direct/runs"));
        Direct {
            go: std::env::var_os("MODGATE_GO")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("go")),
            root: data_dir.join("direct"),
            timeout,
        }
    }

    /// Answers a GOPROXY request path (`<module>/@v/<v>.mod`, `/@v/list`, `/@latest`)
    /// from version control. Bytes larger than `max` are refused.
    pub async fn get(&self, path: &str, max: u64) -> Result<Bytes, UpstreamError> {
        let url = format!("direct:{path}");
        let req =
            crate::protocol::parse(&format!("/{path}")).map_err(|e| UpstreamError::NotFound {
                url: url.clone(),
                status: 404,
                body: e.to_string(),
            })?;
        let body = match req {
            Request::Artifact(mv, kind) => {
                let (m, _run) = self.download_json(&url, &format!("{mv}")).await?;
                let file = match kind {
                    Kind::Info => &m.info,
                    Kind::Mod => &m.go_mod,
                    Kind::Zip => &m.zip,
                };
                read_file(&url, file, max).await?
            }
            Request::InfoQuery(m, q) => {
                let (m, _run) = self.download_json(&url, &format!("{m}@{q}")).await?;
                read_file(&url, &m.info, max).await?
            }
            Request::List(m) => {
                let (m, _run) = self
                    .go_json(&url, &["list", "-m", "-versions", "-json", m.as_str()])
                    .await?;
                let mut s = m.versions.join("\n");
                if !s.is_empty() {
                    s.push('\n');
                }
                s.into_bytes()
            }
            Request::Latest(m) => {
                let q = format!("{m}@latest");
                let (m, _run) = self.go_json(&url, &["list", "-m", "-json", &q]).await?;
                let info = serde_json::json!({"Version": m.version, "Time": m.time});
                format!("{info}\n").into_bytes()
            }
            Request::Sumdb { .. } => {
                return Err(UpstreamError::NotFound {
                    url,
                    status: 404,
                    body: "no checksum database through direct".into(),
                });
            }
        };
        if body.len() as u64 > max {
            return Err(UpstreamError::TooLarge { url, limit: max });
        }
        Ok(Bytes::from(body))
    }

    /// Streams a `.zip` fetched from version control into `dest`; returns its size.
    pub async fn download(
        &self,
        path: &str,
        max: u64,
        dest: &mut crate::landing::Landing<'_>,
        charge: &mut crate::limits::SpoolCharge,
    ) -> Result<u64, UpstreamError> {
        let url = format!("direct:{path}");
        let Ok(Request::Artifact(mv, Kind::Zip)) = crate::protocol::parse(&format!("/{path}"))
        else {
            return Err(go_error(
                &url,
                format!("{path}: not found (not a zip path)"),
            ));
        };
        let (m, _run) = self.download_json(&url, &format!("{mv}")).await?;
        if m.zip.is_empty() {
            return Err(go_error(&url, "go named no zip".into()));
        }
        let spool = |e: std::io::Error| UpstreamError::Spool(e.kind(), e.to_string());
        let mut src = tokio::fs::File::open(&m.zip).await.map_err(spool)?;
        let size = src.metadata().await.map_err(spool)?.len();
        if size > max {
            return Err(UpstreamError::TooLarge { url, limit: max });
        }
        charge.reserve(size)?;
        // Written, not yet synced (as for a proxy download): the pipeline syncs.
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0u64;
        loop {
            let got = tokio::io::AsyncReadExt::read(&mut src, &mut buf)
                .await
                .map_err(spool)?;
            if got == 0 {
                break;
            }
            n += got as u64;
            if n > max {
                return Err(UpstreamError::TooLarge { url, limit: max });
            }
            charge.reserve(n)?;
            dest.write(&buf[..got]).await.map_err(spool)?;
        }
        Ok(n)
    }

    /// `go mod download -json target`, its error mapped.
    async fn download_json(
        &self,
        url: &str,
        target: &str,
    ) -> Result<(GoModule, RunDir), UpstreamError> {
        self.go_json(url, &["mod", "download", "-json", target])
            .await
    }

    /// Runs `go args…` in a fresh module cache of modgate's own; parses its JSON
    /// output. The files it names live as long as the returned [`RunDir`].
    async fn go_json(&self, url: &str, args: &[&str]) -> Result<(GoModule, RunDir), UpstreamError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let run = RunDir(
            self.root
                .join("runs")
                .join(format!("{}-{n}", std::process::id())),
        );
        let work = run.0.join("work");
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| UpstreamError::Spool(e.kind(), e.to_string()))?;
        let s = |p: &str| run.0.join(p);
        let mut cmd = tokio::process::Command::new(&self.go);
        cmd.args(args)
            .current_dir(&work)
            .env("GOPROXY", "direct")
            // Never a checksum database, never the public proxy: the path is private.
            .env("GOSUMDB", "off")
            .env("GONOSUMDB", "")
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("GOFLAGS", "-modcacherw")
            .env("GO111MODULE", "on")
            .env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env("GOENV", "off")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GOPATH", s("gopath"))
            .env("GOMODCACHE", s("modcache"))
            .env("GOCACHE", s("gocache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| UpstreamError::Timeout { url: url.into() })?
            .map_err(|e| UpstreamError::Unreachable {
                url: url.into(),
                reason: format!("running {}: {e}", self.go.display()),
            })?;
        let parsed: Option<GoModule> = serde_json::from_slice(&out.stdout).ok();
        let error = match &parsed {
            Some(GoModule { error: Some(e), .. }) => Some(e.text().to_string()),
            Some(_) if out.status.success() => None,
            _ => Some(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("go failed")
                    .to_string(),
            ),
        };
        match (error, parsed) {
            (None, Some(m)) => Ok((m, run)),
            (Some(e), _) => Err(go_error(url, e)),
            (None, None) => Err(go_error(url, "no output".into())),
        }
    }
}

/// One go run's module cache, removed when dropped (off the async threads).
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let p = std::mem::take(&mut self.0);
        let rm = move || {
            let _ = std::fs::remove_dir_all(p);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(rm)),
            Err(_) => rm(),
        }
    }
}

/// A go error that says the module or version does not exist is a 404 (the list
/// may move on); any other is an upstream failure.
fn go_error(url: &str, text: String) -> UpstreamError {
    let missing = [
        "not found",
        "unknown revision",
        "invalid version",
        "no matching versions",
        "does not contain package",
        "repository not found",
    ];
    if missing.iter().any(|m| text.contains(m)) {
        UpstreamError::NotFound {
            url: url.into(),
            status: 404,
            body: text,
        }
    } else {
        UpstreamError::Status {
            url: url.into(),
            status: 502,
            body: text,
        }
    }
}

async fn read_file(url: &str, file: &str, max: u64) -> Result<Vec<u8>, UpstreamError> {
    if file.is_empty() {
        return Err(go_error(url, "go named no file".into()));
    }
    let meta = tokio::fs::metadata(file)
        .await
        .map_err(|e| UpstreamError::Spool(e.kind(), format!("{file}: {e}")))?;
    if meta.len() > max {
        return Err(UpstreamError::TooLarge {
            url: url.into(),
            limit: max,
        });
    }
    tokio::fs::read(file)
        .await
        .map_err(|e| UpstreamError::Spool(e.kind(), format!("{file}: {e}")))
}
