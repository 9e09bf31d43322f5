//! Wiring: build the state from a config, and run the HTTP server until shutdown.
//!
//! `run` takes its listener and a shutdown future as arguments (as tokio's
//! mini-redis does), so tests start a server on `127.0.0.1:0` and stop it at will.

use std::future::Future;
use std::sync::Arc;

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
    #[error("[auth]: {0}")]
    Auth(String),
    #[error("TLS: {0}")]
    Tls(String),
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
    let auth = Arc::new(crate::http::auth::Auth::from_config(&cfg.auth).map_err(StartError::Auth)?);
    let pipeline = Pipeline::new(store, upstream, Arc::new(client), cfg);
    Ok(AppState { pipeline, auth })
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
/// HTTPS when `[tls]` is configured, plain HTTP otherwise.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // Restore the persisted trust state (and a recorded fork, which keeps
    // refusing) before the first request, so readiness reports it at once.
    // A failure here is retried lazily by the first verification.
    let sumdb = state.pipeline.sumdb();
    if let Err(e) = sumdb.load().await {
        tracing::error!(sumdb = sumdb.name(), error = %e, "loading checksum database trust state");
    }
    count_store(&state).await;
    let tls = state.pipeline.config().tls.clone();
    if !tls.enabled() {
        return axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartError::Serve);
    }
    let rustls = tls_config(&tls)?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(None);
    });
    let listener = listener.into_std().map_err(StartError::Serve)?;
    axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
        .map_err(StartError::Serve)?
        .handle(handle)
        .serve(app(state).into_make_service())
        .await
        .map_err(StartError::Serve)
}

/// Sets the store gauges once from the index; commits keep them current, so
/// a scrape never walks the store.
async fn count_store(state: &AppState) {
    match state.pipeline.store().entries("").await {
        Ok(entries) => {
            let m = state.pipeline.metrics();
            m.store_objects.set(entries.len() as i64);
            m.store_bytes
                .set(entries.iter().map(|e| e.size as i64).sum::<i64>());
        }
        Err(e) => tracing::warn!(error = %e, "counting the store for metrics"),
    }
}

/// Loads the certificate chain and key into a rustls config using the ring
/// provider (the one reqwest uses here, so only one crypto library is linked).
fn tls_config(
    tls: &crate::config::TlsConfig,
) -> Result<axum_server::tls_rustls::RustlsConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
        return Err(StartError::Tls(
            "both tls.cert_file and tls.key_file must be set".into(),
        ));
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            StartError::Tls(format!("reading certificates from {}: {e}", cert.display()))
        })?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        StartError::Tls(format!(
            "reading the private key from {}: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
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
