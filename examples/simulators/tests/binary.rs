//! The `trawl-simulator` binary as a demo script drives it.

#![cfg(unix)]

mod common;

use common::{simulator_binary, spawn_listening};
use std::process::{Command, Stdio};

use trawl_simulators::workvivo::{DEFAULT_START, Dataset};

#[tokio::test]
async fn serves_writes_ground_truth_and_exits_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("trawl-simulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truth = dir.join("truth.jsonl");
    let (child, base_url) = spawn_listening(
        simulator_binary()
            .args([
                "workvivo",
                "--days",
                "1",
                "--events-per-hour",
                "4",
                "--seed",
                "11",
                "--max-rows",
                "1000",
            ])
            .arg("--ground-truth")
            .arg(&truth)
            .stderr(Stdio::piped()),
    );

    assert!(base_url.starts_with("http://127.0.0.1:"));

    let expected = Dataset::generate(DEFAULT_START, 1, 4, 11);
    assert_eq!(
        std::fs::read_to_string(&truth).unwrap(),
        expected.to_json_lines()
    );

    let body: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base_url}/v1/siem/{DEFAULT_START}/{}",
            DEFAULT_START + 86_400
        ))
        .bearer_auth("sim-token")
        .header("Workvivo-Id", "sim-org")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        expected.events.len()
    );
    assert_eq!(
        body["meta"]["pagination"]["total_records"],
        expected.events.len()
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("GET /v1/siem/"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}
