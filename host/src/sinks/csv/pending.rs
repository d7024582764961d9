//! Rows on their way to the file, written where they were made.
//!
//! Most rows were made ahead by the encoder, a page's into one buffer, in the order they are
//! written: copying them into one more buffer only to write that was the committer's largest
//! copy. They are written from where they are instead, a run of neighbouring rows at a time.

use super::super::Rendered;
use std::io::{IoSlice, Write};
use std::ops::Range;
use std::sync::Arc;

/// The most pieces handed to one `writev`: Linux takes no more (`IOV_MAX`).
const MAX_PIECES: usize = 1024;

/// Rows not written yet, in order.
#[derive(Default)]
pub(super) struct PendingRows {
    runs: Vec<Run>,
    /// Rows the sink made itself, one after another.
    own: Vec<u8>,
    len: usize,
}

/// Neighbouring rows, in one buffer.
enum Run {
    /// In a buffer of rows the encoder made.
    Made(Arc<Vec<u8>>, Range<usize>),
    /// In `own`.
    Own(Range<usize>),
}

impl PendingRows {
    /// How many bytes are waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a row the encoder made: the run it follows grows when it is the next in that buffer.
    pub fn push_made(&mut self, rendered: &Rendered) {
        let range = rendered.range.clone();
        self.len += range.len();
        if let Some(Run::Made(rows, run)) = self.runs.last_mut()
            && Arc::ptr_eq(rows, &rendered.made)
            && run.end == range.start
        {
            run.end = range.end;
            return;
        }
        self.runs.push(Run::Made(rendered.made.clone(), range));
    }

    /// Adds what `make` appends to the sink's own buffer; `make`'s answer is passed on.
    pub fn push_own<T>(&mut self, make: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let start = self.own.len();
        let made = make(&mut self.own);
        let end = self.own.len();
        if end > start {
            self.len += end - start;
            match self.runs.last_mut() {
                Some(Run::Own(run)) if run.end == start => run.end = end,
                _ => self.runs.push(Run::Own(start..end)),
            }
        }
        made
    }

    /// Writes every waiting row to `out`, in order, and forgets them. Before each write,
    /// `before` is told where it goes (counted from the first row) and what it holds.
    pub fn write_to(
        &mut self,
        out: &mut impl Write,
        mut before: impl FnMut(u64, &[&[u8]]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let pieces: Vec<&[u8]> = self
            .runs
            .iter()
            .map(|run| match run {
                Run::Made(rows, range) => &rows[range.clone()],
                Run::Own(range) => &self.own[range.clone()],
            })
            .collect();
        let mut at = 0u64;
        for batch in pieces.chunks(MAX_PIECES) {
            let mut slices: Vec<IoSlice<'_>> =
                batch.iter().map(|piece| IoSlice::new(piece)).collect();
            let mut left = &mut slices[..];
            while !left.is_empty() {
                let waiting: Vec<&[u8]> = left.iter().map(|slice| &**slice).collect();
                before(at, &waiting)?;
                match out.write_vectored(left) {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(written) => {
                        at += written as u64;
                        IoSlice::advance_slices(&mut left, written);
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
        }
        self.runs.clear();
        self.own.clear();
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(rows: &Arc<Vec<u8>>, range: Range<usize>) -> Rendered {
        Rendered {
            layout: 1,
            made: rows.clone(),
            range,
        }
    }

    /// A writer that takes at most `step` bytes a call, and refuses the first call.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls == 1 {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            assert!(bufs.len() <= MAX_PIECES);
            let mut taken = 0;
            for buf in bufs {
                let take = buf.len().min(self.step - taken);
                self.written.extend_from_slice(&buf[..take]);
                taken += take;
                if taken == self.step {
                    break;
                }
            }
            Ok(taken)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rows_are_written_in_order_from_wherever_they_are() {
        let page = Arc::new(b"a1\r\na2\r\na3\r\n".to_vec());
        let other = Arc::new(b"b1\r\nb2\r\n".to_vec());
        let mut pending = PendingRows::default();
        pending.push_made(&made(&page, 0..4));
        pending.push_made(&made(&page, 4..8));
        pending.push_own(|own| own.extend_from_slice(b"s1\r\n"));
        pending.push_own(|own| own.extend_from_slice(b"s2\r\n"));
        pending.push_made(&made(&other, 4..8));
        pending.push_made(&made(&page, 8..12));
        // A row left out between two made ones: they are not one run.
        pending.push_made(&made(&other, 0..4));
        assert_eq!(pending.push_own(|_| 7), 7, "nothing made is no run");
        assert_eq!(pending.runs.len(), 5);
        assert_eq!(pending.len(), 28);

        let mut out = Trickle {
            written: Vec::new(),
            step: 3,
            calls: 0,
        };
        pending.write_to(&mut out, |_, _| Ok(())).unwrap();
        assert_eq!(
            String::from_utf8(out.written).unwrap(),
            "a1\r\na2\r\ns1\r\ns2\r\nb2\r\na3\r\nb1\r\n"
        );
        assert!(pending.is_empty() && pending.runs.is_empty() && pending.own.is_empty());
    }

    #[test]
    fn more_runs_than_one_call_takes_are_written_in_several() {
        let page = Arc::new(b"x\n".repeat(3000));
        let mut pending = PendingRows::default();
        // Every other row: no two are neighbours.
        for row in (0..3000).step_by(2) {
            pending.push_made(&made(&page, row * 2..row * 2 + 2));
        }
        assert_eq!(pending.runs.len(), 1500);
        let mut out = Trickle {
            written: Vec::new(),
            step: usize::MAX,
            calls: 0,
        };
        pending.write_to(&mut out, |_, _| Ok(())).unwrap();
        assert_eq!(out.written, b"x\n".repeat(1500));
        assert_eq!(out.calls, 3, "one refused, then 1024 pieces and 476");
    }
}
