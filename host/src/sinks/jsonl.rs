//! JSON Lines output: one record per line, the vendor's JSON as received, each line ended by `\n`.
//!
//! [`LineFile`] is the append-only file underneath, shared with the per-day output: it does the
//! crash recovery on open and keeps the file's position.

use super::journal::AppendJournal;
use super::{OutputRecord, Prepared, Sink, SinkError, absolute_key};
use crate::files::sync_dir;
use crate::state::OutputPosition;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Pending lines are written to the file (not yet fsynced) once they reach this size, so that a
/// large window does not wait in memory.
const WRITE_AT: usize = 1 << 20;

/// Appends records to one JSON Lines file.
pub struct JsonlSink {
    file: LineFile,
}

impl JsonlSink {
    /// Opens `path` for appending. `committed` is the position the state store holds for it: bytes
    /// past it that a run appended and did not checkpoint are cut off (see [`LineFile::open`]);
    /// `journals` is the folder where appends are noted until they are checkpointed.
    pub fn open(
        path: &Path,
        committed: Option<&OutputPosition>,
        journals: &Path,
    ) -> Result<Self, SinkError> {
        Ok(JsonlSink {
            file: LineFile::open(path, committed, journals)?,
        })
    }
}

impl Sink for JsonlSink {
    fn prepare(&mut self, batch: &[OutputRecord]) -> Result<Prepared, SinkError> {
        if batch.is_empty() {
            return Ok(Prepared::Ready(Vec::new()));
        }
        Ok(Prepared::Ready(self.file.claim()?.into_iter().collect()))
    }

    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError> {
        for record in batch {
            self.file.push(record)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError> {
        Ok(vec![self.file.sync()?])
    }
}

/// A file that JSON lines are appended to, with its position.
///
/// Lines are buffered in memory by [`push`](Self::push) and written when there are enough of them
/// or at [`sync`](Self::sync), which fsyncs them before reporting the new length. A file is fsynced
/// before its handle is closed (see [`close`](Self::close)), so a closed file has nothing unsynced.
pub(super) struct LineFile {
    path: PathBuf,
    key: String,
    /// `None` while closed to save handles; reopened when there is something to write.
    file: Option<File>,
    /// The file's length: what was there, plus what was written to it.
    len: u64,
    /// Lines not written yet.
    pending: Vec<u8>,
    /// The file did not end with a newline (a file trawl never wrote): one goes before our first
    /// line, so that it starts on its own.
    needs_newline: bool,
    /// The state store holds a position for this file, or has been given one by
    /// [`claim`](Self::claim).
    recorded: bool,
    /// The file held someone else's content before trawl first wrote to it.
    adopted: bool,
    /// Bytes were written since the last fsync.
    unsynced: bool,
    /// The file was created by this run and its folder not fsynced since.
    dir_unsynced: bool,
    /// Notes of what was appended since the last sync.
    journal: AppendJournal,
}

impl LineFile {
    /// Opens (creating it and its folder if needed) `path` for appending.
    ///
    /// With a `committed` position (trawl wrote this file), bytes past it that the journal in
    /// `journals` vouches for were appended by a run that stopped before checkpointing them, and
    /// are cut off; any other bytes there stop the run ([`SinkError::NotTrawls`]). A file that
    /// does not end with a newline (one trawl never wrote, or one cut short by someone else) gets
    /// one before our first line, so that it starts on its own.
    pub(super) fn open(
        path: &Path,
        committed: Option<&OutputPosition>,
        journals: &Path,
    ) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            create_dir_durably(parent).map_err(io)?;
        }
        let key = absolute_key(path);
        let journal = AppendJournal::new(journals, &key);
        let existed = path.exists();
        let mut file = open_file(path).map_err(io)?;
        let mut len = file.metadata().map_err(io)?.len();
        // A file shorter than its position was cut or replaced by someone else: its position is
        // recorded again before the first append (see `claim`), or a later cut would be measured
        // from a length this file never had.
        let recorded = committed.is_some_and(|committed| len >= committed.len);
        // Content without a position is someone else's (trawl records one before it first
        // writes): a run with a range then skips the records the file holds.
        let adopted = committed.map_or(len > 0, |committed| committed.adopted);
        if let Some(committed) = committed {
            if len > committed.len {
                len = journal.cut_back(&mut file, path, committed.len, len)?;
            } else if len < committed.len {
                tracing::warn!(
                    path = %path.display(),
                    len,
                    checkpointed = committed.len,
                    "the output file is shorter than trawl left it; appending to it as it is"
                );
            }
        }
        let needs_newline = len > 0 && !ends_with_newline(&mut file, len).map_err(io)?;
        Ok(LineFile {
            path: path.to_path_buf(),
            key,
            file: Some(file),
            len,
            pending: Vec::new(),
            needs_newline,
            recorded,
            adopted,
            unsynced: false,
            dir_unsynced: !existed,
            journal,
        })
    }

    fn io(&self) -> impl Fn(std::io::Error) -> SinkError + '_ {
        |source| SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn position(&self) -> OutputPosition {
        OutputPosition {
            output: self.key.clone(),
            len: self.len,
            header: None,
            adopted: self.adopted,
        }
    }

    /// For [`Sink::prepare`]: the position to record before the first append to a file the state
    /// store holds no position for, so that if the run stops before its checkpoint, the next
    /// one cuts this run's lines off instead of taking them as someone else's. A file that does
    /// not end with a newline gets one first (made durable), so that the recorded position is at
    /// the start of a line. `None` once the file has a position.
    pub(super) fn claim(&mut self) -> Result<Option<OutputPosition>, SinkError> {
        if self.recorded {
            return Ok(None);
        }
        if self.needs_newline {
            self.needs_newline = false;
            self.handle()?;
            let file = self.file.as_mut().expect("opened above");
            let written = append_bytes(file, &mut self.journal, b"\n")
                .and_then(|len| file.sync_data().map(|_| len));
            self.len = written.map_err(self.io())?;
        }
        self.recorded = true;
        Ok(Some(self.position()))
    }

    /// Adds `record` as one line; it is durable after the next [`sync`](Self::sync).
    pub(super) fn push(&mut self, record: &OutputRecord) -> Result<(), SinkError> {
        if self.needs_newline {
            self.needs_newline = false;
            self.pending.push(b'\n');
        }
        push_json_line(record, &mut self.pending);
        if self.pending.len() >= WRITE_AT {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes the pending lines, makes the file durable, and returns its position.
    pub(super) fn sync(&mut self) -> Result<OutputPosition, SinkError> {
        self.write_pending()?;
        self.handle()?.sync_data().map_err(self.io())?;
        self.unsynced = false;
        self.journal.synced();
        if self.dir_unsynced {
            // A new file's name must be durable too, or the file could vanish in a power cut
            // while the state store says it has lines.
            let dir = self
                .path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            sync_dir(dir).map_err(self.io())?;
            self.dir_unsynced = false;
        }
        Ok(self.position())
    }

    /// Closes the handle, after fsyncing what was written; the next write reopens the file.
    /// Pending lines stay in memory.
    pub(super) fn close(&mut self) -> Result<(), SinkError> {
        if let Some(file) = &self.file
            && self.unsynced
        {
            file.sync_data().map_err(self.io())?;
            self.unsynced = false;
        }
        self.file = None;
        Ok(())
    }

    /// The open handle, reopening the file if it was closed.
    pub(super) fn handle(&mut self) -> Result<&mut File, SinkError> {
        if self.file.is_none() {
            let existed = self.path.exists();
            let file = open_file(&self.path).map_err(self.io())?;
            let len = file.metadata().map_err(self.io())?.len();
            if len != self.len {
                tracing::warn!(
                    path = %self.path.display(),
                    len,
                    expected = self.len,
                    "the output file changed while trawl was writing it; appending at its end"
                );
                self.len = len;
            }
            self.dir_unsynced |= !existed;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    fn write_pending(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.handle()?;
        let file = self.file.as_mut().expect("opened above");
        self.len = append_bytes(file, &mut self.journal, &self.pending).map_err(self.io())?;
        self.unsynced = true;
        self.pending.clear();
        Ok(())
    }
}

/// Writes `bytes` at the end of `file`, noted in `journal` first, and returns where the file now
/// ends (so that a position is right even if something else appended to it meanwhile).
fn append_bytes(
    file: &mut File,
    journal: &mut AppendJournal,
    bytes: &[u8],
) -> std::io::Result<u64> {
    let end = file.seek(SeekFrom::End(0))?;
    journal.note(end, &[bytes])?;
    file.write_all(bytes)?;
    file.stream_position()
}

fn open_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Appends `record`'s JSON object, as received (see [`JsonObject`](super::JsonObject)), and a
/// `\n` to `out`.
pub(super) fn push_json_line(record: &OutputRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(record.json.as_bytes());
    out.push(b'\n');
}

fn ends_with_newline(file: &mut File, len: u64) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Creates `dir` and its missing parents, and fsyncs the folders that got a new entry, so that
/// the new folders survive a power cut.
pub(super) fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sinks::test_journals;

    pub(in crate::sinks) fn record(id: &str, event_time: i64, json: &str) -> OutputRecord {
        OutputRecord {
            id: id.into(),
            event_time,
            fetched_at: 0,
            json: super::super::JsonObject::parse(json.into()).unwrap(),
            rendered: None,
        }
    }

    /// What the engine does with one batch: positions from `prepare` are recorded, then those of
    /// `sync`. Returns every position recorded.
    pub(in crate::sinks) fn write(
        sink: &mut dyn Sink,
        batch: &[OutputRecord],
    ) -> Vec<OutputPosition> {
        let mut positions = sink.prepare(batch).unwrap().ready();
        sink.append(batch).unwrap();
        positions.extend(sink.sync().unwrap());
        positions
    }

    /// The committed map a run would load after recording `positions` in order.
    pub(in crate::sinks) fn committed(
        positions: impl IntoIterator<Item = OutputPosition>,
    ) -> super::super::Committed {
        positions
            .into_iter()
            .map(|position| (position.output.clone(), position))
            .collect()
    }

    fn append_raw(path: &Path, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    #[test]
    fn writes_one_record_per_line_as_received() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/events.jsonl");
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        let positions = write(
            &mut sink,
            &[
                record("1", 0, r#"{"b": 1, "a":"x y","n":1.50}"#),
                record(
                    "2",
                    0,
                    "{\n  \"z\": \"line\\nbreak\",\r\n  \"a\": [1, 2]\n}\n",
                ),
                record("3", 0, r#"{"s":"é \" \\"}"#),
            ],
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"b\": 1, \"a\":\"x y\",\"n\":1.50}\n\
             {\"z\":\"line\\nbreak\",\"a\":[1,2]}\n\
             {\"s\":\"é \\\" \\\\\"}\n"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        let last = positions.last().unwrap();
        assert_eq!(last.output, absolute_key(&path));
        assert_eq!(last.len, text.len() as u64);
        assert_eq!(last.header, None);
    }

    #[test]
    fn positions_match_the_file_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        // The first batch of a file with no position claims it at its current length.
        let batch = [record("1", 0, r#"{"id":1}"#)];
        assert_eq!(sink.prepare(&batch).unwrap().ready()[0].len, 0);
        sink.append(&batch).unwrap();
        assert_eq!(sink.sync().unwrap()[0].len, 9);
        for round in 2..5 {
            let batch = [record("n", 0, r#"{"id":22}"#)];
            assert!(sink.prepare(&batch).unwrap().ready().is_empty());
            sink.append(&batch).unwrap();
            let position = sink.sync().unwrap().remove(0);
            assert_eq!(position.len, std::fs::metadata(&path).unwrap().len());
            assert_eq!(position.len, 9 + 10 * (round - 1));
        }
    }

    #[test]
    fn an_uncommitted_tail_is_cut_off_on_open_and_a_line_added_by_hand_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        let recorded = write(&mut sink, &[record("1", 0, r#"{"id":1}"#)]);
        let text = std::fs::read_to_string(&path).unwrap();
        // A crash after these lines were written but before their checkpoint.
        write(&mut sink, &[record("2", 0, r#"{"id":2}"#)]);
        drop(sink);
        let committed = committed(recorded);
        let position = &committed[&absolute_key(&path)];

        // Then someone adds a line: nothing is cut, and the run is told what is there.
        append_raw(&path, b"{\"by\":\"hand\"}\n");
        let before = std::fs::read(&path).unwrap();
        let Err(error) = JsonlSink::open(&path, Some(position), test_journals()) else {
            panic!("bytes trawl did not write are not cut");
        };
        assert!(
            matches!(
                error,
                SinkError::NotTrawls {
                    checkpointed: 9,
                    extra: 23,
                    trawls: 9,
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("only the first 9 of them"), "{message}");
        assert!(message.contains("truncate -s 9"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // Without it, trawl's own uncommitted line is cut off and written again, once.
        std::fs::write(&path, &before[..18]).unwrap();
        let mut sink = JsonlSink::open(&path, Some(position), test_journals()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        write(&mut sink, &[record("2", 0, r#"{"id":2}"#)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":1}\n{\"id\":2}\n"
        );
    }

    #[test]
    fn a_crash_before_the_first_checkpoint_is_cut_off_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"theirs\":1}").unwrap();
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        let batch = [record("1", 0, r#"{"id":1}"#)];
        // Only what prepare returned was recorded; the run stopped before its checkpoint.
        let claimed = sink.prepare(&batch).unwrap().ready();
        sink.append(&batch).unwrap();
        sink.sync().unwrap();
        drop(sink);
        assert_eq!(claimed[0].len, 13);

        let committed = committed(claimed);
        let position = &committed[&absolute_key(&path)];
        let mut sink = JsonlSink::open(&path, Some(position), test_journals()).unwrap();
        write(&mut sink, &batch);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"theirs\":1}\n{\"id\":1}\n"
        );
    }

    #[test]
    fn a_file_trawl_never_wrote_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"old\":1}\n{\"old\":2, \"unfinished\": true}").unwrap();
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        let positions = write(&mut sink, &[record("1", 0, r#"{"id":1}"#)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"old\":1}\n{\"old\":2, \"unfinished\": true}\n{\"id\":1}\n"
        );
        assert_eq!(positions.last().unwrap().len, text.len() as u64);

        let path = dir.path().join("ended.jsonl");
        std::fs::write(&path, "{\"old\":1}\n").unwrap();
        let mut sink = JsonlSink::open(&path, None, test_journals()).unwrap();
        write(&mut sink, &[record("1", 0, r#"{"id":1}"#)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"old\":1}\n{\"id\":1}\n"
        );
    }
}
