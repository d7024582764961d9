//! `trawl-simulator`: serves a vendor simulator on 127.0.0.1 for demos and manual testing.
//!
//! Prints `listening on http://127.0.0.1:PORT` on stdout once ready, logs requests on stderr, and
//! runs until interrupted or terminated.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::flags::{Strictness, parse_quota, parse_rate};
use trawl_simulators::ratelimit::{Penalty, Quota};
use trawl_simulators::server;
use trawl_simulators::timefmt::parse_date;
use trawl_simulators::workvivo::{self, Dataset, Order, Retention, WindowMode};

#[derive(Parser)]
#[command(
    name = "trawl-simulator",
    version,
    about = "Serves a local simulator of a vendor's API"
)]
struct Cli {
    #[command(subcommand)]
    vendor: Vendor,
}

#[derive(Subcommand)]
enum Vendor {
    /// The Workvivo SIEM API: GET /v1/siem/{from}/{to}
    Workvivo(WorkvivoArgs),
    /// Trend Vision One v3.0: search (detections, endpoint activities) and workbench alerts
    VisionOne(trawl_simulators::vision_one::Args),
    /// Yandex 360 audit logs: /security/v1/org/{orgId}/audit_log/{mail|disk}
    Yandex360(trawl_simulators::yandex360::Args),
    /// Verkada: POST /token, audit log and camera alerts
    Verkada(trawl_simulators::verkada::Args),
}

#[derive(Args)]
struct WorkvivoArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// First day of the generated events (UTC, YYYY-MM-DD)
    #[arg(long, default_value = "2024-09-01", value_parser = parse_day)]
    start: i64,
    /// Number of days of events
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// Events a generated hour holds (at least one, exactly on the hour)
    #[arg(long, default_value_t = 12)]
    events_per_hour: u32,
    /// Seed of the generated events (and of --fail-rate)
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Bearer token the API accepts
    #[arg(long, default_value = "sim-token")]
    token: String,
    /// Organisation id expected in the Workvivo-Id header
    #[arg(long, default_value = "sim-org")]
    org: String,
    /// Windows are [from, to) instead of [from, to]
    #[arg(long)]
    half_open: bool,
    /// Return newest events first
    #[arg(long)]
    descending: bool,
    /// Cap rows per response and page with ?skip=&take=
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
    /// Answer 429 past N requests a minute per token
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<u32>,
    /// Answer 429 past N requests in any window of a duration, e.g. 5/1s or 100/60s (repeatable)
    #[arg(long = "quota", value_name = "N/DURATION", value_parser = parse_quota)]
    quotas: Vec<Quota>,
    /// Enforce the quota Workvivo does not publish, guessed as 60 a minute per token
    #[arg(long)]
    undeclared_quota: bool,
    /// Leave Retry-After out of rate-limited 429s
    #[arg(long)]
    no_retry_after: bool,
    /// Answer rate-limited requests with a bare 429: no body, no Retry-After, no X-RateLimit-*
    #[arg(long)]
    bare_429: bool,
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
    /// Reject windows longer than N days with 400
    #[arg(long, value_name = "N")]
    max_window_days: Option<u32>,
    /// Share of requests (0 to 1) that fail with 500 and an HTML body
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    fail_rate: Option<f64>,
    /// Write every generated event to FILE, one JSON object a line
    #[arg(long, value_name = "FILE")]
    ground_truth: Option<PathBuf>,
}

fn parse_day(text: &str) -> Result<i64, String> {
    parse_date(text).ok_or_else(|| format!("`{text}` is not a date of the form YYYY-MM-DD"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cli.vendor {
        Vendor::Workvivo(args) => run_workvivo(args).await,
        Vendor::VisionOne(args) => trawl_simulators::vision_one::serve(args).await,
        Vendor::Yandex360(args) => trawl_simulators::yandex360::serve(args).await,
        Vendor::Verkada(args) => trawl_simulators::verkada::serve(args).await,
    }
}

async fn run_workvivo(args: WorkvivoArgs) -> anyhow::Result<()> {
    let dataset = Dataset::generate(args.start, args.days, args.events_per_hour, args.seed);
    if let Some(path) = &args.ground_truth {
        std::fs::write(path, dataset.to_json_lines())
            .with_context(|| format!("cannot write the ground truth to {}", path.display()))?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let config = workvivo::Config {
        dataset,
        token: args.token,
        org_id: args.org,
        window: if args.half_open {
            WindowMode::HalfOpen
        } else {
            WindowMode::InclusiveBoth
        },
        order: if args.descending {
            Order::Descending
        } else {
            Order::Ascending
        },
        max_rows: args.max_rows,
        rate_limit_per_minute: args.rate_limit_per_minute,
        quotas: if args.undeclared_quota {
            let mut quotas = args.quotas;
            quotas.push(workvivo::undeclared_quota());
            quotas
        } else {
            args.quotas
        },
        retry_after_on_429: !args.no_retry_after,
        bare_429: args.bare_429,
        penalty: args.penalty.map(|secs| {
            Penalty::block(std::time::Duration::from_secs(secs))
                .early_retry(args.strictness.early_retry)
        }),
        count_refused_requests: args.count_refused,
        faults: args.strictness.faults(
            args.seed,
            Action::json(429, &serde_json::json!({"message": "Too Many Attempts."})),
            Action::html(500),
        ),
        retention: args.retention_days.map(|days| Retention {
            days,
            now_unix: i64::try_from(now).unwrap_or(i64::MAX),
        }),
        max_window_days: args.max_window_days,
        unscoped_tokens: Vec::new(),
    };

    let faults = config.faults.clone();
    let server = server::start_on(workvivo::router(config), args.port)
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
