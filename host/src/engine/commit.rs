//! Moving a fully staged window to the output, in order, and checkpointing it.

use super::RunError;
use super::fetch::Fetched;
use super::filter::RecordFilter;
use super::order::{self, Sorted};
use super::staging::StagedRecord;
use crate::sinks::{Newest, OutputRecord, Sink, SinkError, flatten};
use crate::state::{Interval, Scope, StateStore, WindowCommit};
use std::collections::HashSet;
use std::path::PathBuf;

/// Records handed to the sink at a time.
const BATCH: usize = 2048;

/// What happened to a window at commit.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Committed {
    /// Every record of the window is in the output.
    Whole,
    /// The record cap was reached inside (or before) this window.
    CapReached,
}

/// The one place records reach the output, a window at a time, in window order.
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
}

/// Counts for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub duplicates: u64,
    pub filtered: u64,
}

/// The outcome of choosing which of a window's records go out.
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

impl Committer {
    /// Sorts the window's staged records and appends those that pass dedup, the filter and the
    /// cap; then checkpoints the window with the output's new positions and drops its staging.
    pub fn commit(&mut self, fetched: &Fetched) -> Result<Committed, RunError> {
        if self.remaining == Some(0) {
            return Ok(Committed::CapReached);
        }
        let sorted = order::sort(
            &fetched.staging,
            fetched.staged_len,
            &fetched.last_page,
            self.sort_chunk_bytes,
            &self.scratch,
        )
        .map_err(|source| RunError::Staging {
            path: fetched.staging.clone(),
            source,
        })?;
        // Two passes over the same selection: a CSV header must be widened for the whole window
        // while the file still holds only checkpointed rows, before any of its rows go in.
        let selection = self.select(&sorted, fetched, |sink, batch| {
            let rewritten = sink.prepare(batch)?;
            Ok(rewritten)
        })?;
        self.select(&sorted, fetched, |sink, batch| {
            sink.append(batch)?;
            Ok(Vec::new())
        })?;
        let outputs = self.sink.sync()?;

        let planned = fetched.window;
        let completed = match selection.cut_at {
            Some(cut) => Interval::new(planned.start, cut.clamp(planned.start, planned.end)),
            None => planned,
        };
        self.watermark = self.watermark.max(completed.end);
        // Ids are remembered where a later run may read the same span again: the overlap, and
        // the rest of a window the cap cut short.
        let remember: &[String] =
            if completed.end > self.remember_after || selection.cut_at.is_some() {
                &selection.kept_ids
            } else {
                &[]
            };
        self.state.commit_window(
            &self.scope,
            &WindowCommit {
                planned,
                completed,
                outputs: &outputs,
                remember,
                remember_until: completed.end,
                forget_before: Some(self.watermark - self.horizon),
            },
        )?;
        self.seen.extend(remember.iter().cloned());
        let _ = std::fs::remove_file(&fetched.staging);

        let kept = selection.kept;
        self.tally.records += kept;
        self.tally.duplicates += selection.duplicates;
        self.tally.filtered += selection.filtered;
        if let Some(remaining) = &mut self.remaining {
            *remaining -= kept;
        }
        Ok(match selection.cut_at {
            Some(_) => Committed::CapReached,
            None if self.remaining == Some(0) => Committed::CapReached,
            None => Committed::Whole,
        })
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

    /// Walks the window's records in order, handing batches of those that go out to `each`.
    /// Deterministic, so both passes choose the same records. Positions `each` returns (a
    /// rewritten file) are recorded at once.
    fn select(
        &mut self,
        sorted: &Sorted,
        fetched: &Fetched,
        mut each: impl FnMut(
            &mut dyn Sink,
            &[OutputRecord],
        ) -> Result<Vec<crate::state::OutputPosition>, SinkError>,
    ) -> Result<Selection, RunError> {
        let mut selection = Selection {
            kept: 0,
            kept_ids: Vec::new(),
            duplicates: 0,
            filtered: 0,
            cut_at: None,
        };
        let mut remaining = self.remaining;
        let collect_ids = fetched.window.end > self.remember_after || self.remaining.is_some();
        let mut batch: Vec<OutputRecord> = Vec::with_capacity(BATCH);
        let staging_error = |source| RunError::Staging {
            path: fetched.staging.clone(),
            source,
        };
        let mut flush = |batch: &mut Vec<OutputRecord>, this: &mut Self| -> Result<(), RunError> {
            if !batch.is_empty() {
                let rewritten = each(this.sink.as_mut(), batch)?;
                if !rewritten.is_empty() {
                    this.state.record_outputs(&rewritten)?;
                }
                batch.clear();
            }
            Ok(())
        };
        for record in sorted.iter().map_err(staging_error)? {
            let record = record.map_err(staging_error)?;
            if self.seen.contains(&record.id) || self.is_seed_record(&record) {
                selection.duplicates += 1;
                continue;
            }
            if !self.filter.matches(&record.json) {
                selection.filtered += 1;
                continue;
            }
            if remaining == Some(0) {
                selection.cut_at = Some(record.event_time);
                break;
            }
            if let Some(left) = &mut remaining {
                *left -= 1;
            }
            selection.kept += 1;
            if collect_ids {
                selection.kept_ids.push(record.id.clone());
            }
            batch.push(OutputRecord {
                id: record.id,
                event_time: record.event_time,
                fetched_at: record.fetched_at,
                json: record.json,
            });
            if batch.len() == BATCH {
                flush(&mut batch, self)?;
            }
        }
        flush(&mut batch, self)?;
        Ok(selection)
    }
}
