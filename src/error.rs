//! Typed errors of the serving path, and their one mapping to HTTP statuses.
//!
//! Every failure a client can see passes through [`Error`]; `IntoResponse`
//! below is the only place that picks a status code. The one rule that
//! matters most is enforced here: a verification failure is **403**, never
//! 404/410 — the `go` command treats 404/410 as "try the next proxy", so a
//! `GOPROXY=modgate,direct` client would silently fall back around us.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error on the way to answering a request. Cheap to clone, so one
/// coalesced fetch can hand the same outcome to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed (bad path, bad version, bad escape).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not found (by upstream, or not a route we serve).
    #[error("not found: {0}")]
    NotFound(String),
    /// Upstream answered 410 Gone.
    #[error("gone: {0}")]
    Gone(String),
    /// Credentials missing or not accepted (`[auth]`). Answered 401 with a
    /// `WWW-Authenticate` challenge; the message never holds the credential.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Verification failed: the bytes are not what the checksum database
    /// says, or the database itself misbehaved. Always 403.
    #[error("SECURITY: {0}")]
    Security(String),
    /// The checksum database does not know this version: answered like
    /// [`Error::Security`] (403). Its own variant because it is logged and
    /// counted where it is answered, not where the lookup ran: a lookup run
    /// beside the upstream fetch of a version the upstream does not have
    /// either is dropped unlogged (the 404 is the answer).
    #[error("SECURITY: {0}")]
    NotInSumdb(String),
    /// The supply-chain gate refuses this version (a deny rule, a malicious-
    /// package advisory, a blocked vulnerability, the cooldown, a typosquat):
    /// it verified, but policy says no one gets it. Always 403; the message
    /// names the module, the version and why (advisory ids, the rule's reason).
    #[error("SECURITY: {0}")]
    Refused(String),
    /// Authenticated, but not allowed here by policy (a client token on the
    /// admin API). 403: policy, not an internal failure.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Upstream could not be reached or answered with an error.
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// Upstream or the checksum database timed out.
    #[error("{0}")]
    Timeout(String),
    /// Serving only from the cache and this is not in it.
    #[error("not found: {0} (modgate is offline and serves only what it has cached)")]
    Offline(String),
    /// The store failed (read-only, corrupt index, I/O error).
    #[error("storage error: {0}")]
    Storage(String),
    /// The shared store (a bucket) failed or is unreachable: 503.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// The store is out of space (ENOSPC, EDQUOT): 507, and nothing partial kept.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// A bug or an unexpected condition.
    #[error("internal error: {0}")]
    Internal(String),
    /// A load limit bit (see `crate::limits`): 503 with `Retry-After`.
    #[error("overloaded, retry later: {reason}")]
    Overloaded { reason: String, retry_after: u64 },
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) | Error::Offline(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Security(_) | Error::NotInSumdb(_) | Error::Refused(_) | Error::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            Error::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Overloaded { .. } | Error::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// Whether this is a proven verification failure (logged as a security event).
    pub fn is_security(&self) -> bool {
        matches!(self, Error::Security(_) | Error::NotInSumdb(_))
    }
}

impl Error {
    /// A failed write or read of the data dir: out of space is 507 (the
    /// operator must free space; retrying elsewhere will not help), anything
    /// else a 500 that says what failed.
    pub fn storage(kind: std::io::ErrorKind, message: String) -> Error {
        use std::io::ErrorKind;
        match kind {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                Error::InsufficientStorage(message)
            }
            _ => Error::Storage(message),
        }
    }
}

impl Error {
    /// A store failure while storing `what` (`module@version kind`): the
    /// client's message names what could not be stored.
    pub fn storing(what: &dyn std::fmt::Display, e: crate::store::StoreError) -> Error {
        match Error::from(e) {
            Error::Storage(m) => Error::Storage(format!("storing {what}: {m}")),
            Error::InsufficientStorage(m) => {
                Error::InsufficientStorage(format!("storing {what}: {m}"))
            }
            Error::StorageUnavailable(m) => {
                Error::StorageUnavailable(format!("storing {what}: {m}"))
            }
            Error::Timeout(m) => Error::Timeout(format!("storing {what}: {m}")),
            e => e,
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match &e {
            crate::store::StoreError::Io { source, .. } => {
                Error::storage(source.kind(), e.to_string())
            }
            crate::store::StoreError::Shared {
                timed_out: true, ..
            } => Error::Timeout(e.to_string()),
            crate::store::StoreError::Shared { .. } => Error::StorageUnavailable(e.to_string()),
            _ => Error::Storage(e.to_string()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The `go` command prints at most 8 lines / 648 bytes of the body, up
        // to the first blank line: keep the whole message on its first line.
        let mut body = self.to_string().replace('\n', " ");
        body.push('\n');
        let mut resp = (self.status(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Error::Overloaded { retry_after, .. } = &self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if matches!(self, Error::Unauthorized(_)) {
            // Basic is what the go command answers (from .netrc); Bearer for tools.
            for challenge in [
                "Basic realm=\"modgate\", charset=\"UTF-8\"",
                "Bearer realm=\"modgate\"",
            ] {
                resp.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
        }
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn overload_is_503_with_retry_after() {
        let e = Error::Overloaded {
            reason: "x: too many downloads running".into(),
            retry_after: 7,
        };
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn out_of_space_is_507() {
        let full = StoreError::Io {
            path: "/data/tmp/x.part".into(),
            source: std::io::Error::from_raw_os_error(28), // ENOSPC
        };
        let e = Error::from(full);
        assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(e.to_string().contains("/data/tmp/x.part"), "{e}");
        let denied = StoreError::Io {
            path: "/data/tmp".into(),
            source: std::io::Error::from_raw_os_error(30), // EROFS
        };
        assert_eq!(
            Error::from(denied).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
