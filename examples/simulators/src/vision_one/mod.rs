//! Trend Vision One API v3.0: `GET /v3.0/search/detections`, `/v3.0/search/endpointActivities`
//! (filtered by the `TMV1-Query` header), `/v3.0/workbench/alerts` (filtered by `TMV1-Filter`) and
//! `/v3.0/healthcheck/connectivity`, with bearer tokens, `nextLink` paging through a `skipToken`,
//! performance mode's progressive search, and a 60-second request quota per token.
//!
//! Where the real API's behaviour is unknown (window edges, order, whether a running search hands
//! out the same `nextLink` again, short pages, `Retry-After`, whether refused requests count
//! against the quota, error codes), the default is the choice that is hardest on a client, and
//! [`Config`] switches to the others.

mod api;
mod dataset;
mod query;
mod token;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::Router;

pub use dataset::{Dataset, Item, PTP_ONLY_HOURS, Stream, parse_iso_millis};
pub use query::{Filter, Query};

use crate::faults::{Action, Fault};
use crate::flags::{Strictness, parse_quota, parse_rate};
use crate::ratelimit::{EarlyRetry, Penalty, Quota};
use crate::server::{self, RunningServer};

/// 2024-10-20T00:00:00Z, the seed's `start_date` and the start of the default dataset.
pub const DEFAULT_START: i64 = 1_729_382_400;

/// The token the default configuration accepts, with every permission.
pub const TOKEN: &str = "sim-token";

/// The values `top` may take on the search routes.
pub const TOPS: [usize; 5] = [50, 100, 500, 1000, 5000];

/// Which records a `[startDateTime, endDateTime]` question returns, compared with each record's
/// time to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowMode {
    /// `start <= t <= end`: a record on a shared edge comes back for both windows.
    #[default]
    InclusiveBoth,
    /// `start <= t < end`.
    HalfOpen,
}

/// Order of search results by `(eventTime, uuid)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (uuid ascending within one instant), as documented for search.
    #[default]
    Descending,
    Ascending,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dataset: Dataset,
    /// The bearer token accepted with every permission.
    pub token: String,
    /// Tokens that authenticate but whose role lacks the Search permission: 403 on search.
    pub no_search_tokens: Vec<String>,
    /// Tokens that authenticate but whose role lacks the Workbench permission: 403 on alerts.
    pub no_workbench_tokens: Vec<String>,
    pub window: WindowMode,
    pub order: Order,
    /// Pages of a list alternate full, half-full and empty (each with a `nextLink` while records
    /// remain), so that a client stopping at a short page loses data.
    pub short_pages: bool,
    /// Performance mode answers this many pages with no records, `progressRate` below 100 and a
    /// `nextLink` before the first records.
    pub performance_empty_pages: u32,
    /// While a performance search runs, its `nextLink` is the very link the client just asked
    /// with (otherwise each poll gets a new one).
    pub repeat_next_link_while_searching: bool,
    /// "At most N requests in any T" per token; past one, 429 `TooManyRequests`.
    pub quotas: Vec<Quota>,
    /// Whether requests refused with 429 count against the quota (so that a client retrying
    /// too soon keeps itself blocked), as Trend documents for its 60-second window.
    pub count_refused_requests: bool,
    /// After a 429 the token is refused for a while, longer if it comes back early. **[G]**
    pub penalty: Option<Penalty>,
    /// Fault rules the server starts with (see [`crate::faults`]).
    pub faults: Vec<Fault>,
    /// Whether a 429 carries `Retry-After` (Trend does not document one).
    pub retry_after_on_429: bool,
    /// `nextLink` names this `scheme://host:port` instead of the one the client used, as a server
    /// behind a proxy or load balancer may.
    pub next_link_base: Option<String>,
    /// Alerts a page when the request has no `top`.
    pub alert_page_size: usize,
    /// Every data request waits this long first; at or past `gateway_timeout` it gets a 504.
    pub stall: Option<Duration>,
    pub gateway_timeout: Duration,
    /// `error.code` of a 401 and of a 403.
    pub unauthorized_code: String,
    pub forbidden_code: String,
    /// 401 and 403 with an empty body.
    pub bare_auth_errors: bool,
    /// "Now", in Unix seconds, for dates a request leaves out; the system clock when `None`.
    pub now_unix: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dataset: Dataset::generate(DEFAULT_START, 3, 12, 7),
            token: TOKEN.to_owned(),
            no_search_tokens: Vec::new(),
            no_workbench_tokens: Vec::new(),
            window: WindowMode::default(),
            order: Order::default(),
            short_pages: true,
            performance_empty_pages: 3,
            repeat_next_link_while_searching: true,
            quotas: vec![Quota {
                requests: 100,
                per: Duration::from_secs(60),
            }],
            count_refused_requests: true,
            penalty: None,
            faults: Vec::new(),
            retry_after_on_429: false,
            next_link_base: None,
            alert_page_size: 50,
            stall: None,
            gateway_timeout: Duration::from_secs(60),
            unauthorized_code: "Unauthorized".to_owned(),
            forbidden_code: "AccessDenied".to_owned(),
            bare_auth_errors: false,
            now_unix: None,
        }
    }
}

impl Config {
    /// Every unknown resolved against the client: 100 requests a minute per token, refused
    /// requests counting, no `Retry-After`, and a 60-second block after a 429 that starts over
    /// if the client comes back early.
    pub fn pessimistic() -> Self {
        Self {
            retry_after_on_429: false,
            count_refused_requests: true,
            penalty: Some(
                Penalty::block(Duration::from_secs(60)).early_retry(EarlyRetry::Restarts),
            ),
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

/// A fault action answering as Vision One does: `{"error": {"code", "message"}}`.
pub fn error_action(status: u16, code: &str, message: &str) -> Action {
    Action::json(
        status,
        &serde_json::json!({ "error": { "code": code, "message": message } }),
    )
}

/// Vision One's 429, with or without `Retry-After`.
pub fn too_many_requests(retry_after: Option<u64>) -> Action {
    let action = error_action(429, "TooManyRequests", "Too many API requests");
    match retry_after {
        Some(seconds) => action.with_retry_after(seconds),
        None => action,
    }
}

/// Command-line settings of this simulator.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// First day of the generated records (UTC, YYYY-MM-DD)
    #[arg(long, default_value = "2024-10-20", value_parser = parse_day)]
    start: i64,
    /// Number of days of records
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// Detections a generated hour holds (at least 3; half as many endpoint activities, a quarter
    /// as many alerts)
    #[arg(long, default_value_t = 12)]
    per_hour: u32,
    /// Seed of the generated records (and of --fail-rate)
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Bearer token the API accepts
    #[arg(long, default_value = TOKEN)]
    token: String,
    /// A token without the Search permission (repeatable)
    #[arg(long, value_name = "TOKEN")]
    no_search_token: Vec<String>,
    /// A token without the Workbench permission (repeatable)
    #[arg(long, value_name = "TOKEN")]
    no_workbench_token: Vec<String>,
    /// Windows are [start, end) instead of [start, end]
    #[arg(long)]
    half_open: bool,
    /// Return the oldest records first
    #[arg(long)]
    ascending: bool,
    /// Serve every page full
    #[arg(long)]
    full_pages: bool,
    /// Empty pages performance mode serves before the first records
    #[arg(long, default_value_t = 3)]
    performance_empty_pages: u32,
    /// Give each poll of a running search a new nextLink
    #[arg(long)]
    new_link_per_poll: bool,
    /// Answer 429 past N requests in any window of a duration per token, e.g. 100/60s
    /// (repeatable) [default: 100/60s]
    #[arg(long = "quota", value_name = "N/DURATION", value_parser = parse_quota)]
    quotas: Vec<Quota>,
    /// Enforce no quota
    #[arg(long, conflicts_with = "quotas")]
    no_quota: bool,
    /// Do not count requests refused with 429 against the quota
    #[arg(long)]
    limited_requests_do_not_count: bool,
    /// Send Retry-After with 429s
    #[arg(long)]
    retry_after: bool,
    /// After a 429, refuse the token for SECS seconds
    #[arg(long, value_name = "SECS")]
    penalty: Option<u64>,
    #[command(flatten)]
    strictness: Strictness,
    /// Write nextLink on this scheme://host:port instead of the one the client used
    #[arg(long, value_name = "ORIGIN")]
    next_link_base: Option<String>,
    /// Alerts a page when a request has no top
    #[arg(long, default_value_t = 50)]
    alert_page_size: usize,
    /// Hold every data request this many milliseconds (60000 or more: 504)
    #[arg(long, value_name = "MS")]
    stall_ms: Option<u64>,
    /// Share of requests (0 to 1) that fail with 500 and Vision One's error body
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    fail_rate: Option<f64>,
    /// Write every record to DIR/detections.jsonl, endpoint_activities.jsonl and
    /// workbench_alerts.jsonl, one JSON object a line
    #[arg(long, value_name = "DIR")]
    ground_truth: Option<PathBuf>,
}

fn parse_day(text: &str) -> Result<i64, String> {
    crate::timefmt::parse_date(text)
        .ok_or_else(|| format!("`{text}` is not a date of the form YYYY-MM-DD"))
}

impl Args {
    fn config(self) -> Config {
        let defaults = Config::default();
        Config {
            dataset: Dataset::generate(self.start, self.days, self.per_hour, self.seed),
            token: self.token,
            no_search_tokens: self.no_search_token,
            no_workbench_tokens: self.no_workbench_token,
            window: if self.half_open {
                WindowMode::HalfOpen
            } else {
                WindowMode::InclusiveBoth
            },
            order: if self.ascending {
                Order::Ascending
            } else {
                Order::Descending
            },
            short_pages: !self.full_pages,
            performance_empty_pages: self.performance_empty_pages,
            repeat_next_link_while_searching: !self.new_link_per_poll,
            quotas: match (self.no_quota, self.quotas.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => defaults.quotas,
                (false, false) => self.quotas,
            },
            count_refused_requests: !self.limited_requests_do_not_count,
            penalty: self.penalty.map(|secs| {
                Penalty::block(Duration::from_secs(secs)).early_retry(self.strictness.early_retry)
            }),
            faults: self.strictness.faults(
                self.seed,
                too_many_requests(None),
                error_action(500, "InternalServerError", "Internal server error"),
            ),
            retry_after_on_429: self.retry_after,
            next_link_base: self.next_link_base,
            alert_page_size: self.alert_page_size.max(1),
            stall: self.stall_ms.map(Duration::from_millis),
            ..defaults
        }
    }
}

/// Serves the simulator until the process is interrupted or terminated.
pub async fn serve(args: Args) -> anyhow::Result<()> {
    let port = args.port;
    let seed = args.seed;
    let fail_rate = args.fail_rate;
    let ground_truth = args.ground_truth.clone();
    let config = args.config();
    if let Some(dir) = &ground_truth {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for stream in Stream::ALL {
            let path = dir.join(format!("{}.jsonl", stream.file_stem()));
            std::fs::write(&path, config.dataset.to_json_lines(stream))
                .with_context(|| format!("cannot write the ground truth to {}", path.display()))?;
        }
    }
    let faults = config.faults.clone();
    let server = server::start_on(router(config), port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    server.faults().extend(faults);
    if let Some(rate) = fail_rate {
        server.faults().push(Fault::with_probability(
            rate,
            seed,
            error_action(500, "InternalServerError", "Internal server error"),
        ));
    }
    server.serve_until_stopped().await
}
