//! Shared test support: an in-memory `ClientOps` serving a sumdb directory
//! (as written by a sumdb server mirror or the Go oracle), with overrides
//! for forged responses.
#![allow(dead_code)]

use async_trait::async_trait;
use modgate::sumdb::client::{ClientError, ClientOps, ForkEvidence};
use modgate::sumdb::tlog::{HASH_SIZE, parse_tile_path};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct DirOps {
    pub root: PathBuf,
    pub overrides: Mutex<HashMap<String, Vec<u8>>>,
    pub config: Mutex<HashMap<String, Vec<u8>>>,
    pub cache: Mutex<HashMap<String, Vec<u8>>>,
    pub security: Mutex<Vec<ForkEvidence>>,
    pub remote_reads: Mutex<Vec<String>>,
}

impl DirOps {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirOps {
            root: root.into(),
            overrides: Mutex::new(HashMap::new()),
            config: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            security: Mutex::new(Vec::new()),
            remote_reads: Mutex::new(Vec::new()),
        }
    }

    pub fn set(&self, path: &str, data: Vec<u8>) {
        self.overrides
            .lock()
            .unwrap()
            .insert(path.to_string(), data);
    }

    /// The file at `path` as served: override, else the file on disk.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(d) = self.overrides.lock().unwrap().get(path) {
            return Some(d.clone());
        }
        std::fs::read(self.root.join(path)).ok()
    }

    /// Serves `path`; a partial tile not on disk is cut from a wider one, as
    /// a live server computes any width up to its current size.
    pub fn serve(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(d) = self.get(path) {
            return Some(d);
        }
        let t = parse_tile_path(path).ok()?;
        if t.is_full() {
            return None;
        }
        let want = t.w as usize * HASH_SIZE;
        (t.w + 1..=t.full_width()).find_map(|w| {
            let wide = modgate::sumdb::tlog::Tile { w, ..t };
            self.get(&wide.path())
                .filter(|d| d.len() >= want)
                .map(|d| d[..want].to_vec())
        })
    }
}

#[async_trait]
impl ClientOps for DirOps {
    async fn read_remote(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.remote_reads.lock().unwrap().push(path.to_string());
        self.serve(path)
            .ok_or_else(|| ClientError::NotFound(path.to_string()))
    }
    async fn read_config(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.config.lock().unwrap().get(file).cloned())
    }
    async fn write_config(
        &self,
        file: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError> {
        let mut c = self.config.lock().unwrap();
        if c.get(file).map(Vec::as_slice) != old {
            return Err(ClientError::CasConflict);
        }
        c.insert(file.to_string(), new.to_vec());
        Ok(())
    }
    async fn read_cache(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.cache.lock().unwrap().get(file).cloned())
    }
    async fn write_cache(&self, file: &str, data: &[u8]) -> Result<(), ClientError> {
        self.cache
            .lock()
            .unwrap()
            .insert(file.to_string(), data.to_vec());
        Ok(())
    }
    async fn delete_cache(&self, file: &str) -> Result<(), ClientError> {
        self.cache.lock().unwrap().remove(file);
        Ok(())
    }
    async fn security_error(&self, evidence: &ForkEvidence) {
        self.security.lock().unwrap().push(evidence.clone());
    }
}

/// Runs a future to completion on a current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every file under `dir/sub`, as paths relative to `dir`.
pub fn files_under(dir: &std::path::Path, sub: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join(sub)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
