//! Putting a staged window in (event time, id) order in bounded memory, each (time, id) once.
//!
//! A window that fits in one chunk is sorted in memory. A larger one is cut into sorted runs on
//! disk and merged, so memory stays at one chunk however big a window is.

use super::staging::{self, StagedRecord};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};

/// A window's records, sorted, each (event time, id) once.
pub enum Sorted {
    InMemory(Vec<StagedRecord>),
    /// Too many for memory; read them as often as needed.
    OnDisk(Runs),
}

/// Sorts the first `len` bytes of the staging file at `path`, holding at most about
/// `chunk_bytes` of records in memory; run files go in a temporary folder inside `scratch`.
/// `also` (records kept in memory) join them.
pub fn sort(
    path: &Path,
    len: u64,
    also: Vec<StagedRecord>,
    chunk_bytes: usize,
    scratch: &Path,
) -> io::Result<Sorted> {
    // The common case, a window whose pages were all kept in memory and fit one chunk: sorted
    // where it is, rather than moved record by record into a chunk of its own.
    if len == 0 && also.iter().map(footprint).sum::<usize>() < chunk_bytes {
        let mut chunk = also;
        sort_chunk(&mut chunk);
        return Ok(Sorted::InMemory(chunk));
    }
    let mut chunk: Vec<StagedRecord> = Vec::new();
    let mut chunk_size = 0usize;
    let mut runs: Vec<(PathBuf, u64)> = Vec::new();
    let mut dir: Option<tempfile::TempDir> = None;
    let staged: Box<dyn Iterator<Item = io::Result<StagedRecord>>> = if len == 0 {
        Box::new(std::iter::empty())
    } else {
        Box::new(staging::read(path, len)?)
    };
    for record in staged.chain(also.into_iter().map(Ok)) {
        let record = record?;
        chunk_size += footprint(&record);
        chunk.push(record);
        if chunk_size >= chunk_bytes {
            let dir = match &dir {
                Some(dir) => dir,
                None => dir.insert(scratch_dir(scratch)?),
            };
            runs.push(write_run(dir.path(), runs.len(), &mut chunk)?);
            chunk_size = 0;
        }
    }
    match dir {
        None => {
            sort_chunk(&mut chunk);
            Ok(Sorted::InMemory(chunk))
        }
        Some(dir) => {
            if !chunk.is_empty() {
                runs.push(write_run(dir.path(), runs.len(), &mut chunk)?);
            }
            Ok(Sorted::OnDisk(Runs { runs, _dir: dir }))
        }
    }
}

/// A temporary folder for a window's sorted runs inside `scratch`, which is made first: a window
/// whose only page is bigger than a chunk spills before anything of its stream was staged, when
/// the stream's staging folder does not exist yet.
fn scratch_dir(scratch: &Path) -> io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(scratch)?;
    tempfile::tempdir_in(scratch)
}

/// About what `record` takes in memory, counted against a chunk's size.
fn footprint(record: &StagedRecord) -> usize {
    record.json.len() + record.id.len() + 64
}

fn sort_chunk(chunk: &mut Vec<StagedRecord>) {
    // Pages mostly arrive in order: a stable sort is near linear on sorted runs.
    chunk.sort_by(|a, b| (a.event_time, &a.id).cmp(&(b.event_time, &b.id)));
    chunk.dedup_by(|later, earlier| {
        later.event_time == earlier.event_time && later.id == earlier.id
    });
}

fn write_run(
    dir: &Path,
    index: usize,
    chunk: &mut Vec<StagedRecord>,
) -> io::Result<(PathBuf, u64)> {
    sort_chunk(chunk);
    let path = dir.join(format!("run-{index}"));
    let len = staging::write_all(&path, chunk)?;
    chunk.clear();
    Ok((path, len))
}

/// Sorted runs on disk, merged each time they are read.
pub struct Runs {
    runs: Vec<(PathBuf, u64)>,
    _dir: tempfile::TempDir,
}

impl Runs {
    /// The records in order, each (event time, id) once.
    pub fn iter(&self) -> io::Result<impl Iterator<Item = io::Result<StagedRecord>> + use<>> {
        let readers = self
            .runs
            .iter()
            .map(|(path, len)| staging::read(path, *len).map(|r| Box::new(r) as RunReader))
            .collect::<io::Result<Vec<_>>>()?;
        Merge::new(readers)
    }
}

type RunReader = Box<dyn Iterator<Item = io::Result<StagedRecord>>>;

/// A k-way merge of sorted runs that drops a record equal in (time, id) to the one before.
struct Merge {
    readers: Vec<RunReader>,
    heads: BinaryHeap<Reverse<(i64, String, usize)>>,
    pending: Vec<Option<StagedRecord>>,
    last: Option<(i64, String)>,
}

impl Merge {
    fn new(mut readers: Vec<RunReader>) -> io::Result<Self> {
        let mut heads = BinaryHeap::new();
        let mut pending = Vec::with_capacity(readers.len());
        for (index, reader) in readers.iter_mut().enumerate() {
            let head = reader.next().transpose()?;
            if let Some(record) = &head {
                heads.push(Reverse((record.event_time, record.id.clone(), index)));
            }
            pending.push(head);
        }
        Ok(Merge {
            readers,
            heads,
            pending,
            last: None,
        })
    }

    fn pop(&mut self) -> io::Result<Option<StagedRecord>> {
        let Some(Reverse((_, _, index))) = self.heads.pop() else {
            return Ok(None);
        };
        let record = self.pending[index]
            .take()
            .expect("a head for every heap entry");
        if let Some(next) = self.readers[index].next().transpose()? {
            self.heads
                .push(Reverse((next.event_time, next.id.clone(), index)));
            self.pending[index] = Some(next);
        }
        Ok(Some(record))
    }
}

impl Iterator for Merge {
    type Item = io::Result<StagedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.pop() {
                Err(error) => return Some(Err(error)),
                Ok(None) => return None,
                Ok(Some(record)) => {
                    let key = (record.event_time, record.id.clone());
                    if self.last.as_ref() == Some(&key) {
                        continue;
                    }
                    self.last = Some(key);
                    return Some(Ok(record));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::staging::Staging;
    use crate::sinks::JsonObject;
    use crate::state::Interval;

    fn staged(dir: &Path, records: &[(i64, &str)]) -> (PathBuf, u64) {
        let mut staging = Staging::open(dir, Interval::new(0, 1), 0).unwrap();
        let records: Vec<StagedRecord> = records
            .iter()
            .map(|(time, id)| StagedRecord {
                event_time: *time,
                fetched_at: 0,
                id: id.to_string(),
                json: JsonObject::parse(format!("{{\"id\":\"{id}\"}}")).unwrap(),
                rendered: None,
            })
            .collect();
        let len = staging.append(&records).unwrap();
        (Staging::path(dir, Interval::new(0, 1)), len)
    }

    fn keys(sorted: &Sorted) -> Vec<(i64, String)> {
        let records: Vec<StagedRecord> = match sorted {
            Sorted::InMemory(records) => records.clone(),
            Sorted::OnDisk(runs) => runs.iter().unwrap().map(Result::unwrap).collect(),
        };
        records
            .into_iter()
            .map(|record| (record.event_time, record.id))
            .collect()
    }

    #[test]
    fn sorts_in_memory_and_on_disk_alike() {
        let dir = tempfile::tempdir().unwrap();
        // Newest first, with a repeat (a page boundary seen twice) and equal timestamps.
        let input = [
            (5, "e"),
            (3, "c2"),
            (3, "c1"),
            (5, "e"),
            (1, "a"),
            (3, "c1"),
            (2, "b"),
        ];
        let (path, len) = staged(dir.path(), &input);
        let expected: Vec<(i64, String)> = [(1, "a"), (2, "b"), (3, "c1"), (3, "c2"), (5, "e")]
            .iter()
            .map(|(time, id)| (*time, id.to_string()))
            .collect();
        let in_memory = sort(&path, len, Vec::new(), 1 << 20, dir.path()).unwrap();
        assert!(matches!(in_memory, Sorted::InMemory(_)));
        assert_eq!(keys(&in_memory), expected);
        // A chunk of about one record forces a run per record and a real merge.
        let on_disk = sort(&path, len, Vec::new(), 1, dir.path()).unwrap();
        assert!(matches!(&on_disk, Sorted::OnDisk(runs) if runs.runs.len() == input.len()));
        assert_eq!(keys(&on_disk), expected);
        // It can be read twice.
        assert_eq!(keys(&on_disk), expected);
    }

    #[test]
    fn records_kept_in_memory_join_the_staged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (path, len) = staged(dir.path(), &[(3, "c"), (1, "a")]);
        let last_page = [StagedRecord {
            event_time: 2,
            fetched_at: 0,
            id: "b".into(),
            json: JsonObject::parse("{}".into()).unwrap(),
            rendered: None,
        }];
        let expected: Vec<(i64, String)> = [(1, "a"), (2, "b"), (3, "c")]
            .iter()
            .map(|(time, id)| (*time, id.to_string()))
            .collect();
        for chunk in [1 << 20, 1] {
            let sorted = sort(&path, len, last_page.to_vec(), chunk, dir.path()).unwrap();
            assert_eq!(keys(&sorted), expected);
        }
        // Nothing staged at all: a window of one page.
        let sorted = sort(
            &dir.path().join("none"),
            0,
            last_page.to_vec(),
            1 << 20,
            dir.path(),
        )
        .unwrap();
        assert_eq!(keys(&sorted), vec![(2, "b".to_string())]);
    }

    #[test]
    fn a_window_held_only_in_memory_is_sorted_as_a_staged_one() {
        let dir = tempfile::tempdir().unwrap();
        let record = |time: i64, id: &str| StagedRecord {
            event_time: time,
            fetched_at: 0,
            id: id.into(),
            json: JsonObject::parse("{}".into()).unwrap(),
            rendered: None,
        };
        let page = vec![
            record(3, "c"),
            record(1, "a"),
            record(3, "c"),
            record(2, "b"),
        ];
        let expected: Vec<(i64, String)> = [(1, "a"), (2, "b"), (3, "c")]
            .iter()
            .map(|(time, id)| (*time, id.to_string()))
            .collect();
        let none = dir.path().join("none");
        let in_memory = sort(&none, 0, page.clone(), 1 << 20, dir.path()).unwrap();
        assert!(matches!(in_memory, Sorted::InMemory(_)));
        assert_eq!(keys(&in_memory), expected);
        // Bigger than a chunk: to runs on disk, even with nothing staged.
        let on_disk = sort(&none, 0, page.clone(), 1, dir.path()).unwrap();
        assert!(matches!(on_disk, Sorted::OnDisk(_)));
        assert_eq!(keys(&on_disk), expected);
        // Nothing staged means no staging folder yet: the runs' folder is made where it belongs.
        let scratch = dir.path().join("staging").join("stream");
        let on_disk = sort(&none, 0, page, 1, &scratch).unwrap();
        assert_eq!(keys(&on_disk), expected);
        assert!(scratch.is_dir());
    }
}
