//! The engine: plans windows, drives each connector's page loop, and moves records to the sink and
//! the checkpoint, in that order.
//!
//! A window's records reach the output and are made durable before the window is checkpointed, in
//! the same transaction as the output's new length. A crash in between leaves bytes past the
//! checkpointed length, which the sink cuts off when it is opened again: no record is lost and none
//! is written twice.

mod plan;

pub use plan::windows;

use crate::capabilities::Capabilities;
use crate::runtime::wit::{FetchError, PageRequest, Param, StreamInfo, Window};
use crate::runtime::{CallError, Connector};
use crate::sinks::{OutputRecord, OutputSpec, SinkError};
use crate::state::{Interval, Scope, StateError, StateStore};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use thiserror::Error;

/// Limits the engine applies to a connector's paging.
#[derive(Clone, Debug)]
pub struct EngineLimits {
    /// The most pages one window may take; more means a runaway cursor.
    pub max_pages_per_window: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_pages_per_window: 10_000,
        }
    }
}

/// Everything a stream's run needs besides the stream itself.
pub struct RunContext<'a> {
    pub connector: &'a Connector,
    pub capabilities: Capabilities,
    pub params: Vec<Param>,
    pub profile: String,
    pub state: StateStore,
    pub limits: EngineLimits,
}

/// What a stream's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    pub windows_total: usize,
    pub windows_fetched: usize,
    pub pages: u64,
    pub records: u64,
}

/// Why a window could not be fetched.
#[derive(Debug, Error)]
pub enum WindowError {
    #[error("{0}")]
    Sandbox(#[from] CallError),
    #[error("{}", describe_fetch_error(.0))]
    Connector(FetchError),
    #[error("more than {0} pages in one window; the connector's cursor does not end")]
    TooManyPages(u32),
    #[error("the connector returned the cursor `{0}` a second time; paging would never end")]
    RepeatedCursor(String),
    #[error("record {id} has an event time outside any valid date ({event_time} ms)")]
    BadEventTime { id: String, event_time: i64 },
}

/// Why a stream's run stopped.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "stream `{stream}`, window {window}: {source}\n\
         {done} of {total} windows completed before it; run the same command again to resume from there"
    )]
    Window {
        stream: String,
        window: DisplayWindow,
        source: WindowError,
        done: usize,
        total: usize,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A window for messages: `2024-09-01T05:00:00Z..2024-09-01T06:00:00Z`.
#[derive(Debug, Clone, Copy)]
pub struct DisplayWindow(pub Interval);

impl fmt::Display for DisplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |millis: i64| {
            jiff::Timestamp::from_millisecond(millis)
                .map(|time| time.to_string())
                .unwrap_or_else(|_| millis.to_string())
        };
        write!(f, "{}..{}", show(self.0.start), show(self.0.end))
    }
}

/// Which part of time a run pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Exactly this range (what of it is not checkpointed yet).
    Explicit(Interval),
    /// From the stream's watermark (the end of the last completed window, not the newest record)
    /// to `now` less the stream's lag; a first run starts the stream's default lookback before.
    Incremental { now: i64 },
}

/// Windows are not split below this length, in milliseconds.
const MIN_SPLIT_MS: i64 = 1000;

/// When a connector declares no lookback, a first incremental run reaches this far back.
const FALLBACK_LOOKBACK_MS: i64 = 24 * 3_600_000;

/// Pulls `request`'s range of `stream` into `sink`, skipping windows already checkpointed for this
/// output.
pub async fn run_stream(
    context: &RunContext<'_>,
    stream: &StreamInfo,
    request: RangeRequest,
    output: &OutputSpec,
) -> Result<StreamSummary, RunError> {
    let committed = context.state.output_positions(&output.file_prefix())?;
    let mut sink = output.open(committed)?;
    let scope = Scope {
        connector: context.connector.info().name.clone(),
        profile: context.profile.clone(),
        stream: stream.name.clone(),
        output: output.key(),
    };
    let completed = context.state.completed(&scope)?;
    let range = match request {
        RangeRequest::Explicit(range) => range,
        RangeRequest::Incremental { now } => {
            let end = now.saturating_sub(millis(stream.lag));
            let lookback = match millis(stream.default_lookback) {
                0 => FALLBACK_LOOKBACK_MS,
                lookback => lookback,
            };
            let start = completed
                .last()
                .map_or(now.saturating_sub(lookback), |done| done.end);
            Interval::new(start, end.max(start))
        }
    };
    let planned = windows(range, &completed, stream.max_window);
    let mut summary = StreamSummary {
        windows_total: planned.len(),
        ..StreamSummary::default()
    };
    let mut queue: VecDeque<Interval> = planned.into();
    while let Some(window) = queue.pop_front() {
        let fetched = match fetch_window(context, stream, window).await {
            Err(WindowError::Connector(FetchError::WindowTooLarge(reason)))
                if window.end - window.start >= 2 * MIN_SPLIT_MS =>
            {
                // The vendor truncated this window's results: ask for each half instead.
                tracing::info!(stream = %stream.name, window = %DisplayWindow(window), %reason,
                    "window reached the vendor's result cap; splitting it");
                let middle = window.start + (window.end - window.start) / 2;
                queue.push_front(Interval::new(middle, window.end));
                queue.push_front(Interval::new(window.start, middle));
                summary.windows_total += 1;
                continue;
            }
            fetched => fetched.map_err(|source| RunError::Window {
                stream: stream.name.clone(),
                window: DisplayWindow(window),
                source,
                done: summary.windows_fetched,
                total: summary.windows_total,
            })?,
        };
        let records = order_and_dedup(fetched.records);
        let rewritten = sink.prepare(&records)?;
        if !rewritten.is_empty() {
            context.state.record_outputs(&rewritten)?;
        }
        sink.append(&records)?;
        let positions = sink.sync()?;
        context.state.commit_window(&scope, window, &positions)?;
        tracing::debug!(
            stream = %stream.name,
            window = %DisplayWindow(window),
            records = records.len(),
            pages = fetched.pages,
            "window complete"
        );
        summary.windows_fetched += 1;
        summary.pages += fetched.pages;
        summary.records += records.len() as u64;
    }
    Ok(summary)
}

fn millis(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

struct FetchedWindow {
    records: Vec<OutputRecord>,
    pages: u64,
}

/// Calls `fetch-page` until the window's cursor runs out.
async fn fetch_window(
    context: &RunContext<'_>,
    stream: &StreamInfo,
    window: Interval,
) -> Result<FetchedWindow, WindowError> {
    let mut request = PageRequest {
        stream: stream.name.clone(),
        window: Window {
            start: window.start,
            end: window.end,
        },
        cursor: None,
        params: context.params.clone(),
    };
    let mut seen_cursors: HashSet<String> = HashSet::new();
    let mut fetched = FetchedWindow {
        records: Vec::new(),
        pages: 0,
    };
    loop {
        if fetched.pages >= u64::from(context.limits.max_pages_per_window) {
            return Err(WindowError::TooManyPages(
                context.limits.max_pages_per_window,
            ));
        }
        let fetched_at = context.capabilities.clock.now_millis();
        let page = context
            .connector
            .fetch_page(context.capabilities.clone(), &request)
            .await?
            .map_err(WindowError::Connector)?;
        fetched.pages += 1;
        for record in page.records {
            if jiff::Timestamp::from_millisecond(record.event_time).is_err() {
                return Err(WindowError::BadEventTime {
                    id: record.id,
                    event_time: record.event_time,
                });
            }
            fetched.records.push(OutputRecord {
                id: record.id,
                event_time: record.event_time,
                fetched_at,
                json: record.json,
            });
        }
        match page.next_cursor {
            None => return Ok(fetched),
            Some(cursor) => {
                if !seen_cursors.insert(cursor.clone()) {
                    return Err(WindowError::RepeatedCursor(cursor));
                }
                request.cursor = Some(cursor);
            }
        }
    }
}

/// Event-time order (ties by id, then arrival), each id once.
fn order_and_dedup(mut records: Vec<OutputRecord>) -> Vec<OutputRecord> {
    records.sort_by(|a, b| (a.event_time, &a.id).cmp(&(b.event_time, &b.id)));
    let mut seen: HashSet<String> = HashSet::with_capacity(records.len());
    records.retain(|record| seen.insert(record.id.clone()));
    records
}

fn describe_fetch_error(error: &FetchError) -> String {
    use crate::runtime::wit::trawl::connector::http::Error as HttpError;
    match error {
        FetchError::Http(HttpError::Denied(message)) => format!("request denied: {message}"),
        FetchError::Http(HttpError::Timeout) => "the vendor did not answer in time".into(),
        FetchError::Http(HttpError::TooLarge(limit)) => {
            format!("the vendor's response was larger than the {limit}-byte limit")
        }
        FetchError::Http(HttpError::Transport(message)) => {
            format!("could not reach the vendor: {message}")
        }
        FetchError::Http(HttpError::InvalidRequest(message)) => {
            format!("the connector built an invalid request: {message}")
        }
        FetchError::Status(status) => {
            format!(
                "the vendor answered HTTP {}: {}",
                status.status, status.message
            )
        }
        FetchError::Malformed(message) => format!("could not read the vendor's answer: {message}"),
        FetchError::Unauthorized(message) => format!("not authorized: {message}"),
        FetchError::InvalidParams(message) => format!("invalid settings: {message}"),
        FetchError::UnknownStream(stream) => {
            format!("the connector has no stream `{stream}`")
        }
        FetchError::WindowTooLarge(message) => format!(
            "the vendor caps results per query and even a {MIN_SPLIT_MS} ms window reached the cap: {message}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, event_time: i64) -> OutputRecord {
        OutputRecord {
            id: id.into(),
            event_time,
            fetched_at: 0,
            json: "{}".into(),
        }
    }

    #[test]
    fn orders_by_time_then_id_and_drops_repeats() {
        let ordered = order_and_dedup(vec![
            record("b", 2),
            record("a", 2),
            record("c", 1),
            record("a", 2),
        ]);
        let ids: Vec<&str> = ordered.iter().map(|record| record.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }

    #[test]
    fn windows_display_in_utc() {
        let window = DisplayWindow(Interval::new(1_725_148_800_000, 1_725_152_400_000));
        assert_eq!(
            window.to_string(),
            "2024-09-01T00:00:00Z..2024-09-01T01:00:00Z"
        );
    }
}
