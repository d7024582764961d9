//! trawl's state: one SQLite database holding checkpoints, output positions, connector storage and
//! what is known of vendors' quotas.
//!
//! SQLite (bundled, through rusqlite) was chosen over a hand-rolled file or redb because every
//! write here must be atomic across several tables (a window's completion and the output position
//! it leaves must commit together), because users and support can open it with the `sqlite3` shell,
//! and because its durability (WAL, `synchronous=FULL`) is the best-tested there is.

pub mod approvals;
mod density;
mod intervals;
pub mod quotas;

pub use density::Density;
pub use intervals::{Interval, gaps, merge};

use crate::files::{create_private_dir, sync_dir};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

/// The file inside the state folder.
const STATE_FILE: &str = "state.sqlite";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot open the state store {path}: {source}")]
    Open {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("state store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// What is checkpointed together: one stream of one connector and profile, delivered to one output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub connector: String,
    pub profile: String,
    pub stream: String,
    /// The output's identity (its absolute path): a new output starts from nothing.
    pub output: String,
}

impl Scope {
    fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.connector, self.profile, self.stream, self.output
        )
    }
}

/// How much of an output file is committed: bytes beyond `len` were written by a run that did not
/// get to checkpoint them, and are cut off before the next append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPosition {
    /// The output's identity (its absolute path).
    pub output: String,
    pub len: u64,
    /// The header line the file had at `len`, for formats that have one.
    pub header: Option<String>,
    /// The file held someone else's content before trawl first wrote to it: trawl appends to it
    /// but never rewrites it unless the user named it.
    pub adopted: bool,
}

/// How far a window in progress has got: the records of its first `pages` pages are in its
/// staging file, whose first `staged_len` bytes are durable; `cursor` asks for the next page
/// (`None` with `done`: every page is staged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowProgress {
    pub window: Interval,
    pub cursor: Option<String>,
    pub staged_len: u64,
    pub pages: u64,
    pub done: bool,
}

/// Everything that changes for one window when its records have reached the output.
#[derive(Clone, Debug)]
pub struct WindowCommit<'a> {
    /// The window as planned: its progress row goes.
    pub planned: Interval,
    /// The part of it now complete (all of it, unless a record cap cut it short).
    pub completed: Interval,
    /// Ids to remember, so that a later run that re-reads this span skips them.
    pub remember: &'a [String],
    /// Remembered ids are tagged with this (the end of the span they came from) ...
    pub remember_until: i64,
    /// ... and ids tagged before this are forgotten.
    pub forget_before: Option<i64>,
}

/// A handle to the state store; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct StateStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
    staging: PathBuf,
    /// For an in-memory store, the temporary folder that holds its staging files.
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl StateStore {
    /// Opens (creating if needed) the store in `dir`. The folder is made owner-only and the file
    /// 0600: it holds connector storage, which may contain vendor tokens.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join(STATE_FILE);
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StateError::Open {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(|error| open_error(Box::new(error)))?;
        if !path.exists() {
            create_store(dir, &path).map_err(open_error)?;
        }
        let connection = Connection::open(&path).map_err(|error| open_error(Box::new(error)))?;
        Self::initialise(connection, path.clone(), dir.join("staging"), None)
            .map_err(|error| open_error(Box::new(error)))
    }

    /// A store that lives in memory (its staging files in a temporary folder), for tests.
    pub fn in_memory() -> Result<Self, StateError> {
        let temp = tempfile::tempdir().map_err(|error| StateError::Open {
            path: PathBuf::from(":memory:"),
            source: Box::new(error),
        })?;
        let staging = temp.path().to_path_buf();
        Self::initialise(
            Connection::open_in_memory()?,
            PathBuf::from(":memory:"),
            staging,
            Some(Arc::new(temp)),
        )
    }

    fn initialise(
        mut connection: Connection,
        path: PathBuf,
        staging: PathBuf,
        temp: Option<Arc<tempfile::TempDir>>,
    ) -> Result<Self, StateError> {
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // A checkpoint that is acknowledged must survive a power cut, or records are fetched twice.
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Tables a store made by an older trawl lacks; one transaction, so that they cost one
        // flush to disk, not one each.
        let transaction = connection.transaction()?;
        create_tables(&transaction)?;
        transaction.commit()?;
        Ok(StateStore {
            connection: Arc::new(Mutex::new(connection)),
            path,
            staging,
            _temp: temp,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where records of windows in progress are staged, one folder per scope.
    pub fn staging_dir(&self, scope: &Scope) -> PathBuf {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(scope.key().as_bytes());
        self.staging.join(hex::encode(&digest[..12]))
    }

    /// Where what a run appends to its output files is noted until it is checkpointed, one file
    /// for each output file (see `sinks::journal`).
    pub fn journal_dir(&self) -> PathBuf {
        self.staging.join("appends")
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is still usable.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The completed intervals of a scope, sorted and merged.
    pub fn completed(&self, scope: &Scope) -> Result<Vec<Interval>, StateError> {
        let connection = self.lock();
        read_completed(&connection, &scope.key())
    }

    /// Checkpoints windows whose records are in the output, with where each output file now
    /// ends, in one transaction: after a crash either all of them are done and the outputs end
    /// there, or none is and the outputs are cut back to where they ended before.
    pub fn commit_windows(
        &self,
        scope: &Scope,
        windows: &[WindowCommit<'_>],
        outputs: &[OutputPosition],
    ) -> Result<(), StateError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let key = scope.key();
        let mut completed = read_completed(&transaction, &key)?;
        for window in windows {
            completed = merge(&completed, window.completed);
        }
        // Cached statements throughout: a run checkpoints every few milliseconds.
        transaction
            .prepare_cached("DELETE FROM completed WHERE scope = ?1")?
            .execute(params![key])?;
        let mut insert = transaction.prepare_cached(
            "INSERT INTO completed (scope, start_ms, end_ms) VALUES (?1, ?2, ?3)",
        )?;
        for interval in completed {
            insert.execute(params![key, interval.start, interval.end])?;
        }
        drop(insert);
        for output in outputs {
            write_output(&transaction, output)?;
        }
        {
            let mut remember = transaction.prepare_cached(
                "INSERT INTO seen (scope, id, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, id) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)",
            )?;
            let mut forget = transaction
                .prepare_cached("DELETE FROM seen WHERE scope = ?1 AND until_ms < ?2")?;
            let mut drop_progress = transaction.prepare_cached(
                "DELETE FROM progress WHERE scope = ?1 AND start_ms = ?2 AND end_ms = ?3",
            )?;
            for window in windows {
                for id in window.remember {
                    remember.execute(params![key, id, window.remember_until])?;
                }
                if let Some(before) = window.forget_before {
                    forget.execute(params![key, before])?;
                }
                drop_progress.execute(params![key, window.planned.start, window.planned.end])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// The windows of a scope that were started and not yet committed.
    pub fn progress(&self, scope: &Scope) -> Result<Vec<WindowProgress>, StateError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT start_ms, end_ms, cursor, staged_len, pages, done FROM progress
             WHERE scope = ?1 ORDER BY start_ms",
        )?;
        let rows = statement.query_map(params![scope.key()], |row| {
            Ok(WindowProgress {
                window: Interval::new(row.get(0)?, row.get(1)?),
                cursor: row.get(2)?,
                staged_len: row.get::<_, i64>(3)? as u64,
                pages: row.get::<_, i64>(4)? as u64,
                done: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records how far a window has got (after its staged records were made durable).
    pub fn save_progress(
        &self,
        scope: &Scope,
        progress: &WindowProgress,
    ) -> Result<(), StateError> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO progress (scope, start_ms, end_ms, cursor, staged_len, pages, done)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (scope, start_ms, end_ms) DO UPDATE SET cursor = excluded.cursor,
                 staged_len = excluded.staged_len, pages = excluded.pages, done = excluded.done",
            params![
                scope.key(),
                progress.window.start,
                progress.window.end,
                progress.cursor,
                progress.staged_len as i64,
                progress.pages as i64,
                progress.done
            ],
        )?;
        Ok(())
    }

    /// Drops a window's progress (its span is being planned differently).
    pub fn drop_progress(&self, scope: &Scope, window: Interval) -> Result<(), StateError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM progress WHERE scope = ?1 AND start_ms = ?2 AND end_ms = ?3",
            params![scope.key(), window.start, window.end],
        )?;
        Ok(())
    }

    /// The ids remembered for a scope's overlap.
    pub fn seen_ids(&self, scope: &Scope) -> Result<HashSet<String>, StateError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT id FROM seen WHERE scope = ?1")?;
        let rows = statement.query_map(params![scope.key()], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<HashSet<_>, _>>()?)
    }

    /// The committed positions of every output file whose key starts with `prefix`.
    pub fn output_positions(
        &self,
        prefix: &str,
    ) -> Result<HashMap<String, OutputPosition>, StateError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT output, len, header, adopted FROM outputs
             WHERE substr(output, 1, length(?1)) = ?1",
        )?;
        let rows = statement.query_map(params![prefix], |row| {
            Ok(OutputPosition {
                output: row.get(0)?,
                len: row.get::<_, i64>(1)? as u64,
                header: row.get(2)?,
                adopted: row.get(3)?,
            })
        })?;
        let mut positions = HashMap::new();
        for position in rows {
            let position = position?;
            positions.insert(position.output.clone(), position);
        }
        Ok(positions)
    }

    /// Records output positions on their own (after files were rewritten in place).
    pub fn record_outputs(&self, outputs: &[OutputPosition]) -> Result<(), StateError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        for output in outputs {
            write_output(&transaction, output)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// A connector's stored value.
    pub fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT value FROM kv WHERE namespace = ?1 AND key = ?2",
                params![namespace, key],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores a connector's value unless the namespace would then hold more than `quota` bytes
    /// (keys, values and [`KV_ENTRY_OVERHEAD`] per entry); returns the size it would have had when
    /// refused.
    pub fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<Result<(), u64>, StateError> {
        let own = kv_entry_size(key, value);
        if own > quota {
            return Ok(Err(own));
        }
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        // `LENGTH` of a text counts characters; of a blob, bytes: the key is counted as a blob.
        let used_by_others: i64 = transaction.query_row(
            "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value) + ?3), 0) FROM kv
             WHERE namespace = ?1 AND key <> ?2",
            params![namespace, key, KV_ENTRY_OVERHEAD as i64],
            |row| row.get(0),
        )?;
        let total = used_by_others as u64 + own;
        if total > quota {
            return Ok(Err(total));
        }
        transaction.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            params![namespace, key, value],
        )?;
        transaction.commit()?;
        Ok(Ok(()))
    }

    pub fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StateError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM kv WHERE namespace = ?1 AND key = ?2",
            params![namespace, key],
        )?;
        Ok(())
    }
}

/// What one stored entry costs beyond its key and value, counted against the quota: its row and
/// index entry in the state file (the namespace, twice, and SQLite's own bookkeeping). Without
/// it, a quota of bytes would let a connector store a million one-byte keys with empty values.
pub const KV_ENTRY_OVERHEAD: u64 = 64;

/// What an entry counts against its namespace's quota.
fn kv_entry_size(key: &str, value: &[u8]) -> u64 {
    key.len() as u64 + value.len() as u64 + KV_ENTRY_OVERHEAD
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS completed (
    scope TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, start_ms)
);
CREATE TABLE IF NOT EXISTS outputs (
    output TEXT PRIMARY KEY,
    len INTEGER NOT NULL,
    header TEXT,
    adopted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS progress (
    scope TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    cursor TEXT,
    staged_len INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    done INTEGER NOT NULL,
    PRIMARY KEY (scope, start_ms, end_ms)
);
CREATE TABLE IF NOT EXISTS seen (
    scope TEXT NOT NULL,
    id TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
);
";

fn read_completed(connection: &Connection, key: &str) -> Result<Vec<Interval>, StateError> {
    let mut statement = connection.prepare_cached(
        "SELECT start_ms, end_ms FROM completed WHERE scope = ?1 ORDER BY start_ms",
    )?;
    let rows = statement.query_map(params![key], |row| {
        Ok(Interval::new(row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn write_output(connection: &Connection, output: &OutputPosition) -> Result<(), StateError> {
    connection
        .prepare_cached(
            "INSERT INTO outputs (output, len, header, adopted) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (output) DO UPDATE SET len = excluded.len, header = excluded.header,
                 adopted = excluded.adopted",
        )?
        .execute(params![
            output.output,
            output.len as i64,
            output.header,
            output.adopted
        ])?;
    Ok(())
}

fn create_tables(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(SCHEMA)?;
    // A store made before outputs knew whether trawl created them: what it wrote, it created.
    let has_adopted: bool = connection.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('outputs') WHERE name = 'adopted'",
        [],
        |row| row.get(0),
    )?;
    if !has_adopted {
        connection
            .execute_batch("ALTER TABLE outputs ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0")?;
    }
    approvals::create_table(connection)?;
    density::create_table(connection)?;
    quotas::create_table(connection)
}

/// Makes a new, empty store at `path`: built in a temporary file (0600, as the store must be)
/// without flushes, flushed once, then moved into place. Made where it stays, SQLite flushed it
/// to disk seven times (its switch to WAL goes through a rollback journal), and every first run
/// waited for that before its first request. A crash before the move leaves only a temporary
/// file; another trawl that makes the store first wins, and its store is the one used.
fn create_store(dir: &Path, path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let temp = tempfile::Builder::new()
        .prefix(".state.sqlite.")
        .tempfile_in(dir)?;
    let connection = Connection::open(temp.path())?;
    connection.pragma_update(None, "synchronous", "OFF")?;
    connection.pragma_update(None, "journal_mode", "MEMORY")?;
    create_tables(&connection)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.close().map_err(|(_, error)| error)?;
    temp.as_file().sync_all()?;
    match temp.persist_noclobber(path) {
        Ok(_) => {}
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error.error.into()),
    }
    sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(stream: &str) -> Scope {
        Scope {
            connector: "acme".into(),
            profile: "default".into(),
            stream: stream.into(),
            output: "/tmp/out.csv".into(),
        }
    }

    #[test]
    fn windows_and_output_commit_together() {
        let store = StateStore::in_memory().unwrap();
        let position = OutputPosition {
            output: "/tmp/out.csv".into(),
            len: 42,
            header: Some("a,b".into()),
            adopted: false,
        };
        let commit = |start, end| WindowCommit {
            planned: Interval::new(start, end),
            completed: Interval::new(start, end),
            remember: &[],
            remember_until: end,
            forget_before: None,
        };
        let outputs = std::slice::from_ref(&position);
        store
            .commit_windows(&scope("s"), &[commit(0, 10)], outputs)
            .unwrap();
        store
            .commit_windows(&scope("s"), &[commit(10, 20), commit(30, 40)], outputs)
            .unwrap();
        assert_eq!(
            store.completed(&scope("s")).unwrap(),
            vec![Interval::new(0, 20), Interval::new(30, 40)]
        );
        assert!(store.completed(&scope("other")).unwrap().is_empty());
        assert_eq!(
            store
                .output_positions("/tmp/out")
                .unwrap()
                .remove("/tmp/out.csv"),
            Some(position)
        );
        assert!(store.output_positions("/tmp/other").unwrap().is_empty());
    }

    #[test]
    fn progress_is_dropped_by_the_commit_and_seen_ids_expire() {
        let store = StateStore::in_memory().unwrap();
        let scope = scope("s");
        let progress = WindowProgress {
            window: Interval::new(0, 10),
            cursor: Some("page-2".into()),
            staged_len: 99,
            pages: 1,
            done: false,
        };
        store.save_progress(&scope, &progress).unwrap();
        assert_eq!(store.progress(&scope).unwrap(), vec![progress]);
        let ids = ["a".to_string(), "b".to_string()];
        store
            .commit_windows(
                &scope,
                &[WindowCommit {
                    planned: Interval::new(0, 10),
                    completed: Interval::new(0, 10),
                    remember: &ids,
                    remember_until: 10,
                    forget_before: None,
                }],
                &[],
            )
            .unwrap();
        assert!(store.progress(&scope).unwrap().is_empty());
        assert_eq!(store.seen_ids(&scope).unwrap().len(), 2);
        store
            .commit_windows(
                &scope,
                &[WindowCommit {
                    planned: Interval::new(10, 20),
                    completed: Interval::new(10, 20),
                    remember: &["c".to_string()],
                    remember_until: 20,
                    forget_before: Some(15),
                }],
                &[],
            )
            .unwrap();
        assert_eq!(
            store.seen_ids(&scope).unwrap(),
            HashSet::from(["c".to_string()])
        );
    }

    #[test]
    fn kv_quota_and_isolation() {
        let store = StateStore::in_memory().unwrap();
        store.kv_set("a", "token", b"12345", 300).unwrap().unwrap();
        assert_eq!(store.kv_get("a", "token").unwrap(), Some(b"12345".to_vec()));
        assert_eq!(store.kv_get("b", "token").unwrap(), None);
        // Replacing a value counts only the new value.
        store.kv_set("a", "token", &[0; 90], 300).unwrap().unwrap();
        let entry = KV_ENTRY_OVERHEAD;
        assert_eq!(
            store.kv_set("a", "other", &[0; 100], 300).unwrap(),
            Err(5 + 90 + entry + 5 + 100 + entry)
        );
        store.kv_delete("a", "token").unwrap();
        assert_eq!(store.kv_get("a", "token").unwrap(), None);
    }

    #[test]
    fn every_entry_counts_against_the_quota_however_small() {
        let store = StateStore::in_memory().unwrap();
        let quota = 10 * (1 + KV_ENTRY_OVERHEAD);
        for key in 0..10 {
            let key = char::from(b'a' + key).to_string();
            store.kv_set("a", &key, b"", quota).unwrap().unwrap();
        }
        assert_eq!(
            store.kv_set("a", "k", b"", quota).unwrap(),
            Err(quota + 1 + KV_ENTRY_OVERHEAD)
        );
        // A key outside ASCII counts its bytes, not its characters.
        let store = StateStore::in_memory().unwrap();
        let wide = "é".repeat(10);
        store.kv_set("a", &wide, b"", 200).unwrap().unwrap();
        assert_eq!(
            store.kv_set("a", "b", &[0; 100], 200).unwrap(),
            Err(20 + KV_ENTRY_OVERHEAD + 1 + 100 + KV_ENTRY_OVERHEAD)
        );
        // A value larger than the whole quota is refused before the store is read.
        assert_eq!(
            store.kv_set("a", "c", &[0; 1000], 200).unwrap(),
            Err(1 + 1000 + KV_ENTRY_OVERHEAD)
        );
    }

    #[test]
    fn state_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("state")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_new_store_is_moved_into_place_whole_and_a_store_made_meanwhile_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = StateStore::open(&state).unwrap();
        store.kv_set("a", "token", b"kept", 1024).unwrap().unwrap();
        let names = || {
            let mut names: Vec<String> = std::fs::read_dir(&state)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        // Nothing of the temporary file is left; the store is in WAL mode from the start.
        assert!(
            names().iter().all(|name| !name.starts_with(".state")),
            "{:?}",
            names()
        );
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // Another trawl that finds no store and makes one after this one did loses the race:
        // this store stays as it is.
        create_store(&state, &state.join(STATE_FILE)).unwrap();
        assert_eq!(
            store.kv_get("a", "token").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
        assert!(
            names().iter().all(|name| !name.starts_with(".state")),
            "{:?}",
            names()
        );
        drop(store);
        let again = StateStore::open(&state).unwrap();
        assert_eq!(
            again.kv_get("a", "token").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}
