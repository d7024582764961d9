//! A page as the engine sees it, whichever version of the contract the connector speaks.

use super::HostState;
use super::wit::{v0_1, v0_2};
use std::ops::Range;
use std::sync::Arc;

/// One page of a connector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts; `None` when the window is complete.
    pub next_cursor: Option<String>,
}

/// One record of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// Milliseconds since the epoch, UTC.
    pub event_time: i64,
    pub json: RecordJson,
}

/// A record's JSON text, and whether the host has checked it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordJson {
    /// Written out by the connector: nothing about it is known yet.
    FromConnector(String),
    /// A piece of a body the host read and checked in full: one JSON object, which may still
    /// have line breaks between its tokens. It shares the body's text rather than copying it out:
    /// a page's records are most of its body, and each copy cost an allocation and a `memcpy`.
    Checked {
        body: Arc<String>,
        range: Range<usize>,
    },
}

impl RecordJson {
    /// The text's length, known without reading the text.
    pub fn len(&self) -> usize {
        match self {
            RecordJson::FromConnector(text) => text.len(),
            RecordJson::Checked { range, .. } => range.len(),
        }
    }

    /// Never true of a record the host checked; here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_str(&self) -> &str {
        match self {
            RecordJson::FromConnector(text) => text,
            RecordJson::Checked { body, range } => &body[range.clone()],
        }
    }
}

impl Record {
    fn from_connector(id: String, event_time: i64, json: String) -> Self {
        Record {
            id,
            event_time,
            json: RecordJson::FromConnector(json),
        }
    }
}

impl From<v0_1::exports::trawl::connector::connector::Page> for Page {
    fn from(page: v0_1::exports::trawl::connector::connector::Page) -> Self {
        Page {
            records: page
                .records
                .into_iter()
                .map(|record| Record::from_connector(record.id, record.event_time, record.json))
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A 0.2.0 page with the records it kept from a body the host read taken out of the store; an
/// error says how the page breaks the contract.
pub(super) fn take(
    state: &mut HostState,
    page: v0_2::exports::trawl::connector0_2_0::connector::Page,
) -> Result<Page, String> {
    let mut records: Vec<Record> = page
        .records
        .into_iter()
        .map(|record| Record::from_connector(record.id, record.event_time, record.json))
        .collect();
    if let Some(read) = page.read {
        let body = state
            .resources()
            .delete(read.records)
            .map_err(|error| format!("its page returns records it does not hold: {error}"))?;
        records.reserve(read.kept.len());
        for kept in read.kept {
            let range = body.range(kept.index).ok_or_else(|| {
                format!(
                    "it keeps record {} of a body that has {}",
                    kept.index,
                    body.count()
                )
            })?;
            records.push(Record {
                id: kept.id,
                event_time: kept.event_time,
                json: RecordJson::Checked {
                    body: body.text().clone(),
                    range,
                },
            });
        }
    }
    Ok(Page {
        records,
        next_cursor: page.next_cursor,
    })
}
