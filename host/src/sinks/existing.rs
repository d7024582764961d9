//! Reading what an output already holds, when trawl has no checkpoint for it: files another tool
//! (the script trawl replaces) wrote. A first incremental run continues after their newest record
//! instead of fetching everything again.

use super::flatten::flatten;
use super::{OutputSpec, SinkError};
use crate::event_time::{TimeEncoding, parse_time};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Where a record's event time is: a dotted path (which is also its CSV column) and how it is
/// written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeLocation {
    pub path: String,
    pub encoding: TimeEncoding,
}

/// The newest records an output holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Newest {
    /// Their event time, in milliseconds since the epoch.
    pub time: i64,
    /// Each of them as flat `column -> cell` pairs (as the CSV sink would write them), so that the
    /// same records fetched again can be recognised.
    pub records: Vec<HashMap<String, String>>,
}

impl Newest {
    /// Whether a record (flattened) is one of these: every cell the stored one has is equal.
    pub fn contains(&self, cells: &HashMap<String, String>) -> bool {
        self.records.iter().any(|stored| {
            stored
                .iter()
                .all(|(column, value)| cells.get(column).map_or("", String::as_str) == value)
        })
    }

    fn offer(&mut self, time: i64, record: HashMap<String, String>) {
        if self.records.is_empty() || time > self.time {
            self.time = time;
            self.records = vec![record];
        } else if time == self.time {
            self.records.push(record);
        }
    }
}

impl OutputSpec {
    /// The newest records in the output's files, if it has any. `ignore` names columns trawl adds
    /// itself (they differ between the first write and a later fetch).
    pub fn newest(&self, time: &TimeLocation) -> Result<Option<Newest>, SinkError> {
        match self {
            OutputSpec::Csv { path, options } => {
                let ignore: Vec<&str> = options
                    .extra_columns
                    .iter()
                    .map(|column| column.name())
                    .collect();
                newest_in_csv(path, time, &ignore)
            }
            OutputSpec::Jsonl { path } => newest_in_json_lines(path, time),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => {
                // The newest day file that holds a readable record.
                for file in day_files(directory, base_name, extension).into_iter().rev() {
                    if let Some(newest) = newest_in_json_lines(&file, time)? {
                        return Ok(Some(newest));
                    }
                }
                Ok(None)
            }
            OutputSpec::Stdout { .. } => Ok(None),
        }
    }
}

/// The records an output already holds within a span of event time, each by its time and a
/// digest of its fields, so that the same records fetched again are recognised. For a run with a
/// range when this state folder has no checkpoint for the output (it was deleted, or another one
/// wrote the file): what the file holds is not written twice, what it lacks is.
#[derive(Debug, Default)]
pub struct Written {
    /// Event time and [`fingerprint`]; 24 bytes a record, for the range's records only.
    records: HashSet<(i64, [u8; 16])>,
    /// The earliest and latest event time among them.
    span: Option<(i64, i64)>,
}

impl Written {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether the record with this event time and JSON text is one of them.
    pub fn contains(&self, time: i64, json: &str) -> bool {
        match self.span {
            Some((first, last)) if (first..=last).contains(&time) => {}
            _ => return false,
        }
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(json) else {
            return false;
        };
        let cells = flatten(&object);
        let digest = fingerprint(
            cells
                .iter()
                .map(|(name, cell)| (name.as_str(), cell.as_str())),
        );
        self.records.contains(&(time, digest))
    }

    fn insert(&mut self, time: i64, cells: &mut dyn Iterator<Item = (&str, &str)>) {
        self.records.insert((time, fingerprint(cells)));
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(time), last.max(time)),
            None => (time, time),
        });
    }
}

/// A digest of a record's non-empty cells in column order: a CSV row (an empty cell is a field
/// the record lacks) and the record it was made of give the same one.
fn fingerprint<'a, 'b>(cells: impl Iterator<Item = (&'a str, &'b str)>) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut cells: Vec<(&'a str, &'b str)> = cells.filter(|(_, cell)| !cell.is_empty()).collect();
    cells.sort_unstable();
    let mut digest = Sha256::new();
    for (name, cell) in cells {
        // Lengths first, so that no two lists of cells hash the same text.
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update((cell.len() as u64).to_le_bytes());
        digest.update(cell.as_bytes());
    }
    let full = digest.finalize();
    let mut short = [0u8; 16];
    short.copy_from_slice(&full[..16]);
    short
}

impl OutputSpec {
    /// The records the output's files hold with an event time in `from..to` (milliseconds),
    /// read with the stream's time field. Rows that cannot be read are passed over.
    pub fn written_between(
        &self,
        time: &TimeLocation,
        from: i64,
        to: i64,
    ) -> Result<Written, SinkError> {
        let mut written = Written::default();
        let mut offer = written.inserter(from, to);
        match self {
            OutputSpec::Csv { path, options } => {
                let ignore: Vec<&str> = options
                    .extra_columns
                    .iter()
                    .map(|column| column.name())
                    .collect();
                for_each_csv_row(path, time, &ignore, &mut offer)?;
            }
            OutputSpec::Jsonl { path } => for_each_json_line(path, time, &mut offer)?,
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => {
                let day_ms = 86_400_000;
                let first_day = from.div_euclid(day_ms);
                let last_day = (to - 1).div_euclid(day_ms);
                for file in day_files(directory, base_name, extension) {
                    let Some(day) = file_day(&file, base_name) else {
                        continue;
                    };
                    if (first_day..=last_day).contains(&day) {
                        for_each_json_line(&file, time, &mut offer)?;
                    }
                }
            }
            OutputSpec::Stdout { .. } => {}
        }
        drop(offer);
        Ok(written)
    }
}

impl Written {
    /// Inserts the records it is handed whose event time is in `from..to`.
    fn inserter(
        &mut self,
        from: i64,
        to: i64,
    ) -> impl FnMut(i64, &mut dyn Iterator<Item = (&str, &str)>) + '_ {
        move |at, cells| {
            if (from..to).contains(&at) {
                self.insert(at, cells);
            }
        }
    }
}

/// What is handed each record a file holds: its event time and its (column, cell) pairs.
type EachRecord<'e> = dyn FnMut(i64, &mut dyn Iterator<Item = (&str, &str)>) + 'e;

/// The day (since the epoch) of a `<base>_<YYYY-MM-DD>...` file.
fn file_day(path: &Path, base_name: &str) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let date = name.strip_prefix(base_name)?.strip_prefix('_')?.get(..10)?;
    let date: jiff::civil::Date = date.parse().ok()?;
    let midnight = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(midnight.as_millisecond().div_euclid(86_400_000))
}

/// Hands each readable row of a CSV file, with its event time, to `each` as (column, cell)
/// pairs, less the `ignore`d columns.
fn for_each_csv_row(
    path: &Path,
    time: &TimeLocation,
    ignore: &[&str],
    each: &mut EachRecord<'_>,
) -> Result<(), SinkError> {
    if !path.is_file() {
        return Ok(());
    }
    let existing = |error: ::csv::Error| SinkError::Existing {
        path: path.to_path_buf(),
        line: 1,
        message: error.to_string(),
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(existing)?;
    let header = reader.headers().map_err(existing)?.clone();
    let Some(time_column) = header.iter().position(|column| column == time.path) else {
        return Ok(());
    };
    let mut row = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            // A row that cannot be read (cut short by a crash of another tool) is passed over;
            // a file that cannot be read stops the run.
            Err(error) if error.is_io_error() => return Err(existing(error)),
            Err(_) => continue,
        }
        let Some(at) = row
            .get(time_column)
            .and_then(|cell| parse_time(cell, time.encoding))
        else {
            continue;
        };
        let mut cells = header
            .iter()
            .zip(row.iter())
            .filter(|(column, _)| !ignore.contains(column));
        each(at, &mut cells);
    }
}

/// Hands each line of a JSON Lines file that is a JSON object with an event time to `each`, as
/// its flattened (column, cell) pairs.
fn for_each_json_line(
    path: &Path,
    time: &TimeLocation,
    each: &mut EachRecord<'_>,
) -> Result<(), SinkError> {
    if !path.is_file() {
        return Ok(());
    }
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io_error(path))?;
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&line) else {
            continue;
        };
        let cells = flatten(&object);
        let Some(at) = cells
            .iter()
            .find(|(name, _)| *name == time.path)
            .and_then(|(_, cell)| parse_time(cell, time.encoding))
        else {
            continue;
        };
        each(
            at,
            &mut cells
                .iter()
                .map(|(name, cell)| (name.as_str(), cell.as_str())),
        );
    }
    Ok(())
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn newest_in_csv(
    path: &Path,
    time: &TimeLocation,
    ignore: &[&str],
) -> Result<Option<Newest>, SinkError> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|error| SinkError::Existing {
            path: path.to_path_buf(),
            line: 1,
            message: error.to_string(),
        })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| SinkError::Existing {
            path: path.to_path_buf(),
            line: 1,
            message: error.to_string(),
        })?
        .iter()
        .map(String::from)
        .collect();
    let Some(time_column) = header.iter().position(|column| column == &time.path) else {
        return Ok(None);
    };
    let mut newest = Newest::default();
    for row in reader.records() {
        // A row that cannot be read (cut short by a crash of the other tool) is passed over.
        let Ok(row) = row else { continue };
        let Some(at) = row
            .get(time_column)
            .and_then(|cell| parse_time(cell, time.encoding))
        else {
            continue;
        };
        let record = header
            .iter()
            .zip(row.iter())
            .filter(|(column, _)| !ignore.contains(&column.as_str()))
            .map(|(column, cell)| (column.clone(), cell.to_string()))
            .collect();
        newest.offer(at, record);
    }
    Ok((!newest.records.is_empty()).then_some(newest))
}

fn newest_in_json_lines(path: &Path, time: &TimeLocation) -> Result<Option<Newest>, SinkError> {
    if !path.is_file() {
        return Ok(None);
    }
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut newest = Newest::default();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io_error(path))?;
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&line) else {
            continue;
        };
        let record: HashMap<String, String> = flatten(&object).into_iter().collect();
        let Some(at) = record
            .get(&time.path)
            .and_then(|cell| parse_time(cell, time.encoding))
        else {
            continue;
        };
        newest.offer(at, record);
    }
    Ok((!newest.records.is_empty()).then_some(newest))
}

/// `<directory>/<base>_<YYYY-MM-DD>.<extension>` files, oldest day first.
fn day_files(directory: &Path, base_name: &str, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let prefix = format!("{base_name}_");
    let suffix = if extension.is_empty() {
        String::new()
    } else {
        format!(".{extension}")
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let day = name
                .strip_prefix(&prefix)?
                .strip_suffix(&suffix)?
                .to_string();
            day.parse::<jiff::civil::Date>().ok()?;
            Some((day, entry.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::{CsvOptions, ExtraColumn};

    fn location(path: &str, encoding: TimeEncoding) -> TimeLocation {
        TimeLocation {
            path: path.into(),
            encoding,
        }
    }

    #[test]
    fn the_newest_day_file_and_its_newest_records() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mail_audit_2025-04-22.log"),
            "{\"date\": \"2025-04-22T23:59:59Z\", \"uniqId\": \"1\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("mail_audit_2025-04-23.log"),
            "{\"date\": \"2025-04-23T04:00:00Z\", \"uniqId\": \"2\"}\n\
             {\"date\": \"2025-04-23T05:00:00.5Z\", \"uniqId\": \"3\"}\n\
             {\"date\": \"2025-04-23T05:00:00.5Z\", \"uniqId\": \"4\"}\n\
             not json, cut short by a crash",
        )
        .unwrap();
        std::fs::write(dir.path().join("mail_audit_notes.log"), "{}").unwrap();
        let spec = OutputSpec::DailyJsonl {
            directory: dir.path().to_path_buf(),
            base_name: "mail_audit".into(),
            extension: "log".into(),
        };
        let newest = spec
            .newest(&location("date", TimeEncoding::Rfc3339))
            .unwrap()
            .unwrap();
        assert_eq!(newest.time, 1_745_384_400_500);
        assert_eq!(newest.records.len(), 2);
        let again: HashMap<String, String> = [
            ("date".to_string(), "2025-04-23T05:00:00.5Z".to_string()),
            ("uniqId".to_string(), "4".to_string()),
        ]
        .into();
        assert!(newest.contains(&again));
        let other: HashMap<String, String> = [
            ("date".to_string(), "2025-04-23T05:00:00.5Z".to_string()),
            ("uniqId".to_string(), "5".to_string()),
        ]
        .into();
        assert!(!newest.contains(&other));
    }

    #[test]
    fn records_written_in_a_range_are_recognised_by_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siem_data.csv");
        std::fs::write(
            &path,
            "local_timestamp,created_at_timestamp,id,note\r\n\
             2025-06-08 09:07:21 JST,1749336563,7,\r\n\
             2025-06-08 09:07:22 JST,1749336564,8,\"a, b\"\r\n\
             2025-06-08 09:07:23 JST,1749336999,9,\r\n",
        )
        .unwrap();
        let spec = OutputSpec::Csv {
            path,
            options: CsvOptions {
                extra_columns: vec![ExtraColumn::LocalTimestamp],
                leading_columns: vec![],
                timezone: jiff::tz::TimeZone::UTC,
                named_by_user: true,
            },
        };
        let time = location("created_at_timestamp", TimeEncoding::EpochSeconds);
        // The third row is outside the range: not read into memory.
        let written = spec
            .written_between(&time, 1_749_336_563_000, 1_749_336_565_000)
            .unwrap();
        assert_eq!(written.len(), 2);
        // The records as fetched again: members in any order, a missing member an empty cell.
        assert!(written.contains(
            1_749_336_563_000,
            r#"{"id":7,"created_at_timestamp":1749336563}"#
        ));
        assert!(written.contains(
            1_749_336_564_000,
            r#"{"note":"a, b","created_at_timestamp":1749336564,"id":8}"#
        ));
        // Another record at the same time, or the same at another, is not.
        assert!(!written.contains(
            1_749_336_564_000,
            r#"{"note":"a, c","created_at_timestamp":1749336564,"id":8}"#
        ));
        assert!(!written.contains(
            1_749_336_999_000,
            r#"{"id":9,"created_at_timestamp":1749336999}"#
        ));

        // Per-day files: only the days of the range are read.
        let days = OutputSpec::DailyJsonl {
            directory: dir.path().to_path_buf(),
            base_name: "mail".into(),
            extension: "log".into(),
        };
        std::fs::write(
            dir.path().join("mail_2025-04-22.log"),
            "{\"date\": \"2025-04-22T23:59:59Z\", \"uniqId\": \"1\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("mail_2025-04-23.log"),
            "{\"date\": \"2025-04-23T00:00:01Z\", \"uniqId\": \"2\"}\n",
        )
        .unwrap();
        let time = location("date", TimeEncoding::Rfc3339);
        let april_23 = 1_745_366_400_000;
        let written = days
            .written_between(&time, april_23, april_23 + 86_400_000)
            .unwrap();
        assert_eq!(written.len(), 1);
        assert!(written.contains(
            april_23 + 1000,
            r#"{"uniqId":"2","date":"2025-04-23T00:00:01Z"}"#
        ));
    }

    #[test]
    fn a_seed_csv_file_ignoring_trawl_own_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siem_data.csv");
        std::fs::write(
            &path,
            "local_timestamp,created_at_timestamp,id\r\n\
             2025-06-08 09:07:21 JST,1749336563,7\r\n\
             2025-06-08 09:07:22 JST,1749336564,8\r\n",
        )
        .unwrap();
        let spec = OutputSpec::Csv {
            path: path.clone(),
            options: CsvOptions {
                extra_columns: vec![ExtraColumn::LocalTimestamp],
                leading_columns: vec![],
                timezone: jiff::tz::TimeZone::UTC,
                named_by_user: true,
            },
        };
        let newest = spec
            .newest(&location(
                "created_at_timestamp",
                TimeEncoding::EpochSeconds,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(newest.time, 1_749_336_564_000);
        assert_eq!(
            newest.records,
            vec![HashMap::from([
                ("created_at_timestamp".to_string(), "1749336564".to_string()),
                ("id".to_string(), "8".to_string()),
            ])]
        );
        assert!(
            OutputSpec::Csv {
                path: dir.path().join("missing.csv"),
                options: CsvOptions {
                    extra_columns: vec![],
                    leading_columns: vec![],
                    timezone: jiff::tz::TimeZone::UTC,
                    named_by_user: true,
                },
            }
            .newest(&location("id", TimeEncoding::EpochSeconds))
            .unwrap()
            .is_none()
        );
    }
}
