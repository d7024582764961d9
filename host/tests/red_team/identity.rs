//! Attacks on approval and identity: a file that takes an approved connector's place or name,
//! one that is not what it claims to be, and plugin folders that hold traps instead of files.
//!
//! None of these runs reach the network: the hostile connector's `behave` and `read-storage`
//! make no request.

use crate::support;
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use trawl::state::StateStore;

const RUN: [&str; 4] = ["run", "hostile", "2024-09-01", "2024-09-01"];

fn hostile() -> PathBuf {
    support::test_plugin_dir().join("hostile.wasm")
}

/// `trawl` inside `dir`, whose plugin folder is `<dir>/plugins`.
fn trawl(dir: &TempDir) -> Command {
    support::isolated_trawl(dir.path(), &dir.path().join("plugins"))
}

fn install(dir: &TempDir, file: &Path) {
    trawl(dir)
        .args(["plugin", "install"])
        .arg(file)
        .arg("--yes")
        .assert()
        .success();
}

/// A rebuild of the hostile connector: the same code and self-description, another digest.
fn rebuild(dir: &TempDir, to: &Path, tag: &[u8]) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let bytes = support::with_custom_section(&std::fs::read(hostile()).unwrap(), tag);
    std::fs::write(to, bytes).unwrap();
    assert!(to.starts_with(dir.path()));
}

#[test]
fn a_file_swapped_in_for_an_approved_one_does_not_run_and_is_not_even_compiled() {
    let dir = tempfile::tempdir().unwrap();
    install(&dir, &hostile());
    let installed = dir.path().join("plugins").join("hostile.wasm");
    // Not a component at all: had trawl compiled or described it, it would say so.
    std::fs::write(
        &installed,
        b"\0asm\x0d\0\x01\0 but nothing a runtime could load",
    )
    .unwrap();
    trawl(&dir)
        .args(RUN)
        .assert()
        .code(2)
        .stderr(contains("is not the `hostile` connector that was approved"))
        .stderr(contains("not a WebAssembly component").not())
        .stderr(contains("trawl plugin approve hostile"));
    assert!(!dir.path().join("hostile_events.csv").exists());
    // Nor does looking at it run it.
    trawl(&dir)
        .args(["inspect", "hostile"])
        .assert()
        .code(0)
        .stdout(contains("is not an approved connector"))
        .stdout(contains("approved  no: the file changed"))
        .stdout(contains("Streams:").not());
}

#[test]
fn an_approved_file_under_another_name_is_not_that_connector() {
    let dir = tempfile::tempdir().unwrap();
    install(&dir, &hostile());
    // The approved hostile file, dropped in as `verkada.wasm`, a name it was never approved as.
    std::fs::copy(hostile(), dir.path().join("plugins").join("verkada.wasm")).unwrap();
    trawl(&dir)
        .args(["run", "verkada", "2024-09-01", "2024-09-01"])
        .assert()
        .code(2)
        .stderr(contains("is the file approved as `hostile`, not `verkada`"));
}

#[test]
fn a_shadowing_file_earlier_in_the_search_order_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    install(&dir, &hostile());
    let earlier = dir.path().join("earlier");
    rebuild(&dir, &earlier.join("hostile.wasm"), b"shadow");
    support::isolated_trawl(dir.path(), &earlier)
        .arg("--plugins")
        .arg(dir.path().join("plugins"))
        .args(RUN)
        .assert()
        .code(2)
        .stderr(contains(earlier.join("hostile.wasm").display().to_string()))
        .stderr(contains("is not the `hostile` connector that was approved"));
    // Nor does it run through TRAWL_PLUGIN_PATH.
    trawl(&dir)
        .env("TRAWL_PLUGIN_PATH", &earlier)
        .args(RUN)
        .assert()
        .code(0);
}

#[test]
fn storage_belongs_to_the_approved_file_not_to_the_name_a_file_gives_itself() {
    let dir = tempfile::tempdir().unwrap();
    install(&dir, &hostile());
    // What the approved connector cached (a vendor token, say).
    let state = StateStore::open(&dir.path().join("state")).unwrap();
    state
        .kv_set("hostile/default", "token", b"cached-vendor-token", 1 << 20)
        .unwrap()
        .expect("within the quota");
    drop(state);
    let read = |command: &mut Command| {
        command
            .args(RUN)
            .args(["--param", "behaviour=read-storage"])
            .args(["--set", "output.format=stdout"])
            .assert()
    };
    // The approved file reads its own storage.
    read(&mut trawl(&dir))
        .code(0)
        .stdout(contains("cached-vendor-token"));

    // A build that calls itself `hostile` too, run without approval: refused, and when the user
    // insists, it runs under a name of its own and finds nothing.
    let build = dir.path().join("build").join("hostile.wasm");
    rebuild(&dir, &build, b"impostor");
    let impostor = || {
        let mut command = trawl(&dir);
        command
            .arg("run")
            .arg(&build)
            .args(&RUN[2..])
            .args(["--param", "behaviour=read-storage"])
            .args(["--set", "output.format=stdout"]);
        command
    };
    impostor()
        .assert()
        .code(2)
        .stdout(contains("cached-vendor-token").not());
    impostor()
        .arg("--allow-unapproved")
        .assert()
        .code(0)
        .stderr(contains("hostile~unapproved"))
        .stdout(contains(r#"{"found":null}"#))
        .stdout(contains("cached-vendor-token").not());
}

#[cfg(unix)]
#[test]
fn traps_in_a_plugin_folder_neither_hang_nor_exhaust_trawl() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let fifo = plugins.join("fifo.wasm");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string naming a path in a folder this test owns.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", plugins.join("zero.wasm")).unwrap();
    std::os::unix::fs::symlink("/dev/urandom", plugins.join("random.wasm")).unwrap();
    std::fs::create_dir(plugins.join("folder.wasm")).unwrap();
    std::fs::copy(hostile(), plugins.join("hostile.wasm")).unwrap();

    let started = Instant::now();
    trawl(&dir)
        .arg("plugins")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(0)
        .stdout(contains("fifo           cannot be loaded"))
        .stdout(contains("zero           cannot be loaded"))
        .stdout(contains("not a regular file"))
        .stdout(contains("hostile        not approved"));
    for trap in ["fifo", "zero", "random", "folder"] {
        let path = plugins.join(format!("{trap}.wasm"));
        trawl(&dir)
            .arg("run")
            .arg(&path)
            .args(["2024-09-01", "--allow-unapproved"])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(2)
            .stderr(contains("not a regular file"));
        trawl(&dir)
            .args(["plugin", "approve"])
            .arg(&path)
            .arg("--yes")
            .timeout(Duration::from_secs(30))
            .assert()
            .code(2);
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_unapproved_connector_learns_nothing_of_the_environment_before_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(hostile(), dir.path().join("plugins").join("hostile.wasm")).unwrap();
    std::fs::write(dir.path().join(".env"), "HOSTILE_TOKEN=from-dotenv\n").unwrap();
    trawl(&dir)
        .env("HOSTILE_TOKEN", "from-the-environment")
        .args(RUN)
        .assert()
        .code(2)
        .stderr(contains("is not an approved connector"))
        .stderr(contains("from-").not());
    // Its review names every variable it would read, before anything is approved.
    trawl(&dir)
        .args(["plugin", "approve", "hostile"])
        .assert()
        .code(2)
        .stdout(contains("Environment variables it reads"))
        .stdout(contains("HOSTILE_TOKEN"));
}
