//! Starting modgate in-process on 127.0.0.1:0 for integration tests, and a small HTTP client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modgate::config::Config;

/// A running modgate server with its own runtime; stopped on drop.
pub struct Modgate {
    pub url: String,
    pub data_dir: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A config for tests: the given upstream and sumdb, data in `data_dir`, short timeouts.
pub fn test_config(data_dir: &Path, upstream: &str, sumdb: &str) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_path_buf(),
        upstream: upstream.to_string(),
        sumdb: sumdb.to_string(),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    c.timeouts.connect_secs = 5;
    c.timeouts.request_secs = 20;
    c.timeouts.read_secs = 10;
    c
}

impl Modgate {
    pub fn start(cfg: Config) -> Modgate {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("MODGATE_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let data_dir = cfg.data_dir.clone();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = modgate::server::build(cfg).expect("modgate starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(async move {
            let _ = modgate::server::run(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        Modgate {
            url,
            data_dir,
            rt: Some(rt),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A server in front of a reference upstream (proxy and checksum database).
    pub fn against(up: &super::refupstream::RefUpstream, data: &Path) -> Modgate {
        Modgate::start(test_config(data, &up.url, &up.gosumdb()))
    }

    /// Stops the server and releases the data dir (so it can be reopened).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(task)) = (self.rt.as_ref(), self.task.take()) {
            let _ =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// GET a path; returns status, content-type and body.
    pub fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        http_get(&format!("{}{}", self.url, path))
    }
}

impl Drop for Modgate {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocking GET with a fresh tiny runtime (reqwest is already a dependency).
pub fn http_get(url: &str) -> (u16, String, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, ct, body)
    })
}

/// A blocking GET from a chosen local address (e.g. 127.0.0.2, so one test
/// host acts as several clients), with extra headers; returns status and body.
pub fn http_get_from(
    url: &str,
    local: std::net::IpAddr,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .local_address(local)
            .build()
            .expect("client");
        let mut req = client.get(url).timeout(Duration::from_secs(60));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} from {local}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, body)
    })
}
