//! The GOPROXY protocol's request paths, parsed into typed requests — pure, no I/O.
//!
//! ```text
//! /github.com/!burnt!sushi/toml/@v/list
//! /github.com/!burnt!sushi/toml/@v/v0.3.1.info     .mod  .zip
//! /github.com/!burnt!sushi/toml/@latest
//! /sumdb/sum.golang.org/supported | latest | lookup/M@V | tile/8/0/x001/234.p/5
//! ```
//!
//! Request text never reaches the filesystem or an upstream URL as it is:
//! everything is decoded, validated by the [`crate::module`] rules, and
//! re-escaped from the typed value when a URL or key is built.

use std::fmt;

use crate::module;

/// One of the three immutable artifacts of a module version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Info,
    Mod,
    Zip,
}

impl Kind {
    /// The file extension used in URLs and keys.
    pub fn ext(self) -> &'static str {
        match self {
            Kind::Info => "info",
            Kind::Mod => "mod",
            Kind::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Info => "application/json",
            Kind::Mod => "text/plain; charset=utf-8",
            Kind::Zip => "application/zip",
        }
    }

    pub fn parse(ext: &str) -> Option<Kind> {
        match ext {
            "info" => Some(Kind::Info),
            "mod" => Some(Kind::Mod),
            "zip" => Some(Kind::Zip),
            _ => None,
        }
    }
}

/// A checked module path and canonical version (`module.Check` holds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModVersion {
    path: String,
    version: String,
}

impl ModVersion {
    /// Validates an unescaped module path and version.
    pub fn new(path: &str, version: &str) -> Result<ModVersion, ParseError> {
        module::check(path, version).map_err(|e| ParseError::BadRequest(e.to_string()))?;
        if module::canonical_version(version) != version {
            return Err(ParseError::BadRequest(format!(
                "{path}@{version}: version is not canonical"
            )));
        }
        Ok(ModVersion {
            path: path.to_string(),
            version: version.to_string(),
        })
    }

    /// [`ModVersion::new`] for a request path: the module path was checked
    /// as a [`ModPath`] and `parse` found the version canonical, so only
    /// what is left is checked (the version against the path's major suffix).
    fn for_request(path: ModPath, version: String) -> Result<ModVersion, ParseError> {
        module::check_version_for_path(path.as_str(), &version)
            .map_err(|e| ParseError::BadRequest(e.to_string()))?;
        Ok(ModVersion {
            path: path.0,
            version,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// `!`-escaped path, as used in proxy URLs and storage keys.
    pub fn escaped_path(&self) -> String {
        // Validated in `new`, so escaping cannot fail; fall back to the raw
        // path only to keep this infallible.
        module::escape_path(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    /// `!`-escaped version.
    pub fn escaped_version(&self) -> String {
        module::escape_version(&self.version).unwrap_or_else(|_| self.version.clone())
    }

    /// The upstream path of one artifact: `<esc path>/@v/<esc version>.<ext>`.
    pub fn artifact_path(&self, kind: Kind) -> String {
        format!(
            "{}/@v/{}.{}",
            self.escaped_path(),
            self.escaped_version(),
            kind.ext()
        )
    }
}

impl fmt::Display for ModVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.path, self.version)
    }
}

/// A checked module path (for `list` and `@latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModPath(String);

impl ModPath {
    pub fn new(path: &str) -> Result<ModPath, ParseError> {
        module::check_path(path).map_err(|e| ParseError::BadRequest(e.to_string()))?;
        Ok(ModPath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn escaped(&self) -> String {
        module::escape_path(&self.0).unwrap_or_else(|_| self.0.clone())
    }
}

impl fmt::Display for ModPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request to the checksum database through the proxy (`/sumdb/<name>/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumdbRequest {
    Supported,
    Latest,
    Lookup(ModVersion),
    /// A tile path as the database serves it, e.g. `tile/8/0/x001/234.p/5`
    /// (syntax checked here; the tile itself by [`crate::sumdb::tlog`]).
    Tile(String),
}

/// A parsed proxy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `<module>/@v/list`
    List(ModPath),
    /// `<module>/@latest`
    Latest(ModPath),
    /// `<module>/@v/<version>.{info,mod,zip}` with a canonical version.
    Artifact(ModVersion, Kind),
    /// `<module>/@v/<query>.info` with a non-canonical version (a branch,
    /// a tag not in canonical form): resolved upstream, never cached as canonical.
    InfoQuery(ModPath, String),
    /// `/sumdb/<name>/...`
    Sumdb { name: String, req: SumdbRequest },
}

/// Why a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
}

/// Longest request path accepted; real module paths are far shorter.
pub const MAX_PATH_LEN: usize = 2048;

/// Parses the raw (percent-encoded) path of a request URL.
pub fn parse(raw_path: &str) -> Result<Request, ParseError> {
    let bad = |m: &str| ParseError::BadRequest(m.to_string());
    if raw_path.len() > MAX_PATH_LEN {
        return Err(bad("request path too long"));
    }
    let path = percent_decode(raw_path)?;
    let path = path
        .strip_prefix('/')
        .ok_or_else(|| bad("path must start with /"))?;
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("control character or backslash in path"));
    }

    if let Some(rest) = path.strip_prefix("sumdb/") {
        return parse_sumdb(rest);
    }
    if let Some((esc_mod, rest)) = path.split_once("/@v/") {
        let module = decode_path(esc_mod)?;
        if rest == "list" {
            return Ok(Request::List(module));
        }
        let (esc_ver, ext) = rest
            .rsplit_once('.')
            .ok_or_else(|| ParseError::NotFound(format!("unknown file {rest:?}")))?;
        let kind = Kind::parse(ext)
            .ok_or_else(|| ParseError::NotFound(format!("unknown file type .{ext}")))?;
        if esc_ver.contains('/') {
            return Err(bad("version must not contain /"));
        }
        let version =
            module::unescape_version(esc_ver).map_err(|e| ParseError::BadRequest(e.to_string()))?;
        if module::canonical_version(&version) != version {
            // Only `.info` may name a query; `.mod`/`.zip` need the exact version.
            return match kind {
                Kind::Info => Ok(Request::InfoQuery(module, version)),
                _ => Err(bad(&format!(
                    "version {version:?} is not canonical; use the version from {}/@v/{esc_ver}.info",
                    module.escaped()
                ))),
            };
        }
        let mv = ModVersion::for_request(module, version)?;
        return Ok(Request::Artifact(mv, kind));
    }
    if let Some(esc_mod) = path.strip_suffix("/@latest") {
        return Ok(Request::Latest(decode_path(esc_mod)?));
    }
    Err(ParseError::NotFound(
        "not a module proxy path (want /<module>/@v/..., /<module>/@latest or /sumdb/...)".into(),
    ))
}

fn decode_path(escaped: &str) -> Result<ModPath, ParseError> {
    // `unescape_path` checks the decoded path as a module path, as `ModPath::new` would.
    let path = module::unescape_path(escaped).map_err(|e| ParseError::BadRequest(e.to_string()))?;
    Ok(ModPath(path))
}

fn parse_sumdb(rest: &str) -> Result<Request, ParseError> {
    let (name, sub) = rest
        .split_once('/')
        .ok_or_else(|| ParseError::NotFound("missing checksum database request".into()))?;
    let req = match sub {
        "supported" => SumdbRequest::Supported,
        "latest" => SumdbRequest::Latest,
        _ if sub.starts_with("lookup/") => {
            let target = &sub["lookup/".len()..];
            let (p, v) = target
                .rsplit_once('@')
                .ok_or_else(|| ParseError::BadRequest("lookup wants module@version".into()))?;
            let path =
                module::unescape_path(p).map_err(|e| ParseError::BadRequest(e.to_string()))?;
            let version =
                module::unescape_version(v).map_err(|e| ParseError::BadRequest(e.to_string()))?;
            SumdbRequest::Lookup(ModVersion::new(&path, &version)?)
        }
        _ if sub.starts_with("tile/") => {
            if !sub
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'.')
                || sub.contains("..")
                || sub.contains("//")
            {
                return Err(ParseError::BadRequest("malformed tile path".into()));
            }
            SumdbRequest::Tile(sub.to_string())
        }
        _ => {
            return Err(ParseError::NotFound(format!(
                "unknown checksum database request {sub:?}"
            )));
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(ParseError::NotFound(
            "malformed checksum database name".into(),
        ));
    }
    Ok(Request::Sumdb {
        name: name.to_string(),
        req,
    })
}

/// Strict percent-decoding: `%XX` with two hex digits; result must be UTF-8.
/// `+` stays `+` (it is literal in module versions, never a space).
fn percent_decode(s: &str) -> Result<String, ParseError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ParseError::BadRequest("malformed %-escape in path".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParseError::BadRequest("path is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Request {
        parse(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn artifacts_and_escapes() {
        match ok("/github.com/!burnt!sushi/toml/@v/v0.3.1.zip") {
            Request::Artifact(mv, Kind::Zip) => {
                assert_eq!(mv.path(), "github.com/BurntSushi/toml");
                assert_eq!(mv.version(), "v0.3.1");
                assert_eq!(
                    mv.artifact_path(Kind::Zip),
                    "github.com/!burnt!sushi/toml/@v/v0.3.1.zip"
                );
            }
            r => panic!("{r:?}"),
        }
        // The go command sends `!` as %21 in proxy URLs; `+` is literal.
        match ok("/github.com/%21burnt%21sushi/toml/@v/v0.3.1.mod") {
            Request::Artifact(mv, Kind::Mod) => assert_eq!(mv.path(), "github.com/BurntSushi/toml"),
            r => panic!("{r:?}"),
        }
        match ok("/github.com/uudashr/gopkgs/@v/v2.0.1+incompatible.info") {
            Request::Artifact(mv, Kind::Info) => assert_eq!(mv.version(), "v2.0.1+incompatible"),
            r => panic!("{r:?}"),
        }
        assert_eq!(
            ok("/golang.org/x/text/@v/list"),
            Request::List(ModPath::new("golang.org/x/text").unwrap())
        );
        assert_eq!(
            ok("/golang.org/x/text/@latest"),
            Request::Latest(ModPath::new("golang.org/x/text").unwrap())
        );
        assert!(
            matches!(ok("/golang.org/x/text/@v/master.info"), Request::InfoQuery(_, q) if q == "master")
        );
    }

    #[test]
    fn sumdb_paths() {
        assert!(matches!(
            ok("/sumdb/sum.golang.org/supported"),
            Request::Sumdb {
                req: SumdbRequest::Supported,
                ..
            }
        ));
        assert!(matches!(
            ok("/sumdb/sum.golang.org/latest"),
            Request::Sumdb {
                req: SumdbRequest::Latest,
                ..
            }
        ));
        assert!(matches!(
            ok("/sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v0.3.1"),
            Request::Sumdb {
                req: SumdbRequest::Lookup(_),
                ..
            }
        ));
        assert!(matches!(
            ok("/sumdb/sum.golang.org/tile/8/0/x002/891.p/158"),
            Request::Sumdb {
                req: SumdbRequest::Tile(_),
                ..
            }
        ));
        assert!(parse("/sumdb/sum.golang.org/tile/../../etc").is_err());
    }

    #[test]
    fn hostile_paths() {
        for p in [
            "/github.com/x/y/@v/../../../etc/passwd.zip",
            "/github.com/%2e%2e/y/@v/v1.0.0.zip",
            "/github.com//y/@v/v1.0.0.zip",
            "/github.com/x\\y/@v/v1.0.0.zip",
            "/github.com/X/y/@v/v1.0.0.zip",
            "/github.com/x/y/@v/v1.0.0%ff.zip",
            "/github.com/x/y/@v/v1.0.0%2.zip",
            "/github.com/x/y%00/@v/v1.0.0.zip",
            "/github.com/x/y/@v/master.zip",
            "/github.com/x/y/@v/v1.0.0.exe",
            "/",
            "",
        ] {
            assert!(parse(p).is_err(), "{p} accepted");
        }
        assert!(parse(&format!("/{}/@v/list", "a".repeat(5000))).is_err());
    }
}
