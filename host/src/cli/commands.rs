//! What each command does, from parsed arguments to the engine and back.

use super::{Cli, Command, RunArgs, parse_range};
use crate::capabilities::Capabilities;
use crate::capabilities::clock::Clock;
use crate::capabilities::http::{
    HttpCapability, HttpLimits, HttpStats, NetworkPolicy, QuotaReport, QuotaTuning, RateLimit,
    RateLimiters, RetryPolicy,
};
use crate::capabilities::storage::StorageScope;
use crate::config::{self, ConfigFile, Environment, Minutes, Overrides, Seconds, Sources};
use crate::engine::{self, RangeRequest, RecordFilter, RunContext, RunOptions, StreamSummary};
use crate::runtime::wit::{ConnectorInfo, ParamKind, StreamInfo, Version};
use crate::runtime::{ConnectorFile, GuestLimits, PluginDirs, Runtime};
use crate::state::StateStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a command did not succeed, and the exit code that says so.
pub struct Failure {
    pub exit_code: u8,
    pub message: String,
}

impl Failure {
    /// Bad input: flags, config, credentials, a connector file. Nothing was fetched.
    pub(super) fn input(message: impl ToString) -> Self {
        Failure {
            exit_code: 2,
            message: message.to_string(),
        }
    }

    /// A run that stopped part way; what was done is kept and a rerun resumes.
    pub(super) fn run(message: impl ToString) -> Self {
        Failure {
            exit_code: 1,
            message: message.to_string(),
        }
    }

    /// A stream's run that failed: bad input (exit code 2) when the user has to act first.
    fn stream(error: engine::RunError) -> Self {
        if error.needs_the_user() {
            Failure::input(error)
        } else {
            Failure::run(error)
        }
    }
}

/// Storage quota per connector and profile unless the config says otherwise.
const DEFAULT_STORAGE_KIB: u64 = 1024;
const DEFAULT_PROFILE: &str = "default";

pub async fn execute(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Run(args) => run(&cli, args).await,
        Command::Plugins => plugins(&cli).await,
        Command::Inspect { connector } => inspect(&cli, connector).await,
        Command::Plugin(super::PluginCommand::List) => plugins(&cli).await,
        Command::Plugin(command) => super::install::execute(&cli, command).await,
    }
}

pub(super) fn plugin_dirs(cli: &Cli, extra: &[PathBuf]) -> PluginDirs {
    let mut explicit = cli.plugin_dirs.clone();
    explicit.extend_from_slice(extra);
    PluginDirs::new(
        &explicit,
        std::env::var("TRAWL_PLUGIN_PATH").ok().as_deref(),
        xdg_dir("XDG_DATA_HOME", ".local/share"),
    )
}

/// `$VAR`, or `$HOME/<fallback>`, per the XDG base directory spec.
pub(super) fn xdg_dir(variable: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback)))
}

pub(super) fn cache_dir(cli: &Cli) -> Option<PathBuf> {
    cli.cache_dir
        .clone()
        .or_else(|| xdg_dir("XDG_CACHE_HOME", ".cache").map(|dir| dir.join("trawl")))
}

/// `mib` MiB in bytes (the config bounds every MiB setting far below overflow).
fn mebibytes(mib: u64) -> usize {
    usize::try_from(mib << 20).unwrap_or(usize::MAX)
}

fn guest_limits(limits: &config::Limits) -> GuestLimits {
    let defaults = GuestLimits::default();
    GuestLimits {
        memory_bytes: limits
            .memory_mib
            .map_or(defaults.memory_bytes, |mib| mebibytes(mib.get())),
        cpu_time: limits
            .cpu_seconds
            .map_or(defaults.cpu_time, Seconds::duration),
        call_timeout: limits
            .call_timeout_seconds
            .map_or(defaults.call_timeout, Seconds::duration),
        ..defaults
    }
}

/// The file `name_or_path` names: a path as it is, a name looked up in the plugin folders.
pub(super) fn find(dirs: &PluginDirs, name_or_path: &str) -> Result<PathBuf, Failure> {
    dirs.find(name_or_path).ok_or_else(|| {
        let searched = dirs
            .dirs()
            .iter()
            .map(|dir| format!("  {}", dir.display()))
            .collect::<Vec<_>>()
            .join("\n");
        Failure::input(format!(
            "no connector named `{name_or_path}` in the plugin folders:\n{searched}\n\
             (`trawl plugins` lists what is there; --plugins DIR or TRAWL_PLUGIN_PATH add folders)"
        ))
    })
}

async fn run(cli: &Cli, args: &RunArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let env = Environment::load(args.env_file.as_deref()).map_err(Failure::input)?;
    let file = match &args.config {
        Some(path) => Some(ConfigFile::load(path).map_err(Failure::input)?),
        None => None,
    };
    let file_ref = args.config.as_deref().zip(file.as_ref());
    let defaults = ConfigFile::default();
    let file_or_default = file.as_ref().unwrap_or(&defaults);

    let mut limits = guest_limits(&file_or_default.limits);
    // Each window in progress holds an instance; one more for other calls.
    limits.concurrent_calls = u32::try_from(windows_in_progress(args, file_or_default))
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let state_dir = cli
        .state_dir
        .clone()
        .or_else(|| file_or_default.state_dir.clone())
        .or_else(|| xdg_dir("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("trawl")))
        .ok_or_else(|| Failure::input("no state folder: set --state DIR or HOME"))?;
    // Opened while the connector loads: a new store costs several flushes to disk, and the two
    // share nothing.
    let opening = tokio::task::spawn_blocking(move || StateStore::open(&state_dir));
    let runtime = Runtime::new(cache_dir(cli), limits).map_err(Failure::run)?;
    let dirs = plugin_dirs(cli, &file_or_default.plugin_dirs);
    let state = opening
        .await
        .map_err(|error| Failure::run(format!("opening the state store stopped: {error}")))?
        .map_err(Failure::run)?;
    // Nothing of the file runs before its digest is found approved (see install.rs).
    let admitted = super::install::admit(
        &runtime,
        &dirs,
        &args.connector,
        &state,
        args.allow_unapproved,
    )
    .await?;
    let connector = admitted.connector;
    let info = connector.info().clone();
    if let (Some(path), Some(expected)) = (&args.config, &file_or_default.connector)
        && expected != &info.name
    {
        return Err(Failure::input(format!(
            "{} is a config for connector `{expected}`, not `{}`",
            path.display(),
            info.name
        )));
    }

    let mut overrides = Overrides {
        params: args.params.clone(),
        settings: args
            .settings
            .iter()
            .map(|(key, value)| (key.clone(), value.clone(), "--set"))
            .collect(),
    };
    if let Some(output) = &args.output {
        overrides
            .settings
            .push(("output.path".into(), output.clone(), "--output"));
    }
    if let Some(zone) = &args.timezone {
        overrides
            .settings
            .push(("timezone".into(), zone.clone(), "--timezone"));
    }
    let sources = Sources {
        overrides: &overrides,
        file: file_ref,
        env: &env,
    };
    let resolved = config::resolve_params(&info, &sources).map_err(Failure::input)?;
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }

    let stream_names: Vec<String> = if !args.streams.is_empty() {
        args.streams.clone()
    } else if !file_or_default.streams.is_empty() {
        file_or_default.streams.clone()
    } else {
        default_streams(&info)
    };
    let mut streams: Vec<(StreamInfo, config::StreamSettings)> = Vec::new();
    for name in &stream_names {
        let stream = info
            .streams
            .iter()
            .find(|stream| &stream.name == name)
            .ok_or_else(|| {
                Failure::input(format!(
                    "connector `{}` has no stream `{name}`; its streams are: {}",
                    info.name,
                    info.streams
                        .iter()
                        .map(|stream| stream.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let settings = config::resolve_settings(&info, stream, &sources).map_err(Failure::input)?;
        // Two streams in one output would interleave and share checkpoints: refuse it.
        if let Some((other, _)) = streams
            .iter()
            .find(|(_, other)| other.output.key() == settings.output.key())
        {
            return Err(Failure::input(format!(
                "streams `{}` and `{name}` would both write to {}; give each its own output \
                 (different settings per stream: a config file per stream, or run them apart)",
                other.name,
                settings.output.location()
            )));
        }
        streams.push((stream.clone(), settings));
    }

    let mut grants: Vec<String> = file_or_default.grants.clone().unwrap_or_default();
    grants.extend(args.grants.iter().cloned());
    let user_granted = file_or_default.grants.is_some() || !args.grants.is_empty();
    let policy = NetworkPolicy::new(&info.name, &info.hosts, user_granted.then_some(&grants[..]))
        .map_err(Failure::input)?;
    let limits = &file_or_default.limits;
    let http_limits = HttpLimits {
        timeout: limits
            .http_timeout_seconds
            .map_or(HttpLimits::default().timeout, Seconds::duration),
        max_body_bytes: limits
            .max_body_mib
            .map_or(HttpLimits::default().max_body_bytes, |mib| mib.get() << 20),
    };
    let retry = retry_policy(limits);
    let quota = config::resolve_quota_settings(&info, &sources).map_err(Failure::input)?;
    let tuning = QuotaTuning {
        learn_from: quota
            .learn_from
            .unwrap_or(QuotaTuning::default().learn_from),
        cooldown: quota.cooldown,
        // Not the retries' own backoff: a vendor's block after a 429 is waited out, however
        // short the user made the waits between retries of failed requests.
        first_backoff: QuotaTuning::default().first_backoff,
        max_backoff: QuotaTuning::default().max_backoff,
    };
    let rate_limits = rate_limits(args, file_or_default, &info)?;
    // What the quotas of this run's vendor are known to be, shared with every other process on
    // this state store: loaded as each is first used, saved every few seconds and at the end.
    let limiters = RateLimiters::with_store(state.clone(), tuning).map_err(Failure::run)?;
    let saving = keep_saving(limiters.clone());
    let stats = HttpStats::new();
    let credential = resolved
        .secrets
        .fingerprint(&state.fingerprint_key().map_err(Failure::run)?);
    let http = Arc::new(
        HttpCapability::new(policy, resolved.secrets, http_limits)
            .map_err(Failure::run)?
            .with_rate_limits(rate_limits)
            .with_rate_limiters(limiters.clone())
            .with_retry(retry)
            .with_trace(args.trace_http)
            .with_stats(stats.clone())
            .with_requests_in_flight(workers(args, file_or_default)),
    );

    let profile = args
        .profile
        .clone()
        .or_else(|| file_or_default.profile.clone())
        .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    let clock = Clock::System;
    let capabilities = Capabilities {
        connector: info.name.as_str().into(),
        clock: clock.clone(),
        http: Some(http.clone()),
        // Storage is the approved connector's, whatever the file calls itself, and the
        // credential's it was given: a token got with one key is never sent with another.
        storage: Some(
            StorageScope::new(
                state.clone(),
                &admitted.identity,
                &profile,
                limits
                    .storage_kib
                    .map_or(DEFAULT_STORAGE_KIB, |kib| kib.get())
                    << 10,
            )
            .for_credential(credential.as_deref()),
        ),
    };
    let options = run_options(args, file_or_default, args.config.as_deref())?;
    let context = RunContext {
        identity: admitted.identity.clone(),
        connector: Arc::new(connector),
        capabilities,
        params: resolved.params,
        profile,
        state: state.clone(),
        options,
    };

    let mut incomplete = Vec::new();
    let (mut done, mut failed, mut not_started) = (Vec::new(), Vec::new(), Vec::new());
    let mut needs_the_user = false;
    for (stream, settings) in &streams {
        let now = clock.now();
        let start = args.start.as_ref().or(args.start_flag.as_ref());
        let end = args.end.as_ref().or(args.end_flag.as_ref());
        let request = match start {
            Some(start) => RangeRequest::Explicit(
                parse_range(start, end.map(String::as_str), &settings.timezone, now)
                    .map_err(Failure::input)?,
            ),
            None => RangeRequest::Incremental {
                now: now.as_millisecond(),
            },
        };
        let output = &settings.output;
        let stream_started = Instant::now();
        let summary = match engine::run_stream(&context, stream, request, output).await {
            Ok(summary) => summary,
            Err(error) if streams.len() == 1 => return Err(Failure::stream(error)),
            Err(error) => {
                needs_the_user |= error.needs_the_user();
                // One stream failing does not keep the others from their data, unless the vendor
                // refused the credentials, which the others share.
                eprintln!("error: {error}");
                failed.push(stream.name.clone());
                if error.is_unauthorized() {
                    let started = failed.len() + done.len();
                    not_started.extend(streams[started..].iter().map(|(s, _)| s.name.clone()));
                    break;
                }
                continue;
            }
        };
        eprintln!(
            "{}",
            summary_line(
                &info.name,
                &stream.name,
                &summary,
                &output.location(),
                stream_started
            )
        );
        if summary.capped {
            incomplete.push(stream.name.clone());
        }
        done.push(stream.name.clone());
    }
    drop(saving);
    let traffic = stats.snapshot();
    eprintln!(
        "{} requests, {} retried ({} answered 429, {} answered 5xx, {} failed to connect or were \
         cut short), {} KiB received, {:.1?} spent waiting on rate limits{}",
        traffic.requests,
        traffic.retries,
        traffic.status_429,
        traffic.status_5xx,
        traffic.transport_errors,
        traffic.bytes_received >> 10,
        traffic.rate_limit_wait,
        quota_notes(&http.quota_reports())
    );
    if !incomplete.is_empty() {
        eprintln!(
            "stopped at --max-records for {}; the next run continues after the last record written",
            incomplete.join(", ")
        );
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "run complete"
    );
    if !failed.is_empty() {
        let mut message = format!("failed: {} (see above)", failed.join(", "));
        if !not_started.is_empty() {
            message.push_str(&format!(
                "; not started, as the credentials were refused: {}",
                not_started.join(", ")
            ));
        }
        if !done.is_empty() {
            message.push_str(&format!("; completed: {}", done.join(", ")));
        }
        return Err(if needs_the_user {
            Failure::input(message)
        } else {
            Failure::run(message)
        });
    }
    Ok(())
}

/// The streams a run pulls when neither flags nor the config name any: the connector's
/// `streams` setting (a comma-separated list, as a seed script pulled several), else its first.
fn default_streams(info: &ConnectorInfo) -> Vec<String> {
    let declared = info
        .settings
        .iter()
        .find(|setting| setting.key == "streams")
        .and_then(|setting| setting.default.as_deref())
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty());
    declared.unwrap_or_else(|| {
        info.streams
            .iter()
            .take(1)
            .map(|stream| stream.name.clone())
            .collect()
    })
}

/// The quotas requests are spaced by: the user's (flags, then config), which replace the
/// connector's declared ones (a user may be on a higher tier), each with a safety margin.
fn rate_limits(
    args: &RunArgs,
    file: &ConfigFile,
    info: &ConnectorInfo,
) -> Result<Vec<RateLimit>, Failure> {
    let user: Vec<&String> = if !args.rate_limits.is_empty() {
        args.rate_limits.iter().collect()
    } else {
        file.rate_limits.iter().flatten().collect()
    };
    let limits: Vec<RateLimit> = if user.is_empty() {
        info.rate_limits.iter().map(RateLimit::from).collect()
    } else {
        user.into_iter()
            .map(|text| text.parse::<RateLimit>().map_err(Failure::input))
            .collect::<Result<_, _>>()?
    };
    Ok(limits
        .into_iter()
        .map(RateLimit::with_safety_margin)
        .collect())
}

/// How failed requests are retried: for as long as the run makes progress, unless the user capped
/// attempts or time (`limits` in the config).
fn retry_policy(limits: &config::Limits) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    RetryPolicy {
        max_attempts: limits
            .retry_attempts
            .map_or(defaults.max_attempts, |attempts| {
                u32::try_from(attempts.get()).unwrap_or(u32::MAX)
            }),
        total: limits
            .retry_seconds
            .map_or(defaults.total, Seconds::duration),
        stall: limits
            .stall_minutes
            .map_or(defaults.stall, Minutes::duration),
        max_delay: limits
            .retry_max_delay_seconds
            .map_or(defaults.max_delay, Seconds::duration),
        ..defaults
    }
}

/// How often what the limiters know is saved while a run goes on: often enough that a process
/// started meanwhile (or after this one is killed) sees this one's recent requests, rarely
/// enough to cost nothing beside the run.
const QUOTA_SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// Saves what `limiters` know every [`QUOTA_SAVE_INTERVAL`], and once more when dropped, however
/// the run ends.
fn keep_saving(limiters: RateLimiters) -> QuotaSaver {
    let saved = limiters.clone();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(QUOTA_SAVE_INTERVAL);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let limiters = limiters.clone();
            match tokio::task::spawn_blocking(move || limiters.save()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!("{error}"),
                Err(_) => return,
            }
        }
    });
    QuotaSaver {
        limiters: saved,
        task,
    }
}

struct QuotaSaver {
    limiters: RateLimiters,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for QuotaSaver {
    fn drop(&mut self) {
        self.task.abort();
        // One small transaction, as the run ends: not worth a thread of its own.
        if let Err(error) = self.limiters.save() {
            tracing::warn!("{error}");
        }
    }
}

/// `; learned quota 54/1m for https://api.example.com:443 (paused 2 times)`, for keys whose
/// quota was learned or that were paused.
fn quota_notes(reports: &[QuotaReport]) -> String {
    reports
        .iter()
        .map(|report| {
            let mut note = match report.learned {
                Some(learned) => format!("; learned quota {learned} for {}", report.origin),
                None => format!("; {}", report.origin),
            };
            if report.pauses > 0 {
                note.push_str(&format!(
                    " (paused {} time{})",
                    report.pauses,
                    if report.pauses == 1 { "" } else { "s" }
                ));
            }
            note
        })
        .collect()
}

/// Requests out at once, each for its own window: the flag, then the config file, then 4.
fn workers(args: &RunArgs, file: &ConfigFile) -> usize {
    const DEFAULT_WORKERS: usize = 4;
    args.workers
        .map(usize::from)
        .or(file.workers)
        .unwrap_or(DEFAULT_WORKERS)
        .max(1)
}

/// Windows the engine works on at once: one more than requests out, so that while the workers'
/// requests are out, a page that came back is read.
fn windows_in_progress(args: &RunArgs, file: &ConfigFile) -> usize {
    workers(args, file) + 1
}

/// The engine's options: flags, then the config file, then defaults.
fn run_options(
    args: &RunArgs,
    file: &ConfigFile,
    file_path: Option<&Path>,
) -> Result<RunOptions, Failure> {
    let defaults = RunOptions::default();
    let from_file = |text: &Option<String>, key: &str| -> Result<Option<u64>, Failure> {
        text.as_deref()
            .map(|text| {
                super::duration(text).map_err(|message| {
                    Failure::input(format!(
                        "{}: `{key}`: {message}",
                        file_path
                            .map_or_else(|| "config".into(), |path| path.display().to_string())
                    ))
                })
            })
            .transpose()
    };
    let mut filter = RecordFilter::default();
    for (field, values) in &file.filters {
        filter.require(field, values.clone());
    }
    for spec in &args.filters {
        filter.require_spec(spec).map_err(Failure::input)?;
    }
    Ok(RunOptions {
        workers: windows_in_progress(args, file),
        max_pages_per_window: file
            .limits
            .max_pages_per_window
            .map_or(defaults.max_pages_per_window, |pages| {
                u32::try_from(pages.get()).unwrap_or(u32::MAX)
            }),
        overlap: args.overlap.or(from_file(&file.overlap, "overlap")?),
        lag: args.lag.or(from_file(&file.lag, "lag")?),
        filter,
        max_records: args.max_records.or(file.max_records),
        sort_chunk_bytes: defaults.sort_chunk_bytes,
        max_page_records: file
            .limits
            .max_page_records
            .map_or(defaults.max_page_records, |records| {
                usize::try_from(records.get()).unwrap_or(usize::MAX)
            }),
        max_page_bytes: file
            .limits
            .max_page_mib
            .map_or(defaults.max_page_bytes, |mib| mebibytes(mib.get())),
        // Two minutes outlast a proxy that cuts bodies short for a while; the user's caps on
        // retries hold here too.
        unreadable_patience: retry_policy(&file.limits)
            .total
            .min(defaults.unreadable_patience),
        unreadable_attempts: retry_policy(&file.limits).max_attempts,
    })
}

/// One line per stream: what was written where, and what was not and why.
fn summary_line(
    connector: &str,
    stream: &str,
    summary: &StreamSummary,
    location: &str,
    started: Instant,
) -> String {
    let mut line = format!(
        "{connector}/{stream}: {} records from {} windows ({} pages) appended to {location} in {:.1?}",
        summary.tally.records,
        summary.windows_committed,
        summary.pages,
        started.elapsed()
    );
    let mut notes = Vec::new();
    if summary.windows_total == 0 {
        notes.push("nothing new to fetch".to_string());
    }
    if summary.tally.duplicates > 0 {
        notes.push(format!(
            "{} already written, skipped",
            summary.tally.duplicates
        ));
    }
    if summary.tally.filtered > 0 {
        notes.push(format!("{} filtered out", summary.tally.filtered));
    }
    if !notes.is_empty() {
        line.push_str(&format!(" ({})", notes.join("; ")));
    }
    line
}

/// Lists the connector files in the plugin folders. Nothing of them runs: what an approved file
/// is comes from its approval, found by the file's digest; any other file is only named.
async fn plugins(cli: &Cli) -> Result<(), Failure> {
    let dirs = plugin_dirs(cli, &[]);
    let state = super::install::existing_state(cli);
    let mut out = String::from("Plugin folders, in search order:\n");
    for dir in dirs.dirs() {
        let _ = writeln!(
            out,
            "  {}{}",
            dir.display(),
            if dir.is_dir() { "" } else { " (missing)" }
        );
    }
    let found = dirs.list();
    if found.is_empty() {
        out.push_str("No connectors found.\n");
    } else {
        out.push_str("Connectors:\n");
    }
    for (file, hidden) in found {
        let status = match ConnectorFile::read(&file.path) {
            Err(error) => format!("cannot be loaded: {}", first_line(&error.to_string())),
            Ok(read) => match state
                .as_ref()
                .map(|state| state.approval_of_file(read.sha256()))
                .transpose()
            {
                Ok(Some(Some(approval))) => format!(
                    "{} {} - {} (approved {})",
                    approval.connector(),
                    approval.declared.version,
                    approval.declared.description,
                    super::review::when(approval.approved_at_ms)
                ),
                Ok(_) => format!(
                    "not approved (sha256 {}; `trawl plugin approve {}` reviews it)",
                    super::review::short(read.sha256()),
                    file.name
                ),
                Err(error) => format!("approval unknown: {error}"),
            },
        };
        let _ = writeln!(
            out,
            "  {:<14} {}{}\n  {:<14} {}",
            file.name,
            status,
            if hidden {
                " (hidden by an earlier folder)"
            } else {
                ""
            },
            "",
            file.path.display()
        );
    }
    print!("{out}");
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

async fn inspect(cli: &Cli, name_or_path: &str) -> Result<(), Failure> {
    let runtime = Runtime::new(cache_dir(cli), GuestLimits::default()).map_err(Failure::run)?;
    let path = find(&plugin_dirs(cli, &[]), name_or_path)?;
    let shown = super::install::inspect(cli, &runtime, &path, |connector| {
        describe(
            connector.info(),
            connector.path(),
            connector.contract_version(),
        )
    })
    .await?;
    print!("{shown}");
    Ok(())
}

/// A connector's description for people.
fn describe(info: &ConnectorInfo, path: &Path, contract: Version) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}\n  {}",
        info.name, info.version, info.description
    );
    let _ = writeln!(out, "  file: {}", path.display());
    let _ = writeln!(out, "  built against: trawl:connector@{contract}");
    let _ = writeln!(out, "\nStreams:");
    for stream in &info.streams {
        let window = match stream.max_window {
            0 => "no limit".to_string(),
            millis => humanize(millis),
        };
        let _ = writeln!(
            out,
            "  {:<20} {} (max window {window})",
            stream.name, stream.description
        );
        for setting in &stream.settings {
            let _ = writeln!(out, "  {:<20}   {}", "", describe_setting(setting));
        }
    }
    let _ = writeln!(out, "\nParams:");
    for param in &info.params {
        let kind = match &param.kind {
            ParamKind::Text => "text".to_string(),
            ParamKind::Integer => "integer".to_string(),
            ParamKind::Boolean => "true|false".to_string(),
            ParamKind::Url => "url".to_string(),
            ParamKind::Choice(choices) => choices.join("|"),
        };
        let mut notes = Vec::new();
        if param.required {
            notes.push("required".to_string());
        }
        if param.secret {
            notes.push("secret".to_string());
        }
        if let Some(variable) = &param.env {
            notes.push(format!("env {variable}"));
        }
        if let Some(default) = &param.default {
            notes.push(format!("default {default}"));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join(", "))
        };
        let _ = writeln!(out, "  {:<20} {kind}{notes}", param.name);
        let _ = writeln!(out, "  {:<20} {}", "", param.help);
    }
    if !info.rate_limits.is_empty() {
        let quotas: Vec<String> = info
            .rate_limits
            .iter()
            .map(|limit| RateLimit::from(limit).to_string())
            .collect();
        let _ = writeln!(out, "\nVendor quotas: {}", quotas.join(", "));
    }
    let _ = writeln!(out, "\nHosts it needs to reach:");
    for host in &info.hosts {
        let _ = writeln!(out, "  {host}");
    }
    if !info.settings.is_empty() {
        let _ = writeln!(out, "\nDefault settings:");
        for setting in &info.settings {
            let _ = writeln!(out, "  {}", describe_setting(setting));
        }
    }
    out
}

/// `key = default (env VAR)`.
fn describe_setting(setting: &crate::runtime::wit::HostSetting) -> String {
    format!(
        "{:<20} {}{}",
        setting.key,
        setting.default.as_deref().unwrap_or("-"),
        setting
            .env
            .as_ref()
            .map(|variable| format!(" (env {variable})"))
            .unwrap_or_default()
    )
}

fn humanize(millis: u64) -> String {
    const HOUR: u64 = 3_600_000;
    const MINUTE: u64 = 60_000;
    if millis.is_multiple_of(HOUR) {
        format!("{} h", millis / HOUR)
    } else if millis.is_multiple_of(MINUTE) {
        format!("{} min", millis / MINUTE)
    } else {
        format!("{} ms", millis)
    }
}
