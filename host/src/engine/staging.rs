//! A window's fetched records, on disk, until they can go to the output in order.
//!
//! Each page's records are appended and fsynced before the window's progress (its next cursor and
//! the staged length) is checkpointed, so a crash loses at most the page in flight, and a resumed
//! window continues from its last checkpointed cursor after cutting the file back to the length
//! the checkpoint vouches for.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::sinks::JsonObject;
use crate::state::Interval;

/// A staged record is the record on its way to the output.
pub use crate::sinks::OutputRecord as StagedRecord;

/// The staging file of one window, open for appending.
pub struct Staging {
    file: File,
    len: u64,
}

impl Staging {
    /// The file that stages `window` inside `dir`.
    pub fn path(dir: &Path, window: Interval) -> PathBuf {
        dir.join(format!("{}-{}.staged", window.start, window.end))
    }

    /// Opens a window's staging file, cut back to the `durable_len` bytes its checkpoint vouches
    /// for (0 for a window starting afresh).
    pub fn open(dir: &Path, window: Interval, durable_len: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path(dir, window);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)?;
        let actual = file.metadata()?.len();
        let len = if actual < durable_len {
            // The checkpoint vouches for bytes the file does not have: it was removed or cut.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} holds {actual} bytes but its checkpoint vouches for {durable_len}",
                    path.display()
                ),
            ));
        } else {
            durable_len
        };
        file.set_len(len)?;
        Ok(Staging { file, len })
    }

    /// Appends one page's records and makes them durable; returns the new durable length.
    pub fn append(&mut self, records: &[StagedRecord]) -> io::Result<u64> {
        if records.is_empty() {
            return Ok(self.len);
        }
        let mut buffer = Vec::with_capacity(records.iter().map(|r| r.json.len() + 48).sum());
        for record in records {
            encode(record, &mut buffer);
        }
        self.file.write_all(&buffer)?;
        self.file.sync_data()?;
        self.len += buffer.len() as u64;
        Ok(self.len)
    }

    pub fn len(&self) -> u64 {
        self.len
    }
}

/// `event_time TAB fetched_at TAB id-as-JSON-string TAB json NEWLINE` (a [`JsonObject`] is one
/// line).
fn encode(record: &StagedRecord, out: &mut Vec<u8>) {
    let id = serde_json::to_string(&record.id).expect("a string serializes");
    let _ = write!(
        out,
        "{}\t{}\t{}\t",
        record.event_time, record.fetched_at, id
    );
    out.extend_from_slice(record.json.as_bytes());
    out.push(b'\n');
}

fn decode(line: &str) -> io::Result<StagedRecord> {
    let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "corrupt staged record");
    let mut fields = line.splitn(4, '\t');
    let event_time = fields
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(corrupt)?;
    let fetched_at = fields
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(corrupt)?;
    let id = fields
        .next()
        .and_then(|f| serde_json::from_str::<String>(f).ok())
        .ok_or_else(corrupt)?;
    // Staged records were checked when they were fetched.
    let json = JsonObject::checked(fields.next().ok_or_else(corrupt)?.to_string());
    Ok(StagedRecord {
        event_time,
        fetched_at,
        id,
        json,
        rendered: None,
    })
}

/// The records in the first `len` bytes of a staging file (or of a sorted run file), in file
/// order.
pub fn read(
    path: &Path,
    len: u64,
) -> io::Result<impl Iterator<Item = io::Result<StagedRecord>> + use<>> {
    let file = File::open(path)?;
    let mut lines = BufReader::with_capacity(256 << 10, file.take(len)).lines();
    Ok(std::iter::from_fn(move || {
        lines.next().map(|line| line.and_then(|line| decode(&line)))
    }))
}

/// Writes records to a file in the staging format (for sorted runs), returning its length.
pub fn write_all(path: &Path, records: &[StagedRecord]) -> io::Result<u64> {
    let mut buffer = Vec::new();
    for record in records {
        encode(record, &mut buffer);
    }
    std::fs::write(path, &buffer)?;
    Ok(buffer.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, time: i64, json: &str) -> StagedRecord {
        StagedRecord {
            event_time: time,
            fetched_at: 7,
            id: id.into(),
            json: JsonObject::parse(json.into()).unwrap(),
            rendered: None,
        }
    }

    #[test]
    fn round_trips_awkward_ids_and_pretty_json() {
        let dir = tempfile::tempdir().unwrap();
        let window = Interval::new(0, 10);
        let mut staging = Staging::open(dir.path(), window, 0).unwrap();
        let records = [
            record("a\tb\nc", 1, r#"{"x":"tab\there"}"#),
            record("2", 2, "{\n  \"pretty\": true\n}"),
        ];
        let len = staging.append(&records).unwrap();
        let read: Vec<StagedRecord> = read(&Staging::path(dir.path(), window), len)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(read[0], records[0]);
        assert_eq!(read[1].json.as_str(), r#"{"pretty":true}"#);
    }

    #[test]
    fn reopening_cuts_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let window = Interval::new(0, 10);
        let mut staging = Staging::open(dir.path(), window, 0).unwrap();
        let durable = staging.append(&[record("1", 1, "{}")]).unwrap();
        staging.append(&[record("2", 2, "{}")]).unwrap();
        drop(staging);
        let staging = Staging::open(dir.path(), window, durable).unwrap();
        assert_eq!(staging.len(), durable);
        assert_eq!(
            read(&Staging::path(dir.path(), window), durable)
                .unwrap()
                .count(),
            1
        );
        assert!(Staging::open(dir.path(), window, durable + 100).is_err());
    }
}
