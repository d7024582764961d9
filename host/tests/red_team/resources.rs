//! Attacks on trawl's resources through what a connector returns or has the host do for it.

use super::support;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trawl::capabilities::Capabilities;
use trawl::capabilities::clock::Clock;
use trawl::capabilities::http::{HttpCapability, HttpLimits, NetworkPolicy, Secrets};
use trawl::capabilities::storage::StorageScope;
use trawl::engine::{
    self, RangeRequest, RunContext, RunError, RunOptions, StreamSummary, WindowError,
};
use trawl::runtime::wit::{FetchError, PageRequest, Param, Window};
use trawl::runtime::{CallError, Connector, GuestLimits, LimitExceeded, Page, Runtime};
use trawl::sinks::{CsvOptions, OutputSpec};
use trawl::state::{Interval, StateStore};
use trawl_simulators::RunningServer;
use trawl_simulators::faults::{Action, Fault};

const LIMITS: GuestLimits = GuestLimits {
    memory_bytes: 32 << 20,
    cpu_time: Duration::from_millis(300),
    call_timeout: Duration::from_secs(20),
    concurrent_calls: 4,
};

async fn hostile(limits: GuestLimits) -> (Runtime, Arc<Connector>) {
    let (runtime, connector) = support::load_hostile(limits, None).await;
    (runtime, Arc::new(connector))
}

fn capabilities(
    connector: &Connector,
    server: Option<&RunningServer>,
    state: StateStore,
) -> Capabilities {
    let info = connector.info();
    let grants = server.map(|server| vec![server.base_url()]);
    let policy = NetworkPolicy::new(&info.name, &info.hosts, grants.as_deref()).unwrap();
    Capabilities {
        connector: info.name.as_str().into(),
        clock: Clock::System,
        http: Some(Arc::new(
            HttpCapability::new(policy, Secrets::default(), HttpLimits::default()).unwrap(),
        )),
        storage: Some(StorageScope::new(state, &info.name, "default", 1 << 20)),
    }
}

fn params(behaviour: &str, server: Option<&RunningServer>) -> Vec<Param> {
    let target = server.map_or("https://example.com/".into(), |server| {
        format!("{}/page", server.base_url())
    });
    vec![
        Param {
            name: "behaviour".into(),
            value: behaviour.into(),
        },
        Param {
            name: "target".into(),
            value: target,
        },
    ]
}

async fn fetch(
    connector: &Connector,
    behaviour: &str,
    server: Option<&RunningServer>,
) -> Result<Result<Page, FetchError>, CallError> {
    let request = PageRequest {
        stream: "events".into(),
        window: Window {
            start: 0,
            end: 1000,
        },
        cursor: None,
        params: params(behaviour, server),
    };
    let state = StateStore::in_memory().unwrap();
    connector
        .fetch_page(capabilities(connector, server, state), &request)
        .await
}

/// `error` is the page-record limit of `limit` records, naming the setting that raises it.
fn assert_page_records_limit(error: &CallError, limit: usize) {
    assert!(
        matches!(
            error,
            CallError::Limit(LimitExceeded::PageRecords { limit: found }) if *found == limit
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("`limits: (max_page_records: ...)`"),
        "{error}"
    );
}

/// The host survived: the same connector's next call works.
async fn still_works(connector: &Connector) {
    let page = fetch(connector, "behave", None).await.unwrap().unwrap();
    assert_eq!(page.records.len(), 1);
}

/// A server answering every request with `body` as JSON.
async fn serving(body: String) -> RunningServer {
    let server = trawl_simulators::workvivo::start(Default::default())
        .await
        .unwrap();
    server.faults().push(Fault::on_path(
        "/",
        Action::Status {
            status: 200,
            body,
            content_type: "application/json".into(),
            retry_after: None,
        },
    ));
    server
}

/// A page of `bytes` (about) of records, each `record`.
fn page_of(record: &str, bytes: usize) -> String {
    let count = bytes / (record.len() + 1);
    let mut body = String::with_capacity(bytes + 16);
    body.push_str("{\"data\":[");
    for index in 0..count {
        if index > 0 {
            body.push(',');
        }
        body.push_str(record);
    }
    body.push_str("]}");
    body
}

async fn run_into(
    connector: &Arc<Connector>,
    behaviour: &str,
    output: &OutputSpec,
    state: StateStore,
) -> Result<StreamSummary, RunError> {
    let context = RunContext {
        identity: "hostile".into(),
        connector: connector.clone(),
        capabilities: capabilities(connector, None, state.clone()),
        params: params(behaviour, None),
        profile: "default".into(),
        state,
        options: RunOptions {
            max_pages_per_window: 50,
            ..RunOptions::default()
        },
    };
    // `seconds`: a window a second, eight windows.
    let stream = connector.info().streams[1].clone();
    engine::run_stream(
        &context,
        &stream,
        RangeRequest::Explicit(Interval::new(0, 8000)),
        output,
    )
    .await
}

fn csv_output(dir: &Path) -> OutputSpec {
    OutputSpec::Csv {
        path: dir.join("out.csv"),
        options: CsvOptions {
            extra_columns: vec![],
            leading_columns: vec![],
            timezone: jiff::tz::TimeZone::UTC,
            named_by_user: true,
        },
    }
}

#[tokio::test]
async fn a_record_nested_100000_deep_is_refused_for_csv_and_json_lines() {
    let (_runtime, connector) = hostile(LIMITS).await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = [
        csv_output(dir.path()),
        OutputSpec::Jsonl {
            path: dir.path().join("out.jsonl"),
        },
    ];
    for output in outputs {
        let error = run_into(
            &connector,
            "deep-record",
            &output,
            StateStore::in_memory().unwrap(),
        )
        .await
        .unwrap_err();
        let RunError::Window {
            source: WindowError::NotAnObject { id, reason },
            ..
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(id, "deep");
        assert!(
            reason.contains("at most 127 nested arrays and objects"),
            "{reason}"
        );
        assert!(
            error
                .to_string()
                .contains("record deep is not one JSON object"),
            "{error}"
        );
        // The same process goes on: a well-behaved run into the same output works.
        run_into(
            &connector,
            "behave",
            &output,
            StateStore::in_memory().unwrap(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_nested_100000_deep_is_a_page_error_not_a_crash() {
    let depth = 100_000;
    let body = format!(
        "{{\"data\":[{{\"id\":1,\"t\":{}1{}}}]}}",
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    let server = serving(body).await;
    let (_runtime, connector) = hostile(LIMITS).await;
    let outcome = fetch(&connector, "read-page", Some(&server)).await.unwrap();
    let Err(FetchError::Malformed(message)) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        message.contains("at most 127 nested arrays and objects"),
        "{message}"
    );
    still_works(&connector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_empty_records_is_stopped_by_the_memory_limit_before_it_is_allocated() {
    // 4 MiB of `{}`: 1.4 million records, whose ranges alone take far more than the 32 MiB limit.
    let server = serving(page_of("{}", 4 << 20)).await;
    let (_runtime, connector) = hostile(LIMITS).await;
    connector.limit_page_records(10_000_000);
    let error = fetch(&connector, "read-page", Some(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::Memory { limit }) if limit == 32 << 20),
        "{error}"
    );
    assert!(
        error.to_string().contains("`limits: (memory_mib: ...)`"),
        "{error}"
    );
    still_works(&connector).await;

    // Within the memory limit, the page-record limit is checked as the page is read.
    let server = serving(page_of(r#"{"a":1}"#, 64 << 10)).await;
    connector.limit_page_records(1_000);
    let error = fetch(&connector, "read-page", Some(&server))
        .await
        .unwrap_err();
    assert_page_records_limit(&error, 1_000);
    connector.limit_page_records(100_000);
    let page = fetch(&connector, "read-page", Some(&server))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.records.len(), (64 << 10) / 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_page_again_and_again_is_stopped_by_the_cpu_limit() {
    let server = serving(page_of(
        r#"{"id":12345,"note":"xxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        4 << 20,
    ))
    .await;
    let limits = GuestLimits {
        memory_bytes: 64 << 20,
        ..LIMITS
    };
    let (_runtime, connector) = hostile(limits).await;
    let started = Instant::now();
    let error = fetch(&connector, "reread-page", Some(&server))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::CpuTime { .. })),
        "{error}"
    );
    assert!(
        error.to_string().contains("`limits: (cpu_seconds: ...)`"),
        "{error}"
    );
    // Not the 20 s wall-clock limit: the host's work counted against the 0.3 s budget.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    still_works(&connector).await;
}

#[tokio::test]
async fn answers_made_slow_to_redact_are_paid_for_by_the_connector_that_fetched_them() {
    // Every place in the body matches all of the secret but its last character: taking the
    // secret out of it costs the host the secret's length in steps per byte.
    let secret = format!("{}X", "s".repeat(63));
    let server = serving("s".repeat(4 << 20)).await;
    let limits = GuestLimits {
        memory_bytes: 64 << 20,
        ..LIMITS
    };
    let (_runtime, connector) = hostile(limits).await;
    let mut secrets = Secrets::default();
    secrets.insert("token", secret);
    let mut capabilities =
        capabilities(&connector, Some(&server), StateStore::in_memory().unwrap());
    let policy = NetworkPolicy::new(
        &connector.info().name,
        &connector.info().hosts,
        Some(&[server.base_url()]),
    )
    .unwrap();
    capabilities.http = Some(Arc::new(
        HttpCapability::new(policy, secrets, HttpLimits::default()).unwrap(),
    ));
    let request = PageRequest {
        stream: "events".into(),
        window: Window {
            start: 0,
            end: 1000,
        },
        cursor: None,
        params: params("refetch", Some(&server)),
    };
    let started = Instant::now();
    let error = connector
        .fetch_page(capabilities, &request)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, CallError::Limit(LimitExceeded::CpuTime { .. })),
        "{error}"
    );
    // Not the 20 s wall-clock limit: the host's work on the answers counted against 0.3 s.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    still_works(&connector).await;
}

#[tokio::test]
async fn a_page_listing_200000_records_is_stopped_as_it_leaves_the_sandbox() {
    // Time enough to make the records, on a busy machine too.
    let limits = GuestLimits {
        cpu_time: Duration::from_secs(5),
        ..LIMITS
    };
    let (_runtime, connector) = hostile(limits).await;
    let error = fetch(&connector, "many-records", None).await.unwrap_err();
    assert_page_records_limit(&error, 100_000);
    still_works(&connector).await;
}

/// Everything logged while `work` runs, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_flood_of_log_lines_is_cut_and_cannot_forge_lines() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Time enough for the 10,000 calls, on a busy machine too.
    let limits = GuestLimits {
        cpu_time: Duration::from_secs(5),
        ..LIMITS
    };
    let (_runtime, connector) = hostile(limits).await;
    let page = fetch(&connector, "log-flood", None).await.unwrap().unwrap();
    assert!(page.records.is_empty());
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let messages = lines
        .iter()
        .filter(|line| line.contains("message "))
        .count();
    assert_eq!(messages, 1_000, "a call logs at most 1,000 messages");
    let dropped: Vec<_> = lines
        .iter()
        .filter(|line| line.contains("dropped"))
        .collect();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(
        dropped[0].contains("dropped 9000 more log messages"),
        "{}",
        dropped[0]
    );
    // Every line is one trawl wrote: none starts where a connector's line feed would put it.
    for line in &lines {
        assert!(!line.starts_with("ERROR trawl"), "forged: {line}");
        assert!(!line.contains('\r') && !line.contains('\x1b') && !line.contains('\u{202e}'));
    }
    assert!(
        log.contains(r"message 0\nERROR trawl: forged line\r\e[2K\u{202e}desrever"),
        "{log}"
    );
    assert!(log.contains(r"printed"), "{log}");
    assert!(
        log.contains(r"ERROR trawl: forged by print\e]0;title\u{7}"),
        "{log}"
    );
    drop(_guard);
    still_works(&connector).await;
}

/// The bytes of every file in `dir`.
fn size_of_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_of_any_length_cost_the_state_file_a_bounded_amount() {
    let (_runtime, connector) = hostile(LIMITS).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let state = StateStore::open(&state_dir).unwrap();
    let output = csv_output(dir.path());
    let summary = run_into(&connector, "long-ids", &output, state.clone())
        .await
        .unwrap();
    assert_eq!(summary.windows_committed, 8);
    // 16,000 ids of 400 bytes: 6.4 MB as they are, stored twice (the table and its key).
    let scope = trawl::state::Scope {
        connector: "hostile".into(),
        profile: "default".into(),
        stream: "seconds".into(),
        output: output.key(),
    };
    let seen = state.seen_ids(&scope).unwrap();
    assert_eq!(seen.len(), 16_000);
    assert!(
        seen.iter()
            .all(|id| id.len() == 71 && id.starts_with("sha256:"))
    );
    drop(state);
    // Each remembered id is a row and a key entry, each holding the id and the stream's scope
    // (its output's path, mostly): bounded by the digest's length, not the id's. As they are, the
    // ids alone would take 12.8 MB.
    let per_id = 2 * (71 + output.key().len() + 64) as u64;
    let size = size_of_files(&state_dir);
    assert!(size < 16_000 * per_id, "the state takes {size} bytes");
    assert!(size < 6_400_000, "the state takes {size} bytes");
    // Remembered by digest, they still dedup: the same span again writes nothing new.
    let state = StateStore::open(&state_dir).unwrap();
    let again = run_into(&connector, "long-ids", &output, state).await;
    let again = again.unwrap();
    assert_eq!(again.windows_total, 0);
}

#[tokio::test]
async fn a_cursor_of_a_mebibyte_is_refused_not_saved_with_every_page() {
    let (_runtime, connector) = hostile(LIMITS).await;
    let dir = tempfile::tempdir().unwrap();
    let error = run_into(
        &connector,
        "huge-cursor",
        &csv_output(dir.path()),
        StateStore::in_memory().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &error,
            RunError::Window {
                source: WindowError::CursorTooLong {
                    len,
                    limit: 65_536
                },
                ..
            } if *len == (1 << 20) + 1
        ),
        "{error}"
    );
    assert!(error.to_string().contains("at most 65536 bytes"), "{error}");
    still_works(&connector).await;
}

/// The process's peak resident memory so far, in MiB.
fn peak_rss_mib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as u64 / 1024
}

/// Reads a page of just under 32 MiB (the default response cap) of `record`s under the default
/// limits, and prints the process's peak memory before and after. The peak is the process's:
/// run one at a time, e.g.
/// `cargo test --test red_team -- --ignored --exact resources::peak_memory_of_a_32_mib_page_of_empty_records --nocapture`.
/// With `TRAWL_MEASURE_PAGE_RECORDS` set, the page-record limit is that instead of its default.
async fn measure_peak_memory(record: &str) {
    let server = serving(page_of(record, (32 << 20) - 64)).await;
    let (_runtime, connector) = hostile(GuestLimits::default()).await;
    if let Ok(records) = std::env::var("TRAWL_MEASURE_PAGE_RECORDS")
        && !records.is_empty()
    {
        connector.limit_page_records(records.parse().unwrap());
    }
    let before = peak_rss_mib();
    let started = Instant::now();
    let outcome = fetch(&connector, "read-page", Some(&server)).await;
    let took = started.elapsed();
    let outcome = match outcome {
        Ok(Ok(page)) => format!("{} records", page.records.len()),
        Ok(Err(error)) => format!("{error:?}"),
        Err(error) => error.to_string(),
    };
    println!(
        "page of {record}: peak {before} MiB before the call, {} MiB after; {took:?}; {outcome}",
        peak_rss_mib()
    );
    assert!(peak_rss_mib() < 1024, "the host stayed within 1 GiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run alone, its figure is the process's peak"]
async fn peak_memory_of_a_32_mib_page_of_empty_records() {
    measure_peak_memory("{}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run alone, its figure is the process's peak"]
async fn peak_memory_of_a_32_mib_page_of_small_records() {
    measure_peak_memory(r#"{"a":1}"#).await;
}
