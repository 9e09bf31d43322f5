//! The `modgate` command: a small main; each subcommand's work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use modgate::admin::api::{Backend, Request};
use modgate::config::Config;
use modgate::server;

/// mimalloc instead of glibc's malloc: ~6% more cached hits per second at
/// 16 connections (BENCHMARKS.md, issue #16), and, with [`tune_allocator`],
/// less resident memory on a large store.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mimalloc this build vendors (libmimalloc-sys pinned in Cargo.toml):
/// the option numbers below are its `mi_option_t` values.
const MIMALLOC_VERSION: i32 = 30302;
#[cfg(test)]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A server holds its memory for days: give freed memory back at once
/// (mimalloc's default waits 1 s; with arena memory committed only when
/// used, set in .cargo/config.toml because it takes effect before `main`).
/// With mimalloc's defaults a 1M-version store idled at 230-370 MB RSS
/// after opening sled; with these, 113-116 MB (glibc's malloc: 134 MB).
fn tune_allocator() {
    // SAFETY: a plain option setter, called before any other thread exists.
    unsafe {
        if libmimalloc_sys::mi_version() == MIMALLOC_VERSION {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

/// A verifying, caching Go module proxy.
///
/// Point `GOPROXY` at it. Every .mod and .zip is verified against the Go
/// checksum database before it is cached or served; what cannot be verified
/// is refused with 403.
#[derive(Parser)]
#[command(name = "modgate", version, about, long_about)]
struct Cli {
    /// Run an admin command (cache, trust, audit) on a remote modgate over
    /// HTTPS (`POST URL/admin/`, enabled there by `[admin] bearer_sha256`).
    #[arg(long, global = true, value_name = "URL", requires = "token_file")]
    server: Option<String>,
    /// File holding the admin bearer token for --server.
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy server.
    Serve(ServeArgs),
    /// Show or reset the checksum-database trust state of a data dir.
    ///
    /// `show` asks the running server (admin socket) or reads a stopped data
    /// dir; `reset` runs only while no `modgate serve` holds the data dir.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Inspect, re-verify or prune the store (through a running server's
    /// admin socket, or directly on a stopped data dir).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Who was served or refused what: the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The pins of private module versions (their hashes as first seen).
    #[command(subcommand)]
    Pins(PinsCommand),
    /// Compare cached versions with what their origin serves now (tag rewrites).
    #[command(subcommand)]
    Origin(OriginCommand),
    /// Fetch and verify every module version listed in go.sum / go.mod files.
    Prefetch(PrefetchArgs),
    /// Exit 0 if a running modgate answers /healthz (for container HEALTHCHECKs).
    Healthcheck(HealthcheckArgs),
    /// Ask the supply-chain policy (deny/allow rules and advisories) about module versions.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the verdict on MODULE@VERSION and every reason behind it
    /// (advisory ids, the rule's reason); exit 0 if it would be served, 1 if refused.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// MODULE@VERSION.
        target: String,
    },
    /// List every cached version the current policy would refuse, with why.
    Exposure {
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// The policy file and the data dir of the `policy` commands.
#[derive(Args)]
struct PolicyArgs {
    #[command(flatten)]
    dir: DataDirArgs,
    /// The policy file [default: the config file's `policy`].
    #[arg(long, env = "MODGATE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl PolicyArgs {
    /// `--policy`, else the config file's `policy`; none: a running server's own.
    fn policy_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.policy {
            return Some(p.clone());
        }
        let c = self.dir.config.as_ref()?;
        Config::from_file(c).ok()?.policy
    }
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List stored module versions: kinds, sizes, when and against which tree head verified.
    Ls {
        #[command(flatten)]
        dir: DataDirArgs,
        /// A glob (`example.com/*`, `*@v1.2.*`) or a prefix of module@version.
        pattern: Option<String>,
        /// One JSON index entry per line.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every stored blob; quarantine the ones that no longer match (exit 1 if any).
    Verify {
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Remove a module or one version; the next request fetches and verifies it again.
    Rm {
        #[command(flatten)]
        dir: DataDirArgs,
        /// MODULE or MODULE@VERSION.
        target: String,
    },
}

#[derive(Subcommand)]
enum OriginCommand {
    /// Fetch cached versions again from their origin and compare with what was
    /// verified (checksum database or pin); exit 1 if any differs.
    Check {
        #[command(flatten)]
        dir: DataDirArgs,
        /// Module path patterns in GOPRIVATE syntax [default: every cached module].
        pattern: Option<String>,
        /// Where to fetch from, GOPROXY syntax (`direct` runs the go command).
        #[arg(long, default_value = "direct", value_name = "LIST")]
        origin: String,
    },
}

#[derive(Subcommand)]
enum PinsCommand {
    /// List pinned private versions: kind, h1 hash, when pinned.
    Ls {
        #[command(flatten)]
        dir: DataDirArgs,
        /// Module path patterns in GOPRIVATE syntax (e.g. `git.corp.example`).
        pattern: Option<String>,
    },
    /// Forget the pin of MODULE@VERSION: its next fetch pins what is served then (audited).
    Rm {
        #[command(flatten)]
        dir: DataDirArgs,
        /// MODULE@VERSION.
        target: String,
        /// Why (written to the audit trail).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Every answer and refusal of MODULE (or MODULE@VERSION): time, client,
    /// X-Forwarded-For, user, kind, hit/miss, status, verdict, tree size.
    Who {
        #[command(flatten)]
        dir: DataDirArgs,
        /// MODULE or MODULE@VERSION.
        target: String,
        /// Only records since then: a duration back (7d, 12h) or a date (2026-11-01).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Every record in a time range, as JSON lines (for a SIEM).
    Export {
        #[command(flatten)]
        dir: DataDirArgs,
        /// From: a duration back (7d) or a date (2026-11-01).
        #[arg(long, value_name = "WHEN")]
        since: String,
        /// Until (exclusive) [default: now].
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
    },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Show the trusted tree (size, hash, signed note) of each checksum
    /// database, and any fork marker and evidence.
    Show {
        #[command(flatten)]
        data: DataDirArgs,
        /// Only this checksum database (its name, e.g. sum.golang.org).
        #[arg(long, value_name = "NAME")]
        sumdb: Option<String>,
    },
    /// Clear a fork marker and the trusted tree, so modgate verifies again.
    ///
    /// After a checksum database presents a forked log (two signed tree heads
    /// that cannot both be true), modgate refuses every new verification,
    /// across restarts, and keeps the evidence under <data-dir>/evidence/.
    /// Run this only once you know why (e.g. the database operator announced
    /// a rebuilt log, or a test database was replaced).
    ///
    /// It clears the fork marker AND the stored latest tree note (and the
    /// tiles cached from that tree): the note is exactly what the current log
    /// is inconsistent with, so keeping it would detect the same fork again
    /// at the next verification. With it gone, the next verification trusts
    /// the database's current head afresh (trust on first use again), and
    /// consistency is enforced from there on. Evidence directories, verified
    /// artifacts and verified lookups are kept.
    Reset {
        #[command(flatten)]
        data: DataDirArgs,
        /// The checksum database to reset (its name, e.g. sum.golang.org).
        #[arg(long, value_name = "NAME")]
        sumdb: String,
    },
}

/// Where the data dir is, as for `serve`: flag > env > config file > default.
#[derive(Args)]
struct DataDirArgs {
    /// TOML configuration file (only its data_dir is used).
    #[arg(long, env = "MODGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data dir of the modgate server [default: ./modgate-data].
    #[arg(long, env = "MODGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store the server uses, when not the embedded one in the data dir:
    /// `s3://BUCKET[/PREFIX]` (endpoint and credentials from the AWS environment).
    #[arg(long, env = "MODGATE_STORE", value_name = "URL")]
    store: Option<String>,
}

impl DataDirArgs {
    /// The store location: flag > env > config file > embedded.
    fn location(&self) -> Result<modgate::store::Location, Box<dyn std::error::Error>> {
        let text = match (&self.store, &self.config) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => Config::from_file(p)?.store.location,
            (None, None) => String::new(),
        };
        Ok(text.parse()?)
    }

    fn resolve(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        Ok(match &self.config {
            Some(p) => Config::from_file(p)?.data_dir,
            None => Config::default().data_dir,
        })
    }
}

/// An admin command as an API request, with the data dir it concerns.
fn admin_request(cmd: Command) -> Result<(DataDirArgs, Request), Box<Command>> {
    Ok(match cmd {
        Command::Cache(CacheCommand::Ls { dir, pattern, json }) => {
            (dir, Request::CacheLs { pattern, json })
        }
        Command::Cache(CacheCommand::Verify { dir }) => (dir, Request::CacheVerify),
        Command::Cache(CacheCommand::Rm { dir, target }) => (dir, Request::CacheRm { target }),
        Command::Trust(TrustCommand::Show { data, sumdb }) => (data, Request::TrustShow { sumdb }),
        Command::Pins(PinsCommand::Ls { dir, pattern }) => (dir, Request::PinsLs { pattern }),
        Command::Pins(PinsCommand::Rm {
            dir,
            target,
            reason,
        }) => (dir, Request::PinsRm { target, reason }),
        Command::Origin(OriginCommand::Check {
            dir,
            pattern,
            origin,
        }) => (dir, Request::OriginCheck { pattern, origin }),
        Command::Trust(TrustCommand::Reset { data, sumdb }) => {
            (data, Request::TrustReset { sumdb })
        }
        Command::Audit(AuditCommand::Who {
            dir,
            target,
            since,
            json,
        }) => (
            dir,
            Request::AuditWho {
                target,
                since,
                json,
            },
        ),
        Command::Audit(AuditCommand::Export { dir, since, until }) => {
            (dir, Request::AuditExport { since, until })
        }
        Command::Policy(PolicyCommand::Check { policy, target }) => {
            let store = policy.dir.data_dir.is_some() || policy.dir.config.is_some();
            let file = policy.policy_file();
            (
                policy.dir,
                Request::PolicyCheck {
                    target,
                    policy: file,
                    store,
                },
            )
        }
        Command::Policy(PolicyCommand::Exposure { policy }) => {
            let file = policy.policy_file();
            (policy.dir, Request::PolicyExposure { policy: file })
        }
        other => return Err(Box::new(other)),
    })
}

/// Runs an admin request: on the remote server (--server), else through the
/// admin socket of a server running on the data dir, else on the data dir itself.
async fn run_admin(
    remote: Option<(String, PathBuf)>,
    dir: DataDirArgs,
    req: Request,
) -> Result<bool, Box<dyn std::error::Error>> {
    use std::io::Write;
    let answer = match remote {
        Some((url, token_file)) => {
            let token = std::fs::read_to_string(&token_file)
                .map_err(|e| format!("reading {}: {e}", token_file.display()))?;
            modgate::admin::api::ask_http(&url, token.trim(), &req).await?
        }
        None => {
            let data_dir = dir.resolve()?;
            let location = dir.location()?;
            match modgate::admin::socket::ask(&data_dir, &req).await {
                Ok(Some(a)) => a,
                Ok(None) if location != modgate::store::Location::Embedded => {
                    // No replica here: work on the bucket itself, with a
                    // scratch local tier (what it stages is thrown away).
                    let scratch = tempfile::tempdir()?;
                    let timeout =
                        std::time::Duration::from_secs(Config::default().store.timeout_secs);
                    let store =
                        modgate::store::open(&location, scratch.path(), 16 << 20, timeout, None)?;
                    let mut out = std::io::stdout();
                    return Ok(modgate::admin::api::execute(
                        Backend::Bucket(&data_dir, store),
                        req,
                        &mut out,
                    )
                    .await?);
                }
                Ok(None) => {
                    // No server: run it here, printing as it goes.
                    let mut out = std::io::stdout();
                    return Ok(modgate::admin::api::execute(
                        Backend::Dir(&data_dir),
                        req,
                        &mut out,
                    )
                    .await?);
                }
                Err(e) => {
                    return Err(format!(
                        "a server runs on {} but its admin socket failed: {e}",
                        data_dir.display()
                    )
                    .into());
                }
            }
        }
    };
    std::io::stdout().write_all(answer.output.as_bytes())?;
    match answer.error {
        Some(e) => Err(e.into()),
        None => Ok(answer.ok),
    }
}

#[derive(Args)]
struct PrefetchArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Module versions fetched at a time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// go.sum files (`*.sum`) or go.mod files (anything else).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct HealthcheckArgs {
    /// URL to probe [default: /healthz on the configured listen address].
    #[arg(long)]
    url: Option<String>,
    #[arg(
        long,
        env = "MODGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        hide = true
    )]
    listen: String,
    #[arg(long, env = "MODGATE_TLS_CERT", hide = true)]
    tls_cert: Option<PathBuf>,
}

/// Every flag is also an environment variable and a key of the TOML config
/// file (see config/modgate.toml). Precedence: flag > env > file > default.
#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "MODGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MODGATE_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the index, blobs and trust state [default: ./modgate-data].
    #[arg(long, env = "MODGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Upstream proxies in GOPROXY syntax [default: https://proxy.golang.org].
    #[arg(long, env = "MODGATE_UPSTREAM", value_name = "LIST")]
    upstream: Option<String>,
    /// Private module path patterns in GOPRIVATE syntax: never sent to the upstream or
    /// the checksum database; pinned on first sight [default: none].
    #[arg(long, env = "MODGATE_PRIVATE", value_name = "PATTERNS")]
    private: Option<String>,
    /// Upstream proxies for private modules in GOPROXY syntax [default: none: 404].
    #[arg(long, env = "MODGATE_PRIVATE_UPSTREAM", value_name = "LIST")]
    private_upstream: Option<String>,
    /// Checksum database in GOSUMDB syntax: `sum.golang.org`, `name+key` or `name+key URL`
    /// [default: sum.golang.org].
    #[arg(long, env = "MODGATE_SUMDB", value_name = "SPEC")]
    sumdb: Option<String>,
    /// Serve only what is cached; never contact upstream.
    #[arg(long, env = "MODGATE_OFFLINE")]
    offline: bool,
    /// Log format: text or json [default: text].
    #[arg(long, env = "MODGATE_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "MODGATE_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MODGATE_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Supply-chain policy file (deny/allow rules, advisories); reloaded on SIGHUP and change.
    #[arg(long, env = "MODGATE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where artifacts are kept: `embedded` (the data dir) or `s3://BUCKET[/PREFIX]`,
    /// shared by replicas (endpoint and credentials from the AWS environment)
    /// [default: embedded].
    #[arg(long, env = "MODGATE_STORE", value_name = "URL")]
    store: Option<String>,
}

impl ServeArgs {
    /// Layers flags and environment (already merged by clap) over the file and defaults.
    fn config(&self) -> Result<Config, Box<dyn std::error::Error>> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = &self.listen {
            c.listen = v.clone();
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.upstream {
            c.upstream = v.clone();
        }
        if let Some(v) = &self.sumdb {
            c.sumdb = v.clone();
        }
        if let Some(v) = &self.private {
            c.private = v.clone();
        }
        if let Some(v) = &self.private_upstream {
            c.private_upstream = v.clone();
        }
        if self.offline {
            c.offline = true;
        }
        if let Some(v) = &self.log_format {
            c.log_format = v.clone();
        }
        if let Some(v) = &self.tls_cert {
            c.tls.cert_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            c.tls.key_file = Some(v.clone());
        }
        if let Some(v) = &self.policy {
            c.policy = Some(v.clone());
        }
        if let Some(v) = &self.store {
            c.store.location = v.clone();
        }
        c.store.location()?;
        Ok(c)
    }
}

/// Logs to stderr. `serve` (`queued`) writes its lines by a thread of their
/// own (see `modgate::logwriter`: what a clean shutdown and a `kill -9` can
/// lose) and returns the guard that flushes them; the one-shot commands write
/// each line themselves, in order with what they print.
fn init_logging(format: &str, queued: bool) -> Option<modgate::logwriter::LogGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a terminal: not in log files (and cheaper per line).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = format == "json";
    if !queued {
        let builder = builder.with_writer(std::io::stderr);
        match json {
            true => builder.event_format(modgate::logfmt::Json).init(),
            false => builder.event_format(modgate::logfmt::Line).init(),
        }
        return None;
    }
    let (queue, guard) = modgate::logwriter::stderr();
    let builder = builder.with_writer(queue);
    match json {
        true => builder.event_format(modgate::logfmt::Json).init(),
        false => builder.event_format(modgate::logfmt::Line).init(),
    }
    Some(guard)
}

/// Runs the server until SIGTERM or ctrl-c. The log's guard goes to `log`,
/// for `main` to drop (flushing every queued line) once the runtime is gone.
async fn serve(
    args: ServeArgs,
    log: &mut Option<modgate::logwriter::LogGuard>,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = args.config()?;
    *log = init_logging(&cfg.log_format, true);
    let listen = cfg.listen.clone();
    let (upstream, sumdb, data_dir) = (
        cfg.upstream.clone(),
        cfg.sumdb.clone(),
        cfg.data_dir.clone(),
    );
    let state = server::build(cfg)?;
    let listener = server::bind(&listen).await?;
    tracing::info!(addr = %listener.local_addr()?, %upstream, %sumdb, data_dir = %data_dir.display(), "modgate serving");
    server::run(listener, state, server::shutdown_signal()).await?;
    Ok(())
}

/// Runs a command; `Ok(false)` means it ran but found problems (exit 1).
async fn admin(
    remote: Option<(String, PathBuf)>,
    cmd: Command,
    log: &mut Option<modgate::logwriter::LogGuard>,
) -> Result<bool, Box<dyn std::error::Error>> {
    use modgate::admin::prefetch;
    let cmd = match admin_request(cmd) {
        Ok((dir, req)) => {
            init_logging("text", false);
            return run_admin(remote, dir, req).await;
        }
        Err(cmd) => *cmd,
    };
    match cmd {
        Command::Prefetch(a) => {
            let cfg = a.serve.config()?;
            init_logging(&cfg.log_format, false);
            let sources = prefetch::read_sources(&a.files)?;
            let want = prefetch::want_of(&sources)?;
            let data_dir = cfg.data_dir.clone();
            // Beside a running server (or --server), its own pipeline fetches them.
            let req = Request::Prefetch {
                sources,
                jobs: a.jobs,
            };
            let answer = match remote {
                Some((url, token_file)) => {
                    let token = std::fs::read_to_string(&token_file)
                        .map_err(|e| format!("reading {}: {e}", token_file.display()))?;
                    Some(modgate::admin::api::ask_http(&url, token.trim(), &req).await?)
                }
                None => modgate::admin::socket::ask(&data_dir, &req).await?,
            };
            if let Some(answer) = answer {
                eprint!("{}", answer.output);
                return match answer.error {
                    Some(e) => Err(e.into()),
                    None => Ok(answer.ok),
                };
            }
            let state = server::build(cfg).map_err(|e| {
                prefetch::locked_error(&e, &data_dir)
                    .map_or_else(|| e.to_string(), |l| l.to_string())
            })?;
            let summary = prefetch::run(state.pipeline, want, a.jobs).await;
            eprintln!("{summary}");
            Ok(summary.failed.is_empty())
        }
        Command::Healthcheck(a) => {
            let url = a.url.unwrap_or_else(|| {
                modgate::http::ops::healthz_url(&a.listen, a.tls_cert.is_some())
            });
            modgate::http::ops::probe(&url).await?;
            Ok(true)
        }
        Command::Serve(a) => serve(a, log).await.map(|()| true),
        Command::Cache(_)
        | Command::Trust(_)
        | Command::Audit(_)
        | Command::Pins(_)
        | Command::Origin(_)
        | Command::Policy(_) => {
            unreachable!("admin commands are answered above")
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modgate: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let remote = cli.server.zip(cli.token_file);
    let mut log = None;
    let result = rt.block_on(admin(remote, cli.command, &mut log));
    // The runtime first (tasks still running may log as they end), then the
    // log's writer: every queued line is written before the process exits,
    // and before an error below is printed after them.
    drop(rt);
    drop(log);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("modgate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option numbers in `tune_allocator` are those of this mimalloc:
    /// a different vendored version must be checked (and this constant
    /// changed) before they are trusted again.
    #[test]
    fn the_tuned_mimalloc_is_the_vendored_one() {
        // SAFETY: reads the library's version and two options.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_version(), super::MIMALLOC_VERSION);
            super::tune_allocator();
            assert_eq!(
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                0
            );
            // Compiled in (.cargo/config.toml), not set at run time.
            assert_eq!(
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ARENA_EAGER_COMMIT),
                0
            );
        }
    }
}
