//! `trawl plugin install` and `trawl plugin approve`, and `trawl run` refusing a connector whose
//! file changed since it was approved.
//!
//! No test here may reach the network: runs use the hostile test connector, which does nothing
//! but return a record when it behaves, or point Workvivo's `base_url` at 127.0.0.1 port 9 without
//! a `--grant`, which the network policy refuses before anything is sent.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use trawl::state::StateStore;
use trawl::state::approvals::DeclaredParam;

/// A `base_url` that is neither declared by the connector nor granted.
const UNREACHABLE_BASE_URL: &str = "base_url=http://127.0.0.1:9";

/// `trawl` isolated inside `dir`, with `plugins` as its first plugin folder (so the default
/// install folder).
fn trawl_with(dir: &TempDir, plugins: &Path) -> Command {
    support::isolated_trawl(dir.path(), plugins)
}

/// `trawl` whose plugin folder is `<dir>/plugins`, where `trawl plugin install` copies to.
fn trawl(dir: &TempDir) -> Command {
    trawl_with(dir, &plugins(dir))
}

fn plugins(dir: &TempDir) -> PathBuf {
    dir.path().join("plugins")
}

fn hostile() -> PathBuf {
    support::test_plugin_dir().join("hostile.wasm")
}

fn workvivo() -> PathBuf {
    support::plugin_dir().join("workvivo.wasm")
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("the file is there"),
    ))
}

fn state(dir: &TempDir) -> StateStore {
    StateStore::open(&dir.path().join("state")).expect("the state store opens")
}

/// A hostile run that behaves: one record per window, written to `hostile_events.csv`.
const HOSTILE_RUN: [&str; 4] = ["run", "hostile", "2024-09-01", "2024-09-01"];

#[test]
fn install_with_yes_copies_the_file_and_records_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0)
        .stdout(contains("hostile 0.1.0 - Misbehaves on request"))
        .stdout(contains("Hosts it will send requests to:\n"))
        .stdout(contains("  https://api.hostile.test\n"))
        .stdout(contains(
            "No connector named `hostile` was approved before.",
        ))
        .stdout(contains("Installed hostile 0.1.0 as"));

    let installed = plugins(&dir).join("hostile.wasm");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(hostile()).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(plugins(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "a new plugin folder is owner-only");
    }
    // Nothing but the connector is left in the folder.
    assert_eq!(std::fs::read_dir(plugins(&dir)).unwrap().count(), 1);

    let approval = state(&dir).approval("hostile").unwrap().expect("recorded");
    assert_eq!(approval.sha256, sha256(&hostile()));
    assert_eq!(approval.declared.version, "0.1.0");
    assert!(
        approval.declared.hosts.contains("https://api.hostile.test"),
        "{approval:?}"
    );
    assert_eq!(approval.path, std::path::absolute(&installed).unwrap());

    // Installing the same file again changes nothing and asks nothing.
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .assert()
        .code(0)
        .stdout(contains("already installed"));

    trawl(&dir)
        .args(["inspect", "hostile"])
        .assert()
        .code(0)
        .stdout(contains(format!("sha256    {}", sha256(&hostile()))))
        .stdout(contains("approved  yes, version 0.1.0"));
    trawl(&dir)
        .args(["plugin", "list"])
        .assert()
        .code(0)
        .stdout(contains("hostile 0.1.0"));
}

#[test]
fn install_into_another_folder_with_to() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--to")
        .arg(&elsewhere)
        .arg("-y")
        .assert()
        .code(0)
        .stdout(contains("is not in the plugin folders trawl searches"));
    assert!(elsewhere.join("hostile.wasm").is_file());
    assert!(!plugins(&dir).exists());
}

#[test]
fn install_without_a_terminal_or_yes_refuses_and_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .assert()
        .code(2)
        // What it asks for is still shown, for review.
        .stdout(contains("https://api.hostile.test"))
        .stderr(contains("not installed"))
        .stderr(contains("no terminal"))
        .stderr(contains("--yes"));
    assert!(!plugins(&dir).join("hostile.wasm").exists());
    assert_eq!(state(&dir).approval("hostile").unwrap(), None);
}

#[test]
fn a_corrupt_file_is_refused_without_copying() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(hostile()).unwrap();
    for (name, contents) in [
        ("truncated.wasm", bytes[..bytes.len() / 2].to_vec()),
        ("text.wasm", b"not a connector at all".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        trawl(&dir)
            .args(["plugin", "install"])
            .arg(&path)
            .arg("--yes")
            .assert()
            .code(2)
            .stderr(contains("not installed"))
            .stderr(contains("is not a WebAssembly component trawl can load"));
    }
    assert!(!plugins(&dir).exists());
    assert_eq!(state(&dir).approval("hostile").unwrap(), None);
}

#[test]
fn workvivo_install_shows_its_secret_and_where_it_may_go_and_then_runs() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(workvivo())
        .arg("--yes")
        .assert()
        .code(0)
        .stdout(contains("token (env WORKVIVOTOKEN), sent only to:"))
        .stdout(contains("    https://*.workvivo.com"))
        .stdout(contains("Other params (the connector sees their values):"))
        .stdout(contains("  workvivo_id (text, env WORKVIVOID)"))
        .stdout(contains("Environment variables it reads"))
        .stdout(contains("  WORKVIVOTOKEN "))
        .stdout(contains("  TIMEZONE "))
        .stdout(contains("Output it writes unless you say otherwise"))
        .stdout(contains("output.path = log/siem_data.csv"));
    let approval = state(&dir).approval("workvivo").unwrap().expect("recorded");
    let secrets: Vec<(&String, &DeclaredParam)> = approval
        .declared
        .params
        .iter()
        .filter(|(_, param)| param.secret)
        .collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "token");
    assert_eq!(secrets[0].1.secret_hosts, approval.declared.hosts);

    // An approved connector runs without a word about approvals; this run gets as far as its
    // first request, which the network policy denies.
    std::fs::write(
        dir.path().join(".env"),
        "WORKVIVOID=12345\nWORKVIVOTOKEN=test-token\n",
    )
    .unwrap();
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(1)
        .stderr(contains("request denied"))
        .stderr(contains("trawl plugin").not());
}

#[test]
fn a_changed_file_is_refused_until_it_is_approved() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0);
    trawl(&dir).args(HOSTILE_RUN).assert().code(0);
    let output = dir.path().join("hostile_events.csv");
    assert!(output.is_file());
    std::fs::remove_file(&output).unwrap();

    let installed = plugins(&dir).join("hostile.wasm");
    let approved = sha256(&installed);
    std::fs::write(
        &installed,
        support::with_custom_section(&std::fs::read(&installed).unwrap(), b"rebuilt"),
    )
    .unwrap();
    let changed = sha256(&installed);

    trawl(&dir)
        .args(HOSTILE_RUN)
        .assert()
        .code(2)
        .stderr(contains(installed.display().to_string()))
        .stderr(contains(&approved[..12]))
        .stderr(contains(&changed[..12]))
        .stderr(contains("trawl plugin approve hostile"));
    assert!(!output.exists(), "nothing ran");
    trawl(&dir)
        .args(["inspect", "hostile"])
        .assert()
        .code(0)
        .stdout(contains("approved  no: the file changed"));

    // Without a terminal, approving needs --yes too.
    trawl(&dir)
        .args(["plugin", "approve", "hostile"])
        .assert()
        .code(2)
        .stdout(contains("Changes since version 0.1.0"))
        .stdout(contains("none in what it declares"))
        .stderr(contains("--yes"));
    trawl(&dir).args(HOSTILE_RUN).assert().code(2);

    trawl(&dir)
        .args(["plugin", "approve", "hostile", "--yes"])
        .assert()
        .code(0)
        .stdout(contains(format!(
            "Approved hostile 0.1.0 ({}",
            installed.display()
        )));
    assert_eq!(
        state(&dir).approval("hostile").unwrap().unwrap().sha256,
        changed
    );
    trawl(&dir)
        .args(HOSTILE_RUN)
        .assert()
        .code(0)
        .stderr(contains("trawl plugin").not());
    assert!(output.is_file());
}

#[test]
fn another_file_under_an_approved_name_is_refused_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0);
    let rebuilt = dir.path().join("build").join("hostile.wasm");
    std::fs::create_dir_all(rebuilt.parent().unwrap()).unwrap();
    std::fs::write(
        &rebuilt,
        support::with_custom_section(&std::fs::read(hostile()).unwrap(), b"dev build"),
    )
    .unwrap();
    trawl(&dir)
        .arg("run")
        .arg(&rebuilt)
        .args(&HOSTILE_RUN[2..])
        .assert()
        .code(2)
        .stderr(contains("trawl plugin approve hostile"));
}

#[test]
fn a_connector_never_approved_does_not_run_unless_asked_for_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("hostile_events.csv");
    trawl_with(&dir, &support::test_plugin_dir())
        .args(HOSTILE_RUN)
        .assert()
        .code(2)
        .stderr(contains("is not an approved connector"))
        .stderr(contains("trawl plugin install"))
        .stderr(contains("trawl plugin approve hostile"))
        .stderr(contains("--allow-unapproved"));
    assert!(!output.exists(), "nothing ran");
    trawl_with(&dir, &support::test_plugin_dir())
        .args(["inspect", "hostile"])
        .assert()
        .code(0)
        .stdout(contains("approved  no: `trawl run` refuses it"));
    trawl_with(&dir, &support::test_plugin_dir())
        .args(["plugins"])
        .assert()
        .code(0)
        .stdout(contains("not approved (sha256"));

    // A build of one's own runs when asked for, with one warning, under a name of its own.
    let assert = trawl_with(&dir, &support::test_plugin_dir())
        .args(HOSTILE_RUN)
        .arg("--allow-unapproved")
        .assert()
        .code(0);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("WARNING: running").count(), 1, "{stderr}");
    assert!(stderr.contains("hostile~unapproved"), "{stderr}");
    assert!(stderr.contains("HOSTILE_TOKEN"), "{stderr}");
    assert!(output.is_file());
}

#[test]
fn an_upgrade_shows_what_changed_since_the_approved_version() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0);
    // Make the approval on record look like an older version that asked for other things.
    let store = state(&dir);
    let mut older = store.approval("hostile").unwrap().unwrap();
    older.declared.version = "0.0.9".into();
    older.sha256 = "0".repeat(64);
    older.declared.hosts = ["https://old.hostile.test".to_string()].into();
    let param = |secret: bool, env: Option<&str>| DeclaredParam {
        secret,
        env: env.map(String::from),
        secret_hosts: if secret {
            ["https://old.hostile.test".to_string()].into()
        } else {
            Default::default()
        },
        kind: "text".into(),
        default: None,
    };
    older
        .declared
        .params
        .insert("old_secret".into(), param(true, Some("HOSTILE_OLD_SECRET")));
    older
        .declared
        .params
        .insert("region".into(), param(false, None));
    store.record_approval(&older).unwrap();
    drop(store);

    // The file on disk is not the approved one any more.
    trawl(&dir)
        .args(HOSTILE_RUN)
        .assert()
        .code(2)
        .stderr(contains("version 0.0.9"));

    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0)
        .stdout(contains("Changes since version 0.0.9"))
        .stdout(contains("  version 0.0.9 -> 0.1.0\n"))
        .stdout(contains("  + host https://api.hostile.test\n"))
        .stdout(contains("  - host https://old.hostile.test\n"))
        .stdout(contains("  - secret old_secret\n"))
        .stdout(contains("  - param region\n"))
        .stdout(contains("replacing the file there"));
    assert_eq!(
        state(&dir)
            .approval("hostile")
            .unwrap()
            .unwrap()
            .declared
            .version,
        "0.1.0"
    );
    trawl(&dir).args(HOSTILE_RUN).assert().code(0);

    // A new build that declares the same things: only the digest changed, and the review says so.
    let rebuilt = dir.path().join("hostile-rebuilt.wasm");
    std::fs::write(
        &rebuilt,
        support::with_custom_section(&std::fs::read(hostile()).unwrap(), b"v2"),
    )
    .unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(&rebuilt)
        .arg("--yes")
        .assert()
        .code(0)
        .stdout(contains("none in what it declares"));
    assert_eq!(
        sha256(&plugins(&dir).join("hostile.wasm")),
        sha256(&rebuilt)
    );
}

#[test]
fn an_approval_edited_to_other_hosts_is_refused_even_with_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    trawl(&dir)
        .args(["plugin", "install"])
        .arg(hostile())
        .arg("--yes")
        .assert()
        .code(0);
    let store = state(&dir);
    let mut edited = store.approval("hostile").unwrap().unwrap();
    edited.declared.hosts.insert("https://evil.test".into());
    store.record_approval(&edited).unwrap();
    drop(store);
    trawl(&dir)
        .args(HOSTILE_RUN)
        .assert()
        .code(2)
        .stderr(contains("describes itself differently"))
        .stderr(contains("https://evil.test"))
        .stderr(contains("trawl plugin approve hostile"));
}
