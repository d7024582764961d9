//! Where records land. A sink appends ordered, deduplicated records and reports how far its output
//! is durable; the engine checkpoints that position, so that after a crash the sink can cut off
//! whatever was written but never checkpointed.

mod csv;
mod flatten;

pub use self::csv::{CsvOptions, CsvSink, ExtraColumn};

use crate::state::OutputPosition;
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
}

/// An output that records can be appended to, exactly once.
pub trait Sink: Send {
    /// The output's identity for checkpoints (its absolute path).
    fn output_key(&self) -> &str;

    /// Gets ready to take `batch`. If that meant rewriting the output (a CSV header widened by new
    /// fields), returns the new position, which must be recorded before anything is appended.
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Option<OutputPosition>, SinkError>;

    /// Appends `batch`, in order.
    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError>;

    /// Makes everything appended so far durable (flushed and fsynced) and returns the position to
    /// checkpoint.
    fn sync(&mut self) -> Result<OutputPosition, SinkError>;
}

/// Which output a stream goes to, and how it is laid out.
#[derive(Clone, Debug)]
pub enum OutputSpec {
    Csv { path: PathBuf, options: CsvOptions },
}

impl OutputSpec {
    /// The output's identity for checkpoints: its absolute path.
    pub fn key(&self) -> String {
        match self {
            OutputSpec::Csv { path, .. } => csv::absolute_key(path),
        }
    }

    /// Where the records go, for messages.
    pub fn location(&self) -> &Path {
        match self {
            OutputSpec::Csv { path, .. } => path,
        }
    }

    /// Opens the output, cutting off anything past the `committed` position (see [`Sink`]).
    pub fn open(&self, committed: Option<OutputPosition>) -> Result<Box<dyn Sink>, SinkError> {
        match self {
            OutputSpec::Csv { path, options } => {
                Ok(Box::new(CsvSink::open(path, committed, options.clone())?))
            }
        }
    }
}
