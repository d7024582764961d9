//! The real `workvivo.wasm`, run by the `trawl` binary against the bundled Workvivo simulator.
//! The simulator's dataset is the ground truth: the output must hold each of its events in the
//! requested range exactly once, in event-time order.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;
use trawl_simulators::RunningServer;
use trawl_simulators::faults::Fault;
use trawl_simulators::workvivo::{self, Config, DEFAULT_START};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const TOKEN: &str = "sim-token";

/// A working folder with the seed script's `.env`, and a simulator to talk to.
struct Setup {
    dir: TempDir,
    simulator: RunningServer,
    dataset: workvivo::Dataset,
}

impl Setup {
    async fn new(config: Config, timezone: &str) -> Self {
        let dataset = config.dataset.clone();
        let simulator = workvivo::start(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            format!("WORKVIVOID=sim-org\nWORKVIVOTOKEN={TOKEN}\nTIMEZONE={timezone}\n"),
        )
        .unwrap();
        Setup {
            dir,
            simulator,
            dataset,
        }
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join("log").join("siem_data.csv")
    }

    /// `trawl run workvivo <args>` against the simulator, as a seed user would type it.
    async fn run(&self, args: &[&str]) -> Output {
        let url = self.simulator.base_url();
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("trawl"));
        command
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--plugins")
            .arg(support::plugin_dir())
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .arg("--cache")
            .arg(self.dir.path().join("cache"))
            .args(["run", "workvivo"])
            .args(args)
            .args(["--param", &format!("base_url={url}"), "--grant", &url]);
        tokio::task::spawn_blocking(move || command.output().expect("trawl runs"))
            .await
            .unwrap()
    }

    /// The ids the simulator holds with `from <= created_at < to`, in event-time order.
    fn expected_ids(&self, from: i64, to: i64) -> Vec<String> {
        self.dataset
            .between(from, to)
            .into_iter()
            .map(|event| event.id.to_string())
            .collect()
    }
}

fn rows(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::Reader::from_path(path).expect("output exists");
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|row| {
            let row = row.expect("a well-formed row");
            header
                .iter()
                .cloned()
                .zip(row.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

fn ids(path: &Path) -> Vec<String> {
    rows(path)
        .1
        .into_iter()
        .map(|row| row["id"].clone())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_and_equal_timestamp_events_appear_exactly_once() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let output = setup.run(&["2024-09-01", "2024-09-02"]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let expected = setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY);
    let on_edges = setup
        .dataset
        .between(DEFAULT_START, DEFAULT_START + 2 * DAY)
        .iter()
        .filter(|event| event.created_at_timestamp % HOUR == 0)
        .count();
    assert!(on_edges >= 48, "the dataset puts events on every hour edge");
    assert_eq!(ids(&setup.output()), expected);

    // The simulator answers inclusively at both ends: every request after the first overlapped
    // the previous one by an instant, and the overlap never reached the output.
    let requests = setup.simulator.requests();
    assert_eq!(requests.len(), 48);
    assert!(requests.iter().all(|request| request.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_users_get_the_seed_file() {
    let setup = Setup::new(Config::default(), "Asia/Tokyo").await;
    let output = setup.run(&["2024-09-01", "2024-09-02"]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let (header, rows) = rows(&setup.output());
    assert_eq!(
        header,
        [
            "local_timestamp",
            "created_at",
            "created_at_timestamp",
            "event",
            "id",
            "ip_address",
            "note",
            "user_agent",
            "user_email",
            "workvivo_id",
            // Not in the first batch: the seed dropped it, trawl widens the header.
            "real_user",
        ]
    );
    for row in &rows {
        let local = &row["local_timestamp"];
        assert!(local.ends_with(" JST") && local.len() == 23, "{local}");
    }
    assert!(rows.iter().any(|row| !row["real_user"].is_empty()));
    // Dates are whole days in TIMEZONE: 2024-09-01 00:00 to 2024-09-03 00:00 JST.
    let start = DEFAULT_START - 9 * HOUR;
    let expected = setup.expected_ids(start, start + 2 * DAY);
    assert_eq!(
        rows.iter().map(|row| row["id"].clone()).collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_window_fails_the_run_and_a_rerun_completes_it() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let failing_hour = DEFAULT_START + 5 * HOUR;
    setup.simulator.faults().push(Fault::status_on_path(
        format!("/v1/siem/{failing_hour}/"),
        500,
        None,
    ));

    let first = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let message = stderr(&first);
    assert!(
        message.contains("2024-09-01T05:00:00Z..2024-09-01T06:00:00Z"),
        "{message}"
    );
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("5 of 24 windows completed"), "{message}");
    assert!(message.contains("run the same command again"), "{message}");
    // The hours before the failure are delivered whole; nothing of the failed hour is.
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, failing_hour)
    );

    setup.simulator.faults().clear();
    let second = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY)
    );
    // The rerun asked only for the hours that were missing.
    let rerun_requests = setup.simulator.requests().len() - 6;
    assert_eq!(rerun_requests, 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_seed_file_is_continued_not_replaced() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let seed_header = "local_timestamp,created_at,created_at_timestamp,event,id,ip_address,note,\
                       user_agent,user_email,workvivo_id";
    let seed_row = "2025-06-08 09:07:21 JST,2024-08-31T23:00:00Z,1725145200,login,1,10.0.0.1,,\
                    Mozilla,user@example.org,1637453";
    std::fs::create_dir_all(setup.output().parent().unwrap()).unwrap();
    std::fs::write(setup.output(), format!("{seed_header}\r\n{seed_row}\r\n")).unwrap();

    let output = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let (header, rows) = rows(&setup.output());
    assert_eq!(header.join(","), format!("{seed_header},real_user"));
    assert_eq!(rows[0]["id"], "1");
    assert_eq!(rows[0]["local_timestamp"], "2025-06-08 09:07:21 JST");
    let mut expected = vec!["1".to_string()];
    expected.extend(setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY));
    assert_eq!(ids(&setup.output()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_response_is_paged_through() {
    let config = Config {
        max_rows: Some(4),
        ..Config::default()
    };
    let setup = Setup::new(config, "UTC").await;
    let output = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY)
    );
    assert!(setup.simulator.requests().len() > 24 * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_error_without_the_token() {
    let setup = Setup::new(Config::default(), "UTC").await;
    std::fs::write(
        setup.dir.path().join(".env"),
        "WORKVIVOID=sim-org\nWORKVIVOTOKEN=wrong-token-123\n",
    )
    .unwrap();
    let output = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("WORKVIVOTOKEN"), "{message}");
    assert!(!message.contains("wrong-token-123"), "{message}");
    // Authorization failures are not retried in a loop: one request, then a stop.
    assert_eq!(setup.simulator.requests().len(), 1);
    // The token reached the simulator only through the host's substitution.
    assert_eq!(
        setup.simulator.requests()[0].header("authorization"),
        Some("Bearer wrong-token-123")
    );
}
