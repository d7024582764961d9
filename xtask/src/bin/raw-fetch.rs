//! The baseline `cargo xtask bench` measures trawl against: fetches the same Workvivo simulator
//! pages trawl asks for, with the same HTTP client and headers, and appends each response body to
//! a file as it arrives, unparsed. What is left between the two is trawl's own work: the sandbox,
//! parsing, ordering, dedup, formatting, fsync and checkpoints.
//!
//! ```text
//! raw-fetch --url URL --token TOKEN --org ORG --from SECONDS --to SECONDS
//!           [--concurrency N] [--window SECONDS] --output FILE
//! ```
//!
//! The windows are the connector's: `[from + k * window, min(from + (k + 1) * window, to))`, asked
//! as `GET {url}/v1/siem/{start}/{end}`. Prints `{"requests": N, "bytes": N}` on stdout.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Args {
    url: String,
    token: String,
    org: String,
    from: i64,
    to: i64,
    window: i64,
    concurrency: usize,
    output: PathBuf,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut url = None;
        let mut token = None;
        let mut org = None;
        let mut from = None;
        let mut to = None;
        let mut window = 3600;
        let mut concurrency = 1;
        let mut output = None;
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--url" => url = Some(value()?.trim_end_matches('/').to_string()),
                "--token" => token = Some(value()?),
                "--org" => org = Some(value()?),
                "--from" => from = Some(value()?.parse().context("--from: Unix seconds")?),
                "--to" => to = Some(value()?.parse().context("--to: Unix seconds")?),
                "--window" => window = value()?.parse().context("--window: seconds")?,
                "--concurrency" => concurrency = value()?.parse().context("--concurrency")?,
                "--output" => output = Some(PathBuf::from(value()?)),
                _ => bail!("unknown argument `{flag}`"),
            }
        }
        let args = Args {
            url: url.context("--url is required")?,
            token: token.context("--token is required")?,
            org: org.context("--org is required")?,
            from: from.context("--from is required")?,
            to: to.context("--to is required")?,
            window,
            concurrency,
            output: output.context("--output is required")?,
        };
        if args.window <= 0 || args.concurrency == 0 || args.to <= args.from {
            bail!("--window and --concurrency must be positive and --to after --from");
        }
        Ok(args)
    }

    /// `(start, end)` in seconds, as the Workvivo connector sends them.
    fn windows(&self) -> Vec<(i64, i64)> {
        let mut windows = Vec::new();
        let mut start = self.from;
        while start < self.to {
            let end = (start + self.window).min(self.to);
            windows.push((start, end));
            start = end;
        }
        windows
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse()?);
    let windows = Arc::new(args.windows());
    let client = reqwest::Client::builder()
        .user_agent("raw-fetch")
        .build()
        .context("cannot build the HTTP client")?;
    let next = Arc::new(AtomicUsize::new(0));
    let (bodies, mut received) = tokio::sync::mpsc::channel(args.concurrency * 2);

    let mut fetchers = Vec::new();
    for _ in 0..args.concurrency {
        let (args, windows, client, next, bodies) = (
            args.clone(),
            windows.clone(),
            client.clone(),
            next.clone(),
            bodies.clone(),
        );
        fetchers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(start, end)) = windows.get(index) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let url = format!("{}/v1/siem/{start}/{end}", args.url);
                let response = client
                    .get(&url)
                    .header("Authorization", format!("Bearer {}", args.token))
                    .header("Workvivo-Id", &args.org)
                    .header("Accept", "application/json")
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                let status = response.status();
                if !status.is_success() {
                    bail!("GET {url}: {status}");
                }
                let body = response
                    .bytes()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                if bodies.send(body).await.is_err() {
                    return Ok(());
                }
            }
        }));
    }
    drop(bodies);

    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut requests, mut bytes) = (0u64, 0u64);
    while let Some(body) = received.recv().await {
        out.write_all(&body)?;
        requests += 1;
        bytes += body.len() as u64;
    }
    for fetcher in fetchers {
        fetcher.await??;
    }
    let file = out.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    println!("{{\"requests\": {requests}, \"bytes\": {bytes}}}");
    Ok(())
}
