//! Pages of JSON records, read by the host.
//!
//! Vendor APIs answer with an object one of whose members is the array of records. A connector
//! names that member and the few members it needs from each record (its id, its time) and from the
//! page (a cursor); the host splits the body natively, checking all of it, and hands over only
//! those. The records' text stays in the host: the connector returns the records it keeps by their
//! place in the page ([`PickedRecord::keep`], [`ReadPage::into_page`]). Records that carry their
//! id and time as plain members need not be gone over at all: the connector names those two
//! ([`RecordKeys`]), the host reads them, and the page keeps the records of its window
//! ([`ReadPage::into_page_within`]).

use crate::bindings::exports::trawl::connector0_3_0::connector::{
    KeptRecord, KeptRecords, ReadRecords,
};
use crate::bindings::trawl::connector0_2_0::responses::{self as wit, Records, Span};
use crate::bindings::trawl::connector0_3_0::keyed_pages;
use crate::{Page, Record, RecordKeys, TimeFormat, Timestamp, Window};
use serde::Deserialize;

/// Where and why a body is not the page it should be, as the host found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    /// Byte offset into the body.
    pub offset: u64,
    /// What the body should have had there, and what it had.
    pub message: String,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The host's message already says where (the byte offset) and what was expected.
        f.write_str(&self.message)
    }
}

impl std::error::Error for PageError {}

/// A page the host read: what the connector asked for of each record and of the page.
pub struct ReadPage<const N: usize> {
    records: Option<Records>,
    count: u32,
    picked_text: String,
    picked: Vec<Option<Span>>,
    members: Vec<(String, Option<String>)>,
}

/// One record of a [`ReadPage`]: its place in the page and the members picked from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickedRecord<'a, const N: usize> {
    /// Its place in the page's list of records, from 0.
    pub index: u32,
    /// The raw JSON of each member asked for, in the order asked; `None` where the record lacks
    /// it.
    pub picked: [Option<&'a str>; N],
}

impl<const N: usize> PickedRecord<'_, N> {
    /// Keeps this record in the page, with the id and event time the connector read from it.
    pub fn keep(&self, id: impl Into<String>, event_time: Timestamp) -> KeptRecord {
        KeptRecord {
            index: self.index,
            id: id.into(),
            event_time,
        }
    }
}

impl<const N: usize> ReadPage<N> {
    /// Has the host read `body` as a page whose records are the array `records_key` (empty: the
    /// body is the array), picking `picked` from each record and `members` from the page; with
    /// `keys`, the host also reads each record's id and event time itself.
    pub(crate) fn read(
        body: &wit::Body,
        records_key: &str,
        picked: [&str; N],
        members: &[&str],
        keys: Option<&RecordKeys>,
    ) -> Result<Self, PageError> {
        let shape = wit::PageShape {
            records: records_key.to_string(),
            picked: picked.iter().map(|name| name.to_string()).collect(),
            members: members.iter().map(|name| name.to_string()).collect(),
        };
        let read = match keys {
            None => body.read_page(&shape),
            Some(keys) => keyed_pages::read_page(body, &shape, keys),
        }
        .map_err(|error| PageError {
            offset: error.offset,
            message: error.message,
        })?;
        Ok(ReadPage {
            records: read.records,
            count: read.count,
            picked_text: read.picked_text,
            picked: read.picked,
            members: members
                .iter()
                .map(|name| name.to_string())
                .zip(read.members)
                .collect(),
        })
    }

    /// Whether the page has a list of records at all (`false` when its member is missing or
    /// `null`).
    pub fn has_records(&self) -> bool {
        self.records.is_some()
    }

    /// How many records the page has.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the page has no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records in the page's order.
    pub fn records(&self) -> impl Iterator<Item = PickedRecord<'_, N>> {
        (0..self.count).map(|index| {
            let row = index as usize * N;
            PickedRecord {
                index,
                picked: std::array::from_fn(|member| {
                    let span = self.picked.get(row + member)?.as_ref()?;
                    let start = span.start as usize;
                    self.picked_text.get(start..start + span.length as usize)
                }),
            }
        })
    }

    /// The text of record `index`, copied from the host: for a record whose id has to be made
    /// from its text, or to quote in an error.
    pub fn text(&self, index: u32) -> Option<String> {
        self.records.as_ref()?.text(index)
    }

    /// The start of record `index`'s text, for error messages.
    pub fn excerpt(&self, index: u32) -> String {
        self.text(index)
            .map(|text| crate::excerpt(&text))
            .unwrap_or_default()
    }

    /// The raw JSON of a top-level member of the page the connector asked for, if the page has it.
    pub fn member(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, raw)| raw.as_deref())
    }

    /// A member read with serde; `Ok(None)` if the page does not have it.
    pub fn parse_member<'a, T: Deserialize<'a>>(
        &'a self,
        key: &str,
    ) -> Result<Option<T>, serde_json::Error> {
        self.member(key).map(serde_json::from_str).transpose()
    }

    /// The page to return: the records kept from this one, then `extra` the connector wrote out
    /// itself (usually none).
    pub fn into_page(
        self,
        kept: Vec<KeptRecord>,
        extra: Vec<Record>,
        next_cursor: Option<String>,
    ) -> Page {
        self.keeping(KeptRecords::Listed(kept), extra, next_cursor)
    }

    /// The page to return for a page read with [`RecordKeys`]
    /// ([`HeldResponse::read_keyed_page`](crate::http::HeldResponse::read_keyed_page)): every
    /// record whose event time is in `window`, with the ids and times the host read.
    pub fn into_page_within(self, window: Window, next_cursor: Option<String>) -> Page {
        self.keeping(KeptRecords::Within(window), Vec::new(), next_cursor)
    }

    fn keeping(self, kept: KeptRecords, extra: Vec<Record>, next_cursor: Option<String>) -> Page {
        Page {
            records: extra,
            read: self.records.map(|records| ReadRecords { records, kept }),
            next_cursor,
        }
    }
}

impl RecordKeys {
    /// A record's id is its member `id`; its event time, its member `time` written as `format`.
    pub fn new(id: &str, time: &str, format: TimeFormat) -> Self {
        RecordKeys {
            id: id.to_string(),
            time: time.to_string(),
            time_format: format,
        }
    }
}

/// The id a picked member's raw JSON gives a record, as [`crate::id_text`] does for a parsed
/// value: a string's text, a number as written (integers of any length, which a parsed value
/// would round past 64 bits).
pub fn id_text(raw: &str) -> Option<String> {
    let plain_integer = |text: &str| {
        !text.is_empty()
            && text.bytes().all(|byte| byte.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'))
    };
    if plain_integer(raw) {
        return Some(raw.to_owned());
    }
    if let Some(inner) = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        && !inner.is_empty()
        && !inner.contains('\\')
    {
        return Some(inner.to_owned());
    }
    crate::id_text(&serde_json::from_str(raw).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_raw_json_match_ids_from_values() {
        for raw in [
            "7",
            "0",
            "007",
            "-3",
            "1.50",
            "1e3",
            r#""abc""#,
            r#""a\"b""#,
            r#""""#,
            "null",
            "true",
            "[1]",
            "{}",
        ] {
            let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
            assert_eq!(id_text(raw), crate::id_text(&value), "{raw}");
        }
        assert_eq!(id_text("7").as_deref(), Some("7"));
        // Past 64 bits a parsed number would be rounded to a float; ids stay as written.
        assert_eq!(
            id_text("12345678901234567890123").as_deref(),
            Some("12345678901234567890123")
        );
        assert_eq!(id_text(r#""a\"b""#).as_deref(), Some("a\"b"));
    }
}
