//! JSON Lines to standard output, for piping into another program.
//!
//! Standard output has no file to cut back after a crash: records written by a run that stopped
//! before its checkpoint are written again by the next run. Exactly once holds only for file
//! outputs; with stdout it is at least once, and the reader must tolerate repeats (each record's
//! id is in its JSON).

use super::jsonl::push_json_line;
use super::{OutputRecord, Prepared, Sink, SinkError};
use crate::state::OutputPosition;
use std::io::Write;
use std::path::PathBuf;

/// How records are written to standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdoutFormat {
    /// One JSON object per line, as the vendor sent it (made compact if it spanned lines).
    #[default]
    Jsonl,
}

/// Writes records to standard output. They are buffered until [`Sink::sync`], which writes the
/// whole buffer holding the stream's lock once (so lines from elsewhere in the process cannot
/// land inside it) and flushes.
pub struct StdoutSink {
    out: Box<dyn Write + Send>,
    pending: Vec<u8>,
}

impl StdoutSink {
    pub fn new(format: StdoutFormat) -> Self {
        match format {
            StdoutFormat::Jsonl => Self::with_writer(Box::new(std::io::stdout())),
        }
    }

    fn with_writer(out: Box<dyn Write + Send>) -> Self {
        StdoutSink {
            out,
            pending: Vec::new(),
        }
    }

    fn io(source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: PathBuf::from("standard output"),
            source,
        }
    }
}

impl Sink for StdoutSink {
    fn prepare(&mut self, _batch: &[OutputRecord]) -> Result<Prepared, SinkError> {
        Ok(Prepared::Ready(Vec::new()))
    }

    fn append(&mut self, batch: &[OutputRecord]) -> Result<(), SinkError> {
        for record in batch {
            push_json_line(record, &mut self.pending);
        }
        Ok(())
    }

    /// Writes and flushes; there is no position to report.
    fn sync(&mut self) -> Result<Vec<OutputPosition>, SinkError> {
        if !self.pending.is_empty() {
            // `Stdout::write_all` takes the lock once for the whole buffer.
            self.out.write_all(&self.pending).map_err(Self::io)?;
            self.pending.clear();
        }
        self.out.flush().map_err(Self::io)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::super::jsonl::tests::record;
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_json_lines_at_sync_and_reports_no_position() {
        let shared = Shared::default();
        let mut sink = StdoutSink::with_writer(Box::new(shared.clone()));
        let batch = [
            record("1", 0, r#"{"id":1, "a": "b"}"#),
            record("2", 0, "{\"id\":2,\n\"a\":\"b c\"}"),
        ];
        assert!(sink.prepare(&batch).unwrap().ready().is_empty());
        sink.append(&batch).unwrap();
        assert!(shared.0.lock().unwrap().is_empty(), "nothing before sync");
        assert!(sink.sync().unwrap().is_empty());
        assert_eq!(
            String::from_utf8(shared.0.lock().unwrap().clone()).unwrap(),
            "{\"id\":1, \"a\": \"b\"}\n{\"id\":2,\"a\":\"b c\"}\n"
        );
        assert!(sink.sync().unwrap().is_empty());
    }

    #[test]
    fn a_closed_pipe_is_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = StdoutSink::with_writer(Box::new(Closed));
        sink.append(&[record("1", 0, "{}")]).unwrap();
        let error = sink.sync().unwrap_err().to_string();
        assert!(
            error.starts_with("cannot write standard output:"),
            "{error}"
        );
    }
}
