//! The real `yandex360.wasm`, run by the `trawl` binary against the bundled Yandex 360 simulator.
//! The simulator's dataset is the ground truth: every per-day file must hold each event of its UTC
//! day in the requested range exactly once, in event-time order, byte for byte as the API sent it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::yandex360::{seed_env, truth};
use support::{run_to_end, stderr};
use tempfile::TempDir;
use trawl_simulators::RunningServer;
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::ratelimit::Quota;
use trawl_simulators::yandex360::{
    self, Config, DEFAULT_START_MS, Dataset, ErrorBody, Event, ORG_ID, Stream, TOKEN, WindowMode,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const QUARTER_MS: i64 = 900_000;

/// A working folder with the seed script's `.env`, and a simulator to talk to.
struct Setup {
    dir: TempDir,
    simulator: RunningServer,
    dataset: Dataset,
}

impl Setup {
    async fn new(config: Config) -> Self {
        let dataset = config.dataset.clone();
        let simulator = yandex360::start(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), seed_env(TOKEN)).unwrap();
        Setup {
            dir,
            simulator,
            dataset,
        }
    }

    /// `trawl run yandex360 <args>` against the simulator, as a seed user would type it.
    async fn run(&self, args: &[&str]) -> Output {
        run_to_end(self.command(args)).await
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let url = self.simulator.base_url();
        let mut command = support::run_command(self.dir.path(), "yandex360", &url, args);
        command.args(["--param", &format!("base_url={url}")]);
        command
    }

    /// The seed's folder for a stream.
    fn folder(&self, stream: Stream) -> PathBuf {
        self.dir.path().join("logs").join(stream.name())
    }

    /// The events with `from <= date < to`, as trawl orders them: by time, then by id.
    fn truth(&self, stream: Stream, from: i64, to: i64) -> Vec<&Event> {
        truth(&self.dataset, stream, from, to)
    }

    /// The lines each day file of `stream` must hold for the range `[from, to)` of whole days.
    fn expected_files(&self, stream: Stream, from: i64, to: i64) -> BTreeMap<String, Vec<String>> {
        let mut files = BTreeMap::new();
        let mut day = from;
        while day < to {
            let name = format!("{}_audit_{}.log", stream.name(), &iso_day(day));
            let lines: Vec<String> = self
                .truth(stream, day, day + DAY_MS)
                .iter()
                .map(|event| event.json.to_string())
                .collect();
            if !lines.is_empty() {
                files.insert(name, lines);
            }
            day += DAY_MS;
        }
        files
    }
}

fn iso_day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()[..10].to_string()
}

/// Every file in a folder, by name, as lines (an absent folder has none), but the lock that keeps
/// two runs from writing the stream's files at once.
fn files(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            !name.to_string_lossy().ends_with(".trawl.lock")
        })
        .map(|entry| {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(text.is_empty() || text.ends_with('\n'), "{text}");
            (
                entry.file_name().to_string_lossy().into_owned(),
                text.lines().map(str::to_string).collect(),
            )
        })
        .collect()
}

/// A query parameter of a logged request path.
fn query_values<'a>(path: &'a str, name: &str) -> Vec<&'a str> {
    let query = path.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .collect()
}

fn paged(config: Config, cap: usize) -> Config {
    Config {
        page_cap: Some(cap),
        ..config
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_over_two_days_every_event_once_in_order() {
    let setup = Setup::new(paged(Config::default(), 2)).await;
    let output = setup
        .run(&["2025-06-01", "2025-06-02", "--stream", "mail"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let (from, to) = (DEFAULT_START_MS, DEFAULT_START_MS + 2 * DAY_MS);
    assert_eq!(
        files(&setup.folder(Stream::Mail)),
        setup.expected_files(Stream::Mail, from, to)
    );
    assert!(!setup.folder(Stream::Disk).exists());

    // The dataset put events where connectors go wrong, and they all arrived once.
    let events = setup.truth(Stream::Mail, from, to);
    let on_quarter_edges = events
        .iter()
        .filter(|e| e.date_ms % QUARTER_MS == 0)
        .count();
    assert!(on_quarter_edges >= 48 * 5, "{on_quarter_edges}");
    assert!(events.iter().any(|e| e.date_ms == from + DAY_MS - 1));
    let shared_uniq = events
        .iter()
        .filter(|e| {
            events
                .iter()
                .any(|o| o.uniq_id == e.uniq_id && o.event_type != e.event_type)
        })
        .count();
    assert!(shared_uniq >= 4, "{shared_uniq}");
    // Two days Yandex pages through are one window: the requests a client that knows the data
    // would make (every page full but the last, which may be empty), with the same filters on
    // every page.
    let requests = setup.simulator.requests();
    assert!(requests.iter().all(|request| request.status == 200));
    let with_token = requests
        .iter()
        .filter(|request| !query_values(&request.path, "pageToken").is_empty())
        .count();
    assert_eq!(requests.len() - with_token, 1, "one window");
    assert!(
        requests.len() <= events.len().div_ceil(2) + 1,
        "{} requests for {} events on pages of 2",
        requests.len(),
        events.len()
    );
    let first = &requests[0];
    assert_eq!(first.header("authorization"), Some("OAuth sim-token"));
    assert!(
        first
            .path
            .starts_with(&format!("/security/v1/org/{ORG_ID}/audit_log/mail?"))
    );
    assert_eq!(query_values(&first.path, "pageSize"), ["100"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_range_is_cut_into_windows_sized_by_what_the_last_one_held() {
    // Pages of 2 make each day's mail dense: the first day is one window (nothing is known
    // yet), the second is cut into windows of about 32 pages each, learned from the first and
    // remembered in the state store.
    let setup = Setup::new(paged(Config::default(), 2)).await;
    let first = setup
        .run(&["2025-06-01", "2025-06-01", "--stream", "mail"])
        .await;
    assert!(first.status.success(), "{}", stderr(&first));
    let first_day = setup.simulator.requests().len();
    let second = setup
        .run(&["2025-06-02", "2025-06-02", "--stream", "mail"])
        .await;
    assert!(second.status.success(), "{}", stderr(&second));
    let requests = &setup.simulator.requests()[first_day..];
    let windows = requests
        .iter()
        .filter(|request| query_values(&request.path, "pageToken").is_empty())
        .count();
    let events = setup
        .truth(
            Stream::Mail,
            DEFAULT_START_MS + DAY_MS,
            DEFAULT_START_MS + 2 * DAY_MS,
        )
        .len();
    let least = events.div_ceil(2);
    assert!(
        windows >= least / 40 && windows <= least / 20,
        "{windows} windows for {least} pages"
    );
    // Each window costs at most one short page more than a client that knows the data.
    assert!(
        requests.len() as f64 <= 1.2 * least as f64,
        "{} requests where {least} would do",
        requests.len()
    );
    assert_eq!(
        files(&setup.folder(Stream::Mail)),
        setup.expected_files(
            Stream::Mail,
            DEFAULT_START_MS,
            DEFAULT_START_MS + 2 * DAY_MS
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_over_two_days_every_event_once_in_order() {
    let setup = Setup::new(paged(Config::default(), 1)).await;
    let output = setup
        .run(&["2025-06-02", "2025-06-03", "--stream", "disk"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let (from, to) = (DEFAULT_START_MS + DAY_MS, DEFAULT_START_MS + 3 * DAY_MS);
    assert_eq!(
        files(&setup.folder(Stream::Disk)),
        setup.expected_files(Stream::Disk, from, to)
    );
    let events = setup.truth(Stream::Disk, from, to);
    let mut per_second = BTreeMap::<i64, usize>::new();
    for event in &events {
        *per_second.entry(event.date_ms).or_default() += 1;
    }
    assert!(per_second.values().filter(|&&n| n >= 3).count() >= 10);
    assert!(per_second.contains_key(&(from + DAY_MS - 1000)));
    // One event a page: every event took a request of its own, plus the empty last pages.
    let requests = setup.simulator.requests();
    assert!(requests.len() >= events.len(), "{}", requests.len());
    assert!(requests.iter().all(|request| request.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendors_bounds_may_be_inclusive_or_exclusive() {
    for mode in [WindowMode::InclusiveBoth, WindowMode::ExclusiveBoth] {
        let config = Config {
            window: mode,
            // Everything a careful client must survive at once.
            empty_events_as_array: false,
            last_token: yandex360::LastToken::Absent,
            ..paged(Config::default(), 5)
        };
        let setup = Setup::new(config).await;
        let output = setup
            .run(&[
                "2025-06-01",
                "2025-06-01",
                "--stream",
                "mail",
                "--stream",
                "disk",
            ])
            .await;
        assert!(output.status.success(), "{mode:?}: {}", stderr(&output));
        let (from, to) = (DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS);
        for stream in [Stream::Mail, Stream::Disk] {
            assert_eq!(
                files(&setup.folder(stream)),
                setup.expected_files(stream, from, to),
                "{mode:?} {stream:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_env_gives_the_seed_files() {
    let setup = Setup::new(Config::default()).await;
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-03",
            "--stream",
            "mail",
            "--stream",
            "disk",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("logs/mail/mail_audit_YYYY-MM-DD.log"),
        "{message}"
    );
    assert!(
        message.contains("logs/disk/disk_audit_YYYY-MM-DD.log"),
        "{message}"
    );
    for stream in [Stream::Mail, Stream::Disk] {
        let written = files(&setup.folder(stream));
        let names: Vec<&str> = written.keys().map(String::as_str).collect();
        let base = format!("{}_audit", stream.name());
        assert_eq!(
            names,
            [
                format!("{base}_2025-06-01.log"),
                format!("{base}_2025-06-02.log"),
                format!("{base}_2025-06-03.log")
            ]
        );
        // One JSON object a line, each on the UTC day of its `date`, as the seed wrote them.
        for (name, lines) in &written {
            for line in lines {
                let event: Value = serde_json::from_str(line).unwrap();
                let date = event["date"].as_str().unwrap();
                assert!(name.contains(&date[..10]), "{name}: {date}");
            }
        }
        assert_eq!(
            written,
            setup.expected_files(stream, DEFAULT_START_MS, DEFAULT_START_MS + 3 * DAY_MS)
        );
    }

    // A user without the seed's settings gets the same layout in the working folder.
    std::fs::write(
        setup.dir.path().join(".env"),
        format!("OAUTH_TOKEN_ARG={TOKEN}\nORGANIZATION_ID_ARG={ORG_ID}\n"),
    )
    .unwrap();
    let output = setup
        .run(&["2025-06-01", "2025-06-01", "--stream", "disk"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(setup.dir.path().join("disk_audit_2025-06-01.log")).unwrap(),
        setup
            .truth(Stream::Disk, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
            .iter()
            .map(|event| format!("{}\n", event.json))
            .collect::<String>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_error_without_the_token() {
    let setup = Setup::new(Config {
        unscoped_tokens: vec!["token-without-scope-456".into()],
        ..Config::default()
    })
    .await;
    std::fs::write(setup.dir.path().join(".env"), seed_env("wrong-token-123")).unwrap();
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--workers",
            "1",
            "--stream",
            "mail",
            "--stream",
            "disk",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("OAUTH_TOKEN_ARG"), "{message}");
    assert!(!message.contains("wrong-token-123"), "{message}");
    // Not retried, and the disk stream is not tried with a token known to be bad. The window
    // read meanwhile waits for the failed request's turn, and is refused it.
    let requests = setup.simulator.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(
        requests
            .iter()
            .all(|request| request.path.contains("/audit_log/mail?"))
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some("OAuth wrong-token-123")
    );
    assert!(
        !setup
            .folder(Stream::Mail)
            .join("mail_audit_2025-06-01.log")
            .exists()
    );

    // A token without the audit log permission: the message says which one it needs.
    let before = requests.len();
    std::fs::write(
        setup.dir.path().join(".env"),
        seed_env("token-without-scope-456"),
    )
    .unwrap();
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--workers",
            "1",
            "--stream",
            "disk",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("403"), "{message}");
    assert!(
        message.contains("ya360_security:audit_log_disk"),
        "{message}"
    );
    assert!(message.contains("ORGANIZATION_ID_ARG"), "{message}");
    assert!(!message.contains("token-without-scope-456"), "{message}");
    let requests = &setup.simulator.requests()[before..];
    assert!((1..=2).contains(&requests.len()), "{requests:#?}");
    assert!(requests.iter().all(|request| request.status == 403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_mail_only_gets_mail_and_a_clear_error_for_disk() {
    let setup = Setup::new(Config {
        mail_only_tokens: vec!["mail-only-789".into()],
        error_body: ErrorBody::Json,
        ..Config::default()
    })
    .await;
    std::fs::write(setup.dir.path().join(".env"), seed_env("mail-only-789")).unwrap();
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--stream",
            "mail",
            "--stream",
            "disk",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("stream `disk`"), "{message}");
    assert!(message.contains("Permission denied (code 7)"), "{message}");
    assert!(
        message.contains("ya360_security:audit_log_disk"),
        "{message}"
    );
    assert!(!message.contains("mail-only-789"), "{message}");
    // The mail log was delivered whole before the disk log failed.
    assert_eq!(
        files(&setup.folder(Stream::Mail)),
        setup.expected_files(Stream::Mail, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_fails_leaves_the_next_one_its_requests() {
    let setup = Setup::new(Config::default()).await;
    // The disk log's server is broken; the mail log's is not. Few retries, to fail quickly.
    setup
        .simulator
        .faults()
        .push(Fault::on_path("/audit_log/disk", Action::status(500)));
    support::write_few_retries_config(setup.dir.path());
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--stream",
            "disk",
            "--stream",
            "mail",
            "--config",
            "trawl.ron",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("stream `disk`"), "{message}");
    // The disk log stopped its own requests, not the mail log's, which came after it.
    assert_eq!(
        files(&setup.folder(Stream::Mail)),
        setup.expected_files(Stream::Mail, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_window_a_rerun_resumes_with_the_page_token() {
    let setup = Setup::new(paged(Config::default(), 1)).await;
    setup.simulator.faults().push(Fault::with_probability(
        0.5,
        3,
        Action::Delay(Duration::from_millis(15)),
    ));
    let args = [
        "2025-06-01",
        "2025-06-01",
        "--stream",
        "disk",
        "--workers",
        "3",
    ];
    let mut kills = 0;
    let mut run_starts = Vec::new();
    for point in 0..8u64 {
        let before = setup.simulator.requests().len();
        run_starts.push(before);
        let mut child = setup
            .command(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let target = before + 3 + (point as usize * 7) % 11;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while setup.simulator.requests().len() < target && std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 6, "{kills}");
    let last = setup.run(&args).await;
    assert!(last.status.success(), "{}", stderr(&last));
    assert_eq!(
        files(&setup.folder(Stream::Disk)),
        setup.expected_files(Stream::Disk, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
    );
    // Some run began with a window an earlier run had started: from its stored page token.
    let requests = setup.simulator.requests();
    let resumed = run_starts[1..]
        .iter()
        .filter_map(|&start| requests.get(start))
        .filter(|first| !query_values(&first.path, "pageToken").is_empty())
        .count();
    assert!(resumed >= 1, "no run resumed a window from its page token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_respected_across_both_streams() {
    // Pages of 2 events make about twenty requests a stream.
    let setup = Setup::new(Config {
        quotas: vec![Quota {
            requests: 8,
            per: Duration::from_secs(1),
        }],
        ..paged(Config::default(), 2)
    })
    .await;
    let output = setup
        .run(&[
            "2025-06-01T00:00:00Z",
            "2025-06-01T03:00:00Z",
            "--stream",
            "mail",
            "--stream",
            "disk",
            "--workers",
            "6",
            "--rate-limit",
            "8/1s",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = setup.simulator.requests();
    assert!(requests.len() >= 24, "{}", requests.len());
    assert!(requests.iter().all(|request| request.status == 200));
    // Eight in any second: n requests span at least n / 8 - 1 seconds.
    let span = requests.last().unwrap().received_at - requests[0].received_at;
    let least = Duration::from_millis(1000 * (requests.len() as u64 / 8 - 1) - 100);
    assert!(span >= least, "{span:?} for {} requests", requests.len());
    for stream in [Stream::Mail, Stream::Disk] {
        let lines: Vec<String> = files(&setup.folder(stream))
            .into_values()
            .flatten()
            .collect();
        let want: Vec<String> = setup
            .truth(stream, DEFAULT_START_MS, DEFAULT_START_MS + 3 * HOUR_MS)
            .iter()
            .map(|event| event.json.to_string())
            .collect();
        assert_eq!(lines, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_organisation_is_not_an_error() {
    let setup = Setup::new(Config {
        dataset: Dataset::default(),
        error_body: ErrorBody::Empty,
        ..Config::default()
    })
    .await;
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--stream",
            "mail",
            "--stream",
            "disk",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("yandex360/disk: 0 records"),
        "{}",
        stderr(&output)
    );
    for stream in [Stream::Mail, Stream::Disk] {
        assert!(files(&setup.folder(stream)).is_empty());
    }
    // One request a stream: an empty day is one empty window, not 96 quarter hours.
    assert_eq!(setup.simulator.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_page_token_is_recovered_from_smaller_windows() {
    // Page tokens stop working after two pages of a query (as an expired or too deep one would).
    let setup = Setup::new(Config {
        max_page_depth: Some(2),
        ..paged(Config::default(), 3)
    })
    .await;
    let output = setup.run(&["2025-06-01", "2025-06-01"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        files(&setup.folder(Stream::Mail)),
        setup.expected_files(Stream::Mail, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
    );
    let refused = setup
        .simulator
        .requests()
        .iter()
        .filter(|request| request.status == 400)
        .count();
    assert!(refused > 10, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_faults_do_not_change_the_output() {
    let setup = Setup::new(paged(Config::default(), 2)).await;
    setup.simulator.faults().extend([
        Fault::with_probability(0.03, 11, Action::status(429)),
        Fault::with_probability(0.03, 12, Action::status(503)),
        Fault::with_probability(0.02, 13, Action::html(502)),
        Fault::with_probability(
            0.02,
            14,
            Action::json(500, &serde_json::json!({"code": 13, "message": "internal"})),
        ),
        Fault::with_probability(0.02, 15, Action::ResetConnection),
        Fault::with_probability(0.02, 16, Action::TruncatedBody),
    ]);
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--stream",
            "mail",
            "--stream",
            "disk",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    for stream in [Stream::Mail, Stream::Disk] {
        assert_eq!(
            files(&setup.folder(stream)),
            setup.expected_files(stream, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
        );
    }
    let failed = setup
        .simulator
        .requests()
        .iter()
        .filter(|request| request.status != 200)
        .count();
    assert!(failed >= 10, "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_type_filters_are_repeated_query_keys() {
    let setup = Setup::new(paged(Config::default(), 10)).await;
    let users = ["1130000062000001", "1130000062000003"];
    let types = ["message_receive", "mailbox_send"];
    let output = setup
        .run(&[
            "2025-06-01",
            "2025-06-01",
            "--stream",
            "mail",
            "--stream",
            "disk",
            "--param",
            &format!("include_uids={}, {}", users[0], users[1]),
            "--param",
            &format!("mail_types={},{}", types[0], types[1]),
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    for request in setup.simulator.requests() {
        assert_eq!(query_values(&request.path, "includeUids"), users);
        let sent_types = query_values(&request.path, "types");
        if request.path.contains("/audit_log/mail") {
            assert_eq!(sent_types, types);
        } else {
            assert!(sent_types.is_empty(), "{}", request.path);
        }
    }
    for stream in [Stream::Mail, Stream::Disk] {
        let want: Vec<String> = setup
            .truth(stream, DEFAULT_START_MS, DEFAULT_START_MS + DAY_MS)
            .into_iter()
            .filter(|event| users.contains(&event.user_uid.as_str()))
            .filter(|event| stream == Stream::Disk || types.contains(&event.event_type.as_str()))
            .map(|event| event.json.to_string())
            .collect();
        assert!(!want.is_empty());
        let lines: Vec<String> = files(&setup.folder(stream))
            .into_values()
            .flatten()
            .collect();
        assert_eq!(lines, want, "{stream:?}");
    }

    // A user id that is not a number is refused before any request.
    let before = setup.simulator.requests().len();
    let output = setup
        .run(&[
            "2025-06-02",
            "2025-06-02",
            "--param",
            "exclude_uids=ivanov@example.ru",
        ])
        .await;
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("exclude_uids"),
        "{}",
        stderr(&output)
    );
    assert_eq!(setup.simulator.requests().len(), before);
}

/// A line as the seed script wrote it: Python's `json.dumps`, with `", "` and `": "`.
fn python_json(event: &Value) -> String {
    let fields: Vec<String> = event
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| format!("{}: {value}", Value::String(key.clone())))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// The seed ran at 00:00:30 UTC: its files end with the first events of the day, and its next
/// run would re-read from 23:58:30 and append yesterday's last events to yesterday's file again.
/// trawl continues after the newest record in the files, writes every later event once, and never
/// touches yesterday's file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_continues_the_seed_files() {
    let now = jiff::Timestamp::now().as_millisecond();
    // The last midnight at least 20 minutes ago, so that whole windows follow it.
    let mut midnight = now - now.rem_euclid(DAY_MS);
    if now - midnight < 20 * 60_000 {
        midnight -= DAY_MS;
    }
    let start = midnight - DAY_MS;
    let hours = ((now - start) / HOUR_MS + 2) as u32;
    let setup = Setup::new(paged(
        Config {
            dataset: Dataset::generate(start, hours, 5),
            ..Config::default()
        },
        20,
    ))
    .await;
    let seed_ran_at = midnight + 30_000;
    let yesterday = |stream: Stream| format!("{}_audit_{}.log", stream.name(), iso_day(start));
    for stream in [Stream::Mail, Stream::Disk] {
        let folder = setup.folder(stream);
        std::fs::create_dir_all(&folder).unwrap();
        let mut by_day = BTreeMap::<String, String>::new();
        for event in truth(&setup.dataset, stream, start, seed_ran_at + 1) {
            let name = format!("{}_audit_{}.log", stream.name(), iso_day(event.date_ms));
            by_day
                .entry(name)
                .or_default()
                .push_str(&format!("{}\n", python_json(&event.json)));
        }
        assert_eq!(by_day.len(), 2);
        for (name, text) in by_day {
            std::fs::write(folder.join(name), text).unwrap();
        }
    }
    let seed_files = |stream: Stream| files(&setup.folder(stream));
    let yesterday_before: Vec<_> = [Stream::Mail, Stream::Disk]
        .map(|stream| seed_files(stream)[&yesterday(stream)].clone())
        .to_vec();

    let mut command = setup.command(&["--stream", "mail", "--stream", "disk"]);
    let before = jiff::Timestamp::now().as_millisecond();
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without the seed files' boundary, a first run would reach back half a year: stop it.
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the run continued the seed files instead of starting half a year back")
    .unwrap();
    let after = jiff::Timestamp::now().as_millisecond();
    assert!(output.status.success(), "{}", stderr(&output));

    for (index, stream) in [Stream::Mail, Stream::Disk].into_iter().enumerate() {
        let written = seed_files(stream);
        // Yesterday's file is as the seed left it.
        assert_eq!(
            written[&yesterday(stream)],
            yesterday_before[index],
            "{stream:?}"
        );
        // Every event after it, once: whole windows up to the last quarter hour before the run.
        let lines: Vec<Value> = written
            .values()
            .flatten()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let ends = [before, after].map(|at| at - at.rem_euclid(QUARTER_MS));
        let matches = ends.iter().any(|&end| {
            let want: Vec<&Value> = truth(&setup.dataset, stream, start, end)
                .into_iter()
                .map(|event| &event.json)
                .collect();
            lines.iter().collect::<Vec<_>>() == want
        });
        assert!(matches, "{stream:?}: {} lines", lines.len());
    }

    // Run again: the overlap is read again and nothing is written twice.
    let again = setup.run(&["--stream", "mail", "--stream", "disk"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    for stream in [Stream::Mail, Stream::Disk] {
        let lines: Vec<String> = seed_files(stream).into_values().flatten().collect();
        // The seed's spacing and trawl's differ: compare the parsed events.
        let unique: std::collections::HashSet<String> = lines
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).unwrap().to_string())
            .collect();
        assert_eq!(unique.len(), lines.len(), "{stream:?}");
    }
}

/// Two runs, one day of both streams each (about 260 requests a run), against a per-token quota
/// Yandex does not publish, run as trawl is run by cron: one process after the other on one
/// state store. Returns the two runs' outputs.
async fn two_runs_under_an_unpublished_quota(setup: &Setup, learn_from: &str) -> [Output; 2] {
    std::fs::write(
        setup.dir.path().join("trawl.ron"),
        // Brief pauses after a 429, so that the test takes seconds.
        "(limits: (retry_max_delay_seconds: 0.2))",
    )
    .unwrap();
    let mut outputs = Vec::new();
    for day in ["2025-06-01", "2025-06-02"] {
        let output = setup
            .run(&[
                day,
                day,
                "--stream",
                "mail",
                "--stream",
                "disk",
                "--config",
                "trawl.ron",
                "--set",
                &format!("quota.learn-from={learn_from}"),
            ])
            .await;
        assert!(output.status.success(), "{}", stderr(&output));
        outputs.push(output);
    }
    let (from, to) = (DEFAULT_START_MS, DEFAULT_START_MS + 2 * DAY_MS);
    for stream in [Stream::Mail, Stream::Disk] {
        assert_eq!(
            files(&setup.folder(stream)),
            setup.expected_files(stream, from, to)
        );
    }
    outputs.try_into().unwrap()
}

/// The quota a run's summary says it learned, in requests per second.
fn learned_per_second(output: &Output) -> u32 {
    let message = stderr(output);
    let learned = message
        .split("learned quota ")
        .nth(1)
        .unwrap_or_else(|| panic!("no learned quota in: {message}"));
    let (requests, per) = learned.split_once('/').unwrap();
    assert!(per.starts_with("1s for http://127.0.0.1:"), "{learned}");
    requests.parse().unwrap()
}

/// A quota of 50 requests a second, and pages of two events: a day of both streams is about
/// 260 requests.
fn quota_of_50_a_second() -> Config {
    Config {
        quotas: vec![Quota {
            requests: 50,
            per: Duration::from_secs(1),
        }],
        ..paged(Config::default(), 2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpublished_quota_is_learned_from_a_modest_start_and_remembered() {
    // Started, as by default, at about 60% of the real quota, the rate grows while it is in use
    // and the next process starts where the last one got to.
    let setup = Setup::new(quota_of_50_a_second()).await;
    let [first, second] = two_runs_under_an_unpublished_quota(&setup, "30/1s").await;
    let requests = setup.simulator.requests();
    assert!(requests.len() >= 380, "{}", requests.len());
    let refused = requests.iter().filter(|r| r.status == 429).count();
    assert!(
        refused * 100 <= requests.len(),
        "{refused} of {} requests answered 429",
        requests.len()
    );
    let after_first = learned_per_second(&first);
    assert!(after_first > 30, "{}", stderr(&first));
    assert!(learned_per_second(&second) >= after_first.min(45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_above_an_unpublished_quota_is_cut_and_the_next_run_keeps_under_it() {
    let setup = Setup::new(quota_of_50_a_second()).await;
    let [first, _] = two_runs_under_an_unpublished_quota(&setup, "80/1s").await;
    let requests = setup.simulator.requests();
    let first_run = stderr(&first)
        .split(" requests, ")
        .next()
        .and_then(|text| text.rsplit('\n').next())
        .and_then(|count| count.parse::<usize>().ok())
        .expect("the run's traffic line");
    // The first run went past the quota (at most the requests then in flight were refused, one
    // a worker), was cut to under it, and paused; the second started from there.
    let (in_first, in_second) = requests.split_at(first_run);
    let refused = |requests: &[trawl_simulators::request_log::RequestLogEntry]| {
        requests.iter().filter(|r| r.status == 429).count()
    };
    assert!(
        (1..=5).contains(&refused(in_first)),
        "{}",
        refused(in_first)
    );
    assert!(learned_per_second(&first) < 50, "{}", stderr(&first));
    // At most one probe past the quota as the rate grows back.
    assert!(refused(in_second) <= 1, "{}", refused(in_second));
}
