//! Helpers shared by the integration tests: where the built connectors are.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;
use trawl_simulators::RunningServer;
use trawl_simulators::workvivo::{self, Config};

pub mod verkada;
pub mod yandex360;

fn built_dir(variable: &str, folder: &str) -> PathBuf {
    let dir = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the host crate lives in the workspace")
                .join("target")
                .join(folder)
        });
    assert!(
        dir.is_dir(),
        "{} does not exist: build the connectors first with `cargo xtask build-plugins`",
        dir.display()
    );
    dir
}

/// HTTP for the hostile connector as `trawl run` builds it: its declared hosts (`grants` granted,
/// if any), the secret `token` bound to api.hostile.test, and no retries (a test wants one
/// attempt's answer).
pub fn hostile_http(
    connector: &trawl::runtime::Connector,
    secret: &str,
    grants: Option<&[String]>,
    limits: trawl::capabilities::http::HttpLimits,
) -> trawl::capabilities::http::HttpCapability {
    use trawl::capabilities::http::{HostPattern, HttpCapability, NetworkPolicy, RetryPolicy};
    let info = connector.info();
    let policy = NetworkPolicy::new(&info.name, &info.hosts, grants).unwrap();
    let mut secrets = trawl::capabilities::http::Secrets::default();
    secrets.insert_bound(
        "token",
        secret.into(),
        vec!["https://api.hostile.test".parse::<HostPattern>().unwrap()],
    );
    HttpCapability::new(policy, secrets, limits)
        .unwrap()
        .with_retry(RetryPolicy::none())
}

/// Writes `trawl.ron` into `dir`, retrying a failed request only twice, so that a fault that
/// persists fails its window quickly. A run reads it with `--config trawl.ron`.
pub fn write_few_retries_config(dir: &Path) {
    std::fs::write(dir.join("trawl.ron"), "(limits: (retry_attempts: 2))").unwrap();
}

/// The folder holding the vendor connectors (`workvivo.wasm`, ...).
pub fn plugin_dir() -> PathBuf {
    built_dir("TRAWL_TEST_PLUGIN_DIR", "plugins")
}

/// The folder holding the test-only connectors (`hostile.wasm`).
pub fn test_plugin_dir() -> PathBuf {
    built_dir("TRAWL_TEST_HOSTILE_DIR", "test-plugins")
}

/// The test connector that misbehaves on request, loaded in a runtime of its own with `limits`
/// (and a compile cache in `cache`, if given). The runtime must outlive the connector's calls.
pub async fn load_hostile(
    limits: trawl::runtime::GuestLimits,
    cache: Option<&Path>,
) -> (trawl::runtime::Runtime, trawl::runtime::Connector) {
    let runtime = trawl::runtime::Runtime::new(cache.map(Path::to_path_buf), limits).unwrap();
    let connector = runtime
        .load(&test_plugin_dir().join("hostile.wasm"))
        .await
        .expect("hostile.wasm loads");
    (runtime, connector)
}

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
pub const TOKEN: &str = "sim-token";

/// A working folder with the seed script's `.env`, and a simulator to talk to.
pub struct Setup {
    pub dir: TempDir,
    pub simulator: RunningServer,
    pub dataset: workvivo::Dataset,
}

impl Setup {
    pub async fn new(config: Config, timezone: &str) -> Self {
        let dataset = config.dataset.clone();
        let simulator = workvivo::start(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            format!("WORKVIVOID=sim-org\nWORKVIVOTOKEN={TOKEN}\nTIMEZONE={timezone}\n"),
        )
        .unwrap();
        Setup {
            dir,
            simulator,
            dataset,
        }
    }

    pub fn output(&self) -> PathBuf {
        self.dir.path().join("log").join("siem_data.csv")
    }

    /// `trawl run workvivo <args>` against the simulator, as a seed user would type it.
    pub async fn run(&self, args: &[&str]) -> Output {
        let command = self.command(args);
        run_to_end(command).await
    }

    /// The command `run` runs, to start it and stop it at will.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let url = self.simulator.base_url();
        let mut command = run_command(self.dir.path(), "workvivo", &url, args);
        command.args(["--param", &format!("base_url={url}")]);
        command
    }

    /// The ids the simulator holds with `from <= created_at < to`, in event-time order.
    pub fn expected_ids(&self, from: i64, to: i64) -> Vec<String> {
        self.dataset
            .between(from, to)
            .into_iter()
            .map(|event| event.id.to_string())
            .collect()
    }
}

pub fn rows(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::Reader::from_path(path).expect("output exists");
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|row| {
            let row = row.expect("a well-formed row");
            header
                .iter()
                .cloned()
                .zip(row.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

/// The values of column `name` of a CSV file, in file order (empty where a row lacks it).
pub fn column(path: &Path, name: &str) -> Vec<String> {
    rows(path)
        .1
        .into_iter()
        .map(|row| row.get(name).cloned().unwrap_or_default())
        .collect()
}

pub fn ids(path: &Path) -> Vec<String> {
    rows(path)
        .1
        .into_iter()
        .map(|row| row["id"].clone())
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command to its end off the async threads (the simulator needs them).
pub async fn run_to_end(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("trawl runs"))
        .await
        .unwrap()
}

/// `trawl` with its working folder, state, cache, home and XDG folders all inside `root`,
/// `plugins` as its first plugin folder, none of the caller's variables that would change what it
/// reads or where it looks, no terminal on stdin, and a time limit (a hung run is a failure, not
/// a stuck test suite).
pub fn isolated_trawl(root: &Path, plugins: &Path) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("trawl").expect("the trawl binary is built");
    command
        .current_dir(root)
        .env_remove("WORKVIVOID")
        .env_remove("WORKVIVOTOKEN")
        .env_remove("TIMEZONE")
        .env_remove("TRAWL_PLUGIN_PATH")
        .env_remove("TRAWL_STATE_DIR")
        .env_remove("TRAWL_CACHE_DIR")
        .env_remove("RUST_LOG")
        .env("HOME", root.join("home"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("XDG_STATE_HOME", root.join("xdg-state"))
        .env("XDG_CACHE_HOME", root.join("xdg-cache"))
        .arg("--state")
        .arg(root.join("state"))
        .arg("--cache")
        .arg(root.join("cache"))
        .arg("--plugins")
        .arg(plugins)
        .write_stdin("")
        .timeout(std::time::Duration::from_secs(120));
    command
}

/// Approves `connector` (a name in `plugins`, or a path) in the state store inside `root`, as a
/// user does once after reading the review: `trawl run` refuses a connector nobody approved.
pub fn approve(root: &Path, plugins: &Path, connector: &str) {
    isolated_trawl(root, plugins)
        .args(["plugin", "approve", connector, "--yes"])
        .assert()
        .success();
}

/// `trawl run <connector> <args>` in `dir` with nothing of the caller's environment, its state
/// and compile cache inside `dir`, the built connectors (approved), and `grant` (a simulator's
/// address) granted. Callers add `--param base_url=...` when the connector needs it.
pub fn run_command(
    dir: &Path,
    connector: &str,
    grant: &str,
    args: &[&str],
) -> std::process::Command {
    // The vendor connectors, or a test connector of that name.
    let file = [plugin_dir(), test_plugin_dir()]
        .into_iter()
        .map(|folder| folder.join(format!("{connector}.wasm")))
        .find(|file| file.is_file())
        .unwrap_or_else(|| PathBuf::from(connector));
    approve(dir, &plugin_dir(), file.to_str().expect("a UTF-8 path"));
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("trawl"));
    command
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--plugins")
        .arg(plugin_dir())
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .args(["run", connector])
        // A simulator publishes no quota unless a test gives it one: a quota nobody declared is
        // tried at a rate no test reaches, rather than at trawl's modest default, which would
        // spread a test's hundreds of requests over minutes. A test of learning sets its own
        // (the last `--set` wins).
        .args(["--set", "quota.learn-from=100/10ms"])
        .args(args)
        .args(["--grant", grant]);
    command
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The component with a custom section appended: still valid, same behaviour, another digest.
pub fn with_custom_section(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let name = b"trawl-test";
    let mut section = leb128(name.len());
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0); // a custom section
    out.extend(leb128(section.len()));
    out.extend(section);
    out
}
