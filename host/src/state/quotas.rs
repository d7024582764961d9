//! What trawl knows about each vendor quota it spends, kept from one process to the next: a
//! stream's run started right after another's, or the next cron run, must not spend what the
//! previous one just used, nor forget what it learned.
//!
//! A quota is known by its origin and a fingerprint of the credential sent. The fingerprint is a
//! hash keyed with a random secret kept in this store ([`StateStore::fingerprint_key`]), so
//! that it is the same in every process using the store and means nothing without it; the
//! credential itself is never stored.

use super::{StateError, StateStore};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// One quota's state, as saved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaRecord {
    /// `scheme://host:port`.
    pub origin: String,
    /// The keyed fingerprint of the credential, in hex; empty for requests that carry none.
    pub credential: String,
    /// The rate learned for a quota nobody declared, in requests per minute.
    pub learned_per_minute: Option<f64>,
    /// When recent requests were answered (milliseconds since the epoch), oldest first: what a
    /// sliding window still counts.
    pub sends_ms: Vec<i64>,
    /// Until when every request is held (a `Retry-After`, a reset, a cool-down after a 429).
    pub paused_until_ms: Option<i64>,
    /// 429s in a row with nothing telling how long to wait: the next one pauses longer.
    pub strikes: u32,
}

/// The most send instants kept per quota: more than any quota's requests per window trawl keeps
/// exactly (a larger one is far from being reached by one host's requests within its window).
pub const MAX_SENDS_KEPT: usize = 10_000;

/// How long a send is kept: an hour, the longest window vendors state quotas over.
const KEPT_FOR_MS: i64 = 3_600_000;

pub(super) fn create_table(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS fingerprint_key (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            key BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS quotas (
            origin TEXT NOT NULL,
            credential TEXT NOT NULL,
            learned_per_minute REAL,
            sends_ms TEXT NOT NULL,
            paused_until_ms INTEGER,
            strikes INTEGER NOT NULL DEFAULT 0,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (origin, credential)
        );",
    )
}

impl StateStore {
    /// The secret that keys credential fingerprints (of quotas, and of connector storage), made (by SQLite's own generator, seeded from
    /// the system's) the first time it is asked for. Two processes asking at once get the same.
    pub fn fingerprint_key(&self) -> Result<Vec<u8>, StateError> {
        let connection = self.lock();
        connection.execute(
            "INSERT OR IGNORE INTO fingerprint_key (id, key) VALUES (1, randomblob(32))",
            [],
        )?;
        Ok(
            connection.query_row("SELECT key FROM fingerprint_key WHERE id = 1", [], |row| {
                row.get(0)
            })?,
        )
    }

    /// What was saved about the quota of `origin` and `credential`, if anything.
    pub fn quota(&self, origin: &str, credential: &str) -> Result<Option<QuotaRecord>, StateError> {
        let connection = self.lock();
        read_quota(&connection, origin, credential)
    }

    /// Saves quotas in one transaction, each merged with what another process may have saved
    /// meanwhile: the send instants of both are kept (the vendor counted both), the longer pause
    /// holds, and the learned rate and strikes are this process's (the last writer's).
    pub fn save_quotas(&self, records: &[QuotaRecord], now_ms: i64) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut connection = self.lock();
        // Immediate: the read and the write below see no other writer in between.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for record in records {
            let mut merged = match read_quota(&transaction, &record.origin, &record.credential)? {
                Some(saved) => merge(saved, record),
                None => record.clone(),
            };
            // No vendor states a quota over more than an hour.
            merged
                .sends_ms
                .retain(|&at| at > now_ms.saturating_sub(KEPT_FOR_MS));
            let sends = serde_json::to_string(&merged.sends_ms)
                .expect("a list of numbers always serialises");
            transaction
                .prepare_cached(
                    "INSERT INTO quotas (origin, credential, learned_per_minute, sends_ms,
                         paused_until_ms, strikes, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (origin, credential) DO UPDATE SET
                         learned_per_minute = excluded.learned_per_minute,
                         sends_ms = excluded.sends_ms,
                         paused_until_ms = excluded.paused_until_ms,
                         strikes = excluded.strikes,
                         updated_ms = excluded.updated_ms",
                )?
                .execute(params![
                    merged.origin,
                    merged.credential,
                    merged.learned_per_minute,
                    sends,
                    merged.paused_until_ms,
                    merged.strikes,
                    now_ms
                ])?;
        }
        transaction.commit()?;
        Ok(())
    }
}

fn read_quota(
    connection: &Connection,
    origin: &str,
    credential: &str,
) -> Result<Option<QuotaRecord>, StateError> {
    let row = connection
        .prepare_cached(
            "SELECT learned_per_minute, sends_ms, paused_until_ms, strikes FROM quotas
             WHERE origin = ?1 AND credential = ?2",
        )?
        .query_row(params![origin, credential], |row| {
            Ok((
                row.get::<_, Option<f64>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, u32>(3)?,
            ))
        })
        .optional()?;
    Ok(
        row.map(|(learned, sends, paused_until_ms, strikes)| QuotaRecord {
            origin: origin.to_string(),
            credential: credential.to_string(),
            // A value that is not finite and above zero (written by hand) is not a rate.
            learned_per_minute: learned.filter(|rate| rate.is_finite() && *rate > 0.0),
            // Unreadable instants are forgotten rather than failing the run: they only ever made it
            // wait.
            sends_ms: serde_json::from_str(&sends).unwrap_or_default(),
            paused_until_ms,
            strikes,
        }),
    )
}

fn merge(saved: QuotaRecord, ours: &QuotaRecord) -> QuotaRecord {
    let mut sends = saved.sends_ms;
    sends.extend_from_slice(&ours.sends_ms);
    sends.sort_unstable();
    sends.dedup();
    if sends.len() > MAX_SENDS_KEPT {
        sends.drain(..sends.len() - MAX_SENDS_KEPT);
    }
    QuotaRecord {
        origin: ours.origin.clone(),
        credential: ours.credential.clone(),
        learned_per_minute: ours.learned_per_minute.or(saved.learned_per_minute),
        sends_ms: sends,
        paused_until_ms: saved.paused_until_ms.max(ours.paused_until_ms),
        strikes: ours.strikes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(credential: &str, sends_ms: Vec<i64>) -> QuotaRecord {
        QuotaRecord {
            origin: "https://api.example.com:443".into(),
            credential: credential.into(),
            learned_per_minute: Some(90.0),
            sends_ms,
            paused_until_ms: Some(5_000),
            strikes: 2,
        }
    }

    #[test]
    fn quotas_round_trip_and_merge_with_another_writer() {
        let store = StateStore::in_memory().unwrap();
        assert_eq!(
            store.quota("https://api.example.com:443", "ab").unwrap(),
            None
        );
        let first = record("ab", vec![1_000, 2_000, 3_000]);
        store
            .save_quotas(std::slice::from_ref(&first), 3_000)
            .unwrap();
        assert_eq!(
            store.quota("https://api.example.com:443", "ab").unwrap(),
            Some(first.clone())
        );
        // Another credential is another quota.
        assert_eq!(
            store.quota("https://api.example.com:443", "cd").unwrap(),
            None
        );
        // Another process saved its own sends and a shorter pause: both processes' sends are
        // kept, in order, the longer pause holds, and the last writer's rate wins. Sends older
        // than an hour are forgotten.
        let second = QuotaRecord {
            learned_per_minute: Some(45.0),
            sends_ms: vec![2_000, 2_500, 4_000],
            paused_until_ms: Some(4_000),
            strikes: 0,
            ..first.clone()
        };
        store.save_quotas(&[second], 3_601_500).unwrap();
        let merged = store
            .quota("https://api.example.com:443", "ab")
            .unwrap()
            .unwrap();
        assert_eq!(merged.sends_ms, [2_000, 2_500, 3_000, 4_000]);
        assert_eq!(merged.paused_until_ms, Some(5_000));
        assert_eq!(merged.learned_per_minute, Some(45.0));
        assert_eq!(merged.strikes, 0);
    }

    #[test]
    fn the_fingerprint_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = StateStore::open(dir.path())
            .unwrap()
            .fingerprint_key()
            .unwrap();
        assert_eq!(key.len(), 32);
        let reopened = StateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.fingerprint_key().unwrap(), key);
        let other = StateStore::in_memory().unwrap();
        assert_ne!(other.fingerprint_key().unwrap(), key);
    }

    #[test]
    fn two_processes_saving_at_once_lose_no_sends() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<StateStore> = (0..2)
            .map(|_| StateStore::open(dir.path()).unwrap())
            .collect();
        std::thread::scope(|scope| {
            for (process, store) in stores.iter().enumerate() {
                scope.spawn(move || {
                    for round in 0..20 {
                        let at = (round * 2 + process as i64) * 10;
                        store.save_quotas(&[record("ab", vec![at])], at).unwrap();
                    }
                });
            }
        });
        let saved = stores[0]
            .quota("https://api.example.com:443", "ab")
            .unwrap()
            .unwrap();
        assert_eq!(saved.sends_ms, (0..40).map(|k| k * 10).collect::<Vec<_>>());
    }
}
