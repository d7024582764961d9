//! The Verkada simulator over HTTP: the token exchange, windows by event and by processing time,
//! paging, validation, the organisation's rate limit, and the binary.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_simulators::RunningServer;
use trawl_simulators::ratelimit::{Penalty, Quota};
use trawl_simulators::verkada::{
    self, ApiKey, Clock, Config, DEFAULT_API_KEY, DEFAULT_START, Dataset, ErrorStyle, Order,
    QUARTER, Region, WindowMode,
};

/// Eight quarter hours of data, served oldest first, every request allowed.
fn config() -> Config {
    Config {
        dataset: Dataset::generate(DEFAULT_START, 8, 6, 600, 7),
        quotas: Vec::new(),
        order: Order::Ascending,
        ..Config::default()
    }
}

async fn start(config: Config) -> RunningServer {
    verkada::start(config).await.expect("simulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn token_response(server: &RunningServer, key: Option<&str>) -> reqwest::Response {
    let mut request = client().post(format!("{}/token", server.base_url()));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap()
}

async fn token(server: &RunningServer) -> String {
    let response = token_response(server, Some(DEFAULT_API_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["token"].as_str().unwrap().to_owned()
}

async fn get(server: &RunningServer, token: &str, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path_and_query}", server.base_url()))
        .header("x-verkada-auth", token)
        .send()
        .await
        .unwrap()
}

async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

fn rows(body: &Value, list: &str) -> Vec<Value> {
    body[list].as_array().cloned().unwrap_or_default()
}

fn audit(from: i64, to: i64, extra: &str) -> String {
    format!("/core/v1/audit_log?start_time={from}&end_time={to}{extra}")
}

fn alerts(from: i64, to: i64, extra: &str) -> String {
    format!("/cameras/v1/alerts?start_time={from}&end_time={to}{extra}")
}

#[tokio::test]
async fn tokens_are_minted_for_known_keys_of_the_region_only() {
    let mut config = config();
    config.keys.push(ApiKey::new("us-key", Region::Us));
    let server = start(config).await;

    for key in [None, Some("wrong-key"), Some("us-key")] {
        let response = token_response(&server, key).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(
            json(response).await,
            json!({"id": "7a1b", "message": "Missing or invalid API key", "data": null})
        );
    }
    let first = token(&server).await;
    let second = token(&server).await;
    assert!(first.len() >= 64 && second.len() >= 64);
    assert_ne!(first, second);
    // Old tokens stay valid until they expire.
    for token in [&first, &second] {
        let response = get(
            &server,
            token,
            &audit(DEFAULT_START, DEFAULT_START + 60, ""),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn expired_missing_and_unknown_tokens_are_401() {
    let server = start(Config {
        token_ttl: Duration::from_millis(300),
        ..config()
    })
    .await;
    let token = token(&server).await;
    let path = audit(DEFAULT_START, DEFAULT_START + 60, "");
    assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let response = get(&server, &token, &path).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(response).await,
        json!({"id": "0e2d", "message": "Token expired", "data": null})
    );
    let response = get(&server, "made-up", &path).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["message"], "Invalid token");
    let response = client()
        .get(format!("{}{path}", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn terse_auth_errors() {
    let server = start(Config {
        terse_auth_errors: true,
        token_ttl: Duration::from_millis(200),
        ..config()
    })
    .await;
    let terse = json!({"id": "401", "message": "Unauthorized", "data": null});
    assert_eq!(
        json(token_response(&server, Some("wrong")).await).await,
        terse
    );
    let path = audit(DEFAULT_START, DEFAULT_START + 60, "");
    assert_eq!(json(get(&server, "made-up", &path).await).await, terse);
    // An expired token still says so: that text is documented.
    let token = token(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        json(get(&server, &token, &path).await).await["message"],
        "Token expired"
    );
}

#[tokio::test]
async fn python_style_errors_and_missing_permissions() {
    let mut config = config();
    config.error_style = ErrorStyle::Python;
    config.keys[0].camera_alerts = false;
    let server = start(config).await;
    let token = token(&server).await;
    let response = get(
        &server,
        &token,
        &alerts(DEFAULT_START, DEFAULT_START + 60, ""),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("{'id': 'f0b1', 'message': 'Forbidden"),
        "{text}"
    );
    assert!(text.ends_with("'data': None}"), "{text}");
    let response = get(
        &server,
        "nope",
        &alerts(DEFAULT_START, DEFAULT_START + 60, ""),
    )
    .await;
    assert_eq!(
        response.text().await.unwrap(),
        "{'id': 'b7e2', 'message': 'Invalid token', 'data': None}"
    );
}

#[tokio::test]
async fn windows_include_both_edges_by_default() {
    let config = config();
    let data = config.dataset.clone();
    let server = start(config).await;
    let token = token(&server).await;
    let (from, to) = (DEFAULT_START + QUARTER, DEFAULT_START + 2 * QUARTER);

    // By event time: both edges are in.
    let body = json(get(&server, &token, &audit(from, to, "&page_size=200")).await).await;
    let expected: Vec<Value> = data
        .audit_between(from, to + 1)
        .iter()
        .map(|e| e.json.clone())
        .collect();
    assert_eq!(rows(&body, "audit_logs"), expected);
    assert!(body["next_page_token"].is_null());
    let times: Vec<&str> = expected
        .iter()
        .map(|row| row["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.is_sorted());
    assert_eq!(
        expected.first().unwrap()["timestamp"],
        "2025-09-16T00:15:00Z"
    );
    assert_eq!(
        expected.last().unwrap()["timestamp"],
        "2025-09-16T00:30:00Z"
    );

    // By processing time: what was processed in the window, whenever it happened.
    let (from, to) = (DEFAULT_START + 2 * QUARTER, DEFAULT_START + 3 * QUARTER);
    let extra = "&page_size=200&use_processed_timestamp=true";
    let body = json(get(&server, &token, &audit(from, to, extra)).await).await;
    let expected: Vec<Value> = data
        .audit_processed_between(from, to + 1)
        .iter()
        .map(|e| e.json.clone())
        .collect();
    assert_eq!(rows(&body, "audit_logs"), expected);
    let early = expected
        .iter()
        .filter(|row| row["timestamp"].as_str().unwrap() < "2025-09-16T00:30:00Z")
        .count();
    assert!(early >= 2, "rows of earlier windows processed in this one");

    let body = json(get(&server, &token, &alerts(from, to, "&page_size=200")).await).await;
    let expected: Vec<Value> = data
        .alerts_between(from, to + 1)
        .iter()
        .map(|a| a.json.clone())
        .collect();
    assert_eq!(rows(&body, "notifications"), expected);
    assert_eq!(expected.first().unwrap()["created"], from);
    assert_eq!(expected.last().unwrap()["created"], to);
}

#[tokio::test]
async fn newest_first_by_default_and_by_processing_time() {
    let (from, to) = (DEFAULT_START, DEFAULT_START + 8 * QUARTER - 1);
    let extra = "&page_size=200&use_processed_timestamp=true";
    let served = |config: Config| async move {
        let server = start(config).await;
        let token = token(&server).await;
        let body = json(get(&server, &token, &audit(from, to, extra)).await).await;
        rows(&body, "audit_logs")
    };
    let oldest_first = served(config()).await;
    let mut newest_first = served(Config {
        order: Config::default().order,
        ..config()
    })
    .await;
    newest_first.reverse();
    assert_eq!(newest_first, oldest_first);
    let by_processing = served(Config {
        order: Order::Processed,
        ..config()
    })
    .await;
    let processed: Vec<&str> = by_processing
        .iter()
        .map(|row| row["processed_timestamp"].as_str().unwrap())
        .collect();
    assert!(processed.is_sorted());
    assert_ne!(by_processing, oldest_first);
}

#[tokio::test]
async fn other_window_modes() {
    let (from, to) = (DEFAULT_START + QUARTER, DEFAULT_START + 2 * QUARTER);
    for (mode, lo, hi) in [
        (WindowMode::HalfOpen, from, to),
        (WindowMode::ExclusiveStart, from + 1, to + 1),
    ] {
        let config = Config {
            window: mode,
            ..config()
        };
        let expected: Vec<Value> = config
            .dataset
            .alerts_between(lo, hi)
            .iter()
            .map(|a| a.json.clone())
            .collect();
        let server = start(config).await;
        let token = token(&server).await;
        let body = json(get(&server, &token, &alerts(from, to, "&page_size=200")).await).await;
        assert_eq!(rows(&body, "notifications"), expected, "{mode:?}");
    }
}

#[tokio::test]
async fn rows_are_invisible_until_processed_and_pages_keep_their_moment() {
    let clock = Clock::fixed(DEFAULT_START + QUARTER);
    let config = Config {
        clock: clock.clone(),
        ..config()
    };
    let data = config.dataset.clone();
    let server = start(config).await;
    let token = token(&server).await;
    let now = DEFAULT_START + QUARTER;
    let body = json(get(&server, &token, &audit(DEFAULT_START, now, "&page_size=3")).await).await;
    let mut seen = rows(&body, "audit_logs");
    let mut next = body["next_page_token"].as_str().map(str::to_owned);
    // The clock moves on while paging: later pages still show what the first one could see.
    clock.set(now + 3600);
    while let Some(page_token) = next {
        let extra = format!("&page_size=3&page_token={}", urlencode(&page_token));
        let body = json(get(&server, &token, &audit(DEFAULT_START, now, &extra)).await).await;
        seen.extend(rows(&body, "audit_logs"));
        next = body["next_page_token"].as_str().map(str::to_owned);
    }
    let visible: Vec<Value> = data
        .audit_between(DEFAULT_START, now + 1)
        .into_iter()
        .filter(|e| e.processed.unwrap() <= now)
        .map(|e| e.json.clone())
        .collect();
    assert_eq!(seen, visible);
    let all = data.audit_between(DEFAULT_START, now + 1).len();
    assert!(visible.len() < all, "some rows were still being processed");

    // An hour later, a new query sees them all.
    let body = json(
        get(
            &server,
            &token,
            &audit(DEFAULT_START, now, "&page_size=200"),
        )
        .await,
    )
    .await;
    assert_eq!(rows(&body, "audit_logs").len(), all);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn paging_checks_its_token() {
    let server = start(config()).await;
    let token = token(&server).await;
    let (from, to) = (DEFAULT_START, DEFAULT_START + 8 * QUARTER);
    let first = json(get(&server, &token, &audit(from, to, "&page_size=4")).await).await;
    assert_eq!(rows(&first, "audit_logs").len(), 4);
    let page_token = first["next_page_token"].as_str().unwrap().to_owned();

    // Another query with the same token.
    let extra = format!("&page_size=5&page_token={}", urlencode(&page_token));
    let response = get(&server, &token, &audit(from, to, &extra)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(response).await["message"],
        "page_token does not belong to this query"
    );
    // A token sent without escaping loses its `+` (it arrives as a space).
    assert!(page_token.starts_with('+'));
    let raw = format!("&page_size=4&page_token={page_token}");
    let response = get(&server, &token, &audit(from, to, &raw)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["message"], "invalid page_token");

    // Empty pages say null, not [].
    let body = json(get(&server, &token, &audit(1, 2, "")).await).await;
    assert_eq!(body, json!({"audit_logs": null, "next_page_token": null}));
}

#[tokio::test]
async fn validation() {
    let server = start(config()).await;
    let token = token(&server).await;
    let bad = [
        "/core/v1/audit_log?start_time=abc",
        "/core/v1/audit_log?end_time=1.5",
        "/core/v1/audit_log?start_time=20&end_time=10",
        "/core/v1/audit_log?page_size=201",
        "/core/v1/audit_log?page_size=-1",
        "/core/v1/audit_log?use_processed_timestamp=False",
        "/core/v1/audit_log?use_processed_timestamp=1",
        "/core/v1/audit_log?page_token=bm90LWEtdG9rZW4=",
        "/cameras/v1/alerts?include_image_url=False",
        "/cameras/v1/alerts?notification_type=motion,earthquake",
    ];
    for path in bad {
        let response = get(&server, &token, path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = json(response).await;
        assert!(
            body["message"].is_string() && body["data"].is_null(),
            "{body}"
        );
    }
    let ok = [
        "/core/v1/audit_log",
        "/core/v1/audit_log?page_size=0",
        "/core/v1/audit_log?use_processed_timestamp=true&page_size=200",
        "/cameras/v1/alerts?include_image_url=false&notification_type=motion%2Ctamper",
    ];
    for path in ok {
        assert_eq!(
            get(&server, &token, path).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let response = client()
        .get(format!("{}/token", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        get(&server, &token, "/core/v2/audit_log").await.status(),
        StatusCode::NOT_FOUND
    );

    // Lenient booleans, and inverted windows answered with nothing.
    let server = start(Config {
        strict_booleans: false,
        reject_inverted_windows: false,
        ..config()
    })
    .await;
    let token = self::token(&server).await;
    for path in [
        "/core/v1/audit_log?use_processed_timestamp=False",
        "/cameras/v1/alerts?include_image_url=TRUE",
    ] {
        assert_eq!(
            get(&server, &token, path).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let body = json(
        get(
            &server,
            &token,
            &audit(DEFAULT_START + 600, DEFAULT_START, ""),
        )
        .await,
    )
    .await;
    assert!(body["audit_logs"].is_null());
}

#[tokio::test]
async fn default_window_is_the_last_hour() {
    let now = DEFAULT_START + 2 * QUARTER;
    let config = Config {
        clock: Clock::fixed(now),
        ..config()
    };
    let expected: Vec<Value> = config
        .dataset
        .audit_between(now - 3600, now + 1)
        .into_iter()
        .filter(|e| e.processed.unwrap() <= now)
        .map(|e| e.json.clone())
        .collect();
    let server = start(config).await;
    let token = token(&server).await;
    let body = json(get(&server, &token, "/core/v1/audit_log?page_size=200").await).await;
    assert_eq!(rows(&body, "audit_logs"), expected);
}

#[tokio::test]
async fn alert_filters_and_image_urls() {
    let config = config();
    let data = config.dataset.clone();
    let server = start(config).await;
    let token = token(&server).await;
    let (from, to) = (DEFAULT_START, DEFAULT_START + 8 * QUARTER - 1);
    let body = json(
        get(
            &server,
            &token,
            &alerts(from, to, "&page_size=200&notification_type=motion,tamper"),
        )
        .await,
    )
    .await;
    let expected: Vec<Value> = data
        .alerts_between(from, to + 1)
        .iter()
        .filter(|a| matches!(a.notification_type, "motion" | "tamper"))
        .map(|a| a.json.clone())
        .collect();
    assert!(expected.len() >= 3);
    assert_eq!(rows(&body, "notifications"), expected);

    let body = json(
        get(
            &server,
            &token,
            &alerts(from, to, "&page_size=200&include_image_url=true"),
        )
        .await,
    )
    .await;
    let rows = rows(&body, "notifications");
    assert_eq!(rows.len(), data.alerts.len());
    assert!(rows.iter().all(|row| {
        row["image_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("https://") && url.contains("Signature="))
    }));
}

#[tokio::test]
async fn the_organisation_quota_and_its_cooldown() {
    let server = start(Config {
        quotas: vec![Quota {
            requests: 5,
            per: Duration::from_secs(2),
        }],
        penalty: Some(Penalty::block(Duration::from_secs(1))),
        ..config()
    })
    .await;
    let token = token(&server).await; // 1
    let path = audit(DEFAULT_START, DEFAULT_START + 60, "");
    for _ in 0..4 {
        assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
    }
    // The sixth request in two seconds, the token exchange included.
    let response = token_response(&server, Some(DEFAULT_API_KEY)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(
        json(response).await,
        json!({"id": "429", "message": "Too Many Requests", "data": null})
    );
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    // With Retry-After, it says when the cooldown and the quota allow again.
    let server = start(Config {
        quotas: vec![Quota {
            requests: 2,
            per: Duration::from_secs(3),
        }],
        retry_after_on_429: true,
        ..config()
    })
    .await;
    let token = self::token(&server).await;
    assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
    let response = get(&server, &token, &path).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3..=5).contains(&wait), "{wait}");
}

#[tokio::test]
async fn the_cooldown_refuses_until_it_ends() {
    let server = start(Config {
        quotas: vec![Quota {
            requests: 3,
            per: Duration::from_millis(300),
        }],
        penalty: Some(Penalty::block(Duration::from_secs(1))),
        ..config()
    })
    .await;
    let token = token(&server).await;
    let path = audit(DEFAULT_START, DEFAULT_START + 60, "");
    assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
    assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
    assert_eq!(
        get(&server, &token, &path).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The quota alone would allow again after 300 ms; the cooldown holds for a second.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let refused_at = server.requests()[3].received_at;
    let status = get(&server, &token, &path).await.status();
    let at = server.requests().last().unwrap().received_at - refused_at;
    if at < Duration::from_millis(950) {
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&server, &token, &path).await.status(), StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_and_writes_the_ground_truth() {
    use common::{simulator_binary, spawn_listening};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("trawl-verkada-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (audit_truth, alerts_truth) = (dir.join("audit.jsonl"), dir.join("alerts.jsonl"));
    let (mut child, base_url) = spawn_listening(
        simulator_binary()
            .args([
                "verkada",
                "--hours",
                "2",
                "--per-quarter",
                "3",
                "--seed",
                "5",
            ])
            .arg("--audit-truth")
            .arg(&audit_truth)
            .arg("--alerts-truth")
            .arg(&alerts_truth)
            .stderr(Stdio::null()),
    );
    let expected = Dataset::generate(DEFAULT_START, 8, 3, 600, 5);
    assert_eq!(
        std::fs::read_to_string(&audit_truth).unwrap(),
        expected.audit_json_lines()
    );
    assert_eq!(
        std::fs::read_to_string(&alerts_truth).unwrap(),
        expected.alerts_json_lines()
    );
    let token: Value = client()
        .post(format!("{base_url}/token"))
        .header("x-api-key", DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body: Value = client()
        .get(format!(
            "{base_url}/cameras/v1/alerts?start_time={DEFAULT_START}&end_time={}&page_size=200",
            DEFAULT_START + 7200
        ))
        .header("x-verkada-auth", token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["notifications"].as_array().unwrap().len(),
        expected.alerts.len()
    );
    // SIGTERM, as a service manager stops it.
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
