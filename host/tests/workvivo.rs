//! The real `workvivo.wasm`, run by the `trawl` binary against the bundled Workvivo simulator.
//! The simulator's dataset is the ground truth: the output must hold each of its events in the
//! requested range exactly once, in event-time order.

mod support;

use support::{DAY, HOUR, Setup, ids, rows, stderr};
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::workvivo::{Config, DEFAULT_START};

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

    support::write_few_retries_config(setup.dir.path());
    let first = setup
        .run(&["2024-09-01", "2024-09-01", "--config", "trawl.ron"])
        .await;
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
    let requests_before_rerun = setup.simulator.requests().len();
    let second = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY)
    );
    // The rerun never asked again for an hour that was already delivered.
    let first_run_requests = requests_before_rerun;
    for request in &setup.simulator.requests()[first_run_requests..] {
        for hour in 0..5 {
            let delivered = format!("/v1/siem/{}/", DEFAULT_START + hour * HOUR);
            assert!(!request.path.starts_with(&delivered), "{}", request.path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_without_a_usable_time_fails_its_window_and_loses_nothing_else() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let failing_hour = DEFAULT_START + 3 * HOUR;
    // The host reads each event's id and time; the second event here has a time it cannot read.
    let body = serde_json::json!({
        "data": [
            {"id": 1, "created_at_timestamp": failing_hour + 10},
            {"id": 2, "created_at_timestamp": "soon"},
        ],
        "meta": {"pagination": {"total_records": 2}},
    });
    setup.simulator.faults().push(Fault::on_path(
        format!("/v1/siem/{failing_hour}/"),
        Action::json(200, &body),
    ));
    support::write_few_retries_config(setup.dir.path());
    let output = setup
        .run(&[
            "2024-09-01",
            "2024-09-01",
            "--config",
            "trawl.ron",
            "--workers",
            "1",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("2024-09-01T03:00:00Z..2024-09-01T04:00:00Z"),
        "{message}"
    );
    let text = body.to_string();
    let at = text
        .find(r#"{"created_at_timestamp":"soon""#)
        .expect("the broken event");
    let expected = format!("expected record 1 (at byte {at}) to have `created_at_timestamp`");
    assert!(message.contains(&expected), "{message}");
    assert!(message.contains("found `\"soon\"`"), "{message}");
    // Nothing of the broken hour lands, not even its good event; the hours before it are whole.
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, failing_hour)
    );
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
    let output = setup
        .run(&["2024-09-01", "2024-09-01", "--workers", "1"])
        .await;
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

/// The ids in a JSON Lines file, in file order.
fn json_line_ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| {
            let event: serde_json::Value =
                serde_json::from_str(line).expect("one JSON object a line");
            event["id"].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_and_per_day_files_hold_the_same_records() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let output = setup
        .run(&[
            "2024-09-01",
            "2024-09-03",
            "--set",
            "output.format=daily-jsonl",
            "--set",
            "output.directory=daily/",
            "--set",
            "output.base-name=siem",
            "--set",
            "output.extension=.log",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    for day in 0..3 {
        let file = setup
            .dir
            .path()
            .join(format!("daily/siem_2024-09-0{}.log", day + 1));
        let from = DEFAULT_START + day * DAY;
        assert_eq!(json_line_ids(&file), setup.expected_ids(from, from + DAY));
    }

    let output = setup
        .run(&[
            "2024-09-01",
            "2024-09-03",
            "--set",
            "output.format=jsonl",
            "--output",
            "siem.jsonl",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        json_line_ids(&setup.dir.path().join("siem.jsonl")),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 3 * DAY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_without_a_range_continues_after_the_seed_file() {
    // Events up to now, and a seed script's CSV holding the older ones.
    let now = jiff::Timestamp::now().as_second();
    let start = now - now % HOUR - 5 * HOUR;
    let config = Config {
        dataset: trawl_simulators::workvivo::Dataset::generate(start, 1, 12, 5),
        ..Config::default()
    };
    let setup = Setup::new(config, "UTC").await;
    // The seed stopped in the middle of the burst of equal timestamps two hours in: it wrote two
    // of its three events.
    let burst = start + 2 * HOUR;
    let at_burst: Vec<_> = setup
        .dataset
        .events
        .iter()
        .filter(|event| event.created_at_timestamp == burst)
        .collect();
    assert!(at_burst.len() >= 3, "the dataset has a burst on the hour");
    let seed_events: Vec<_> = setup
        .dataset
        .events
        .iter()
        .filter(|event| event.created_at_timestamp < burst)
        .chain(at_burst[..2].iter().copied())
        .collect();
    let columns = [
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
    ];
    std::fs::create_dir_all(setup.output().parent().unwrap()).unwrap();
    let mut seed = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_path(setup.output())
        .unwrap();
    seed.write_record(columns).unwrap();
    for event in &seed_events {
        let cell = |column: &str| match &event.json[column] {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let row: Vec<String> = columns
            .iter()
            .map(|column| match *column {
                "local_timestamp" => "2025-06-08 09:07:21 UTC".to_string(),
                column => cell(column),
            })
            .collect();
        seed.write_record(&row).unwrap();
    }
    seed.flush().unwrap();
    drop(seed);

    let output = setup.run(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("continuing after its newest record"),
        "{message}"
    );
    assert!(message.contains("2 already written, skipped"), "{message}");
    // The seed's rows, then every later event up to the last whole quarter hour (of when the
    // run began: the clock may pass one while it runs), once.
    let after = jiff::Timestamp::now().as_second();
    let expected_until = |now: i64| -> Vec<String> {
        let last_whole_quarter = now - now % (HOUR / 4);
        seed_events
            .iter()
            .map(|event| event.id.to_string())
            .chain(
                setup
                    .dataset
                    .between(burst, last_whole_quarter)
                    .into_iter()
                    .filter(|event| !seed_events.iter().any(|seen| seen.id == event.id))
                    .map(|event| event.id.to_string()),
            )
            .collect()
    };
    let written = ids(&setup.output());
    assert!(
        written == expected_until(now) || written == expected_until(after),
        "{written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_http_shows_everything_but_the_secret() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let output = setup
        .run(&[
            "2024-09-01T00:00:00Z",
            "2024-09-01T01:00:00Z",
            "--trace-http",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let trace = stderr(&output);
    assert!(trace.contains("Bearer {{secret:token}}"), "{trace}");
    assert!(trace.contains("Workvivo-Id: sim-org"), "{trace}");
    assert!(trace.contains("\"created_at_timestamp\""), "{trace}");
    assert!(!trace.contains(support::TOKEN), "{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_streak_longer_than_any_count_of_attempts_is_waited_out() {
    // Forty 503s in a row, then ten connections reset: every worker's requests fail far more
    // often than the 8 attempts a request was once given. The run keeps retrying while nothing
    // succeeds, for less than its stall limit, and ends complete.
    let setup = Setup::new(Config::default(), "UTC").await;
    setup
        .simulator
        .faults()
        .push(Fault::on_path("/v1/siem/", Action::status(503)).times(40));
    setup
        .simulator
        .faults()
        .push(Fault::on_path("/v1/siem/", Action::ResetConnection).times(10));
    std::fs::write(
        setup.dir.path().join("trawl.ron"),
        "(limits: (retry_max_delay_seconds: 0.05))",
    )
    .unwrap();
    let output = setup
        .run(&["2024-09-01", "2024-09-01", "--config", "trawl.ron"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY)
    );
    let message = stderr(&output);
    assert!(message.contains("40 answered 5xx"), "{message}");
    let statuses: Vec<u16> = setup
        .simulator
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses.iter().filter(|status| **status == 503).count(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_no_progress_for_its_stall_limit_names_what_kept_failing() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let failing_hour = DEFAULT_START + 5 * HOUR;
    setup.simulator.faults().push(Fault::status_on_path(
        format!("/v1/siem/{failing_hour}/"),
        503,
        None,
    ));
    // Gives up after 1.2 seconds without progress.
    std::fs::write(
        setup.dir.path().join("trawl.ron"),
        "(limits: (stall_minutes: 0.02, retry_max_delay_seconds: 0.05))",
    )
    .unwrap();
    let output = setup
        .run(&["2024-09-01", "2024-09-01", "--config", "trawl.ron"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    let url = setup.simulator.base_url();
    let origin = url.trim_end_matches('/');
    assert!(
        message.contains(&format!("no request to {origin} succeeded for")),
        "{message}"
    );
    assert!(message.contains("answers 503; last: 503 from"), "{message}");
    assert!(message.contains("stall_minutes"), "{message}");
    // The other hours were delivered; the failing one is left for the next run.
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, failing_hour)
    );
}
