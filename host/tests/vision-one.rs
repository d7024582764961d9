//! The real `vision-one.wasm`, run by the `trawl` binary against the bundled Trend Vision One
//! simulator. The simulator's dataset is the ground truth: the output must hold each of its
//! records in the requested range (and matching the query) exactly once, in event-time order.
//!
//! Unless a test says otherwise, the simulator makes every unknown the hard way: windows
//! inclusive at both ends, newest first, short and empty pages with a `nextLink`, a running
//! performance search that hands out the same `nextLink` again, a 100-a-minute quota per token
//! that counts refused requests, and 429s without `Retry-After`.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;
use support::{column, rows, run_to_end, stderr};
use tempfile::TempDir;
use trawl_simulators::RunningServer;
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::ratelimit::Quota;
use trawl_simulators::vision_one::{
    self, Config, DEFAULT_START, Dataset, Order, Stream, WindowMode, error_action,
    too_many_requests,
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// The seed's filter, as its config.yaml has it.
const SEED_QUERY: &str = "productCode:PTP AND act:Block";
/// The columns the seed script wrote, in its order.
const SEED_COLUMNS: [&str; 34] = [
    "aggregatedCount",
    "endpointIp",
    "deviceGUID",
    "app",
    "subRuleId",
    "act",
    "ruleUuid",
    "logReceivedTime",
    "overSsl",
    "rt",
    "spt",
    "productCode",
    "category",
    "policyId",
    "uuid",
    "eventTimeDT",
    "src",
    "cves",
    "eventTime",
    "interestedIp",
    "eventSourceType",
    "pname",
    "rt_utc",
    "searchDL",
    "severity",
    "dvchost",
    "pver",
    "ruleName",
    "eventName",
    "dst",
    "dpt",
    "mpname",
    "logKey",
    "filterRiskLevel",
];

/// A working folder with a `.env` and a simulator to talk to.
struct Setup {
    dir: TempDir,
    simulator: RunningServer,
    dataset: Dataset,
}

impl Setup {
    /// `.env` gets the token and a match-everything query.
    async fn new(config: Config) -> Self {
        let dataset = config.dataset.clone();
        let simulator = vision_one::start(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup {
            dir,
            simulator,
            dataset,
        };
        setup.env("V1_API_TOKEN=sim-token\nV1_QUERY_FILTER=\"*\"\n");
        setup
    }

    fn env(&self, text: &str) {
        std::fs::write(self.dir.path().join(".env"), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        self.simulator.base_url()
    }

    /// `trawl run vision-one <args>`, granted the simulator, with `base_url` pointing at it.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.bare_command(args);
        command.args(["--param", &format!("base_url={}", self.url())]);
        command
    }

    /// The same, without `base_url` (for a `.env` that names the endpoint).
    fn bare_command(&self, args: &[&str]) -> std::process::Command {
        support::run_command(self.dir.path(), "vision-one", &self.url(), args)
    }

    async fn run(&self, args: &[&str]) -> Output {
        run_to_end(self.command(args)).await
    }

    /// Ids of `stream` records with `from <= time < to` (Unix seconds) that `keep` accepts, in
    /// (event time, id) order.
    fn expected(
        &self,
        stream: Stream,
        from: i64,
        to: i64,
        keep: impl Fn(&Value) -> bool,
    ) -> Vec<String> {
        self.dataset
            .between(stream, from * 1000, to * 1000)
            .into_iter()
            .filter(|item| keep(&item.json))
            .map(|item| item.id.clone())
            .collect()
    }

    /// Requests the simulator received for `path` (control routes excepted).
    fn requests_to(&self, path: &str) -> Vec<trawl_simulators::RequestLogEntry> {
        self.simulator
            .requests()
            .into_iter()
            .filter(|request| request.path.starts_with(path))
            .collect()
    }
}

fn all(_: &Value) -> bool {
    true
}

/// A query parameter of a logged request, as sent (not decoded).
fn param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let query = path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn is_api_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detections_are_written_once_each_in_event_time_order() {
    // Twelve hours of 90+ detections an hour, 50 a page: every window takes several pages, one of
    // them empty. Hard way first, then the easy way: the output must be the same.
    let hard = Config {
        dataset: Dataset::generate(DEFAULT_START, 1, 90, 7),
        ..Config::default()
    };
    let easy = Config {
        window: WindowMode::HalfOpen,
        order: Order::Ascending,
        short_pages: false,
        ..hard.clone()
    };
    for (config, hard) in [(hard, true), (easy, false)] {
        let setup = Setup::new(config).await;
        let output = setup
            .run(&[
                "2024-10-20T00:00:00Z",
                "2024-10-20T12:00:00Z",
                "--param",
                "top=50",
            ])
            .await;
        assert!(output.status.success(), "{}", stderr(&output));

        let expected = setup.expected(
            Stream::Detections,
            DEFAULT_START,
            DEFAULT_START + 12 * HOUR,
            all,
        );
        let written = column(&setup.path("detections.csv"), "uuid");
        assert_eq!(written, expected);
        // The awkward instants are all there: on every edge, and in the last half second and
        // millisecond of every hour.
        let times: Vec<i64> = column(&setup.path("detections.csv"), "eventTime")
            .iter()
            .map(|time| time.parse().unwrap())
            .collect();
        for hour in 0..12 {
            let edge = (DEFAULT_START + hour * HOUR) * 1000;
            for at in [edge, edge + 3_599_500, edge + 3_599_999] {
                assert!(times.contains(&at), "{at}");
            }
        }
        assert!(times.is_sorted());
        assert_eq!(
            times
                .iter()
                .filter(|&&at| at == (DEFAULT_START + 2 * HOUR) * 1000)
                .count(),
            3
        );

        let requests = setup.requests_to("/v3.0/search/detections");
        assert!(requests.iter().all(|request| request.status == 200));
        // Hard: 50, 25, then an empty page, then the rest; easy: full pages.
        let least = if hard { 12 * 4 } else { 12 * 2 };
        assert!(requests.len() >= least, "{} requests", requests.len());
        for request in &requests {
            assert_eq!(request.header("tmv1-query"), Some("*"), "{}", request.path);
            assert_eq!(request.header("authorization"), Some("Bearer sim-token"));
            match param(&request.path, "skipToken") {
                // A nextLink, followed as given.
                Some(_) => assert!(request.path.starts_with("/v3.0/search/detections?top=50&")),
                None => {
                    let start = param(&request.path, "startDateTime").unwrap();
                    let end = param(&request.path, "endDateTime").unwrap();
                    assert!(is_api_date(start) && is_api_date(end), "{}", request.path);
                    assert_eq!(param(&request.path, "top"), Some("50"));
                    assert_eq!(param(&request.path, "mode"), Some("default"));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_mode_polls_through_empty_pages_until_progress_100() {
    for repeat in [true, false] {
        let config = Config {
            dataset: Dataset::generate(DEFAULT_START, 1, 12, 3),
            performance_empty_pages: 3,
            repeat_next_link_while_searching: repeat,
            ..Config::default()
        };
        let setup = Setup::new(config).await;
        let output = setup
            .run(&[
                "2024-10-20T00:00:00Z",
                "2024-10-20T06:00:00Z",
                "--param",
                "mode=performance",
            ])
            .await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            column(&setup.path("detections.csv"), "uuid"),
            setup.expected(
                Stream::Detections,
                DEFAULT_START,
                DEFAULT_START + 6 * HOUR,
                all
            )
        );
        // Per window: the search, three polls while it runs (the empty pages), and only then
        // the page with the records.
        let requests = setup.requests_to("/v3.0/search/detections");
        assert_eq!(requests.len(), 6 * 4);
        let first_pages = requests
            .iter()
            .filter(|request| param(&request.path, "skipToken").is_none())
            .count();
        assert_eq!(first_pages, 6);
        for request in &requests {
            assert!(!request.path.contains('#'), "{}", request.path);
            assert_eq!(param(&request.path, "top"), None, "{}", request.path);
        }
        let distinct: std::collections::HashSet<&str> = requests
            .iter()
            .map(|request| request.path.as_str())
            .collect();
        if repeat {
            // The same link, asked for again until the search is done.
            assert_eq!(distinct.len(), 6 * 2);
        } else {
            assert_eq!(distinct.len(), 6 * 4);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_activities_are_paged_through_exactly_once() {
    let config = Config {
        // 90 activities an hour.
        dataset: Dataset::generate(DEFAULT_START, 1, 180, 9),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T12:00:00Z",
            "--stream",
            "endpoint-activities",
            "--param",
            "top=50",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let file = setup.path("endpoint_activities.csv");
    assert_eq!(
        column(&file, "uuid"),
        setup.expected(
            Stream::EndpointActivities,
            DEFAULT_START,
            DEFAULT_START + 12 * HOUR,
            all
        )
    );
    let (header, rows) = rows(&file);
    assert_eq!(
        header[..4],
        ["eventTime", "eventTimeDT", "uuid", "endpointHostName"]
    );
    // Lists of plain values are joined with commas; a command line with quotes, commas and a
    // line break survives the CSV round trip.
    assert!(rows.iter().any(|row| row["processCmd"].contains("\"a,b\"")));
    assert!(rows.iter().any(|row| row["processCmd"].contains('\n')));
    let requests = setup.requests_to("/v3.0/search/endpointActivities");
    assert!(requests.len() >= 12 * 2);
    assert!(requests.iter().all(|request| request.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbench_alerts_are_paged_filtered_and_flattened() {
    let config = Config {
        // Six alerts an hour (two of them in one second every fourth hour), four a page.
        dataset: Dataset::generate(DEFAULT_START, 1, 24, 5),
        alert_page_size: 4,
        quotas: Vec::new(),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    let filter = "severity eq 'high' or severity eq 'critical' or status eq 'Open'";
    let keep = |alert: &Value| {
        matches!(alert["severity"].as_str(), Some("high" | "critical")) || alert["status"] == "Open"
    };
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T12:00:00Z",
            "--stream",
            "workbench-alerts",
            "--param",
            &format!("alert_filter={filter}"),
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let file = setup.path("workbench_alerts.csv");
    let expected = setup.expected(
        Stream::WorkbenchAlerts,
        DEFAULT_START,
        DEFAULT_START + 12 * HOUR,
        keep,
    );
    assert!(expected.len() > 12 * 2);
    assert_eq!(column(&file, "id"), expected);
    let (header, rows) = rows(&file);
    assert_eq!(
        header[..4],
        ["id", "createdDateTime", "updatedDateTime", "severity"]
    );
    // Nested objects become dotted columns; lists of objects stay JSON.
    assert!(header.contains(&"impactScope.desktopCount".to_string()));
    assert!(
        rows.iter()
            .all(|row| row["impactScope.desktopCount"] == "1")
    );
    assert!(rows.iter().all(|row| row["indicators"].starts_with("[{")));
    let requests = setup.requests_to("/v3.0/workbench/alerts");
    assert!(requests.len() > 12, "{}", requests.len());
    for request in &requests {
        assert_eq!(request.header("tmv1-filter"), Some(filter));
        assert_eq!(request.header("tmv1-query"), None);
        if param(&request.path, "skipToken").is_none() {
            assert_eq!(
                param(&request.path, "dateTimeTarget"),
                Some("createdDateTime")
            );
        }
    }

    // By last update instead: the event time is updatedDateTime.
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T12:00:00Z",
            "--stream",
            "workbench-alerts",
            "--param",
            "date_time_target=updatedDateTime",
            "--output",
            "updated.csv",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let mut updated: Vec<(i64, String)> = setup
        .dataset
        .alerts
        .iter()
        .filter_map(|alert| Some((alert.date_ms("updatedDateTime")?, alert.id.clone())))
        .filter(|(at, _)| (DEFAULT_START * 1000..(DEFAULT_START + 12 * HOUR) * 1000).contains(at))
        .collect();
    updated.sort();
    assert_eq!(
        column(&setup.path("updated.csv"), "id"),
        updated.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_users_get_the_seed_file() {
    let config = Config {
        dataset: Dataset::generate(DEFAULT_START, 3, 12, 7),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    // The seed's config.yaml, line for line, in .env: the endpoint as the seed wrote it.
    setup.env(&format!(
        "V1_API_TOKEN=sim-token\n\
         V1_API_ENDPOINT={}/v3.0/search/detections\n\
         V1_QUERY_FILTER=\"{SEED_QUERY}\"\n\
         V1_RESULTS_PER_CALL=5000\n",
        setup.url()
    ));
    let output = run_to_end(setup.bare_command(&["2024-10-20", "2024-10-21"])).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let file = setup.path("detections.csv");
    let (header, rows) = rows(&file);
    assert_eq!(header[..SEED_COLUMNS.len()], SEED_COLUMNS);
    // Every other field too, not only the seed's list.
    for field in ["tags", "shost"] {
        assert!(
            header[SEED_COLUMNS.len()..].contains(&field.to_string()),
            "{header:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|row| row["tags"] == "XSAE.F7425,MITRE.T1190")
    );
    // The seed's filter: TippingPoint detections with a Block action (partial, any case).
    let expected = setup.expected(
        Stream::Detections,
        DEFAULT_START,
        DEFAULT_START + 2 * DAY,
        seed_match,
    );
    assert_eq!(
        rows.iter()
            .map(|row| row["uuid"].clone())
            .collect::<Vec<_>>(),
        expected
    );
    // The whole last day, up to its last hour.
    let last: i64 = rows.last().unwrap()["eventTime"].parse().unwrap();
    assert!(last >= (DEFAULT_START + 2 * DAY - HOUR) * 1000, "{last}");
    // Lists joined with commas.
    assert!(rows.iter().any(|row| row["act"] == "Block,Notify"));
    assert!(rows.iter().all(|row| row["productCode"] == "ptp"));

    let requests = setup.requests_to("/v3.0/search/detections");
    assert_eq!(requests.len(), 48);
    for request in &requests {
        assert_eq!(request.header("tmv1-query"), Some(SEED_QUERY));
        assert_eq!(param(&request.path, "top"), Some("5000"));
    }
}

/// A refusal is not asked again: no request repeats another. The host may have started a few
/// more windows (one request each) before the refusal stops the run: its scheduler frees a
/// worker as soon as a window fails and runs at most `4 * workers` windows ahead.
fn assert_not_retried(requests: &[trawl_simulators::RequestLogEntry]) {
    assert!((1..=6).contains(&requests.len()), "{requests:?}");
    let paths: std::collections::HashSet<&str> = requests
        .iter()
        .map(|request| request.path.as_str())
        .collect();
    assert_eq!(
        paths.len(),
        requests.len(),
        "a refused request was sent again"
    );
}

/// The seed's query as the simulator reads it.
fn seed_match(detection: &Value) -> bool {
    let product = detection["productCode"].as_str().unwrap_or("");
    let blocked = detection["act"].as_array().is_some_and(|acts| {
        acts.iter()
            .any(|act| act.as_str().unwrap_or("").to_lowercase().contains("block"))
    });
    product.to_lowercase().contains("ptp") && blocked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_error_without_the_token() {
    let setup = Setup::new(Config::default()).await;
    setup.env("V1_API_TOKEN=wrong-token-123\nV1_QUERY_FILTER=\"*\"\n");
    let output = setup
        .run(&["2024-10-20", "2024-10-20", "--workers", "1"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("V1_API_TOKEN"), "{message}");
    assert!(!message.contains("wrong-token-123"), "{message}");
    // Not retried: one request, then a stop. The token reached the simulator only through the
    // host's substitution.
    let requests = setup.simulator.requests();
    assert_not_retried(&requests);
    assert!(
        requests
            .iter()
            .all(|request| request.header("authorization") == Some("Bearer wrong-token-123"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_search_permission_is_a_clear_error() {
    let setup = Setup::new(Config {
        no_search_tokens: vec!["alerts-only".into()],
        ..Config::default()
    })
    .await;
    setup.env("V1_API_TOKEN=alerts-only\nV1_QUERY_FILTER=\"*\"\n");
    let output = setup
        .run(&["2024-10-20", "2024-10-20", "--workers", "1"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("403") && message.contains("Search"),
        "{message}"
    );
    assert!(message.contains("V1_API_TOKEN"), "{message}");
    assert!(!message.contains("alerts-only"), "{message}");
    assert_not_retried(&setup.simulator.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_query_is_reported_with_the_vendors_message() {
    let setup = Setup::new(Config::default()).await;
    setup.env("V1_API_TOKEN=sim-token\nV1_QUERY_FILTER=\"productCode:PTP act:Block\"\n");
    let output = setup
        .run(&["2024-10-20", "2024-10-20", "--workers", "1"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("400"), "{message}");
    assert!(message.contains("Invalid TMV1-Query"), "{message}");
    assert!(message.contains("V1_QUERY_FILTER"), "{message}");
    // A 400 is not asked again.
    assert_not_retried(&setup.simulator.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_fail_before_any_request() {
    let setup = Setup::new(Config::default()).await;
    // The seed set `top` to whatever was left; the API takes only five values.
    setup.env("V1_API_TOKEN=sim-token\nV1_QUERY_FILTER=\"*\"\nV1_RESULTS_PER_CALL=2000\n");
    let output = setup.run(&["2024-10-20", "2024-10-20"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("top") && message.contains("5000"),
        "{message}"
    );

    // The search streams need a query.
    setup.env("V1_API_TOKEN=sim-token\n");
    let output = setup.run(&["2024-10-20", "2024-10-20"]).await;
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("V1_QUERY_FILTER"), "{message}");
    assert!(setup.simulator.requests().is_empty());

    // The alerts stream does not.
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T02:00:00Z",
            "--stream",
            "workbench-alerts",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_kept_without_a_single_429() {
    // The seed's rate_limit_per_second, scaled so that the test stays short: the simulator
    // enforces 4 requests in any second and counts refused requests, without Retry-After.
    let config = Config {
        dataset: Dataset::generate(DEFAULT_START, 1, 12, 1),
        quotas: vec![Quota {
            requests: 4,
            per: Duration::from_secs(1),
        }],
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T16:00:00Z",
            "--rate-limit",
            "4/s",
            "--workers",
            "8",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = setup.simulator.requests();
    assert_eq!(requests.len(), 16);
    assert!(requests.iter().all(|request| request.status == 200));
    let span = requests.last().unwrap().received_at - requests[0].received_at;
    assert!(span >= Duration::from_millis(2950), "{span:?}");
    assert_eq!(
        column(&setup.path("detections.csv"), "uuid"),
        setup.expected(
            Stream::Detections,
            DEFAULT_START,
            DEFAULT_START + 16 * HOUR,
            all
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_faults_do_not_change_the_output() {
    let config = Config {
        dataset: Dataset::generate(DEFAULT_START, 1, 90, 13),
        quotas: Vec::new(),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    setup.simulator.faults().extend([
        Fault::with_probability(0.05, 1, too_many_requests(None)),
        Fault::with_probability(0.03, 2, too_many_requests(Some(1))),
        Fault::with_probability(
            0.04,
            3,
            error_action(500, "InternalServerError", "Internal server error"),
        ),
        Fault::with_probability(0.03, 4, Action::html(502)),
        Fault::with_probability(0.03, 5, Action::html(503)),
        Fault::with_probability(0.04, 6, Action::TruncatedBody),
        Fault::with_probability(0.03, 7, Action::ResetConnection),
    ]);
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T08:00:00Z",
            "--param",
            "top=50",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        column(&setup.path("detections.csv"), "uuid"),
        setup.expected(
            Stream::Detections,
            DEFAULT_START,
            DEFAULT_START + 8 * HOUR,
            all
        )
    );
    let failed = setup
        .simulator
        .requests()
        .iter()
        .filter(|request| request.status != 200)
        .count();
    assert!(failed >= 3, "only {failed} requests failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_window_resumes_from_its_saved_next_link() {
    let config = Config {
        dataset: Dataset::generate(DEFAULT_START, 1, 90, 17),
        quotas: Vec::new(),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    // Every nextLink fails for good: the first run stops after the first page of a window.
    setup.simulator.faults().push(Fault::on_path(
        "skipToken=",
        error_action(500, "InternalServerError", "Internal server error"),
    ));
    support::write_few_retries_config(setup.dir.path());
    let args = [
        "2024-10-20T00:00:00Z",
        "2024-10-20T04:00:00Z",
        "--param",
        "top=50",
        "--workers",
        "1",
        "--config",
        "trawl.ron",
    ];
    let first = setup.run(&args).await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("InternalServerError"),
        "{}",
        stderr(&first)
    );
    let first_requests = setup.simulator.requests().len();
    let started: Vec<String> = setup
        .simulator
        .requests()
        .iter()
        .filter(|request| param(&request.path, "skipToken").is_none())
        .map(|request| request.path.clone())
        .collect();
    // One window (two when the host started the next before the failure stopped the run).
    assert!((1..=2).contains(&started.len()), "{started:?}");

    setup.simulator.faults().clear();
    let second = setup.run(&args).await;
    assert!(second.status.success(), "{}", stderr(&second));
    let rerun = &setup.simulator.requests()[first_requests..];
    // The rerun goes on with the saved link; the window's first page is not asked again.
    assert!(
        param(&rerun[0].path, "skipToken").is_some(),
        "{}",
        rerun[0].path
    );
    assert!(rerun.iter().all(|request| !started.contains(&request.path)));
    assert_eq!(
        column(&setup.path("detections.csv"), "uuid"),
        setup.expected(
            Stream::Detections,
            DEFAULT_START,
            DEFAULT_START + 4 * HOUR,
            all
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_continues_a_seed_file_after_its_newest_record() {
    // Detections up to now, so that a run without a range (up to the last whole hour before now
    // less the lag) has data.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - now % HOUR - 8 * HOUR;
    let config = Config {
        dataset: Dataset::generate(start, 1, 12, 21),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    // What the seed script wrote: its columns, up to a detection three hours in.
    let newest = (start + 3 * HOUR) * 1000;
    let seed_rows: Vec<&trawl_simulators::vision_one::Item> = setup
        .dataset
        .detections
        .iter()
        .filter(|item| item.time_ms <= newest)
        .collect();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_path(setup.path("detections.csv"))
        .unwrap();
    writer.write_record(SEED_COLUMNS).unwrap();
    for item in &seed_rows {
        writer
            .write_record(SEED_COLUMNS.iter().map(|field| {
                match &item.json[*field] {
                    Value::Null => String::new(),
                    Value::String(text) => text.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|item| {
                            item.as_str()
                                .map_or_else(|| item.to_string(), str::to_string)
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                }
            }))
            .unwrap();
    }
    writer.flush().unwrap();
    drop(writer);

    // Incremental runs end on a whole quarter hour, ten minutes (the lag) before now.
    let end_of = |now: i64| {
        let cut = now - 10 * 60;
        cut - cut.rem_euclid(15 * 60)
    };
    let end_before = end_of(now);
    let output = setup.run(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let written = column(&setup.path("detections.csv"), "uuid");
    let matches_end = |end: i64| {
        let mut expected: Vec<String> = seed_rows.iter().map(|item| item.id.clone()).collect();
        expected.extend(
            setup
                .dataset
                .between(Stream::Detections, newest + 1, end * 1000)
                .into_iter()
                .map(|item| item.id.clone()),
        );
        written == expected
    };
    assert!(
        matches_end(end_before) || matches_end(end_of(after)),
        "{} rows written",
        written.len()
    );
    // Nothing before the seed file's newest record was asked for.
    for request in setup.requests_to("/v3.0/search/detections") {
        if let Some(from) = param(&request.path, "startDateTime") {
            let from = trawl_simulators::vision_one::parse_iso_millis(from).unwrap();
            assert!(from >= newest - newest % 1000, "{}", request.path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_on_another_origin_is_followed_on_the_configured_one() {
    // A server behind a proxy may write its links for a host trawl was never granted: the
    // connector keeps the link's path and query and stays on the configured origin.
    let config = Config {
        dataset: Dataset::generate(DEFAULT_START, 1, 90, 19),
        next_link_base: Some("https://internal.example:8443".into()),
        ..Config::default()
    };
    let setup = Setup::new(config).await;
    let output = setup
        .run(&[
            "2024-10-20T00:00:00Z",
            "2024-10-20T04:00:00Z",
            "--param",
            "top=50",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        column(&setup.path("detections.csv"), "uuid"),
        setup.expected(
            Stream::Detections,
            DEFAULT_START,
            DEFAULT_START + 4 * HOUR,
            all
        )
    );
    let requests = setup.requests_to("/v3.0/search/detections");
    assert!(
        requests
            .iter()
            .any(|request| param(&request.path, "skipToken").is_some())
    );
    assert!(requests.iter().all(|request| request.status == 200));
}
