//! Connectors built against each older version of the contract load and land the same records as
//! today's Workvivo connector (`workvivo.wasm`, on the newest contract), against the same
//! simulator: `legacy.wasm`, built against 0.1.0 (records parsed in the sandbox and written out
//! again), and `legacy-0-2.wasm`, built against 0.2.0 (bodies held and pages read by the host, the
//! connector keeping records by their place in the page).

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{DAY, Setup, run_to_end, stderr};
use trawl::runtime::wit::{EXPORTS, Version};
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
    for (name, version) in [("legacy", Version::V0_1), ("legacy-0-2", Version::V0_2)] {
        let legacy = runtime
            .load(&support::test_plugin_dir().join(format!("{name}.wasm")))
            .await
            .unwrap_or_else(|error| panic!("a {version} connector loads: {error:#}"));
        assert_eq!(legacy.contract_version(), version, "{name}");
        assert_eq!(legacy.info().name, name);
        assert_eq!(
            legacy.info().params[2].env.as_deref(),
            Some("WORKVIVOTOKEN"),
            "{name}"
        );
    }
    // Today's connectors are built with the SDK, which follows the newest contract.
    let newest = EXPORTS[0].1;
    for name in ["workvivo", "vision-one", "yandex360", "verkada"] {
        let connector = runtime
            .load(&support::plugin_dir().join(format!("{name}.wasm")))
            .await
            .unwrap();
        assert_eq!(connector.contract_version(), newest, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_built_against_the_first_contract_lands_the_same_records() {
    lands_what_today_lands("legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_built_against_contract_0_2_lands_the_same_records() {
    lands_what_today_lands("legacy-0-2").await;
}

/// Runs the test connector `legacy` and today's Workvivo connector over the same two days of the
/// simulator, and checks that they write the same file, byte for byte.
async fn lands_what_today_lands(legacy: &str) {
    // Pages of seven events, so that both connectors follow cursors too.
    let config = Config {
        max_rows: Some(7),
        ..Config::default()
    };
    let setup = Setup::new(config, "UTC").await;
    let url = setup.simulator.base_url();
    let land = async |connector: &str, plugins: PathBuf| {
        let output = format!("{connector}.jsonl");
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
            .args(["--set", "output.format=jsonl", "--output", &output]);
        let run = run_to_end(command).await;
        assert!(run.status.success(), "{connector}: {}", stderr(&run));
        std::fs::read_to_string(setup.dir.path().join(output)).unwrap()
    };
    let older = land(legacy, support::test_plugin_dir()).await;
    let today = land("workvivo", support::plugin_dir()).await;

    // Whole days: the end date is included.
    let expected = setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY);
    assert_eq!(today.lines().count(), expected.len());
    assert!(expected.len() > 7 * 48, "hours take more than one page");
    assert_eq!(older, today, "{legacy} and workvivo, byte for byte");
}
