//! The promise: every record exactly once, whatever the vendor and the machine do. The real
//! `workvivo.wasm` and `trawl` binary against the Workvivo simulator, whose dataset is the ground
//! truth.

mod support;

use std::time::{Duration, Instant};
use support::{DAY, HOUR, Setup, ids, run_to_end, stderr};
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::ratelimit::Quota;
use trawl_simulators::workvivo::{Config, DEFAULT_START};

/// Writes a config file into the setup's folder and returns its name.
fn config_file(setup: &Setup, text: &str) -> &'static str {
    std::fs::write(setup.dir.path().join("trawl.ron"), text).unwrap();
    "trawl.ron"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_faults_do_not_change_the_output() {
    // Small pages, so that a window takes several requests and faults land mid-window.
    let setup = Setup::new(
        Config {
            max_rows: Some(5),
            ..Config::default()
        },
        "UTC",
    )
    .await;
    setup.simulator.faults().extend([
        Fault::with_probability(0.025, 11, Action::status(429).with_retry_after(1)),
        Fault::with_probability(0.025, 12, Action::status(429)),
        Fault::with_probability(0.02, 13, Action::html(502)),
        Fault::with_probability(
            0.015,
            14,
            Action::json(500, &serde_json::json!({"message": "Server Error"})),
        ),
        Fault::with_probability(0.015, 15, Action::html(503)),
        Fault::with_probability(0.02, 16, Action::ResetConnection),
        Fault::with_probability(0.01, 17, Action::TruncatedBody),
        // Slower than the HTTP timeout below: the request is abandoned and asked again.
        Fault::with_probability(0.01, 18, Action::Delay(Duration::from_secs(4))),
    ]);
    let config = config_file(&setup, "(limits: (http_timeout_seconds: 1.5))");
    let output = setup
        .run(&[
            "2024-09-01",
            "2024-09-02",
            "--workers",
            "4",
            "--config",
            config,
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY)
    );
    let requests = setup.simulator.requests();
    let failed = requests
        .iter()
        .filter(|request| request.status != 200)
        .count();
    assert!(
        failed >= 10,
        "only {failed} of {} requests failed",
        requests.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_moment_a_rerun_leaves_every_record_exactly_once() {
    // Several pages per window and a little latency, so that kills land in every phase: mid-page,
    // between a page and its checkpoint, between the output and its checkpoint.
    let setup = Setup::new(
        Config {
            max_rows: Some(3),
            ..Config::default()
        },
        "UTC",
    )
    .await;
    setup.simulator.faults().push(Fault::with_probability(
        0.5,
        21,
        Action::Delay(Duration::from_millis(20)),
    ));
    let args = ["2024-09-01", "2024-09-03", "--workers", "4"];
    let truth = setup.expected_ids(DEFAULT_START, DEFAULT_START + 3 * DAY);
    let mut kills = 0;
    for point in 0..24u64 {
        let before = setup.simulator.requests().len();
        let mut child = setup
            .command(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("trawl starts");
        // Kill after a varying number of requests, plus a varying delay inside that request.
        let target = before + 2 + point as usize % 5;
        let deadline = Instant::now() + Duration::from_secs(60);
        while setup.simulator.requests().len() < target && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(point * 3 % 20)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no chance to clean up.
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever is in the output now is a prefix of the truth: no duplicate, no gap, no torn row.
        if setup.output().exists() {
            let written = ids(&setup.output());
            assert!(
                truth.starts_with(&written),
                "after kill {point}: the output is not a prefix of the truth"
            );
        }
    }
    assert!(
        kills >= 20,
        "only {kills} runs were killed before they finished"
    );
    let last = setup.run(&args).await;
    assert!(last.status.success(), "{}", stderr(&last));
    assert_eq!(ids(&setup.output()), truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_checkpointed_while_a_later_one_is_slow() {
    // Checkpoints wait a little for the windows after them; a window that takes long to come
    // must not hold back those before it.
    let setup = Setup::new(Config::default(), "UTC").await;
    let slow_hour = DEFAULT_START + 3 * HOUR;
    let slow_path = format!("/v1/siem/{slow_hour}/");
    setup.simulator.faults().push(Fault::on_path(
        slow_path.clone(),
        Action::Delay(Duration::from_secs(120)),
    ));
    // Two requests out at once: whichever goes out first, the slow hour's or the hour's before
    // it, the hour before is answered.
    let args = ["2024-09-01", "2024-09-01", "--workers", "2"];
    let mut child = setup
        .command(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("trawl starts");
    // Requests are logged once answered.
    let hour_before = format!("/v1/siem/{}/", slow_hour - HOUR);
    let answered_hour_before = || {
        let requests = setup.simulator.requests();
        requests
            .iter()
            .any(|request| request.path.starts_with(&hour_before))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answered_hour_before() {
        assert!(
            Instant::now() < deadline,
            "trawl never asked for the hour before the slow one"
        );
        assert!(child.try_wait().unwrap().is_none(), "trawl ended early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Far longer than a checkpoint may wait, far shorter than the slow hour takes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap(); // SIGKILL: nothing is checkpointed on the way out.
    child.wait().unwrap();

    setup.simulator.faults().clear();
    let before_rerun = setup.simulator.requests().len();
    let rerun = setup.run(&args).await;
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY)
    );
    // The hours before the slow one were checkpointed before the kill: not asked for again.
    for request in &setup.simulator.requests()[before_rerun..] {
        for hour in 0..3 {
            let delivered = format!("/v1/siem/{}/", DEFAULT_START + hour * HOUR);
            assert!(!request.path.starts_with(&delivered), "{}", request.path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_used_fully_and_never_exceeded() {
    // 10 requests in any second and 25 in any 3 seconds, enforced by the simulator with 429s.
    let setup = Setup::new(
        Config {
            quotas: vec![
                Quota {
                    requests: 10,
                    per: Duration::from_secs(1),
                },
                Quota {
                    requests: 25,
                    per: Duration::from_secs(3),
                },
            ],
            ..Config::default()
        },
        "UTC",
    )
    .await;
    let config = config_file(&setup, r#"(rate_limits: ["10/1s", "25/3s"])"#);
    let output = setup
        .run(&[
            "2024-09-01",
            "2024-09-02",
            "--workers",
            "8",
            "--config",
            config,
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = setup.simulator.requests();
    assert_eq!(requests.len(), 48);
    assert!(requests.iter().all(|request| request.status == 200));
    // The quickest schedule the quotas allow for 48 requests: 10 at 0 s, 10 at 1 s, 5 at 2 s
    // (25 in 3 s), 10 at 3 s, 10 at 4 s, 3 at 5 s. Measured at the simulator, from the first
    // request to the last, trawl must come within 5% of it without a single 429.
    let span = requests.last().unwrap().received_at - requests[0].received_at;
    let quickest = Duration::from_secs(5);
    assert!(span >= quickest - Duration::from_millis(50), "{span:?}");
    assert!(
        span <= quickest.mul_f64(1.05),
        "{span:?} is more than 5% over {quickest:?}"
    );
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_with_overlap_repeat_nothing() {
    // Events up to now, so that runs without a range (from the watermark to now) have data.
    let now = jiff::Timestamp::now().as_second();
    let start = now - now % HOUR - 6 * HOUR;
    let config = Config {
        dataset: trawl_simulators::workvivo::Dataset::generate(start, 1, 30, 3),
        ..Config::default()
    };
    let setup = Setup::new(config, "UTC").await;
    // A first run with a range ...
    let first_start = start.to_string();
    let first = setup.run(&[&first_start, "--overlap", "90m"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let after_first = ids(&setup.output()).len();
    assert!(after_first > 0);

    // ... then runs that continue from its end, re-reading the last 90 minutes and stopping 5
    // minutes short of now, on a whole hour: nothing written twice.
    for _ in 0..2 {
        let requests_before = setup.simulator.requests().len();
        let again = setup.run(&["--overlap", "90m", "--lag", "5m"]).await;
        assert!(again.status.success(), "{}", stderr(&again));
        let message = stderr(&again);
        assert!(message.contains("already written, skipped"), "{message}");
        let latest_end = setup.simulator.requests()[requests_before..]
            .iter()
            .filter_map(|request| request.path.split('/').nth(4)?.parse::<i64>().ok())
            .max()
            .unwrap();
        let lagged_now = jiff::Timestamp::now().as_second() - 5 * 60;
        assert!(latest_end <= lagged_now + 1, "{latest_end} > {lagged_now}");
    }
    let written = ids(&setup.output());
    let end = jiff::Timestamp::now().as_second() + 1;
    let truth = setup.expected_ids(start, end);
    assert!(truth.starts_with(&written), "{written:?}");
    assert!(written.len() >= after_first);
    let mut unique = written.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), written.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_windows_keep_edge_events_once_and_in_order() {
    let setup = Setup::new(
        Config {
            // Pages that come back newest first do not change the order of the output.
            order: trawl_simulators::workvivo::Order::Descending,
            max_rows: Some(3),
            ..Config::default()
        },
        "UTC",
    )
    .await;
    let output = setup
        .run(&["2024-09-01", "2024-09-03", "--workers", "8"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 3 * DAY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_cap_stops_exactly_there_and_the_next_run_goes_on() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let truth = setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY);
    let first = setup
        .run(&["2024-09-01", "2024-09-01", "--max-records", "50"])
        .await;
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(ids(&setup.output()), truth[..50]);
    let second = setup
        .run(&["2024-09-01", "2024-09-01", "--max-records", "60"])
        .await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(ids(&setup.output()), truth[..110]);
    let rest = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert_eq!(ids(&setup.output()), truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_keeps_only_the_wanted_events() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let output = setup
        .run(&["2024-09-01", "2024-09-01", "--filter", "event=login,logout"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let (_, rows) = support::rows(&setup.output());
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|row| row["event"] == "login" || row["event"] == "logout")
    );
    let expected: Vec<String> = setup
        .dataset
        .between(DEFAULT_START, DEFAULT_START + DAY)
        .into_iter()
        .filter(|event| matches!(event.json["event"].as_str(), Some("login" | "logout")))
        .map(|event| event.id.to_string())
        .collect();
    assert_eq!(ids(&setup.output()), expected);
    let _ = run_to_end;
}
