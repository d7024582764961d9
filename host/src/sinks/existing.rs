//! Reading what an output already holds, when trawl has no checkpoint for it: files another tool
//! (the script trawl replaces) wrote. A first incremental run continues after their newest record
//! instead of fetching everything again.

use super::flatten::flatten;
use super::{OutputSpec, SinkError};
use crate::event_time::{TimeEncoding, parse_time};
use std::collections::HashMap;
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
