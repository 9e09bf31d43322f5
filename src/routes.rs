//! Who is asked for a module and who vouches for it: path pattern → upstream + authority.
//!
//! Two routes today. Public modules come from `upstream` and are proven against the
//! checksum database. Modules matching `private` (GOPRIVATE syntax and rules, see
//! [`crate::module::pattern`]) come from `private_upstream` and are pinned on first
//! sight ([`Authority::Pins`]).
//!
//! Invariant: a private module path never reaches the public upstream or the checksum
//! database. Every fetch, list, `@latest`, `.info` query and sumdb lookup asks
//! [`Routes::route`] first, and a private path only ever gets the private route (or a
//! 404 when none is configured); it never falls back to the public one.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::error::Error;
use crate::module::pattern::Pattern;
use crate::upstream::Upstream;

/// What proves a version's content before it is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// An inclusion proof in the checksum database's signed log (entries stored
    /// before this field existed were all proven this way).
    #[default]
    ChecksumDatabase,
    /// The hashes pinned the first time modgate fetched the version.
    Pins,
}

impl Authority {
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::ChecksumDatabase => "checksum_database",
            Authority::Pins => "pins",
        }
    }
}

/// Where one module is fetched from and who vouches for it.
pub struct Route<'a> {
    pub upstream: &'a Upstream,
    pub authority: Authority,
}

/// The configured routes.
pub struct Routes {
    public: Upstream,
    /// `private`'s patterns, each checked once at start.
    private: Vec<Pattern>,
    /// `private_upstream`; none: private modules are not served.
    private_upstream: Option<Upstream>,
}

/// Parses GOPRIVATE syntax: comma-separated patterns, empty entries skipped (as Go
/// does). A bad pattern is an error here, where Go would silently match nothing:
/// a private pattern that matches nothing would send private paths to the public
/// upstream.
pub fn parse_patterns(spec: &str) -> Result<Vec<Pattern>, ConfigError> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.trim_matches('/').is_empty())
        .map(|p| Pattern::new(p).map_err(|e| ConfigError::Private(spec.into(), e.to_string())))
        .collect()
}

impl Routes {
    /// The routes of `cfg`. `public` is the server's upstream; the private one is
    /// built from it, so both share its HTTP client and the server's metrics.
    pub fn new(cfg: &Config, public: Upstream) -> Result<Routes, ConfigError> {
        let private = parse_patterns(&cfg.private)?;
        let spec = cfg.private_upstream.trim();
        let private_upstream = match spec {
            "" => None,
            _ if private.is_empty() => {
                return Err(ConfigError::Private(
                    cfg.private.clone(),
                    "private_upstream is set but no private patterns are".into(),
                ));
            }
            s => {
                let direct = crate::direct::Direct::new(&cfg.data_dir, cfg.request_timeout());
                Some(public.for_list(s, Some(std::sync::Arc::new(direct)))?)
            }
        };
        Ok(Routes {
            public,
            private,
            private_upstream,
        })
    }

    /// Only the public route (tests and tools without a config).
    pub fn public_only(public: Upstream) -> Routes {
        Routes {
            public,
            private: Vec::new(),
            private_upstream: None,
        }
    }

    /// The public upstream (also the HTTP client of the checksum database).
    pub fn public(&self) -> &Upstream {
        &self.public
    }

    /// Whether `module` matches a `private` pattern (`module.MatchPrefixPatterns`).
    pub fn is_private(&self, module: &str) -> bool {
        // Most servers have no patterns: one branch on the hit path's callers.
        !self.private.is_empty() && self.private.iter().any(|p| p.matches(module))
    }

    /// Where `module` is fetched from. A private module without a private
    /// upstream is not found — the public upstream is never asked instead.
    pub fn route(&self, module: &str) -> Result<Route<'_>, Error> {
        if !self.is_private(module) {
            return Ok(Route {
                upstream: &self.public,
                authority: Authority::ChecksumDatabase,
            });
        }
        match &self.private_upstream {
            Some(u) => Ok(Route {
                upstream: u,
                authority: Authority::Pins,
            }),
            None => Err(Error::NotFound(format!(
                "{module} is a private module (it matches `private`) and no private_upstream \
                 is configured; modgate never asks the public upstream or the checksum \
                 database about private modules"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(private: &str, private_upstream: &str) -> Result<Routes, ConfigError> {
        let cfg = Config {
            upstream: "http://127.0.0.1:1".into(),
            private: private.into(),
            private_upstream: private_upstream.into(),
            ..Config::default()
        };
        Routes::new(&cfg, Upstream::new(&cfg)?)
    }

    #[test]
    fn private_paths_get_the_private_route_only() {
        let r = routes("git.corp.example,*.internal/team", "http://127.0.0.1:2").unwrap();
        for m in [
            "git.corp.example/lib",
            "git.corp.example",
            "x.internal/team/a/b",
        ] {
            assert!(r.is_private(m), "{m}");
            assert_eq!(r.route(m).unwrap().authority, Authority::Pins);
        }
        for m in [
            "github.com/a/b",
            "git.corp.example.com/lib",
            "x.internal/other",
        ] {
            assert!(!r.is_private(m), "{m}");
            assert_eq!(r.route(m).unwrap().authority, Authority::ChecksumDatabase);
        }
    }

    #[test]
    fn both_routes_count_into_the_servers_one_registry() {
        let r = routes("git.corp.example", "http://127.0.0.1:2,direct").unwrap();
        let private = r.private_upstream.as_ref().unwrap();
        assert!(std::sync::Arc::ptr_eq(
            r.public().metrics(),
            private.metrics()
        ));
    }

    #[test]
    fn private_without_upstream_is_not_found() {
        let r = routes("git.corp.example", "").unwrap();
        let e = r.route("git.corp.example/lib").err().unwrap();
        assert!(matches!(e, Error::NotFound(_)), "{e}");
        assert!(e.to_string().contains("no private_upstream"), "{e}");
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(routes("git.corp.example/[", "").is_err());
        assert!(routes("", "http://127.0.0.1:2").is_err());
        assert!(routes("a.example", "ftp://x").is_err());
        assert!(routes(",,", "").unwrap().private.is_empty());
    }
}
