//! `modgate prefetch FILE…`: fetch and verify every module version listed in
//! go.sum or go.mod files through the normal pipeline — to warm a mirror, or
//! to fill a data dir that is then carried into an air-gapped network.
//!
//! Nothing is special-cased: each artifact goes through `Pipeline::artifact`,
//! so it is proven against the checksum database exactly as a client's miss
//! would be. A go.sum line's hash is also compared with what was proven.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::cache::AdminError;
use crate::pipeline::{Cache, Pipeline};
use crate::protocol::{Kind, ModVersion};

/// What to fetch for one module version, and the hashes the files claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The zip (and .info) too, not only the go.mod.
    pub full: bool,
    /// `h1:` a go.sum gives for the zip.
    pub zip_h1: Option<String>,
    /// `h1:` a go.sum gives for the go.mod.
    pub mod_h1: Option<String>,
    /// Where it was listed, for messages.
    pub from: String,
}

/// Module versions to prefetch, keyed by `(path, version)`.
pub type WantList = BTreeMap<(String, String), Wanted>;

/// Adds the lines of a go.sum: `path version[/go.mod] h1:hash`.
pub fn parse_go_sum(text: &str, from: &str, into: &mut WantList) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let [path, version, hash] = f[..] else {
            return Err(format!("{from}:{}: expected `path version hash`", n + 1));
        };
        let (version, is_mod) = match version.strip_suffix("/go.mod") {
            Some(v) => (v, true),
            None => (version, false),
        };
        let w = into
            .entry((path.to_string(), version.to_string()))
            .or_default();
        w.from = format!("{from}:{}", n + 1);
        if is_mod {
            w.mod_h1 = Some(hash.to_string());
        } else {
            w.full = true;
            w.zip_h1 = Some(hash.to_string());
        }
    }
    Ok(())
}

/// Strips a `//` comment (module paths and versions never contain `//`).
fn uncomment(line: &str) -> &str {
    line.split("//").next().unwrap_or("").trim()
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '`').to_string()
}

/// Adds the `require` directives of a go.mod, single-line and block form.
pub fn parse_go_mod(text: &str, from: &str, into: &mut WantList) -> Result<(), String> {
    let mut block: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = uncomment(raw);
        if line.is_empty() {
            continue;
        }
        let (verb, args): (String, &str) = match &block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some(b) => (b.clone(), line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(verb.to_string());
                    continue;
                }
                (verb.to_string(), rest)
            }
        };
        if verb != "require" {
            continue;
        }
        let f: Vec<&str> = args.split_whitespace().collect();
        let [path, version] = f[..] else {
            return Err(format!("{from}:{}: expected `require path version`", n + 1));
        };
        let w = into.entry((unquote(path), unquote(version))).or_default();
        w.full = true;
        w.from = format!("{from}:{}", n + 1);
    }
    Ok(())
}

/// Reads the files: `*.sum` as go.sum, anything else as go.mod.
pub fn read_files(files: &[PathBuf]) -> Result<WantList, AdminError> {
    want_of(&read_sources(files)?)
}

/// One file named on the command line, read by the CLI: a running server is
/// sent the text (it never opens an operator's paths).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads each file whole.
pub fn read_sources(files: &[PathBuf]) -> Result<Vec<Source>, AdminError> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f)
                .map_err(|e| AdminError::Usage(format!("reading {}: {e}", f.display())))?;
            Ok(Source {
                name: f.display().to_string(),
                text,
            })
        })
        .collect()
}

/// The versions the sources name: `*.sum` as go.sum, anything else as go.mod.
pub fn want_of(sources: &[Source]) -> Result<WantList, AdminError> {
    let mut want = WantList::new();
    for s in sources {
        if s.name.ends_with(".sum") {
            parse_go_sum(&s.text, &s.name, &mut want)
        } else {
            parse_go_mod(&s.text, &s.name, &mut want)
        }
        .map_err(AdminError::Usage)?;
    }
    Ok(want)
}

/// The outcome of a prefetch.
#[derive(Debug, Default)]
pub struct Summary {
    pub versions: usize,
    /// Artifacts fetched and verified now.
    pub fetched: usize,
    /// Artifacts that were already in the store.
    pub cached: usize,
    /// `module@version: why` for each version that failed.
    pub failed: Vec<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prefetched {} module versions: {} artifacts fetched and verified, {} already cached, {} failed",
            self.versions - self.failed.len(),
            self.fetched,
            self.cached,
            self.failed.len()
        )?;
        for x in &self.failed {
            write!(f, "\n  FAILED {x}")?;
        }
        Ok(())
    }
}

/// Fetches and verifies one module version; counts (fetched, cached).
async fn one(
    p: &Arc<Pipeline>,
    path: &str,
    version: &str,
    w: &Wanted,
) -> Result<(usize, usize), String> {
    let mv = ModVersion::new(path, version).map_err(|e| e.to_string())?;
    let kinds: &[Kind] = if w.full {
        &[Kind::Mod, Kind::Zip, Kind::Info]
    } else {
        &[Kind::Mod]
    };
    let (mut fetched, mut cached) = (0, 0);
    for &kind in kinds {
        let (entry, cache) = p.artifact(&mv, kind).await.map_err(|e| e.to_string())?;
        if cache == Cache::Hit {
            cached += 1;
        } else {
            fetched += 1;
        }
        let claimed = match kind {
            Kind::Mod => &w.mod_h1,
            Kind::Zip => &w.zip_h1,
            Kind::Info => &None,
        };
        if let Some(h) = claimed
            && *h != entry.verification.h1
        {
            return Err(format!(
                "{} ({}) says {} {h}, but {} proved {}",
                w.from,
                kind.ext(),
                mv,
                entry.verification.sumdb,
                entry.verification.h1
            ));
        }
    }
    Ok((fetched, cached))
}

/// Prefetches everything in `want` with `jobs` module versions at a time,
/// showing a progress bar when stderr is a terminal.
pub async fn run(p: Arc<Pipeline>, want: WantList, jobs: usize) -> Summary {
    let bar = ProgressBar::with_draw_target(
        Some(want.len() as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    let mut summary = Summary {
        versions: want.len(),
        ..Summary::default()
    };
    let mut results = futures_util::stream::iter(want.into_iter().map(|((path, version), w)| {
        let p = p.clone();
        let bar = bar.clone();
        async move {
            bar.set_message(format!("{path}@{version}"));
            let r = one(&p, &path, &version, &w).await;
            bar.inc(1);
            (format!("{path}@{version}"), r)
        }
    }))
    .buffer_unordered(jobs.max(1));
    while let Some((mv, r)) = results.next().await {
        match r {
            Ok((f, c)) => {
                summary.fetched += f;
                summary.cached += c;
            }
            Err(e) => {
                bar.println(format!("FAILED {mv}: {e}"));
                summary.failed.push(format!("{mv}: {e}"));
            }
        }
    }
    bar.finish_and_clear();
    summary.failed.sort();
    summary
}

/// Whether a start-up error is the store being held by `modgate serve`.
pub fn locked_error(e: &crate::server::StartError, data_dir: &Path) -> Option<AdminError> {
    match e {
        crate::server::StartError::Store { .. } if super::cache::is_locked(data_dir) => {
            Some(AdminError::Locked(data_dir.to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sum_lines() {
        let mut w = WantList::new();
        parse_go_sum(
            "a.com/x v1.0.0 h1:zip=\na.com/x v1.0.0/go.mod h1:mod=\n\nb.com/y v0.1.0/go.mod h1:m2=\n",
            "go.sum",
            &mut w,
        )
        .unwrap();
        let x = &w[&("a.com/x".into(), "v1.0.0".into())];
        assert!(x.full);
        assert_eq!(x.zip_h1.as_deref(), Some("h1:zip="));
        assert_eq!(x.mod_h1.as_deref(), Some("h1:mod="));
        let y = &w[&("b.com/y".into(), "v0.1.0".into())];
        assert!(!y.full);
        assert!(parse_go_sum("a.com/x v1.0.0\n", "f", &mut w).is_err());
    }

    #[test]
    fn go_mod_requires() {
        let mut w = WantList::new();
        parse_go_mod(
            "module m\n\ngo 1.19\n\nrequire a.com/x v1.0.0 // indirect\nrequire (\n\tb.com/y v0.1.0\n\t\"c.com/z\" v2.0.0+incompatible // c\n)\nreplace (\n\td.com/q v1.0.0 => ../q\n)\nexclude e.com/r v1.0.0\n",
            "go.mod",
            &mut w,
        )
        .unwrap();
        let keys: Vec<_> = w.keys().map(|(p, v)| format!("{p}@{v}")).collect();
        assert_eq!(
            keys,
            [
                "a.com/x@v1.0.0",
                "b.com/y@v0.1.0",
                "c.com/z@v2.0.0+incompatible"
            ]
        );
        assert!(w.values().all(|x| x.full));
    }
}
