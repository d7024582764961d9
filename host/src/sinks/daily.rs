//! Per-day JSON Lines files: each record goes to `<directory>/<base_name>_<YYYY-MM-DD>.<extension>`
//! by the UTC date of its event time, the layout of the Yandex 360 seed script
//! (`mail_audit_2025-04-23.log`).
//!
//! Every file has its own position in the state store, loaded the first time this run writes to
//! it and recovered the same way as a single JSON Lines file (see [`LineFile::open`]).
//!
//! The seed wrote each record with Python's `json.dumps`, whose separators are `", "` and `": "`;
//! trawl writes the vendor's JSON text as it was received, which is compact
//! (`{"eventType":"message_receive","date":...}`). Both are valid JSON Lines and consumers parse
//! the JSON, so a file the seed started can be continued by trawl: only the spacing of its lines
//! differs.

use super::jsonl::{LineFile, create_dir_durably};
use super::{Committed, OutputRecord, Prepared, Sink, SinkError, absolute_key};
use crate::state::OutputPosition;
use jiff::civil::Date;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// At most this many day files are kept open; the least recently used is closed first.
const MAX_OPEN_FILES: usize = 8;

/// The name of the file for `day` (a date, or `*` for the pattern of them all).
pub(super) fn day_file_name(base_name: &str, day: &str, extension: &str) -> String {
    if extension.is_empty() {
        format!("{base_name}_{day}")
    } else {
        format!("{base_name}_{day}.{extension}")
    }
}

/// The UTC date of an event time in milliseconds.
fn utc_date(record: &OutputRecord) -> Result<Date, SinkError> {
    let time =
        jiff::Timestamp::from_millisecond(record.event_time).map_err(|_| SinkError::EventTime {
            id: record.id.clone(),
            event_time: record.event_time,
        })?;
    Ok(jiff::tz::Offset::UTC.to_datetime(time).date())
}

/// Appends records to per-day JSON Lines files.
pub struct DailySink {
    directory: PathBuf,
    base_name: String,
    extension: String,
    /// Positions of the day files not opened yet in this run.
    committed: Committed,
    /// Every day file this run has opened, open or closed.
    files: HashMap<Date, LineFile>,
    /// The days whose files are open, least recently used first.
    open: Vec<Date>,
    /// Days written to since the last sync.
    touched: BTreeSet<Date>,
    /// Where appends to the day files are noted until they are checkpointed.
    journals: PathBuf,
}

impl DailySink {
    /// Creates `directory` if needed. Day files are opened when a record first goes to them;
    /// `committed` holds the positions of the ones trawl wrote before, by absolute path.
    pub fn open(
        directory: &Path,
        base_name: &str,
        extension: &str,
        committed: Committed,
        journals: &Path,
    ) -> Result<Self, SinkError> {
        create_dir_durably(directory).map_err(|source| SinkError::Io {
            path: directory.to_path_buf(),
            source,
        })?;
        Ok(DailySink {
            directory: directory.to_path_buf(),
            base_name: base_name.to_string(),
            extension: extension.to_string(),
            committed,
            files: HashMap::new(),
            open: Vec::new(),
            touched: BTreeSet::new(),
            journals: journals.to_path_buf(),
        })
    }

    fn path(&self, day: Date) -> PathBuf {
        self.directory.join(day_file_name(
            &self.base_name,
            &day.to_string(),
            &self.extension,
        ))
    }

    /// The file for `day`, open: opened (and recovered) the first time, reopened if it was closed.
    /// Closes the least recently used file beyond [`MAX_OPEN_FILES`] (fsynced first; its pending
    /// lines stay in memory).
    fn file(&mut self, day: Date) -> Result<&mut LineFile, SinkError> {
        if let Some(at) = self.open.iter().position(|open| *open == day) {
            self.open.remove(at);
        } else {
            while self.open.len() >= MAX_OPEN_FILES {
                let oldest = self.open.remove(0);
                if let Some(file) = self.files.get_mut(&oldest) {
                    file.close()?;
                }
            }
            match self.files.get_mut(&day) {
                Some(file) => {
                    file.handle()?;
                }
                None => {
                    let path = self.path(day);
                    let committed = self.committed.remove(&absolute_key(&path));
                    self.files.insert(
                        day,
                        LineFile::open(&path, committed.as_ref(), &self.journals)?,
                    );
                }
            }
        }
        self.open.push(day);
        Ok(self.files.get_mut(&day).expect("opened above"))
    }
}

impl Sink for DailySink {
    /// Opens the batch's day files, recovering them if needed, and returns the positions of the
    /// ones the state store has none for yet (see [`LineFile::claim`]).
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Prepared, SinkError> {
        let days = batch
            .iter()
            .map(utc_date)
            .collect::<Result<BTreeSet<Date>, _>>()?;
        let mut claimed = Vec::new();
        for day in days {
            claimed.extend(self.file(day)?.claim()?);
        }
        Ok(Prepared::Ready(claimed))
    }

    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError> {
        for record in batch {
            let day = utc_date(record)?;
            self.file(day)?.push(record)?;
            self.touched.insert(day);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError> {
        let mut positions = Vec::new();
        for day in std::mem::take(&mut self.touched) {
            positions.push(self.file(day)?.sync()?);
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::super::jsonl::tests::{committed, record, write};
    use super::*;
    use crate::sinks::test_journals;

    /// Milliseconds since the epoch of a UTC time.
    fn at(time: &str) -> i64 {
        time.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn records_go_to_the_file_of_their_utc_day() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        let mut sink =
            DailySink::open(&out, "mail_audit", "log", Committed::new(), test_journals()).unwrap();
        let positions = write(
            &mut sink,
            &[
                record(
                    "1",
                    at("2025-04-22T23:59:59.999Z"),
                    r#"{"eventType":"message_receive","date":"2025-04-22T23:59:59.999Z"}"#,
                ),
                record(
                    "2",
                    at("2025-04-23T00:00:00.000Z"),
                    r#"{"eventType":"message_seen","date":"2025-04-23T00:00:00.000Z"}"#,
                ),
                record(
                    "3",
                    at("2025-04-23T04:59:35.118Z"),
                    r#"{"date": "2025-04-23T04:59:35.118Z"}"#,
                ),
                record(
                    "4",
                    at("2025-04-24T02:00:00+03:00"),
                    r#"{"date":"2025-04-23T23:00:00Z"}"#,
                ),
                record("5", at("2025-04-25T00:00:00Z"), r#"{"date":"2025-04-25"}"#),
            ],
        );
        assert_eq!(
            files(&out),
            [
                "mail_audit_2025-04-22.log",
                "mail_audit_2025-04-23.log",
                "mail_audit_2025-04-25.log"
            ]
        );
        assert_eq!(
            read(&out, "mail_audit_2025-04-22.log"),
            "{\"eventType\":\"message_receive\",\"date\":\"2025-04-22T23:59:59.999Z\"}\n"
        );
        assert_eq!(
            read(&out, "mail_audit_2025-04-23.log"),
            "{\"eventType\":\"message_seen\",\"date\":\"2025-04-23T00:00:00.000Z\"}\n\
             {\"date\": \"2025-04-23T04:59:35.118Z\"}\n\
             {\"date\":\"2025-04-23T23:00:00Z\"}\n"
        );
        assert_eq!(
            read(&out, "mail_audit_2025-04-25.log"),
            "{\"date\":\"2025-04-25\"}\n"
        );
        // Three claims by prepare (all at 0), then three positions from sync, in day order.
        assert_eq!(positions.len(), 6);
        assert!(positions[..3].iter().all(|position| position.len == 0));
        for position in &positions[3..] {
            assert_eq!(
                position.len,
                std::fs::metadata(&position.output).unwrap().len()
            );
            assert!(position.output.starts_with(&absolute_key(&out)));
        }
    }

    #[test]
    fn sync_reports_only_the_files_written_since_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DailySink::open(
            dir.path(),
            "disk",
            "jsonl",
            Committed::new(),
            test_journals(),
        )
        .unwrap();
        write(
            &mut sink,
            &[
                record("1", at("2025-06-09T08:00:00Z"), r#"{"id":1}"#),
                record("2", at("2025-06-10T08:00:00Z"), r#"{"id":2}"#),
            ],
        );
        let positions = write(
            &mut sink,
            &[record("3", at("2025-06-10T09:00:00Z"), r#"{"id":3}"#)],
        );
        assert_eq!(positions.len(), 1);
        assert_eq!(
            positions[0].output,
            absolute_key(&dir.path().join("disk_2025-06-10.jsonl"))
        );
        assert_eq!(positions[0].len, 18);
        assert!(sink.sync().unwrap().is_empty());
    }

    #[test]
    fn a_crash_is_cut_back_per_file_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let day = |name: &str| format!("audit_{name}.log");
        let mut sink =
            DailySink::open(out, "audit", "log", Committed::new(), test_journals()).unwrap();
        let mut recorded = write(
            &mut sink,
            &[
                record("1", at("2025-04-22T10:00:00Z"), r#"{"id":1}"#),
                record("2", at("2025-04-23T10:00:00Z"), r#"{"id":2}"#),
            ],
        );
        // The next window: 04-23 and a new 04-24 file are written, but the run stops before the
        // checkpoint.
        let batch = [
            record("3", at("2025-04-23T11:00:00Z"), r#"{"id":3}"#),
            record("4", at("2025-04-24T11:00:00Z"), r#"{"id":4}"#),
        ];
        recorded.extend(sink.prepare(&batch).unwrap().ready());
        sink.append(&batch).unwrap();
        sink.sync().unwrap();
        drop(sink);
        // A day file no run of this output wrote, which must be left alone.
        std::fs::write(out.join(day("2025-04-25")), "{\"seed\":1}").unwrap();

        let mut sink =
            DailySink::open(out, "audit", "log", committed(recorded), test_journals()).unwrap();
        let batch = [
            record("3", at("2025-04-23T11:00:00Z"), r#"{"id":3}"#),
            record("4", at("2025-04-24T11:00:00Z"), r#"{"id":4}"#),
            record("5", at("2025-04-22T12:00:00Z"), r#"{"id":5}"#),
            record("6", at("2025-04-25T12:00:00Z"), r#"{"id":6}"#),
        ];
        let positions = write(&mut sink, &batch);
        assert_eq!(read(out, &day("2025-04-22")), "{\"id\":1}\n{\"id\":5}\n");
        assert_eq!(read(out, &day("2025-04-23")), "{\"id\":2}\n{\"id\":3}\n");
        assert_eq!(read(out, &day("2025-04-24")), "{\"id\":4}\n");
        assert_eq!(read(out, &day("2025-04-25")), "{\"seed\":1}\n{\"id\":6}\n");
        // Only the file without a position is claimed, after its line was ended.
        assert_eq!(positions[0].len, 11);
        assert!(positions[0].output.ends_with(&day("2025-04-25")));
        for position in &positions[1..] {
            assert_eq!(
                position.len,
                std::fs::metadata(&position.output).unwrap().len()
            );
        }
    }

    #[test]
    fn a_reopen_with_positions_for_only_some_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut sink =
            DailySink::open(out, "audit", "log", Committed::new(), test_journals()).unwrap();
        let first = write(
            &mut sink,
            &[
                record("1", at("2025-04-22T10:00:00Z"), r#"{"id":1}"#),
                record("2", at("2025-04-23T10:00:00Z"), r#"{"id":2}"#),
            ],
        );
        // Uncommitted lines in both files.
        write(
            &mut sink,
            &[
                record("3", at("2025-04-22T11:00:00Z"), r#"{"id":3}"#),
                record("4", at("2025-04-23T11:00:00Z"), r#"{"id":4}"#),
            ],
        );
        drop(sink);
        // Only 04-22's position survived: 04-23 is taken as a file trawl never wrote.
        let only_22: Vec<OutputPosition> = first
            .into_iter()
            .filter(|position| position.output.ends_with("2025-04-22.log"))
            .collect();
        let mut sink =
            DailySink::open(out, "audit", "log", committed(only_22), test_journals()).unwrap();
        write(
            &mut sink,
            &[
                record("3", at("2025-04-22T11:00:00Z"), r#"{"id":3}"#),
                record("4", at("2025-04-23T11:00:00Z"), r#"{"id":4}"#),
            ],
        );
        assert_eq!(
            read(out, "audit_2025-04-22.log"),
            "{\"id\":1}\n{\"id\":3}\n"
        );
        assert_eq!(
            read(out, "audit_2025-04-23.log"),
            "{\"id\":2}\n{\"id\":4}\n{\"id\":4}\n"
        );
    }

    #[test]
    fn more_days_than_open_handles() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/folder");
        let mut sink =
            DailySink::open(&out, "audit", "", Committed::new(), test_journals()).unwrap();
        let day = |n: i64| at("2025-01-01T12:00:00Z") + n * 86_400_000;
        // Twenty days in one batch, visited back and forth.
        let batch: Vec<OutputRecord> = (0..40)
            .map(|n| {
                let which = if n % 2 == 0 { n / 2 } else { 19 - n / 2 };
                record(&n.to_string(), day(which), &format!("{{\"n\":{n}}}"))
            })
            .collect();
        let mut recorded = write(&mut sink, &batch);
        assert!(sink.open.len() <= MAX_OPEN_FILES);
        assert_eq!(sink.files.len(), 20);
        let more: Vec<OutputRecord> = (0..20)
            .map(|n| record("m", day(n), &format!("{{\"m\":{n}}}")))
            .collect();
        let positions = write(&mut sink, &more);
        assert!(sink.open.len() <= MAX_OPEN_FILES);
        assert_eq!(positions.len(), 20);
        for position in &positions {
            assert_eq!(
                position.len,
                std::fs::metadata(&position.output).unwrap().len()
            );
        }
        assert_eq!(files(&out).len(), 20);
        assert_eq!(files(&out)[0], "audit_2025-01-01");
        let text = read(&out, "audit_2025-01-01");
        assert_eq!(text, "{\"n\":0}\n{\"n\":39}\n{\"m\":0}\n");

        // A crash after the second batch's lines, before its checkpoint: every file goes back.
        drop(sink);
        recorded.retain(|position| position.len > 0);
        let mut sink =
            DailySink::open(&out, "audit", "", committed(recorded), test_journals()).unwrap();
        write(&mut sink, &more);
        assert_eq!(read(&out, "audit_2025-01-01"), text);
        assert_eq!(
            read(&out, "audit_2025-01-20"),
            "{\"n\":1}\n{\"n\":38}\n{\"m\":19}\n"
        );
    }

    #[test]
    fn an_event_time_out_of_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink =
            DailySink::open(dir.path(), "a", "log", Committed::new(), test_journals()).unwrap();
        let error = sink
            .prepare(&[record("7", i64::MAX, "{}")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("record 7 has an event time out of range: {}", i64::MAX)
        );
    }
}
