//! The Verkada API: `POST /token` (API key for a 30-minute token), `GET /core/v1/audit_log` and
//! `GET /cameras/v1/alerts`, with Verkada's rate limit shared by every route of an organisation.
//!
//! Where the real API's behaviour is unknown (window edges, ordering, error bodies, strictness),
//! the default is the choice that is hardest on a client, and [`Config`] switches to the others.
//! Audit rows become visible only once processed (`processed_timestamp`), which is what makes
//! `use_processed_timestamp` matter; the simulator's [`Clock`] can be set by a test to replay a
//! moment at which some rows were still being processed.

mod api;
mod dataset;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;

pub use dataset::{
    Alert, AuditEvent, Dataset, INTERESTED_EVENTS, NOTIFICATION_TYPES, ORGANIZATION_ID,
    PROCESSED_TIMESTAMPS_FROM, QUARTER, SYSTEM_USER_ID,
};

use crate::faults::{Action, Fault};
use crate::flags::{Strictness, parse_quota, parse_rate};
use crate::ratelimit::{EarlyRetry, Penalty, Quota};
use crate::server::{self, RunningServer};

/// 2025-09-16T00:00:00Z, the start of the default data (the day of Verkada's sample row).
pub const DEFAULT_START: i64 = 1_757_980_800;

/// The API key the default configuration accepts.
pub const DEFAULT_API_KEY: &str = "sim-verkada-key";

/// Verkada's regions; a key belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Region {
    Us,
    Eu,
    /// The seed script's region.
    #[default]
    Au,
    Gov,
}

impl Region {
    /// The real API host of the region.
    pub fn host(self) -> &'static str {
        match self {
            Region::Us => "api.verkada.com",
            Region::Eu => "api.eu.verkada.com",
            Region::Au => "api.au.verkada.com",
            Region::Gov => "api.verkadagov.com",
        }
    }
}

/// An API key: its organisation, region and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub org: String,
    pub region: Region,
    /// May read the audit log (403 otherwise).
    pub audit_log: bool,
    /// May read camera alerts (403 otherwise).
    pub camera_alerts: bool,
}

impl ApiKey {
    /// A key of organisation `sim-org` with every permission.
    pub fn new(key: &str, region: Region) -> Self {
        ApiKey {
            key: key.to_owned(),
            org: "sim-org".to_owned(),
            region,
            audit_log: true,
            camera_alerts: true,
        }
    }
}

/// Changes to the API keys while a simulator runs: a test revokes or replaces a key here, and
/// every token made for the old key stops working (401). Clones share the changes, so a test
/// keeps one and puts a clone in [`Config::keyring`]; each server applies them to its own
/// [`Config::keys`].
#[derive(Debug, Clone, Default)]
pub struct Keyring(Arc<Mutex<KeyChanges>>);

#[derive(Debug, Default)]
struct KeyChanges {
    revoked: Vec<String>,
    /// Old key, new key.
    replaced: Vec<(String, String)>,
}

impl Keyring {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyChanges> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Revokes `key`: `/token` refuses it and its tokens stop working.
    pub fn revoke(&self, key: &str) {
        self.lock().revoked.push(key.to_owned());
    }

    /// Replaces `old` by `new`, with the same organisation, region and permissions, as an
    /// administrator rotating a key does: `old` and its tokens stop working.
    pub fn replace(&self, old: &str, new: &str) {
        self.lock().replaced.push((old.to_owned(), new.to_owned()));
    }

    /// The key in force with the text `given`, among `keys` as changed since.
    pub fn find(&self, keys: &[ApiKey], given: &str) -> Option<ApiKey> {
        let changes = self.lock();
        if changes.revoked.iter().any(|k| k == given) {
            return None;
        }
        // Follow the chain of replacements from each configured key to the one in force now.
        keys.iter().find_map(|key| {
            let mut current = key.key.as_str();
            while let Some((_, new)) = changes.replaced.iter().find(|(old, _)| old == current) {
                current = new;
            }
            (current == given).then(|| ApiKey {
                key: given.to_owned(),
                ..key.clone()
            })
        })
    }
}

/// Which rows `start_time` and `end_time` select, by the time the query filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WindowMode {
    /// `start <= t <= end`: a row on a shared edge comes back in both adjacent windows.
    #[default]
    InclusiveBoth,
    /// `start <= t < end`.
    HalfOpen,
    /// `start < t <= end`: a client that asks for adjacent windows edge to edge and drops what
    /// lies at the end loses the rows on the edges.
    ExclusiveStart,
}

/// The order rows are served in. Verkada's is undocumented (ascending is the likely guess);
/// newest first is the default here, as the one a client is least likely to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// Event time ascending (`timestamp`, `created`).
    Ascending,
    /// Event time descending.
    #[default]
    Descending,
    /// Audit rows by processing time ascending (alerts by `created`).
    Processed,
}

/// How error bodies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ErrorStyle {
    /// `{"id":"0e2d","message":"Token expired","data":null}`.
    #[default]
    Json,
    /// `{'id': '0e2d', 'message': 'Token expired', 'data': None}`, as Verkada's docs print it.
    Python,
}

/// The simulator's idea of now, in Unix seconds: the system clock, or a time a test sets.
/// Clones share the same clock. (Token lifetimes and rate limits run on real time.)
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<Mutex<Option<i64>>>);

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn fixed(unix: i64) -> Self {
        Clock(Arc::new(Mutex::new(Some(unix))))
    }

    /// Fixes the clock at `unix`.
    pub fn set(&self, unix: i64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(unix);
    }

    /// Follows the system clock again.
    pub fn release(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn now(&self) -> i64 {
        let fixed = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        fixed.unwrap_or_else(system_now)
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dataset: Dataset,
    /// The keys `/token` accepts when the server starts.
    pub keys: Vec<ApiKey>,
    /// The keys in force while the server runs, for a test to revoke or replace one.
    pub keyring: Keyring,
    /// A data request that names an API key (`x-api-key`) besides its token is refused (401)
    /// unless the token was made for that key.
    pub api_key_must_match_token: bool,
    /// The region this server plays.
    pub region: Region,
    /// A key of another region is refused (401), as on the real regional hosts.
    pub region_bound_keys: bool,
    /// How long a token lasts (Verkada: 30 minutes).
    pub token_ttl: Duration,
    pub window: WindowMode,
    pub order: Order,
    /// Booleans must be exactly `true` or `false` (so Python's `False` is a 400); otherwise any
    /// case is accepted.
    pub strict_booleans: bool,
    /// `start_time` after `end_time` is a 400 (otherwise an empty result).
    pub reject_inverted_windows: bool,
    /// `page_size=0` means the default of 100 (otherwise a 400).
    pub zero_page_size_is_default: bool,
    /// An empty page has `null` instead of `[]` for its list.
    pub null_when_empty: bool,
    /// Seconds after its processing (its creation, for alerts) before a row can be seen.
    pub visibility_delay: i64,
    pub clock: Clock,
    /// Quotas per organisation over sliding windows, every route together; past one, 429.
    pub quotas: Vec<Quota>,
    /// After a 429, every request of the organisation is refused for a while (Verkada: "a 5
    /// second cooldown"); `None` for none.
    pub penalty: Option<Penalty>,
    /// Whether requests refused with 429 count against the quotas. **[G]**
    pub count_refused_requests: bool,
    /// Fault rules the server starts with (see [`crate::faults`]).
    pub faults: Vec<Fault>,
    /// Whether a 429 says how long to wait (Verkada does not document one).
    pub retry_after_on_429: bool,
    pub error_style: ErrorStyle,
    /// An unknown API key or token gets `{"id":"401","message":"Unauthorized"}` rather than the
    /// guessed `Missing or invalid API key` / `Invalid token` (Verkada documents neither; an
    /// expired token's `Token expired` is documented and always sent).
    pub terse_auth_errors: bool,
}

impl Config {
    /// Verkada's cooldown: every request in the 5 seconds after a 429 is refused too.
    pub fn verkada_cooldown() -> Penalty {
        Penalty::block(Duration::from_secs(5))
    }

    /// Every unknown resolved against the client: Verkada's quotas and cooldown, refused
    /// requests counting, a cooldown that starts over when the client comes back early, no
    /// `Retry-After`, terse 401s, and tokens bound to their key.
    pub fn pessimistic() -> Self {
        Self {
            penalty: Some(Self::verkada_cooldown().early_retry(EarlyRetry::Restarts)),
            count_refused_requests: true,
            retry_after_on_429: false,
            terse_auth_errors: true,
            api_key_must_match_token: true,
            ..Self::default()
        }
    }

    /// Verkada's limits: 300 requests a minute and 25 in any 5 seconds per organisation.
    pub fn verkada_quotas() -> Vec<Quota> {
        vec![
            Quota {
                requests: 300,
                per: Duration::from_secs(60),
            },
            Quota {
                requests: 25,
                per: Duration::from_secs(5),
            },
        ]
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dataset: Dataset::generate(DEFAULT_START, 24, 8, 600, 7),
            keys: vec![ApiKey::new(DEFAULT_API_KEY, Region::Au)],
            keyring: Keyring::default(),
            api_key_must_match_token: true,
            region: Region::Au,
            region_bound_keys: true,
            token_ttl: Duration::from_secs(1800),
            window: WindowMode::default(),
            order: Order::default(),
            strict_booleans: true,
            reject_inverted_windows: true,
            zero_page_size_is_default: true,
            null_when_empty: true,
            visibility_delay: 0,
            clock: Clock::system(),
            quotas: Config::verkada_quotas(),
            penalty: Some(Config::verkada_cooldown()),
            count_refused_requests: false,
            faults: Vec::new(),
            retry_after_on_429: false,
            error_style: ErrorStyle::default(),
            terse_auth_errors: false,
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
    pub port: u16,
    /// Start of the generated data: YYYY-MM-DD (midnight UTC) or Unix seconds (rounded down to a
    /// quarter hour)
    #[arg(long, default_value = "2025-09-16", value_parser = parse_start)]
    pub start: i64,
    /// Hours of generated data
    #[arg(long, default_value_t = 6)]
    pub hours: u32,
    /// Audit rows (and alerts) per quarter hour, the first exactly on it
    #[arg(long, default_value_t = 8)]
    pub per_quarter: u32,
    /// Longest time between an event and the end of its processing, in seconds
    #[arg(long, default_value_t = 600)]
    pub processing_lag: i64,
    /// Seed of the generated data (and of --fail-rate)
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The API key /token accepts
    #[arg(long, default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// The region this server plays; the key belongs to it
    #[arg(long, value_enum, default_value_t = Region::Au)]
    pub region: Region,
    /// How long a token lasts, in seconds
    #[arg(long, default_value_t = 1800)]
    pub token_ttl: u64,
    /// Which edges of start_time..end_time a window includes
    #[arg(long, value_enum, default_value_t)]
    pub window: WindowMode,
    /// Order of the rows
    #[arg(long, value_enum, default_value_t)]
    pub order: Order,
    /// Accept booleans in any case (True, FALSE); by default only true/false, else 400
    #[arg(long)]
    pub lenient_booleans: bool,
    /// Answer an empty page to start_time > end_time instead of 400
    #[arg(long)]
    pub accept_inverted_windows: bool,
    /// Reject page_size=0 with 400 instead of using the default of 100
    #[arg(long)]
    pub reject_zero_page_size: bool,
    /// Answer [] instead of null for an empty page
    #[arg(long)]
    pub empty_lists: bool,
    /// Seconds after processing before a row can be seen
    #[arg(long, default_value_t = 0)]
    pub visibility_delay: i64,
    /// Fix the simulator's clock at these Unix seconds (default: the system clock)
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,
    /// Quota per organisation, e.g. 25/5s (repeatable; default Verkada's 300/60s and 25/5s)
    #[arg(long = "quota", value_name = "N/DURATION", value_parser = parse_quota)]
    pub quotas: Vec<Quota>,
    /// No rate limit at all
    #[arg(long)]
    pub no_rate_limit: bool,
    /// Seconds of the cooldown after a 429 (0 for none)
    #[arg(long, default_value_t = 5)]
    pub cooldown: u64,
    /// Count requests refused with 429 against the quotas
    #[arg(long)]
    pub count_refused: bool,
    #[command(flatten)]
    pub strictness: Strictness,
    /// Add Retry-After to 429s
    #[arg(long)]
    pub retry_after: bool,
    /// Error bodies written the way Verkada's docs print them (Python style)
    #[arg(long)]
    pub python_errors: bool,
    /// Answer an unknown key or token with a bare "Unauthorized"
    #[arg(long)]
    pub terse_auth_errors: bool,
    /// Share of requests (0 to 1) that fail with 500, 502, 503 or 504
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub fail_rate: Option<f64>,
    /// Write every generated audit row to FILE, one JSON object a line
    #[arg(long, value_name = "FILE")]
    pub audit_truth: Option<PathBuf>,
    /// Write every generated camera alert to FILE, one JSON object a line
    #[arg(long, value_name = "FILE")]
    pub alerts_truth: Option<PathBuf>,
}

fn parse_start(text: &str) -> Result<i64, String> {
    let unix = match text.parse::<i64>() {
        Ok(unix) => unix,
        Err(_) => crate::timefmt::parse_date(text)
            .ok_or_else(|| format!("`{text}` is neither a date YYYY-MM-DD nor Unix seconds"))?,
    };
    Ok(unix - unix.rem_euclid(QUARTER))
}

impl Args {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Config {
        let dataset = Dataset::generate(
            self.start,
            self.hours * 4,
            self.per_quarter,
            self.processing_lag,
            self.seed,
        );
        let quotas = if self.no_rate_limit {
            Vec::new()
        } else if self.quotas.is_empty() {
            Config::verkada_quotas()
        } else {
            self.quotas.clone()
        };
        Config {
            dataset,
            keys: vec![ApiKey::new(&self.api_key, self.region)],
            keyring: Keyring::default(),
            api_key_must_match_token: true,
            region: self.region,
            region_bound_keys: true,
            token_ttl: Duration::from_secs(self.token_ttl.max(1)),
            window: self.window,
            order: self.order,
            strict_booleans: !self.lenient_booleans,
            reject_inverted_windows: !self.accept_inverted_windows,
            zero_page_size_is_default: !self.reject_zero_page_size,
            null_when_empty: !self.empty_lists,
            visibility_delay: self.visibility_delay.max(0),
            clock: self.now.map_or_else(Clock::system, Clock::fixed),
            quotas,
            penalty: (self.cooldown > 0).then(|| {
                Penalty::block(Duration::from_secs(self.cooldown))
                    .early_retry(self.strictness.early_retry)
            }),
            count_refused_requests: self.count_refused,
            faults: self.strictness.faults(
                self.seed,
                Action::json(
                    429,
                    &serde_json::json!({"id": "429", "message": "Too Many Requests", "data": null}),
                ),
                Action::json(
                    500,
                    &serde_json::json!({"id": "500", "message": "Internal Server Error", "data": null}),
                ),
            ),
            retry_after_on_429: self.retry_after,
            error_style: if self.python_errors {
                ErrorStyle::Python
            } else {
                ErrorStyle::Json
            },
            terse_auth_errors: self.terse_auth_errors,
        }
    }
}

/// Serves the simulator until the process is stopped.
pub async fn serve(args: Args) -> anyhow::Result<()> {
    let config = args.config();
    for (path, lines) in [
        (&args.audit_truth, config.dataset.audit_json_lines()),
        (&args.alerts_truth, config.dataset.alerts_json_lines()),
    ] {
        if let Some(path) = path {
            std::fs::write(path, lines)
                .with_context(|| format!("cannot write the ground truth to {}", path.display()))?;
        }
    }
    let faults = config.faults.clone();
    let server = server::start_on(router(config), args.port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    server.faults().extend(faults);
    if let Some(rate) = args.fail_rate {
        // A quarter of the failures each: a JSON 500 and a gateway's HTML 502, 503 and 504.
        let share = rate / 4.0;
        server.faults().extend([
            Fault::with_probability(
                share,
                args.seed,
                Action::json(
                    500,
                    &serde_json::json!({"id": "500", "message": "Internal Server Error", "data": null}),
                ),
            ),
            Fault::with_probability(share / (1.0 - share), args.seed + 1, Action::html(502)),
            Fault::with_probability(
                share / (1.0 - 2.0 * share),
                args.seed + 2,
                Action::html(503),
            ),
            Fault::with_probability(
                share / (1.0 - 3.0 * share),
                args.seed + 3,
                Action::html(504),
            ),
        ]);
    }
    server.serve_until_stopped().await
}
