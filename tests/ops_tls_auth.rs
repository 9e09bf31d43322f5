//! HTTPS serving with a certificate made in the test, client authentication
//! (bearer and basic; 401 with a challenge; health exempt), the real `go`
//! command authenticating from `.netrc` over HTTPS, and credentials never
//! reaching the (JSON) logs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;
use modgate::config::Config;
use sha2::{Digest, Sha256};

const TOKEN: &str = "tok-3f1c9a7e-bearer";
const PASSWORD: &str = "pw-8d2b6c4a-basic";

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
    let cert_pem = ck.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, cert_pem.into_bytes())
}

fn with_auth(mut c: Config) -> Config {
    c.auth.bearer_sha256 = vec![sha_hex(TOKEN)];
    c.auth.basic_sha256.insert("ci".into(), sha_hex(PASSWORD));
    c
}

/// A small async client call on a throwaway runtime: status, headers, body, HTTP version.
fn request(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>, reqwest::Version), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = client.get(url).timeout(Duration::from_secs(30));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
        let (status, headers, version) = (
            resp.status().as_u16(),
            resp.headers().clone(),
            resp.version(),
        );
        let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok((status, headers, body, version))
    })
}

fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem).unwrap()])
        .build()
        .unwrap()
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

#[test]
fn serves_https_with_a_configured_certificate() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = self_signed(dir.path());
    let mut cfg = test_config(&dir.path().join("data"), &up.url, &up.gosumdb());
    cfg.tls.cert_file = Some(cert);
    cfg.tls.key_file = Some(key);
    let mg = Modgate::start(cfg);
    let https = mg.url.replace("http://", "https://");
    let client = client_trusting(&pem);

    let (status, _, body, version) = request(&client, &format!("{https}/healthz"), None).unwrap();
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
    // ALPN offers h2: reqwest negotiates HTTP/2.
    assert_eq!(version, reqwest::Version::HTTP_2);
    let (status, headers, zip, _) = request(
        &client,
        &format!("{https}/example.com/hello/@v/v1.1.0.zip"),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/zip");
    assert!(zip.starts_with(b"PK"));

    // A client that does not trust the certificate is refused by TLS itself;
    // plain HTTP on the TLS port gets no HTTP answer.
    let elsewhere = dir.path().join("other");
    std::fs::create_dir(&elsewhere).unwrap();
    let other = client_trusting(&self_signed(&elsewhere).2);
    assert!(request(&other, &format!("{https}/healthz"), None).is_err());
    assert!(
        request(
            &reqwest::Client::new(),
            &format!("{}/healthz", mg.url),
            None
        )
        .is_err()
    );
}

#[test]
fn tls_misconfiguration_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir.path().join("data"), "off", "sum.golang.org");
    cfg.tls.cert_file = Some(dir.path().join("missing.pem"));
    cfg.tls.key_file = Some(dir.path().join("missing-key.pem"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(async {
        let state = modgate::server::build(cfg).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        modgate::server::run(listener, state, std::future::pending())
            .await
            .unwrap_err()
    });
    assert!(
        err.to_string()
            .starts_with("TLS: reading certificates from"),
        "{err}"
    );

    // Only one of the two files: refused too.
    let mut cfg = test_config(&dir.path().join("data2"), "off", "sum.golang.org");
    cfg.tls.cert_file = Some(dir.path().join("cert.pem"));
    let err = rt.block_on(async {
        let state = modgate::server::build(cfg).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        modgate::server::run(listener, state, std::future::pending())
            .await
            .unwrap_err()
    });
    assert!(
        err.to_string()
            .contains("both tls.cert_file and tls.key_file"),
        "{err}"
    );

    // A bad digest in [auth] is refused at build time, naming the entry only.
    let mut cfg = test_config(&dir.path().join("data3"), "off", "sum.golang.org");
    cfg.auth.basic_sha256.insert("ci".into(), "hunter2".into());
    let err = modgate::server::build(cfg).err().expect("refused");
    assert!(err.to_string().contains("auth.basic_sha256.ci"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn auth_answers_401_without_credentials_and_exempts_health() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mg = Modgate::start(with_auth(test_config(dir.path(), &up.url, &up.gosumdb())));
    let c = reqwest::Client::new();
    let list = format!("{}/example.com/hello/@v/list", mg.url);

    let (status, headers, body, _) = request(&c, &list, None).unwrap();
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let challenges: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Basic realm=\"modgate\"")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );

    for (auth, want) in [
        (format!("Bearer {TOKEN}"), 200),
        ("Bearer not-the-token".to_string(), 401),
        (basic("ci", PASSWORD), 200),
        (basic("ci", "wrong"), 401),
        (basic("someone", PASSWORD), 401),
        ("Digest username=ci".to_string(), 401),
    ] {
        let (status, _, _, _) = request(&c, &list, Some(&auth)).unwrap();
        assert_eq!(status, want, "{}", auth.split(' ').next().unwrap());
    }
    // Artifacts and metrics are protected; health endpoints are not.
    let zip = format!("{}/example.com/hello/@v/v1.0.0.zip", mg.url);
    assert_eq!(request(&c, &zip, None).unwrap().0, 401);
    assert_eq!(
        request(&c, &zip, Some(&format!("Bearer {TOKEN}")))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        request(&c, &format!("{}/metrics", mg.url), None).unwrap().0,
        401
    );
    assert_eq!(
        request(
            &c,
            &format!("{}/metrics", mg.url),
            Some(&format!("Bearer {TOKEN}"))
        )
        .unwrap()
        .0,
        200
    );
    assert_eq!(
        request(&c, &format!("{}/healthz", mg.url), None).unwrap().0,
        200
    );
    assert_eq!(
        request(&c, &format!("{}/readyz", mg.url), None).unwrap().0,
        200
    );
}

#[test]
fn go_mod_download_authenticates_from_netrc_over_https() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let mut cfg = with_auth(test_config(
        &dir.path().join("data"),
        &up.url,
        &up.gosumdb(),
    ));
    cfg.tls.cert_file = Some(cert.clone());
    cfg.tls.key_file = Some(key);
    let mg = Modgate::start(cfg);
    let https = mg.url.replace("http://", "https://");
    let gosumdb = up.gosumdb();
    let cert_file = cert.to_str().unwrap();
    let modules = ["example.com/hello@v1.1.0", "example.com/app@v1.0.0"];
    let env = [
        ("GOPROXY", https.as_str()),
        ("GOSUMDB", gosumdb.as_str()),
        // The go command trusts the test's certificate only through this.
        ("SSL_CERT_FILE", cert_file),
    ];

    // Without credentials: refused with 401.
    let go = GoClient::new();
    let results = go.mod_download_json_env(&modules, &env);
    assert!(
        results.iter().all(|r| r.error.contains("401 Unauthorized")),
        "{results:?}"
    );

    // The go command sends .netrc credentials (HTTPS only) as basic auth.
    let go = GoClient::new();
    std::fs::write(
        go.root().join("home/.netrc"),
        format!("machine 127.0.0.1 login ci password {PASSWORD}\n"),
    )
    .unwrap();
    let results = go.mod_download_json_env(&modules, &env);
    let reference = up.modules();
    assert_eq!(results.len(), 2, "{results:?}");
    for r in &results {
        assert_eq!(r.error, "", "{r:?}");
        let m = reference
            .iter()
            .find(|m| m.path == r.path && m.version == r.version)
            .unwrap();
        assert_eq!(r.sum, m.sum);
    }
}

/// A `modgate serve` child process, stopped on drop (also when a test fails).
struct Served(std::process::Child);

impl Served {
    /// SIGTERM, then wait: a clean shutdown writes every queued log line
    /// (a kill -9 may lose the last ones; see src/logwriter.rs).
    fn stop(mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real binary with JSON logs on stderr (into a file); returns it and its address.
fn spawn_serve(config: &Path, data: &Path, log: &Path) -> (Served, String) {
    let child = Served(
        Command::new(env!("CARGO_BIN_EXE_modgate"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--config",
            ])
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .env("MODGATE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("modgate serve starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let f = std::fs::File::open(log).unwrap();
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["fields"]["message"] == "modgate serving" {
                let addr = v["fields"]["addr"].as_str().unwrap().to_string();
                return (child, format!("http://{addr}"));
            }
        }
        assert!(Instant::now() < deadline, "modgate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn credentials_never_reach_the_logs_and_access_lines_carry_fields() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("modgate.toml");
    std::fs::write(
        &config,
        format!(
            "upstream = \"{}\"\nsumdb = \"{}\"\n[auth]\nbearer_sha256 = [\"{}\"]\n[auth.basic_sha256]\nci = \"{}\"\n",
            up.url,
            up.gosumdb(),
            sha_hex(TOKEN),
            sha_hex(PASSWORD)
        ),
    )
    .unwrap();
    let log = dir.path().join("modgate.log");
    let (child, url) = spawn_serve(&config, &dir.path().join("data"), &log);
    // reqwest is built without a default crypto provider (see upstream.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::new();
    // As if through a load balancer: the header is recorded, not trusted.
    let mut xff = reqwest::header::HeaderMap::new();
    xff.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    let cx = reqwest::Client::builder()
        .default_headers(xff)
        .build()
        .unwrap();
    let zip = format!("{url}/example.com/hello/@v/v1.0.0.zip");
    let wrong_pw = "pw-WRONG-7e1d";
    let wrong_tok = "tok-WRONG-5a9f";
    let results = [
        request(&c, &zip, Some(&basic("ci", wrong_pw))),
        request(&c, &zip, Some(&format!("Bearer {wrong_tok}"))),
        request(&c, &zip, Some(&basic("ci", PASSWORD))),
        request(&cx, &zip, Some(&format!("Bearer {TOKEN}"))),
    ];
    let statuses: Vec<u16> = results.iter().map(|r| r.as_ref().unwrap().0).collect();
    assert_eq!(statuses, [401, 401, 200, 200]);
    child.stop();

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [wrong_pw, wrong_tok, PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "{secret} logged");
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}"));
        assert!(!text.contains(&b64), "credentials of {secret} logged");
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Failed attempts are security events; access lines carry the request's fields.
    let security: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "modgate::security")
        .collect();
    assert_eq!(security.len(), 2, "{security:?}");
    assert!(
        security
            .iter()
            .all(|l| l["fields"]["message"] == "authentication failed")
    );
    let served: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "modgate::access" && l["fields"]["status"] == 200)
        .collect();
    assert_eq!(served.len(), 2);
    let f = &served[0]["fields"];
    assert_eq!(f["module"], "example.com/hello");
    assert_eq!(f["version"], "v1.0.0");
    assert_eq!(f["kind"], "zip");
    assert_eq!(f["cache"], "miss");
    assert_eq!(served[1]["fields"]["cache"], "hit");
    // Who fetched it: the peer, any forwarded-for, and the user (a token by
    // its place in auth.bearer_sha256, never by its value or digest).
    assert_eq!(f["client"], "127.0.0.1");
    assert_eq!(f["user"], "ci");
    assert!(f.get("forwarded_for").is_none(), "{f}");
    let g = &served[1]["fields"];
    assert_eq!(g["client"], "127.0.0.1");
    assert_eq!(g["user"], "bearer[0]");
    assert_eq!(g["forwarded_for"], "203.0.113.7");
    assert!(
        security
            .iter()
            .all(|l| l["fields"]["client"] == "127.0.0.1")
    );
}
