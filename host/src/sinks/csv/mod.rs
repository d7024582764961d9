//! CSV output: one header, the union of every field seen; rows appended in the order given.
//!
//! Written like Python's `csv.DictWriter` (the seed scripts' writer): CRLF line ends and minimal
//! quoting, so a file started by a seed script can be continued by trawl and vice versa.

mod pending;
mod plain;
mod row;

use self::pending::PendingRows;
use self::plain::MemberGuesses;
use self::row::{ColumnGuesses, CsvEncoder, Layout, RowEncoder};
use super::flatten::column_names;
use super::journal::AppendJournal;
use super::{Encoder, OutputRecord, Prepared, Rendered, Sink, SinkError, absolute_key};
use crate::files::sync_dir;
use crate::state::OutputPosition;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// A column trawl adds to every row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraColumn {
    /// `local_timestamp`: when the record was fetched, in the configured time zone, as
    /// `2025-06-08 09:07:21 JST`.
    LocalTimestamp,
}

impl ExtraColumn {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "local_timestamp" => Some(ExtraColumn::LocalTimestamp),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            ExtraColumn::LocalTimestamp => "local_timestamp",
        }
    }
}

/// How a CSV output is laid out.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Added first, in this order.
    pub extra_columns: Vec<ExtraColumn>,
    /// Record fields that come next, in this order; the rest follow sorted by name.
    pub leading_columns: Vec<String>,
    /// For `local_timestamp`.
    pub timezone: jiff::tz::TimeZone,
    /// The user named this file, directly (a flag, the config, a variable they set) or by
    /// approving the connector whose default it is (the review shows it): trawl may then rewrite
    /// it to widen its header even though it did not create it (a seed script's file). A file
    /// under trawl's own default name that trawl did not create is never rewritten.
    pub named_by_user: bool,
}

pub struct CsvSink {
    path: PathBuf,
    key: String,
    options: CsvOptions,
    file: File,
    /// Whether the state store has a position for this file.
    recorded: bool,
    /// It held someone else's content before trawl first wrote to it.
    adopted: bool,
    /// The header; empty until the first record arrives for a new file.
    layout: Arc<Layout>,
    /// The header as the encoder sees it: replaced with `layout`.
    shared_layout: Arc<RwLock<Arc<Layout>>>,
    len: u64,
    /// Rows not written to the file yet.
    pending: PendingRows,
    /// Rows were written to the file since the last sync.
    unsynced: bool,
    /// Notes of what was appended since the last sync.
    journal: AppendJournal,
}

/// Pending rows are written to the file (not yet fsynced) once they reach this size, so that many
/// windows committed together do not wait in memory.
const WRITE_AT: usize = 1 << 20;

impl CsvSink {
    /// Opens `path` for appending. `committed` is the position the state store holds for this
    /// output: bytes past it that a run appended and did not checkpoint are cut off, and any other
    /// bytes there stop the run ([`SinkError::NotTrawls`]); `journals` is the folder where appends
    /// are noted until they are checkpointed.
    pub fn open(
        path: &Path,
        committed: Option<OutputPosition>,
        options: CsvOptions,
        journals: &Path,
    ) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let key = absolute_key(path);
        let journal = AppendJournal::new(journals, &key);
        let mut len = file.metadata().map_err(io)?.len();
        if committed.is_none() && len > 0 && journal.vouched(&mut file, 0, len).map_err(io)? == len
        {
            // All of it is what trawl wrote to a new file before its first position was recorded
            // (the header goes in just before): nothing of it was checkpointed.
            tracing::info!(
                path = %path.display(),
                bytes = len,
                "cutting off what an interrupted run appended and never checkpointed"
            );
            file.set_len(0).map_err(io)?;
            file.sync_all().map_err(io)?;
            len = 0;
        }
        let mut columns = read_header(&mut file, path)?;
        let mut recorded = committed.is_some();
        // Content without a position: someone else's (trawl records a position before it first
        // writes to a file).
        let mut adopted = committed
            .as_ref()
            .map_or(len > 0, |committed| committed.adopted);
        if let Some(committed) = committed {
            // The file is ours as recorded only if its header is the recorded one; otherwise it
            // was replaced (by the user, or by a widening rewrite whose checkpoint never landed,
            // which holds only committed rows) and is taken as it is.
            let header = (!columns.is_empty()).then(|| encode_row(&columns));
            // A position of 0 was recorded before trawl first wrote to the file: all of it is ours.
            let same_file = committed.header == header || committed.len == 0;
            if same_file && len > committed.len {
                len = journal.cut_back(&mut file, path, committed.len, len)?;
                if len == 0 {
                    columns.clear();
                }
            }
            if !same_file || len < committed.len {
                // The recorded position is not this file's: the file was replaced (a widening
                // rewrite whose position never landed holds only checkpointed rows) or cut short.
                // Its position is recorded again before anything is appended, as for a file with
                // none: otherwise rows appended by a run that dies before its checkpoint would
                // stay, as the position says nothing about them, and be written again.
                recorded = false;
            }
            if !same_file {
                adopted = len > 0;
            }
        }
        if len > 0 && !ends_with_newline(&mut file, len).map_err(io)? {
            // A line cut short by something else: finish it so that our rows start on their own.
            file.seek(SeekFrom::End(0)).map_err(io)?;
            file.write_all(b"\r\n").map_err(io)?;
            len += 2;
        }
        let layout = Arc::new(Layout::new(0, columns, &options.extra_columns));
        Ok(CsvSink {
            path: path.to_path_buf(),
            key,
            file,
            recorded,
            adopted,
            shared_layout: Arc::new(RwLock::new(layout.clone())),
            layout,
            options,
            len,
            pending: PendingRows::default(),
            unsynced: false,
            journal,
        })
    }

    /// Makes `columns` the header rows are made under, here and in the encoder.
    fn set_columns(&mut self, columns: Vec<String>) {
        self.layout = Arc::new(Layout::new(
            self.layout.version + 1,
            columns,
            &self.options.extra_columns,
        ));
        *self
            .shared_layout
            .write()
            .unwrap_or_else(PoisonError::into_inner) = self.layout.clone();
    }

    fn io(&self) -> impl Fn(std::io::Error) -> SinkError + '_ {
        |source| SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn position(&self) -> OutputPosition {
        OutputPosition {
            output: self.key.clone(),
            len: self.len,
            header: (!self.layout.columns.is_empty()).then(|| encode_row(&self.layout.columns)),
            adopted: self.adopted,
        }
    }

    /// Replaces the file with one whose header has `columns`, rows moved under their names.
    fn rewrite(&mut self, columns: Vec<String>) -> Result<(), SinkError> {
        let io = |source| SinkError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        // The rewritten file keeps the mode the user gave the old one.
        let permissions = self.file.metadata().map_err(io)?.permissions();
        temp.as_file().set_permissions(permissions).map_err(io)?;
        {
            let mut writer = csv_writer(std::io::BufWriter::new(temp.as_file_mut()));
            writer
                .write_record(&columns)
                .map_err(|error| io(error.into()))?;
            self.file.seek(SeekFrom::Start(0)).map_err(io)?;
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(std::io::BufReader::new(&mut self.file));
            let old_columns = self.layout.columns.clone();
            for (index, row) in reader.records().enumerate() {
                let row = row.map_err(|error| SinkError::Existing {
                    path: self.path.clone(),
                    line: error
                        .position()
                        .map_or(index as u64 + 2, |position| position.line()),
                    message: error.to_string(),
                })?;
                let by_name: HashMap<&str, &str> = old_columns
                    .iter()
                    .map(String::as_str)
                    .zip(row.iter())
                    .collect();
                let cells = columns
                    .iter()
                    .map(|column| by_name.get(column.as_str()).copied().unwrap_or(""));
                writer
                    .write_record(cells)
                    .map_err(|error| io(error.into()))?;
            }
            writer.flush().map_err(io)?;
        }
        temp.as_file().sync_all().map_err(io)?;
        let file = temp.persist(&self.path).map_err(|error| io(error.error))?;
        sync_dir(dir).map_err(io)?;
        self.len = file.metadata().map_err(io)?.len();
        self.file = file;
        // Notes describe the file that was replaced; the rewrite's position is recorded at once.
        self.journal.synced();
        self.set_columns(columns);
        Ok(())
    }
}

/// The most columns a CSV file may have: as many as a spreadsheet opens. Each new column
/// rewrites the file, so a connector bringing a new field with every record would otherwise
/// rewrite it without end.
pub const MAX_CSV_COLUMNS: usize = 16_384;
/// The longest a CSV file's header may be, in bytes: the header is rewritten with every new
/// column, and a column's name (a dotted path of a record's members) may be as long as a record.
pub const MAX_CSV_HEADER_BYTES: usize = 1 << 20;

/// Refuses `record` if the header would grow past its limits with the fields it brings, to
/// `columns` columns and `bytes` bytes.
fn check_width(record: &OutputRecord, columns: usize, bytes: usize) -> Result<(), SinkError> {
    if columns > MAX_CSV_COLUMNS || bytes > MAX_CSV_HEADER_BYTES {
        return Err(SinkError::Record {
            id: record.id.clone(),
            message: format!(
                "its fields would take the CSV header to {columns} columns and {bytes} bytes; a \
                 CSV file has at most {MAX_CSV_COLUMNS} columns and a {} KiB header (JSON Lines, \
                 `output: (format: \"jsonl\")`, has no such limit)",
                MAX_CSV_HEADER_BYTES >> 10
            ),
        });
    }
    Ok(())
}

impl Sink for CsvSink {
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Prepared, SinkError> {
        let layout = self.layout.clone();
        let mut guesses = ColumnGuesses::default();
        let mut members = MemberGuesses::default();
        let mut new_fields: Vec<String> = Vec::new();
        let mut new_bytes = 0;
        let layout_bytes: usize = layout.columns.iter().map(|name| name.len() + 1).sum();
        for record in batch {
            // Made under this header, or read quickly: every field has its column.
            if self.made_ahead(record).is_some() || layout.has_every_column(record, &mut members) {
                continue;
            }
            let mut place = 0;
            column_names(&record.json, |name| {
                let known = guesses.column(place, name, &layout);
                if known.is_none() && !new_fields.iter().any(|field| field == name) {
                    new_fields.push(name.to_string());
                    new_bytes += name.len() + 1;
                }
                place += 1;
            })
            .map_err(|error| SinkError::Record {
                id: record.id.clone(),
                message: error.to_string(),
            })?;
            check_width(
                record,
                layout.columns.len() + new_fields.len(),
                layout_bytes + new_bytes,
            )?;
        }
        if !new_fields.is_empty() && self.len > 0 && (self.unsynced || !self.pending.is_empty()) {
            // Widening rewrites the file, and the rewrite's position is recorded at once: rows
            // not checkpointed yet must not be in it.
            return Ok(Prepared::CheckpointFirst);
        }
        // The first time trawl writes to a file it has no position for, that position is recorded
        // first: a crash before the window's checkpoint must not leave our rows looking like
        // someone else's content.
        let mut positions = Vec::new();
        if !self.recorded {
            self.recorded = true;
            positions.push(self.position());
        }
        if new_fields.is_empty() {
            return Ok(Prepared::Ready(positions));
        }
        new_fields.sort();
        if self.len == 0 {
            // A new file: trawl's columns, then the leading fields, then the rest by name.
            let mut columns: Vec<String> = self
                .options
                .extra_columns
                .iter()
                .map(|column| column.name().to_string())
                .collect();
            for leading in &self.options.leading_columns {
                if let Some(at) = new_fields.iter().position(|field| field == leading) {
                    columns.push(new_fields.remove(at));
                }
            }
            columns.extend(new_fields);
            let header = encode_row(&columns);
            self.file.seek(SeekFrom::Start(0)).map_err(self.io())?;
            self.journal
                .note(0, &[header.as_bytes()])
                .map_err(self.io())?;
            self.file.write_all(header.as_bytes()).map_err(self.io())?;
            self.len = header.len() as u64;
            self.set_columns(columns);
            return Ok(Prepared::Ready(positions));
        }
        if self.adopted && !self.options.named_by_user {
            return Err(SinkError::RewriteNotAllowed {
                path: self.path.clone(),
                fields: new_fields,
            });
        }
        // Existing columns keep their place; new ones are added at the end.
        let mut columns = self.layout.columns.clone();
        tracing::info!(path = %self.path.display(), new = ?new_fields, "widening the CSV header");
        columns.extend(new_fields);
        self.rewrite(columns)?;
        positions.push(self.position());
        Ok(Prepared::Ready(positions))
    }

    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError> {
        let layout = self.layout.clone();
        let mut encoder = RowEncoder::new(&layout, &self.options.timezone);
        for record in batch {
            if let Some(made) = self.made_ahead(record) {
                self.pending.push_made(made);
                continue;
            }
            let refused = |message: String| SinkError::Record {
                id: record.id.clone(),
                message,
            };
            match self.pending.push_own(|rows| encoder.encode(record, rows)) {
                Ok(None) => {}
                Ok(Some(name)) => {
                    return Err(refused(format!(
                        "field `{name}` has no column: prepare() was not called"
                    )));
                }
                Err(error) => return Err(refused(error.to_string())),
            }
        }
        if self.pending.len() >= WRITE_AT {
            self.write_pending()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError> {
        self.write_pending()?;
        self.file.sync_data().map_err(self.io())?;
        self.unsynced = false;
        self.journal.synced();
        Ok(vec![self.position()])
    }

    fn encoder(&self) -> Option<Arc<dyn Encoder>> {
        Some(Arc::new(CsvEncoder {
            layout: self.shared_layout.clone(),
            timezone: self.options.timezone.clone(),
        }))
    }
}

impl CsvSink {
    /// The row of `record` the encoder made, if it was made under the header the file has now.
    fn made_ahead<'a>(&self, record: &'a OutputRecord) -> Option<&'a Rendered> {
        record
            .rendered
            .as_ref()
            .filter(|rendered| rendered.layout == self.layout.version)
    }

    fn write_pending(&mut self) -> Result<(), SinkError> {
        if !self.pending.is_empty() {
            let end = self.file.seek(SeekFrom::End(0)).map_err(self.io())?;
            let len = self.pending.len() as u64;
            let journal = &mut self.journal;
            self.pending
                .write_to(&mut self.file, |at, slices| journal.note(end + at, slices))
                .map_err(|source| SinkError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            self.len += len;
            self.unsynced = true;
        }
        Ok(())
    }
}

fn csv_writer<W: Write>(inner: W) -> ::csv::Writer<W> {
    ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(inner)
}

/// One CSV line, terminator included.
fn encode_row(cells: &[String]) -> String {
    let mut writer = csv_writer(Vec::new());
    writer
        .write_record(cells)
        .expect("writing to memory cannot fail");
    String::from_utf8(writer.into_inner().expect("writing to memory cannot fail"))
        .expect("CSV of strings is UTF-8")
}

fn read_header(file: &mut File, path: &Path) -> Result<Vec<String>, SinkError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|source| SinkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(&mut *file));
    let mut header = ::csv::StringRecord::new();
    match reader.read_record(&mut header) {
        Ok(false) => Ok(Vec::new()),
        Ok(true) => Ok(header.iter().map(str::to_string).collect()),
        Err(error) => Err(SinkError::Existing {
            path: path.to_path_buf(),
            line: 1,
            message: format!("cannot read the CSV header: {error}"),
        }),
    }
}

fn ends_with_newline(file: &mut File, len: u64) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::test_journals;

    fn record(id: &str, fetched_at: i64, json: &str) -> OutputRecord {
        OutputRecord {
            id: id.into(),
            event_time: 0,
            fetched_at,
            json: super::super::JsonObject::parse(json.into()).unwrap(),
            rendered: None,
        }
    }

    fn options() -> CsvOptions {
        CsvOptions {
            extra_columns: vec![ExtraColumn::LocalTimestamp],
            leading_columns: vec![],
            timezone: jiff::tz::TimeZone::get("Asia/Tokyo").unwrap(),
            named_by_user: true,
        }
    }

    fn write(sink: &mut CsvSink, batch: &[OutputRecord]) -> OutputPosition {
        sink.prepare(batch).unwrap().ready();
        sink.append(batch).unwrap();
        sink.sync().unwrap().remove(0)
    }

    #[test]
    fn writes_the_seed_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/siem_data.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let fetched = 1_749_341_241_000; // 2025-06-08 00:07:21 UTC
        write(
            &mut sink,
            &[record(
                "1",
                fetched,
                r#"{"id":1,"event":"switch user","user_agent":"Mozilla/5.0 (KHTML, like Gecko)","note":"a\nb"}"#,
            )],
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "local_timestamp,event,id,note,user_agent\r\n\
             2025-06-08 09:07:21 JST,switch user,1,\"a\nb\",\"Mozilla/5.0 (KHTML, like Gecko)\"\r\n"
        );
    }

    #[test]
    fn fields_in_another_order_or_missing_find_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(
            &path,
            None,
            CsvOptions {
                extra_columns: vec![],
                ..options()
            },
            test_journals(),
        )
        .unwrap();
        // The second record upsets every guess the first one made; the third skips a place.
        write(
            &mut sink,
            &[
                record("1", 0, r#"{"a":"1","b":"2","c":{"d":"3"}}"#),
                record("2", 0, r#"{"c":{"d":"4"},"b":"5","a":"6"}"#),
                record("3", 0, r#"{"b":"7","c":{"d":"8"}}"#),
                record("4", 0, r#"{"a":"9","a":"10"}"#),
            ],
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "a,b,c.d\r\n1,2,3\r\n6,5,4\r\n,7,8\r\n10,,\r\n");
    }

    #[test]
    fn a_header_past_its_limits_is_refused_naming_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let wide: Vec<String> = (0..MAX_CSV_COLUMNS)
            .map(|index| format!("\"f{index}\":1"))
            .collect();
        let batch = [
            record("narrow", 0, r#"{"a":1}"#),
            record("wide", 0, &format!("{{{}}}", wide.join(","))),
        ];
        let error = sink.prepare(&batch).unwrap_err().to_string();
        assert!(
            error.starts_with("record wide: its fields would take the CSV header to 16385 columns"),
            "{error}"
        );
        let long_name = format!("{{\"{}\":1}}", "n".repeat(MAX_CSV_HEADER_BYTES));
        let error = sink
            .prepare(&[record("long", 0, &long_name)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("a 1024 KiB header"), "{error}");
        // Within the limits, the sink goes on.
        write(&mut sink, &[record("1", 0, r#"{"a":1}"#)]);
    }

    #[test]
    fn new_fields_widen_the_header_and_keep_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        write(&mut sink, &[record("1", 0, r#"{"id":1,"b":"x"}"#)]);
        let batch = [record("2", 0, r#"{"id":2,"a":"new","b":"y"}"#)];
        let rewritten = sink
            .prepare(&batch)
            .unwrap()
            .ready()
            .pop()
            .expect("a rewrite");
        sink.append(&batch).unwrap();
        let position = sink.sync().unwrap().remove(0);
        assert_eq!(
            rewritten.header.as_deref(),
            Some("local_timestamp,b,id,a\r\n")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "local_timestamp,b,id,a");
        assert_eq!(lines[1], "1970-01-01 09:00:00 JST,x,1,");
        assert_eq!(lines[2], "1970-01-01 09:00:00 JST,y,2,new");
        assert_eq!(position.len, text.len() as u64);
    }

    #[test]
    fn uncommitted_tail_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let committed = write(&mut sink, &[record("1", 0, r#"{"id":1}"#)]);
        // A crash after these rows were written but before their checkpoint.
        write(&mut sink, &[record("2", 0, r#"{"id":2}"#)]);
        drop(sink);
        // A row cut short by someone else after them: not trawl's, so nothing is cut.
        let whole = std::fs::read(&path).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"1970-01-01 09:00:00 JST,3").unwrap();
        let Err(error) = CsvSink::open(&path, Some(committed.clone()), options(), test_journals())
        else {
            panic!("bytes trawl did not write are not cut");
        };
        assert!(matches!(error, SinkError::NotTrawls { .. }), "{error:?}");
        assert!(std::fs::read(&path).unwrap().ends_with(b",3"));

        std::fs::write(&path, &whole).unwrap();
        let mut sink =
            CsvSink::open(&path, Some(committed.clone()), options(), test_journals()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed.len);
        write(&mut sink, &[record("2", 0, r#"{"id":2}"#)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(",2\r\n").count(), 1, "{text}");
        assert!(!text.contains(",3"));
    }

    #[test]
    fn rows_after_a_widening_whose_position_was_lost_are_cut_off_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let checkpointed = write(&mut sink, &[record("1", 0, r#"{"id":1}"#)]);
        // A widening rewrite, then the run dies before the rewrite's position is recorded.
        let wider = [record("2", 0, r#"{"id":2,"real_user":"x"}"#)];
        sink.prepare(&wider).unwrap().ready();
        drop(sink);
        let rewritten = std::fs::read_to_string(&path).unwrap();

        // The next run takes the rewritten file as it is; its first rows claim a position first.
        let mut sink = CsvSink::open(
            &path,
            Some(checkpointed.clone()),
            options(),
            test_journals(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
        let claimed = sink.prepare(&wider).unwrap().ready();
        assert_eq!(
            claimed.len(),
            1,
            "the file's new position is recorded first"
        );
        assert_eq!(claimed[0].len, rewritten.len() as u64);
        sink.append(&wider).unwrap();
        sink.sync().unwrap();
        drop(sink);

        // That run dies before its checkpoint: the rerun cuts its rows off, to be written once.
        let mut sink =
            CsvSink::open(&path, Some(claimed[0].clone()), options(), test_journals()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
        write(&mut sink, &wider);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(",2,").count(), 1, "{text}");
    }

    #[test]
    fn a_new_file_killed_before_its_first_position_landed_is_still_trawls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let batch = [record("1", 0, r#"{"id":1}"#)];
        // The header is written as the batch is prepared; the run dies before the position that
        // prepare returned is recorded.
        sink.prepare(&batch).unwrap().ready();
        drop(sink);
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        let sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(!sink.adopted, "a file trawl created is not someone else's");
        // Someone else's file without a position is kept as it is.
        std::fs::write(&path, "id\r\n7\r\n").unwrap();
        let sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        assert!(sink.adopted);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "id\r\n7\r\n");
    }

    #[test]
    fn a_new_file_is_recorded_before_its_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let batch = [record("1", 0, r#"{"id":1}"#)];
        let before_writing = sink.prepare(&batch).unwrap().ready();
        assert_eq!(before_writing.len(), 1);
        assert_eq!(before_writing[0].len, 0);
        sink.append(&batch).unwrap();
        sink.sync().unwrap();
        drop(sink);
        // The run died before its checkpoint: only the position recorded up front exists.
        CsvSink::open(
            &path,
            Some(before_writing[0].clone()),
            options(),
            test_journals(),
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_file_started_elsewhere_keeps_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "local_timestamp,id,event\r\nx,1,login\r\n").unwrap();
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        write(&mut sink, &[record("2", 0, r#"{"event":"logout","id":2}"#)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "local_timestamp,id,event\r\nx,1,login\r\n1970-01-01 09:00:00 JST,2,logout\r\n"
        );
    }

    #[test]
    fn widening_waits_until_appended_rows_are_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        write(&mut sink, &[record("1", 0, r#"{"a":"1"}"#)]);
        // A window appended but not yet synced and checkpointed...
        let second = [record("2", 0, r#"{"a":"2"}"#)];
        sink.prepare(&second).unwrap().ready();
        sink.append(&second).unwrap();
        // ...must not end up in a rewrite whose position is recorded before its checkpoint.
        let wider = [record("3", 0, r#"{"a":"3","b":"x"}"#)];
        assert_eq!(sink.prepare(&wider).unwrap(), Prepared::CheckpointFirst);
        sink.sync().unwrap();
        let rewritten = sink.prepare(&wider).unwrap().ready();
        assert_eq!(rewritten.len(), 1);
        sink.append(&wider).unwrap();
        let end = sink.sync().unwrap().remove(0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(end.len, text.len() as u64);
        let rows: Vec<&str> = text
            .lines()
            .map(|line| line.split_once(',').unwrap().1)
            .collect();
        assert!(text.ends_with("\r\n"));
        assert_eq!(rows, ["a,b", "1,", "2,", "3,x"]);
    }

    #[test]
    fn rows_made_ahead_are_written_only_under_the_header_they_were_made_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let encoder = sink.encoder().unwrap();
        // Nothing is made ahead of a new file's header.
        let mut first = [record("1", 0, r#"{"a":"1"}"#)];
        encoder.encode(&mut first);
        assert_eq!(first[0].rendered, None);
        write(&mut sink, &first);

        // Two windows made under the header `a`; the first brings a new field, the second not.
        let mut wider = [record("2", 0, r#"{"a":"2","b":"x"}"#)];
        let mut later = [record("3", 0, r#"{"a":"3"}"#)];
        encoder.encode(&mut wider);
        encoder.encode(&mut later);
        assert_eq!(wider[0].rendered, None);
        assert!(later[0].rendered.is_some());
        write(&mut sink, &wider);
        // `later` was made for the narrower header: written as it is, its row would be a cell short.
        write(&mut sink, &later);
        // A window made after the widening is made under the new header.
        let mut last = [record("4", 0, r#"{"b":"y","a":"4"}"#)];
        encoder.encode(&mut last);
        assert!(last[0].rendered.is_some());
        write(&mut sink, &last);

        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<&str> = text
            .lines()
            .map(|line| line.split_once(',').unwrap().1)
            .collect();
        assert_eq!(rows, ["a,b", "1,", "2,x", "3,", "4,y"]);
    }

    #[test]
    fn a_file_trawl_did_not_create_is_rewritten_only_when_the_user_named_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.csv");
        std::fs::write(&path, "a\r\n1\r\n").unwrap();
        let unnamed = || CsvOptions {
            extra_columns: vec![],
            named_by_user: false,
            ..options()
        };
        let mut sink = CsvSink::open(&path, None, unnamed(), test_journals()).unwrap();
        // Appending under the header it has is fine.
        let position = write(&mut sink, &[record("1", 0, r#"{"a":"2"}"#)]);
        assert!(position.adopted);
        let Err(error) = sink.prepare(&[record("2", 0, r#"{"a":"3","b":"x"}"#)]) else {
            panic!("a widening is refused");
        };
        let message = error.to_string();
        assert!(message.contains("was not created by trawl"), "{message}");
        assert!(message.contains("--output"), "{message}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\r\n1\r\n2\r\n");
        drop(sink);
        // The state store remembers that the file was adopted.
        let mut sink =
            CsvSink::open(&path, Some(position.clone()), unnamed(), test_journals()).unwrap();
        assert!(sink.prepare(&[record("2", 0, r#"{"b":"x"}"#)]).is_err());
        // Named by the user, it is widened.
        let mut named = CsvSink::open(
            &path,
            Some(position),
            CsvOptions {
                named_by_user: true,
                ..unnamed()
            },
            test_journals(),
        )
        .unwrap();
        write(&mut named, &[record("2", 0, r#"{"a":"3","b":"x"}"#)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\r\n1,\r\n2,\r\n3,x\r\n"
        );
    }

    #[test]
    fn a_file_trawl_created_is_widened_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ours.csv");
        let options = || CsvOptions {
            extra_columns: vec![],
            named_by_user: false,
            ..options()
        };
        let mut sink = CsvSink::open(&path, None, options(), test_journals()).unwrap();
        let position = write(&mut sink, &[record("1", 0, r#"{"a":"1"}"#)]);
        assert!(!position.adopted);
        let mut sink = CsvSink::open(&path, Some(position), options(), test_journals()).unwrap();
        write(&mut sink, &[record("2", 0, r#"{"b":"2"}"#)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\r\n1,\r\n,2\r\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_widened_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.csv");
        std::fs::write(&path, "a\r\n1\r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let mut sink = CsvSink::open(
            &path,
            None,
            CsvOptions {
                extra_columns: vec![],
                ..options()
            },
            test_journals(),
        )
        .unwrap();
        write(&mut sink, &[record("1", 0, r#"{"a":"2","b":"3"}"#)]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o664);
    }
}
