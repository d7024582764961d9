//! What every simulator does to a careless client, over HTTP: a 429 blocks the key (longer when
//! it comes back early), refused requests use up quota, undeclared quotas answer bare 429s,
//! Verkada tokens belong to their key and their server, outages come in streaks, and the
//! counters say who caused which 429.
//!
//! Block lengths are long next to the waits here, so that a slow machine cannot turn a refusal
//! into an admission; the assertions are on statuses, counts and `Retry-After`, not on durations.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use trawl_simulators::faults::{Action, Fault, Streaks};
use trawl_simulators::ratelimit::{EarlyRetry, Penalty, Quota};
use trawl_simulators::{RunningServer, verkada, vision_one, workvivo, yandex360};

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Verkada

fn verkada_config() -> verkada::Config {
    verkada::Config {
        dataset: verkada::Dataset::generate(verkada::DEFAULT_START, 4, 3, 600, 7),
        ..verkada::Config::default()
    }
}

async fn verkada_token(server: &RunningServer, key: &str) -> reqwest::Response {
    common::client()
        .post(format!("{}/token", server.base_url()))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

async fn verkada_token_of(server: &RunningServer, key: &str) -> String {
    let response = verkada_token(server, key).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn verkada_audit(server: &RunningServer, token: &str) -> reqwest::Response {
    common::client()
        .get(format!(
            "{}/core/v1/audit_log?start_time={}&end_time={}",
            server.base_url(),
            verkada::DEFAULT_START,
            verkada::DEFAULT_START + 600
        ))
        .header("x-verkada-auth", token)
        .send()
        .await
        .unwrap()
}

/// Three requests a second, then a 5-second cooldown whose early-retry rule is `early_retry`.
/// Returns the `Retry-After` of a request made one second into the cooldown.
async fn verkada_retry_one_second_into_the_cooldown(
    early_retry: EarlyRetry,
) -> (u64, RunningServer) {
    let server = verkada::start(verkada::Config {
        quotas: vec![Quota {
            requests: 3,
            per: Duration::from_secs(1),
        }],
        penalty: Some(verkada::Config::verkada_cooldown().early_retry(early_retry)),
        retry_after_on_429: true,
        ..verkada_config()
    })
    .await
    .unwrap();
    let token = verkada_token_of(&server, verkada::DEFAULT_API_KEY).await;
    for _ in 0..2 {
        assert_eq!(
            verkada_audit(&server, &token).await.status(),
            StatusCode::OK
        );
    }
    let breach = verkada_audit(&server, &token).await;
    assert_eq!(breach.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&breach), Some(5));
    // The quota alone allows again after a second; the cooldown does not.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let early = verkada_audit(&server, &token).await;
    assert_eq!(early.status(), StatusCode::TOO_MANY_REQUESTS);
    (retry_after(&early).unwrap(), server)
}

#[tokio::test]
async fn verkada_a_client_back_one_second_into_the_cooldown_is_refused_and_extends_it() {
    let (wait, server) = verkada_retry_one_second_into_the_cooldown(EarlyRetry::Restarts).await;
    assert_eq!(wait, 5, "the cooldown starts over");
    let counters = server.counters();
    assert_eq!(counters.too_many_requests, 2);
    assert_eq!(counters.self_caused_429s, 2);
    let key = counters.key(verkada::DEFAULT_API_KEY);
    assert_eq!(
        (key.requests, key.self_caused_429s, key.token_requests),
        (5, 2, 1)
    );

    let (wait, _) = verkada_retry_one_second_into_the_cooldown(EarlyRetry::Doubles).await;
    assert_eq!(wait, 10, "the cooldown starts over, twice as long");
    let (wait, _) = verkada_retry_one_second_into_the_cooldown(EarlyRetry::Refused).await;
    assert!(wait <= 4, "the cooldown keeps its end: {wait}");
}

#[tokio::test]
async fn verkada_default_limits_refuse_the_26th_request_and_token_exchanges_after_it() {
    // Verkada's own numbers: 25 in any 5 seconds, then a 5-second cooldown.
    let server = verkada::start(verkada_config()).await.unwrap();
    let token = verkada_token_of(&server, verkada::DEFAULT_API_KEY).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(verkada_audit(&server, &token).await.status().as_u16());
    }
    // The token exchange and 24 reads make 25; everything after is refused.
    assert_eq!(statuses[..24], [200; 24]);
    assert_eq!(statuses[24..], [429; 6]);
    // The token exchange shares the organisation's limit and its cooldown.
    assert_eq!(
        verkada_token(&server, verkada::DEFAULT_API_KEY)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(server.counters().self_caused_429s, 7);
}

#[tokio::test]
async fn verkada_tokens_belong_to_their_key_and_their_server() {
    let org = |key: &str, org: &str| verkada::ApiKey {
        org: org.to_owned(),
        ..verkada::ApiKey::new(key, verkada::Region::Au)
    };
    let a = verkada::start(verkada::Config {
        keys: vec![org("key-a", "org-a")],
        ..verkada_config()
    })
    .await
    .unwrap();
    let b = verkada::start(verkada::Config {
        keys: vec![org("key-b", "org-b")],
        ..verkada_config()
    })
    .await
    .unwrap();
    let token_a = verkada_token_of(&a, "key-a").await;
    assert_eq!(verkada_audit(&a, &token_a).await.status(), StatusCode::OK);
    // Key A's token at organisation B's simulator, and key A at B's token exchange.
    assert_eq!(
        verkada_audit(&b, &token_a).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verkada_token(&b, "key-a").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Two servers with the very same configuration still do not share tokens.
    let one = verkada::start(verkada_config()).await.unwrap();
    let other = verkada::start(verkada_config()).await.unwrap();
    let token = verkada_token_of(&one, verkada::DEFAULT_API_KEY).await;
    let _ = verkada_token_of(&other, verkada::DEFAULT_API_KEY).await;
    assert_eq!(
        verkada_audit(&other, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A token sent with another key than the one it was made for.
    let response = common::client()
        .get(format!(
            "{}/core/v1/audit_log?start_time={}&end_time={}",
            one.base_url(),
            verkada::DEFAULT_START,
            verkada::DEFAULT_START + 600
        ))
        .header("x-verkada-auth", &token)
        .header("x-api-key", "some-other-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        one.counters().key(verkada::DEFAULT_API_KEY).token_requests,
        1
    );
}

#[tokio::test]
async fn verkada_a_revoked_or_replaced_key_and_its_tokens_stop_working() {
    let keyring = verkada::Keyring::default();
    let server = verkada::start(verkada::Config {
        keys: vec![
            verkada::ApiKey::new("kept", verkada::Region::Au),
            verkada::ApiKey::new("rotated", verkada::Region::Au),
        ],
        keyring: keyring.clone(),
        ..verkada_config()
    })
    .await
    .unwrap();
    let kept = verkada_token_of(&server, "kept").await;
    let rotated = verkada_token_of(&server, "rotated").await;

    keyring.replace("rotated", "rotated-2");
    assert_eq!(
        verkada_audit(&server, &rotated).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verkada_token(&server, "rotated").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let replacement = verkada_token_of(&server, "rotated-2").await;
    assert_eq!(
        verkada_audit(&server, &replacement).await.status(),
        StatusCode::OK
    );

    keyring.revoke("kept");
    assert_eq!(
        verkada_audit(&server, &kept).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verkada_token(&server, "kept").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verkada_token(&server, "never-issued").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let counters = server.counters();
    assert_eq!(counters.key("kept").token_requests, 1);
    assert_eq!(counters.key("rotated").token_requests, 1);
    assert_eq!(counters.key("rotated-2").token_requests, 1);
    // Refused exchanges did not authenticate: counted in the total only.
    assert_eq!(counters.token_requests, 3);
}

// ---------------------------------------------------------------------------------------------
// Workvivo

async fn workvivo_get(server: &RunningServer, token: &str) -> reqwest::Response {
    common::client()
        .get(format!(
            "{}/v1/siem/{}/{}",
            server.base_url(),
            common::START,
            common::START + 60
        ))
        .bearer_auth(token)
        .header("Workvivo-Id", "sim-org")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn workvivo_pessimistic_quota_answers_a_bare_429_and_blocks_the_token() {
    let server = workvivo::start(workvivo::Config {
        dataset: workvivo::Dataset::generate(common::START, 1, 3, 3),
        ..workvivo::Config::pessimistic()
    })
    .await
    .unwrap();
    for _ in 0..60 {
        assert_eq!(
            workvivo_get(&server, "sim-token").await.status(),
            StatusCode::OK
        );
    }
    for _ in 0..2 {
        let limited = workvivo_get(&server, "sim-token").await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = limited.headers();
        assert!(headers.get("retry-after").is_none());
        assert!(
            !headers
                .keys()
                .any(|name| name.as_str().starts_with("x-ratelimit")),
            "{headers:?}"
        );
        assert_eq!(limited.text().await.unwrap(), "");
    }
    let counters = server.counters();
    assert_eq!(
        (counters.requests, counters.ok, counters.self_caused_429s),
        (62, 60, 2)
    );
    assert_eq!(counters.key("sim-token").self_caused_429s, 2);
}

#[tokio::test]
async fn workvivo_refused_requests_use_up_the_quota_when_so_set() {
    // 6 a minute is one every ten seconds: each refused request that counts pushes the next one
    // ten seconds further away.
    for (count_refused, expected) in [(false, [10, 10, 10]), (true, [10, 20, 30])] {
        let server = workvivo::start(workvivo::Config {
            dataset: workvivo::Dataset::generate(common::START, 1, 3, 3),
            rate_limit_per_minute: Some(6),
            count_refused_requests: count_refused,
            ..workvivo::Config::default()
        })
        .await
        .unwrap();
        for _ in 0..6 {
            assert_eq!(
                workvivo_get(&server, "sim-token").await.status(),
                StatusCode::OK
            );
        }
        let mut waits = Vec::new();
        for _ in 0..3 {
            let limited = workvivo_get(&server, "sim-token").await;
            assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
            waits.push(retry_after(&limited).unwrap());
        }
        assert_eq!(waits, expected, "counting refused: {count_refused}");
    }
}

#[tokio::test]
async fn workvivo_penalty_outlasts_the_quota() {
    let server = workvivo::start(workvivo::Config {
        dataset: workvivo::Dataset::generate(common::START, 1, 3, 3),
        quotas: vec![Quota {
            requests: 1,
            per: Duration::from_secs(1),
        }],
        penalty: Some(Penalty::block(Duration::from_secs(30))),
        ..workvivo::Config::default()
    })
    .await
    .unwrap();
    assert_eq!(
        workvivo_get(&server, "sim-token").await.status(),
        StatusCode::OK
    );
    let limited = workvivo_get(&server, "sim-token").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&limited), Some(30));
    // The quota has room again; the block has not ended.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let still = workvivo_get(&server, "sim-token").await;
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&still).unwrap() <= 29);
}

/// Requests until both a streak and a calm were seen (bounded), then every logged status checked
/// against the streak plan.
#[tokio::test]
async fn workvivo_streaks_fail_every_request_inside_and_none_outside() {
    let streaks = Streaks::new(Duration::from_millis(300), Duration::from_millis(120), 11);
    let server = workvivo::start(workvivo::Config {
        dataset: workvivo::Dataset::generate(common::START, 1, 3, 3),
        faults: vec![Fault::in_streaks(streaks, Action::status(503))],
        ..workvivo::Config::default()
    })
    .await
    .unwrap();
    for sent in 1..=2000 {
        workvivo_get(&server, "sim-token").await;
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        if sent >= 30 && statuses.contains(&503) && statuses.contains(&200) {
            break;
        }
        if sent % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let log = server.requests();
    let failed = log.iter().filter(|r| r.status == 503).count() as u64;
    assert!(
        failed > 0 && failed < log.len() as u64,
        "{failed} of {}",
        log.len()
    );
    for request in &log {
        let expected = if streaks.covers(request.received_at) {
            503
        } else {
            200
        };
        assert_eq!(request.status, expected, "at {:?}", request.received_at);
    }
    let counters = server.counters();
    assert_eq!(counters.faulted, failed);
    assert_eq!(counters.ok, log.len() as u64 - failed);
    assert_eq!(counters.too_many_requests, 0);
}

// ---------------------------------------------------------------------------------------------
// Yandex 360 and Vision One

#[tokio::test]
async fn yandex_pessimistic_quota_answers_a_bare_429_and_counts_refusals() {
    let server = yandex360::start(yandex360::Config {
        dataset: yandex360::Dataset::generate(yandex360::DEFAULT_START_MS, 2, 7),
        ..yandex360::Config::pessimistic()
    })
    .await
    .unwrap();
    let url = format!(
        "{}/security/v1/org/{}/audit_log/mail?pageSize=1",
        server.base_url(),
        yandex360::ORG_ID
    );
    let get = || {
        common::client()
            .get(&url)
            .header("Authorization", format!("OAuth {}", yandex360::TOKEN))
            .send()
    };
    for _ in 0..100 {
        assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    }
    for _ in 0..3 {
        let limited = get().await.unwrap();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.headers().get("retry-after").is_none());
        assert_eq!(limited.text().await.unwrap(), "");
    }
    let counters = server.counters();
    assert_eq!(counters.key(yandex360::TOKEN).self_caused_429s, 3);
    assert_eq!(counters.key(yandex360::TOKEN).ok, 100);
}

#[tokio::test]
async fn vision_one_penalty_blocks_a_token_alone_and_injected_429s_are_not_self_caused() {
    let server = vision_one::start(vision_one::Config {
        dataset: vision_one::Dataset::generate(vision_one::DEFAULT_START, 1, 3, 7),
        no_search_tokens: vec!["other".to_owned()],
        quotas: vec![Quota {
            requests: 2,
            per: Duration::from_secs(60),
        }],
        penalty: Some(Penalty::block(Duration::from_secs(60))),
        faults: vec![Fault::at(1, vision_one::too_many_requests(None))],
        ..vision_one::Config::default()
    })
    .await
    .unwrap();
    let health = |token: &'static str| {
        common::client()
            .get(format!(
                "{}/v3.0/healthcheck/connectivity",
                server.base_url()
            ))
            .bearer_auth(token)
            .send()
    };
    // An injected 429 first: it costs the token nothing.
    let statuses = [
        health(vision_one::TOKEN).await.unwrap().status(),
        health(vision_one::TOKEN).await.unwrap().status(),
        health(vision_one::TOKEN).await.unwrap().status(),
        health(vision_one::TOKEN).await.unwrap().status(),
        health("other").await.unwrap().status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [429, 200, 200, 429, 200]);
    let counters = server.counters();
    assert_eq!(
        (
            counters.too_many_requests,
            counters.self_caused_429s,
            counters.faulted
        ),
        (2, 1, 1)
    );
    assert_eq!(counters.key(vision_one::TOKEN).requests, 3);
    assert_eq!(counters.key("other").ok, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_takes_the_strictness_flags_and_serves_its_counters() {
    use std::process::{Command, Stdio};

    let (mut child, base_url) = common::spawn_listening(
        common::simulator_binary()
            .args([
                "workvivo",
                "--days",
                "1",
                "--undeclared-quota",
                "--bare-429",
                "--penalty",
                "30",
                "--early-retry",
                "doubles",
                "--count-refused",
                "--fault-streaks",
                "3600s/1s",
            ])
            .stderr(Stdio::null()),
    );
    let get = || {
        common::client()
            .get(format!(
                "{base_url}/v1/siem/{}/{}",
                common::START,
                common::START + 60
            ))
            .bearer_auth("sim-token")
            .header("Workvivo-Id", "sim-org")
            .send()
    };
    // The hour's one-second outage, placed by the default seed, is well after this test's
    // first minute: the flag is taken, and no request falls into it.
    let streaks = Streaks::new(Duration::from_secs(3600), Duration::from_secs(1), 7);
    assert!((0..60_000).all(|ms| !streaks.covers(Duration::from_millis(ms))));
    let mut statuses = Vec::new();
    for _ in 0..63 {
        statuses.push(get().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses[..60], [200; 60]);
    assert_eq!(statuses[60..], [429; 3]);
    let counters: Value = common::client()
        .get(format!("{base_url}/__mock/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["requests"], 63);
    assert_eq!(counters["self_caused_429s"], 3);
    assert_eq!(counters["per_key"]["sim-token"]["self_caused_429s"], 3);

    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    // A malformed flag is refused before serving.
    let output = common::simulator_binary()
        .args(["verkada", "--fault-streaks", "5s/30s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("EVERY/LASTING"));
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_strikes_requests_with_the_everyday_faults() {
    use std::process::{Command, Stdio};

    let (mut child, base_url) = common::spawn_listening(
        common::simulator_binary()
            .args(["yandex360", "--hours", "2", "--everyday-faults"])
            .stderr(Stdio::null()),
    );
    let url = format!(
        "{base_url}/security/v1/org/{}/audit_log/mail?pageSize=1",
        yandex360::ORG_ID
    );
    let (mut statuses, mut dropped) = (Vec::new(), 0);
    for _ in 0..300 {
        let sent = common::client()
            .get(&url)
            .header("Authorization", format!("OAuth {}", yandex360::TOKEN))
            .send()
            .await;
        match sent {
            Ok(response) => statuses.push(response.status().as_u16()),
            Err(_) => dropped += 1,
        }
    }
    let count = |status: u16| statuses.iter().filter(|&&s| s == status).count() as u64;
    assert!(dropped > 0, "connection resets");
    for status in [429, 500, 502] {
        assert!(count(status) > 0, "{status}: {statuses:?}");
    }
    let counters: Value = common::client()
        .get(format!("{base_url}/__mock/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["requests"], 300);
    // No quota: every 429 was injected, none caused by the client.
    assert_eq!(counters["too_many_requests"], count(429));
    assert_eq!(counters["self_caused_429s"], 0);
    // Cut bodies still answer 200, so faults outnumber the failed statuses.
    assert!(
        counters["faulted"].as_u64().unwrap() >= count(429) + count(500) + count(502) + dropped
    );

    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}
