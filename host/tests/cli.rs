//! The `trawl` binary as users meet it: exit codes and the messages that say what went wrong.
//!
//! No test here may reach the network. Runs that get as far as fetching point `base_url` at
//! 127.0.0.1 port 9 without a `--grant`, which the network policy refuses before anything is sent;
//! every other run fails on its input before a request is built.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::{contains, is_match};
use std::path::PathBuf;
use tempfile::TempDir;

/// A `base_url` that is neither declared by the connector nor granted, so a request to it is
/// denied by trawl itself; port 9 (discard) would not answer anyway.
const UNREACHABLE_BASE_URL: &str = "base_url=http://127.0.0.1:9";

/// A token value that must never show up in trawl's output.
const TOKEN: &str = "test-token-never-printed";

/// Credentials in the form the seed scripts' users keep them in `.env`.
fn dotenv_credentials() -> String {
    format!("WORKVIVOID=12345\nWORKVIVOTOKEN={TOKEN}\n")
}

/// `trawl` isolated inside `dir`, with the built connectors, Workvivo's approved.
fn trawl(dir: &TempDir) -> Command {
    support::approve(dir.path(), &support::plugin_dir(), "workvivo");
    support::isolated_trawl(dir.path(), &support::plugin_dir())
}

fn sandbox() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

fn write(dir: &TempDir, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.path().join(name), contents).expect("writing a test file");
}

/// A sandbox whose `.env` holds valid credentials, so that a run gets past its params.
fn sandbox_with_credentials() -> TempDir {
    let dir = sandbox();
    write(&dir, ".env", dotenv_credentials());
    dir
}

#[test]
fn an_invalid_start_or_end_date_is_bad_input() {
    let dir = sandbox_with_credentials();
    trawl(&dir)
        .args([
            "run",
            "workvivo",
            "2024-13-01",
            "--param",
            UNREACHABLE_BASE_URL,
        ])
        .assert()
        .code(2)
        .stderr(contains("invalid start `2024-13-01`"))
        .stderr(contains("YYYY-MM-DD"));
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-13-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(2)
        .stderr(contains("invalid end `2024-13-01`"))
        .stderr(contains("YYYY-MM-DD"));
}

#[test]
fn a_range_that_ends_before_it_starts_is_bad_input() {
    let dir = sandbox_with_credentials();
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-02", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(2)
        .stderr(contains("ends (2024-09-01) before it starts (2024-09-02)"));
}

#[test]
fn a_missing_credential_names_the_param_and_its_variable() {
    // The params are checked before the range is parsed, so the (valid) range plays no part.
    let dir = sandbox();
    write(&dir, ".env", "WORKVIVOID=12345\n");
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(2)
        .stderr(contains("needs `token`"))
        .stderr(contains("WORKVIVOTOKEN"));

    write(&dir, ".env", format!("WORKVIVOTOKEN={TOKEN}\n"));
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(2)
        .stderr(contains("needs `workvivo_id`"))
        .stderr(contains("WORKVIVOID"));

    // With nothing given, both are named in one go: one edit of .env fixes the run.
    write(&dir, ".env", "");
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .assert()
        .code(2)
        .stderr(contains("`workvivo_id`"))
        .stderr(contains("WORKVIVOID"))
        .stderr(contains("`token`"))
        .stderr(contains("WORKVIVOTOKEN"));
}

#[test]
fn config_file_errors_name_the_file_and_line() {
    let dir = sandbox_with_credentials();
    // The key on line 3 lacks its colon.
    write(
        &dir,
        "bad.ron",
        "(\n    connector: \"workvivo\",\n    params: { \"base_url\" \"https://api.workvivo.io\" },\n)\n",
    );
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "--config", "bad.ron"])
        .assert()
        .code(2)
        .stderr(is_match(r"bad\.ron:3:\d+: ").unwrap());

    write(
        &dir,
        "unknown.ron",
        "(\n    connector: \"workvivo\",\n    colour: \"red\",\n)\n",
    );
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "--config", "unknown.ron"])
        .assert()
        .code(2)
        .stderr(is_match(r"unknown\.ron:3:\d+: ").unwrap())
        .stderr(contains("colour"))
        .stderr(contains("ConfigFile").not());

    write(&dir, "acme.ron", "(\n    connector: \"acme\",\n)\n");
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "--config", "acme.ron"])
        .assert()
        .code(2)
        .stderr(contains(
            "acme.ron is a config for connector `acme`, not `workvivo`",
        ));
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = sandbox();
    write(&dir, "broken.wasm", b"this is not wasm\x00\x01\x02");
    write(&dir, "empty.wasm", b"");
    for (file, reason) in [
        ("broken.wasm", "it is not a WebAssembly file"),
        ("empty.wasm", "the file is empty"),
    ] {
        // Not approved, so nothing of it is even compiled.
        trawl(&dir)
            .args(["run", file, "2024-09-01"])
            .assert()
            .code(2)
            .stderr(contains(format!("{file} is not an approved connector")));
        trawl(&dir)
            .args(["run", file, "2024-09-01", "--allow-unapproved"])
            .assert()
            .code(2)
            .stderr(contains(format!(
                "{file} is not a WebAssembly component trawl can load: {reason}"
            )));
    }
}

#[test]
fn an_unknown_connector_lists_the_folders_searched() {
    let dir = sandbox();
    let xdg_plugins = dir.path().join("xdg-data").join("trawl").join("plugins");
    trawl(&dir)
        .args(["run", "nosuchconnector", "2024-09-01"])
        .assert()
        .code(2)
        .stderr(contains("no connector named `nosuchconnector`"))
        .stderr(contains(support::plugin_dir().display().to_string()))
        .stderr(contains(xdg_plugins.display().to_string()))
        .stderr(contains("`trawl plugins`"));
}

#[test]
fn plugins_lists_the_connectors_found() {
    let dir = sandbox();
    let workvivo = support::plugin_dir().join("workvivo.wasm");
    trawl(&dir)
        .arg("plugins")
        .assert()
        .code(0)
        .stdout(is_match(r"workvivo\s+workvivo \d+\.\d+\.\d+ - ").unwrap())
        .stdout(contains(workvivo.display().to_string()));

    // One bad file in a folder must not hide the good connectors or fail the listing.
    let other = dir.path().join("other-plugins");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("broken.wasm"), b"not a component").unwrap();
    trawl(&dir)
        .arg("--plugins")
        .arg(&other)
        .arg("plugins")
        .assert()
        .code(0)
        .stdout(is_match(r"workvivo\s+workvivo \d+\.\d+\.\d+ - ").unwrap())
        .stdout(is_match(r"broken\s+not approved \(sha256 [0-9a-f]{12};").unwrap())
        .stdout(contains(other.join("broken.wasm").display().to_string()));
}

#[test]
fn inspect_shows_streams_params_and_hosts() {
    let dir = sandbox();
    trawl(&dir)
        .args(["inspect", "workvivo"])
        .assert()
        .code(0)
        .stdout(is_match(r"(?m)^  siem\s").unwrap())
        .stdout(contains("  built against: trawl:connector@0.3.0\n"))
        .stdout(is_match(r"(?m)^  base_url\s+url;").unwrap())
        .stdout(is_match(r"(?m)^  workvivo_id\s+text; required, env WORKVIVOID$").unwrap())
        .stdout(is_match(r"(?m)^  token\s+text; required, secret, env WORKVIVOTOKEN$").unwrap())
        .stdout(contains("https://*.workvivo.com"))
        .stdout(contains("https://*.workvivo.io"));
}

#[test]
fn a_malformed_dotenv_line_names_the_file() {
    let dir = sandbox();
    write(&dir, ".env", "WORKVIVOID=12345\nthis is not valid\n");
    trawl(&dir)
        .args([
            "run",
            "workvivo",
            "2024-09-01",
            "--param",
            UNREACHABLE_BASE_URL,
        ])
        .assert()
        .code(2)
        .stderr(contains(".env:2:"));

    // A line without `=` may be a secret typed wrong: only its name-like start is shown.
    write(
        &dir,
        ".env",
        "WORKVIVOID=12345\nWORKVIVOTOKEN sekrit-value\n",
    );
    trawl(&dir)
        .args([
            "run",
            "workvivo",
            "2024-09-01",
            "--param",
            UNREACHABLE_BASE_URL,
        ])
        .assert()
        .code(2)
        .stderr(contains(".env:2:"))
        .stderr(contains("sekrit-value").not());
}

#[test]
fn an_invalid_timezone_in_dotenv_is_bad_input() {
    let dir = sandbox();
    write(
        &dir,
        ".env",
        format!("{}TIMEZONE=Mars/Olympus\n", dotenv_credentials()),
    );
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(2)
        .stderr(contains("`Mars/Olympus`"))
        .stderr(contains("TIMEZONE"));
}

#[test]
fn compiled_connectors_are_cached_in_a_private_folder() {
    let dir = sandbox();
    let cache = dir.path().join("cache");
    trawl(&dir).args(["inspect", "workvivo"]).assert().code(0);
    // The second start must load what the first one compiled, not compile again.
    trawl(&dir)
        .args(["-v", "inspect", "workvivo"])
        .assert()
        .code(0)
        .stderr(contains("compiled connector loaded from cache"));

    let compiled: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("the cache folder exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(compiled.len(), 1, "one compiled connector: {compiled:?}");

    // Loading a compiled artifact trusts it, so no other user may write there.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "cache folder mode {mode:o}");
    }
}

#[test]
fn a_base_url_that_is_not_a_url_is_bad_input() {
    let dir = sandbox_with_credentials();
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", "base_url=not-a-url"])
        .assert()
        .code(2)
        .stderr(contains("`base_url` `not-a-url`"))
        .stderr(contains("http:// or https:// URL"));
}

#[test]
fn an_unknown_param_lists_the_known_ones() {
    let dir = sandbox_with_credentials();
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL, "--param", "colour=red"])
        .assert()
        .code(2)
        .stderr(contains("no param `colour`"))
        .stderr(contains("base_url, workvivo_id, token"));
}

#[test]
fn an_undeclared_host_is_denied_without_a_grant() {
    let dir = sandbox_with_credentials();
    trawl(&dir)
        .args(["run", "workvivo", "2024-09-01", "2024-09-01"])
        .args(["--param", UNREACHABLE_BASE_URL])
        .assert()
        .code(1)
        .stderr(contains("request denied"))
        .stderr(contains("--grant http://127.0.0.1:9"))
        .stderr(contains(TOKEN).not());
}
