//! The Workvivo SIEM API: `GET /v1/siem/{from}/{to}` with bearer token and `Workvivo-Id` header.
//!
//! Where the real API's behaviour is unknown (window edges, ordering, paging, error bodies), the
//! default is the choice that is hardest on a client, and [`Config`] switches to the others.

mod api;
mod dataset;

use std::time::Duration;

use axum::Router;

pub use dataset::{Dataset, Event, NO_REAL_USER_HOURS};

use crate::faults::Fault;
use crate::ratelimit::{EarlyRetry, Penalty, Quota};
use crate::server::{self, RunningServer};

/// 2024-09-01T00:00:00Z, the start of the default dataset.
pub const DEFAULT_START: i64 = 1_725_148_800;

/// Which events a `{from}/{to}` window returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowMode {
    /// `from <= t <= to`: an event on a shared edge comes back in both adjacent windows.
    #[default]
    InclusiveBoth,
    /// `from <= t < to`.
    HalfOpen,
}

/// Order of `data`, by `(created_at_timestamp, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// The vendor keeps events for `days`; anything older than `now_unix - days * 86400` is never
/// returned. `now_unix` is fixed so that tests do not depend on the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    pub now_unix: i64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dataset: Dataset,
    /// The bearer token accepted (with the SIEM scope).
    pub token: String,
    /// The `Workvivo-Id` the token belongs to.
    pub org_id: String,
    pub window: WindowMode,
    pub order: Order,
    /// When set, a response holds at most this many rows, carries `meta.pagination`, and honours
    /// `?skip=&take=`.
    pub max_rows: Option<usize>,
    /// A token bucket per token; past it, 429 `{"message":"Too Many Attempts."}`.
    pub rate_limit_per_minute: Option<u32>,
    /// Quotas counted over sliding windows per token ("at most N in any T"); past one, 429.
    pub quotas: Vec<crate::ratelimit::Quota>,
    /// Whether a rate-limited 429 carries `Retry-After` (clients must cope without it).
    pub retry_after_on_429: bool,
    /// A rate-limited 429 is bare: no body, no `Retry-After`, no `X-RateLimit-*` headers (what a
    /// gateway in front of the app might send). **[G]**
    pub bare_429: bool,
    /// After a 429 the token is refused for a while, longer if it comes back early. **[G]**
    pub penalty: Option<Penalty>,
    /// Whether requests refused with 429 count against the quota. **[G]**
    pub count_refused_requests: bool,
    /// Fault rules the server starts with (see [`crate::faults`]).
    pub faults: Vec<Fault>,
    pub retention: Option<Retention>,
    /// When set, a window longer than this many days is rejected with 400.
    pub max_window_days: Option<u32>,
    /// Tokens that authenticate for `org_id` but lack the SIEM scope: 403.
    pub unscoped_tokens: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dataset: Dataset::generate(DEFAULT_START, 3, 12, 7),
            token: "sim-token".to_owned(),
            org_id: "sim-org".to_owned(),
            window: WindowMode::default(),
            order: Order::default(),
            max_rows: None,
            rate_limit_per_minute: None,
            quotas: Vec::new(),
            retry_after_on_429: true,
            bare_429: false,
            penalty: None,
            count_refused_requests: false,
            faults: Vec::new(),
            retention: None,
            max_window_days: None,
            unscoped_tokens: Vec::new(),
        }
    }
}

/// Workvivo publishes no rate limit; this is the guess a strict run enforces: 60 requests a
/// minute per token (Laravel's `throttle:60,1`, the framework's default for APIs). **[G]**
pub fn undeclared_quota() -> Quota {
    Quota {
        requests: 60,
        per: Duration::from_secs(60),
    }
}

impl Config {
    /// Every unknown resolved against the client: the undeclared quota counted over a sliding
    /// minute, refused requests counting, a bare 429, and a 60-second block after one that
    /// starts over if the client comes back early.
    pub fn pessimistic() -> Self {
        Self {
            quotas: vec![undeclared_quota()],
            retry_after_on_429: false,
            bare_429: true,
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
