//! Attacks on the user's files through where a connector's output goes: a symbolic link on the
//! way to it, and a file trawl did not create in its place.

use crate::support;
use predicates::str::contains;

const RUN: [&str; 4] = ["run", "hostile", "2024-09-01", "2024-09-01"];

fn trawl(dir: &tempfile::TempDir) -> assert_cmd::Command {
    support::approve(dir.path(), &support::test_plugin_dir(), "hostile");
    support::isolated_trawl(dir.path(), &support::test_plugin_dir())
}

#[cfg(unix)]
#[test]
fn a_default_output_reached_through_a_symbolic_link_is_refused_before_anything_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("authorized_keys");
    std::fs::write(&victim, "ssh-ed25519 AAAA user@host\n").unwrap();
    // The output trawl would pick by default is a link to a file the user cares about.
    std::os::unix::fs::symlink(&victim, dir.path().join("hostile_events.csv")).unwrap();
    trawl(&dir)
        .args(RUN)
        .assert()
        .code(2)
        .stderr(contains("symbolic link"))
        .stderr(contains("hostile_events.csv"));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "ssh-ed25519 AAAA user@host\n"
    );
}

#[cfg(unix)]
#[test]
fn a_file_trawl_did_not_create_is_neither_rewritten_nor_re_moded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("hostile_events.csv");
    let foreign = "ssh-ed25519 AAAA user@host\n";
    std::fs::write(&output, foreign).unwrap();
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Its records have fields the file's "header" lacks: writing them means a wider header.
    trawl(&dir)
        .args(RUN)
        .assert()
        .code(1)
        .stderr(contains("was not created by trawl"))
        .stderr(contains("--output"));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), foreign);
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
}
