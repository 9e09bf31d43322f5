//! The `modgate` command: a small main; each subcommand's work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use modgate::config::Config;
use modgate::server;

/// A verifying, caching Go module proxy.
///
/// Point `GOPROXY` at it. Every .mod and .zip is verified against the Go
/// checksum database before it is cached or served; what cannot be verified
/// is refused with 403.
#[derive(Parser)]
#[command(name = "modgate", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy server.
    Serve(ServeArgs),
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
        if self.offline {
            c.offline = true;
        }
        if let Some(v) = &self.log_format {
            c.log_format = v.clone();
        }
        Ok(c)
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: not in log files (and cheaper per line).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = args.config()?;
    init_logging(&cfg.log_format);
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modgate: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modgate: {e}");
            ExitCode::FAILURE
        }
    }
}
