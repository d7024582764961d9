//! The `trawl` command line: parses flags, sets up logging, and turns a command into a run.

mod commands;
mod install;
mod range;
mod review;

pub use install::PluginCommand;
pub use range::{RangeError, parse_range};

use clap::{ArgAction, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Pulls security and audit logs out of SaaS APIs, incrementally and exactly once, through
/// sandboxed WebAssembly connectors.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, max_term_width = 100)]
pub struct Cli {
    /// A folder to search for connectors before TRAWL_PLUGIN_PATH and the XDG data folder
    /// (repeatable).
    #[arg(long = "plugins", value_name = "DIR", global = true)]
    pub plugin_dirs: Vec<PathBuf>,

    /// Where checkpoints and connector storage live [default: $XDG_STATE_HOME/trawl].
    #[arg(
        long = "state",
        value_name = "DIR",
        global = true,
        env = "TRAWL_STATE_DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// Where compiled connectors are cached [default: $XDG_CACHE_HOME/trawl].
    #[arg(
        long = "cache",
        value_name = "DIR",
        global = true,
        env = "TRAWL_CACHE_DIR"
    )]
    pub cache_dir: Option<PathBuf>,

    /// Say more (-v: debug, -vv: trace). RUST_LOG, when set, decides instead.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Say only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull records from a connector into its output.
    ///
    /// With START (and END), pulls that range: dates are whole days in the configured time zone,
    /// both inclusive (`trawl run workvivo 2024-09-01 2024-09-02`); times may also be RFC 3339 or
    /// Unix seconds; END defaults to now. Without a range, continues from where the last run of
    /// this stream and output ended. Windows already delivered to the output are never fetched
    /// again, so an interrupted run is resumed by running the same command.
    Run(Box<RunArgs>),
    /// List the connectors found in the plugin folders.
    Plugins,
    /// Show what a connector is: its streams, params, and the hosts it wants to reach.
    Inspect {
        /// A connector name (looked up in the plugin folders) or a path to a .wasm file.
        connector: String,
    },
    /// Install a connector, or approve one whose file changed since it was installed.
    ///
    /// `trawl run` refuses a connector whose file is not the one approved under its name.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The connector: a name found in the plugin folders, or a path to a .wasm file.
    pub connector: String,
    /// Start of the range: YYYY-MM-DD, an RFC 3339 time, or Unix seconds.
    pub start: Option<String>,
    /// End of the range (a date includes that whole day) [default: now].
    pub end: Option<String>,
    /// The start of the range, as a flag (the same forms as START; e.g. Unix seconds).
    #[arg(long = "start", value_name = "TIME", conflicts_with = "start")]
    pub start_flag: Option<String>,
    /// The end of the range, as a flag (the same forms as END).
    #[arg(
        long = "end",
        value_name = "TIME",
        conflicts_with = "end",
        requires = "start_flag"
    )]
    pub end_flag: Option<String>,
    /// A RON config file with params, settings and grants.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Keeps checkpoints and connector storage of one account apart from another's.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// A stream to pull (repeatable) [default: the connector's first].
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// A connector param (repeatable); `trawl inspect` lists them.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = key_value)]
    pub params: Vec<(String, String)>,
    /// A host setting (repeatable): timezone, output.format, output.path, output.extra-columns, ...
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub settings: Vec<(String, String)>,
    /// The output file (the setting output.path).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<String>,
    /// The time zone for dates and local timestamps (the setting timezone), e.g. Asia/Tokyo.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Allow requests to this origin, scheme://host[:port] (repeatable). Without any grant, every
    /// host the connector declares is allowed; with grants, only those. Loopback origins can be
    /// granted for local test servers.
    #[arg(long = "grant", value_name = "ORIGIN")]
    pub grants: Vec<String>,
    /// Read variables from this file instead of ./.env.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Requests to the vendor at the same time [default: 4], each for its own window; one more
    /// window is read meanwhile. The output stays in event-time order.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
    /// How much an incremental run re-reads before where the last one ended, e.g. 2m
    /// [default: the connector's]. Records seen again are not written twice.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub overlap: Option<u64>,
    /// How far behind now an incremental run stops, e.g. 30s [default: the connector's].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub lag: Option<u64>,
    /// Write only records whose FIELD is one of the VALUEs (repeatable; all must hold). FIELD may
    /// be a dotted path into nested objects.
    #[arg(long = "filter", value_name = "FIELD=VALUE[,VALUE...]")]
    pub filters: Vec<String>,
    /// Write at most this many records per stream, then stop (the next run continues after them).
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// The vendor's quota, e.g. 5/s, 100/min, 25/5s (repeatable; all are kept). Replaces the
    /// connector's declared quotas.
    #[arg(long = "rate-limit", value_name = "N/DURATION")]
    pub rate_limits: Vec<String>,
    /// Run a connector file nobody approved (one you are writing), loudly, under a name of its
    /// own: its checkpoints and storage are kept apart from any approved connector's.
    #[arg(long)]
    pub allow_unapproved: bool,
    /// Log every HTTP request and response in full (headers, the start of bodies), with every
    /// secret replaced by its placeholder.
    #[arg(long)]
    pub trace_http: bool,
}

/// A duration such as `90s`, `2m`, `1h 30m` or `500ms`, in milliseconds.
pub fn duration(text: &str) -> Result<u64, String> {
    let parsed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as 30s, 2m or 1h, got `{text}`"))?;
    u64::try_from(parsed.as_millis())
        .map_err(|_| format!("expected a positive duration, got `{text}`"))
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// Runs the command line and returns the process's exit code: 0 when everything asked for was
/// done, 1 when a run failed part way (rerun to resume), 2 for bad input.
pub fn main() -> ExitCode {
    harden_process();
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    // The command runs as a task of the runtime rather than on this thread: the engine's loop
    // then wakes on the worker that finished a window instead of being woken here, across
    // threads, for every one of them (4% of a 720-window run's wall time).
    let outcome = runtime.block_on(async {
        match tokio::spawn(commands::execute(cli)).await {
            Ok(outcome) => outcome,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(commands::Failure::run(error)),
        }
    });
    // What must be durable is by now: the last commit is made and the state store closed. The
    // runtime's threads are not waited for as they wind down, each handing its memory back to
    // the system just before the process exits anyway.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Keeps secrets in memory out of core dumps: none are written, and other processes of the same
/// user cannot attach to read them.
fn harden_process() {
    #[cfg(unix)]
    {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct passed by reference and changes only this process's
        // limits; a failure leaves them as they were, which is acceptable.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes plain integers and affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info,cranelift=warn,wasmtime=warn",
        (false, 1) => "debug,cranelift=warn,wasmtime=warn,hyper=info,rustls=info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
