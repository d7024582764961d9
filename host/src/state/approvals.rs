//! Connector files the user approved: for each connector, the sha256 of the file they reviewed
//! and everything it declared at the time (`trawl plugin install`, `trawl plugin approve`).
//!
//! A connector's identity is the approved file, never what a file says about itself: `trawl run`
//! looks the approval up by the digest of the bytes it is about to compile, and runs the file only
//! if it describes itself exactly as it did when it was approved (see [`Declarations`]).

use super::{STATE_FILE, StateError, StateStore};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the user approved for one connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Where the approved file was installed (or found, when approved in place).
    pub path: PathBuf,
    /// The sha256 of the approved file, lower-case hex.
    pub sha256: String,
    /// Everything it declared when it was approved.
    pub declared: Declarations,
    /// When it was approved, in milliseconds since the epoch.
    pub approved_at_ms: i64,
}

impl Approval {
    /// The connector's name, as approved.
    pub fn connector(&self) -> &str {
        &self.declared.name
    }
}

/// Everything a connector declares that decides what it can reach, read or write: what a user
/// reviews before approving it, and what a later run must find unchanged. Sorted, so that two
/// descriptions that mean the same compare equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declarations {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The hosts it may send requests to.
    pub hosts: BTreeSet<String>,
    /// Its params by name: secret or not, the environment variable each is read from.
    pub params: BTreeMap<String, DeclaredParam>,
    /// Its streams by name, each with the host settings it gives defaults for.
    pub streams: BTreeMap<String, Vec<DeclaredSetting>>,
    /// Host settings it gives defaults for, for every stream (output files, time zone).
    pub settings: Vec<DeclaredSetting>,
    /// Its quotas, as `requests/per-milliseconds`.
    pub rate_limits: BTreeSet<(u32, u64)>,
}

/// A param as declared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredParam {
    pub secret: bool,
    /// The environment variable (also read from `.env`) that supplies its value: for a plain
    /// param, the connector sees that variable's value.
    pub env: Option<String>,
    /// For a secret: the hosts its value may be sent to (already resolved: a connector that names
    /// none lets it go to every host it declares, and those are listed here).
    pub secret_hosts: BTreeSet<String>,
    pub kind: String,
    pub default: Option<String>,
}

/// A host setting a connector gives a default for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeclaredSetting {
    pub key: String,
    pub default: Option<String>,
    pub env: Option<String>,
}

impl Declarations {
    /// The environment variables it reads, with what each supplies (`param token (secret)`,
    /// `setting output.directory of stream mail`), sorted by variable.
    pub fn environment(&self) -> BTreeMap<String, Vec<String>> {
        let mut read: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, param) in &self.params {
            if let Some(variable) = &param.env {
                let what = if param.secret {
                    format!("param {name} (secret: the connector sees only a placeholder)")
                } else {
                    format!("param {name} (the connector sees its value)")
                };
                read.entry(variable.clone()).or_default().push(what);
            }
        }
        let streams = self
            .streams
            .iter()
            .map(|(stream, settings)| (Some(stream), settings));
        for (stream, settings) in std::iter::once((None, &self.settings)).chain(streams) {
            for setting in settings {
                if let Some(variable) = &setting.env {
                    let what = match stream {
                        Some(stream) => format!("setting {} of stream {stream}", setting.key),
                        None => format!("setting {}", setting.key),
                    };
                    read.entry(variable.clone()).or_default().push(what);
                }
            }
        }
        read
    }
}

/// Creates the approvals table; called when the store is opened. (`approvals`, without the
/// whole declarations, was an earlier trawl's: what it approved is approved again with
/// `trawl plugin approve`, after a review that shows everything.)
pub(super) fn create_table(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS connector_approvals (
            connector TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            declarations TEXT NOT NULL,
            approved_at_ms INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS connector_approvals_by_digest
            ON connector_approvals (sha256);",
    )
}

const COLUMNS: &str = "path, sha256, declarations, approved_at_ms";

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
                &format!("SELECT {COLUMNS} FROM connector_approvals WHERE connector = ?1"),
                params![connector],
                read_approval,
            )
            .optional()?)
    }

    /// The approval of the file whose sha256 is `digest`, if that file is approved.
    pub fn approval_of_file(&self, digest: &str) -> Result<Option<Approval>, StateError> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                &format!("SELECT {COLUMNS} FROM connector_approvals WHERE sha256 = ?1 LIMIT 1"),
                params![digest],
                read_approval,
            )
            .optional()?)
    }

    /// Whether an earlier trawl, whose approvals did not record everything a connector declares,
    /// approved a connector of this name.
    pub fn has_earlier_approval(&self, connector: &str) -> Result<bool, StateError> {
        let connection = self.lock();
        let table: Option<String> = connection
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'approvals'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if table.is_none() {
            return Ok(false);
        }
        Ok(connection
            .query_row(
                "SELECT 1 FROM approvals WHERE connector = ?1",
                params![connector],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records an approval, replacing the connector's previous one.
    pub fn record_approval(&self, approval: &Approval) -> Result<(), StateError> {
        let connection = self.lock();
        let declarations = serde_json::to_string(&approval.declared)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))?;
        connection.execute(
            "INSERT INTO connector_approvals
                 (connector, path, sha256, declarations, approved_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (connector) DO UPDATE SET path = excluded.path,
                 sha256 = excluded.sha256, declarations = excluded.declarations,
                 approved_at_ms = excluded.approved_at_ms",
            params![
                approval.connector(),
                approval.path.to_string_lossy(),
                approval.sha256,
                declarations,
                approval.approved_at_ms
            ],
        )?;
        Ok(())
    }
}

fn read_approval(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let declarations: String = row.get(2)?;
    Ok(Approval {
        path: PathBuf::from(row.get::<_, String>(0)?),
        sha256: row.get(1)?,
        declared: serde_json::from_str(&declarations).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(2, Type::Text, error.into())
        })?,
        approved_at_ms: row.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(sha256: &str) -> Approval {
        let mut params = BTreeMap::new();
        params.insert(
            "token".to_string(),
            DeclaredParam {
                secret: true,
                env: Some("ACME_TOKEN".into()),
                secret_hosts: ["https://api.acme.test".to_string()].into(),
                kind: "text".into(),
                default: None,
            },
        );
        Approval {
            path: PathBuf::from("/plugins/acme.wasm"),
            sha256: sha256.into(),
            declared: Declarations {
                name: "acme".into(),
                version: "1.0.0".into(),
                hosts: ["https://api.acme.test".to_string()].into(),
                params,
                ..Declarations::default()
            },
            approved_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn approvals_round_trip_are_replaced_and_are_found_by_digest() {
        let store = StateStore::in_memory().unwrap();
        assert_eq!(store.approval("acme").unwrap(), None);
        store.record_approval(&approval("aa")).unwrap();
        assert_eq!(store.approval("acme").unwrap(), Some(approval("aa")));
        assert_eq!(store.approval_of_file("aa").unwrap(), Some(approval("aa")));
        store.record_approval(&approval("bb")).unwrap();
        assert_eq!(store.approval("acme").unwrap(), Some(approval("bb")));
        // The file approved before is no longer approved.
        assert_eq!(store.approval_of_file("aa").unwrap(), None);
        assert_eq!(store.approval("other").unwrap(), None);
    }

    #[test]
    fn approvals_of_an_earlier_trawl_are_recognised_but_not_taken() {
        let store = StateStore::in_memory().unwrap();
        assert!(!store.has_earlier_approval("acme").unwrap());
        store
            .lock()
            .execute_batch(
                "CREATE TABLE approvals (connector TEXT PRIMARY KEY, sha256 TEXT);
                 INSERT INTO approvals VALUES ('acme', 'aa');",
            )
            .unwrap();
        assert!(store.has_earlier_approval("acme").unwrap());
        assert_eq!(store.approval_of_file("aa").unwrap(), None);
    }

    #[test]
    fn a_store_is_found_only_once_created() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!StateStore::exists_in(dir.path()));
        StateStore::open(dir.path()).unwrap();
        assert!(StateStore::exists_in(dir.path()));
    }
}
