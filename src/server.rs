//! Wiring: build the state from a config, and run the HTTP server until shutdown.
//!
//! `run` takes its listener and a shutdown future as arguments (as tokio's
//! mini-redis does), so tests start a server on `127.0.0.1:0` and stop it at will.

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{AppState, app};
use crate::pipeline::Pipeline;
use crate::store::{EmbeddedStore, Store};
use crate::sumdb::client::Client;
use crate::trust::SumdbOps;
use crate::upstream::Upstream;

/// A start-up failure, said once by `main`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("opening the store in {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        source: crate::store::StoreError,
    },
    #[error("checksum database key: {0}")]
    Key(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Builds everything a server needs from its configuration.
pub fn build(cfg: Config) -> Result<AppState, StartError> {
    let cfg = Arc::new(cfg);
    let spec = cfg.sumdb_spec()?;
    let upstream = Upstream::new(&cfg)?;
    let store: Arc<dyn Store> =
        Arc::new(
            EmbeddedStore::open(&cfg.data_dir).map_err(|source| StartError::Store {
                path: cfg.data_dir.clone(),
                source,
            })?,
        );
    let ops = SumdbOps {
        name: spec.name.clone(),
        base_url: spec.url.clone(),
        upstream: upstream.clone(),
        store: store.clone(),
        evidence_dir: cfg.data_dir.join("evidence"),
        max_bytes: cfg.limits.max_meta_bytes,
        offline: cfg.offline,
    };
    let client =
        Client::new(Arc::new(ops), &spec.vkey).map_err(|e| StartError::Key(e.to_string()))?;
    let pipeline = Pipeline::new(store, upstream, Arc::new(client), cfg);
    Ok(AppState { pipeline })
}

/// Binds the configured address.
pub async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // TCP_NODELAY: hyper writes the head and the body of a small answer separately;
    // with Nagle on, the body then waits for the client's delayed ACK (~40 ms a hit,
    // see BENCHMARKS.md).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
