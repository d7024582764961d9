//! What trawl appended to an output file since its last checkpoint, noted beside the state store,
//! so that after a crash it cuts off only bytes it knows it wrote.
//!
//! Before each write to an output file, the bytes about to be written are noted: where they go
//! and a CRC-32 of each piece of them, pieces ending where the file's 4 KiB pages end. When a run
//! opens a file that is longer than its checkpoint says, the bytes past the checkpoint are cut off
//! only if they are, piece by piece, what was noted; anything else (a line added by hand, another
//! tool's output) stops the run with [`SinkError::NotTrawls`](super::SinkError::NotTrawls).
//!
//! A write cut short by a kill stops where a page of the file ends (the kernel copies a write
//! into the page cache a page at a time and gives up between pages), so what a killed run left
//! is always whole pieces. The notes are written before the bytes they describe and are never
//! fsynced: a killed process loses nothing the kernel already has, so after `kill -9` they are
//! complete. After a power cut they may be missing while the file's bytes, fsynced just before
//! a checkpoint that did not land, are there; the run then stops and says so rather than cut.
//!
//! CRC-32 rather than SHA-256: it only tells trawl's own bytes from bytes written by someone who
//! did not mean to collide with them, and it costs the committer a tenth as much (about 1 ms
//! against 15 ms for every 16 MiB written on the machine the bench runs on).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Pieces end where the file's pages end.
const PAGE: u64 = 4096;

/// The first line of a journal.
const HEADER: &str = "trawl appends 1";

/// The notes of one output file.
pub(crate) struct AppendJournal {
    path: PathBuf,
    file: Option<File>,
    /// Notes were taken since the file was last synced (and so checkpointed).
    open: bool,
}

impl AppendJournal {
    /// The journal of the output file with key `key` (its absolute path), in `dir`.
    pub fn new(dir: &Path, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(key.as_bytes());
        AppendJournal {
            path: dir.join(format!("{}.appends", hex::encode(&digest[..12]))),
            file: None,
            open: false,
        }
    }

    /// Notes `slices`, about to be written one after another at `offset` of the output file, in
    /// one write: call it right before that write.
    pub fn note(&mut self, offset: u64, slices: &[&[u8]]) -> io::Result<()> {
        let mut text = String::new();
        if !self.open {
            // The first write since the file was synced and checkpointed: earlier notes are of
            // bytes the checkpoint covers.
            text.push_str(HEADER);
            text.push('\n');
        }
        let mut piece_start = offset;
        let mut at = offset;
        let mut crc = crc32fast::Hasher::new();
        for slice in slices {
            let mut rest = *slice;
            while !rest.is_empty() {
                let page_end = (at / PAGE + 1) * PAGE;
                let take = rest.len().min((page_end - at) as usize);
                crc.update(&rest[..take]);
                rest = &rest[take..];
                at += take as u64;
                if at == page_end {
                    let done = std::mem::replace(&mut crc, crc32fast::Hasher::new());
                    push_piece(&mut text, piece_start, at, done.finalize());
                    piece_start = at;
                }
            }
        }
        if at > piece_start {
            push_piece(&mut text, piece_start, at, crc.finalize());
        }
        if at == offset && self.open {
            return Ok(());
        }
        let fresh = !std::mem::replace(&mut self.open, true);
        let file = self.handle()?;
        if fresh {
            file.set_len(0)?;
        }
        file.write_all(text.as_bytes())
    }

    /// The output file is durable up to where it ends, and about to be checkpointed there: the
    /// next note starts afresh.
    pub fn synced(&mut self) {
        self.open = false;
    }

    fn handle(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = OpenOptions::new();
            options.create(true).append(true).read(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            self.file = Some(options.open(&self.path)?);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// How much of the bytes of `output` from `checkpointed` to `len` trawl noted and finds there
    /// as it wrote them, from the start: all of them (`len - checkpointed`) when they can be cut.
    /// Cuts `output` (at `path`, `len` bytes long) back to `checkpointed`, when every byte past
    /// it is one trawl noted appending and never checkpointed; refuses, saying how many are
    /// trawl's, when any is not. Returns the length left.
    pub(super) fn cut_back(
        &self,
        output: &mut File,
        path: &std::path::Path,
        checkpointed: u64,
        len: u64,
    ) -> Result<u64, super::SinkError> {
        let io = |source| super::SinkError::Io {
            path: path.to_path_buf(),
            source,
        };
        let extra = len - checkpointed;
        let trawls = self.vouched(output, checkpointed, len).map_err(io)?;
        if trawls < extra {
            return Err(super::SinkError::NotTrawls {
                path: path.to_path_buf(),
                checkpointed,
                extra,
                trawls,
            });
        }
        tracing::info!(
            path = %path.display(),
            bytes = extra,
            "cutting off what an interrupted run appended and never checkpointed"
        );
        output.set_len(checkpointed).map_err(io)?;
        output.sync_all().map_err(io)?;
        Ok(checkpointed)
    }

    pub fn vouched(&self, output: &mut File, checkpointed: u64, len: u64) -> io::Result<u64> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut lines = text.split_inclusive('\n');
        if lines.next() != Some(&format!("{HEADER}\n")) {
            return Ok(0);
        }
        let mut at = checkpointed;
        let mut buffer = vec![0u8; PAGE as usize];
        // A last line without its newline was being written when the run died: the bytes it
        // would have described were never written.
        for line in lines.filter(|line| line.ends_with('\n')) {
            let Some((start, end, crc)) = parse_piece(line.trim_end()) else {
                break;
            };
            if end <= at {
                continue;
            }
            if start != at || end > len {
                break;
            }
            let piece = &mut buffer[..(end - start) as usize];
            output.seek(SeekFrom::Start(start))?;
            output.read_exact(piece)?;
            if crc32fast::hash(piece) != crc {
                break;
            }
            at = end;
            if at == len {
                break;
            }
        }
        Ok(at - checkpointed)
    }
}

fn push_piece(text: &mut String, start: u64, end: u64, crc: u32) {
    use std::fmt::Write as _;
    let _ = writeln!(text, "{start} {end} {crc:08x}");
}

fn parse_piece(line: &str) -> Option<(u64, u64, u32)> {
    let mut fields = line.split(' ');
    let start = fields.next()?.parse().ok()?;
    let end: u64 = fields.next()?.parse().ok()?;
    let crc = u32::from_str_radix(fields.next()?, 16).ok()?;
    (start < end && end - start <= PAGE).then_some((start, end, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `bytes` to `path` as a sink does: noted first, then written.
    fn append(journal: &mut AppendJournal, path: &Path, slices: &[&[u8]]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        let offset = file.metadata().unwrap().len();
        journal.note(offset, slices).unwrap();
        for slice in slices {
            file.write_all(slice).unwrap();
        }
    }

    fn vouched(journal: &AppendJournal, path: &Path, checkpointed: u64) -> u64 {
        let mut file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        journal.vouched(&mut file, checkpointed, len).unwrap()
    }

    #[test]
    fn trawls_own_appends_are_recognised_whole_or_cut_at_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"checkpointed\n").unwrap();
        let mut journal = AppendJournal::new(&dir.path().join("journals"), "key");
        // Nothing noted: nothing past the checkpoint is trawl's.
        assert_eq!(vouched(&journal, &path, 5), 0);

        let big: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        append(&mut journal, &path, &[b"{\"a\":1}\n", &big, b"\n"]);
        append(&mut journal, &path, &[b"{\"b\":2}\n"]);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(vouched(&journal, &path, 13), len - 13);

        // Killed mid-write: the file ends where a page ends.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(8192).unwrap();
        assert_eq!(vouched(&journal, &path, 13), 8192 - 13);

        // A line added after trawl's bytes: only trawl's are vouched for.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"by hand\n").unwrap();
        assert_eq!(vouched(&journal, &path, 13), 8192 - 13);
        // Trawl's bytes changed in place: not vouched for from that piece on.
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(14)).unwrap();
        file.write_all(b"X").unwrap();
        assert_eq!(vouched(&journal, &path, 13), 0);
    }

    #[test]
    fn notes_start_afresh_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, b"").unwrap();
        let mut journal = AppendJournal::new(dir.path(), "key");
        append(&mut journal, &path, &[b"one\r\n"]);
        journal.synced();
        append(&mut journal, &path, &[b"two\r\n"]);
        let notes = std::fs::read_to_string(&journal.path).unwrap();
        assert_eq!(notes.lines().count(), 2, "{notes}");
        assert_eq!(vouched(&journal, &path, 5), 5);
        // A checkpoint older than the notes: the bytes between are nobody's trawl knows.
        assert_eq!(vouched(&journal, &path, 0), 0);
    }
}
