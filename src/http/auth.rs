//! Optional client authentication: bearer tokens and basic-auth users (`[auth]`).
//!
//! The `go` command sends credentials from `.netrc` as basic auth on every
//! request to a host that has an entry, so basic auth is what `go` users get;
//! bearer tokens suit CI systems and Prometheus. Secrets are configured as
//! SHA-256 digests: a presented secret is hashed and compared in constant
//! time, and neither it nor its digest is ever logged.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::header;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ClientAddr;
use crate::config::AuthConfig;
use crate::error::Error;

/// Who a request authenticated as (a basic-auth user name, or `bearer[i]`
/// for the i-th token of `auth.bearer_sha256`), for the access log.
#[derive(Debug, Clone)]
pub struct AuthUser(pub String);

/// Paths answered without credentials, so orchestrators can probe.
const EXEMPT: &[&str] = &["/healthz", "/readyz"];

type Digest32 = [u8; 32];

/// The accepted credentials, decoded once at start-up.
#[derive(Debug, Default)]
pub struct Auth {
    bearer: Vec<Digest32>,
    basic: BTreeMap<String, Digest32>,
}

fn decode_digest(what: &str, hex_digest: &str) -> Result<Digest32, String> {
    // The decoder's message would quote the offending character: say less.
    let bytes = hex::decode(hex_digest.trim())
        .map_err(|_| format!("{what}: not a hex SHA-256 digest (64 hex digits)"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what}: a SHA-256 digest has 64 hex digits"))
}

impl Auth {
    /// Decodes `[auth]`; an error names the bad entry (never its value).
    pub fn from_config(c: &AuthConfig) -> Result<Auth, String> {
        let bearer = c
            .bearer_sha256
            .iter()
            .enumerate()
            .map(|(i, d)| decode_digest(&format!("auth.bearer_sha256[{i}]"), d))
            .collect::<Result<_, _>>()?;
        let basic = c
            .basic_sha256
            .iter()
            .map(|(user, d)| {
                if user.is_empty() || user.contains(':') {
                    return Err(format!(
                        "auth.basic_sha256: user name {user:?} must be non-empty and without ':'"
                    ));
                }
                Ok((
                    user.clone(),
                    decode_digest(&format!("auth.basic_sha256.{user}"), d)?,
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Auth { bearer, basic })
    }

    /// Whether any credential is configured (otherwise every request passes).
    pub fn enabled(&self) -> bool {
        !self.bearer.is_empty() || !self.basic.is_empty()
    }

    /// Checks an `Authorization` header value; `Ok(who)` names the user for the logs.
    pub(crate) fn check(&self, authorization: &str) -> Result<String, &'static str> {
        let (scheme, rest) = authorization
            .split_once(' ')
            .ok_or("malformed Authorization header")?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let got: Digest32 = Sha256::digest(rest.as_bytes()).into();
            // Compare against every token, without stopping early. The
            // token is named by its place in `auth.bearer_sha256`.
            let mut matched = None;
            for (i, want) in self.bearer.iter().enumerate() {
                if bool::from(want.ct_eq(&got)) && matched.is_none() {
                    matched = Some(i);
                }
            }
            return match matched {
                Some(i) => Ok(format!("bearer[{i}]")),
                None => Err("bearer token not accepted"),
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| "malformed basic credentials")?;
            let text = String::from_utf8(raw).map_err(|_| "malformed basic credentials")?;
            let (user, password) = text.split_once(':').ok_or("malformed basic credentials")?;
            let got: Digest32 = Sha256::digest(password.as_bytes()).into();
            // An unknown user still costs one comparison, so timing does not
            // tell which user names exist.
            let (want, known) = match self.basic.get(user) {
                Some(d) => (*d, true),
                None => ([0u8; 32], false),
            };
            return if bool::from(want.ct_eq(&got)) && known {
                Ok(user.to_string())
            } else {
                Err("user or password not accepted")
            };
        }
        Err("unsupported authorization scheme")
    }
}

/// Paths that check their own credentials (admin tokens): never asked for
/// client credentials (see [`super::admin`]).
const OWN_AUTH: &[&str] = &["/admin", "/admin/"];

/// The client-auth check the front middleware ([`super::app`]) runs before a
/// request is handled: `Ok(None)` lets it through unnamed (no credentials
/// configured, or a health or admin path), `Ok(Some(who))` names who it
/// authenticated as, `Err` is the refusal (401) to answer instead. A plain function,
/// not a layer of its own: one middleware per request is measurably cheaper
/// than two on a cached hit (BENCHMARKS.md, issue #16).
pub fn admit(auth: &Auth, req: &Request) -> Result<Option<AuthUser>, Error> {
    if !auth.enabled() {
        return Ok(None);
    }
    let path = req.uri().path();
    if EXEMPT.contains(&path) || OWN_AUTH.contains(&path) {
        return Ok(None);
    }
    let verdict = match req.headers().get(header::AUTHORIZATION) {
        None => Err("no credentials"),
        Some(v) => v
            .to_str()
            .map_err(|_| "malformed Authorization header")
            .and_then(|v| auth.check(v)),
    };
    match verdict {
        Ok(who) => Ok(Some(AuthUser(who))),
        Err(why) => {
            // Missing credentials are routine (a client's first try); wrong
            // ones are worth a security event. Neither logs the secret.
            if why != "no credentials" {
                let client = req.extensions().get::<ClientAddr>().map(|c| c.0.ip());
                tracing::warn!(target: "modgate::security", %path,
                    client = client.map(tracing::field::display), reason = why,
                    "authentication failed");
            }
            Err(Error::Unauthorized(why.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_sha(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    fn basic(user: &str, pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    #[test]
    fn checks_tokens_and_users() {
        let mut c = AuthConfig::default();
        c.bearer_sha256.push(hex_sha("tok-1"));
        c.basic_sha256.insert("alice".into(), hex_sha("pa:ss"));
        let a = Auth::from_config(&c).unwrap();
        assert!(a.enabled());
        assert_eq!(a.check("Bearer tok-1").unwrap(), "bearer[0]");
        assert!(a.check("bearer tok-1").is_ok());
        assert!(a.check("Bearer tok-2").is_err());
        assert_eq!(a.check(&basic("alice", "pa:ss")).unwrap(), "alice");
        assert!(a.check(&basic("alice", "pa")).is_err());
        assert!(a.check(&basic("bob", "pa:ss")).is_err());
        assert!(a.check("Basic !!!").is_err());
        assert!(a.check("Digest x").is_err());
        assert!(a.check("Bearer").is_err());
    }

    #[test]
    fn bad_digests_are_named_without_values() {
        let mut c = AuthConfig::default();
        c.basic_sha256.insert("alice".into(), "secret".into());
        let e = Auth::from_config(&c).unwrap_err();
        assert!(e.contains("auth.basic_sha256.alice"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let mut c = AuthConfig::default();
        c.bearer_sha256.push("ab".into());
        assert!(Auth::from_config(&c).is_err());
        assert!(!Auth::from_config(&AuthConfig::default()).unwrap().enabled());
    }
}
