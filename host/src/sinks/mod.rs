//! Where records land. A sink appends ordered, deduplicated records and reports how far its output
//! is durable; the engine checkpoints that position, so that after a crash the sink can cut off
//! whatever was written but never checkpointed.

mod csv;
mod flatten;

pub use self::csv::{CsvOptions, CsvSink, ExtraColumn};

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
}

/// The committed positions of an output's files, by file key (absolute path), as the state
/// store holds them.
pub type Committed = HashMap<String, OutputPosition>;

/// An output that records can be appended to, exactly once.
///
/// Each file a sink writes has a position in the state store. When a sink opens a file whose
/// length is past its committed position, the excess was written by a run that stopped before
/// checkpointing it, and is cut off before anything is appended.
pub trait Sink: Send {
    /// Gets ready to take `batch`. If that meant rewriting files (a CSV header widened by new
    /// fields), returns their new positions, which must be recorded before anything is appended.
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
    Csv { path: PathBuf, options: CsvOptions },
}

impl OutputSpec {
    /// The output's identity for checkpoints: its absolute path. Windows are checkpointed per
    /// output, so a new output starts from nothing.
    pub fn key(&self) -> String {
        match self {
            OutputSpec::Csv { path, .. } => absolute_key(path),
        }
    }

    /// Every file of this output has a key starting with this, to load their positions.
    pub fn file_prefix(&self) -> String {
        self.key()
    }

    /// Where the records go, for messages.
    pub fn location(&self) -> String {
        match self {
            OutputSpec::Csv { path, .. } => path.display().to_string(),
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
