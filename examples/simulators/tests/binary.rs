//! The `trawl-simulator` binary as a demo script drives it.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use trawl_simulators::workvivo::{DEFAULT_START, Dataset};

#[tokio::test]
async fn serves_writes_ground_truth_and_exits_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("trawl-simulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truth = dir.join("truth.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_trawl-simulator"))
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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
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
