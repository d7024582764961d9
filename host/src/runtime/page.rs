//! A page as the engine sees it, whichever version of the contract the connector speaks.

use super::wit::v0_3::exports::trawl::connector0_3_0::connector as v0_3;
use super::wit::{v0_1, v0_2};
use super::{HostState, LimitExceeded};
use crate::shared_text::SharedText;
use std::ops::Range;

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
        body: SharedText,
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

/// Fails the call with the page-record limit if a page lists more than `max_page_records`
/// records: checked as soon as the page is out of the sandbox, before each record it lists is
/// made into one of the host's (a list of empty records is small in the sandbox, and several
/// times larger here).
pub(super) fn check_count(state: &HostState, listed: usize) -> wasmtime::Result<()> {
    let limit = state.max_page_records();
    if listed > limit {
        return Err(LimitExceeded::PageRecords { limit }.into());
    }
    Ok(())
}

/// The records a 0.3.0 page lists: those it wrote out and those it keeps by their place (those
/// kept within a window are counted as the body was read).
pub(super) fn listed(page: &v0_3::Page) -> usize {
    let kept = match page.read.as_ref().map(|read| &read.kept) {
        Some(v0_3::KeptRecords::Listed(kept)) => kept.len(),
        _ => 0,
    };
    page.records.len() + kept
}

/// A 0.2.0 page as the 0.3.0 page it is: 0.3.0 only added ways to keep records.
pub(super) fn take_v0_2(
    state: &mut HostState,
    page: v0_2::exports::trawl::connector0_2_0::connector::Page,
) -> Result<Page, String> {
    take(
        state,
        v0_3::Page {
            records: page
                .records
                .into_iter()
                .map(|record| v0_3::Record {
                    id: record.id,
                    event_time: record.event_time,
                    json: record.json,
                })
                .collect(),
            read: page.read.map(|read| v0_3::ReadRecords {
                records: read.records,
                kept: v0_3::KeptRecords::Listed(
                    read.kept
                        .into_iter()
                        .map(|kept| v0_3::KeptRecord {
                            index: kept.index,
                            id: kept.id,
                            event_time: kept.event_time,
                        })
                        .collect(),
                ),
            }),
            next_cursor: page.next_cursor,
        },
    )
}

/// A page with the records it kept from a body the host read taken out of the store; an error
/// says how the page breaks the contract.
pub(super) fn take(state: &mut HostState, page: v0_3::Page) -> Result<Page, String> {
    let mut records: Vec<Record> = page
        .records
        .into_iter()
        .map(|record| Record::from_connector(record.id, record.event_time, record.json))
        .collect();
    if let Some(read) = page.read {
        let mut body = state
            .resources()
            .delete(read.records)
            .map_err(|error| format!("its page returns records it does not hold: {error}"))?;
        let kept = match read.kept {
            v0_3::KeptRecords::Listed(kept) => kept,
            v0_3::KeptRecords::Within(window) => body
                .take_keys()
                .ok_or("it keeps the records of a window of a body read without keys")?
                .into_iter()
                .zip(0..)
                .filter(|(key, _)| window.start <= key.event_time && key.event_time < window.end)
                .map(|(key, index)| v0_3::KeptRecord {
                    index,
                    id: key.id,
                    event_time: key.event_time,
                })
                .collect(),
        };
        // A record shares the body's text, which stays whole until the record is written. That
        // pays when the records kept are most of the body; a few kept from a large one are copied
        // out instead, so that the rest of it is freed now.
        let kept_bytes: usize = kept
            .iter()
            .filter_map(|kept| body.range(kept.index))
            .map(|range| range.len())
            .sum();
        let share = kept_bytes.saturating_mul(2) >= body.text().len();
        records.reserve(kept.len());
        for kept in kept {
            let (text, range) = body
                .record(kept.index)
                .zip(body.range(kept.index))
                .ok_or_else(|| {
                    format!(
                        "it keeps record {} of a body that has {}",
                        kept.index,
                        body.count()
                    )
                })?;
            let json = if share {
                RecordJson::Checked {
                    body: body.text().clone(),
                    range,
                }
            } else {
                RecordJson::Checked {
                    body: SharedText::from(text),
                    range: 0..text.len(),
                }
            };
            records.push(Record {
                id: kept.id,
                event_time: kept.event_time,
                json,
            });
        }
    }
    Ok(Page {
        records,
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Capabilities;
    use crate::capabilities::responses::{ReadRecords, RecordKey};
    use crate::runtime::GuestLimits;
    use crate::runtime::wit::Window;
    use v0_3::{KeptRecord, KeptRecords, Page as GuestPage, ReadRecords as Read};

    /// `take` of a page that keeps `kept` of the records `read`.
    fn take_read(read: ReadRecords, kept: KeptRecords) -> Result<Page, String> {
        let mut state = HostState::new(Capabilities::none("test"), &GuestLimits::default());
        let page = GuestPage {
            records: Vec::new(),
            read: Some(Read {
                records: state.resources().push(read).unwrap(),
                kept,
            }),
            next_cursor: None,
        };
        take(&mut state, page)
    }

    /// `take` of a page keeping the records at `indexes` of `text`, whose records are at `ranges`.
    fn take_kept(text: &str, ranges: Vec<Range<usize>>, indexes: &[u32]) -> (SharedText, Page) {
        let text = SharedText::from(text);
        let kept = indexes
            .iter()
            .map(|&index| KeptRecord {
                index,
                id: format!("r{index}"),
                event_time: 0,
            })
            .collect();
        let read = ReadRecords::new(text.clone(), ranges);
        (text, take_read(read, KeptRecords::Listed(kept)).unwrap())
    }

    fn shares(record: &Record, text: &SharedText) -> bool {
        matches!(&record.json, RecordJson::Checked { body, .. } if body.same(text))
    }

    #[test]
    fn records_that_are_most_of_a_body_share_it_and_a_few_are_copied_out() {
        let body = r#"[{"a":1},{"b":2},{"c":3}]"#;
        let ranges = vec![1..8, 9..16, 17..24];
        let (text, all) = take_kept(body, ranges.clone(), &[0, 1, 2]);
        assert!(all.records.iter().all(|record| shares(record, &text)));
        let texts: Vec<&str> = all
            .records
            .iter()
            .map(|record| record.json.as_str())
            .collect();
        assert_eq!(texts, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);

        let (text, one) = take_kept(body, ranges, &[1]);
        assert!(!shares(&one.records[0], &text));
        assert_eq!(one.records[0].json.as_str(), r#"{"b":2}"#);
        assert_eq!(one.records[0].json.len(), 7);
    }

    #[test]
    fn a_page_listing_more_records_than_the_limit_is_stopped_before_they_are_made() {
        let mut state = HostState::new(Capabilities::none("test"), &GuestLimits::default());
        state.set_max_page_records(3);
        assert!(check_count(&state, 3).is_ok());
        let error = check_count(&state, 4).unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<LimitExceeded>(),
                Some(LimitExceeded::PageRecords { limit: 3 })
            ),
            "{error}"
        );
        let kept = (0..5)
            .map(|index| KeptRecord {
                index,
                id: String::new(),
                event_time: 0,
            })
            .collect();
        let text = SharedText::from("[{}]");
        let only = 1..3;
        let page = GuestPage {
            records: Vec::new(),
            read: Some(Read {
                records: state
                    .resources()
                    .push(ReadRecords::new(text, vec![only]))
                    .unwrap(),
                kept: KeptRecords::Listed(kept),
            }),
            next_cursor: None,
        };
        assert_eq!(listed(&page), 5);
    }

    #[test]
    fn a_record_the_body_does_not_have_breaks_the_contract() {
        let only = 1..3;
        let read = ReadRecords::new(SharedText::from("[{}]"), vec![only]);
        let kept = KeptRecords::Listed(vec![KeptRecord {
            index: 1,
            id: "x".into(),
            event_time: 0,
        }]);
        let error = take_read(read, kept).unwrap_err();
        assert_eq!(error, "it keeps record 1 of a body that has 1");
    }

    #[test]
    fn a_window_keeps_the_records_whose_time_the_host_read_in_it() {
        let text = SharedText::from(r#"[{"t":1},{"t":5},{"t":9}]"#);
        let keys = [1, 5, 9]
            .map(|event_time| RecordKey {
                id: format!("r{event_time}"),
                event_time,
            })
            .to_vec();
        let read = ReadRecords::new(text, vec![1..8, 9..16, 17..24]).with_keys(Some(keys));
        let page = take_read(read, KeptRecords::Within(Window { start: 5, end: 9 })).unwrap();
        let kept: Vec<_> = page
            .records
            .iter()
            .map(|record| (record.id.as_str(), record.event_time, record.json.as_str()))
            .collect();
        assert_eq!(kept, [("r5", 5, r#"{"t":5}"#)]);
    }

    #[test]
    fn a_window_of_a_body_read_without_keys_breaks_the_contract() {
        let only = 1..3;
        let read = ReadRecords::new(SharedText::from("[{}]"), vec![only]);
        let error = take_read(read, KeptRecords::Within(Window { start: 0, end: 1 })).unwrap_err();
        assert_eq!(
            error,
            "it keeps the records of a window of a body read without keys"
        );
    }
}
