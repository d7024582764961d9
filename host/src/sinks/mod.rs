//! Where records land. A sink appends ordered, deduplicated records and reports how far its output
//! is durable; the engine checkpoints that position, so that after a crash the sink can cut off
//! whatever was written but never checkpointed.

mod csv;
mod daily;
mod existing;
mod flatten;
mod jsonl;
mod stdout;

pub use self::csv::{CsvOptions, CsvSink, ExtraColumn};
pub use self::daily::DailySink;
pub use self::existing::{Newest, TimeEncoding, TimeLocation, parse_time};
pub use self::flatten::flatten;
pub use self::jsonl::JsonlSink;
pub use self::stdout::{StdoutFormat, StdoutSink};

use crate::state::OutputPosition;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One record on its way to the output.
#[derive(Clone, Debug)]
pub struct OutputRecord {
    pub id: String,
    /// Milliseconds since the epoch, UTC.
    pub event_time: i64,
    /// When its page was fetched, in milliseconds since the epoch.
    pub fetched_at: i64,
    /// The vendor's JSON object, as received.
    pub json: String,
}

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Existing {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("record {id} is not a JSON object: {message}")]
    Record { id: String, message: String },
    #[error("record {id} has an event time out of range: {event_time}")]
    EventTime { id: String, event_time: i64 },
}

/// The committed positions of an output's files, by file key (absolute path), as the state
/// store holds them.
pub type Committed = HashMap<String, OutputPosition>;

/// An output that records can be appended to, exactly once.
///
/// Each file a sink writes has a position in the state store. When a sink opens a file whose
/// length is past its committed position, the excess was written by a run that stopped before
/// checkpointing it, and is cut off before anything is appended. Standard output has no position
/// and cannot be cut back: exactly once holds for files only.
pub trait Sink: Send {
    /// Gets ready to take `batch`. Returns positions that must be recorded before anything is
    /// appended: files rewritten (a CSV header widened by new fields), and files about to be
    /// written that have no position yet (so that a crash before the first checkpoint is cut off
    /// too, rather than taken as someone else's content).
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Vec<OutputPosition>, SinkError>;

    /// Appends `batch`, in order.
    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError>;

    /// Makes everything appended so far durable (flushed and fsynced) and returns the positions of
    /// the files written since the last sync, to checkpoint.
    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError>;
}

/// Which output a stream goes to, and how it is laid out.
#[derive(Clone, Debug)]
pub enum OutputSpec {
    /// One CSV file.
    Csv { path: PathBuf, options: CsvOptions },
    /// One JSON Lines file.
    Jsonl { path: PathBuf },
    /// JSON Lines files, one per UTC day of the events:
    /// `<directory>/<base_name>_<YYYY-MM-DD>.<extension>` (no `.` when `extension` is empty).
    DailyJsonl {
        directory: PathBuf,
        base_name: String,
        extension: String,
    },
    /// Standard output; no positions, so no exactly once (see [`StdoutSink`]).
    Stdout { format: StdoutFormat },
}

/// [`OutputSpec::file_prefix`] of standard output: file keys are absolute paths, which never
/// start with a NUL.
const STDOUT_PREFIX: &str = "\0stdout";

impl OutputSpec {
    /// The output's identity for checkpoints: its absolute path (for per-day files, the absolute
    /// pattern `<directory>/<base_name>_*.<extension>`; for standard output, `-`). Windows are
    /// checkpointed per output, so a new output starts from nothing.
    pub fn key(&self) -> String {
        match self {
            OutputSpec::Csv { path, .. } | OutputSpec::Jsonl { path } => absolute_key(path),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => absolute_key(&directory.join(daily::day_file_name(base_name, "*", extension))),
            OutputSpec::Stdout { .. } => "-".to_string(),
        }
    }

    /// Every file of this output has a key starting with this, to load their positions. (For
    /// per-day files it can also match another output's files, whose base name starts with this
    /// one's and an `_`; a sink only looks at the positions of its own files.)
    pub fn file_prefix(&self) -> String {
        match self {
            OutputSpec::Csv { .. } | OutputSpec::Jsonl { .. } => self.key(),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                ..
            } => absolute_key(&directory.join(format!("{base_name}_"))),
            OutputSpec::Stdout { .. } => STDOUT_PREFIX.to_string(),
        }
    }

    /// Where the records go, for messages.
    pub fn location(&self) -> String {
        match self {
            OutputSpec::Csv { path, .. } | OutputSpec::Jsonl { path } => path.display().to_string(),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => {
                let name = daily::day_file_name(base_name, "YYYY-MM-DD", extension);
                if directory.as_os_str().is_empty() || directory == Path::new(".") {
                    name
                } else {
                    directory.join(name).display().to_string()
                }
            }
            OutputSpec::Stdout { .. } => "standard output".to_string(),
        }
    }

    /// Opens the output, cutting off anything past the committed positions (see [`Sink`]).
    pub fn open(&self, mut committed: Committed) -> Result<Box<dyn Sink>, SinkError> {
        match self {
            OutputSpec::Csv { path, options } => Ok(Box::new(CsvSink::open(
                path,
                committed.remove(&absolute_key(path)),
                options.clone(),
            )?)),
            OutputSpec::Jsonl { path } => Ok(Box::new(JsonlSink::open(
                path,
                committed.get(&absolute_key(path)),
            )?)),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => Ok(Box::new(DailySink::open(
                directory, base_name, extension, committed,
            )?)),
            OutputSpec::Stdout { format } => Ok(Box::new(StdoutSink::new(*format))),
        }
    }
}

/// A file's identity in the state store: its absolute path, even before the file exists.
pub(crate) fn absolute_key(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;

    fn daily(directory: &str) -> OutputSpec {
        OutputSpec::DailyJsonl {
            directory: PathBuf::from(directory),
            base_name: "mail_audit".into(),
            extension: "log".into(),
        }
    }

    #[test]
    #[cfg(unix)]
    fn keys_prefixes_and_locations() {
        let spec = daily("/var/log/mail");
        assert_eq!(spec.key(), "/var/log/mail/mail_audit_*.log");
        assert_eq!(spec.file_prefix(), "/var/log/mail/mail_audit_");
        assert_eq!(spec.location(), "/var/log/mail/mail_audit_YYYY-MM-DD.log");
        assert_eq!(daily(".").location(), "mail_audit_YYYY-MM-DD.log");
        assert_eq!(daily("mail").location(), "mail/mail_audit_YYYY-MM-DD.log");
        assert_eq!(
            daily("mail").key(),
            format!(
                "{}/mail_audit_*.log",
                std::env::current_dir().unwrap().join("mail").display()
            )
        );

        let jsonl = OutputSpec::Jsonl {
            path: PathBuf::from("/tmp/out.jsonl"),
        };
        assert_eq!(jsonl.key(), "/tmp/out.jsonl");
        assert_eq!(jsonl.file_prefix(), "/tmp/out.jsonl");
        assert_eq!(jsonl.location(), "/tmp/out.jsonl");

        let stdout = OutputSpec::Stdout {
            format: StdoutFormat::Jsonl,
        };
        assert_eq!(stdout.key(), "-");
        assert_eq!(stdout.location(), "standard output");
    }

    #[test]
    fn the_state_store_finds_every_day_file_and_nothing_for_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let spec = daily(dir.path().to_str().unwrap());
        let mut sink = spec.open(Committed::new()).unwrap();
        let day = 86_400_000;
        let batch = [
            jsonl::tests::record("1", day, "{}"),
            jsonl::tests::record("2", 2 * day, "{}"),
        ];
        let positions = jsonl::tests::write(sink.as_mut(), &batch);
        let state = StateStore::in_memory().unwrap();
        state.record_outputs(&positions).unwrap();
        let elsewhere = OutputPosition {
            output: absolute_key(&dir.path().join("disk_audit_1970-01-02.log")),
            len: 3,
            header: None,
        };
        state
            .record_outputs(std::slice::from_ref(&elsewhere))
            .unwrap();

        let found = state.output_positions(&spec.file_prefix()).unwrap();
        let mut names: Vec<&str> = found.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                absolute_key(&dir.path().join("mail_audit_1970-01-02.log")),
                absolute_key(&dir.path().join("mail_audit_1970-01-03.log")),
            ]
        );
        assert_eq!(found[names[0]].len, 3);

        let stdout = OutputSpec::Stdout {
            format: StdoutFormat::Jsonl,
        };
        assert!(
            state
                .output_positions(&stdout.file_prefix())
                .unwrap()
                .is_empty()
        );
    }
}
