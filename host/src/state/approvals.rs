//! Connectors the user approved: for each connector name, the digest of the file they reviewed
//! and what it asked for at the time (`trawl plugin install`, `trawl plugin approve`). `trawl run`
//! refuses a connector whose file no longer matches its approval.

use super::{STATE_FILE, StateError, StateStore};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the user approved for one connector name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The connector's name, as it describes itself.
    pub connector: String,
    /// Where the approved file was installed (or found, when approved in place).
    pub path: PathBuf,
    /// The sha256 of the approved file, lower-case hex.
    pub sha256: String,
    /// The version it declared.
    pub version: String,
    /// The hosts it declared, sorted.
    pub hosts: Vec<String>,
    /// Its secret params and where each may be sent, sorted by name.
    pub secrets: Vec<ApprovedSecret>,
    /// The names of all its params, secret or not, sorted.
    pub params: Vec<String>,
    /// When it was approved, in milliseconds since the epoch.
    pub approved_at_ms: i64,
}

/// A secret param as approved: the hosts its value may be sent to (already resolved: a connector
/// that names none lets it go to every host it declares, and those are listed here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedSecret {
    pub name: String,
    /// The environment variable that supplies it, if the connector names one.
    pub env: Option<String>,
    pub hosts: Vec<String>,
}

/// Creates the approvals table; called when the store is opened.
pub(super) fn create_table(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS approvals (
            connector TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            version TEXT NOT NULL,
            hosts TEXT NOT NULL,
            secrets TEXT NOT NULL,
            params TEXT NOT NULL,
            approved_at_ms INTEGER NOT NULL
        );",
    )
}

impl StateStore {
    /// Whether `dir` already holds a state store, for commands that only read approvals and must
    /// not create one.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(STATE_FILE).is_file()
    }

    /// The approval recorded for a connector name, if any.
    pub fn approval(&self, connector: &str) -> Result<Option<Approval>, StateError> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT connector, path, sha256, version, hosts, secrets, params, approved_at_ms
                 FROM approvals WHERE connector = ?1",
                params![connector],
                read_approval,
            )
            .optional()?)
    }

    /// Records an approval, replacing the connector's previous one.
    pub fn record_approval(&self, approval: &Approval) -> Result<(), StateError> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO approvals
                 (connector, path, sha256, version, hosts, secrets, params, approved_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (connector) DO UPDATE SET path = excluded.path,
                 sha256 = excluded.sha256, version = excluded.version, hosts = excluded.hosts,
                 secrets = excluded.secrets, params = excluded.params,
                 approved_at_ms = excluded.approved_at_ms",
            params![
                approval.connector,
                approval.path.to_string_lossy(),
                approval.sha256,
                approval.version,
                to_json(&approval.hosts)?,
                to_json(&approval.secrets)?,
                to_json(&approval.params)?,
                approval.approved_at_ms
            ],
        )?;
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))
}

fn from_json<T: for<'de> Deserialize<'de>>(row: &Row<'_>, column: usize) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(column, Type::Text, error.into())
    })
}

fn read_approval(row: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        connector: row.get(0)?,
        path: PathBuf::from(row.get::<_, String>(1)?),
        sha256: row.get(2)?,
        version: row.get(3)?,
        hosts: from_json(row, 4)?,
        secrets: from_json(row, 5)?,
        params: from_json(row, 6)?,
        approved_at_ms: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(sha256: &str) -> Approval {
        Approval {
            connector: "acme".into(),
            path: PathBuf::from("/plugins/acme.wasm"),
            sha256: sha256.into(),
            version: "1.0.0".into(),
            hosts: vec!["https://api.acme.test".into()],
            secrets: vec![ApprovedSecret {
                name: "token".into(),
                env: Some("ACME_TOKEN".into()),
                hosts: vec!["https://api.acme.test".into()],
            }],
            params: vec!["base_url".into(), "token".into()],
            approved_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn approvals_round_trip_and_are_replaced() {
        let store = StateStore::in_memory().unwrap();
        assert_eq!(store.approval("acme").unwrap(), None);
        store.record_approval(&approval("aa")).unwrap();
        assert_eq!(store.approval("acme").unwrap(), Some(approval("aa")));
        store.record_approval(&approval("bb")).unwrap();
        assert_eq!(store.approval("acme").unwrap(), Some(approval("bb")));
        assert_eq!(store.approval("other").unwrap(), None);
    }

    #[test]
    fn a_store_is_found_only_once_created() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!StateStore::exists_in(dir.path()));
        StateStore::open(dir.path()).unwrap();
        assert!(StateStore::exists_in(dir.path()));
    }
}
