//! What a user feels at a real vendor, where speed is set by the vendor's quota: the requests a
//! backfill spends against the least a client that knows the data needs, the 429s trawl brings on
//! itself under a quota nobody published, and whether a run finishes under the everyday fault mix.
//! The simulators count what they answered (`GET /__mock/counters`); nothing here is timed
//! against a goal but the requests.

use super::{Bench, Plan, Row, http_get, measure, path_arg, start_simulator};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Requests a backfill may spend, against a client that knows where the records are.
const GOAL_REQUESTS: f64 = 1.2;
/// Share of requests a run may have answered 429 under a quota it was not told about.
const GOAL_SELF_CAUSED_429: f64 = 0.01;

/// Yandex 360's simulator: events on pages of at most 100 (the API's most), from 2025-06-01.
const YANDEX_TOKEN: &str = "sim-token";
const YANDEX_ORG: &str = "1234567";
const YANDEX_PAGE: u64 = 100;
const YANDEX_STREAMS: [&str; 2] = ["mail", "disk"];

/// What a simulator counted (the fields the bench reads).
#[derive(Debug, Default)]
struct Counters {
    requests: u64,
    too_many_requests: u64,
    self_caused_429s: u64,
    faulted: u64,
}

fn counters(url: &str) -> Result<Counters> {
    let counted: serde_json::Value = serde_json::from_str(&http_get(url, "/__mock/counters")?)
        .context("the simulator's counters")?;
    let field = |name: &str| {
        counted[name]
            .as_u64()
            .with_context(|| format!("the simulator's counters have no `{name}`"))
    };
    Ok(Counters {
        requests: field("requests")?,
        too_many_requests: field("too_many_requests")?,
        self_caused_429s: field("self_caused_429s")?,
        faulted: field("faulted")?,
    })
}

/// The events a Yandex simulator generated for a stream, from its ground-truth files.
fn truth_lines(dir: &Path, stream: &str) -> Result<u64> {
    super::count_lines(&dir.join(format!("{stream}.jsonl")))
}

/// Lines in every file of `dir` (per-day files), 0 when there is none.
fn lines_in(dir: &Path) -> Result<u64> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut lines = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            lines += super::count_lines(&path)?;
        }
    }
    Ok(lines)
}

impl Bench {
    /// `trawl plugin approve NAME` into the state folder `state` (once, as a user does).
    fn approve(&self, connector: &str, state: &Path) -> Result<()> {
        let mut approve = self.trawl_command(&self.cache);
        approve
            .arg("--state")
            .arg(state)
            .args(["plugin", "approve", connector, "--yes"])
            .stdout(std::process::Stdio::null());
        let status = approve
            .status()
            .context("cannot run trawl plugin approve")?;
        anyhow::ensure!(
            status.success(),
            "trawl plugin approve {connector} failed ({status})"
        );
        Ok(())
    }

    /// `trawl run yandex360 FROM TO` against `url`, both streams, into per-day files under `dir`,
    /// with the state in `state`.
    fn yandex_run(&self, url: &str, range: [&str; 2], state: &Path, dir: &Path) -> Result<()> {
        let mut command = self.trawl_command(&self.cache);
        command
            .arg("--state")
            .arg(state)
            .args(["run", "yandex360", range[0], range[1]])
            .args(["--param", &format!("base_url={url}")])
            .args(["--grant", url])
            .env("OAUTH_TOKEN_ARG", YANDEX_TOKEN)
            .env("ORGANIZATION_ID_ARG", YANDEX_ORG)
            .current_dir(dir);
        for stream in YANDEX_STREAMS {
            let folder = path_arg(&dir.join(stream))?;
            command.env(
                format!("{}_LOG_CATALOG_LOCATION", stream.to_ascii_uppercase()),
                folder,
            );
        }
        measure(command, &dir.join("run"), false).map(drop)
    }

    /// A Yandex 360 simulator started with `args`, writing its events under `truth`.
    fn yandex_simulator(&self, args: &[&str], truth: &Path) -> Result<super::Simulator> {
        let mut all: Vec<String> = ["yandex360", "--ground-truth"]
            .iter()
            .map(ToString::to_string)
            .collect();
        all.push(path_arg(truth)?);
        all.extend(args.iter().map(ToString::to_string));
        start_simulator(&self.simulator, &all)
    }

    /// Requests of Yandex backfills against the least a client that knows the data makes (every
    /// page full but the last, one request for a stream without events): a quiet organisation
    /// (six hours of events in half a year, one run), and a busy one (pages of 10, two days in
    /// two runs: the second is sized from what the first saw).
    pub(super) fn requests_spent(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        struct Case {
            label: &'static str,
            hours: u32,
            page: u64,
            runs: &'static [[&'static str; 2]],
        }
        let cases = [
            Case {
                label: "quiet organisation, 180 days",
                hours: 6,
                page: YANDEX_PAGE,
                runs: &[["2025-01-02", "2025-06-30"]],
            },
            Case {
                label: "busy organisation, 2 days in two runs",
                hours: 48,
                page: if plan.quick { 20 } else { 10 },
                runs: &[["2025-06-01", "2025-06-01"], ["2025-06-02", "2025-06-02"]],
            },
        ];
        eprintln!("\n== requests spent: Yandex 360 backfills against the least possible");
        let mut rows = Vec::new();
        for case in cases {
            let label = case.label;
            let dir = self.work.join("requests");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let truth = dir.join("truth");
            let page_cap = case.page.to_string();
            let simulator = self.yandex_simulator(
                &["--hours", &case.hours.to_string(), "--page-cap", &page_cap],
                &truth,
            )?;
            let state = dir.join("state");
            self.approve("yandex360", &state)?;
            let started = std::time::Instant::now();
            for range in case.runs {
                self.yandex_run(&simulator.url, *range, &state, &dir)?;
            }
            let wall = started.elapsed();
            let counted = counters(&simulator.url)?;
            // Each run's ranges are whole days of the generated events, so the least is per
            // stream and run.
            let mut least = 0;
            for stream in YANDEX_STREAMS {
                let events = truth_lines(&truth, stream)?;
                let runs = case.runs.len() as u64;
                least += (events.div_ceil(case.page)).max(runs);
                let written = lines_in(&dir.join(stream))?;
                self.check_count(&format!("{label}, {stream}"), written, events);
            }
            let ratio = counted.requests as f64 / least as f64;
            eprintln!(
                "  {label}: {} requests (least possible {least}) in {:.2} s",
                counted.requests,
                wall.as_secs_f64()
            );
            let _ = writeln!(
                details,
                "### Requests spent: {label}\n\nYandex 360 simulator, `--hours {} --page-cap \
                 {page_cap}` of events from 2025-06-01; `trawl run yandex360` over {} (mail and \
                 disk, one state store). Requests: {}; the least a client that knows the data \
                 makes: {least} (every page full but the last, one for a stream without \
                 events). trawl's runs took {:.2} s.\n",
                case.hours,
                case.runs
                    .iter()
                    .map(|[from, to]| format!("{from} to {to}"))
                    .collect::<Vec<_>>()
                    .join(", then "),
                counted.requests,
                wall.as_secs_f64()
            );
            rows.push(Row {
                scenario: format!("Requests, {label}"),
                trawl: format!("{} requests, {:.2} s", counted.requests, wall.as_secs_f64()),
                baseline: format!("least possible: {least}"),
                ratio: Some(ratio),
                goal: format!("<= {GOAL_REQUESTS:.1}x"),
                pass: Some(ratio <= GOAL_REQUESTS),
            });
        }
        Ok(rows)
    }

    /// 429s trawl brings on itself at a vendor whose quota no connector declares: Yandex 360's
    /// simulator with 100 requests a minute per token, a bare 429 (no `Retry-After`), a 60 s
    /// block for a token that comes back early, refused requests counted; two runs one after the
    /// other on one state store, as a cron job makes them, pages small enough to need hundreds
    /// of requests.
    pub(super) fn undeclared_quota(
        &mut self,
        plan: &Plan,
        details: &mut String,
    ) -> Result<Vec<Row>> {
        let (quota, page_cap) = if plan.quick {
            ("30/10s", "20")
        } else {
            ("100/60s", "5")
        };
        let ranges = [["2025-06-01", "2025-06-01"], ["2025-06-02", "2025-06-02"]];
        eprintln!("\n== undeclared quota {quota}: self-caused 429s over two runs");
        let dir = self.work.join("undeclared");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let truth = dir.join("truth");
        let simulator = self.yandex_simulator(
            &[
                "--hours",
                "48",
                "--quota",
                quota,
                "--penalty",
                if plan.quick { "10" } else { "60" },
                "--count-refused",
                "--page-cap",
                page_cap,
            ],
            &truth,
        )?;
        let state = dir.join("state");
        self.approve("yandex360", &state)?;
        let mut runs = Vec::new();
        let mut before = Counters::default();
        for range in ranges {
            let started = std::time::Instant::now();
            self.yandex_run(&simulator.url, range, &state, &dir)?;
            let wall = started.elapsed();
            let now = counters(&simulator.url)?;
            let requests = now.requests - before.requests;
            let self_caused = now.self_caused_429s - before.self_caused_429s;
            eprintln!(
                "  {} to {}: {requests} requests, {self_caused} answered 429 by the quota, \
                 {:.1} s",
                range[0],
                range[1],
                wall.as_secs_f64()
            );
            runs.push((requests, self_caused, wall));
            before = now;
        }
        for stream in YANDEX_STREAMS {
            let written = lines_in(&dir.join(stream))?;
            self.check_count(
                &format!("undeclared quota, {stream}"),
                written,
                truth_lines(&truth, stream)?,
            );
        }
        let requests: u64 = runs.iter().map(|run| run.0).sum();
        let self_caused: u64 = runs.iter().map(|run| run.1).sum();
        let share = self_caused as f64 / requests.max(1) as f64;
        let _ = writeln!(
            details,
            "### Undeclared quota\n\nYandex 360 simulator `--quota {quota} --penalty ... \
             --count-refused --page-cap {page_cap}` (a bare 429), trawl told of no quota; two \
             runs of a day each on one state store. Per run, requests / answered 429 by the \
             quota / wall time: {}.\n",
            runs.iter()
                .map(|(requests, limited, wall)| format!(
                    "{requests} / {limited} / {:.1} s",
                    wall.as_secs_f64()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        Ok(vec![Row {
            scenario: format!("Self-caused 429s, undeclared quota {quota}, two runs"),
            trawl: format!(
                "{self_caused} of {requests} requests ({:.2}%)",
                share * 100.0
            ),
            baseline: "-".into(),
            ratio: None,
            goal: format!("<= {:.0}%", GOAL_SELF_CAUSED_429 * 100.0),
            pass: Some(share <= GOAL_SELF_CAUSED_429),
        }])
    }

    /// Whether one run of Workvivo under the everyday fault mix (5% 429, 5% 500, 2% HTML 502,
    /// 2% resets, 1% cut bodies) ends with every record and exit 0.
    pub(super) fn fault_mix(&mut self, plan: &Plan, details: &mut String) -> Result<Vec<Row>> {
        let dataset = super::Dataset {
            days: if plan.quick { 2 } else { 7 },
            per_hour: 30,
        };
        let hours = dataset.hours();
        eprintln!("\n== fault mix: {hours} hourly windows, one run");
        let mut args = dataset.simulator_args();
        args.push("--everyday-faults".into());
        let simulator = start_simulator(&self.simulator, &args)?;
        let dir = self.work.join("faults");
        let started = std::time::Instant::now();
        let outcome = self.trawl_run(&simulator, hours, 4, "jsonl", &[], &dir);
        let wall = started.elapsed();
        let counted = counters(&simulator.url)?;
        let (finished, what) = match outcome {
            Ok((_, written)) => {
                self.check_count("fault mix", written, dataset.records());
                (
                    written == dataset.records(),
                    format!("{written} records, exit 0"),
                )
            }
            Err(error) => {
                let problem = format!("fault mix: the run did not finish: {error:#}");
                eprintln!("PROBLEM: {problem}");
                self.problems.push(problem);
                (false, "stopped".into())
            }
        };
        eprintln!(
            "  {what}: {} requests, {} faulted, {:.1} s",
            counted.requests,
            counted.faulted,
            wall.as_secs_f64()
        );
        let _ = writeln!(
            details,
            "### Fault mix\n\nWorkvivo simulator `--everyday-faults`, {hours} hourly windows, \
             4 workers, one run: {what}; {} requests, {} of them faulted ({} answered 429); \
             {:.1} s.\n",
            counted.requests,
            counted.faulted,
            counted.too_many_requests,
            wall.as_secs_f64()
        );
        Ok(vec![Row {
            scenario: format!("Everyday fault mix, {hours} windows, one run"),
            trawl: what,
            baseline: format!("{} requests, {} faulted", counted.requests, counted.faulted),
            ratio: None,
            goal: "exact, exit 0".into(),
            pass: Some(finished),
        }])
    }
}
