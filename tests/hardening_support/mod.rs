//! Helpers shared by the `hardening_*` tests: a captured log, a modgate on a
//! fresh data dir, raw requests, and a look into a stopped server's store.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use modgate::config::Config;
use modgate::protocol::{Kind, ModVersion};
use modgate::store::{EmbeddedStore, Store};

use crate::common::modgate::{Modgate, test_config};
use crate::common::refupstream::{HttpResponse, RefUpstream, http_request, query_escape};

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        // The harness cannot capture a global writer: echo only on request.
        if std::env::var_os("HARDENING_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a global subscriber that keeps every log line (before any
/// `Modgate::start`, whose own `try_init` then does nothing). Set
/// `HARDENING_LOG=1` to also see them on stderr.
pub fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Every captured log line mentioning `needle`.
pub fn log_lines(needle: &str) -> Vec<String> {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Asserts some log line names `module` and `version` (as fields) and `what`.
pub fn assert_logged(module: &str, version: &str, what: &str) {
    let lines = log_lines(&format!("module={module}"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("version={version}")) && l.contains(what)),
        "no log line names {module} {version} with {what:?}; lines for the module:\n{}",
        lines.join("\n")
    );
}

/// A modgate on a fresh data dir, with `tweak` applied to the test config.
pub fn fresh(up: &RefUpstream, tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Modgate) {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    tweak(&mut cfg);
    (data, Modgate::start(cfg))
}

/// A raw request, so nothing normalises the path.
pub fn raw(mg: &Modgate, method: &str, path: &str) -> HttpResponse {
    http_request(method, &format!("{}{path}", mg.url), &[], None)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Adds a runtime module of about `size` bytes to the reference upstream.
pub fn add_module(up: &RefUpstream, module: &str, version: &str, size: usize) {
    up.control(&format!(
        "add?module={}&version={}&size={size}",
        query_escape(module),
        query_escape(version)
    ));
}

/// Switches on a hostile behaviour (see tests/refupstream/README.md).
pub fn hostile(up: &RefUpstream, module: &str, version: &str, what: &str, extra: &str) {
    up.control(&format!(
        "hostile?module={}&version={}&what={what}{extra}",
        query_escape(module),
        query_escape(version)
    ));
}

/// The kinds stored for module@version in the store at `data` (server stopped).
pub fn stored(data: &Path, module: &str, version: &str) -> Vec<Kind> {
    let store = EmbeddedStore::open(data).expect("store opens after the server stopped");
    let mv = ModVersion::new(module, version).expect("valid");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    [Kind::Info, Kind::Mod, Kind::Zip]
        .into_iter()
        .filter(|&k| rt.block_on(store.entry(&mv, k)).expect("index").is_some())
        .collect()
}

/// Reads every stored artifact back through the store (which re-hashes
/// them): the store is intact. Returns how many were read.
pub fn verify_store(data: &Path) -> usize {
    let store = EmbeddedStore::open(data).expect("store opens");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let entries = store.entries("").await.expect("index readable");
        for e in &entries {
            let blob = store
                .open(e)
                .await
                .unwrap_or_else(|err| panic!("{}@{} {}: {err}", e.module, e.version, e.kind));
            let mut buf = Vec::new();
            blob.into_reader().read_to_end(&mut buf).await.unwrap();
            assert_eq!(buf.len() as u64, e.size);
        }
        entries.len()
    })
}

/// Files left in `data/tmp` (spools must never outlive their request).
pub fn tmp_files(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
