//! Where records land. A sink appends ordered, deduplicated records and reports how far its output
//! is durable; the engine checkpoints that position, so that after a crash the sink can cut off
//! whatever was written but never checkpointed.

mod csv;
mod daily;
mod existing;
mod flatten;
mod journal;
mod jsonl;
mod stdout;

pub use self::csv::{CsvOptions, CsvSink, ExtraColumn};
pub use self::daily::DailySink;
pub use self::existing::{Newest, TimeLocation, Written};
pub use self::flatten::flatten;
pub use self::jsonl::JsonlSink;
pub use self::stdout::{StdoutFormat, StdoutSink};

use crate::connector_text::printable_excerpt;
use crate::shared_text::SharedText;
use crate::state::OutputPosition;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// One record on its way to the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRecord {
    pub id: String,
    /// Milliseconds since the epoch, UTC.
    pub event_time: i64,
    /// When its page was fetched, in milliseconds since the epoch.
    pub fetched_at: i64,
    /// The vendor's JSON object.
    pub json: JsonObject,
    /// The record as its sink writes it, if the sink's [`Encoder`] made that ahead.
    pub rendered: Option<Rendered>,
}

/// A record made into what its sink writes, ahead of the sink, by the sink's [`Encoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The sink's layout it was made under (its CSV header, say): if the sink's layout has
    /// changed since, the sink makes the record again.
    pub(crate) layout: u64,
    /// What was made of the records encoded together (a page's), one after another: one buffer
    /// rather than one per record, whose allocation and free on another thread cost more than
    /// making a short row. This record's is at `range`.
    pub(crate) made: Arc<Vec<u8>>,
    pub(crate) range: Range<usize>,
}

impl Rendered {
    /// What was made of this record.
    pub fn bytes(&self) -> &[u8] {
        &self.made[self.range.clone()]
    }
}

/// Makes records into what a sink writes, ahead of the sink. A sink is written by one thread,
/// in order; the engine runs its encoder on the workers instead, each on its own window, so that
/// work per record is spread over the cores and the one writer mostly copies. A record it cannot
/// make (a field a CSV header has no column for yet) is left as it is, for the sink.
pub trait Encoder: Send + Sync {
    fn encode(&self, records: &mut [OutputRecord]);
}

/// The text of exactly one JSON object, on one line.
///
/// A record's JSON is checked once, where it enters trawl from a connector; every later step
/// (staging, sorting, filters, sinks) relies on that instead of parsing it again only to check it.
#[derive(Clone, Debug)]
pub struct JsonObject(Text);

#[derive(Clone, Debug)]
enum Text {
    Owned(String),
    /// A piece of a page's body, shared with the page's other records: a page's records are most
    /// of its body, and copying each out cost an allocation and a `memcpy` per record.
    Piece {
        body: SharedText,
        range: Range<usize>,
    },
}

impl JsonObject {
    /// Checks that `text` is one JSON object and nothing else. The text is kept exactly as sent
    /// (key order, number spellings, escapes); only an object with line breaks between its tokens
    /// (pretty-printed) is made compact, since a JSON Lines record must be one line. JSON strings
    /// cannot hold a raw line break, so that never changes a value.
    pub fn parse(text: String) -> Result<Self, String> {
        match text.trim_start().as_bytes().first() {
            Some(b'{') => {}
            Some(b'[') => return Err("found a list".into()),
            Some(b'"') => return Err("found a string".into()),
            Some(b't' | b'f') => return Err("found a boolean".into()),
            Some(b'n') => return Err("found null".into()),
            Some(_) => return Err("found a number".into()),
            None => return Err("found nothing".into()),
        }
        // Checked by the page reader's own parser, which bounds nesting as serde_json's parsers
        // do (its `IgnoredAny` alone does not): a record a hundred thousand levels deep is refused
        // here, not accepted and then walked until the stack runs out.
        crate::capabilities::responses::check_record(text.as_bytes())
            .map_err(|error| error.to_string())?;
        Ok(JsonObject::from_checked(text))
    }

    /// Text the host has already checked is one JSON object (see [`parse`](Self::parse)), made
    /// one line.
    pub fn from_checked(text: String) -> Self {
        if has_line_break(&text) {
            return JsonObject(Text::Owned(compact(&text)));
        }
        JsonObject(Text::Owned(text))
    }

    /// The piece of `body` at `range`, which the host has already checked is one JSON object,
    /// made one line. `None` if `range` is not a piece of `body`.
    pub fn from_checked_piece(body: SharedText, range: Range<usize>) -> Option<Self> {
        let text = body.get(range.clone())?;
        if has_line_break(text) {
            return Some(JsonObject(Text::Owned(compact(text))));
        }
        Some(JsonObject(Text::Piece { body, range }))
    }

    /// Text that was checked by [`parse`](Self::parse) before, read back from trawl's own files.
    pub(crate) fn checked(text: String) -> Self {
        JsonObject(Text::Owned(text))
    }

    /// The text's length, known without reading the text (a shared piece may be out of cache).
    pub fn len(&self) -> usize {
        match &self.0 {
            Text::Owned(text) => text.len(),
            Text::Piece { range, .. } => range.len(),
        }
    }

    /// Never true of a JSON object; here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Owned(text) => text,
            // In range and on character boundaries: checked when it was made.
            Text::Piece { body, range } => &body[range.clone()],
        }
    }
}

impl std::ops::Deref for JsonObject {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for JsonObject {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for JsonObject {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JsonObject {}

fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some()
}

/// Valid JSON `text` without the whitespace between its tokens.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for character in text.chars() {
        if in_string {
            out.push(character);
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                in_string = false;
            }
        } else if !matches!(character, ' ' | '\t' | '\n' | '\r') {
            in_string = character == '"';
            out.push(character);
        }
    }
    out
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
    #[error(
        "record {}: {}",
        printable_excerpt(id, 256),
        printable_excerpt(message, 4 << 10)
    )]
    Record { id: String, message: String },
    #[error(
        "{path} was not created by trawl (it held other content before trawl first wrote to it), \
         and new fields ({}) need a wider header, which means rewriting the whole file. trawl \
         rewrites a file it did not create only when you name it: run again with --output {} \
         (or `output.path` in the config), or move the file away. Nothing is lost: every window \
         written so far is checkpointed, and the rerun continues from there.",
        .fields.join(", "),
        .path.display()
    )]
    RewriteNotAllowed { path: PathBuf, fields: Vec<String> },
    #[error(
        "record {} has an event time out of range: {event_time}",
        printable_excerpt(id, 256)
    )]
    EventTime { id: String, event_time: i64 },
    #[error(
        "another trawl run is writing {output} right now (it holds {}); two at once would write \
         records twice or cut off each other's. This run stops before fetching anything; nothing \
         changed",
        .lock.display()
    )]
    Busy { output: String, lock: PathBuf },
    #[error(
        "{path} holds {extra} bytes after the {checkpointed} that trawl checkpointed, and {}. \
         trawl cuts off only what it appended itself and did not checkpoint (a run stopped \
         before its checkpoint), so this run stops before any request; nothing changed. Look \
         at them with `tail -c +{} {}`. If they are yours, move them to another file; if the \
         file should end where trawl checkpointed it (after a power cut, the rest may be trawl's \
         own unfinished append), cut it with `truncate -s {checkpointed} {}`. Then run again: \
         what was cut is fetched again",
        not_trawls(*.extra, *.trawls),
        .checkpointed + 1,
        .path.display(),
        .path.display()
    )]
    NotTrawls {
        path: PathBuf,
        checkpointed: u64,
        extra: u64,
        /// How many of them, from the first, trawl appended.
        trawls: u64,
    },
    #[error("cannot lock {}, which keeps two trawl runs from writing {output} at once: {source}", .lock.display())]
    Lock {
        output: String,
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// What [`SinkError::NotTrawls`] says of the bytes past a checkpoint.
fn not_trawls(extra: u64, trawls: u64) -> String {
    if trawls == 0 {
        "trawl did not write them (or cannot tell that it did)".into()
    } else {
        format!(
            "only the first {trawls} of them are what trawl appended before it stopped; the {} \
             after those are not trawl's",
            extra - trawls
        )
    }
}

/// Held while a run writes an output: no other trawl run writes it meanwhile, whatever state
/// folder it uses. Released when dropped, or when the process dies.
#[derive(Debug)]
pub struct OutputLock {
    _file: std::fs::File,
}

/// The committed positions of an output's files, by file key (absolute path), as the state
/// store holds them.
pub type Committed = HashMap<String, OutputPosition>;

/// An output that records can be appended to, exactly once.
///
/// Each file a sink writes has a position in the state store. When a sink opens a file whose
/// length is past its committed position, the excess is cut off before anything is appended if
/// it is what a run that stopped before checkpointing it noted it appended (see `journal`), and
/// stops the run otherwise. Standard output has no position and cannot be cut back: exactly once
/// holds for files only.
pub trait Sink: Send {
    /// Gets ready to take `batch` (see [`Prepared`]). The engine calls it for each batch of a
    /// window before it appends any of them.
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Prepared, SinkError>;

    /// Appends `batch`, in order.
    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError>;

    /// Makes everything appended so far durable (flushed and fsynced) and returns the positions of
    /// the files written since the last sync, to checkpoint.
    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError>;

    /// The sink's [`Encoder`], if it has work per record that needs neither its files nor the
    /// records' order.
    fn encoder(&self) -> Option<Arc<dyn Encoder>> {
        None
    }
}

/// What [`Sink::prepare`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Ready. These positions must be recorded before anything is appended: files rewritten (a
    /// CSV header widened by new fields), and files about to be written that have no position yet
    /// (so that a crash before the first checkpoint is cut off too, rather than taken as someone
    /// else's content).
    Ready(Vec<OutputPosition>),
    /// The batch needs a change to the file (a wider CSV header) that can only be made when all
    /// that was appended is synced and checkpointed: the engine does that, then asks again.
    CheckpointFirst,
}

impl Prepared {
    /// The positions of a [`Prepared::Ready`]; panics on the other.
    #[cfg(test)]
    pub(crate) fn ready(self) -> Vec<OutputPosition> {
        match self {
            Prepared::Ready(positions) => positions,
            Prepared::CheckpointFirst => panic!("the sink asked for a checkpoint first"),
        }
    }
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

    /// The file whose lock stands for this output (see [`lock`](Self::lock)): next to a CSV or
    /// JSON Lines file, `.<file name>.trawl.lock`; next to per-day files, `.<base name>.trawl.lock`.
    /// A file of its own rather than the output: a CSV header is widened by replacing the file,
    /// which would drop a lock held on the file itself, and per-day files come and go.
    pub fn lock_path(&self) -> Option<PathBuf> {
        let beside = |dir: &Path, name: &str| dir.join(format!(".{name}.trawl.lock"));
        match self {
            OutputSpec::Csv { path, .. } | OutputSpec::Jsonl { path } => {
                let name = path.file_name()?.to_string_lossy();
                Some(beside(path.parent().unwrap_or(Path::new("")), &name))
            }
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                ..
            } => Some(beside(directory, base_name)),
            OutputSpec::Stdout { .. } => None,
        }
    }

    /// Locks the output for this run, or fails with [`SinkError::Busy`] at once when another
    /// trawl run writes it. Standard output needs no lock (`None`).
    pub fn lock(&self) -> Result<Option<OutputLock>, SinkError> {
        let Some(lock) = self.lock_path() else {
            return Ok(None);
        };
        let failed = |source| SinkError::Lock {
            output: self.location(),
            lock: lock.clone(),
            source,
        };
        // The output's folder is made here, before the sink would: durably, as the sink does,
        // so that it survives a power cut with the files the state store says it holds.
        if let Some(folder) = lock.parent() {
            jsonl::create_dir_durably(folder).map_err(failed)?;
        }
        match crate::files::try_lock_file(&lock) {
            Ok(Some(file)) => Ok(Some(OutputLock { _file: file })),
            Ok(None) => Err(SinkError::Busy {
                output: self.location(),
                lock,
            }),
            Err(source) => Err(failed(source)),
        }
    }

    /// Opens the output, cutting off what trawl appended past the committed positions and did
    /// not checkpoint (see [`Sink`]); `journals` is the folder where appends are noted until they
    /// are checkpointed.
    pub fn open(
        &self,
        mut committed: Committed,
        journals: &Path,
    ) -> Result<Box<dyn Sink>, SinkError> {
        match self {
            OutputSpec::Csv { path, options } => Ok(Box::new(CsvSink::open(
                path,
                committed.remove(&absolute_key(path)),
                options.clone(),
                journals,
            )?)),
            OutputSpec::Jsonl { path } => Ok(Box::new(JsonlSink::open(
                path,
                committed.get(&absolute_key(path)),
                journals,
            )?)),
            OutputSpec::DailyJsonl {
                directory,
                base_name,
                extension,
            } => Ok(Box::new(DailySink::open(
                directory, base_name, extension, committed, journals,
            )?)),
            OutputSpec::Stdout { format } => Ok(Box::new(StdoutSink::new(*format))),
        }
    }
}

/// Where unit tests keep the notes of what sinks append: one folder for the whole test binary
/// (each file's notes are named after its absolute path).
#[cfg(test)]
pub(crate) fn test_journals() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
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

    #[test]
    fn only_one_json_object_is_a_record() {
        for (text, expected) in [
            ("[1,2]", "found a list"),
            (" 12", "found a number"),
            ("null", "found null"),
            ("\"x\"", "found a string"),
            ("", "found nothing"),
        ] {
            assert_eq!(JsonObject::parse(text.into()).unwrap_err(), expected);
        }
        let error = JsonObject::parse(r#"{"a":1} {"#.into()).unwrap_err();
        assert_eq!(error, "expected the end of the record at byte 8, found `{`");
        assert!(JsonObject::parse(r#"{"a":"#.into()).is_err());
        assert!(JsonObject::parse("{\"a\":\"\u{1}\"}".into()).is_err());
    }

    #[test]
    fn a_record_nested_deeper_than_serde_json_reads_is_refused_without_recursing() {
        let depth = 100_000;
        let deep = format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let error = JsonObject::parse(deep).unwrap_err();
        assert_eq!(
            error,
            "expected at most 127 nested arrays and objects at byte 635, found `{`"
        );
        let deep_list = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(JsonObject::parse(deep_list).is_err());
        // As deep as allowed: every walk of it (the CSV cells, a parse) works.
        let allowed = crate::capabilities::responses::MAX_NESTING;
        let deepest = format!("{}1{}", r#"{"a":"#.repeat(allowed), "}".repeat(allowed));
        let object = JsonObject::parse(deepest).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(object.as_str()).is_ok());
        let mut cells = Vec::new();
        flatten::for_each_cell(object.as_str(), |name, cell| {
            cells.push((name.len(), cell.to_string()))
        })
        .unwrap();
        assert_eq!(cells, [(allowed * 2 - 1, "1".to_string())]);
    }

    #[test]
    fn an_object_is_kept_as_sent_unless_it_spans_lines() {
        let sent = r#"{"b": 1.50, "a":"\u00e9 x"}"#;
        assert_eq!(JsonObject::parse(sent.into()).unwrap().as_str(), sent);
        let pretty = "{\r\n  \"a\": \"x  y\",\n  \"b\": [1, 2]\n}";
        assert_eq!(
            JsonObject::parse(pretty.into()).unwrap().as_str(),
            r#"{"a":"x  y","b":[1,2]}"#
        );
    }

    #[test]
    fn a_piece_of_a_body_reads_as_its_own_text() {
        let body = SharedText::from("{\"data\":[{\"a\":\"é\"},{\n \"b\": 2\n}]}");
        let first = body.find("{\"a").unwrap()..body.find('}').unwrap() + 1;
        let piece = JsonObject::from_checked_piece(body.clone(), first.clone()).unwrap();
        assert_eq!(piece.as_str(), r#"{"a":"é"}"#);
        assert_eq!(piece.len(), first.len());
        assert_eq!(piece, JsonObject::parse(r#"{"a":"é"}"#.into()).unwrap());
        // A pretty-printed record is made one line, as a whole one is.
        let second = body.rfind("{\n").unwrap()..body.len() - 2;
        let compacted = JsonObject::from_checked_piece(body.clone(), second).unwrap();
        assert_eq!(compacted.as_str(), r#"{"b":2}"#);
        assert_eq!(compacted.len(), compacted.as_str().len());
        // A range that is not a piece of the text (past its end, or inside a character) is none.
        assert!(JsonObject::from_checked_piece(body.clone(), 0..body.len() + 1).is_none());
        let inside = body.find('é').unwrap() + 1;
        assert!(JsonObject::from_checked_piece(body.clone(), inside..body.len()).is_none());
    }

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
    fn one_run_at_a_time_writes_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let csv = OutputSpec::Jsonl {
            path: dir.path().join("log/events.jsonl"),
        };
        let held = csv.lock().unwrap().expect("a file output has a lock");
        let busy = csv.lock().unwrap_err().to_string();
        assert!(busy.contains("another trawl run is writing"), "{busy}");
        assert!(busy.contains("events.jsonl"), "{busy}");
        // The lock is a file of its own, owner-only, kept after the run.
        let lock = dir.path().join("log/.events.jsonl.trawl.lock");
        assert_eq!(csv.lock_path().unwrap(), lock);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(held);
        assert!(lock.exists());
        assert!(csv.lock().unwrap().is_some());

        // Per-day files: one lock for the folder and base name, whatever the day.
        let days = daily(dir.path().to_str().unwrap());
        let held = days.lock().unwrap();
        assert_eq!(
            days.lock_path().unwrap(),
            dir.path().join(".mail_audit.trawl.lock")
        );
        assert!(matches!(days.lock(), Err(SinkError::Busy { .. })));
        drop(held);
        let stdout = OutputSpec::Stdout {
            format: StdoutFormat::Jsonl,
        };
        assert!(stdout.lock().unwrap().is_none());
    }

    #[test]
    fn the_state_store_finds_every_day_file_and_nothing_for_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let spec = daily(dir.path().to_str().unwrap());
        let mut sink = spec.open(Committed::new(), test_journals()).unwrap();
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
            adopted: false,
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
