//! The deployment files, checked without Docker or a cluster: the Dockerfile's
//! stages, binary, user and health check; every YAML under deploy/ parsed,
//! with probes on the real endpoints (asked of a running modgate); the
//! systemd unit's hardening; the shipped configurations parse.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::modgate::{Modgate, test_config};
use modgate::config::Config;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One Dockerfile instruction: keyword (upper case) and its arguments.
#[derive(Debug, Clone)]
struct Instr {
    op: String,
    args: String,
}

/// Splits a Dockerfile into instructions: comments dropped, `\` continuations joined.
fn parse_dockerfile(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (op, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        out.push(Instr {
            op: op.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        cur.clear();
    }
    assert!(cur.is_empty(), "dangling continuation: {cur}");
    out
}

/// The binary targets of this package, as cargo names them.
fn cargo_bins() -> Vec<String> {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let mut bins: Vec<String> = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if root().join("src/main.rs").exists() {
        bins.push(manifest["package"]["name"].as_str().unwrap().to_string());
    }
    bins
}

fn modgate_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_unprivileged_with_a_health_check() {
    let instrs = parse_dockerfile(&read("Dockerfile"));
    // Stages: split at FROM.
    let mut stages: Vec<(String, Option<String>, Vec<Instr>)> = Vec::new();
    for i in instrs {
        if i.op == "FROM" {
            let f: Vec<&str> = i.args.split_whitespace().collect();
            let name = match f[..] {
                [_, kw, n] if kw.eq_ignore_ascii_case("as") => Some(n.to_string()),
                [_] => None,
                _ => panic!("FROM {}", i.args),
            };
            stages.push((f[0].to_string(), name, Vec::new()));
        } else {
            stages
                .last_mut()
                .expect("an instruction before FROM")
                .2
                .push(i);
        }
    }
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    let (builder_image, builder_name, builder) = &stages[0];
    assert!(builder_image.starts_with("rust:"), "{builder_image}");
    let builder_name = builder_name.as_deref().expect("the builder stage is named");
    assert!(
        builder
            .iter()
            .any(|i| i.op == "RUN" && i.args.contains("cargo build --release")),
        "the builder runs a release build"
    );

    let (runtime_image, _, runtime) = stages.last().unwrap();
    assert!(runtime_image.starts_with("debian:") && runtime_image.ends_with("-slim"));
    let all = |op: &str| -> Vec<&Instr> { runtime.iter().filter(|i| i.op == op).collect() };

    // The copied binary is a real cargo bin target, and is what runs.
    let copy = all("COPY")
        .into_iter()
        .find(|i| i.args.starts_with(&format!("--from={builder_name} ")))
        .expect("COPY --from=builder");
    let src = copy.args.split_whitespace().nth(1).unwrap();
    let dest = copy.args.split_whitespace().nth(2).unwrap();
    let bin = src
        .rsplit_once("/target/release/")
        .map(|(_, b)| b)
        .expect("copied from target/release");
    assert!(
        cargo_bins().contains(&bin.to_string()),
        "{bin} is not a bin target"
    );
    let entry = &all("ENTRYPOINT")[0].args;
    let entry: Vec<String> = serde_json::from_str(entry).expect("exec-form ENTRYPOINT");
    assert_eq!(entry[0], dest);

    // ca-certificates, a non-root user that the image creates, the data volume, the port.
    let runs: String = all("RUN").iter().map(|i| i.args.clone()).collect();
    assert!(runs.contains("ca-certificates"));
    let user = all("USER").last().expect("USER set").args.clone();
    let user_name = user.split(':').next().unwrap();
    assert_ne!(user_name, "root");
    assert!(
        runs.contains("useradd") && runs.contains(&format!(" {user_name}")),
        "user {user_name} is created: {runs}"
    );
    assert!(all("VOLUME")[0].args.contains("/data"));
    assert_eq!(all("EXPOSE")[0].args, "8080");
    let env: String = all("ENV").iter().map(|i| i.args.clone()).collect();
    assert!(env.contains("MODGATE_LISTEN=0.0.0.0:8080"), "{env}");
    assert!(env.contains("MODGATE_DATA_DIR=/data"), "{env}");

    // HEALTHCHECK runs a real subcommand of that binary.
    let hc = &all("HEALTHCHECK").first().expect("HEALTHCHECK").args;
    let cmd = hc.split_once("CMD").expect("HEALTHCHECK CMD").1.trim();
    let cmd: Vec<String> = serde_json::from_str(cmd).expect("exec-form CMD");
    assert_eq!(cmd[0], dest);
    let out = modgate_bin()
        .args(&cmd[1..])
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd:?} is a modgate subcommand");

    let ignore = read(".dockerignore");
    assert!(
        ignore
            .lines()
            .any(|l| l.trim().trim_end_matches('/') == "target")
    );
}

/// Every YAML file under deploy/, each document as JSON.
fn yaml_docs() -> BTreeMap<PathBuf, Vec<Value>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("deploy"), &mut files);
    assert!(!files.is_empty());
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
            .map(|d| {
                serde::Deserialize::deserialize(d)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            })
            .collect();
        out.insert(f, docs);
    }
    out
}

#[test]
fn kubernetes_and_compose_files_parse_and_probe_the_real_endpoints() {
    let docs = yaml_docs();
    // The single-node manifests: the files directly in deploy/kubernetes
    // (deploy/kubernetes/replicas has its own test below).
    let k8s: Vec<&Value> = docs
        .iter()
        .filter(|(p, _)| p.parent() == Some(root().join("deploy/kubernetes").as_path()))
        .flat_map(|(_, d)| d)
        .collect();
    let kinds: Vec<&str> = k8s.iter().filter_map(|d| d["kind"].as_str()).collect();
    for want in [
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "ConfigMap",
        "Kustomization",
    ] {
        assert!(kinds.contains(&want), "{want} in {kinds:?}");
    }
    let kust = k8s.iter().find(|d| d["kind"] == "Kustomization").unwrap();
    for r in kust["resources"].as_array().unwrap() {
        assert!(
            root()
                .join("deploy/kubernetes")
                .join(r.as_str().unwrap())
                .exists(),
            "{r}"
        );
    }

    let mut probe_paths = Vec::new();
    let dep = k8s.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let spec = &dep["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let port = &c[p]["httpGet"]["port"];
        let named = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| &x["name"] == port || &x["containerPort"] == port);
        assert!(named, "{p} port {port} is a container port");
        probe_paths.push(c[p]["httpGet"]["path"].as_str().unwrap().to_string());
    }
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert_eq!(dep["spec"]["replicas"], 1, "one writer per volume");
    assert_eq!(dep["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);

    // The ConfigMap's TOML is a valid configuration whose data dir is the mounted volume.
    let cm = k8s.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let toml_text = cm["data"]["modgate.toml"].as_str().unwrap();
    let cfg = Config::from_toml(toml_text).expect("ConfigMap TOML parses");
    assert_eq!(cfg.listen, "0.0.0.0:8080");
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == cfg.data_dir.to_str().unwrap() && m["name"] == "data")
    );
    let env_config = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "MODGATE_CONFIG")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let config_mount = mounts.iter().find(|m| m["name"] == "config").unwrap()["mountPath"]
        .as_str()
        .unwrap();
    assert_eq!(env_config, format!("{config_mount}/modgate.toml"));
    let pvc = k8s
        .iter()
        .find(|d| d["kind"] == "PersistentVolumeClaim")
        .unwrap();
    let claim = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "data")
        .unwrap()["persistentVolumeClaim"]["claimName"]
        .clone();
    assert_eq!(claim, pvc["metadata"]["name"]);

    // docker compose: the health check is the binary's own subcommand; data in a volume.
    let compose = &docs[&root().join("deploy/docker-compose.yml")][0];
    let svc = &compose["services"]["modgate"];
    let test: Vec<&str> = svc["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(test[..3], ["CMD", "/usr/local/bin/modgate", "healthcheck"]);
    assert!(svc["volumes"][0].as_str().unwrap().ends_with(":/data"));

    // The probed paths answer 200 on a real modgate (no upstream needed).
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), "off", "sum.golang.org"));
    for p in &probe_paths {
        let (status, _, body) = mg.get(p);
        assert_eq!(status, 200, "{p}: {}", String::from_utf8_lossy(&body));
    }
}

/// The container's environment variable `name`: its value, or for one taken
/// from a Secret, `secret:<name>/<key>`.
fn container_env(c: &Value, name: &str) -> Option<String> {
    let e = c["env"].as_array()?.iter().find(|e| e["name"] == name)?;
    if let Some(v) = e["value"].as_str() {
        return Some(v.to_string());
    }
    let r = &e["valueFrom"]["secretKeyRef"];
    Some(format!(
        "secret:{}/{}",
        r["name"].as_str()?,
        r["key"].as_str()?
    ))
}

/// `16Gi`, `500Mi`, `10G`: bytes.
fn k8s_quantity(q: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().expect("quantity") * mult;
        }
    }
    q.parse().expect("quantity")
}

#[test]
fn kubernetes_replicas_share_a_bucket_behind_probes_and_a_disruption_budget() {
    let dir = root().join("deploy/kubernetes/replicas");
    let docs = yaml_docs();
    let k8s: Vec<&Value> = docs
        .iter()
        .filter(|(p, _)| p.parent() == Some(dir.as_path()))
        .flat_map(|(_, d)| d)
        .collect();
    let one = |kind: &str| -> &Value {
        let all: Vec<&&Value> = k8s.iter().filter(|d| d["kind"] == kind).collect();
        assert_eq!(all.len(), 1, "one {kind}");
        all[0]
    };
    let kust = one("Kustomization");
    let resources: Vec<&str> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for r in &resources {
        assert!(dir.join(r).exists(), "{r}");
    }
    // The Secret is applied by hand, never by the kustomization (its
    // placeholders must not overwrite real credentials).
    assert!(!resources.contains(&"secret.yaml"));

    let sts = one("StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 3);
    let labels = &sts["spec"]["selector"]["matchLabels"];
    let pod = &sts["spec"]["template"];
    for (k, v) in labels.as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][k], v, "pod label {k}");
    }
    let pdb = one("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let services: Vec<&&Value> = k8s.iter().filter(|d| d["kind"] == "Service").collect();
    assert!(
        services
            .iter()
            .any(|s| s["metadata"]["name"] == sts["spec"]["serviceName"]
                && s["spec"]["clusterIP"] == "None"),
        "the StatefulSet's governing Service is headless"
    );
    for s in &services {
        assert_eq!(&s["spec"]["selector"], labels, "{}", s["metadata"]["name"]);
    }

    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let mut probe_paths = Vec::new();
    for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let port = &c[p]["httpGet"]["port"];
        assert!(
            c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| &x["name"] == port || &x["containerPort"] == port),
            "{p} port {port} is a container port"
        );
        probe_paths.push(c[p]["httpGet"]["path"].as_str().unwrap().to_string());
    }

    // The bucket, and credentials from the Secret.
    let store = container_env(c, "MODGATE_STORE").expect("MODGATE_STORE");
    assert!(store.starts_with("s3://") && store.len() > 5, "{store}");
    let secret = serde_norway::from_str::<Value>(&read("deploy/kubernetes/replicas/secret.yaml"))
        .expect("secret.yaml parses");
    assert_eq!(secret["kind"], "Secret");
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        let from = container_env(c, var).unwrap_or_else(|| panic!("{var} set"));
        let (name, key) = from
            .strip_prefix("secret:")
            .and_then(|r| r.split_once('/'))
            .unwrap_or_else(|| panic!("{var} comes from a Secret, not {from}"));
        assert_eq!(secret["metadata"]["name"], name);
        assert!(
            secret["stringData"][key].is_string(),
            "{key} in secret.yaml"
        );
    }
    assert!(container_env(c, "AWS_REGION").is_some());

    // The data dir is an emptyDir (the local tier), larger than the local
    // tier's cap; the configuration names that mount.
    let volume = |name: &str| -> &Value {
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    let size_limit = k8s_quantity(volume("data")["emptyDir"]["sizeLimit"].as_str().unwrap());
    let cm = one("ConfigMap");
    assert_eq!(
        volume("config")["configMap"]["name"],
        cm["metadata"]["name"]
    );
    let cfg: toml::Table = toml::from_str(cm["data"]["modgate.toml"].as_str().unwrap())
        .expect("ConfigMap TOML parses");
    assert_eq!(cfg["listen"].as_str(), Some("0.0.0.0:8080"));
    let local_max = cfg["store"]["local_max_bytes"].as_integer().unwrap() as u64;
    assert!(
        local_max > 0 && local_max < size_limit,
        "local_max_bytes {local_max} fits the emptyDir ({size_limit})"
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    let mount = |name: &str| -> &str {
        mounts.iter().find(|m| m["name"] == name).unwrap()["mountPath"]
            .as_str()
            .unwrap()
    };
    assert_eq!(cfg["data_dir"].as_str(), Some(mount("data")));
    assert_eq!(
        container_env(c, "MODGATE_CONFIG").as_deref(),
        Some(format!("{}/modgate.toml", mount("config")).as_str())
    );

    // The probed paths answer 200 on a real modgate.
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), "off", "sum.golang.org"));
    for p in &probe_paths {
        let (status, _, body) = mg.get(p);
        assert_eq!(status, 200, "{p}: {}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn compose_replicas_share_a_minio_bucket_the_init_creates() {
    let docs = yaml_docs();
    let compose = &docs[&root().join("deploy/docker-compose.replicas.yml")][0];
    let services = compose["services"].as_object().unwrap();

    // MinIO and mc pinned to a release, not a moving tag.
    let minio = &services["minio"];
    let pinned = |img: &Value, repo: &str| {
        let img = img.as_str().unwrap();
        assert!(
            img.starts_with(&format!("{repo}:RELEASE.")),
            "{img} is pinned to a release"
        );
    };
    pinned(&minio["image"], "minio/minio");
    let init = &services["minio-init"];
    pinned(&init["image"], "minio/mc");
    assert_eq!(
        init["depends_on"]["minio"]["condition"], "service_healthy",
        "the init waits for MinIO"
    );
    let init_script: String = init["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let bucket = init_script
        .split("mc mb --ignore-existing local/")
        .nth(1)
        .expect("the init creates a bucket")
        .split_whitespace()
        .next()
        .unwrap();

    let replicas: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["command"][0] == "serve")
        .collect();
    assert!(replicas.len() >= 2, "{:?}", services.keys());
    let mut host_ports = Vec::new();
    let mut volumes = Vec::new();
    for (name, svc) in &replicas {
        let env = &svc["environment"];
        let store = env["MODGATE_STORE"].as_str().unwrap();
        assert!(
            store == format!("s3://{bucket}") || store.starts_with(&format!("s3://{bucket}/")),
            "{name}: {store} is the init's bucket {bucket}"
        );
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://minio:9000", "{name}");
        assert_eq!(env["AWS_ALLOW_HTTP"], "true", "{name}");
        assert_eq!(env["MODGATE_DATA_DIR"], "/data", "{name}");
        for k in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(env[k].is_string(), "{name}: {k}");
        }
        assert_eq!(
            svc["depends_on"]["minio-init"]["condition"], "service_completed_successfully",
            "{name} starts once the bucket exists"
        );
        let test: Vec<&str> = svc["healthcheck"]["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(test[..3], ["CMD", "/usr/local/bin/modgate", "healthcheck"]);
        let vol = svc["volumes"][0].as_str().unwrap();
        assert!(vol.ends_with(":/data"), "{name}: {vol}");
        volumes.push(vol.to_string());
        host_ports.push(
            svc["ports"][0]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    host_ports.sort();
    host_ports.dedup();
    assert_eq!(host_ports.len(), replicas.len(), "a host port each");
    volumes.sort();
    volumes.dedup();
    assert_eq!(volumes.len(), replicas.len(), "a local tier each");
}

#[test]
fn systemd_unit_is_hardened_and_writes_only_its_data_dir() {
    let text = read("deploy/systemd/modgate.service");
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
        keys.entry(format!("{section}.{k}"))
            .or_default()
            .push(v.to_string());
    }
    let one = |k: &str| -> String {
        keys.get(k)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert_eq!(one("Service.ProtectSystem"), "strict");
    assert_eq!(one("Service.NoNewPrivileges"), "yes");
    assert!(
        one("Service.DynamicUser") == "yes" || keys.contains_key("Service.User"),
        "runs unprivileged"
    );
    let envs = &keys["Service.Environment"];
    let data_dir = envs
        .iter()
        .find_map(|e| e.strip_prefix("MODGATE_DATA_DIR="))
        .expect("MODGATE_DATA_DIR set");
    assert!(
        one("Service.ReadWritePaths")
            .split_whitespace()
            .any(|p| p == data_dir)
    );
    assert_eq!(
        format!("/var/lib/{}", one("Service.StateDirectory")),
        data_dir
    );
    let exec = one("Service.ExecStart");
    let mut exec = exec.split_whitespace();
    assert!(exec.next().unwrap().ends_with("/modgate"));
    let sub: Vec<&str> = exec.collect();
    let out = modgate_bin().args(&sub).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "ExecStart {sub:?} is a modgate command"
    );
    assert_eq!(one("Install.WantedBy"), "multi-user.target");
}

#[test]
fn shipped_configurations_parse() {
    let air = Config::from_file(&root().join("config/airgapped.toml")).expect("airgapped parses");
    assert!(air.offline);
    assert_eq!(air.upstream, "off");
    // It builds a server as is (nothing is contacted at start-up).
    let data = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: data.path().to_path_buf(),
        ..air
    };
    assert!(modgate::server::build(cfg).is_ok());

    // Unknown keys stay an error that names them, in every section.
    let e = Config::from_toml("[tls]\ncert = \"x\"\n").unwrap_err();
    assert!(e.contains("cert"), "{e}");
    let e = Config::from_toml("[auth]\ntokens = []\n").unwrap_err();
    assert!(e.contains("tokens"), "{e}");
}
