//! Project tasks: `cargo xtask build-plugins | demo | test | bench`.
//!
//! Each task sets up what it needs from nothing (the wasm32-wasip2 target included), so a fresh
//! clone needs only `cargo xtask demo` or `cargo xtask test`.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

mod bench;

const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile connectors are built with (size-optimised release).
const PLUGIN_PROFILE: &str = "plugin";

/// Vendor connectors: (crate, file name in `target/plugins`).
const CONNECTORS: &[(&str, &str)] = &[
    ("trawl-workvivo", "workvivo"),
    ("trawl-vision-one", "vision-one"),
    ("trawl-yandex360", "yandex360"),
    ("trawl-verkada", "verkada"),
];
/// Connectors that exist only for the host's tests: (crate, file name in `target/test-plugins`).
const TEST_CONNECTORS: &[(&str, &str)] = &[
    ("trawl-hostile", "hostile"),
    ("trawl-legacy", "legacy"),
    ("trawl-legacy-0-2", "legacy-0-2"),
];
/// Guest crates checked by clippy for the wasm target.
const GUEST_CRATES: &[&str] = &[
    "trawl-sdk",
    "trawl-workvivo",
    "trawl-vision-one",
    "trawl-yandex360",
    "trawl-verkada",
    "trawl-hostile",
    "trawl-legacy",
    "trawl-legacy-0-2",
];

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "build-plugins" => build_plugins().map(|_| ()),
        "demo" => demo(),
        "test" => test(),
        "bench" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            bench::bench(&args)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 build-plugins  build every connector for {WASM_TARGET} into target/plugins\n  \
                 demo           run trawl against the bundled Workvivo simulator\n  \
                 test           build connectors, then run tests, clippy and rustfmt checks\n  \
                 bench          measure release builds against raw baselines (--quick: a smaller\n                 \
                 version, --runs N, --only SCENARIO); results in xtask/bench-results.md"
            );
            match task.as_str() {
                "" | "help" | "--help" | "-h" => Ok(()),
                _ => bail!("unknown task `{task}`"),
            }
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(command));
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", show(command)))?;
    if !status.success() {
        bail!("{} failed ({status})", show(command));
    }
    Ok(())
}

fn show(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Adds the wasm target when it is missing: rustup's auto-install may be off.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output()
        .context("cannot run rustup (needed to add the wasm32-wasip2 target)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(root()))
}

/// Builds every connector and copies it to `target/plugins/<name>.wasm` (test connectors to
/// `target/test-plugins`); returns the two folders.
fn build_plugins() -> Result<(PathBuf, PathBuf)> {
    ensure_wasm_target()?;
    let mut build = cargo();
    build.args([
        "build",
        "--target",
        WASM_TARGET,
        "--profile",
        PLUGIN_PROFILE,
    ]);
    for (krate, _) in CONNECTORS.iter().chain(TEST_CONNECTORS) {
        build.args(["-p", krate]);
    }
    run(&mut build)?;
    let built = target_dir().join(WASM_TARGET).join(PLUGIN_PROFILE);
    let plugins = target_dir().join("plugins");
    let test_plugins = target_dir().join("test-plugins");
    for (set, dir) in [(CONNECTORS, &plugins), (TEST_CONNECTORS, &test_plugins)] {
        std::fs::create_dir_all(dir)?;
        for (krate, name) in set {
            let from = built.join(format!("{}.wasm", krate.replace('-', "_")));
            let to = dir.join(format!("{name}.wasm"));
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            eprintln!("built {}", to.display());
        }
    }
    Ok((plugins, test_plugins))
}

fn test() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    let (plugins, test_plugins) = build_plugins()?;
    run(cargo()
        .args(["test", "--workspace"])
        .env("TRAWL_TEST_PLUGIN_DIR", &plugins)
        .env("TRAWL_TEST_HOSTILE_DIR", &test_plugins))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        // The bench's raw baseline is behind a feature so that `cargo xtask` never builds it.
        "--features",
        "xtask/raw-fetch",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut guest_clippy = cargo();
    guest_clippy.args(["clippy", "--target", WASM_TARGET]);
    for krate in GUEST_CRATES {
        guest_clippy.args(["-p", krate]);
    }
    run(guest_clippy.args(["--", "-D", "warnings"]))?;
    eprintln!("all checks passed");
    Ok(())
}

/// A simulator process, stopped when dropped.
struct Simulator {
    child: Child,
    url: String,
}

impl Simulator {
    fn start(binary: &Path, args: &[&str]) -> Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("simulator stdout")?;
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line)?;
        let url = first_line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected simulator output `{}`", first_line.trim()))?
            .to_string();
        Ok(Simulator { child, url })
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo() -> Result<()> {
    let (plugins, _) = build_plugins()?;
    run(cargo().args(["build", "-p", "trawl", "-p", "trawl-simulators"]))?;
    let bin = target_dir().join("debug");
    let work = target_dir().join("demo");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let truth = work.join("ground-truth.jsonl");
    let simulator = Simulator::start(
        &bin.join("trawl-simulator"),
        &[
            "workvivo",
            "--start",
            "2024-09-01",
            "--days",
            "3",
            "--ground-truth",
            truth.to_str().context("demo path is not UTF-8")?,
        ],
    )?;
    eprintln!("Workvivo simulator at {}", simulator.url);
    // The same .env a user of the seed script has, pointing at the simulator's credentials.
    std::fs::write(
        work.join(".env"),
        "WORKVIVOID=sim-org\nWORKVIVOTOKEN=sim-token\nTIMEZONE=Asia/Tokyo\n",
    )?;
    // Installed as a user would: trawl shows what the connector asks for and records its digest.
    let installed = work.join("plugins");
    run(Command::new(bin.join("trawl"))
        .current_dir(&work)
        .arg("--state")
        .arg(work.join("state"))
        .arg("--cache")
        .arg(work.join("cache"))
        .args(["plugin", "install"])
        .arg(plugins.join("workvivo.wasm"))
        .arg("--to")
        .arg(&installed)
        .arg("--yes"))?;
    let trawl = |extra: &[&str]| -> Result<()> {
        let mut command = Command::new(bin.join("trawl"));
        command
            .current_dir(&work)
            .arg("--plugins")
            .arg(&installed)
            .arg("--state")
            .arg(work.join("state"))
            .arg("--cache")
            .arg(work.join("cache"))
            .args(["run", "workvivo"])
            .args(extra)
            .args(["--param", &format!("base_url={}", simulator.url)])
            .args(["--grant", &simulator.url])
            .arg("--config")
            .arg(root().join("examples").join("workvivo-simulator.ron"));
        run(&mut command)
    };
    let started = Instant::now();
    trawl(&["2024-09-01", "2024-09-03"])?;
    let first = started.elapsed();
    eprintln!(
        "\nThe same command again: every window is checkpointed, so nothing is fetched twice."
    );
    trawl(&["2024-09-01", "2024-09-03"])?;

    let output = work.join("log").join("siem_data.csv");
    let rows = count_csv_rows(&output)?;
    let expected = count_ground_truth(&truth, "2024-08-31T15:00:00Z", "2024-09-03T15:00:00Z")?;
    eprintln!(
        "\n{rows} rows in {} ({} events in the simulator's range), first run took {:.1?}",
        output.display(),
        expected,
        first
    );
    if rows != expected {
        bail!("the output has {rows} rows but the simulator served {expected} events");
    }
    eprintln!("Every event exactly once. Output: {}", output.display());
    Ok(())
}

fn count_csv_rows(path: &Path) -> Result<usize> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(reader.records().count())
}

/// Events in the ground truth (one JSON object per line) with `from <= created_at < to`.
fn count_ground_truth(path: &Path, from: &str, to: &str) -> Result<usize> {
    let from: jiff::Timestamp = from.parse()?;
    let to: jiff::Timestamp = to.parse()?;
    let text = std::fs::read_to_string(path)?;
    let mut count = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)?;
        let seconds = event["created_at_timestamp"]
            .as_i64()
            .context("ground truth event without created_at_timestamp")?;
        let at = jiff::Timestamp::from_second(seconds)?;
        if from <= at && at < to {
            count += 1;
        }
    }
    Ok(count)
}
