//! The Yandex 360 audit log API: `GET /security/v1/org/{orgId}/audit_log/{mail|disk}` with an
//! `Authorization: OAuth <token>` header, newest first, paged by an opaque `pageToken`.
//!
//! Where the real API's behaviour is unknown ([G] in the vendor notes), [`Config`] has a switch;
//! the default is the choice that is hardest on a client, except for the window bounds, which
//! default to the documented reading (`afterDate <= date < beforeDate`) and can be switched to
//! inclusive at both ends or exclusive at both ends.

mod api;
mod dataset;
mod time;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;

pub use dataset::{DISK_TYPES, Dataset, Event, MAIL_TYPES, ORG_ID, Stream};
pub use time::{parse_query_time, rfc3339_millis, rfc3339_seconds};

use crate::faults::{Action, Fault};
use crate::flags::{Strictness, parse_quota, parse_rate};
use crate::ratelimit::{EarlyRetry, Penalty, Quota};
use crate::server::{self, RunningServer};

/// 2025-06-01T00:00:00Z, the start of the default dataset, in milliseconds.
pub const DEFAULT_START_MS: i64 = 1_748_736_000_000;

/// The OAuth token the default configuration accepts.
pub const TOKEN: &str = "sim-token";

/// Which events an `afterDate` / `beforeDate` pair selects. **[G]**
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WindowMode {
    /// `afterDate <= date < beforeDate`, the documented reading.
    #[default]
    HalfOpen,
    /// `afterDate <= date <= beforeDate`: an event on a shared edge comes back in both windows.
    InclusiveBoth,
    /// `afterDate < date < beforeDate`: an event exactly on `afterDate` is never returned.
    ExclusiveBoth,
}

/// How `nextPageToken` says "last page". `""` is what clients test for; absent and `null` are
/// what they must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LastToken {
    #[default]
    Empty,
    Null,
    Absent,
}

/// What an error response's body holds. **[G]**: the format is not documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ErrorBody {
    /// Nothing at all: a client must explain the error without the vendor's words.
    #[default]
    Empty,
    /// gRPC-gateway style `{"code":16,"message":"Unauthenticated","details":[]}`.
    Json,
}

/// The vendor keeps events for `days`; older ones are never returned. `now_ms` is fixed so that
/// tests do not depend on the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dataset: Dataset,
    /// The token accepted, with both audit log scopes, bound to `org_id`.
    pub token: String,
    pub org_id: u64,
    /// Tokens that authenticate but lack the audit log scopes: 403.
    pub unscoped_tokens: Vec<String>,
    /// Tokens with `ya360_security:audit_log_mail` only: 403 on the disk log.
    pub mail_only_tokens: Vec<String>,
    /// Whether `Authorization: Bearer <token>` works too. **[G]** Default: no, 401.
    pub accept_bearer: bool,
    pub window: WindowMode,
    /// When set, a page holds at most this many events whatever `pageSize` asks for.
    pub page_cap: Option<usize>,
    /// `pageSize` over 100: clamp to 100 instead of answering 400. **[G]** Default: 400.
    pub clamp_page_size: bool,
    /// `types` on the disk log: ignore it instead of answering 400. **[G]** Default: 400.
    pub ignore_disk_types: bool,
    /// An empty result is `"events": []` instead of `"events": null`. Default: `null`.
    pub empty_events_as_array: bool,
    pub last_token: LastToken,
    pub error_body: ErrorBody,
    /// A token bucket per token; past it, 429.
    pub rate_limit_per_minute: Option<u32>,
    /// Quotas over sliding windows per token ("at most N in any T"); past one, 429.
    pub quotas: Vec<Quota>,
    /// Whether a 429 carries `Retry-After`. **[G]** Default: no. Without it, and with
    /// [`ErrorBody::Empty`], a 429 is bare.
    pub retry_after_on_429: bool,
    /// After a 429 the token is refused for a while, longer if it comes back early. **[G]**
    pub penalty: Option<Penalty>,
    /// Whether requests refused with 429 count against the quota. **[G]**
    pub count_refused_requests: bool,
    /// Fault rules the server starts with (see [`crate::faults`]).
    pub faults: Vec<Fault>,
    pub retention: Option<Retention>,
    /// When set, a page token leading past this many pages of one query is refused with 400, as
    /// an expired one would be. **[S]**: clients restart deep queries; the real limit is unknown.
    pub max_page_depth: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dataset: Dataset::generate(DEFAULT_START_MS, 72, 7),
            token: TOKEN.to_owned(),
            org_id: ORG_ID,
            unscoped_tokens: Vec::new(),
            mail_only_tokens: Vec::new(),
            accept_bearer: false,
            window: WindowMode::default(),
            page_cap: None,
            clamp_page_size: false,
            ignore_disk_types: false,
            empty_events_as_array: false,
            last_token: LastToken::default(),
            error_body: ErrorBody::default(),
            rate_limit_per_minute: None,
            quotas: Vec::new(),
            retry_after_on_429: false,
            penalty: None,
            count_refused_requests: false,
            faults: Vec::new(),
            retention: None,
            max_page_depth: None,
        }
    }
}

/// Yandex 360 publishes no rate limit for the audit log; this is the guess a strict run
/// enforces: 100 requests a minute per token. **[G]**
pub fn undeclared_quota() -> Quota {
    Quota {
        requests: 100,
        per: Duration::from_secs(60),
    }
}

impl Config {
    /// Every unknown resolved against the client: the undeclared quota over a sliding minute,
    /// refused requests counting, a bare 429 (no body, no `Retry-After`), and a 60-second block
    /// after one that starts over if the client comes back early.
    pub fn pessimistic() -> Self {
        Self {
            quotas: vec![undeclared_quota()],
            retry_after_on_429: false,
            error_body: ErrorBody::Empty,
            penalty: Some(
                Penalty::block(Duration::from_secs(60)).early_retry(EarlyRetry::Restarts),
            ),
            count_refused_requests: true,
            ..Self::default()
        }
    }
}

/// The API's routes, for serving with [`server::start`] or alongside other simulators. The
/// configuration's [`faults`](Config::faults) apply only through [`start`].
pub fn router(config: Config) -> Router {
    api::router(config)
}

/// Starts the simulator on 127.0.0.1 with a random port.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let faults = config.faults.clone();
    let server = server::start(router(config)).await?;
    server.faults().extend(faults);
    Ok(server)
}

/// Command-line settings of this simulator.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// First day of the generated events (UTC, YYYY-MM-DD)
    #[arg(long, default_value = "2025-06-01", value_parser = parse_day)]
    start: i64,
    /// Hours of generated events
    #[arg(long, default_value_t = 72)]
    hours: u32,
    /// Generate the last N hours up to now instead of --start/--hours (for incremental runs)
    #[arg(long, value_name = "N", conflicts_with_all = ["start", "hours"])]
    recent_hours: Option<u32>,
    /// Seed of the generated events (and of --fail-rate)
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// OAuth token the API accepts
    #[arg(long, default_value = TOKEN)]
    token: String,
    /// Organisation id the token is bound to
    #[arg(long, default_value_t = ORG_ID)]
    org: u64,
    /// Which events afterDate/beforeDate select
    #[arg(long, value_enum, default_value_t = WindowMode::HalfOpen)]
    window: WindowMode,
    /// At most N events a page, whatever pageSize asks
    #[arg(long, value_name = "N")]
    page_cap: Option<usize>,
    /// Accept `Authorization: Bearer` as well as `OAuth`
    #[arg(long)]
    accept_bearer: bool,
    /// Clamp pageSize over 100 instead of answering 400
    #[arg(long)]
    clamp_page_size: bool,
    /// Ignore `types` on the disk log instead of answering 400
    #[arg(long)]
    ignore_disk_types: bool,
    /// Answer "events": [] rather than null when nothing matches
    #[arg(long)]
    empty_events_as_array: bool,
    /// How the last page's nextPageToken looks
    #[arg(long, value_enum, default_value_t = LastToken::Empty)]
    last_token: LastToken,
    /// What error responses hold
    #[arg(long, value_enum, default_value_t = ErrorBody::Empty)]
    error_body: ErrorBody,
    /// Answer 429 past N requests a minute per token
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<u32>,
    /// Answer 429 past N requests in any window of a duration, e.g. 5/1s or 100/60s (repeatable)
    #[arg(long = "quota", value_name = "N/DURATION", value_parser = parse_quota)]
    quotas: Vec<Quota>,
    /// Enforce the quota Yandex 360 does not publish, guessed as 100 a minute per token
    #[arg(long)]
    undeclared_quota: bool,
    /// Send Retry-After with rate-limited 429s
    #[arg(long)]
    retry_after: bool,
    /// After a 429, refuse the token for SECS seconds
    #[arg(long, value_name = "SECS")]
    penalty: Option<u64>,
    /// Count requests refused with 429 against the quota
    #[arg(long)]
    count_refused: bool,
    #[command(flatten)]
    strictness: Strictness,
    /// Never return events older than N days before now
    #[arg(long, value_name = "N")]
    retention_days: Option<u32>,
    /// Refuse page tokens past N pages of one query with 400
    #[arg(long, value_name = "N")]
    max_page_depth: Option<u32>,
    /// Share of requests (0 to 1) that fail with 500 and an HTML body
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    fail_rate: Option<f64>,
    /// Write every generated event to DIR/mail.jsonl and DIR/disk.jsonl
    #[arg(long, value_name = "DIR")]
    ground_truth: Option<PathBuf>,
}

fn parse_day(text: &str) -> Result<i64, String> {
    crate::timefmt::parse_date(text)
        .map(|seconds| seconds * 1000)
        .ok_or_else(|| format!("`{text}` is not a date of the form YYYY-MM-DD"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves the simulator until the process is stopped.
pub async fn serve(args: Args) -> anyhow::Result<()> {
    let now = now_ms();
    let dataset = match args.recent_hours {
        Some(hours) => {
            let hour = 3_600_000;
            let start = now - now.rem_euclid(hour) - i64::from(hours) * hour;
            Dataset::generate(start, hours + 1, args.seed)
        }
        None => Dataset::generate(args.start, args.hours, args.seed),
    };
    if let Some(dir) = &args.ground_truth {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for stream in [Stream::Mail, Stream::Disk] {
            let path = dir.join(format!("{}.jsonl", stream.name()));
            std::fs::write(&path, dataset.to_json_lines(stream))
                .with_context(|| format!("cannot write the ground truth to {}", path.display()))?;
        }
    }
    let config = Config {
        dataset,
        token: args.token,
        org_id: args.org,
        unscoped_tokens: Vec::new(),
        mail_only_tokens: Vec::new(),
        accept_bearer: args.accept_bearer,
        window: args.window,
        page_cap: args.page_cap,
        clamp_page_size: args.clamp_page_size,
        ignore_disk_types: args.ignore_disk_types,
        empty_events_as_array: args.empty_events_as_array,
        last_token: args.last_token,
        error_body: args.error_body,
        rate_limit_per_minute: args.rate_limit_per_minute,
        quotas: if args.undeclared_quota {
            let mut quotas = args.quotas;
            quotas.push(undeclared_quota());
            quotas
        } else {
            args.quotas
        },
        retry_after_on_429: args.retry_after,
        penalty: args.penalty.map(|secs| {
            Penalty::block(Duration::from_secs(secs)).early_retry(args.strictness.early_retry)
        }),
        count_refused_requests: args.count_refused,
        faults: args.strictness.faults(
            args.seed,
            // As the default error body: nothing but the status.
            Action::Status {
                status: 429,
                body: String::new(),
                content_type: "application/json".to_owned(),
                retry_after: None,
            },
            Action::html(500),
        ),
        retention: args
            .retention_days
            .map(|days| Retention { days, now_ms: now }),
        max_page_depth: args.max_page_depth,
    };
    let faults = config.faults.clone();
    let server = server::start_on(router(config), args.port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    server.faults().extend(faults);
    if let Some(rate) = args.fail_rate {
        server
            .faults()
            .push(Fault::with_probability(rate, args.seed, Action::html(500)));
    }
    server.serve_until_stopped().await
}
