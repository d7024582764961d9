//! How densely each stream holds records, remembered between runs so that a run's first windows
//! are already sized for the stream (see `engine::plan`).

use super::{Scope, StateError, StateStore};
use rusqlite::{Connection, OptionalExtension, params};

/// What the windows of a stream held: `records` in windows spanning `millis`, and the most
/// records a page held that was followed by another (the vendor's page size, as far as seen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Density {
    pub records: u64,
    pub millis: u64,
    pub full_page: u64,
    /// The fewest pages after which the vendor refused to go deeper into a window (a page token
    /// it no longer takes); 0 when it never did.
    pub refused_after_pages: u64,
}

pub(super) fn create_table(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS stream_density (
            stream TEXT PRIMARY KEY,
            records INTEGER NOT NULL,
            millis INTEGER NOT NULL,
            full_page INTEGER NOT NULL,
            refused_after_pages INTEGER NOT NULL
        );",
    )
}

/// Density belongs to the vendor's stream, not to where its records go: a new output file of the
/// same stream is sized from what the old one saw.
fn stream_key(scope: &Scope) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        scope.connector, scope.profile, scope.stream
    )
}

fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn loaded(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl StateStore {
    /// What earlier runs saw of this scope's stream; nothing seen is an empty density.
    pub fn density(&self, scope: &Scope) -> Result<Density, StateError> {
        let connection = self.lock();
        let density = connection
            .prepare_cached(
                "SELECT records, millis, full_page, refused_after_pages FROM stream_density
                 WHERE stream = ?1",
            )?
            .query_row(params![stream_key(scope)], |row| {
                Ok(Density {
                    records: loaded(row.get(0)?),
                    millis: loaded(row.get(1)?),
                    full_page: loaded(row.get(2)?),
                    refused_after_pages: loaded(row.get(3)?),
                })
            })
            .optional()?;
        Ok(density.unwrap_or_default())
    }

    pub fn save_density(&self, scope: &Scope, density: &Density) -> Result<(), StateError> {
        if *density == Density::default() {
            return Ok(());
        }
        let connection = self.lock();
        connection
            .prepare_cached(
                "INSERT INTO stream_density (stream, records, millis, full_page,
                     refused_after_pages)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (stream) DO UPDATE SET records = excluded.records,
                     millis = excluded.millis, full_page = excluded.full_page,
                     refused_after_pages = excluded.refused_after_pages",
            )?
            .execute(params![
                stream_key(scope),
                stored(density.records),
                stored(density.millis),
                stored(density.full_page),
                stored(density.refused_after_pages)
            ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(output: &str) -> Scope {
        Scope {
            connector: "yandex360".into(),
            profile: "default".into(),
            stream: "mail".into(),
            output: output.into(),
        }
    }

    #[test]
    fn a_stream_remembers_its_density_whatever_its_output() {
        let store = StateStore::in_memory().unwrap();
        assert_eq!(store.density(&scope("a")).unwrap(), Density::default());
        let seen = Density {
            records: 6000,
            millis: 3_600_000,
            full_page: 100,
            refused_after_pages: 0,
        };
        store.save_density(&scope("a"), &seen).unwrap();
        assert_eq!(store.density(&scope("b")).unwrap(), seen);
        let other_stream = Scope {
            stream: "disk".into(),
            ..scope("a")
        };
        assert_eq!(store.density(&other_stream).unwrap(), Density::default());
        let later = Density {
            records: 10,
            ..seen
        };
        store.save_density(&scope("a"), &later).unwrap();
        assert_eq!(store.density(&scope("a")).unwrap(), later);
    }
}
