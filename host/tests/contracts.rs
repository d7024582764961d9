//! Connectors built against each version of the contract load and land the same records: a
//! Workvivo connector built against the first contract (`legacy.wasm`, 0.1.0: records parsed in
//! the sandbox and written out again) and today's (`workvivo.wasm`, 0.2.0: records read by the
//! host), against the same simulator.

mod support;

use std::time::Duration;
use support::{DAY, Setup, run_to_end, stderr};
use trawl::runtime::wit::Version;
use trawl::runtime::{GuestLimits, Runtime};
use trawl_simulators::workvivo::{Config, DEFAULT_START};

#[tokio::test]
async fn each_connector_is_called_through_the_contract_it_was_built_against() {
    let limits = GuestLimits {
        memory_bytes: 32 << 20,
        cpu_time: Duration::from_secs(5),
        call_timeout: Duration::from_secs(20),
        concurrent_calls: 2,
    };
    let runtime = Runtime::new(None, limits).unwrap();
    let legacy = runtime
        .load(&support::test_plugin_dir().join("legacy.wasm"))
        .await
        .expect("a 0.1.0 connector loads");
    assert_eq!(legacy.contract_version(), Version::V0_1);
    assert_eq!(legacy.info().name, "legacy");
    assert_eq!(
        legacy.info().params[2].env.as_deref(),
        Some("WORKVIVOTOKEN")
    );
    for name in ["workvivo", "vision-one", "yandex360", "verkada"] {
        let connector = runtime
            .load(&support::plugin_dir().join(format!("{name}.wasm")))
            .await
            .unwrap();
        assert_eq!(connector.contract_version(), Version::V0_2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_built_against_the_first_contract_lands_the_same_records() {
    // Pages of seven events, so that both connectors follow cursors too.
    let config = Config {
        max_rows: Some(7),
        ..Config::default()
    };
    let setup = Setup::new(config, "UTC").await;
    let url = setup.simulator.base_url();
    let run = |connector: &str, plugins: std::path::PathBuf, output: &str| {
        let mut command = support::run_command(
            setup.dir.path(),
            connector,
            &url,
            &["2024-09-01", "2024-09-02"],
        );
        command
            .args(["--plugins"])
            .arg(plugins)
            .args(["--param", &format!("base_url={url}")])
            .args(["--set", "output.format=jsonl", "--output", output]);
        command
    };
    let legacy = run_to_end(run("legacy", support::test_plugin_dir(), "legacy.jsonl")).await;
    assert!(legacy.status.success(), "{}", stderr(&legacy));
    let today = run_to_end(run("workvivo", support::plugin_dir(), "today.jsonl")).await;
    assert!(today.status.success(), "{}", stderr(&today));

    let read = |name: &str| std::fs::read_to_string(setup.dir.path().join(name)).unwrap();
    let (legacy, today) = (read("legacy.jsonl"), read("today.jsonl"));
    // Whole days: the end date is included.
    let expected = setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY);
    assert_eq!(today.lines().count(), expected.len());
    assert!(expected.len() > 7 * 48, "hours take more than one page");
    assert_eq!(legacy, today, "byte for byte");
}
