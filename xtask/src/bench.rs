//! `cargo xtask bench [--quick] [--runs N] [--only SCENARIO]...`: release builds of trawl, the simulator and a raw
//! baseline, measured side by side in one run against simulators on loopback.
//!
//! Scenarios, each run several times (medians reported), runs of a scenario interleaved with its
//! baseline's so that both see the same machine:
//!
//! - throughput: `trawl run` to JSONL and to CSV against `raw-fetch`, which GETs the same pages
//!   with the same client and appends the bodies unparsed (goal: at least 0.7x);
//! - the same to JSONL with 1, 2, 4 and 8 workers, each against the baseline with as many
//!   connections;
//! - cold start: `trawl inspect` with an empty compile cache and a warm one (goal: warm < 30 ms);
//! - peak RSS of a backfill of at least 1,000,000 records (goal: < 64 MiB), with `/usr/bin/time`;
//! - a quota enforced by the simulator: the time between trawl's first and last request, as the
//!   simulator saw them, against the least time the quota allows for as many requests (goal:
//!   within 2%, no 429);
//! - what a user feels at a vendor (`requests`): the requests of a quiet and a busy Yandex 360
//!   backfill against the least a client that knows the data makes (goal: at most 1.2x), the 429s
//!   trawl causes itself over two runs under a quota no connector declares (goal: at most 1%),
//!   and whether one run under the everyday fault mix ends exact with exit 0.
//!
//! The table goes to stdout and, with the machine, date and commit, to `xtask/bench-results.md`
//! (`--quick`, ten times smaller and one run each, writes `target/bench-results-quick.md`
//! instead); a line per run is kept in the file's History section, and its hand-written section
//! on profiles and the changes they led to is kept as it is.

mod requests;

use crate::{Simulator, build_plugins, cargo, root, run, show, target_dir};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 2024-09-01T00:00:00Z, where the simulator's datasets start.
const START: i64 = 1_725_148_800;
const START_DAY: &str = "2024-09-01";
const HOUR: i64 = 3600;
const TOKEN: &str = "sim-token";
const ORG: &str = "sim-org";
const TIME: &str = "/usr/bin/time";
/// Longest any one measured process may take before the bench gives up on it.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Past runs kept in the results file.
const HISTORY_LINES: usize = 50;

const GOAL_THROUGHPUT: f64 = 0.7;
const GOAL_WARM_START_MS: f64 = 30.0;
const GOAL_RSS_MIB: f64 = 64.0;
const GOAL_QUOTA: f64 = 1.02;

/// The scenarios `--only` picks from.
const SCENARIOS: &[&str] = &[
    "throughput",
    "start",
    "backfill",
    "quota",
    "requests",
    "undeclared",
    "faults",
];

/// Generated events: `days` days from [`START`], `per_hour` events an hour.
#[derive(Clone, Copy)]
struct Dataset {
    days: u32,
    per_hour: u32,
}

impl Dataset {
    fn hours(self) -> i64 {
        i64::from(self.days) * 24
    }

    /// Events in the first `hours` hours, from the simulator's generation rules
    /// (`examples/simulators/src/workvivo/dataset.rs`): `per_hour` an hour, 3 more in every hour
    /// `h` with `h % 7 == 3`, and 5 placed in the first 8 hours.
    fn records_in(self, hours: i64) -> u64 {
        assert!(hours >= 8, "the fixed events lie in the first 8 hours");
        (hours as u64) * u64::from(self.per_hour.max(1)) + 3 * ((hours as u64 + 3) / 7) + 5
    }

    fn records(self) -> u64 {
        self.records_in(self.hours())
    }

    fn simulator_args(self) -> Vec<String> {
        vec![
            "workvivo".into(),
            "--start".into(),
            START_DAY.into(),
            "--days".into(),
            self.days.to_string(),
            "--events-per-hour".into(),
            self.per_hour.to_string(),
        ]
    }
}

/// A quota the simulator enforces and trawl is told about: `(requests, per seconds)` each.
struct QuotaCase {
    limits: Vec<(u32, u64)>,
    /// Hourly windows asked for, one request each.
    requests: u32,
}

impl QuotaCase {
    fn label(&self) -> String {
        self.limits
            .iter()
            .map(|(requests, per)| format!("{requests}/{per}s"))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// trawl's spelling: `5/s`, `100/min`, `20/10s`.
    fn trawl_limits(&self) -> Vec<String> {
        self.limits
            .iter()
            .map(|&(requests, per)| match per {
                1 => format!("{requests}/s"),
                60 => format!("{requests}/min"),
                _ => format!("{requests}/{per}s"),
            })
            .collect()
    }

    /// The least time from the first request to the last that the quota allows: each request as
    /// early as the sliding windows let it go (a request `per` after the one `requests` before it
    /// no longer counts it, as the simulator counts).
    fn minimum(&self) -> Duration {
        let n = self.requests as usize;
        let mut at: Vec<Duration> = Vec::with_capacity(n);
        for k in 0..n {
            let mut t = at.last().copied().unwrap_or_default();
            for &(requests, per) in &self.limits {
                let requests = requests as usize;
                if k >= requests {
                    t = t.max(at[k - requests] + Duration::from_secs(per));
                }
            }
            at.push(t);
        }
        at.last().copied().unwrap_or_default()
    }
}

struct Plan {
    quick: bool,
    runs: usize,
    /// Runs of each throughput scenario: a run is a fraction of a second, and on a shared
    /// machine a median of three moved by several percent from one bench to the next.
    throughput_runs: usize,
    big_runs: usize,
    start_runs: usize,
    throughput: Dataset,
    big: Dataset,
    quota: QuotaCase,
    workers: &'static [usize],
}

impl Plan {
    fn new(quick: bool, asked: Option<usize>) -> Self {
        let runs = asked.unwrap_or(if quick { 1 } else { 3 }).max(1);
        if quick {
            Plan {
                quick,
                runs,
                throughput_runs: runs,
                big_runs: runs,
                start_runs: runs.max(3),
                throughput: Dataset {
                    days: 3,
                    per_hour: 300,
                },
                big: Dataset {
                    days: 6,
                    per_hour: 700,
                },
                // Long enough for the slower quota to matter, short enough for a smoke test.
                quota: QuotaCase {
                    limits: vec![(5, 1), (20, 10)],
                    requests: 30,
                },
                workers: &[1, 2, 4, 8],
            }
        } else {
            Plan {
                quick,
                runs,
                // A run takes a fraction of a second, and on a shared machine one run's time
                // moves by a fifth with the load: a median of seven moved a ratio by 0.05 from
                // one bench to the next; fifteen cut that by about a third, for half a minute more.
                throughput_runs: asked.unwrap_or(15).max(1),
                // A million records take a while: two runs are enough for a median of the memory.
                big_runs: runs.min(2),
                start_runs: runs.max(5),
                // 216,314 records.
                throughput: Dataset {
                    days: 30,
                    per_hour: 300,
                },
                // 1,008,623 records.
                big: Dataset {
                    days: 60,
                    per_hour: 700,
                },
                // 150 requests: the minute's 100 run out after 20 s, so both limits matter.
                quota: QuotaCase {
                    limits: vec![(5, 1), (100, 60)],
                    requests: 150,
                },
                workers: &[1, 2, 4, 8],
            }
        }
    }
}

/// The release binaries under test and the folders they work in.
struct Bench {
    trawl: PathBuf,
    simulator: PathBuf,
    raw_fetch: PathBuf,
    plugins: PathBuf,
    work: PathBuf,
    /// A compile cache warmed before the timed runs.
    cache: PathBuf,
    /// `/usr/bin/time` is there to measure peak RSS.
    time: bool,
    problems: Vec<String>,
}

/// One measured process.
struct Measured {
    wall: Duration,
    /// Peak resident set size in KiB.
    max_rss_kib: Option<u64>,
    /// CPU time, user and system, in seconds (measured with the peak RSS).
    cpu: Option<f64>,
    stdout: String,
}

/// One row of the results table.
struct Row {
    scenario: String,
    trawl: String,
    baseline: String,
    ratio: Option<f64>,
    goal: String,
    pass: Option<bool>,
}

pub fn bench(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut runs = None;
    let mut only: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--runs" => {
                runs = Some(
                    args.next()
                        .context("--runs needs a number")?
                        .parse()
                        .context("--runs needs a number")?,
                )
            }
            "--only" => {
                let name = args.next().context("--only needs a scenario")?;
                if !SCENARIOS.contains(&name.as_str()) {
                    bail!(
                        "unknown scenario `{name}` (expected one of {})",
                        SCENARIOS.join(", ")
                    );
                }
                only.push(name.clone());
            }
            _ => bail!(
                "unknown bench argument `{arg}` (expected --quick, --runs N or --only SCENARIO)"
            ),
        }
    }
    let plan = Plan::new(quick, runs);
    let started = Instant::now();
    // What is measured is what was built: the tree as it is before the builds.
    let measured_commit = commit();
    let load_before = load_average();

    let (plugins, _) = build_plugins()?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "trawl",
        "-p",
        "trawl-simulators",
    ]))?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "xtask",
        "--bin",
        "raw-fetch",
        "--features",
        "raw-fetch",
    ]))?;
    let release = target_dir().join("release");
    let work = target_dir().join("bench");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let time = Path::new(TIME).exists();
    if !time {
        eprintln!("{TIME} is missing: peak RSS will not be measured (apt-get install time)");
    }
    let mut bench = Bench {
        trawl: release.join("trawl"),
        simulator: release.join("trawl-simulator"),
        raw_fetch: release.join("raw-fetch"),
        plugins,
        cache: work.join("cache"),
        work,
        time,
        problems: Vec::new(),
    };
    // Warms the compile cache every timed `trawl run` uses.
    bench.inspect(&bench.cache.clone())?;

    let mut rows = Vec::new();
    let mut details = String::new();
    let chosen = |name: &str| only.is_empty() || only.iter().any(|only| only == name);
    if chosen("throughput") {
        rows.extend(bench.throughput(&plan, &mut details)?);
    }
    if chosen("start") {
        rows.extend(bench.cold_start(&plan, &mut details)?);
    }
    if chosen("backfill") {
        rows.extend(bench.backfill(&plan, &mut details)?);
    }
    if chosen("quota") {
        rows.extend(bench.quota(&plan, &mut details)?);
    }
    if chosen("requests") {
        rows.extend(bench.requests_spent(&plan, &mut details)?);
    }
    if chosen("undeclared") {
        rows.extend(bench.undeclared_quota(&plan, &mut details)?);
    }
    if chosen("faults") {
        rows.extend(bench.fault_mix(&plan, &mut details)?);
    }

    let table = render_table(&rows);
    println!("\n{table}");
    for problem in &bench.problems {
        println!("problem: {problem}");
    }
    // A partial bench is a developer's check: its table goes to the quick results file.
    let results = if plan.quick || !only.is_empty() {
        target_dir().join("bench-results-quick.md")
    } else {
        root().join("xtask").join("bench-results.md")
    };
    let previous = std::fs::read_to_string(&results).unwrap_or_default();
    let load = format!(
        "{load_before} before the builds, {} at the end",
        load_average()
    );
    let text = results_file(
        &plan,
        &rows,
        &details,
        &bench.problems,
        &previous,
        &load,
        &measured_commit,
    )?;
    std::fs::write(&results, text).with_context(|| format!("writing {}", results.display()))?;
    eprintln!(
        "\nwrote {} ({:.0?} in all)",
        results.display(),
        started.elapsed()
    );
    if !bench.problems.is_empty() {
        bail!("{} problem(s), see above", bench.problems.len());
    }
    Ok(())
}

impl Bench {
    fn trawl_command(&self, cache: &Path) -> Command {
        let mut command = Command::new(&self.trawl);
        command
            .arg("--plugins")
            .arg(&self.plugins)
            .arg("--cache")
            .arg(cache)
            .env_remove("RUST_LOG")
            .env_remove("TRAWL_PLUGIN_PATH")
            .env("WORKVIVOID", ORG)
            .env("WORKVIVOTOKEN", TOKEN);
        command
    }

    fn inspect(&self, cache: &Path) -> Result<Measured> {
        let mut command = self.trawl_command(cache);
        command
            .args(["inspect", "workvivo"])
            .current_dir(&self.work);
        measure(command, &self.work.join("inspect"), false)
    }

    /// `trawl run workvivo` over `hours` hours from [`START`] into a fresh state folder and output
    /// file; returns the measurement and the number of records in the output.
    fn trawl_run(
        &self,
        simulator: &Simulator,
        hours: i64,
        workers: usize,
        format: &str,
        extra: &[String],
        dir: &Path,
    ) -> Result<(Measured, u64)> {
        std::fs::create_dir_all(dir)?;
        let output = dir.join(format!("out.{format}"));
        // Each run has a fresh state store, where the connector is approved first, as a user
        // does once; not measured.
        let mut approve = self.trawl_command(&self.cache);
        approve
            .arg("--state")
            .arg(dir.join("state"))
            .args(["plugin", "approve", "workvivo", "--yes"])
            .stdout(std::process::Stdio::null());
        let approved = approve
            .status()
            .context("cannot run trawl plugin approve")?;
        if !approved.success() {
            bail!("trawl plugin approve workvivo failed ({approved})");
        }
        let mut command = self.trawl_command(&self.cache);
        command
            .arg("--state")
            .arg(dir.join("state"))
            .args(["run", "workvivo", &START.to_string()])
            .arg((START + hours * HOUR).to_string())
            .args(["--param", &format!("base_url={}", simulator.url)])
            .args(["--grant", &simulator.url])
            .args(["--workers", &workers.to_string()])
            .args(["--set", &format!("output.format={format}")])
            // The simulator keeps no quota unless told to (the quota scenario declares its own):
            // what is measured is trawl, not the modest rate it starts an unpublished quota at.
            .args(["--set", "quota.learn-from=100000/1s"])
            .arg("--output")
            .arg(&output)
            .args(extra)
            .current_dir(dir);
        let measured = measure(command, dir, self.time)?;
        let records = match format {
            "csv" => csv::Reader::from_path(&output)?.byte_records().count() as u64,
            _ => count_lines(&output)?,
        };
        std::fs::remove_dir_all(dir)?;
        Ok((measured, records))
    }

    /// `raw-fetch` over the same windows as [`trawl_run`](Self::trawl_run).
    fn raw_run(
        &self,
        simulator: &Simulator,
        hours: i64,
        concurrency: usize,
        dir: &Path,
    ) -> Result<Measured> {
        std::fs::create_dir_all(dir)?;
        let mut command = Command::new(&self.raw_fetch);
        command
            .args(["--url", &simulator.url, "--token", TOKEN, "--org", ORG])
            .args(["--from", &START.to_string()])
            .args(["--to", &(START + hours * HOUR).to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--output")
            .arg(dir.join("out.json"))
            .current_dir(dir);
        let measured = measure(command, dir, self.time)?;
        let stats: serde_json::Value = serde_json::from_str(measured.stdout.trim())
            .with_context(|| format!("raw-fetch printed `{}`", measured.stdout.trim()))?;
        if stats["requests"].as_i64() != Some(hours) {
            bail!("raw-fetch made {} requests, not {hours}", stats["requests"]);
        }
        std::fs::remove_dir_all(dir)?;
        Ok(measured)
    }

    fn check_count(&mut self, what: &str, got: u64, expected: u64) {
        if got != expected {
            let problem = format!("{what}: {got} records written, the simulator holds {expected}");
            eprintln!("PROBLEM: {problem}");
            self.problems.push(problem);
        }
    }

    /// Throughput to JSONL and CSV, and to JSONL by number of workers, each against the raw
    /// baseline with as many connections.
    fn throughput(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        let dataset = plan.throughput;
        let records = dataset.records();
        let truth = self.work.join("ground-truth.jsonl");
        let mut args = dataset.simulator_args();
        args.extend(["--ground-truth".into(), path_arg(&truth)?]);
        let simulator = start_simulator(&self.simulator, &args)?;
        let truth_lines = count_lines(&truth)?;
        std::fs::remove_file(&truth)?;
        if truth_lines != records {
            bail!(
                "the simulator generated {truth_lines} events, not the {records} the bench \
                 expects: update Dataset::records_in to the simulator's rules"
            );
        }
        eprintln!(
            "\n== throughput: {} records ({} days x 24 h x {}/h) at {}",
            group(records),
            dataset.days,
            dataset.per_hour,
            simulator.url
        );
        let hours = dataset.hours();
        let mut raw: Vec<Vec<f64>> = vec![Vec::new(); plan.workers.len()];
        let mut jsonl: Vec<Vec<f64>> = vec![Vec::new(); plan.workers.len()];
        let mut csv = Vec::new();
        let mut in_memory = Vec::new();
        let mut rss = Vec::new();
        let (mut trawl_cpu, mut raw_cpu) = (Vec::new(), Vec::new());
        for run in 0..plan.throughput_runs {
            for (index, &workers) in plan.workers.iter().enumerate() {
                let dir = self.work.join("throughput");
                let measured = self.raw_run(&simulator, hours, workers, &dir)?;
                progress("raw", workers, run, plan.throughput_runs, &measured);
                raw[index].push(measured.wall.as_secs_f64());
                if workers == 4 {
                    raw_cpu.extend(measured.cpu);
                }

                let (measured, written) =
                    self.trawl_run(&simulator, hours, workers, "jsonl", &[], &dir)?;
                progress("trawl jsonl", workers, run, plan.throughput_runs, &measured);
                self.check_count(&format!("JSONL, {workers} workers"), written, records);
                jsonl[index].push(measured.wall.as_secs_f64());
                if workers == 4 {
                    rss.extend(measured.max_rss_kib);
                    trawl_cpu.extend(measured.cpu);
                }
            }
            let dir = self.work.join("throughput");
            let (measured, written) = self.trawl_run(&simulator, hours, 4, "csv", &[], &dir)?;
            progress("trawl csv", 4, run, plan.throughput_runs, &measured);
            self.check_count("CSV, 4 workers", written, records);
            csv.push(measured.wall.as_secs_f64());
            // The same in memory: what the flushes to disk cost, for reference.
            if let Some(shm) = shm_dir() {
                let (measured, written) =
                    self.trawl_run(&simulator, hours, 4, "jsonl", &[], &shm)?;
                progress("trawl tmpfs", 4, run, plan.throughput_runs, &measured);
                self.check_count("JSONL in /dev/shm, 4 workers", written, records);
                in_memory.push(measured.wall.as_secs_f64());
            }
        }
        drop(simulator);

        let rate = |seconds: f64| records as f64 / seconds;
        let four = plan.workers.iter().position(|&w| w == 4).unwrap_or(0);
        let raw4 = median(&raw[four]);
        let mut rows = Vec::new();
        for (label, times) in [("JSONL", &jsonl[four]), ("CSV", &csv)] {
            let ratio = raw4 / median(times);
            rows.push(Row {
                scenario: format!(
                    "Throughput to {label}, {} records, 4 workers",
                    group(records)
                ),
                trawl: format!("{} rec/s", group(rate(median(times)) as u64)),
                baseline: format!("raw, 4 connections: {} rec/s", group(rate(raw4) as u64)),
                ratio: Some(ratio),
                goal: format!(">= {GOAL_THROUGHPUT:.2}x"),
                pass: Some(ratio >= GOAL_THROUGHPUT),
            });
        }
        if !in_memory.is_empty() {
            rows.push(Row {
                scenario: "Throughput to JSONL, 4 workers, state and output in /dev/shm".into(),
                trawl: format!("{} rec/s", group(rate(median(&in_memory)) as u64)),
                baseline: format!("raw, 4 connections: {} rec/s", group(rate(raw4) as u64)),
                ratio: Some(raw4 / median(&in_memory)),
                goal: "(for reference: no cost of flushes to disk)".into(),
                pass: None,
            });
        }
        for (index, &workers) in plan.workers.iter().enumerate() {
            if workers == 4 {
                continue;
            }
            let ratio = median(&raw[index]) / median(&jsonl[index]);
            rows.push(Row {
                scenario: format!("Throughput to JSONL, --workers {workers}"),
                trawl: format!("{} rec/s", group(rate(median(&jsonl[index])) as u64)),
                baseline: format!(
                    "raw, {workers} connection{}: {} rec/s",
                    if workers == 1 { "" } else { "s" },
                    group(rate(median(&raw[index])) as u64)
                ),
                ratio: Some(ratio),
                goal: format!(">= {GOAL_THROUGHPUT:.2}x"),
                pass: Some(ratio >= GOAL_THROUGHPUT),
            });
        }

        let _ = writeln!(
            details,
            "### Throughput\n\n{} records ({} days x 24 h x {}/h, {hours} hourly windows, one \
             request each). Records per second count the simulator's events in the range for \
             both sides (raw also receives each event on an hour edge twice, as trawl does; it \
             writes them unparsed). Wall time of each process, seconds, in run order:\n",
            group(records),
            dataset.days,
            dataset.per_hour
        );
        let _ = writeln!(
            details,
            "| workers | raw | trawl to JSONL | scaling of trawl |"
        );
        let _ = writeln!(details, "|---|---|---|---|");
        let one = median(&jsonl[0]);
        for (index, &workers) in plan.workers.iter().enumerate() {
            let _ = writeln!(
                details,
                "| {workers} | {} | {} | {:.2}x |",
                seconds_list(&raw[index]),
                seconds_list(&jsonl[index]),
                one / median(&jsonl[index])
            );
        }
        let _ = writeln!(
            details,
            "\ntrawl to CSV, 4 workers: {}.\n",
            seconds_list(&csv)
        );
        if !in_memory.is_empty() {
            let _ = writeln!(
                details,
                "trawl to JSONL, 4 workers, state and output in /dev/shm: {}.\n",
                seconds_list(&in_memory)
            );
        }
        if !rss.is_empty() {
            let _ = writeln!(
                details,
                "Peak RSS of trawl to JSONL, 4 workers: {} MiB. CPU time (user + system) of \
                 trawl to JSONL, 4 workers: {} s; of raw, 4 connections: {} s.\n",
                list(rss.iter().map(|&kib| format!("{:.1}", kib as f64 / 1024.0))),
                seconds_list(&trawl_cpu),
                seconds_list(&raw_cpu)
            );
        }
        Ok(rows)
    }

    /// `trawl inspect` with an empty compile cache, then with a warm one.
    fn cold_start(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        eprintln!("\n== cold start: trawl inspect workvivo");
        let warm_cache = self.work.join("warm-cache");
        self.inspect(&warm_cache)?;
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for run in 0..plan.start_runs {
            let cache = self.work.join("cold-cache");
            let measured = self.inspect(&cache)?;
            std::fs::remove_dir_all(&cache)?;
            cold.push(measured.wall.as_secs_f64() * 1000.0);
            let measured = self.inspect(&warm_cache)?;
            warm.push(measured.wall.as_secs_f64() * 1000.0);
            eprintln!(
                "  run {}/{}: empty cache {:.1} ms, warm {:.1} ms",
                run + 1,
                plan.start_runs,
                cold[run],
                warm[run]
            );
        }
        let (cold_ms, warm_ms) = (median(&cold), median(&warm));
        let _ = writeln!(
            details,
            "### Cold start\n\n`trawl inspect workvivo`, wall time in ms. Empty cache: {}. Warm \
             cache: {}.\n",
            list(cold.iter().map(|ms| format!("{ms:.1}"))),
            list(warm.iter().map(|ms| format!("{ms:.1}")))
        );
        Ok(vec![Row {
            scenario: "Start, `trawl inspect`, warm compile cache".into(),
            trawl: format!("{warm_ms:.1} ms"),
            baseline: format!("empty cache: {cold_ms:.0} ms"),
            ratio: Some(warm_ms / cold_ms),
            goal: format!("< {GOAL_WARM_START_MS:.0} ms"),
            pass: Some(warm_ms < GOAL_WARM_START_MS),
        }])
    }

    /// Peak RSS (and throughput) of the big backfill to JSONL, against the raw baseline's.
    fn backfill(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        let dataset = plan.big;
        let records = dataset.records();
        eprintln!(
            "\n== backfill: {} records ({} days x 24 h x {}/h); the simulator takes a while to \
             generate them",
            group(records),
            dataset.days,
            dataset.per_hour
        );
        let simulator = start_simulator(&self.simulator, &dataset.simulator_args())?;
        let hours = dataset.hours();
        let dir = self.work.join("backfill");
        let (mut trawl_wall, mut trawl_rss, mut raw_wall, mut raw_rss) =
            (vec![], vec![], vec![], vec![]);
        let (mut trawl_cpu, mut raw_cpu) = (Vec::new(), Vec::new());
        for run in 0..plan.big_runs {
            let measured = self.raw_run(&simulator, hours, 4, &dir)?;
            progress("raw", 4, run, plan.big_runs, &measured);
            raw_wall.push(measured.wall.as_secs_f64());
            raw_rss.extend(measured.max_rss_kib.map(mib));
            raw_cpu.extend(measured.cpu);
            let (measured, written) = self.trawl_run(&simulator, hours, 4, "jsonl", &[], &dir)?;
            progress("trawl jsonl", 4, run, plan.big_runs, &measured);
            self.check_count("backfill to JSONL", written, records);
            trawl_wall.push(measured.wall.as_secs_f64());
            trawl_rss.extend(measured.max_rss_kib.map(mib));
            trawl_cpu.extend(measured.cpu);
        }
        drop(simulator);

        let rate = |seconds: f64| records as f64 / seconds;
        let _ = writeln!(
            details,
            "### Backfill\n\n{} records ({} days x 24 h x {}/h) to JSONL, 4 workers. trawl: {} s, \
             peak RSS {} MiB, CPU {} s. raw, 4 connections: {} s, peak RSS {} MiB, CPU {} s.\n",
            group(records),
            dataset.days,
            dataset.per_hour,
            seconds_list(&trawl_wall),
            list(trawl_rss.iter().map(|m| format!("{m:.1}"))),
            seconds_list(&trawl_cpu),
            seconds_list(&raw_wall),
            list(raw_rss.iter().map(|m| format!("{m:.1}"))),
            seconds_list(&raw_cpu)
        );
        let mut rows = Vec::new();
        if !trawl_rss.is_empty() && !raw_rss.is_empty() {
            let peak = median(&trawl_rss);
            rows.push(Row {
                scenario: format!("Peak RSS, {}-record backfill to JSONL", group(records)),
                trawl: format!("{peak:.1} MiB"),
                baseline: format!("raw: {:.1} MiB", median(&raw_rss)),
                ratio: Some(peak / median(&raw_rss)),
                goal: format!("< {GOAL_RSS_MIB:.0} MiB"),
                pass: Some(peak < GOAL_RSS_MIB),
            });
        }
        let ratio = median(&raw_wall) / median(&trawl_wall);
        rows.push(Row {
            scenario: format!("Throughput, {}-record backfill to JSONL", group(records)),
            trawl: format!("{} rec/s", group(rate(median(&trawl_wall)) as u64)),
            baseline: format!(
                "raw, 4 connections: {} rec/s",
                group(rate(median(&raw_wall)) as u64)
            ),
            ratio: Some(ratio),
            goal: "(for reference)".into(),
            pass: None,
        });
        Ok(rows)
    }

    /// Time between trawl's first and last request under a quota the simulator enforces, against
    /// the least the quota allows.
    fn quota(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        let case = &plan.quota;
        let dataset = Dataset {
            days: case.requests.div_ceil(24),
            per_hour: 12,
        };
        let hours = i64::from(case.requests);
        let records = dataset.records_in(hours);
        let minimum = case.minimum();
        eprintln!(
            "\n== quota {}: {} requests, the quota allows them in {:.1?} at best",
            case.label(),
            case.requests,
            minimum
        );
        let mut args = dataset.simulator_args();
        for (requests, per) in &case.limits {
            args.extend(["--quota".into(), format!("{requests}/{per}s")]);
        }
        let mut extra = Vec::new();
        for limit in case.trawl_limits() {
            extra.extend(["--rate-limit".into(), limit]);
        }
        let dir = self.work.join("quota");
        let (mut spans, mut walls, mut limited, mut sent) = (vec![], vec![], vec![], vec![]);
        for run in 0..plan.runs {
            // A fresh simulator each run: its windows still remember the previous run.
            let simulator = start_simulator(&self.simulator, &args)?;
            let (measured, written) =
                self.trawl_run(&simulator, hours, 4, "jsonl", &extra, &dir)?;
            self.check_count("quota run", written, records);
            let log: serde_json::Value =
                serde_json::from_str(&http_get(&simulator.url, "/__mock/requests")?)
                    .context("the simulator's request log")?;
            let entries = log.as_array().context("the request log is not a list")?;
            let at: Vec<f64> = entries
                .iter()
                .filter_map(|entry| entry["received_at_ms"].as_f64())
                .collect();
            let first = at.iter().copied().fold(f64::INFINITY, f64::min);
            let last = at.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let too_many = entries
                .iter()
                .filter(|entry| entry["status"].as_u64() == Some(429))
                .count();
            spans.push((last - first) / 1000.0);
            walls.push(measured.wall.as_secs_f64());
            limited.push(too_many);
            sent.push(entries.len());
            eprintln!(
                "  run {}/{}: {} requests from first to last in {:.2} s ({} answered 429); \
                 trawl ran {:.2} s",
                run + 1,
                plan.runs,
                entries.len(),
                spans[run],
                too_many,
                walls[run]
            );
        }
        let span = median(&spans);
        let ratio = span / minimum.as_secs_f64();
        let total_429: usize = limited.iter().sum();
        let _ = writeln!(
            details,
            "### Quota\n\nSimulator `--quota {}`, trawl `{}`, {} hourly windows. First to last \
             request as the simulator received them: {} s (least the quota allows: {:.3} s). \
             Requests received: {}; answered 429: {}. trawl's whole run: {} s.\n",
            case.limits
                .iter()
                .map(|(requests, per)| format!("{requests}/{per}s"))
                .collect::<Vec<_>>()
                .join(" --quota "),
            extra.join(" "),
            case.requests,
            seconds_list(&spans),
            minimum.as_secs_f64(),
            list(sent.iter().map(ToString::to_string)),
            list(limited.iter().map(ToString::to_string)),
            seconds_list(&walls)
        );
        Ok(vec![Row {
            scenario: format!(
                "Time at quota {}, {} requests ({total_429} answered 429)",
                case.label(),
                case.requests
            ),
            trawl: format!("{span:.2} s"),
            baseline: format!("least possible: {:.2} s", minimum.as_secs_f64()),
            ratio: Some(ratio),
            goal: format!("<= {GOAL_QUOTA:.2}x, no 429"),
            pass: Some(ratio <= GOAL_QUOTA && total_429 == 0),
        }])
    }
}

/// A folder in memory (`/dev/shm`), where fsync costs nothing, when there is one.
fn shm_dir() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    shm.is_dir()
        .then(|| shm.join(format!("trawl-bench-{}", std::process::id())))
}

/// Starts a simulator; `Simulator::start` waits for the line announcing its address.
fn start_simulator(binary: &Path, args: &[String]) -> Result<Simulator> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Simulator::start(binary, &args)
}

/// Runs `command` to the end, stdout captured and stderr kept in `dir/stderr.txt`; with `rss`,
/// under `/usr/bin/time` for the peak resident set size. Fails if the process does.
fn measure(command: Command, dir: &Path, rss: bool) -> Result<Measured> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(dir)?;
    let rss_file = dir.join("max-rss.txt");
    let mut command = if rss {
        let mut timed = Command::new(TIME);
        timed
            .args(["-f", "%M %U %S", "-o"])
            .arg(&rss_file)
            .arg(command.get_program())
            .args(command.get_args());
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => timed.env(name, value),
                None => timed.env_remove(name),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            timed.current_dir(dir);
        }
        timed
    } else {
        command
    };
    let stderr_path = dir.join("stderr.txt");
    let stdout_path = dir.join("stdout.txt");
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?)
        // Its own process group, so that a hung run can be stopped with everything it started.
        .process_group(0);
    let shown = show(&command);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    // The process is waited for, not polled: polling it every 250 µs took CPU the measured process
    // needed, which cost trawl (bound by CPU on these two cores) more than raw (waiting on the
    // simulator). A watchdog stops a hung run, with everything it started.
    let (finished, finished_signal) = std::sync::mpsc::channel::<()>();
    let group = child.id();
    let watchdog = std::thread::spawn(move || {
        let timed_out = matches!(
            finished_signal.recv_timeout(PROCESS_TIMEOUT),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
        timed_out
    });
    let status = child.wait();
    let wall = started.elapsed();
    let _ = finished.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if timed_out {
        bail!("{shown} took more than {PROCESS_TIMEOUT:?}; stopped");
    }
    let status = status?;
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{shown} failed ({status}):\n{}", tail.join("\n"));
    }
    let (max_rss_kib, cpu) = if rss {
        let text = std::fs::read_to_string(&rss_file)?;
        let parsed = text.lines().last().and_then(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [kib, user, system] => Some((
                    kib.parse::<u64>().ok()?,
                    user.parse::<f64>().ok()? + system.parse::<f64>().ok()?,
                )),
                _ => None,
            }
        });
        let (kib, cpu) = parsed.with_context(|| format!("{TIME} wrote `{}`", text.trim()))?;
        (Some(kib), Some(cpu))
    } else {
        (None, None)
    };
    Ok(Measured {
        wall,
        max_rss_kib,
        cpu,
        stdout: std::fs::read_to_string(&stdout_path)?,
    })
}

fn progress(what: &str, workers: usize, run: usize, runs: usize, measured: &Measured) {
    eprintln!(
        "  run {}/{runs}: {what:<12} x{workers}: {:>7.2} s{}",
        run + 1,
        measured.wall.as_secs_f64(),
        measured
            .max_rss_kib
            .map(|kib| format!(", peak RSS {:.1} MiB", mib(kib)))
            .unwrap_or_default()
    );
}

fn path_arg(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .context("the bench's folder is not UTF-8")
}

/// `\n`-terminated lines in a file.
fn count_lines(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(lines);
        }
        lines += buffer[..read].iter().filter(|&&byte| byte == b'\n').count() as u64;
    }
}

/// A GET on loopback with nothing but the standard library, for the simulator's control routes.
fn http_get(base_url: &str, path: &str) -> Result<String> {
    let host = base_url
        .strip_prefix("http://")
        .with_context(|| format!("`{base_url}` is not an http:// URL"))?;
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of headers in the simulator's answer")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    if !head.starts_with("http/1.1 200") {
        bail!(
            "GET {path}: {}",
            head.lines().next().unwrap_or_default().trim()
        );
    }
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).context("the simulator's answer is not UTF-8")
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("truncated chunk")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).context("truncated chunk")?);
        body = body.get(size + 2..).context("truncated chunk")?;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn seconds_list(values: &[f64]) -> String {
    list(values.iter().map(|seconds| format!("{seconds:.2}")))
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// `1234567` as `1,234,567`.
fn group(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Scenario | trawl | Baseline | Ratio | Goal | Result |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.trawl,
            row.baseline,
            row.ratio.map_or_else(|| "-".into(), |r| format!("{r:.3}x")),
            row.goal,
            match row.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "-",
            }
        );
    }
    out
}

/// Output of a command, trimmed, or `unknown`.
fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let uname = output_of("uname", &["-srm"]);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| format!(" ({})", model.trim()))
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    format!("{uname}, {cpus} CPUs{model}, {memory} RAM")
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn commit() -> String {
    let hash = output_of("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(root())
        .output()
        .map(|output| !output.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        format!("{hash} (with uncommitted changes)")
    } else {
        hash
    }
}

/// The results file: this run in full, then one line per run, this one first.
fn results_file(
    plan: &Plan,
    rows: &[Row],
    details: &str,
    problems: &[String],
    previous: &str,
    load: &str,
    commit: &str,
) -> Result<String> {
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    let rustc: OsString = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc = output_of(&rustc.to_string_lossy(), &["--version"]);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# trawl benchmarks\n\n\
         Written by `cargo xtask bench{}`; see `xtask/src/bench.rs` for what each scenario does. \
         Ratios are trawl against its baseline, both measured in the same run; goals are from the \
         performance issue.\n",
        if plan.quick { " --quick" } else { "" }
    );
    let _ = writeln!(out, "- Date: {date}");
    let _ = writeln!(out, "- Commit: {commit}");
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(out, "- Toolchain: {rustc}");
    let _ = writeln!(
        out,
        "- Load average (1 min): {load}; other work on the machine makes the times noisy"
    );
    let _ = writeln!(
        out,
        "- Runs: {} per throughput scenario, {} for the quota, {} for the backfill, {} for \
         start-up; medians shown{}\n",
        plan.throughput_runs,
        plan.runs,
        plan.big_runs,
        plan.start_runs,
        if plan.quick {
            "; --quick: datasets ten times smaller, not comparable with full runs"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "## Results\n\n{}", render_table(rows));
    if !problems.is_empty() {
        let _ = writeln!(out, "Problems seen during the run:\n");
        for problem in problems {
            let _ = writeln!(out, "- {problem}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Runs\n\n{}\n", details.trim_end());

    let headline = rows
        .iter()
        .filter(|row| row.pass.is_some())
        .map(|row| {
            format!(
                "{} {}{}",
                short_name(&row.scenario),
                row.trawl,
                row.ratio
                    .filter(|_| row.trawl.ends_with("rec/s") || row.scenario.starts_with("Time"))
                    .map(|ratio| format!(" ({ratio:.3}x)"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let failed = rows.iter().filter(|row| row.pass == Some(false)).count();
    let mut history = vec![format!(
        "- {date}, {commit}{}: {headline}; {}",
        if plan.quick { ", quick" } else { "" },
        if failed == 0 {
            "all goals met".to_string()
        } else {
            format!("{failed} goal(s) missed")
        }
    )];
    if let Some((_, past)) = previous.split_once("\n## History\n") {
        history.extend(
            past.lines()
                .filter(|line| line.starts_with("- "))
                .map(str::to_string),
        );
    }
    history.truncate(HISTORY_LINES);
    if let Some(notes) = kept_notes(previous) {
        let _ = writeln!(out, "{NOTES_HEADING}{notes}");
    }
    let _ = writeln!(
        out,
        "## History\n\nOne line per run, newest first.\n\n{}",
        history.join("\n")
    );
    Ok(out)
}

/// The heading of the results file's hand-written section: what profiles showed and what each
/// change bought. A run keeps it as it was.
const NOTES_HEADING: &str = "## Profile, and what was changed\n";

/// The hand-written section of the previous results file, without its heading.
fn kept_notes(previous: &str) -> Option<&str> {
    let (_, notes) = previous.split_once(&format!("\n{NOTES_HEADING}"))?;
    Some(
        notes
            .split_once("\n## History\n")
            .map_or(notes, |(notes, _)| notes),
    )
}

/// A scenario's name for the one-line history.
fn short_name(scenario: &str) -> String {
    if let Some(rest) = scenario.strip_prefix("Throughput to ") {
        let format = rest.split(',').next().unwrap_or(rest);
        match rest.split("--workers ").nth(1) {
            Some(workers) => format!("{format} x{workers}"),
            None => format.to_string(),
        }
    } else if scenario.starts_with("Start") {
        "warm start".into()
    } else if scenario.starts_with("Peak RSS") {
        "peak RSS".into()
    } else if scenario.starts_with("Time at quota") {
        "quota".into()
    } else {
        scenario.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_notes_survive_a_run() {
        let previous = "# trawl benchmarks\n\n## Results\n\nold\n\n## Profile, and what was changed\n\n\
                        1. A change.\n\n## History\n\n- a run\n";
        assert_eq!(kept_notes(previous), Some("\n1. A change.\n"));
        assert_eq!(
            kept_notes("# trawl benchmarks\n\n## History\n\n- a run\n"),
            None
        );
    }

    #[test]
    fn quota_minimum_follows_both_windows() {
        // 100 in the first 20 s (5 a second), then the minute runs out until 60 s.
        let case = QuotaCase {
            limits: vec![(5, 1), (100, 60)],
            requests: 150,
        };
        assert_eq!(case.minimum(), Duration::from_secs(69));
        let case = QuotaCase {
            limits: vec![(5, 1), (20, 10)],
            requests: 30,
        };
        assert_eq!(case.minimum(), Duration::from_secs(11));
    }

    #[test]
    fn record_counts_follow_the_generator() {
        let dataset = Dataset {
            days: 3,
            per_hour: 12,
        };
        // 72 hours of 12, bursts in hours 3, 10, ..., 66 (10 of them), 5 fixed events.
        assert_eq!(dataset.records(), 72 * 12 + 30 + 5);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(1_008_622), "1,008,622");
        assert_eq!(group(999), "999");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }
}
