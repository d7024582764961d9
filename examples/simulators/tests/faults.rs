//! The fault script as a client sees it, through the Workvivo simulator.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl_simulators::faults::{Action, Fault};

const WINDOW: &str = "/v1/siem/1725148800/1725152400";

#[tokio::test]
async fn status_faults_fire_on_the_nth_request_only() {
    let server = start(small_config()).await;
    server.faults().push(Fault::status_at(2, 503));
    server
        .faults()
        .push(Fault::at(3, Action::status(429).with_retry_after(7)));

    assert_eq!(get(&server, WINDOW).await.status(), 200);
    let unavailable = get(&server, WINDOW).await;
    assert_eq!(unavailable.status(), 503);
    assert_eq!(unavailable.headers()["content-type"], "text/html");
    assert!(
        unavailable
            .text()
            .await
            .unwrap()
            .contains("<h1>503 Service Unavailable</h1>")
    );
    let limited = get(&server, WINDOW).await;
    assert_eq!(
        (
            limited.status().as_u16(),
            limited.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    assert_eq!(get(&server, WINDOW).await.status(), 200);

    let log: Vec<(u64, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.seq, r.status))
        .collect();
    assert_eq!(log, [(1, 200), (2, 503), (3, 429), (4, 200)]);
}

#[tokio::test]
async fn path_faults_stop_after_times() {
    let server = start(small_config()).await;
    server
        .faults()
        .push(Fault::status_on_path("/1725152400", 500, Some(2)));
    let statuses = [
        get(&server, WINDOW).await.status(),
        get(&server, "/v1/siem/1725152400/1725156000")
            .await
            .status(),
        get(&server, "/v1/siem/1725156000/1725159600")
            .await
            .status(),
        get(&server, WINDOW).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [500, 500, 200, 200]);
}

#[tokio::test]
async fn delay_then_serve() {
    let server = start(small_config()).await;
    server
        .faults()
        .push(Fault::at(1, Action::Delay(Duration::from_millis(300))));
    let started = Instant::now();
    let response = get(&server, WINDOW).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A client with a shorter timeout gives up.
    server
        .faults()
        .push(Fault::at(2, Action::Delay(Duration::from_secs(5))));
    let timed_out = client()
        .get(format!("{}{WINDOW}", server.base_url()))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(timed_out.is_timeout());
}

#[tokio::test]
async fn truncated_body_is_framed_but_not_json() {
    let server = start(small_config()).await;
    let full = get(&server, WINDOW).await.bytes().await.unwrap();
    server.faults().push(Fault::at(2, Action::TruncatedBody));

    let response = get(&server, WINDOW).await;
    assert_eq!(response.status(), 200);
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let cut = response.bytes().await.expect("the framing is valid");
    assert_eq!(cut.len(), length);
    assert_eq!(cut.len(), full.len() / 2);
    assert_eq!(cut[..], full[..cut.len()]);
    assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
}

#[tokio::test]
async fn reset_connection_is_a_client_error() {
    let server = start(small_config()).await;
    server.faults().push(Fault::at(1, Action::ResetConnection));
    let client = client();
    let error = client
        .get(format!("{}{WINDOW}", server.base_url()))
        .bearer_auth("sim-token")
        .header("Workvivo-Id", "sim-org")
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(!error.is_status(), "{error:?}");

    // On the wire: the connection closes without a single byte of response.
    server.faults().push(Fault::at(2, Action::ResetConnection));
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request =
        format!("GET {WINDOW} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sim-token\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // The server itself carries on.
    assert_eq!(get(&server, WINDOW).await.status(), 200);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 0, 200]);
}

#[tokio::test]
async fn faults_can_be_scripted_over_http() {
    let server = start(small_config()).await;
    let control = format!("{}/__mock/faults", server.base_url());
    let script = json!([
        {"trigger": {"nth": 1}, "action": {"status": {"status": 502, "body": "<html>bad gateway</html>",
                                                       "content_type": "text/html"}}},
        {"trigger": {"probability": {"rate": 1.0, "seed": 3}}, "action": "reset_connection", "times": 1},
    ]);
    let added = client().post(&control).json(&script).send().await.unwrap();
    assert_eq!(added.status(), 201);
    let listed: serde_json::Value = client()
        .get(&control)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let gateway = get(&server, WINDOW).await;
    assert_eq!(gateway.status(), 502);
    assert_eq!(gateway.text().await.unwrap(), "<html>bad gateway</html>");
    assert!(
        client()
            .get(format!("{}{WINDOW}", server.base_url()))
            .send()
            .await
            .is_err()
    );

    assert_eq!(
        client().delete(&control).send().await.unwrap().status(),
        204
    );
    assert!(server.faults().faults().is_empty());
    assert_eq!(get(&server, WINDOW).await.status(), 200);

    // Control requests are neither numbered nor logged.
    let log: serde_json::Value = client()
        .get(format!("{}/__mock/requests", server.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen: Vec<(u64, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["seq"].as_u64().unwrap(),
                entry["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, 502), (2, 0), (3, 200)]);
    assert_eq!(server.requests().len(), 3);

    let malformed = client()
        .post(&control)
        .json(&json!([{"trigger": "soon"}]))
        .send()
        .await
        .unwrap();
    assert!(malformed.status().is_client_error());
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let server = start(small_config()).await;
    let addr = server.addr();
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let server = start(small_config()).await;
    let addr = server.addr();
    drop(server);
    tokio::task::yield_now().await;
    // Aborting is asynchronous; give the runtime a moment to drop the listener.
    let mut closed = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed);
}
