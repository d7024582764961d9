//! The Workvivo simulator over HTTP: windows, auth, validation, paging and the rate limit.

mod common;

use common::*;
use serde_json::{Value, json};
use trawl_simulators::workvivo::{Config, Order, Retention, WindowMode};

fn siem(from: i64, to: i64) -> String {
    format!("/v1/siem/{from}/{to}")
}

#[tokio::test]
async fn inclusive_window_returns_both_edges_in_order() {
    let config = small_config();
    let expected: Vec<Value> = config
        .dataset
        .between(START + HOUR, START + 2 * HOUR + 1)
        .iter()
        .map(|e| e.json.clone())
        .collect();
    let server = start(config).await;

    let response = get(&server, &siem(START + HOUR, START + 2 * HOUR)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json(response).await;
    assert_eq!(body["status"], "success");
    assert!(body.get("meta").is_none());
    assert_eq!(body["data"], Value::Array(expected));
    let ts = timestamps(&body);
    assert_eq!(
        (ts[0], *ts.last().unwrap()),
        (START + HOUR, START + 2 * HOUR)
    );
    assert!(ts.is_sorted());

    // Adjacent hourly windows share the edge events (three of them on this edge), which is what a
    // client must dedup.
    let next = json(get(&server, &siem(START + 2 * HOUR, START + 3 * HOUR)).await).await;
    let on_edge = |body: &Value| -> Vec<u64> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["created_at_timestamp"] == START + 2 * HOUR)
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(on_edge(&body).len(), 3);
    assert_eq!(on_edge(&body), on_edge(&next));
}

#[tokio::test]
async fn half_open_window_excludes_the_end() {
    let config = Config {
        window: WindowMode::HalfOpen,
        ..small_config()
    };
    let expected: Vec<u64> = config
        .dataset
        .between(START + HOUR, START + 2 * HOUR)
        .iter()
        .map(|e| e.id)
        .collect();
    let server = start(config).await;

    let body = json(get(&server, &siem(START + HOUR, START + 2 * HOUR)).await).await;
    assert_eq!(ids(&body), expected);
    assert!(timestamps(&body).iter().all(|&t| t < START + 2 * HOUR));
    // An empty window is valid and empty.
    let empty = json(get(&server, &siem(START, START)).await).await;
    assert_eq!(empty["data"], json!([]));
}

#[tokio::test]
async fn descending_order_and_trailing_slash() {
    let server = start(Config {
        order: Order::Descending,
        ..small_config()
    })
    .await;
    let body = json(get(&server, &format!("{}/", siem(START, START + HOUR))).await).await;
    let ids = ids(&body);
    assert!(ids.len() > 2);
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]));
}

#[tokio::test]
async fn retention_hides_old_events() {
    let cutoff = START + 5 * HOUR;
    let config = Config {
        retention: Some(Retention {
            days: 1,
            now_unix: cutoff + 86_400,
        }),
        ..small_config()
    };
    let server = start(config).await;
    let body = json(get(&server, &siem(START, START + 10 * HOUR)).await).await;
    let ts = timestamps(&body);
    assert_eq!(ts[0], cutoff);
}

#[tokio::test]
async fn authentication_errors() {
    let config = Config {
        unscoped_tokens: vec!["no-siem".into()],
        ..small_config()
    };
    let server = start(config).await;
    let url = format!("{}{}", server.base_url(), siem(START, START + HOUR));
    let cases: &[(Option<&str>, Option<&str>, u16, &str)] = &[
        (None, Some("sim-org"), 401, "Unauthenticated."),
        (
            Some("Bearer wrong"),
            Some("sim-org"),
            401,
            "Unauthenticated.",
        ),
        (Some("sim-token"), Some("sim-org"), 401, "Unauthenticated."),
        (
            Some("Basic c2ltLXRva2Vu"),
            Some("sim-org"),
            401,
            "Unauthenticated.",
        ),
        (Some("Bearer sim-token"), None, 401, "Unauthenticated."),
        (
            Some("Bearer sim-token"),
            Some("other-org"),
            403,
            "Forbidden",
        ),
        (Some("Bearer no-siem"), Some("sim-org"), 403, "Forbidden"),
    ];
    for &(authorization, org, status, message) in cases {
        let mut request = client().get(&url);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        if let Some(value) = org {
            request = request.header("Workvivo-Id", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{authorization:?} {org:?}");
        assert_eq!(json(response).await, json!({ "message": message }));
    }
    // Authentication comes before validation.
    let response = client()
        .get(format!("{}/v1/siem/x/y", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn other_methods_are_405() {
    let server = start(small_config()).await;
    let url = format!("{}{}", server.base_url(), siem(START, START + HOUR));
    for request in [
        client().post(&url),
        client().delete(&url),
        client().put(&url),
    ] {
        let response = request
            .bearer_auth("sim-token")
            .header("Workvivo-Id", "sim-org")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
        assert!(
            json(response).await["message"]
                .as_str()
                .unwrap()
                .contains("method is not supported")
        );
    }
    let head = client()
        .head(&url)
        .bearer_auth("sim-token")
        .header("Workvivo-Id", "sim-org")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(get(&server, "/v1/siem/1").await.status(), 404);
}

#[tokio::test]
async fn invalid_windows_are_400() {
    let server = start(Config {
        max_window_days: Some(1),
        ..small_config()
    })
    .await;
    let cases = [
        (
            "/v1/siem/abc/1725152400",
            "The from field must be an integer.",
        ),
        (
            "/v1/siem/-1/1725152400",
            "The from field must be an integer.",
        ),
        (
            "/v1/siem/1725148800.5/1725152400",
            "The from field must be an integer.",
        ),
        (
            "/v1/siem/1725148800/%2B5",
            "The to field must be an integer.",
        ),
        (
            "/v1/siem/1725148800/99999999999999999999",
            "The to field must be an integer.",
        ),
        (
            "/v1/siem/1725152400/1725148800",
            "The to field must be greater than or equal to from.",
        ),
        (
            "/v1/siem/1725148800/1725321600",
            "The window may not be longer than 1 days.",
        ),
    ];
    for (path, message) in cases {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            json(response).await,
            json!({ "message": message }),
            "{path}"
        );
    }
    assert_eq!(
        get(&server, &siem(START, START + 86_400)).await.status(),
        200
    );
}

#[tokio::test]
async fn max_rows_truncates_and_pages() {
    let config = Config {
        max_rows: Some(5),
        ..small_config()
    };
    let expected: Vec<u64> = config
        .dataset
        .between(START, START + 3 * HOUR + 1)
        .iter()
        .map(|e| e.id)
        .collect();
    assert!(expected.len() > 12);
    let server = start(config).await;
    let window = siem(START, START + 3 * HOUR);

    let first = json(get(&server, &window).await).await;
    assert_eq!(ids(&first).len(), 5);
    let pagination = &first["meta"]["pagination"];
    assert_eq!(pagination["skip"], 0);
    assert_eq!(pagination["take"], 5);
    assert_eq!(pagination["total_records"], expected.len());
    let next = pagination["next_page"].as_str().unwrap();
    assert_eq!(next, format!("{}{window}?skip=5&take=5", server.base_url()));

    // Following next_page collects every row exactly once.
    let mut seen = ids(&first);
    let mut next_page = Some(next.to_owned());
    while let Some(url) = next_page {
        let page = json(
            client()
                .get(url)
                .bearer_auth("sim-token")
                .header("Workvivo-Id", "sim-org")
                .send()
                .await
                .unwrap(),
        )
        .await;
        seen.extend(ids(&page));
        next_page = page["meta"]["pagination"]["next_page"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(seen, expected);

    // take is capped at max_rows; bad numbers are rejected.
    let capped = json(get(&server, &format!("{window}?skip=2&take=50")).await).await;
    assert_eq!(ids(&capped), expected[2..7]);
    assert_eq!(capped["meta"]["pagination"]["take"], 5);
    let last = json(get(&server, &format!("{window}?skip={}", expected.len() - 1)).await).await;
    assert_eq!(ids(&last).len(), 1);
    assert_eq!(last["meta"]["pagination"]["next_page"], Value::Null);
    assert_eq!(
        get(&server, &format!("{window}?skip=x")).await.status(),
        400
    );
    assert_eq!(
        get(&server, &format!("{window}?take=0")).await.status(),
        400
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers() {
    let server = start(Config {
        rate_limit_per_minute: Some(2),
        ..small_config()
    })
    .await;
    let window = siem(START, START + HOUR);

    for remaining in ["1", "0"] {
        let response = get(&server, &window).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "2");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    let limited = get(&server, &window).await;
    assert_eq!(limited.status(), 429);
    let headers = limited.headers();
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    assert!(headers.contains_key("x-ratelimit-reset"));
    assert_eq!(
        json(limited).await,
        json!({ "message": "Too Many Attempts." })
    );

    // Unauthenticated requests do not reach the limiter.
    let anonymous = client()
        .get(format!("{}{window}", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429, 401]);
}

#[tokio::test]
async fn rate_limit_can_omit_retry_after() {
    let config = Config {
        rate_limit_per_minute: Some(1),
        retry_after_on_429: false,
        ..small_config()
    };
    let server = start(config).await;
    assert_eq!(get(&server, &siem(START, START)).await.status(), 200);
    let limited = get(&server, &siem(START, START)).await;
    assert_eq!(limited.status(), 429);
    assert!(!limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
}

#[tokio::test]
async fn default_config_serves_the_default_dataset() {
    let config = Config::default();
    assert_eq!(
        (config.token.as_str(), config.org_id.as_str()),
        ("sim-token", "sim-org")
    );
    let total = config.dataset.events.len();
    let server = start(config).await;
    let body = json(get(&server, &siem(START, START + 3 * 86_400)).await).await;
    assert_eq!(ids(&body).len(), total);
    let log = server.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].header("workvivo-id"), Some("sim-org"));
    assert_eq!(log[0].path, siem(START, START + 3 * 86_400));
}
