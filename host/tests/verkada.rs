//! The real `verkada.wasm`, run by the `trawl` binary against the bundled Verkada simulator, whose
//! data is the ground truth: every row and alert of a range exactly once, in order, whatever the
//! token, the rate limit, the window edges and Verkada's processing delays do.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::verkada::{
    ALERTS_FILE, AUDIT_FILE, alert_order, assert_exactly_once_in_order, audit_order, is_token,
    json_lines, seconds,
};
use support::{run_to_end, stderr};
use tempfile::TempDir;
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::verkada::{
    self, Clock, Config, DEFAULT_API_KEY, DEFAULT_START, Dataset, ErrorStyle, INTERESTED_EVENTS,
    PROCESSED_TIMESTAMPS_FROM, QUARTER, WindowMode,
};
use trawl_simulators::{RequestLogEntry, RunningServer};

const HOUR: i64 = 3600;

/// A working folder with the seed script's `.env`, and a simulator to talk to.
struct Setup {
    dir: TempDir,
    simulator: RunningServer,
    dataset: Dataset,
}

impl Setup {
    async fn new(config: Config) -> Self {
        let dataset = config.dataset.clone();
        let simulator = verkada::start(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            format!("VERKADA_API_KEY={DEFAULT_API_KEY}\n"),
        )
        .unwrap();
        Setup {
            dir,
            simulator,
            dataset,
        }
    }

    /// Two hours of data from [`DEFAULT_START`], rows processed up to 10 minutes late.
    async fn two_hours(config: Config) -> Self {
        Self::new(Config {
            dataset: Dataset::generate(DEFAULT_START, 8, 6, 600, 7),
            ..config
        })
        .await
    }

    /// `trawl run verkada <args>`, as a seed user would type it, pointed at the simulator.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let url = self.simulator.base_url();
        let mut command = support::run_command(self.dir.path(), "verkada", &url, args);
        command.args(["--param", &format!("base_url={url}")]);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        run_to_end(self.command(args)).await
    }

    /// Runs and insists on success.
    async fn run_ok(&self, args: &[&str]) -> Output {
        let output = self.run(args).await;
        assert!(output.status.success(), "{}", stderr(&output));
        output
    }

    fn file(&self, name: &str) -> Vec<Value> {
        json_lines(&self.dir.path().join(name))
    }

    fn requests(&self) -> Vec<RequestLogEntry> {
        self.simulator.requests()
    }

    /// Both files hold every row and alert of the two hours of [`two_hours`](Self::two_hours),
    /// each once, in order.
    fn assert_two_hours_of_both_streams(&self) {
        let audit: Vec<&Value> = self
            .dataset
            .audit_processed_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
            .into_iter()
            .map(|event| &event.json)
            .collect();
        assert_exactly_once_in_order(&self.file(AUDIT_FILE), &audit, audit_order);
        let alerts: Vec<&Value> = self
            .dataset
            .alerts_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
            .into_iter()
            .map(|alert| &alert.json)
            .collect();
        assert_exactly_once_in_order(&self.file(ALERTS_FILE), &alerts, alert_order);
    }
}

fn query_param<'a>(request: &'a RequestLogEntry, name: &str) -> Option<&'a str> {
    let (_, query) = request.path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn is_audit(request: &RequestLogEntry) -> bool {
    request.path.starts_with("/core/v1/audit_log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_rows_each_once_in_window_order() {
    let setup = Setup::two_hours(Config::default()).await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    setup
        .run_ok(&[&start, &end, "--param", "page_size=4", "--workers", "4"])
        .await;

    // Everything Verkada processed in the range, each row once, by window then event time:
    // rows exactly on edges, rows sharing a timestamp, rows that happened windows earlier, and the
    // two rows only their details tell apart.
    let expected: Vec<&Value> = setup
        .dataset
        .audit_processed_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    let written = setup.file(AUDIT_FILE);
    assert_exactly_once_in_order(&written, &expected, audit_order);
    let late = written
        .iter()
        .filter(|row| {
            seconds(row, "processed_timestamp") / QUARTER > seconds(row, "timestamp") / QUARTER
        })
        .count();
    assert!(late >= 5, "{late} rows were processed after their window");
    let on_edges = written
        .iter()
        .filter(|row| seconds(row, "processed_timestamp") % QUARTER == 0)
        .count();
    assert!(
        on_edges >= 3,
        "{on_edges} rows were processed on a window edge"
    );

    // Several pages a window, with Verkada's page tokens escaped, the quota kept, booleans as
    // `true`, and one second more asked for at the start of each window.
    let requests = setup.requests();
    assert!(requests.iter().all(|request| request.status == 200));
    let audit: Vec<&RequestLogEntry> = requests.iter().filter(|r| is_audit(r)).collect();
    assert!(audit.len() > 8 * 2, "{} requests", audit.len());
    assert!(audit.iter().any(|r| query_param(r, "page_token").is_some()));
    for request in &audit {
        assert_eq!(
            query_param(request, "use_processed_timestamp"),
            Some("true")
        );
        assert_eq!(query_param(request, "page_size"), Some("4"));
        let start: i64 = query_param(request, "start_time").unwrap().parse().unwrap();
        let end: i64 = query_param(request, "end_time").unwrap().parse().unwrap();
        assert_eq!((start + 1) % QUARTER, 0);
        assert_eq!(end - start, QUARTER + 1);
        assert!(
            request
                .header("x-verkada-auth")
                .is_some_and(|t| t.len() >= 64)
        );
        assert!(request.header("x-api-key").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_alerts_each_once_even_when_the_start_is_exclusive() {
    // Verkada may leave out what lies exactly on `start_time`: a client asking for windows edge
    // to edge would lose every alert on an edge.
    let setup = Setup::two_hours(Config {
        window: WindowMode::ExclusiveStart,
        // Two runs back to back: each spaces its own requests, but trawl does not remember the
        // first run's requests in the second (the_rate_limit_is_never_exceeded covers the quota).
        quotas: Vec::new(),
        ..Config::default()
    })
    .await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    setup
        .run_ok(&[
            &start,
            &end,
            "--stream",
            "camera-alerts",
            "--param",
            "page_size=4",
        ])
        .await;
    let expected: Vec<&Value> = setup
        .dataset
        .alerts_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
        .into_iter()
        .map(|alert| &alert.json)
        .collect();
    let written = setup.file(ALERTS_FILE);
    assert_exactly_once_in_order(&written, &expected, alert_order);
    assert!(
        written
            .iter()
            .filter(|row| seconds(row, "created") % QUARTER == 0)
            .count()
            >= 8
    );
    for request in setup.requests().iter().filter(|r| !is_token(r)) {
        assert!(request.path.starts_with("/cameras/v1/alerts"));
        assert_eq!(query_param(request, "include_image_url"), Some("false"));
        assert_eq!(query_param(request, "notification_type"), None);
    }

    // Only some types: asked of Verkada, comma-separated.
    setup
        .run_ok(&[
            &start,
            &end,
            "--stream",
            "camera-alerts",
            "--output",
            "motion.jsonl",
            "--param",
            "notification_types=motion,tamper",
        ])
        .await;
    let expected: Vec<&Value> = setup
        .dataset
        .alerts_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
        .into_iter()
        .filter(|alert| matches!(alert.notification_type, "motion" | "tamper"))
        .map(|alert| &alert.json)
        .collect();
    assert!(!expected.is_empty());
    assert_exactly_once_in_order(&setup.file("motion.jsonl"), &expected, alert_order);
    let last = setup.requests().pop().unwrap();
    assert_eq!(
        query_param(&last, "notification_type"),
        Some("motion%2Ctamper")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_processed_late_are_caught_by_a_later_window() {
    // A cron job every quarter hour, 5 seconds past it, replayed on the simulator's clock: rows
    // still being processed when their quarter was read are invisible then.
    let clock = Clock::fixed(DEFAULT_START);
    let setup = Setup::two_hours(Config {
        clock: clock.clone(),
        ..Config::default()
    })
    .await;
    for (file, processed) in [("trawl.jsonl", "true"), ("by-event-time.jsonl", "false")] {
        for quarter in 1..=8 {
            let end = DEFAULT_START + quarter * QUARTER;
            clock.set(end + 5);
            let (from, to) = ((end - QUARTER).to_string(), end.to_string());
            setup
                .run_ok(&[
                    &from,
                    &to,
                    "--stream",
                    "audit-log",
                    "--output",
                    file,
                    "--param",
                    &format!("use_processed_timestamp={processed}"),
                ])
                .await;
        }
    }

    // By processing time: every row processed in the two hours, once, even those whose event
    // lies in an earlier quarter than the one that caught them.
    let expected: Vec<&Value> = setup
        .dataset
        .audit_processed_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    let written = setup.file("trawl.jsonl");
    assert_exactly_once_in_order(&written, &expected, audit_order);
    let times: Vec<i64> = written
        .iter()
        .map(|row| seconds(row, "timestamp"))
        .collect();
    assert!(!times.is_sorted(), "late rows come after later events");

    // By event time, as the seed script asked: the rows not yet processed when their quarter
    // was read are lost for good.
    let seen_by_seed: Vec<&Value> = setup
        .dataset
        .audit_between(DEFAULT_START, DEFAULT_START + 2 * HOUR)
        .into_iter()
        .filter(|event| {
            let read_at = (event.timestamp / QUARTER + 1) * QUARTER + 5;
            event.processed.unwrap() <= read_at
        })
        .map(|event| &event.json)
        .collect();
    let by_event_time = setup.file("by-event-time.jsonl");
    assert_exactly_once_in_order(&by_event_time, &seen_by_seed, |row| {
        let time = seconds(row, "timestamp");
        (time / QUARTER, time)
    });
    assert!(
        by_event_time.len() + 3 <= setup.dataset.audit.len(),
        "{} of {}",
        by_event_time.len(),
        setup.dataset.audit.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_range_takes_the_last_whole_quarter_and_the_next_goes_on() {
    // Needs the host's incremental runs to end on the max-window grid.
    let mut now = jiff::Timestamp::now().as_second();
    if now % QUARTER > QUARTER - 15 {
        // Too close to the next quarter for both runs to see the same "last whole quarter".
        tokio::time::sleep(Duration::from_secs((QUARTER - now % QUARTER + 1) as u64)).await;
        now = jiff::Timestamp::now().as_second();
    }
    let last_end = now - now % QUARTER;
    let setup = Setup::new(Config {
        dataset: Dataset::generate(last_end - 4 * QUARTER, 4, 6, 600, 3),
        ..Config::default()
    })
    .await;
    let both = ["--stream", "audit-log", "--stream", "camera-alerts"];

    // The seed's cron run: the quarter hour that ended last, nothing else.
    setup.run_ok(&both).await;
    // The windows asked for, whatever order the workers asked in.
    let windows = |requests: &[RequestLogEntry]| -> Vec<(i64, i64)> {
        let mut windows: Vec<(i64, i64)> = requests
            .iter()
            .filter(|r| is_audit(r))
            .map(|r| {
                let start: i64 = query_param(r, "start_time").unwrap().parse().unwrap();
                let end: i64 = query_param(r, "end_time").unwrap().parse().unwrap();
                (start + 1, end)
            })
            .collect();
        windows.sort();
        windows.dedup();
        windows
    };
    assert_eq!(windows(&setup.requests()), [(last_end - QUARTER, last_end)]);
    let expected: Vec<&Value> = setup
        .dataset
        .audit_processed_between(last_end - QUARTER, last_end)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &expected, audit_order);
    let alerts: Vec<&Value> = setup
        .dataset
        .alerts_between(last_end - QUARTER, last_end)
        .into_iter()
        .map(|alert| &alert.json)
        .collect();
    assert_exactly_once_in_order(&setup.file(ALERTS_FILE), &alerts, alert_order);

    // The next run reads that quarter again (for rows that became visible late) and writes none
    // of it twice.
    let before = setup.requests().len();
    let again = setup.run_ok(&both).await;
    assert_eq!(
        windows(&setup.requests()[before..]),
        [(last_end - QUARTER, last_end)]
    );
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &expected, audit_order);
    assert_exactly_once_in_order(&setup.file(ALERTS_FILE), &alerts, alert_order);
    assert!(
        stderr(&again).contains("already written"),
        "{}",
        stderr(&again)
    );

    // After missed runs, a run goes on from where the last one ended: no quarter is skipped.
    let other = Setup::new(Config {
        dataset: setup.dataset.clone(),
        ..Config::default()
    })
    .await;
    let (from, to) = (
        (last_end - 4 * QUARTER).to_string(),
        (last_end - 3 * QUARTER).to_string(),
    );
    other.run_ok(&[&from, &to]).await;
    let before = other.requests().len();
    other.run_ok(&[]).await;
    assert_eq!(
        windows(&other.requests()[before..]),
        [
            (last_end - 4 * QUARTER, last_end - 3 * QUARTER),
            (last_end - 3 * QUARTER, last_end - 2 * QUARTER),
            (last_end - 2 * QUARTER, last_end - QUARTER),
            (last_end - QUARTER, last_end),
        ]
    );
    let expected: Vec<&Value> = other
        .dataset
        .audit_processed_between(last_end - 4 * QUARTER, last_end)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    assert_exactly_once_in_order(&other.file(AUDIT_FILE), &expected, audit_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_cached_in_trawls_state_and_reused() {
    let setup = Setup::two_hours(Config::default()).await;
    let quarter = |n: i64| (DEFAULT_START + n * QUARTER).to_string();
    setup.run_ok(&[&quarter(0), &quarter(1)]).await;
    assert_eq!(setup.requests().iter().filter(|r| is_token(r)).count(), 1);
    let token = setup.requests()[0].header("x-api-key").map(String::from);
    assert_eq!(token.as_deref(), Some(DEFAULT_API_KEY));

    // The next run, and both streams, use the cached token.
    setup
        .run_ok(&[
            &quarter(1),
            &quarter(3),
            "--stream",
            "audit-log",
            "--stream",
            "camera-alerts",
        ])
        .await;
    let requests = setup.requests();
    assert_eq!(requests.iter().filter(|r| is_token(r)).count(), 1);
    assert!(requests.len() >= 5);
    let tokens: std::collections::HashSet<&str> = requests[1..]
        .iter()
        .filter_map(|r| r.header("x-verkada-auth"))
        .collect();
    assert_eq!(tokens.len(), 1);
    // Not in a file of the working folder, as the seed's token.json was.
    let names: Vec<String> = std::fs::read_dir(setup.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|name| name.contains("token")),
        "{names:?}"
    );
    let token = tokens.into_iter().next().unwrap();
    for name in &names {
        let path = setup.dir.path().join(name);
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!text.contains(token), "the token is in {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_starting_together_ask_for_one_token() {
    // Every worker's first page needs a token at once: one exchange serves them all.
    let setup = Setup::two_hours(Config::default()).await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    setup
        .run_ok(&[&start, &end, "--param", "page_size=4", "--workers", "4"])
        .await;
    let requests = setup.requests();
    assert!(requests.len() > 8, "{}", requests.len());
    assert_eq!(requests.iter().filter(|r| is_token(r)).count(), 1);
    assert!(requests.iter().all(|r| r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_belongs_to_the_key_it_was_got_with() {
    let keyring = verkada::Keyring::default();
    let setup = Setup::two_hours(Config {
        keyring: keyring.clone(),
        ..Config::default()
    })
    .await;
    let quarter = |n: i64| (DEFAULT_START + n * QUARTER).to_string();
    let with_key = |key: &str| {
        std::fs::write(
            setup.dir.path().join(".env"),
            format!("VERKADA_API_KEY={key}\n"),
        )
        .unwrap()
    };
    setup.run_ok(&[&quarter(0), &quarter(1)]).await;
    let old_token = setup
        .requests()
        .iter()
        .find_map(|r| r.header("x-verkada-auth").map(String::from))
        .unwrap();

    // The key is rotated: the next run asks for a token with the new key at once, and never
    // sends the old key's token with it.
    keyring.replace(DEFAULT_API_KEY, "rotated-key");
    with_key("rotated-key");
    let before = setup.requests().len();
    setup.run_ok(&[&quarter(1), &quarter(2)]).await;
    let second = &setup.requests()[before..];
    assert!(second.iter().all(|r| r.status == 200), "{second:?}");
    assert!(
        second
            .iter()
            .all(|r| r.header("x-verkada-auth") != Some(old_token.as_str()))
    );
    assert_eq!(
        setup.simulator.counters().key("rotated-key").token_requests,
        1
    );

    // A key Verkada does not know fails the run, naming the variable, however fresh the token
    // another key got: nothing is fetched with it.
    with_key("not-a-key");
    let before = setup.requests().len();
    let refused = setup.run(&[&quarter(2), &quarter(3)]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("VERKADA_API_KEY"),
        "{}",
        stderr(&refused)
    );
    let third = &setup.requests()[before..];
    assert!(third.iter().all(is_token), "{third:?}");
    assert!(third.len() <= 2, "{third:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_its_end_is_renewed_before_verkada_refuses_it() {
    // Tokens said to last 2 s are renewed once less than a sixth of that is left: no 401 ever.
    let setup = Setup::two_hours(Config::default()).await;
    setup.simulator.faults().push(Fault::on_path(
        "/core/v1/",
        Action::Delay(Duration::from_millis(250)),
    ));
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + HOUR).to_string(),
    );
    setup
        .run_ok(&[
            &start,
            &end,
            "--param",
            "page_size=3",
            "--param",
            "token_lifetime_seconds=2",
            "--workers",
            "1",
        ])
        .await;
    let requests = setup.requests();
    assert!(requests.iter().all(|r| r.status == 200));
    let tokens = requests.iter().filter(|r| is_token(r)).count();
    assert!(
        tokens >= 2,
        "{tokens} tokens for {} requests",
        requests.len()
    );
    let expected: Vec<&Value> = setup
        .dataset
        .audit_processed_between(DEFAULT_START, DEFAULT_START + HOUR)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &expected, audit_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_once_and_the_page_asked_again() {
    // Verkada's tokens last a second here, and its error bodies are written Python-style.
    let setup = Setup::two_hours(Config {
        token_ttl: Duration::from_secs(1),
        error_style: ErrorStyle::Python,
        ..Config::default()
    })
    .await;
    setup.simulator.faults().push(Fault::on_path(
        "/core/v1/",
        Action::Delay(Duration::from_millis(200)),
    ));
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + HOUR).to_string(),
    );
    setup
        .run_ok(&[&start, &end, "--param", "page_size=4", "--workers", "1"])
        .await;
    let requests = setup.requests();
    let refused: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].status == 401)
        .collect();
    assert!(!refused.is_empty(), "the token outlived the run");
    // One window's page is read ahead while another's is out, so two pages may be refused
    // together; one new token serves both.
    let tokens = requests.iter().filter(|r| is_token(r)).count();
    assert!(
        tokens <= refused.len() + 1,
        "{tokens} tokens for {} refusals",
        refused.len()
    );
    for &at in &refused {
        // The same page again, with a new token, accepted.
        let expired = requests[at].header("x-verkada-auth");
        let again = (at + 1..requests.len())
            .find(|&i| {
                requests[i].path == requests[at].path
                    && requests[i].header("x-verkada-auth") != expired
            })
            .unwrap_or_else(|| panic!("{:?} was not asked again", requests[at].path));
        assert_eq!(requests[again].status, 200);
    }
    assert!(tokens >= 2, "the expired token was never renewed");
    let expected: Vec<&Value> = setup
        .dataset
        .audit_processed_between(DEFAULT_START, DEFAULT_START + HOUR)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &expected, audit_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_twice_stops_the_run_instead_of_looping() {
    let setup = Setup::two_hours(Config::default()).await;
    let quarter = |n: i64| (DEFAULT_START + n * QUARTER).to_string();
    setup.run_ok(&[&quarter(0), &quarter(1)]).await;
    let before = setup.requests().len();

    // Now Verkada refuses every token: the cached one, then the one it has just issued.
    setup.simulator.faults().push(Fault::on_path(
        "/core/v1/audit_log",
        Action::json(
            401,
            &serde_json::json!({"id": "0e2d", "message": "Token expired", "data": null}),
        ),
    ));
    let output = setup.run(&[&quarter(1), &quarter(2)]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("Verkada refused a token it had just issued (401: Token expired)"),
        "{message}"
    );
    assert!(message.contains("VERKADA_API_KEY"), "{message}");
    let calls: Vec<(&str, u16)> = setup.requests()[before..]
        .iter()
        .map(|r| (if is_token(r) { "token" } else { "page" }, r.status))
        .collect();
    assert_eq!(calls, [("page", 401), ("token", 200), ("page", 401)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_key_is_a_clear_error_that_never_shows_the_key() {
    let setup = Setup::two_hours(Config::default()).await;
    std::fs::write(
        setup.dir.path().join(".env"),
        "VERKADA_API_KEY=wrong-key-123\n",
    )
    .unwrap();
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + QUARTER).to_string(),
    );
    let output = setup.run(&[&start, &end]).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("Missing or invalid API key"), "{message}");
    assert!(message.contains("VERKADA_API_KEY"), "{message}");
    assert!(message.contains("region"), "{message}");
    assert!(!message.contains("wrong-key-123"), "{message}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("wrong-key-123"));
    // One try, no loop; the key reached Verkada only through trawl's substitution.
    let requests = setup.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-api-key"), Some("wrong-key-123"));

    // Without any key, nothing is sent and the message says where the key goes.
    std::fs::write(setup.dir.path().join(".env"), "").unwrap();
    let output = setup.run(&[&start, &end]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("VERKADA_API_KEY"),
        "{}",
        stderr(&output)
    );
    assert_eq!(setup.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_permission_and_a_bad_request_are_clear_errors() {
    let mut config = Config::default();
    config.keys[0].camera_alerts = false;
    let setup = Setup::two_hours(config).await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + QUARTER).to_string(),
    );
    let output = setup
        .run(&[&start, &end, "--stream", "camera-alerts"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("Verkada denied access to camera alerts (403"),
        "{message}"
    );
    assert!(message.contains("VERKADA_API_KEY"), "{message}");
    let pages = setup.requests().iter().filter(|r| !is_token(r)).count();
    assert_eq!(pages, 1, "a 403 is not retried");

    // A 400 is not retried either, and says what Verkada said.
    setup.simulator.faults().push(Fault::on_path(
        "/core/v1/audit_log",
        Action::json(
            400,
            &serde_json::json!({"id": "400", "message": "end_time is too far in the past", "data": null}),
        ),
    ));
    let before = setup.requests().len();
    let output = setup.run(&[&start, &end, "--stream", "audit-log"]).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("HTTP 400: end_time is too far in the past"),
        "{message}"
    );
    assert_eq!(setup.requests().len() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_never_exceeded() {
    // Verkada's quota, enforced by the simulator with 429s and a 5-second cooldown: 25 requests
    // in any 5 seconds and 300 a minute, the token exchange included, across both streams.
    let setup = Setup::two_hours(Config::default()).await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    setup
        .run_ok(&[
            &start,
            &end,
            "--stream",
            "audit-log",
            "--stream",
            "camera-alerts",
            "--param",
            "page_size=4",
            "--workers",
            "8",
        ])
        .await;
    let requests = setup.requests();
    assert!(requests.len() > 25, "{} requests", requests.len());
    assert!(
        requests.iter().all(|r| r.status == 200),
        "a request was refused"
    );
    // More requests than 5 seconds allow: they were spread out, not refused.
    let span = requests.last().unwrap().received_at - requests[0].received_at;
    assert!(span >= Duration::from_millis(4900), "{span:?}");
    setup.assert_two_hours_of_both_streams();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_command_line_gives_the_seeds_json() {
    // The seed's `--start`/`--end` (Unix seconds) and its INTERESTED_EVENTS: the interesting
    // audit rows and every alert, one JSON object a line, a file a stream.
    let setup = Setup::two_hours(Config::default()).await;
    let (start, end) = (DEFAULT_START + QUARTER, DEFAULT_START + HOUR);
    let (from, to) = (start.to_string(), end.to_string());
    let seed_events = format!("event_names={}", INTERESTED_EVENTS.join(","));
    let output = setup
        .run_ok(&[
            "--start",
            &from,
            "--end",
            &to,
            "--stream",
            "audit-log",
            "--stream",
            "camera-alerts",
            "--param",
            &seed_events,
        ])
        .await;
    assert!(output.stdout.is_empty());
    let audit: Vec<&Value> = setup
        .dataset
        .audit_processed_between(start, end)
        .into_iter()
        .filter(|event| INTERESTED_EVENTS.contains(&event.json["event_name"].as_str().unwrap()))
        .map(|event| &event.json)
        .collect();
    let alerts: Vec<&Value> = setup
        .dataset
        .alerts_between(start, end)
        .into_iter()
        .map(|alert| &alert.json)
        .collect();
    assert!(audit.len() < setup.dataset.audit_processed_between(start, end).len());
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &audit, audit_order);
    assert_exactly_once_in_order(&setup.file(ALERTS_FILE), &alerts, alert_order);
    let mut names: Vec<String> = std::fs::read_dir(setup.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Besides the outputs, only the locks that keep two runs from writing them at once.
    let locks = [
        format!(".{AUDIT_FILE}.trawl.lock"),
        format!(".{ALERTS_FILE}.trawl.lock"),
    ];
    assert_eq!(
        names,
        [
            ".env",
            locks[0].as_str(),
            locks[1].as_str(),
            "cache",
            "state",
            AUDIT_FILE,
            ALERTS_FILE
        ]
    );

    // Printed, as the seed did, for a pipe: one stream a run, nothing else on standard output.
    for (stream, expected, order) in [
        ("audit-log", &audit, audit_order as fn(&Value) -> (i64, i64)),
        ("camera-alerts", &alerts, alert_order),
    ] {
        let output = setup
            .run_ok(&[
                "--start",
                &from,
                "--end",
                &to,
                "--stream",
                stream,
                "--param",
                &seed_events,
                "--set",
                "output.format=stdout",
            ])
            .await;
        let printed: Vec<Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect();
        assert_exactly_once_in_order(&printed, expected, order);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_across_the_day_verkada_started_processing_times() {
    // Before 2025-08-12 rows have no processing time: those windows go by event time.
    let start = PROCESSED_TIMESTAMPS_FROM - HOUR;
    let setup = Setup::new(Config {
        dataset: Dataset::generate(start, 8, 5, 600, 9),
        ..Config::default()
    })
    .await;
    let (from, to) = (start.to_string(), (start + 2 * HOUR).to_string());
    setup.run_ok(&[&from, &to]).await;
    let mut expected: Vec<&Value> = setup
        .dataset
        .audit_between(start, PROCESSED_TIMESTAMPS_FROM)
        .into_iter()
        .map(|event| &event.json)
        .collect();
    expected.extend(
        setup
            .dataset
            .audit_processed_between(PROCESSED_TIMESTAMPS_FROM, start + 2 * HOUR)
            .into_iter()
            .map(|event| &event.json),
    );
    assert!(
        expected
            .iter()
            .any(|row| row["processed_timestamp"].is_null())
    );
    assert_exactly_once_in_order(&setup.file(AUDIT_FILE), &expected, audit_order);
    for request in setup.requests().iter().filter(|r| is_audit(r)) {
        let window_start = query_param(request, "start_time")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            + 1;
        let by_processing = (window_start >= PROCESSED_TIMESTAMPS_FROM).to_string();
        assert_eq!(
            query_param(request, "use_processed_timestamp"),
            Some(by_processing.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_faults_do_not_change_the_output() {
    let setup = Setup::two_hours(Config::default()).await;
    setup.simulator.faults().extend([
        Fault::with_probability(0.03, 31, Action::html(502)),
        Fault::with_probability(0.02, 32, Action::html(503)),
        Fault::with_probability(
            0.02,
            33,
            Action::json(
                500,
                &serde_json::json!({"id": "500", "message": "Internal Server Error", "data": null}),
            ),
        ),
        Fault::with_probability(0.03, 34, Action::TruncatedBody),
        Fault::with_probability(0.03, 35, Action::ResetConnection),
        Fault::with_probability(
            0.02,
            36,
            Action::json(
                429,
                &serde_json::json!({"id": "429", "message": "Too Many Requests", "data": null}),
            ),
        ),
    ]);
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    setup
        .run_ok(&[
            &start,
            &end,
            "--stream",
            "audit-log",
            "--stream",
            "camera-alerts",
            "--param",
            "page_size=5",
        ])
        .await;
    let requests = setup.requests();
    let failed = requests.iter().filter(|r| r.status != 200).count();
    assert!(
        failed >= 2,
        "only {failed} of {} requests failed",
        requests.len()
    );
    setup.assert_two_hours_of_both_streams();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_streams_process_right_after_the_first_keeps_to_the_quota_it_spent() {
    // The seed ran one process a stream. The first spends Verkada's 25 requests in 5 seconds; the
    // second, started at once, must count them (they are in the state store) and is never
    // refused, its token exchange included.
    let setup = Setup::two_hours(Config::default()).await;
    let (start, end) = (
        DEFAULT_START.to_string(),
        (DEFAULT_START + 2 * HOUR).to_string(),
    );
    // The first run's requests (its token exchanges included) fit in 5 seconds; the second's
    // do not, on top of the first's.
    for (stream, page_size) in [
        ("audit-log", "page_size=10"),
        ("camera-alerts", "page_size=4"),
    ] {
        setup
            .run_ok(&[
                &start,
                &end,
                "--stream",
                stream,
                "--param",
                page_size,
                "--workers",
                "8",
            ])
            .await;
    }
    let requests = setup.requests();
    // More than 5 seconds allow, had the second process not counted the first's.
    assert!(requests.len() > 25, "{} requests", requests.len());
    let refused = requests.iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 0, "{refused} requests were refused");
    setup.assert_two_hours_of_both_streams();
}
