//! A connector that misbehaves (`hostile.wasm`) is contained with a clear error, and the next call
//! into it still works.

mod support;

use std::sync::Arc;
use std::time::Duration;
use trawl::capabilities::Capabilities;
use trawl::capabilities::clock::Clock;
use trawl::capabilities::http::{HttpCapability, HttpLimits, NetworkPolicy, RateLimit, Secrets};
use trawl::capabilities::storage::StorageScope;
use trawl::engine::{
    self, RangeRequest, RunContext, RunError, RunOptions, StreamSummary, WindowError,
};
use trawl::runtime::wit::trawl::connector::http::Error as HttpError;
use trawl::runtime::wit::{FetchError, PageRequest, Param, Window};
use trawl::runtime::{CallError, Connector, GuestLimits, LimitExceeded, Runtime};
use trawl::sinks::{CsvOptions, OutputSpec};
use trawl::state::{Interval, StateStore};

const LIMITS: GuestLimits = GuestLimits {
    memory_bytes: 32 << 20,
    cpu_time: Duration::from_millis(300),
    call_timeout: Duration::from_secs(20),
    concurrent_calls: 8,
};

async fn hostile(cache: Option<&std::path::Path>) -> (Runtime, Arc<Connector>) {
    hostile_with(cache, LIMITS).await
}

async fn hostile_with(
    cache: Option<&std::path::Path>,
    limits: GuestLimits,
) -> (Runtime, Arc<Connector>) {
    let (runtime, connector) = support::load_hostile(limits, cache).await;
    (runtime, Arc::new(connector))
}

fn capabilities(connector: &Connector, grants: Option<&[String]>) -> Capabilities {
    let info = connector.info();
    let policy = NetworkPolicy::new(&info.name, &info.hosts, grants).unwrap();
    Capabilities {
        connector: info.name.as_str().into(),
        clock: Clock::System,
        http: Some(Arc::new(
            HttpCapability::new(policy, Secrets::default(), HttpLimits::default())
                .unwrap()
                // The hostile connector sends as fast as it can on purpose; no quota is tested.
                .with_rate_limits([RateLimit::per_second(100_000)]),
        )),
        storage: Some(StorageScope::new(
            StateStore::in_memory().unwrap(),
            &info.name,
            "default",
            1024,
        )),
    }
}

fn request(behaviour: &str) -> PageRequest {
    PageRequest {
        stream: "events".into(),
        window: Window {
            start: 0,
            end: 1000,
        },
        cursor: None,
        params: vec![
            Param {
                name: "behaviour".into(),
                value: behaviour.into(),
            },
            Param {
                name: "target".into(),
                value: "https://example.com/".into(),
            },
        ],
    }
}

async fn fetch(
    connector: &Connector,
    behaviour: &str,
) -> Result<Result<trawl::runtime::Page, FetchError>, CallError> {
    connector
        .fetch_page(capabilities(connector, None), &request(behaviour))
        .await
}

#[tokio::test]
async fn a_busy_loop_is_stopped_by_the_cpu_limit() {
    let (_runtime, connector) = hostile(None).await;
    let error = fetch(&connector, "spin").await.unwrap_err();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::CpuTime { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("CPU limit"), "{error}");
    // A trap leaves nothing behind: the next call gets a fresh instance.
    let page = fetch(&connector, "behave").await.unwrap().unwrap();
    assert_eq!(page.records.len(), 1);
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_limit() {
    let (_runtime, connector) = hostile(None).await;
    let error = fetch(&connector, "allocate").await.unwrap_err();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::Memory { limit }) if limit == 32 << 20),
        "{error}"
    );
    assert!(error.to_string().contains("32 MiB"), "{error}");
    assert!(fetch(&connector, "behave").await.unwrap().is_ok());
}

#[tokio::test]
async fn a_panic_is_a_crash_not_a_host_failure() {
    let (_runtime, connector) = hostile(None).await;
    let error = fetch(&connector, "panic").await.unwrap_err();
    assert!(matches!(error, CallError::Trap(_)), "{error}");
    assert!(
        error.to_string().starts_with("connector crashed"),
        "{error}"
    );
    assert!(error.to_string().contains("panicked on purpose"), "{error}");
}

#[tokio::test]
async fn a_request_to_an_undeclared_host_is_denied() {
    let (_runtime, connector) = hostile(None).await;
    let outcome = fetch(&connector, "request").await.unwrap();
    match outcome {
        Err(FetchError::Http(HttpError::Denied(message))) => {
            assert!(message.contains("https://example.com:443"), "{message}");
            assert!(message.contains("https://api.hostile.test"), "{message}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // A loopback grant does not open other hosts.
    let grants = vec!["http://127.0.0.1:9".to_string()];
    let outcome = connector
        .fetch_page(capabilities(&connector, Some(&grants)), &request("request"))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        Err(FetchError::Http(HttpError::Denied(_)))
    ));
}

async fn run_into_csv(
    connector: &Arc<Connector>,
    behaviour: &str,
) -> Result<StreamSummary, RunError> {
    let dir = tempfile::tempdir().unwrap();
    let output = OutputSpec::Csv {
        path: dir.path().join("out.csv"),
        options: CsvOptions {
            extra_columns: vec![],
            leading_columns: vec![],
            timezone: jiff::tz::TimeZone::UTC,
            named_by_user: true,
        },
    };
    let context = RunContext {
        identity: "hostile".into(),
        connector: connector.clone(),
        capabilities: capabilities(connector, None),
        params: request(behaviour).params,
        profile: "default".into(),
        state: StateStore::in_memory().unwrap(),
        options: RunOptions {
            max_pages_per_window: 50,
            ..RunOptions::default()
        },
    };
    let stream = connector.info().streams[0].clone();
    engine::run_stream(
        &context,
        &stream,
        RangeRequest::Explicit(Interval::new(0, 8000)),
        &output,
    )
    .await
}

#[tokio::test]
async fn an_endless_cursor_is_cut_off() {
    let (_runtime, connector) = hostile(None).await;
    let error = run_into_csv(&connector, "endless-cursor")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            RunError::Window {
                source: WindowError::TooManyPages(50),
                ..
            }
        ),
        "{error}"
    );
    let error = run_into_csv(&connector, "repeat-cursor").await.unwrap_err();
    assert!(
        matches!(&error, RunError::Window { source: WindowError::RepeatedCursor(cursor), .. } if cursor == "same"),
        "{error}"
    );
    assert!(run_into_csv(&connector, "behave").await.is_ok());
}

#[tokio::test]
async fn a_window_over_the_vendors_cap_is_split() {
    let (_runtime, connector) = hostile(None).await;
    let summary = run_into_csv(&connector, "cap").await.unwrap();
    // 8000 ms -> two of 4000 -> four of 2000, each under the 2500 ms cap.
    assert_eq!(summary.windows_committed, 4);
    assert_eq!(summary.tally.records, 4);
}

/// Windows committed together, each widening the CSV header: the rows appended before a widening
/// are checkpointed first, so that the rewrite holds only checkpointed rows.
#[tokio::test]
async fn windows_committed_together_can_each_widen_a_csv_header() {
    let (_runtime, connector) = hostile(None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let output = OutputSpec::Csv {
        path: path.clone(),
        options: CsvOptions {
            extra_columns: vec![],
            leading_columns: vec!["start".into()],
            timezone: jiff::tz::TimeZone::UTC,
            named_by_user: true,
        },
    };
    let context = RunContext {
        identity: "hostile".into(),
        connector: connector.clone(),
        capabilities: capabilities(&connector, None),
        params: request("widen").params,
        profile: "default".into(),
        state: StateStore::in_memory().unwrap(),
        options: RunOptions::default(),
    };
    let stream = connector.info().streams[1].clone();
    assert_eq!(stream.name, "seconds");
    let range = RangeRequest::Explicit(Interval::new(0, 12_000));
    let summary = engine::run_stream(&context, &stream, range, &output)
        .await
        .unwrap();
    assert_eq!(summary.windows_committed, 12);
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.len(), 13);
    assert_eq!(header[0], "start");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    for (index, row) in rows.iter().enumerate() {
        let start = (index * 1000).to_string();
        assert_eq!(&row[0], start.as_str());
        let column = header
            .iter()
            .position(|name| *name == format!("field_{start}"));
        assert_eq!(&row[column.unwrap()], "true");
        assert_eq!(row.iter().filter(|cell| !cell.is_empty()).count(), 2);
    }
    // Everything is checkpointed: a second run adds nothing.
    let again = engine::run_stream(&context, &stream, range, &output)
        .await
        .unwrap();
    assert_eq!(again.windows_total, 0);
    assert_eq!(csv::Reader::from_path(&path).unwrap().records().count(), 12);
}

/// A window whose records are more than one sort chunk spills its sort to disk, even when it is
/// the stream's first and only page and nothing was staged before it.
#[tokio::test]
async fn a_first_page_bigger_than_a_sort_chunk_is_committed() {
    let (_runtime, connector) = hostile(None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let output = OutputSpec::Csv {
        path: path.clone(),
        options: CsvOptions {
            extra_columns: vec![],
            leading_columns: vec!["start".into()],
            timezone: jiff::tz::TimeZone::UTC,
            named_by_user: true,
        },
    };
    let context = RunContext {
        identity: "hostile".into(),
        connector: connector.clone(),
        capabilities: capabilities(&connector, None),
        params: request("widen").params,
        profile: "default".into(),
        state: StateStore::in_memory().unwrap(),
        // Every record is more than a chunk: each window is sorted in runs on disk.
        options: RunOptions {
            sort_chunk_bytes: 1,
            ..RunOptions::default()
        },
    };
    let stream = connector.info().streams[1].clone();
    let range = RangeRequest::Explicit(Interval::new(0, 3_000));
    let summary = engine::run_stream(&context, &stream, range, &output)
        .await
        .unwrap();
    assert_eq!(summary.windows_committed, 3);
    assert_eq!(summary.tally.records, 3);
    assert_eq!(csv::Reader::from_path(&path).unwrap().records().count(), 3);
}

#[tokio::test]
async fn compiled_connectors_are_cached() {
    let cache = tempfile::tempdir().unwrap();
    let cached = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect()
    };
    {
        let (_runtime, connector) = hostile(Some(cache.path())).await;
        assert_eq!(connector.info().name, "hostile");
    }
    assert_eq!(cached().len(), 1);
    {
        // A second runtime loads from the cache, and the result still works.
        let (_runtime, connector) = hostile(Some(cache.path())).await;
        assert!(fetch(&connector, "behave").await.unwrap().is_ok());
    }
    // A damaged cache entry is recompiled, not trusted. (Replaced, not rewritten in place: a
    // loaded component maps its file.)
    let entry = cached().remove(0);
    let damaged = cache.path().join("damaged");
    std::fs::write(&damaged, b"not a compiled component").unwrap();
    std::fs::rename(&damaged, &entry).unwrap();
    let (_runtime, connector) = hostile(Some(cache.path())).await;
    assert!(fetch(&connector, "behave").await.unwrap().is_ok());
    assert_eq!(cached().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stuck_in_a_host_request_is_stopped_by_the_wall_clock_limit() {
    // Epochs cannot interrupt a host call: a server that never answers in time must still not
    // hold the connector forever.
    let server = trawl_simulators::workvivo::start(Default::default())
        .await
        .unwrap();
    server.faults().push(trawl_simulators::faults::Fault::new(
        trawl_simulators::faults::Trigger::PathContains("/".into()),
        trawl_simulators::faults::Action::Delay(Duration::from_secs(30)),
    ));
    let limits = GuestLimits {
        call_timeout: Duration::from_millis(500),
        ..LIMITS
    };
    let (_runtime, connector) = hostile_with(None, limits).await;
    let grants = vec![server.base_url()];
    let mut request = request("request");
    request.params[1].value = format!("{}/slow", server.base_url());
    let error = connector
        .fetch_page(capabilities(&connector, Some(&grants)), &request)
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::WallClock(_)), "{error}");
    assert!(error.to_string().contains("wall-clock limit"), "{error}");
}

/// A Workvivo simulator answering every request with a page of 1,000 records (about 50 KB).
async fn big_page_server() -> trawl_simulators::RunningServer {
    let server = trawl_simulators::workvivo::start(Default::default())
        .await
        .unwrap();
    let records: Vec<_> = (0..1000)
        .map(|id| serde_json::json!({"id": id, "note": "x".repeat(32)}))
        .collect();
    server
        .faults()
        .push(trawl_simulators::faults::Fault::on_path(
            "/",
            trawl_simulators::faults::Action::json(200, &serde_json::json!({ "data": records })),
        ));
    server
}

async fn fetch_from(
    connector: &Connector,
    behaviour: &str,
    server: &trawl_simulators::RunningServer,
) -> Result<Result<trawl::runtime::Page, FetchError>, CallError> {
    let grants = vec![server.base_url()];
    let mut request = request(behaviour);
    request.params[1].value = format!("{}/page", server.base_url());
    connector
        .fetch_page(capabilities(connector, Some(&grants)), &request)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_in_the_host_count_against_the_memory_limit() {
    let server = big_page_server().await;
    let limits = GuestLimits {
        memory_bytes: 8 << 20,
        ..LIMITS
    };
    let (_runtime, connector) = hostile_with(None, limits).await;
    let error = fetch_from(&connector, "hold-bodies", &server)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::Memory { limit }) if limit == 8 << 20),
        "{error}"
    );
    // It got as far as the limit allows, no further.
    let requests = server.requests().len();
    assert!((100..=170).contains(&requests), "{requests} requests");
    assert!(fetch(&connector, "behave").await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_a_record_the_page_does_not_have_breaks_the_contract() {
    let server = big_page_server().await;
    let (_runtime, connector) = hostile(None).await;
    let error = fetch_from(&connector, "keep-missing", &server)
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Contract(_)), "{error}");
    assert_eq!(
        error.to_string(),
        "connector broke the contract: it keeps record 1001 of a body that has 1000"
    );
}

/// Instances come from a pool of reused slots: what one call leaves in memory must be gone for
/// the next.
#[tokio::test]
async fn a_call_finds_nothing_the_call_before_left_in_memory() {
    let one_slot = GuestLimits {
        concurrent_calls: 1,
        ..LIMITS
    };
    let (_runtime, connector) = hostile_with(None, one_slot).await;
    let found = async |behaviour| {
        let page = fetch(&connector, behaviour).await.unwrap().unwrap();
        let seen: serde_json::Value = serde_json::from_str(page.records[0].json.as_str()).unwrap();
        seen["found"].as_bool().unwrap()
    };
    // The search finds a trace where there is one...
    assert!(found("leave-and-look").await);
    // ...and none in the next call, though it runs in the same (only) slot.
    fetch(&connector, "leave-trace").await.unwrap().unwrap();
    assert!(!found("look-for-trace").await);
}

/// More calls at once than the pool has slots wait for one instead of failing.
#[tokio::test]
async fn calls_beyond_the_pool_wait_for_a_slot() {
    let one_slot = GuestLimits {
        concurrent_calls: 1,
        ..LIMITS
    };
    let (_runtime, connector) = hostile_with(None, one_slot).await;
    let calls = (0..6).map(|_| fetch(&connector, "behave"));
    for outcome in futures_util::future::join_all(calls).await {
        assert_eq!(outcome.unwrap().unwrap().records.len(), 1);
    }
}
