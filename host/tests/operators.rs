//! Mistakes an operator makes with the real `trawl` binary, the Workvivo connector and its
//! simulator: two runs on one output, a state folder deleted, a file edited by hand. None of them
//! may duplicate a record or lose one.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::{DAY, HOUR, Setup, ids, run_command, run_to_end, stderr};
use trawl_simulators::faults::{Action, Fault};
use trawl_simulators::workvivo::{Config, DEFAULT_START};

/// `trawl run workvivo <args>` from a working folder of its own (its own `.env` and state
/// folder) into `output`, against `setup`'s simulator.
fn elsewhere(setup: &Setup, folder: &Path, output: &Path, args: &[&str]) -> std::process::Command {
    std::fs::copy(setup.dir.path().join(".env"), folder.join(".env")).unwrap();
    let url = setup.simulator.base_url();
    let mut command = run_command(folder, "workvivo", &url, args);
    command
        .args(["--param", &format!("base_url={url}")])
        .arg("--output")
        .arg(output);
    command
}

fn contents(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_with_their_own_state_never_write_one_output_at_once() {
    let setup = Setup::new(Config::default(), "UTC").await;
    // The first run gets stuck on its fourth hour, holding the output.
    let slow_hour = DEFAULT_START + 3 * HOUR;
    setup.simulator.faults().push(Fault::on_path(
        format!("/v1/siem/{slow_hour}/"),
        Action::Delay(Duration::from_secs(120)),
    ));
    let args = ["2024-09-01", "2024-09-01", "--workers", "1"];
    let mut first = setup
        .command(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("trawl starts");
    let hour_before = format!("/v1/siem/{}/", slow_hour - HOUR);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !setup
        .simulator
        .requests()
        .iter()
        .any(|request| request.path.starts_with(&hour_before))
    {
        assert!(Instant::now() < deadline, "the first run never got going");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = contents(&setup.output());
    let requests_before = setup.simulator.requests().len();

    // A second run, from another folder with its own state, on the same output.
    let other = tempfile::tempdir().unwrap();
    let second = run_to_end(elsewhere(&setup, other.path(), &setup.output(), &args)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let message = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{message}");
    assert!(
        message.contains("another trawl run is writing"),
        "{message}"
    );
    assert!(message.contains("siem_data.csv"), "{message}");
    assert_eq!(
        contents(&setup.output()),
        before,
        "the second run changed the output"
    );
    assert_eq!(
        setup.simulator.requests().len(),
        requests_before,
        "the second run sent a request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_run_again_without_its_state_writes_nothing_twice() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let first = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let day_one = setup.expected_ids(DEFAULT_START, DEFAULT_START + DAY);
    assert_eq!(ids(&setup.output()), day_one);

    // The state folder is gone: the same range again leaves the output as it was.
    std::fs::remove_dir_all(setup.dir.path().join("state")).unwrap();
    let again = setup.run(&["2024-09-01", "2024-09-01"]).await;
    let message = stderr(&again);
    assert!(again.status.success(), "{message}");
    assert_eq!(ids(&setup.output()), day_one, "{message}");
    assert!(
        message.contains(&format!("{} already written, skipped", day_one.len())),
        "{message}"
    );

    // Without its state again, a wider range: what the output lacks is fetched, once.
    std::fs::remove_dir_all(setup.dir.path().join("state")).unwrap();
    let wider = setup.run(&["2024-09-01", "2024-09-02"]).await;
    assert!(wider.status.success(), "{}", stderr(&wider));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_added_by_hand_is_never_cut_off() {
    let setup = Setup::new(Config::default(), "UTC").await;
    let first = setup.run(&["2024-09-01", "2024-09-01"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let written = std::fs::read(setup.output()).unwrap();

    // A killed run leaves rows past the checkpoint; a rerun cuts only those. Here the rows past
    // it are someone's note, added by hand after a run whose checkpoint then went missing: the
    // state folder is the one that wrote the file, its position just short of the end.
    let mut by_hand = written.clone();
    by_hand.extend_from_slice(b"a note,added,by hand\r\n");
    std::fs::write(setup.output(), &by_hand).unwrap();
    let requests_before = setup.simulator.requests().len();
    let again = setup.run(&["2024-09-01", "2024-09-02"]).await;
    let message = stderr(&again);
    assert_eq!(again.status.code(), Some(2), "{message}");
    assert!(message.contains("22 bytes after the"), "{message}");
    assert!(message.contains("trawl did not write them"), "{message}");
    assert!(message.contains("truncate -s"), "{message}");
    assert_eq!(std::fs::read(setup.output()).unwrap(), by_hand);
    assert_eq!(setup.simulator.requests().len(), requests_before);

    // The user moves the note away: the run goes on, every record once.
    std::fs::write(setup.output(), &written).unwrap();
    let last = setup.run(&["2024-09-01", "2024-09-02"]).await;
    assert!(last.status.success(), "{}", stderr(&last));
    assert_eq!(
        ids(&setup.output()),
        setup.expected_ids(DEFAULT_START, DEFAULT_START + 2 * DAY)
    );
}
