//! The admin socket: a running server answers admin requests on `<data-dir>/admin.sock` (mode 0600).
//!
//! One JSON [`Request`] per connection (ended by the client closing its
//! write side, or a newline), at most `admin.max_request_bytes`; one JSON
//! [`Response`] back, then the server closes. The file system decides who is
//! an admin: whoever may open the socket may also read the data dir.
//!
//! A socket file left by a killed server is detected at start (nobody
//! accepts on it) and replaced; a live one means another server runs on the
//! same data dir, which sled's lock would have refused already.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::api::{self, Admin, Request, Response};

/// The socket's file name inside the data dir.
pub const SOCKET_NAME: &str = "admin.sock";
/// How long a client may take to send its request (a stuck client cannot pin a task).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Why the admin socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {0}: another modgate answers on it")]
    InUse(PathBuf),
}

/// Binds the socket (replacing a stale one) with mode 0600.
pub async fn bind(data_dir: &Path) -> Result<UnixListener, SocketError> {
    use std::os::unix::fs::PermissionsExt;
    let p = path(data_dir);
    let io = |source| SocketError::Io {
        path: p.clone(),
        source,
    };
    if p.exists() {
        // Someone accepting on it: a live server. Refused: a dead one's leftover.
        if UnixStream::connect(&p).await.is_ok() {
            return Err(SocketError::InUse(p));
        }
        tracing::info!(path = %p.display(), "removing a stale admin socket left by a stopped server");
        std::fs::remove_file(&p).map_err(io)?;
    }
    let listener = UnixListener::bind(&p).map_err(io)?;
    // Only the owner may connect. Between bind and chmod the file has the
    // umask's mode; the data dir itself should be private too (see README).
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Answers admin requests until the listener fails; each connection on its own task.
pub async fn serve(listener: UnixListener, admin: Arc<Admin>) {
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            if let Err(e) = one(conn, &admin).await {
                tracing::debug!(error = %e, "admin socket connection");
            }
        });
    }
}

async fn one(mut conn: UnixStream, admin: &Admin) -> std::io::Result<()> {
    let max = admin.max_request_bytes;
    let body = tokio::time::timeout(READ_TIMEOUT, read_request(&mut conn, max)).await;
    let resp = match body {
        Err(_) => {
            count(admin, "bad_request");
            Response::error("admin request: nothing complete received in 10 s")
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => {
            count(admin, "too_large");
            Response::error(format!(
                "admin request larger than admin.max_request_bytes ({max} bytes)"
            ))
        }
        Ok(Ok(Some(body))) => match api::parse(&body) {
            Ok(req) => {
                tracing::info!(target: "modgate::admin", request = ?req, via = "socket", "admin request");
                api::answer(admin, req).await
            }
            Err(e) => {
                count(admin, "bad_request");
                Response::error(e)
            }
        },
    };
    let mut text = serde_json::to_vec(&resp).unwrap_or_default();
    text.push(b'\n');
    conn.write_all(&text).await?;
    conn.shutdown().await
}

fn count(admin: &Admin, outcome: &str) {
    admin
        .metrics
        .admin_requests
        .with_label_values(&[outcome])
        .inc();
}

/// Reads one request: up to EOF or the first newline. `None` if over `max` bytes.
async fn read_request(conn: &mut UnixStream, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(Some(body));
        }
        body.extend_from_slice(&buf[..n]);
        if body.len() > max {
            // Read (and drop) a bounded rest first: closing with unread
            // bytes would reset the connection before the client reads why.
            let mut left = max.saturating_mul(16);
            while left > 0 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) if buf[..n].contains(&b'\n') => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
            return Ok(None);
        }
        if let Some(end) = body.iter().position(|&b| b == b'\n') {
            body.truncate(end);
            return Ok(Some(body));
        }
    }
}

/// How long a command waits for a starting server's socket.
pub const STARTING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks the server running on `data_dir`, if one answers; `Ok(None)` when
/// none does (no socket, or a stale one), so the caller opens the data dir itself.
///
/// A server that holds the data dir but does not answer yet is starting (it
/// opens the store before its socket): it is given [`STARTING_WAIT`] to answer,
/// rather than the command failing on the store's lock.
pub async fn ask(data_dir: &Path, req: &Request) -> std::io::Result<Option<Response>> {
    let p = path(data_dir);
    let deadline = tokio::time::Instant::now() + STARTING_WAIT;
    let mut conn = loop {
        match UnixStream::connect(&p).await {
            Ok(c) => break c,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                let starting = super::cache::is_locked(data_dir);
                if !starting || tokio::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let mut text = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    text.push(b'\n');
    conn.write_all(&text).await?;
    conn.shutdown().await?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await?;
    serde_json::from_slice(&answer)
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("admin socket answered garbage: {e}")))
}
