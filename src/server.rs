//! Wiring: build the state from a config, and run the HTTP server until shutdown.
//!
//! `run` takes its listener and a shutdown future as arguments (as tokio's
//! mini-redis does), so tests start a server on `127.0.0.1:0` and stop it at will.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;

use crate::config::Config;
use crate::http::{AppState, ClientAddr, app};
use crate::pipeline::Pipeline;

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
    #[error("[store] location: {0}")]
    Location(String),
    #[error("store: {0}")]
    StoreCheck(crate::store::StoreError),
    #[error("[auth]: {0}")]
    Auth(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Policy(#[from] crate::gate::PolicyError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Builds everything a server needs from its configuration.
pub fn build(cfg: Config) -> Result<AppState, StartError> {
    let cfg = Arc::new(cfg);
    let spec = cfg.sumdb_spec()?;
    // The server's one metrics registry: every upstream (public and private
    // routes) and every part built below counts into it.
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let upstream = Upstream::with_metrics(&cfg, metrics.clone())?;
    let routes = crate::routes::Routes::new(&cfg, upstream.clone())?;
    let location = cfg.store.location().map_err(StartError::Location)?;
    let store = crate::store::open(
        &location,
        &cfg.data_dir,
        cfg.cache.memory_mib << 20,
        Duration::from_secs(cfg.store.timeout_secs.max(1)),
        Some(metrics.clone()),
    )
    .map_err(|source| StartError::Store {
        path: cfg.data_dir.clone(),
        source,
    })?;
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
    let audit = crate::audit::AuditLog::open(&cfg.data_dir, &cfg.audit, metrics.clone())?;
    let admin = Arc::new(crate::admin::api::Admin {
        data_dir: cfg.data_dir.clone(),
        store: store.clone(),
        audit: Some(audit.clone()),
        metrics,
        replica: crate::audit::shared::replica_name(&cfg.store.replica, &cfg.data_dir),
        everywhere: Default::default(),
        max_request_bytes: cfg.admin.max_request_bytes,
        max_response_bytes: cfg.admin.max_response_bytes,
        http_auth: match cfg.admin.bearer_sha256.is_empty() {
            true => None,
            false => Some(
                crate::http::auth::Auth::from_config(&crate::config::AuthConfig {
                    bearer_sha256: cfg.admin.bearer_sha256.clone(),
                    ..Default::default()
                })
                .map_err(|e| StartError::Auth(e.replace("auth.", "admin.")))?,
            ),
        },
        tree_seen: Default::default(),
        pipeline: Default::default(),
        policy: cfg.policy.clone(),
    });
    let client = Arc::new(client);
    // The cooldown dates records by the client's trusted-head history.
    let heads_of = client.clone();
    let gate = Arc::new(crate::gate::build(
        &cfg,
        Arc::new(move || heads_of.head_history()),
    )?);
    let pipeline = Pipeline::new_routed(store, routes, client, cfg, gate.clone());
    let _ = admin.pipeline.set(pipeline.clone());
    // Versions the gate refuses are evidence: the size cap never evicts them.
    pipeline
        .evictor()
        .set_is_held(Arc::new(move |m: &str, v: &str| gate.is_blocked(m, v)));
    Ok(AppState {
        pipeline,
        auth,
        audit: Some(audit),
        admin: Some(admin),
    })
}

/// Aborts a background task when dropped (when `run` returns).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

/// Largest request head (request line plus headers) read from a client;
/// a larger one is answered 431 by hyper. GOPROXY requests are tiny.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Most headers accepted in one request.
pub const MAX_REQUEST_HEADERS: usize = 64;
/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` completes, then finishes in-flight requests.
///
/// HTTPS when `[tls]` is configured, plain HTTP otherwise. A hyper-util
/// server rather than `axum::serve`, for the limits that one does not
/// expose: a client must send its headers within `timeouts.client_header_secs`
/// (slowloris), and a connection whose client accepts no byte of its
/// response for `timeouts.client_stall_secs` is dropped, so slow or stuck
/// clients cannot pin connections (and open blobs) forever while everyone
/// else is served.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // Restore the persisted trust state (and a recorded fork, which keeps
    // refusing) before the first request, so readiness reports it at once.
    // A failure here is retried lazily by the first verification.
    // A bucket that does not enforce conditional writes could let replicas
    // overwrite each other's trusted head: refuse to start on it.
    let store = state.pipeline.store().clone();
    store
        .startup_check()
        .await
        .map_err(StartError::StoreCheck)?;
    let sumdb = state.pipeline.sumdb();
    // Replicas share the trust state: re-read it every `poll_secs`, so a
    // fork one of them proves stops this one within seconds; removals made
    // through another replica or the CLI (`cache rm`) are applied to this
    // one's local tier in the same round.
    let _trust_poll = store.is_shared().then(|| {
        let (client, every) = (sumdb.clone(), state.pipeline.config().store.poll_secs.max(1));
        let poll_store = store.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(every));
            loop {
                tick.tick().await;
                if let Err(e) = client.resync().await {
                    tracing::warn!(sumdb = client.name(), error = %e, "re-reading the shared trust state");
                }
                match poll_store.sync_removals().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "applied removals made through another replica or the CLI"),
                    Err(e) => tracing::warn!(error = %e, "reading removals from the shared store"),
                }
            }
        }))
    });
    if let Err(e) = sumdb.load().await {
        tracing::error!(sumdb = sumdb.name(), error = %e, "loading checksum database trust state");
    }
    count_store(&state).await;
    // The gate's advisories are read before the first request (a known
    // malicious version must not slip through a start-up window); then its
    // reload task watches the policy file, SIGHUP and the refresh interval.
    let replica = crate::audit::shared::replica_name(
        &state.pipeline.config().store.replica,
        &state.pipeline.config().data_dir,
    );
    let fetchers = state.audit.as_ref().map(|a| {
        let trail = a.trail().clone();
        if store.is_shared() {
            // Who fetched a newly refused version, on any replica.
            let everywhere = Arc::new(crate::audit::shared::Everywhere::new(
                store.clone(),
                state.pipeline.config().data_dir.clone(),
                replica.clone(),
                trail,
                Duration::from_secs(state.pipeline.config().audit.publish_secs.max(1)),
            ));
            if let Some(admin) = &state.admin {
                let _ = admin.everywhere.set(everywhere.clone());
            }
            let f: Arc<crate::gate::recheck::Fetchers> = Arc::new(move |m: &str, v: &str| {
                let (everywhere, m, v) = (everywhere.clone(), m.to_string(), v.to_string());
                Box::pin(async move { everywhere.fetchers(&m, &v).await })
            });
            return f;
        }
        let f: Arc<crate::gate::recheck::Fetchers> = Arc::new(move |m: &str, v: &str| {
            let (trail, m, v) = (trail.clone(), m.to_string(), v.to_string());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || crate::audit::fetchers(&trail, &m, &v))
                    .await
                    .unwrap_or_default()
            })
        });
        f
    });
    let gate_task = crate::gate::reload::start(&state.pipeline, fetchers).await;
    // Dates new checksum-database records (stopped when dropped, at return).
    let _head_watcher = crate::trust_watch::start(sumdb.clone(), state.pipeline.config());
    let sumdb = sumdb.clone();
    let (audit, admin_socket) = start_admin(&state).await;
    // Replicas publish their audit trails to the bucket, for `audit who`
    // across all of them (see `audit::shared`).
    let state_data_dir = state.pipeline.config().data_dir.clone();
    let _audit_publisher = (store.is_shared() && audit.is_some()).then(|| {
        let data_dir = state.pipeline.config().data_dir.clone();
        let every = Duration::from_secs(state.pipeline.config().audit.publish_secs.max(1));
        AbortOnDrop(crate::audit::shared::start(
            store.clone(),
            data_dir,
            replica.clone(),
            every,
        ))
    });
    let cfg = state.pipeline.config();
    // `[origin] check_every`: tag rewrites looked for inside the server.
    let origin_task = match &state.admin {
        Some(a) => crate::admin::origin::start(a.clone(), &cfg.origin)?,
        None => None,
    };
    let tls = match cfg.tls.enabled() {
        true => Some(tokio_rustls::TlsAcceptor::from(tls_config(&cfg.tls)?)),
        false => None,
    };
    let (stall, header_timeout) = (cfg.client_stall_timeout(), cfg.client_header_timeout());
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .max_headers(MAX_REQUEST_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD as u32);
    let metrics = state.pipeline.metrics().clone();
    let connections = Arc::new(tokio::sync::Semaphore::new(
        cfg.limits.max_connections.max(1),
    ));
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // One permit per open connection: at the limit, new connections wait
        // in the listen backlog (not accepted, so they cost no descriptor).
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                metrics.limit_hit("connections");
                tokio::select! {
                    p = connections.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let mut io = TimeoutStream::new(tcp);
        io.set_write_timeout(Some(stall));
        let io = Box::pin(io);
        // Each request carries its connection's peer address (for the access log).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req
            },
        ));
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let result = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    // The handshake gets the same budget as a request head.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(io)).await
                    else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    gate_task.abort();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown: in-flight requests still running after {DRAIN_TIMEOUT:?}; stopping"
        );
    }
    sumdb.flush_head_history().await;
    if let Some(t) = origin_task {
        t.abort();
    }
    if let Some((task, path)) = admin_socket {
        task.abort();
        let _ = std::fs::remove_file(path);
    }
    if let Some(a) = audit {
        a.stop().await;
        // The last records go up too (the trail itself is on disk already).
        if store.is_shared() {
            let data_dir = &state_data_dir;
            let mut sent = Default::default();
            if let Err(e) =
                crate::audit::shared::publish(&*store, data_dir, &replica, &mut sent).await
            {
                tracing::warn!(error = %e, "publishing the audit trail at shutdown");
            }
        }
    }
    Ok(())
}

/// Starts the audit trail's writer and the admin socket. A socket that
/// cannot be bound is logged, not fatal: serving matters more, and the
/// admin API is still reachable over HTTP when configured.
async fn start_admin(
    state: &AppState,
) -> (
    Option<Arc<crate::audit::AuditLog>>,
    Option<(tokio::task::JoinHandle<()>, std::path::PathBuf)>,
) {
    if let Some(a) = &state.audit {
        a.spawn();
    }
    if let Some(a) = &state.admin {
        a.tree_seen(state.pipeline.sumdb().latest().n);
    }
    let socket = match &state.admin {
        Some(admin) => match crate::admin::socket::bind(&admin.data_dir).await {
            Ok(l) => Some((
                tokio::spawn(crate::admin::socket::serve(l, admin.clone())),
                crate::admin::socket::path(&admin.data_dir),
            )),
            Err(e) => {
                tracing::error!(error = %e, "admin socket not available");
                None
            }
        },
        None => None,
    };
    (state.audit.clone(), socket)
}

/// Sets the store gauges from the store's totals (two numbers the store keeps
/// with its index), before the first request; commits and removals keep them
/// current from then on.
async fn count_store(state: &AppState) {
    let pipeline = &state.pipeline;
    match pipeline.store().totals().await {
        Ok((objects, bytes)) => pipeline.metrics().stored(objects as i64, bytes as i64),
        Err(e) => tracing::warn!(error = %e, "counting the store for metrics"),
    }
}

/// Loads the certificate chain and key into a rustls config using the ring
/// provider (the one reqwest uses here, so only one crypto library is linked).
fn tls_config(tls: &crate::config::TlsConfig) -> Result<Arc<rustls::ServerConfig>, StartError> {
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
    Ok(Arc::new(config))
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
