//! Moving fetched windows to the output, in order, and checkpointing them.
//!
//! Windows are appended as they come, and checkpointed together later: the output is synced once
//! and all the windows appended since the last checkpoint are checkpointed in one transaction. A
//! flush to disk costs the same for one window as for fifty, and with many small windows (an
//! hour of events each) those flushes were most of a run's time. The engine decides when a
//! checkpoint is due.

use super::RunError;
use super::fetch::Fetched;
use super::filter::RecordFilter;
use super::ids::{self, MAX_REMEMBERED_IDS};
use super::order::{self, Runs, Sorted};
use super::staging::StagedRecord;
use crate::sinks::{Newest, OutputRecord, Prepared, Sink, Written, flatten};
use crate::state::{Interval, Scope, StateStore, WindowCommit};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Records handed to the sink at a time.
const BATCH: usize = 2048;

/// The one place records reach the output, in window order.
pub(super) struct Committer {
    pub sink: Box<dyn Sink>,
    pub state: StateStore,
    pub scope: Scope,
    /// Ids remembered from earlier runs' overlap (and this run's commits).
    pub seen: HashSet<String>,
    pub filter: RecordFilter,
    /// Records still allowed by the cap.
    pub remaining: Option<u64>,
    /// Ids of records in windows ending after this are remembered: the span a later incremental
    /// run may read again.
    pub remember_after: i64,
    /// How far back from the watermark remembered ids are kept, in milliseconds.
    pub horizon: i64,
    /// The end of the latest completed span.
    pub watermark: i64,
    pub sort_chunk_bytes: usize,
    pub scratch: PathBuf,
    pub tally: Tally,
    /// The newest records of an output another tool wrote, which the first run fetches again.
    pub seed_boundary: Option<Newest>,
    /// Records the output held before this run that this state has no checkpoint for, in the
    /// run's range: fetched again, they are not written twice.
    pub written: Written,
    /// Windows appended to the output and not checkpointed yet, oldest first.
    pub pending: Vec<Appended>,
    /// When the oldest of them was appended.
    pub pending_since: Option<Instant>,
    /// Whether a window had more ids to remember than [`MAX_REMEMBERED_IDS`] left room for.
    pub remembered_cap_reached: bool,
}

/// Counts for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub duplicates: u64,
    pub filtered: u64,
}

/// What appending windows, or checkpointing them, did.
#[derive(Debug, Default)]
pub(super) struct CommitOutcome {
    /// The windows checkpointed, in order.
    pub committed: Vec<Interval>,
    /// The record cap was reached; the windows after the last one appended were left as they are.
    pub capped: bool,
}

/// A window whose records are appended but not yet checkpointed.
pub(super) struct Appended {
    planned: Interval,
    completed: Interval,
    remember: Vec<String>,
    forget_before: i64,
    staging: Option<PathBuf>,
}

/// The outcome of choosing which of a window's records go out.
#[derive(Default)]
struct Selection {
    kept: u64,
    /// The ids of the records kept, when they may need remembering (a window near the end of
    /// the range, or under a cap): a big backfill window does not hold its ids in memory.
    kept_ids: Vec<String>,
    duplicates: u64,
    filtered: u64,
    /// The event time of the first record the cap kept out.
    cut_at: Option<i64>,
}

/// What happens to one record.
enum Choice {
    Keep,
    Duplicate,
    Filtered,
    /// The cap is reached: this record and every later one stay out.
    Cut,
}

impl Committer {
    /// Appends the records of `group` (consecutive windows, in order, after those appended
    /// before) that pass dedup, the filter and the cap. They are checkpointed by a later
    /// [`checkpoint`](Self::checkpoint), or now when the sink needs that before it can go on.
    ///
    /// If this fails, the windows not checkpointed yet stay as they were: their staging and
    /// progress are kept, and what was appended for them is past the output's checkpointed
    /// position, so it is cut off when the output is next opened.
    pub fn append(&mut self, group: Vec<Fetched>) -> Result<CommitOutcome, RunError> {
        let mut outcome = CommitOutcome::default();
        for fetched in group {
            if self.remaining == Some(0) {
                outcome.capped = true;
                break;
            }
            let window = self.append_window(fetched, &mut outcome)?;
            let cut = window.completed != window.planned;
            self.pending.push(window);
            self.pending_since.get_or_insert_with(Instant::now);
            if cut || self.remaining == Some(0) {
                outcome.capped = true;
                break;
            }
        }
        Ok(outcome)
    }

    /// Makes the output durable and checkpoints the windows appended since the last checkpoint
    /// with its new positions, in one transaction; then their staging files go.
    pub fn checkpoint(&mut self) -> Result<CommitOutcome, RunError> {
        let mut outcome = CommitOutcome::default();
        self.checkpoint_into(&mut outcome)?;
        Ok(outcome)
    }

    /// Sorts a window's records and appends those that go out: first every batch is prepared (a
    /// CSV header must be widened for the whole window while the file holds no row of it), then
    /// every batch is appended.
    fn append_window(
        &mut self,
        fetched: Fetched,
        outcome: &mut CommitOutcome,
    ) -> Result<Appended, RunError> {
        let staging_error = |source| RunError::Staging {
            path: fetched
                .staging
                .clone()
                .unwrap_or_else(|| self.scratch.clone()),
            source,
        };
        let sorted = order::sort(
            fetched.staging.as_deref().unwrap_or(Path::new("")),
            fetched.staged_len,
            fetched.last_page,
            self.sort_chunk_bytes,
            &self.scratch,
        )
        .map_err(staging_error)?;
        let collect_ids = fetched.window.end > self.remember_after || self.remaining.is_some();
        let selection = match sorted {
            Sorted::InMemory(mut kept) => {
                let mut selection = Selection::default();
                let mut remaining = self.remaining;
                // In place: when every record goes out, as most do, none is moved.
                kept.retain(|record| {
                    if selection.cut_at.is_some() {
                        return false;
                    }
                    match self.choose(record, &mut remaining) {
                        Choice::Keep => return true,
                        Choice::Duplicate => selection.duplicates += 1,
                        Choice::Filtered => selection.filtered += 1,
                        Choice::Cut => selection.cut_at = Some(record.event_time),
                    }
                    false
                });
                for batch in kept.chunks(BATCH) {
                    self.prepare(batch, outcome)?;
                }
                for batch in kept.chunks(BATCH) {
                    self.sink.append(batch)?;
                }
                selection.kept = kept.len() as u64;
                if collect_ids {
                    selection.kept_ids = kept.into_iter().map(|record| record.id).collect();
                }
                selection
            }
            Sorted::OnDisk(runs) => {
                // Two passes over the same deterministic selection, as above, reading the runs
                // twice instead of holding the window in memory.
                self.select_from_disk(&runs, collect_ids, |this, batch| {
                    this.prepare(batch, outcome)
                })
                .map_err(|error| error.into_run_error(&self.scratch))?;
                self.select_from_disk(&runs, false, |this, batch| Ok(this.sink.append(batch)?))
                    .map_err(|error| error.into_run_error(&self.scratch))?
            }
        };

        let planned = fetched.window;
        let completed = match selection.cut_at {
            Some(cut) => Interval::new(planned.start, cut.clamp(planned.start, planned.end)),
            None => planned,
        };
        self.watermark = self.watermark.max(completed.end);
        // Ids are remembered where a later run may read the same span again: the overlap, and
        // the rest of a window the cap cut short.
        let remember = if completed.end > self.remember_after || selection.cut_at.is_some() {
            self.within_remembered_cap(selection.kept_ids)
        } else {
            Vec::new()
        };
        self.seen.extend(remember.iter().cloned());
        self.tally.records += selection.kept;
        self.tally.duplicates += selection.duplicates;
        self.tally.filtered += selection.filtered;
        if let Some(remaining) = &mut self.remaining {
            *remaining -= selection.kept;
        }
        Ok(Appended {
            planned,
            completed,
            remember,
            forget_before: self.watermark - self.horizon,
            staging: fetched.staging,
        })
    }

    /// `ids` (in event-time order) less those past [`MAX_REMEMBERED_IDS`] for the stream: the
    /// newest are kept, being nearest the watermark, where a later run's overlap is read again.
    /// When ids are dropped, one line says that deduplication of the overlap is incomplete and
    /// how to mend it.
    fn within_remembered_cap(&mut self, ids: Vec<String>) -> Vec<String> {
        let (ids, dropped) = ids::newest_within(ids, self.seen.len(), MAX_REMEMBERED_IDS);
        if dropped > 0 && !self.remembered_cap_reached {
            self.remembered_cap_reached = true;
            tracing::warn!(
                stream = %self.scope.stream,
                "more than {MAX_REMEMBERED_IDS} record ids to remember for the overlap; the \
                 oldest are not remembered, so a later run may write those records again (a \
                 shorter `overlap` remembers fewer)"
            );
        }
        ids
    }

    /// Hands `batch` to the sink's `prepare`, recording the positions it returns; when the sink
    /// needs the windows appended so far checkpointed first, checkpoints them and asks again.
    fn prepare(
        &mut self,
        batch: &[OutputRecord],
        outcome: &mut CommitOutcome,
    ) -> Result<(), RunError> {
        for _ in 0..2 {
            match self.sink.prepare(batch)? {
                Prepared::Ready(positions) => {
                    if !positions.is_empty() {
                        self.state.record_outputs(&positions)?;
                    }
                    return Ok(());
                }
                Prepared::CheckpointFirst => self.checkpoint_into(outcome)?,
            }
        }
        Err(RunError::Internal(
            "the output asked for a checkpoint again right after one".into(),
        ))
    }

    fn checkpoint_into(&mut self, outcome: &mut CommitOutcome) -> Result<(), RunError> {
        let outputs = self.sink.sync()?;
        let commits: Vec<WindowCommit<'_>> = self
            .pending
            .iter()
            .map(|window| WindowCommit {
                planned: window.planned,
                completed: window.completed,
                remember: &window.remember,
                remember_until: window.completed.end,
                forget_before: Some(window.forget_before),
            })
            .collect();
        self.state.commit_windows(&self.scope, &commits, &outputs)?;
        self.pending_since = None;
        for window in self.pending.drain(..) {
            if let Some(staging) = &window.staging {
                let _ = std::fs::remove_file(staging);
            }
            outcome.committed.push(window.planned);
        }
        Ok(())
    }

    /// Whether `record` goes out, given the cap's `remaining` (counted down for each record kept).
    /// Deterministic, so that passes over the same records choose the same ones.
    fn choose(&self, record: &OutputRecord, remaining: &mut Option<u64>) -> Choice {
        if self.seen.contains(&record.id)
            || self.is_seed_record(record)
            || self.written.contains(record.event_time, &record.json)
        {
            return Choice::Duplicate;
        }
        if !self.filter.matches(&record.json) {
            return Choice::Filtered;
        }
        match remaining {
            Some(0) => Choice::Cut,
            Some(left) => {
                *left -= 1;
                Choice::Keep
            }
            None => Choice::Keep,
        }
    }

    fn is_seed_record(&self, record: &StagedRecord) -> bool {
        let Some(boundary) = &self.seed_boundary else {
            return false;
        };
        if record.event_time != boundary.time {
            return false;
        }
        match serde_json::from_str(&record.json) {
            Ok(serde_json::Value::Object(object)) => {
                boundary.contains(&flatten(&object).into_iter().collect())
            }
            _ => false,
        }
    }

    /// Walks a window's sorted runs, handing batches of the records that go out to `each`.
    fn select_from_disk(
        &mut self,
        runs: &Runs,
        collect_ids: bool,
        mut each: impl FnMut(&mut Self, &[OutputRecord]) -> Result<(), RunError>,
    ) -> Result<Selection, DiskError> {
        let mut selection = Selection::default();
        let mut remaining = self.remaining;
        let mut batch: Vec<OutputRecord> = Vec::with_capacity(BATCH);
        for record in runs.iter().map_err(DiskError::Read)? {
            let record = record.map_err(DiskError::Read)?;
            match self.choose(&record, &mut remaining) {
                Choice::Keep => {}
                Choice::Duplicate => {
                    selection.duplicates += 1;
                    continue;
                }
                Choice::Filtered => {
                    selection.filtered += 1;
                    continue;
                }
                Choice::Cut => {
                    selection.cut_at = Some(record.event_time);
                    break;
                }
            }
            selection.kept += 1;
            if collect_ids {
                selection.kept_ids.push(record.id.clone());
            }
            batch.push(record);
            if batch.len() == BATCH {
                each(self, &batch).map_err(DiskError::Run)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            each(self, &batch).map_err(DiskError::Run)?;
        }
        Ok(selection)
    }
}

/// A failure while walking sorted runs: reading them, or what was done with their records.
enum DiskError {
    Read(std::io::Error),
    Run(RunError),
}

impl DiskError {
    /// `scratch` is the folder the runs are in.
    fn into_run_error(self, scratch: &Path) -> RunError {
        match self {
            DiskError::Read(source) => RunError::Staging {
                path: scratch.to_path_buf(),
                source,
            },
            DiskError::Run(error) => error,
        }
    }
}
