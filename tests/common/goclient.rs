//! Runs the real `go` command as a module client in a hermetic temporary
//! environment (own GOPATH / GOMODCACHE / GOCACHE / HOME, no user config),
//! so tests can point `GOPROXY`/`GOSUMDB` at modgate or the reference
//! upstream and watch what the genuine client accepts or rejects.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::refupstream::Json;

/// One object of `go mod download -json` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadResult {
    pub path: String,
    pub version: String,
    /// `h1:` of the zip ("" on error).
    pub sum: String,
    /// `h1:` of the go.mod.
    pub go_mod_sum: String,
    /// `Error` field ("" if none).
    pub error: String,
    /// Local file paths reported by go ("" if absent).
    pub zip: String,
    pub go_mod: String,
    pub dir: String,
}

/// A hermetic `go` client. Everything lives in one temp dir, removed on drop.
pub struct GoClient {
    tmp: TempDir,
    go: PathBuf,
}

impl Default for GoClient {
    fn default() -> Self {
        Self::new()
    }
}

impl GoClient {
    pub fn new() -> GoClient {
        let tmp = tempfile::Builder::new()
            .prefix("goclient")
            .tempdir()
            .expect("temp dir");
        for d in ["home", "gopath", "gocache", "work", "tmp"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        let go = std::env::var_os("GO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("go"));
        GoClient { tmp, go }
    }

    /// The temp root.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// GOMODCACHE (`<root>/gopath/pkg/mod`).
    pub fn modcache(&self) -> PathBuf {
        self.tmp.path().join("gopath/pkg/mod")
    }

    /// The default working directory (not inside any module).
    pub fn workdir(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// The clean base environment. `GOPROXY=off` and `GOSUMDB=off` unless
    /// the caller overrides them, so a test never reaches the network by
    /// accident; GONOSUMDB/GOPRIVATE/GONOPROXY/GOINSECURE are empty.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let r = self.tmp.path();
        let s = |p: &str| r.join(p).to_string_lossy().into_owned();
        let mut env = vec![
            ("HOME".to_string(), s("home")),
            ("GOPATH".to_string(), s("gopath")),
            ("GOMODCACHE".to_string(), s("gopath/pkg/mod")),
            ("GOCACHE".to_string(), s("gocache")),
            ("TMPDIR".to_string(), s("tmp")),
            ("GOENV".to_string(), "off".to_string()),
            ("GOFLAGS".to_string(), "-modcacherw".to_string()),
            ("GO111MODULE".to_string(), "on".to_string()),
            ("GOTOOLCHAIN".to_string(), "local".to_string()),
            ("GOWORK".to_string(), "off".to_string()),
            ("GOTELEMETRY".to_string(), "off".to_string()),
            ("CGO_ENABLED".to_string(), "0".to_string()),
            ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
            ("GOPROXY".to_string(), "off".to_string()),
            ("GOSUMDB".to_string(), "off".to_string()),
            ("GONOSUMDB".to_string(), String::new()),
            ("GONOPROXY".to_string(), String::new()),
            ("GOPRIVATE".to_string(), String::new()),
            ("GOINSECURE".to_string(), String::new()),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            env.push(("PATH".to_string(), path.to_string_lossy().into_owned()));
        }
        env
    }

    /// Runs `go args...` in [`workdir`](Self::workdir) with the clean
    /// environment plus `env` (e.g. `GOPROXY`, `GOSUMDB`, `GONOSUMDB`,
    /// `GOPRIVATE`; later entries win).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_in(&self.workdir(), args, env)
    }

    /// Like [`run`](Self::run) in directory `dir`.
    pub fn run_in(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(&self.go);
        cmd.args(args).current_dir(dir).env_clear();
        for (k, v) in self.base_env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", self.go.display()))
    }

    /// `go mod download -json modules...` (each `path@version`) with
    /// `GOPROXY=proxy`, `GOSUMDB=sumdb`; one result per JSON object printed
    /// (failures are reported in `error`, not as a panic).
    pub fn mod_download_json(
        &self,
        proxy: &str,
        sumdb: &str,
        modules: &[&str],
    ) -> Vec<DownloadResult> {
        self.mod_download_json_env(modules, &[("GOPROXY", proxy), ("GOSUMDB", sumdb)])
    }

    /// [`mod_download_json`](Self::mod_download_json) with arbitrary env.
    pub fn mod_download_json_env(
        &self,
        modules: &[&str],
        env: &[(&str, &str)],
    ) -> Vec<DownloadResult> {
        let mut args = vec!["mod", "download", "-json"];
        args.extend_from_slice(modules);
        let out = self.run(&args, env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let values = Json::parse_stream(&stdout).unwrap_or_else(|e| {
            panic!(
                "parsing go mod download -json output: {e}\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let mut results: Vec<DownloadResult> = values
            .iter()
            .map(|v| DownloadResult {
                path: v.str_field("Path").to_string(),
                version: v.str_field("Version").to_string(),
                sum: v.str_field("Sum").to_string(),
                go_mod_sum: v.str_field("GoModSum").to_string(),
                error: v.str_field("Error").to_string(),
                zip: v.str_field("Zip").to_string(),
                go_mod: v.str_field("GoMod").to_string(),
                dir: v.str_field("Dir").to_string(),
            })
            .collect();
        // Fatal errors (e.g. "SECURITY ERROR ... server misbehavior") make
        // go exit without printing JSON for some modules: report them with
        // go's stderr as the error.
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            for m in modules {
                let (path, version) = m.split_once('@').unwrap_or((m, ""));
                if !results.iter().any(|r| r.path == path) {
                    results.push(DownloadResult {
                        path: path.to_string(),
                        version: version.to_string(),
                        error: if stderr.is_empty() {
                            format!("go exited with {}", out.status)
                        } else {
                            stderr.clone()
                        },
                        ..Default::default()
                    });
                }
            }
        }
        results
    }

    /// Creates `<root>/<name>/` holding a main module `example.com/<name>`
    /// whose go.mod requires `requires` (path, version) and whose main.go
    /// imports `imports` (blank imports), and returns its directory.
    pub fn main_module(&self, name: &str, requires: &[(&str, &str)], imports: &[&str]) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut gomod = format!("module example.com/{name}\n\ngo 1.16\n");
        for (p, v) in requires {
            gomod.push_str(&format!("\nrequire {p} {v}\n"));
        }
        std::fs::write(dir.join("go.mod"), gomod).unwrap();
        let mut main = String::from("package main\n\n");
        for i in imports {
            main.push_str(&format!("import _ {i:?}\n"));
        }
        main.push_str("\nfunc main() { println(\"ok\") }\n");
        std::fs::write(dir.join("main.go"), main).unwrap();
        dir
    }

    /// Creates a main module (see [`main_module`](Self::main_module)), runs
    /// `go mod tidy` (fetching and verifying everything through `env`'s
    /// GOPROXY/GOSUMDB and writing go.sum) then `go build -o main .`.
    /// Returns the output of the first failing step, or of the build. The
    /// binary is `<dir>/main`.
    pub fn build_main(
        &self,
        name: &str,
        requires: &[(&str, &str)],
        imports: &[&str],
        env: &[(&str, &str)],
    ) -> (PathBuf, Output) {
        let dir = self.main_module(name, requires, imports);
        let tidy = self.run_in(&dir, &["mod", "tidy"], env);
        if !tidy.status.success() {
            return (dir, tidy);
        }
        let build = self.run_in(&dir, &["build", "-o", "main", "."], env);
        (dir, build)
    }
}

/// stdout + stderr of an Output as one string (for assertions/messages).
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
