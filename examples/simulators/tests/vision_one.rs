//! The Trend Vision One simulator over HTTP: windows, order, paging through `nextLink`, short and
//! empty pages, performance mode, the query languages, validation, auth, the quota, stalls, and
//! the binary.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use trawl_simulators::RunningServer;
use trawl_simulators::ratelimit::Quota;
use trawl_simulators::timefmt::rfc3339_utc;
use trawl_simulators::vision_one::{
    self, Config, DEFAULT_START, Dataset, Item, Order, Query, Stream, TOKEN, WindowMode,
};

const HOUR: i64 = 3600;
const DETECTIONS: &str = "/v3.0/search/detections";
const ALERTS: &str = "/v3.0/workbench/alerts";

fn config(per_hour: u32) -> Config {
    Config {
        dataset: Dataset::generate(DEFAULT_START, 1, per_hour, 3),
        quotas: Vec::new(),
        ..Config::default()
    }
}

async fn start(config: Config) -> RunningServer {
    vision_one::start(config).await.expect("simulator starts")
}

/// A GET of `path_and_query` (or an absolute URL) with the default token and `headers`.
async fn get(server: &RunningServer, target: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let url = if target.starts_with("http") {
        target.to_owned()
    } else {
        format!("{}{target}", server.base_url())
    };
    let mut request = reqwest::Client::new().get(url).bearer_auth(TOKEN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request succeeds")
}

async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

fn search(path: &str, from: i64, to: i64, extra: &str) -> String {
    format!(
        "{path}?startDateTime={}&endDateTime={}{extra}",
        rfc3339_utc(from),
        rfc3339_utc(to)
    )
}

fn uuids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn event_time(item: &Value) -> i64 {
    match &item["eventTime"] {
        Value::String(text) => text.parse().unwrap(),
        other => other.as_i64().unwrap(),
    }
}

/// Follows `nextLink` from `first` to the end; returns every page's body.
async fn all_pages(server: &RunningServer, first: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut target = first.to_owned();
    loop {
        let response = get(server, &target, headers).await;
        assert_eq!(response.status(), 200, "{target}");
        let body = json(response).await;
        let next = body["nextLink"].as_str().map(str::to_owned);
        pages.push(body);
        match next {
            Some(link) => target = link,
            None => return pages,
        }
        assert!(pages.len() < 1000, "runaway paging");
    }
}

/// Dataset ids with `from_ms <= time <= to_ms` that `query` matches.
fn truth(items: &[Item], from_ms: i64, to_ms: i64, query: &str) -> HashSet<String> {
    let query = Query::parse(query).unwrap();
    items
        .iter()
        .filter(|item| (from_ms..=to_ms).contains(&item.time_ms) && query.matches(&item.json))
        .map(|item| item.id.clone())
        .collect()
}

#[tokio::test]
async fn default_mode_pages_hold_every_record_once_with_short_and_empty_pages() {
    let config = config(120);
    let items = config.dataset.detections.clone();
    let server = start(config).await;
    let (from, to) = (DEFAULT_START + HOUR, DEFAULT_START + 3 * HOUR);
    let first = search(DETECTIONS, from, to, "&top=50");
    let pages = all_pages(&server, &first, &[("TMV1-Query", "*")]).await;

    let sizes: Vec<usize> = pages.iter().map(|page| uuids(page).len()).collect();
    assert_eq!(sizes[..6], [50, 25, 0, 50, 25, 0]);
    let mut seen = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        assert_eq!(page["progressRate"], 100);
        let link = page["nextLink"].as_str();
        assert_eq!(link.is_none(), index == pages.len() - 1);
        if let Some(link) = link {
            // Absolute, on the host and port the client used, and top kept.
            let prefix = format!("{}{DETECTIONS}?top=50&skipToken=", server.base_url());
            assert!(link.starts_with(&prefix), "{link}");
        }
        let times: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(event_time)
            .collect();
        assert!(times.is_sorted_by(|a, b| a >= b), "newest first");
        seen.extend(uuids(page));
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a record was served twice");
    assert_eq!(unique, truth(&items, from * 1000, to * 1000, "*"));
}

#[tokio::test]
async fn windows_are_inclusive_at_the_millisecond_unless_half_open() {
    let (from, to) = (DEFAULT_START + HOUR, DEFAULT_START + 2 * HOUR);
    let edge_ms = to * 1000;
    for (mode, order) in [
        (WindowMode::InclusiveBoth, Order::Descending),
        (WindowMode::HalfOpen, Order::Ascending),
    ] {
        let server = start(Config {
            window: mode,
            order,
            short_pages: false,
            ..config(12)
        })
        .await;
        let body = json(
            get(
                &server,
                &search(DETECTIONS, from, to, ""),
                &[("TMV1-Query", "*")],
            )
            .await,
        )
        .await;
        let times: Vec<i64> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(event_time)
            .collect();
        assert!(times.contains(&(from * 1000)));
        assert!(times.contains(&(edge_ms - 500)) && times.contains(&(edge_ms - 1)));
        assert_eq!(times.contains(&edge_ms), mode == WindowMode::InclusiveBoth);
        match order {
            Order::Descending => assert!(times.is_sorted_by(|a, b| a >= b)),
            Order::Ascending => assert!(times.is_sorted()),
        }
        // Asking up to a second before the edge misses the last second's records.
        let body = json(
            get(
                &server,
                &search(DETECTIONS, from, to - 1, ""),
                &[("TMV1-Query", "*")],
            )
            .await,
        )
        .await;
        let times: Vec<i64> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(event_time)
            .collect();
        assert!(!times.contains(&(edge_ms - 500)) && !times.contains(&(edge_ms - 1)));
    }
}

#[tokio::test]
async fn invalid_requests_get_400_bad_request() {
    let server = start(config(12)).await;
    let ok = search(DETECTIONS, DEFAULT_START, DEFAULT_START + HOUR, "");
    let long_query = format!("endpointHostName:{}", "x".repeat(2048));
    let long_select = format!("&select={}", "a".repeat(2049));
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{ok}&top=2000"), vec![("TMV1-Query", "*")]),
        (format!("{ok}&top=abc"), vec![("TMV1-Query", "*")]),
        (format!("{ok}&mode=fast"), vec![("TMV1-Query", "*")]),
        (format!("{ok}{long_select}"), vec![("TMV1-Query", "*")]),
        (
            format!("{DETECTIONS}?startDateTime=2024-10-20T00:00:00.000Z"),
            vec![("TMV1-Query", "*")],
        ),
        (
            format!("{DETECTIONS}?startDateTime=2024-10-20T00:00:00%2B00:00"),
            vec![("TMV1-Query", "*")],
        ),
        (
            format!("{DETECTIONS}?endDateTime=2024-10-20"),
            vec![("TMV1-Query", "*")],
        ),
        (
            search(DETECTIONS, DEFAULT_START + HOUR, DEFAULT_START, ""),
            vec![("TMV1-Query", "*")],
        ),
        (ok.clone(), vec![]),
        (ok.clone(), vec![("TMV1-Query", "  ")]),
        (ok.clone(), vec![("TMV1-Query", long_query.as_str())]),
        (
            ok.clone(),
            vec![("TMV1-Query", "productCode:PTP act:Block")],
        ),
        (
            format!("{ok}&skipToken=bm90LWEtdG9rZW4"),
            vec![("TMV1-Query", "*")],
        ),
        (format!("{ok}&skipToken=%25zz"), vec![("TMV1-Query", "*")]),
    ];
    for (target, headers) in cases {
        let response = get(&server, &target, &headers).await;
        assert_eq!(response.status(), 400, "{target} {headers:?}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "BadRequest", "{target}");
        assert!(body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn a_skip_token_carries_the_query_and_wins_over_other_params() {
    let server = start(config(120)).await;
    let first = search(DETECTIONS, DEFAULT_START, DEFAULT_START + HOUR, "&top=50");
    let body = json(get(&server, &first, &[("TMV1-Query", "productCode:ptp")]).await).await;
    let link = body["nextLink"].as_str().unwrap().to_owned();
    let expected =
        uuids(&json(get(&server, &link, &[("TMV1-Query", "productCode:ptp")]).await).await);
    // flyryan-style: the original parameters sent again with the token change nothing.
    let noisy = format!(
        "{link}&startDateTime=2020-01-01T00:00:00Z&endDateTime=2020-01-02T00:00:00Z&top=5000"
    );
    let again =
        uuids(&json(get(&server, &noisy, &[("TMV1-Query", "productCode:ptp")]).await).await);
    assert_eq!(again, expected);
    // Behind a proxy, links may name another origin; the token works the same.
    let proxied = start(Config {
        next_link_base: Some("https://internal.example:8443/".into()),
        ..config(120)
    })
    .await;
    let body = json(get(&proxied, &first, &[("TMV1-Query", "productCode:ptp")]).await).await;
    let proxied_link = body["nextLink"].as_str().unwrap();
    assert!(
        proxied_link
            .starts_with("https://internal.example:8443/v3.0/search/detections?top=50&skipToken=")
    );
    let path = &proxied_link["https://internal.example:8443".len()..];
    assert_eq!(
        get(&proxied, path, &[("TMV1-Query", "productCode:ptp")])
            .await
            .status(),
        200
    );
    // Another query, or no query, with the same token is refused.
    let response = get(&server, &link, &[("TMV1-Query", "productCode:sao")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await["error"]["message"],
        "Invalid skipToken"
    );
    assert_eq!(get(&server, &link, &[]).await.status(), 400);
    // A token of one route is not valid on another.
    let other = link.replace("detections", "endpointActivities");
    assert_eq!(
        get(&server, &other, &[("TMV1-Query", "productCode:ptp")])
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn performance_mode_searches_before_it_answers() {
    for repeat in [true, false] {
        let server = start(Config {
            performance_empty_pages: 3,
            repeat_next_link_while_searching: repeat,
            ..config(400)
        })
        .await;
        let first = search(
            DETECTIONS,
            DEFAULT_START,
            DEFAULT_START + 3 * HOUR,
            "&mode=performance&top=50",
        );
        let pages = all_pages(&server, &first, &[("TMV1-Query", "*")]).await;
        let rates: Vec<i64> = pages
            .iter()
            .map(|page| page["progressRate"].as_i64().unwrap())
            .collect();
        assert_eq!(rates[..4], [0, 33, 66, 100]);
        assert!(pages[..3].iter().all(|page| uuids(page).is_empty()));
        let links: Vec<&str> = pages[..3]
            .iter()
            .map(|page| page["nextLink"].as_str().unwrap())
            .collect();
        if repeat {
            assert!(links[1] == links[0] && links[2] == links[0]);
        } else {
            assert!(links[1] != links[0] && links[2] != links[1]);
        }
        // `top` is ignored: up to 500 a page.
        assert_eq!(uuids(&pages[3]).len(), 500);
        let seen: Vec<String> = pages.iter().flat_map(uuids).collect();
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len());
        let dataset = Dataset::generate(DEFAULT_START, 1, 400, 3);
        assert_eq!(
            unique,
            truth(
                &dataset.detections,
                DEFAULT_START * 1000,
                (DEFAULT_START + 3 * HOUR) * 1000,
                "*"
            )
        );
    }
}

#[tokio::test]
async fn count_only_and_the_query_language() {
    let config = config(24);
    let items = config.dataset.detections.clone();
    let activities = config.dataset.endpoint_activities.clone();
    let server = start(config).await;
    let (from, to) = (DEFAULT_START, DEFAULT_START + 12 * HOUR);
    for query in [
        "productCode:PTP AND act:Block",
        "productcode:ptp and ACT:block",
        "(productCode:sao or productCode:sca) and not act:Quarantine",
        "dpt:443",
        "*",
    ] {
        let headers = [("TMV1-Query", query)];
        let count = json(
            get(
                &server,
                &search(DETECTIONS, from, to, "&mode=countOnly"),
                &headers,
            )
            .await,
        )
        .await;
        let expected = truth(&items, from * 1000, to * 1000, query);
        assert_eq!(count["totalCount"], expected.len(), "{query}");
        let pages = all_pages(
            &server,
            &search(DETECTIONS, from, to, "&top=1000"),
            &headers,
        )
        .await;
        let seen: HashSet<String> = pages.iter().flat_map(uuids).collect();
        assert_eq!(seen, expected, "{query}");
    }
    let seed = truth(
        &items,
        from * 1000,
        to * 1000,
        "productCode:PTP AND act:Block",
    );
    assert!(!seed.is_empty() && seed.len() < truth(&items, from * 1000, to * 1000, "*").len());
    // Endpoint activities, with select.
    let headers = [("TMV1-Query", "endpointHostName:srv")];
    let body = json(
        get(
            &server,
            &search(
                "/v3.0/search/endpointActivities",
                from,
                to,
                "&top=5000&select=uuid,eventTime",
            ),
            &headers,
        )
        .await,
    )
    .await;
    let expected = truth(&activities, from * 1000, to * 1000, "endpointHostName:srv");
    assert_eq!(uuids(&body).into_iter().collect::<HashSet<_>>(), expected);
    for item in body["items"].as_array().unwrap() {
        let keys: HashSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, HashSet::from(["eventTime", "uuid"]));
    }
}

#[tokio::test]
async fn auth_and_permissions() {
    let server = start(Config {
        no_search_tokens: vec!["alerts-only".into()],
        no_workbench_tokens: vec!["search-only".into()],
        ..config(12)
    })
    .await;
    let url = format!(
        "{}{}",
        server.base_url(),
        search(DETECTIONS, DEFAULT_START, DEFAULT_START + HOUR, "")
    );
    let alerts = format!("{}{ALERTS}", server.base_url());
    let client = reqwest::Client::new();
    let send = |url: &str, authorization: Option<&str>| {
        let mut request = client.get(url).header("TMV1-Query", "*");
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send()
    };
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Basic c2ltLXRva2Vu"),
        Some("sim-token"),
    ] {
        let response = send(&url, authorization).await.unwrap();
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert_eq!(json(response).await["error"]["code"], "Unauthorized");
    }
    let response = send(&url, Some("Bearer alerts-only")).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["error"]["code"], "AccessDenied");
    assert_eq!(
        send(&alerts, Some("Bearer alerts-only"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send(&alerts, Some("Bearer search-only"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        send(&url, Some("Bearer search-only"))
            .await
            .unwrap()
            .status(),
        200
    );
    let health = json(get(&server, "/v3.0/healthcheck/connectivity", &[]).await).await;
    assert_eq!(health["status"], "available");

    let bare = start(Config {
        bare_auth_errors: true,
        ..config(3)
    })
    .await;
    let url = format!("{}{DETECTIONS}", bare.base_url());
    let response = send(&url, Some("Bearer wrong")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_quota_counts_refused_requests_unless_told_not_to() {
    for count_limited in [true, false] {
        let server = start(Config {
            quotas: vec![Quota {
                requests: 2,
                per: Duration::from_millis(1000),
            }],
            count_refused_requests: count_limited,
            retry_after_on_429: !count_limited,
            no_search_tokens: vec!["other".into()],
            ..config(3)
        })
        .await;
        let health = "/v3.0/healthcheck/connectivity";
        assert_eq!(get(&server, health, &[]).await.status(), 200);
        assert_eq!(get(&server, health, &[]).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(get(&server, health, &[]).await.status(), 429);
        let refused = get(&server, health, &[]).await;
        assert_eq!(refused.status(), 429);
        assert_eq!(
            refused.headers().contains_key("retry-after"),
            !count_limited
        );
        let body = json(refused).await;
        assert_eq!(body["error"]["code"], "TooManyRequests");
        assert_eq!(body["error"]["message"], "Too many API requests");
        tokio::time::sleep(Duration::from_millis(600)).await;
        // The first two have left the window; the two refused ones still in it keep the block
        // only when refused requests count.
        let status = get(&server, health, &[]).await.status();
        assert_eq!(status == 429, count_limited, "{status}");
        // Quotas are per token.
        let other = reqwest::Client::new()
            .get(format!("{}{health}", server.base_url()))
            .bearer_auth("other")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
    }
}

#[tokio::test]
async fn workbench_alerts_filter_order_and_page() {
    let config = Config {
        alert_page_size: 5,
        ..config(40)
    };
    let alerts = config.dataset.alerts.clone();
    let server = start(config).await;
    let (from, to) = (DEFAULT_START, DEFAULT_START + 6 * HOUR);
    let filter = "severity eq 'high' or status eq 'Open'";
    let keep = |alert: &Value| alert["severity"] == "high" || alert["status"] == "Open";
    for (target, order) in [
        ("createdDateTime", ""),
        ("updatedDateTime", "&orderBy=updatedDateTime%20asc"),
    ] {
        let first = search(
            ALERTS,
            from,
            to,
            &format!("&dateTimeTarget={target}{order}"),
        );
        let pages = all_pages(&server, &first, &[("TMV1-Filter", filter)]).await;
        let mut seen = Vec::new();
        for page in &pages {
            assert_eq!(page["count"], page["items"].as_array().unwrap().len());
            assert!(page["count"].as_u64().unwrap() <= 5);
            for alert in page["items"].as_array().unwrap() {
                seen.push((
                    vision_one::parse_iso_millis(alert[target].as_str().unwrap()).unwrap(),
                    alert["id"].as_str().unwrap().to_owned(),
                ));
            }
        }
        let expected: Vec<(i64, String)> = alerts
            .iter()
            .filter(|alert| keep(&alert.json))
            .filter_map(|alert| Some((alert.date_ms(target)?, alert.id.clone())))
            .filter(|(at, _)| (from * 1000..=to * 1000).contains(at))
            .collect();
        assert_eq!(pages[0]["totalCount"], expected.len());
        assert_eq!(seen.len(), expected.len());
        let times: Vec<i64> = seen.iter().map(|(at, _)| *at).collect();
        if order.is_empty() {
            assert!(
                times.is_sorted_by(|a, b| a >= b),
                "createdDateTime desc by default"
            );
        } else {
            assert!(times.is_sorted());
        }
        let mut sorted = seen.clone();
        sorted.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(sorted, expected);
    }
    for bad in [
        "&dateTimeTarget=closedDateTime",
        "&orderBy=severity%20up",
        "&top=0",
    ] {
        let response = get(&server, &search(ALERTS, from, to, bad), &[]).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    let response = get(
        &server,
        &search(ALERTS, from, to, ""),
        &[("TMV1-Filter", "severity = high")],
    )
    .await;
    assert_eq!(response.status(), 400);
    // A page asked for with another filter than its token's.
    let body = json(
        get(
            &server,
            &search(ALERTS, from, to, ""),
            &[("TMV1-Filter", filter)],
        )
        .await,
    )
    .await;
    let link = body["nextLink"].as_str().unwrap();
    assert_eq!(get(&server, link, &[]).await.status(), 400);
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_stalls() {
    let server = start(Config {
        stall: Some(Duration::from_millis(50)),
        gateway_timeout: Duration::from_millis(100),
        ..config(3)
    })
    .await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}{DETECTIONS}", server.base_url()))
        .bearer_auth(TOKEN)
        .body(vec![b'x'; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        json(response).await["error"]["code"],
        "RequestEntityTooLarge"
    );
    let response = get(&server, "/v3.0/search/nothing", &[]).await;
    assert_eq!(response.status(), 404);
    assert_eq!(json(response).await["error"]["code"], "NotFound");
    let response = client
        .post(format!("{}{DETECTIONS}", server.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // A short stall is served late; a long one runs into the gateway's timeout.
    let response = get(
        &server,
        &search(DETECTIONS, DEFAULT_START, DEFAULT_START + HOUR, ""),
        &[("TMV1-Query", "*")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let slow = start(Config {
        stall: Some(Duration::from_millis(200)),
        gateway_timeout: Duration::from_millis(100),
        ..config(3)
    })
    .await;
    let response = get(
        &slow,
        &search(DETECTIONS, DEFAULT_START, DEFAULT_START + HOUR, ""),
        &[("TMV1-Query", "*")],
    )
    .await;
    assert_eq!(response.status(), 504);
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_writes_ground_truth_and_stops_on_sigterm() {
    use common::{simulator_binary, spawn_listening};
    use std::process::{Command, Stdio};

    let dir = tempfile_dir();
    let (child, base_url) = spawn_listening(
        simulator_binary()
            .args([
                "vision-one",
                "--days",
                "1",
                "--per-hour",
                "4",
                "--seed",
                "11",
                "--no-quota",
            ])
            .arg("--ground-truth")
            .arg(&dir)
            .stderr(Stdio::piped()),
    );
    assert!(base_url.starts_with("http://127.0.0.1:"));
    let expected = Dataset::generate(DEFAULT_START, 1, 4, 11);
    for stream in Stream::ALL {
        let path = dir.join(format!("{}.jsonl", stream.file_stem()));
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            expected.to_json_lines(stream)
        );
    }
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{base_url}{}",
            search(
                DETECTIONS,
                DEFAULT_START,
                DEFAULT_START + 86_400,
                "&mode=countOnly"
            )
        ))
        .bearer_auth(TOKEN)
        .header("TMV1-Query", "*")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Inclusive at both ends: nothing lies on the next day's first instant here.
    assert_eq!(body["totalCount"], expected.detections.len());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trawl-vision-one-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
