//! The engine: plans windows, has workers drive each connector's page loop, and moves records to
//! the output and the checkpoint, in that order.
//!
//! Workers fetch windows concurrently. Each page's records but the last are staged on disk and
//! the window's cursor is checkpointed after them, so an interrupted window resumes at its next
//! page. A single committer takes fetched windows in time order: for each it sorts the records
//! (in bounded memory), drops those already delivered, filters, caps and appends to the output.
//! Every few milliseconds it makes the output durable once and checkpoints the windows appended
//! since the last time, with the output's new length, in one transaction. When
//! an output is opened, bytes past its checkpointed length that a run noted it appended (and died
//! before checkpointing) are cut off; bytes trawl did not write stop the run instead. So a crash
//! at any point neither loses a record nor writes one twice, and the output is in event-time
//! order across windows.

mod commit;
mod fetch;
mod filter;
mod ids;
mod order;
mod plan;
mod staging;

pub use commit::Tally;
pub use filter::{FilterError, RecordFilter};
pub use plan::{PlannedWindow, SharedDensity, WindowPlanner, subtract};

use crate::capabilities::Capabilities;
use crate::connector_text::printable_excerpt;
use crate::runtime::wit::{FetchError, Param, StreamInfo};
use crate::runtime::{CallError, Connector};
use crate::sinks::{OutputSpec, SinkError, TimeLocation, Written};
use crate::state::{Interval, Scope, StateError, StateStore, WindowProgress};
use commit::{CommitOutcome, Committer};
use fetch::{Fetched, Shared};
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Mutex, mpsc, oneshot};

/// How a run behaves; everything has a default.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Windows fetched at the same time.
    pub workers: usize,
    /// The most pages one window may take; more means a runaway cursor.
    pub max_pages_per_window: u32,
    /// Overrides the stream's declared overlap, in milliseconds.
    pub overlap: Option<u64>,
    /// Overrides the stream's declared lag, in milliseconds.
    pub lag: Option<u64>,
    /// Only records passing this are written.
    pub filter: RecordFilter,
    /// At most this many records are written by one stream's run.
    pub max_records: Option<u64>,
    /// How much of a window is sorted in memory before sorting spills to disk.
    pub sort_chunk_bytes: usize,
    /// The most records one page may hold.
    pub max_page_records: usize,
    /// The most bytes of records one page may hold.
    pub max_page_bytes: usize,
    /// How long a page may keep coming back unreadable before its window fails.
    pub unreadable_patience: std::time::Duration,
    /// How many times a page may be asked for in all while it comes back unreadable.
    pub unreadable_attempts: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 4,
            max_pages_per_window: 10_000,
            overlap: None,
            lag: None,
            filter: RecordFilter::default(),
            max_records: None,
            sort_chunk_bytes: 16 << 20,
            max_page_records: 100_000,
            max_page_bytes: 64 << 20,
            unreadable_patience: std::time::Duration::from_secs(120),
            unreadable_attempts: u32::MAX,
        }
    }
}

/// Everything a stream's run needs besides the stream itself.
pub struct RunContext {
    /// The name checkpoints are kept under: the approved connector's, whatever the file says
    /// about itself (`<name>~unapproved` for a file run without approval).
    pub identity: String,
    pub connector: Arc<Connector>,
    pub capabilities: Capabilities,
    pub params: Vec<Param>,
    pub profile: String,
    pub state: StateStore,
    pub options: RunOptions,
}

/// Which part of time a run pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Exactly this range (what of it is not checkpointed yet).
    Explicit(Interval),
    /// From the stream's watermark (the end of the last completed window, not the newest record)
    /// less its overlap, to `now` less its lag; a first run starts the stream's default lookback
    /// before now.
    Incremental { now: i64 },
}

/// What a stream's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    pub range: Option<Interval>,
    pub windows_total: usize,
    pub windows_committed: usize,
    pub pages: u64,
    pub tally: Tally,
    /// The record cap stopped the run before the end of its range.
    pub capped: bool,
}

/// Why a window could not be fetched.
#[derive(Debug, Error)]
pub enum WindowError {
    #[error("{0}")]
    Sandbox(#[from] CallError),
    #[error("{}", printable_excerpt(&describe_fetch_error(.0), MESSAGE_EXCERPT))]
    Connector(FetchError),
    #[error(
        "more than {0} pages in one window; the connector's cursor does not end (`limits: (max_pages_per_window: ...)` in the config)"
    )]
    TooManyPages(u32),
    #[error(
        "a page held {found} {what}, more than the limit of {limit} (`limits: ({setting}: ...)` in the config)"
    )]
    PageTooLarge {
        found: usize,
        what: &'static str,
        limit: usize,
        setting: &'static str,
    },
    #[error(
        "the connector returned a cursor of {len} bytes; a cursor is saved with every page's \
         checkpoint, and may be at most {limit} bytes (a connector's own limit, not a setting)"
    )]
    CursorTooLong { len: usize, limit: usize },
    #[error(
        "the connector returned the cursor `{}` a second time; paging would never end",
        printable_excerpt(.0, ID_EXCERPT)
    )]
    RepeatedCursor(String),
    #[error(
        "record {} has an event time outside any valid date ({event_time} ms)",
        printable_excerpt(id, ID_EXCERPT)
    )]
    BadEventTime { id: String, event_time: i64 },
    #[error(
        "record {} is not one JSON object: {}",
        printable_excerpt(id, ID_EXCERPT),
        printable_excerpt(reason, MESSAGE_EXCERPT)
    )]
    NotAnObject { id: String, reason: String },
    #[error("cannot stage fetched records: {0}")]
    Staging(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("stopped because another window failed")]
    Stopped,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a stream's run stopped.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "stream `{stream}`, window {window}: {source}\n\
         {done} of {total} windows completed; {}",
        next_step(source)
    )]
    Window {
        stream: String,
        window: DisplayWindow,
        source: WindowError,
        done: usize,
        total: usize,
    },
    #[error("cannot read staged records in {path}: {source}")]
    Staging {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "another trawl run is pulling stream `{stream}` into {output} right now; \
         two at once would fetch and write the same windows (this one stops, nothing changed)"
    )]
    Busy { stream: String, output: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl WindowError {
    /// The vendor asked for the window in smaller pieces: not a failure.
    fn is_split_request(&self) -> bool {
        matches!(self, WindowError::Connector(FetchError::WindowTooLarge(_)))
    }
}

impl RunError {
    /// Whether the user must look at something before a rerun can help: the output holds bytes
    /// trawl did not write where it would cut them off. Nothing was fetched.
    pub fn needs_the_user(&self) -> bool {
        matches!(self, RunError::Sink(SinkError::NotTrawls { .. }))
    }

    /// Whether the vendor refused the credentials: other streams would be refused alike.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            RunError::Window {
                source: WindowError::Connector(FetchError::Unauthorized(_)),
                ..
            }
        )
    }
}

/// What the user should do about a failed window.
fn next_step(error: &WindowError) -> &'static str {
    use crate::runtime::wit::trawl::connector::http::Error as HttpError;
    match error {
        WindowError::Connector(
            FetchError::Unauthorized(_)
            | FetchError::InvalidParams(_)
            | FetchError::UnknownStream(_)
            | FetchError::Http(HttpError::Denied(_)),
        ) => "fix that, then run the same command again to resume from there",
        _ => "run the same command again to resume from there",
    }
}

/// A window for messages: `2024-09-01T05:00:00Z..2024-09-01T06:00:00Z`.
#[derive(Debug, Clone, Copy)]
pub struct DisplayWindow(pub Interval);

impl DisplayWindow {
    /// The window's start, as RFC 3339.
    pub fn start(&self) -> String {
        jiff::Timestamp::from_millisecond(self.0.start)
            .map(|time| time.to_string())
            .unwrap_or_else(|_| self.0.start.to_string())
    }
}

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

/// Ids of at least this last span before the watermark are remembered, in milliseconds, so that
/// an incremental run with an overlap up to this long repeats nothing, even when the runs before
/// it had no overlap.
const MIN_REMEMBER_MS: i64 = 3_600_000;

/// Windows are not split below this length, in milliseconds.
const MIN_SPLIT_MS: i64 = 1000;

/// When a connector declares no lookback, a first incremental run reaches this far back.
const FALLBACK_LOOKBACK_MS: i64 = 24 * 3_600_000;

fn millis(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// How often an incremental run's range ends: on whole quarter hours, or on whole windows of a
/// stream whose windows are shorter. A cron job every quarter hour then gets every record that is
/// complete (the stream's lag) in one window, whatever the longest window the vendor allows.
fn freshness_step(max_window: u64) -> i64 {
    const QUARTER_HOUR_MS: i64 = 15 * 60_000;
    match millis(max_window) {
        0 => QUARTER_HOUR_MS,
        max_window => max_window.min(QUARTER_HOUR_MS),
    }
}

/// `time` rounded down to a multiple of `step` (counted from the epoch); `step` 0 leaves it.
fn align_down(time: i64, step: i64) -> i64 {
    if step <= 0 {
        time
    } else {
        time - time.rem_euclid(step)
    }
}

fn time_location(field: &crate::runtime::wit::TimeField) -> TimeLocation {
    TimeLocation {
        path: field.path.clone(),
        encoding: field.format.into(),
    }
}

/// Pulls `request`'s range of `stream` into `output`, skipping what is already checkpointed for
/// this output and resuming windows an earlier run started.
pub async fn run_stream(
    context: &RunContext,
    stream: &StreamInfo,
    request: RangeRequest,
    output: &OutputSpec,
) -> Result<StreamSummary, RunError> {
    let state = &context.state;
    let scope = Scope {
        connector: context.identity.clone(),
        profile: context.profile.clone(),
        stream: stream.name.clone(),
        output: output.key(),
    };
    // One run at a time writes an output, whatever its state folder, and one at a time pulls a
    // stream into it (cron jobs can overlap): both held until this returns.
    let _output_lock = output.lock()?;
    let _lock = lock_scope(&state.staging_dir(&scope)).map_err(|error| match error {
        Some(source) => RunError::Staging {
            path: state.staging_dir(&scope),
            source,
        },
        None => RunError::Busy {
            stream: stream.name.clone(),
            output: output.location(),
        },
    })?;
    let completed = state.completed(&scope)?;
    // Without a checkpoint, an output another tool filled is continued after its newest record.
    let seed_boundary = match (&request, completed.is_empty(), &stream.time_field) {
        (RangeRequest::Incremental { .. }, true, Some(field)) => {
            let newest = output.newest(&time_location(field))?;
            if let Some(newest) = &newest {
                tracing::info!(stream = %stream.name, output = %output.location(),
                    newest = %DisplayWindow(Interval::new(newest.time, newest.time)).start(),
                    "no checkpoint for this output: continuing after its newest record");
            }
            newest
        }
        _ => None,
    };
    let overlap = millis(context.options.overlap.unwrap_or(stream.overlap));
    let lag = millis(context.options.lag.unwrap_or(stream.lag));
    let watermark = completed.last().map(|done| done.end);
    let (range, plan_against) = match request {
        RangeRequest::Explicit(range) => (range, completed.clone()),
        RangeRequest::Incremental { now } => {
            // Only whole windows: a window that ends in the future would be fetched half.
            let end = align_down(now.saturating_sub(lag), freshness_step(stream.max_window));
            match watermark {
                // Re-read the overlap: the vendor may have indexed events there since.
                Some(watermark) => {
                    let start = watermark.saturating_sub(overlap);
                    let reopened = subtract(&completed, Interval::new(start, watermark));
                    (Interval::new(start, end.max(start)), reopened)
                }
                None => {
                    let start = match &seed_boundary {
                        Some(newest) => newest.time,
                        None => {
                            let lookback = match millis(stream.default_lookback) {
                                0 => FALLBACK_LOOKBACK_MS,
                                lookback => lookback,
                            };
                            end.saturating_sub(lookback)
                        }
                    };
                    (Interval::new(start, end.max(start)), completed.clone())
                }
            }
        }
    };
    let progress = state.progress(&scope)?;
    let staging_dir = state.staging_dir(&scope);
    remove_orphaned_staging(&staging_dir, &progress);
    let density = SharedDensity::new(state.density(&scope)?);
    let planner = WindowPlanner::new(
        range,
        &plan_against,
        &progress,
        stream.max_window,
        density.clone(),
    );

    let positions = state.output_positions(&output.file_prefix())?;
    // Records this state folder does not account for: the output is new to it (the folder was
    // deleted, or another one wrote the file) or held someone else's content when it was first
    // written. A range run skips those it holds, read after an interrupted append is cut off.
    let foreign = positions.is_empty() || positions.values().any(|position| position.adopted);
    let sink = output.open(positions, &state.journal_dir())?;
    let written = match (&request, &stream.time_field) {
        (RangeRequest::Explicit(range), Some(field)) if foreign => {
            let written = output.written_between(&time_location(field), range.start, range.end)?;
            if !written.is_empty() {
                tracing::info!(stream = %stream.name, output = %output.location(),
                    records = written.len(),
                    "the output already holds records of this range that this state folder has \
                     no checkpoint for; the same records fetched again are not written twice");
            }
            written
        }
        _ => Written::default(),
    };
    let horizon = overlap.max(MIN_REMEMBER_MS);
    let encoder = sink.encoder();
    let committer = Committer {
        sink,
        state: state.clone(),
        scope: scope.clone(),
        seen: state
            .seen_ids(&scope)?
            .into_iter()
            .map(ids::remembered_by_an_older_trawl)
            .collect(),
        filter: context.options.filter.clone(),
        remaining: context.options.max_records,
        remember_after: range.end.max(watermark.unwrap_or(i64::MIN)) - horizon,
        horizon,
        watermark: watermark.unwrap_or(i64::MIN),
        sort_chunk_bytes: context.options.sort_chunk_bytes,
        scratch: staging_dir.clone(),
        seed_boundary,
        written,
        tally: Default::default(),
        pending: Vec::new(),
        pending_since: None,
        remembered_cap_reached: false,
    };
    // The page reader holds pages to the same limit while it reads them, before their records
    // are in memory.
    context
        .connector
        .limit_page_records(context.options.max_page_records);
    let shared = Arc::new(Shared {
        connector: context.connector.clone(),
        capabilities: context.capabilities.clone(),
        params: context.params.clone(),
        state: state.clone(),
        scope,
        staging_dir,
        max_pages: context.options.max_pages_per_window,
        max_page_records: context.options.max_page_records,
        max_page_bytes: context.options.max_page_bytes,
        unreadable_patience: context.options.unreadable_patience,
        unreadable_attempts: context.options.unreadable_attempts,
        encoder,
        stop: AtomicBool::new(false),
        pages: AtomicU64::new(0),
        windows_planned: AtomicUsize::new(0),
        density,
    });
    let mut run = StreamRun {
        stream: stream.name.clone(),
        shared,
        committer: Some(committer),
        summary: StreamSummary {
            range: Some(range),
            ..StreamSummary::default()
        },
        splits: 0,
    };
    let outcome = run.run(planner, context.options.workers.max(1)).await;
    run.summary.pages = run.shared.pages.load(Ordering::Relaxed);
    run.summary.windows_total = run.windows_total();
    // What the windows held sizes the next run's windows, however this one ended.
    state.save_density(&run.shared.scope, &run.shared.density.get())?;
    if let Some(committer) = &run.committer {
        run.summary.tally = committer.tally.clone();
    }
    outcome.map(|()| run.summary)
}

/// A stream's run in progress.
struct StreamRun {
    stream: String,
    shared: Arc<Shared>,
    /// Taken while a commit runs on a blocking thread.
    committer: Option<Committer>,
    summary: StreamSummary,
    /// Windows split in two because the vendor said they were too large.
    splits: usize,
}

/// A window being fetched by a worker.
type InFlight = (
    PlannedWindow,
    oneshot::Receiver<Result<Fetched, WindowError>>,
);

/// A window whose worker has finished.
type Settled = (PlannedWindow, Result<Fetched, WindowError>);

/// The most windows appended and not checkpointed yet: if the run dies, they are fetched again.
const MAX_PENDING: usize = 64;

/// How long an appended window may wait for its checkpoint, so that the windows after it share
/// the flush to disk: however fast windows come, the output and the state are flushed at most
/// about fifty times a second. Checkpointing whatever windows happened to be fetched together cost
/// a run with one worker an eighth of its CPU time.
const CHECKPOINT_LINGER: Duration = Duration::from_millis(20);

/// `first`, then the windows after it, in order, that are fetched already. A window after them
/// that is still being fetched is left in `held`; one that failed is returned, to be dealt with
/// after those before it are appended.
async fn gather_fetched(
    first: Fetched,
    held: &mut Option<InFlight>,
    receiver: &mut mpsc::Receiver<InFlight>,
) -> (Vec<Fetched>, Option<Settled>) {
    let mut group = vec![first];
    while group.len() < MAX_PENDING {
        let (next, mut answer) = match held.take() {
            Some(in_flight) => in_flight,
            None => match receiver.try_recv() {
                Ok(in_flight) => in_flight,
                Err(_) => break,
            },
        };
        let result = match answer.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {
                *held = Some((next, answer));
                break;
            }
            received => worker_outcome(received),
        };
        match result {
            Ok(fetched) => group.push(fetched),
            Err(error) => return (group, Some((next, Err(error)))),
        }
    }
    (group, None)
}

/// What the committer has to do next.
enum Next {
    /// The next window in order is fetched, or failed.
    Window(Settled),
    /// The windows appended so far are due for their checkpoint before that.
    CheckpointDue,
    /// Every window is dealt with.
    End,
}

/// Waits for the next window in order (`held`, else the next one sent), or for `deadline`.
async fn next_window(
    held: &mut Option<InFlight>,
    receiver: &mut mpsc::Receiver<InFlight>,
    deadline: Option<tokio::time::Instant>,
) -> Next {
    let (planned, mut answer) = match held.take() {
        Some(in_flight) => in_flight,
        None => match before(deadline, receiver.recv()).await {
            Some(Some(in_flight)) => in_flight,
            Some(None) => return Next::End,
            None => return Next::CheckpointDue,
        },
    };
    match before(deadline, &mut answer).await {
        Some(received) => Next::Window((planned, worker_outcome(received))),
        None => {
            *held = Some((planned, answer));
            Next::CheckpointDue
        }
    }
}

/// The output of `future`, or `None` if `deadline` came first (no deadline: wait for it).
async fn before<F: Future>(deadline: Option<tokio::time::Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

impl StreamRun {
    /// The windows handed to workers so far, and the extra ones splits made.
    fn windows_total(&self) -> usize {
        self.shared.windows_planned.load(Ordering::Relaxed) + self.splits
    }

    async fn run(&mut self, planner: WindowPlanner, workers: usize) -> Result<(), RunError> {
        // The channel's bound keeps workers from running too far ahead of the committer: staged
        // windows wait on disk, but there is no point fetching a year ahead of a stuck window.
        // Eight windows a worker, so that the workers go on fetching while the output is flushed
        // (at four they filled it and waited; measured again with checkpoints that linger, four
        // still cost 7% of a run's time with four workers).
        let (sender, mut receiver) = mpsc::channel::<InFlight>(workers * 8);
        let queue = Arc::new(Mutex::new(WindowQueue {
            planner,
            answers: sender,
        }));
        let worker_tasks: Vec<_> = (0..workers)
            .map(|_| tokio::spawn(work(self.shared.clone(), queue.clone())))
            .collect();
        drop(queue);
        let mut outcome = Ok(());
        // Once a window was stopped because another failed, later windows cannot be committed
        // (the output must stay in order); what is left is to find the failure that stopped it.
        let mut stopped = None;
        let mut held: Option<InFlight> = None;
        loop {
            let deadline = self.checkpoint_deadline();
            let (planned, result) = match next_window(&mut held, &mut receiver, deadline).await {
                Next::Window(settled) => settled,
                Next::CheckpointDue => {
                    if let Err(error) = self.checkpoint().await {
                        outcome = Err(error);
                        break;
                    }
                    continue;
                }
                Next::End => break,
            };
            match result {
                Err(WindowError::Stopped) => {
                    stopped.get_or_insert(planned.window);
                    continue;
                }
                Ok(_) if stopped.is_some() => continue,
                Ok(fetched) => {
                    let (group, failed) = gather_fetched(fetched, &mut held, &mut receiver).await;
                    if let Err(error) = self.commit(group).await {
                        outcome = Err(error);
                        break;
                    }
                    if let Some((planned, result)) = failed
                        && !self.summary.capped
                    {
                        if let Err(WindowError::Stopped) = result {
                            stopped.get_or_insert(planned.window);
                        } else if let Err(error) = self.settle(planned, result).await {
                            outcome = Err(error);
                            break;
                        }
                    }
                }
                result => {
                    if let Err(error) = self.settle(planned, result).await {
                        outcome = Err(error);
                        break;
                    }
                }
            }
            if self.summary.capped {
                break;
            }
        }
        // What was appended is checkpointed however the run ends, unless appending itself failed
        // (then the committer is gone, and what it appended is cut off when the output is next
        // opened).
        if let Err(error) = self.checkpoint().await {
            outcome = outcome.and(Err(error));
        }
        if let (Ok(()), Some(window)) = (&outcome, stopped)
            && !self.summary.capped
        {
            outcome = Err(RunError::Window {
                stream: self.stream.clone(),
                window: DisplayWindow(window),
                source: WindowError::Stopped,
                done: self.summary.windows_committed,
                total: self.windows_total(),
            });
        }
        // Stopping: workers finish the page in flight (its checkpoint stays valid) and return.
        self.shared.stop.store(true, Ordering::Relaxed);
        receiver.close();
        if let Some((_, answer)) = held {
            let _ = join(answer).await;
        }
        while let Some((_, answer)) = receiver.recv().await {
            let _ = join(answer).await;
        }
        for worker in worker_tasks {
            let _ = worker.await;
        }
        // A failed window stopped this stream's requests, not the next stream's.
        if let Some(http) = &self.shared.capabilities.http {
            http.accept_new_requests();
        }
        outcome
    }

    /// Commits a fetched window, or splits one the vendor said was too large, or fails the run.
    async fn settle(
        &mut self,
        planned: PlannedWindow,
        result: Result<Fetched, WindowError>,
    ) -> Result<(), RunError> {
        let window = planned.window;
        match result {
            Ok(fetched) => self.commit(vec![fetched]).await,
            Err(WindowError::Connector(FetchError::WindowTooLarge(reason)))
                if window.end - window.start >= 2 * MIN_SPLIT_MS =>
            {
                let reason = printable_excerpt(&reason, MESSAGE_EXCERPT);
                tracing::info!(stream = %self.stream, window = %DisplayWindow(window), %reason,
                    "window reached the vendor's result cap; splitting it");
                self.shared
                    .state
                    .drop_progress(&self.shared.scope, window)?;
                let _ =
                    std::fs::remove_file(staging::Staging::path(&self.shared.staging_dir, window));
                let pieces = plan::split(window, &self.shared.density.get(), MIN_SPLIT_MS);
                self.splits += pieces.len() - 1;
                let mut pieces = VecDeque::from(pieces);
                // The pieces come before every later window, so they are fetched here, in order.
                while let Some(piece) = pieces.pop_front() {
                    let planned = PlannedWindow {
                        window: piece,
                        resume: None,
                    };
                    let result = fetch::fetch_window(self.shared.clone(), planned.clone()).await;
                    Box::pin(self.settle(planned, result)).await?;
                    if self.summary.capped {
                        break;
                    }
                }
                Ok(())
            }
            Err(source) => Err(RunError::Window {
                stream: self.stream.clone(),
                window: DisplayWindow(window),
                source,
                done: self.summary.windows_committed,
                total: self.windows_total(),
            }),
        }
    }

    /// When the windows appended so far are due to be checkpointed, if any are.
    fn checkpoint_deadline(&self) -> Option<tokio::time::Instant> {
        checkpoint_due_at(self.committer.as_ref()?).map(tokio::time::Instant::from_std)
    }

    /// Appends consecutive fetched windows, off the async threads; checkpoints them and those
    /// appended before when that is due, or when the cap ended the run.
    async fn commit(&mut self, group: Vec<Fetched>) -> Result<(), RunError> {
        self.with_committer(move |committer| {
            let mut outcome = committer.append(group)?;
            let due = committer.pending.len() >= MAX_PENDING
                || checkpoint_due_at(committer).is_some_and(|at| at <= std::time::Instant::now());
            if outcome.capped || due {
                outcome.committed.extend(committer.checkpoint()?.committed);
            }
            Ok(outcome)
        })
        .await
    }

    /// Checkpoints the windows appended so far, if any.
    async fn checkpoint(&mut self) -> Result<(), RunError> {
        match &self.committer {
            Some(committer) if !committer.pending.is_empty() => {}
            _ => return Ok(()),
        }
        self.with_committer(Committer::checkpoint).await
    }

    /// Runs `work` on the committer off the async threads. A committer that failed is not used
    /// again: the output may hold part of what it was appending.
    async fn with_committer(
        &mut self,
        work: impl FnOnce(&mut Committer) -> Result<CommitOutcome, RunError> + Send + 'static,
    ) -> Result<(), RunError> {
        let mut committer = self
            .committer
            .take()
            .ok_or_else(|| RunError::Internal("the committer failed earlier".into()))?;
        let (committer, outcome, took) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let outcome = work(&mut committer);
            (committer, outcome, started.elapsed())
        })
        .await
        .map_err(|error| RunError::Internal(error.to_string()))?;
        let outcome = outcome?;
        self.committer = Some(committer);
        self.summary.windows_committed += outcome.committed.len();
        if let (Some(first), Some(last)) = (outcome.committed.first(), outcome.committed.last()) {
            tracing::debug!(stream = %self.stream, windows = outcome.committed.len(),
                span = %DisplayWindow(Interval::new(first.start, last.end)), ?took, "windows committed");
        }
        if outcome.capped {
            self.summary.capped = true;
        }
        Ok(())
    }
}

/// When the windows `committer` has appended and not checkpointed are due for their checkpoint,
/// if it has any.
fn checkpoint_due_at(committer: &Committer) -> Option<std::time::Instant> {
    committer
        .pending_since
        .map(|since| since + CHECKPOINT_LINGER)
}

/// The windows left to fetch, in time order, and where each one's answer is to be sent.
struct WindowQueue {
    planner: WindowPlanner,
    answers: mpsc::Sender<InFlight>,
}

/// A worker: takes the next window, fetches it, hands over its answer, and goes on with the next.
/// Workers take windows themselves, rather than a scheduler starting a task for each: that hop
/// between threads came between every two windows, a twentieth of each window's time with one
/// worker.
async fn work(shared: Arc<Shared>, queue: Arc<Mutex<WindowQueue>>) {
    loop {
        let (window, answer) = {
            // Held while the window's place in line is taken, so that windows are both started
            // and committed in time order; the committer's bound on that line stops the workers
            // from running too far ahead.
            let mut queue = queue.lock().await;
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(window) = queue.planner.next_window() else {
                return;
            };
            shared.windows_planned.fetch_add(1, Ordering::Relaxed);
            let (answer, answered) = oneshot::channel();
            if queue
                .answers
                .send((window.clone(), answered))
                .await
                .is_err()
            {
                return;
            }
            (window, answer)
        };
        let result = AssertUnwindSafe(fetch::fetch_window(shared.clone(), window))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(WindowError::Internal(panic_message(&*panic))));
        let result = match result {
            // A failed window fails the run: no new window should start, and no request waiting
            // for its turn should go out (with a refused token, each would only be refused
            // again). A window failing after that failed because of it, or is not the failure to
            // report.
            Err(error) if !error.is_split_request() => {
                if shared.stop.swap(true, Ordering::Relaxed) {
                    Err(WindowError::Stopped)
                } else {
                    if let Some(http) = &shared.capabilities.http {
                        http.refuse_new_requests();
                    }
                    Err(error)
                }
            }
            result => result,
        };
        let _ = answer.send(result);
    }
}

/// What a worker that panicked said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("a worker failed: {message}")
}

/// A window's answer, from the worker that fetched it.
async fn join(
    answer: oneshot::Receiver<Result<Fetched, WindowError>>,
) -> Result<Fetched, WindowError> {
    worker_outcome(answer.await)
}

/// A window's answer; an error in its place when its worker went away without answering.
fn worker_outcome<E>(
    received: Result<Result<Fetched, WindowError>, E>,
) -> Result<Fetched, WindowError> {
    received.unwrap_or_else(|_| {
        Err(WindowError::Internal(
            "a worker stopped without finishing its window".into(),
        ))
    })
}

/// Takes the lock of a scope (a file next to its staging folder), or `Err(None)` when another
/// process holds it. The lock goes when the file is dropped, or when the process dies.
fn lock_scope(staging_dir: &std::path::Path) -> Result<std::fs::File, Option<std::io::Error>> {
    if let Some(parent) = staging_dir.parent() {
        std::fs::create_dir_all(parent).map_err(Some)?;
    }
    match crate::files::try_lock_file(&staging_dir.with_extension("lock")) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(None),
        Err(error) => Err(Some(error)),
    }
}

/// Staging files no checkpoint refers to are leftovers of windows already committed; folders are
/// sorted runs of a run that was killed while it sorted a window.
fn remove_orphaned_staging(dir: &std::path::Path, progress: &[WindowProgress]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let wanted: Vec<PathBuf> = progress
        .iter()
        .map(|progress| staging::Staging::path(dir, progress.window))
        .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        } else if path.is_file() && !wanted.contains(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// How much of a connector's id or cursor an error message quotes.
const ID_EXCERPT: usize = 256;
/// How much of a connector's error message an error message quotes.
const MESSAGE_EXCERPT: usize = 4 << 10;

fn describe_fetch_error(error: &FetchError) -> String {
    use crate::runtime::wit::trawl::connector::http::Error as HttpError;
    match error {
        FetchError::Http(HttpError::Denied(message)) => format!("request denied: {message}"),
        FetchError::Http(HttpError::Timeout) => "the vendor did not answer in time (`limits: (http_timeout_seconds: ...)` in the config)".into(),
        FetchError::Http(HttpError::TooLarge(limit)) => format!(
            "the vendor's response was larger than the {} MiB limit (`limits: (max_body_mib: ...)` in the config)",
            limit >> 20
        ),
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

    #[test]
    fn a_worker_that_panicked_is_reported_with_its_message() {
        fn caught(work: impl FnOnce() + std::panic::UnwindSafe) -> Box<dyn std::any::Any + Send> {
            std::panic::catch_unwind(work).unwrap_err()
        }
        assert_eq!(
            panic_message(&*caught(|| panic!("index out of bounds"))),
            "a worker failed: index out of bounds"
        );
        let window = 7;
        assert_eq!(
            panic_message(&*caught(move || panic!("window {window}"))),
            "a worker failed: window 7"
        );
    }

    #[test]
    fn one_run_at_a_time_per_scope() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging").join("abc");
        let held = lock_scope(&staging).unwrap();
        assert!(matches!(lock_scope(&staging), Err(None)));
        drop(held);
        assert!(lock_scope(&staging).is_ok());
    }

    #[test]
    fn incremental_ends_are_whole_windows() {
        const QUARTER: i64 = 15 * 60_000;
        assert_eq!(align_down(7 * QUARTER + 5, QUARTER), 7 * QUARTER);
        assert_eq!(align_down(7 * QUARTER, QUARTER), 7 * QUARTER);
        assert_eq!(align_down(12_345, 0), 12_345);
        assert_eq!(align_down(-5, 10), -10);
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
