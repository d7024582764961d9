//! The Yandex 360 simulator over HTTP: auth, scopes, validation, windows, newest-first paging, page
//! tokens, empty pages, retention and the rate limit.

mod common;

use std::time::Duration;

use serde_json::Value;
use trawl_simulators::RunningServer;
use trawl_simulators::ratelimit::Quota;
use trawl_simulators::yandex360::{
    self, Config, DEFAULT_START_MS, Dataset, ErrorBody, LastToken, ORG_ID, Retention, Stream,
    TOKEN, WindowMode, rfc3339_seconds,
};

const HOUR_MS: i64 = 3_600_000;

fn small() -> Config {
    Config {
        dataset: Dataset::generate(DEFAULT_START_MS, 6, 3),
        ..Config::default()
    }
}

async fn start(config: Config) -> RunningServer {
    yandex360::start(config).await.expect("simulator starts")
}

fn path(stream: &str) -> String {
    format!("/security/v1/org/{ORG_ID}/audit_log/{stream}")
}

fn iso(ms: i64) -> String {
    assert_eq!(ms % 1000, 0);
    rfc3339_seconds(ms / 1000)
}

/// A GET with `Authorization: <authorization>` (none when empty) and a raw query string.
async fn get_as(
    server: &RunningServer,
    authorization: &str,
    path: &str,
    query: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{path}?{query}", server.base_url()));
    if !authorization.is_empty() {
        request = request.header("Authorization", authorization);
    }
    request.send().await.expect("request succeeds")
}

async fn get(server: &RunningServer, path: &str, query: &str) -> reqwest::Response {
    get_as(server, &format!("OAuth {TOKEN}"), path, query).await
}

async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

fn window(from: i64, to: i64) -> String {
    format!(
        "afterDate={}&beforeDate={}",
        urlencode(&iso(from)),
        urlencode(&iso(to))
    )
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// Every page of a query, following `nextPageToken` until it is empty: the events, page sizes.
async fn all_pages(server: &RunningServer, stream: &str, query: &str) -> (Vec<Value>, Vec<usize>) {
    let mut events = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let query = if token.is_empty() {
            query.to_string()
        } else {
            format!("{query}&pageToken={token}")
        };
        let response = get(server, &path(stream), &query).await;
        assert_eq!(response.status(), 200);
        let body = json(response).await;
        let page = body["events"].as_array().cloned().unwrap_or_default();
        sizes.push(page.len());
        events.extend(page);
        token = body["nextPageToken"].as_str().unwrap_or("").to_string();
        if token.is_empty() {
            return (events, sizes);
        }
    }
}

fn uniq_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}|{}", e["uniqId"].as_str().unwrap(), e["eventType"]))
        .collect()
}

fn expected(config: &Config, stream: Stream, from: i64, to: i64) -> Vec<String> {
    let mut events: Vec<Value> = config
        .dataset
        .between(stream, from, to)
        .into_iter()
        .map(|e| e.json.clone())
        .collect();
    events.reverse();
    uniq_ids(&events)
}

#[tokio::test]
async fn pages_newest_first_until_the_token_is_empty() {
    let config = Config {
        page_cap: Some(7),
        ..small()
    };
    let (from, to) = (DEFAULT_START_MS + HOUR_MS, DEFAULT_START_MS + 3 * HOUR_MS);
    let want_mail = expected(&config, Stream::Mail, from, to);
    let want_disk = expected(&config, Stream::Disk, from, to);
    let server = start(config).await;

    let (mail, sizes) = all_pages(&server, "mail", &window(from, to)).await;
    assert_eq!(uniq_ids(&mail), want_mail);
    assert!(sizes.len() >= 4 && sizes[..sizes.len() - 1].iter().all(|&n| n == 7));
    let dates: Vec<&str> = mail.iter().map(|e| e["date"].as_str().unwrap()).collect();
    assert!(
        dates.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
    // Half-open: the event on `afterDate` is in, the one on `beforeDate` is not.
    assert_eq!(*dates.last().unwrap(), "2025-06-01T01:00:00.000Z");
    assert!(dates.iter().all(|d| *d < "2025-06-01T03:00:00.000Z"));

    let (disk, _) = all_pages(&server, "disk", &window(from, to)).await;
    assert_eq!(uniq_ids(&disk), want_disk);

    // pageSize is honoured below the cap.
    let body = json(
        get(
            &server,
            &path("mail"),
            &format!("{}&pageSize=3", window(from, to)),
        )
        .await,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn window_modes_decide_the_edges() {
    let (from, to) = (DEFAULT_START_MS + HOUR_MS, DEFAULT_START_MS + 2 * HOUR_MS);
    let edge_events = |events: &[Value], at: &str| {
        events
            .iter()
            .filter(|e| e["date"].as_str() == Some(at))
            .count()
    };
    for (mode, at_from, at_to) in [
        (WindowMode::HalfOpen, 2, 0),
        (WindowMode::InclusiveBoth, 2, 2),
        (WindowMode::ExclusiveBoth, 0, 0),
    ] {
        let server = start(Config {
            window: mode,
            ..small()
        })
        .await;
        let (events, _) = all_pages(&server, "mail", &window(from, to)).await;
        assert_eq!(
            edge_events(&events, "2025-06-01T01:00:00.000Z"),
            at_from,
            "{mode:?}"
        );
        assert_eq!(
            edge_events(&events, "2025-06-01T02:00:00.000Z"),
            at_to,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn authentication_scopes_and_organisations() {
    let server = start(Config {
        unscoped_tokens: vec!["no-scope".into()],
        mail_only_tokens: vec!["mail-only".into()],
        error_body: ErrorBody::Json,
        ..small()
    })
    .await;
    let query = window(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS);
    let ok = get(&server, &path("disk"), &query).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().contains_key("x-request-id"));

    for (authorization, status) in [
        (format!("Bearer {TOKEN}"), 401),
        ("OAuth wrong".to_string(), 401),
        (String::new(), 401),
        (format!("oauth{TOKEN}"), 401),
        ("OAuth no-scope".to_string(), 403),
    ] {
        let response = get_as(&server, &authorization, &path("mail"), &query).await;
        assert_eq!(response.status(), status, "{authorization}");
        assert!(response.headers().contains_key("x-request-id"));
        let body = json(response).await;
        let code = if status == 401 { 16 } else { 7 };
        assert_eq!(body["code"], code);
        assert!(body["message"].is_string() && body["details"].is_array());
    }
    let mail_only = |stream: &'static str| {
        let server = &server;
        let query = &query;
        async move {
            get_as(server, "OAuth mail-only", &path(stream), query)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(mail_only("mail").await, 200);
    assert_eq!(mail_only("disk").await, 403);
    let other_org = get(&server, "/security/v1/org/7654321/audit_log/mail", &query).await;
    assert_eq!(other_org.status(), 403);
    let bad_org = get(&server, "/security/v1/org/acme/audit_log/mail", &query).await;
    assert_eq!(bad_org.status(), 400);
    let unknown = get(
        &server,
        &format!("/security/v1/org/{ORG_ID}/audit_log/calendar"),
        &query,
    )
    .await;
    assert_eq!(unknown.status(), 404);

    // By default errors have no body at all, and Bearer can be switched on.
    let server = start(Config {
        accept_bearer: true,
        ..small()
    })
    .await;
    let refused = get_as(&server, "OAuth wrong", &path("mail"), &query).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.text().await.unwrap(), "");
    let bearer = get_as(&server, &format!("Bearer {TOKEN}"), &path("mail"), &query).await;
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn validation_catches_sloppy_clients() {
    let server = start(small()).await;
    let base = window(DEFAULT_START_MS, DEFAULT_START_MS + 2 * HOUR_MS);
    let status = |query: String, stream: &'static str| {
        let server = &server;
        async move { get(server, &path(stream), &query).await.status().as_u16() }
    };
    assert_eq!(status(format!("{base}&pageSize=100"), "mail").await, 200);
    assert_eq!(status(format!("{base}&pageSize=101"), "mail").await, 400);
    assert_eq!(status(format!("{base}&pageSize=0"), "mail").await, 400);
    // An unencoded `+` in an offset reads as a space.
    assert_eq!(
        status("afterDate=2025-06-01T03:00:00+03:00".into(), "mail").await,
        400
    );
    assert_eq!(
        status("afterDate=2025-06-01T03:00:00%2B03:00".into(), "mail").await,
        200
    );
    assert_eq!(
        status("afterDate=2025-06-01T00:00:00.5Z".into(), "mail").await,
        200
    );
    for bad in ["2025-06-01", "1748736000", "2025-06-01T00:00:00"] {
        assert_eq!(
            status(format!("beforeDate={bad}"), "disk").await,
            400,
            "{bad}"
        );
    }
    // Lists are repeated keys: a comma-joined value or a Python list is refused.
    let users = "includeUids=1130000062000001&includeUids=1130000062000002";
    assert_eq!(status(format!("{base}&{users}"), "mail").await, 200);
    assert_eq!(
        status(
            format!("{base}&includeUids=1130000062000001,1130000062000002"),
            "mail"
        )
        .await,
        400
    );
    assert_eq!(
        status(format!("{base}&excludeUids=%5B%271%27%5D"), "mail").await,
        400
    );
    assert_eq!(
        status(
            format!("{base}&types=message_receive&types=message_seen"),
            "mail"
        )
        .await,
        200
    );
    assert_eq!(
        status(format!("{base}&types=message_receive,message_seen"), "mail").await,
        400
    );
    assert_eq!(status(format!("{base}&types=fs-mkdir"), "disk").await, 400);

    let clamping = start(Config {
        clamp_page_size: true,
        ignore_disk_types: true,
        ..small()
    })
    .await;
    let body = json(get(&clamping, &path("mail"), &format!("{base}&pageSize=500")).await).await;
    let all = small()
        .dataset
        .between(
            Stream::Mail,
            DEFAULT_START_MS,
            DEFAULT_START_MS + 2 * HOUR_MS,
        )
        .len();
    assert!(all < 100);
    assert_eq!(body["events"].as_array().unwrap().len(), all);
    let ignored = get(&clamping, &path("disk"), &format!("{base}&types=fs-mkdir")).await;
    assert_eq!(ignored.status(), 200);
}

#[tokio::test]
async fn filters_select_users_and_types() {
    let config = small();
    let (from, to) = (DEFAULT_START_MS, DEFAULT_START_MS + 6 * HOUR_MS);
    let all: Vec<_> = config.dataset.between(Stream::Mail, from, to);
    let user = "1130000062000002";
    let server = start(config.clone()).await;

    let (only, _) = all_pages(
        &server,
        "mail",
        &format!("{}&includeUids={user}", window(from, to)),
    )
    .await;
    assert!(!only.is_empty());
    assert!(only.iter().all(|e| e["userUid"] == user));
    assert_eq!(
        only.len(),
        all.iter().filter(|e| e.user_uid == user).count()
    );

    let (without, _) = all_pages(
        &server,
        "mail",
        &format!("{}&excludeUids={user}", window(from, to)),
    )
    .await;
    assert_eq!(without.len() + only.len(), all.len());

    let (typed, _) = all_pages(
        &server,
        "mail",
        &format!("{}&types=message_seen&types=mailbox_send", window(from, to)),
    )
    .await;
    assert!(!typed.is_empty());
    assert!(
        typed
            .iter()
            .all(|e| e["eventType"] == "message_seen" || e["eventType"] == "mailbox_send")
    );
}

#[tokio::test]
async fn page_tokens_belong_to_their_query() {
    let server = start(Config {
        page_cap: Some(5),
        max_page_depth: Some(3),
        ..small()
    })
    .await;
    let query = window(DEFAULT_START_MS, DEFAULT_START_MS + 2 * HOUR_MS);
    let first = json(get(&server, &path("mail"), &query).await).await;
    let token = first["nextPageToken"].as_str().unwrap().to_string();
    assert!(!token.is_empty());

    // The same token with other filters, another stream, or garbled: 400.
    let other = window(DEFAULT_START_MS, DEFAULT_START_MS + 3 * HOUR_MS);
    for (stream, query) in [
        ("mail", format!("{other}&pageToken={token}")),
        ("disk", format!("{query}&pageToken={token}")),
        ("mail", format!("{query}&pageToken=x{token}")),
    ] {
        let response = get(&server, &path(stream), &query).await;
        assert_eq!(response.status(), 400, "{stream} {query}");
    }
    // Pages 2 and 3 come, the token for page 4 is past the depth limit.
    let second = json(
        get(
            &server,
            &path("mail"),
            &format!("{query}&pageToken={token}"),
        )
        .await,
    )
    .await;
    let token = second["nextPageToken"].as_str().unwrap().to_string();
    let third = json(
        get(
            &server,
            &path("mail"),
            &format!("{query}&pageToken={token}"),
        )
        .await,
    )
    .await;
    let token = third["nextPageToken"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let fourth = get(
        &server,
        &path("mail"),
        &format!("{query}&pageToken={token}"),
    )
    .await;
    assert_eq!(fourth.status(), 400);
}

#[tokio::test]
async fn empty_results_and_last_pages() {
    let empty_window = window(DEFAULT_START_MS - 2 * HOUR_MS, DEFAULT_START_MS - HOUR_MS);
    let server = start(small()).await;
    let body = json(get(&server, &path("mail"), &empty_window).await).await;
    assert_eq!(body["events"], Value::Null);
    assert_eq!(body["nextPageToken"], "");

    let server = start(Config {
        empty_events_as_array: true,
        last_token: LastToken::Absent,
        ..small()
    })
    .await;
    let body = json(get(&server, &path("disk"), &empty_window).await).await;
    assert_eq!(body["events"], serde_json::json!([]));
    assert!(body.get("nextPageToken").is_none());

    let server = start(Config {
        last_token: LastToken::Null,
        ..small()
    })
    .await;
    let body = json(
        get(
            &server,
            &path("disk"),
            &window(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS),
        )
        .await,
    )
    .await;
    assert!(!body["events"].as_array().unwrap().is_empty());
    assert_eq!(body["nextPageToken"], Value::Null);
}

#[tokio::test]
async fn retention_hides_old_events() {
    let config = Config {
        retention: Some(Retention {
            days: 1,
            now_ms: DEFAULT_START_MS + 24 * HOUR_MS + 2 * HOUR_MS,
        }),
        ..Config::default()
    };
    let server = start(config.clone()).await;
    let (events, _) = all_pages(&server, "disk", "").await;
    let want = expected(
        &config,
        Stream::Disk,
        DEFAULT_START_MS + 2 * HOUR_MS,
        i64::MAX,
    );
    assert_eq!(uniq_ids(&events), want);
}

#[tokio::test]
async fn rate_limit_with_and_without_retry_after() {
    for retry_after in [false, true] {
        let server = start(Config {
            quotas: vec![Quota {
                requests: 2,
                per: Duration::from_secs(5),
            }],
            retry_after_on_429: retry_after,
            ..small()
        })
        .await;
        let query = window(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS);
        for _ in 0..2 {
            assert_eq!(get(&server, &path("mail"), &query).await.status(), 200);
        }
        let limited = get(&server, &path("mail"), &query).await;
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers().contains_key("retry-after"), retry_after);
        assert_eq!(limited.text().await.unwrap(), "");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_announces_itself_and_writes_the_ground_truth() {
    use common::{simulator_binary, spawn_listening};
    use std::process::Stdio;

    let dir = std::env::temp_dir().join(format!("trawl-y360-sim-{}", std::process::id()));
    let (mut child, base_url) = spawn_listening(
        simulator_binary()
            .args([
                "yandex360",
                "--hours",
                "3",
                "--seed",
                "5",
                "--page-cap",
                "4",
            ])
            .arg("--ground-truth")
            .arg(&dir)
            .stderr(Stdio::null()),
    );
    let expected = Dataset::generate(DEFAULT_START_MS, 3, 5);
    for stream in [Stream::Mail, Stream::Disk] {
        let written =
            std::fs::read_to_string(dir.join(format!("{}.jsonl", stream.name()))).unwrap();
        assert_eq!(written, expected.to_json_lines(stream));
    }
    let body: Value = reqwest::Client::new()
        .get(format!("{base_url}{}", path("mail")))
        .header("Authorization", format!("OAuth {TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 4);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
