//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses a different subset

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use trawl_simulators::RunningServer;
use trawl_simulators::workvivo::{self, Config, Dataset};

pub const START: i64 = workvivo::DEFAULT_START;
pub const HOUR: i64 = 3600;

pub async fn start(config: Config) -> RunningServer {
    workvivo::start(config).await.expect("simulator starts")
}

/// A small dataset keeps the tests fast; it still has edges, bursts and switch-user events.
pub fn small_config() -> Config {
    Config {
        dataset: Dataset::generate(START, 1, 6, 3),
        ..Config::default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET with the default credentials.
pub async fn get(server: &RunningServer, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", server.base_url()))
        .bearer_auth("sim-token")
        .header("Workvivo-Id", "sim-org")
        .header("Accept", "application/json")
        .send()
        .await
        .expect("request succeeds")
}

pub async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

pub fn timestamps(body: &Value) -> Vec<i64> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["created_at_timestamp"].as_i64().unwrap())
        .collect()
}

pub fn ids(body: &Value) -> Vec<u64> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

/// The simulator binary, ready for its arguments.
pub fn simulator_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl-simulator"))
}

/// Starts `command` (the simulator binary) and reads the base URL it announces on its first line.
pub fn spawn_listening(command: &mut Command) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    (child, base_url)
}
