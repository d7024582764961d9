//! The `responses` capability (contract 0.2.0): HTTP responses whose body stays in the host, and
//! pages of JSON records read from them there; with `keyed-pages` (0.3.0), each record's id and
//! time read there too.
//!
//! In 0.1.0 a page's body was copied into the sandbox, scanned there by the connector, each record
//! copied out again and then checked once more by the host: most of a page's cost. Here the host
//! reads the body once, natively, checking all of it as it goes ([`split`]); the connector gets
//! only the few members it asks for (ids, times, a cursor) and hands back the records it keeps by
//! their place in the body.
//!
//! A connector may hold no more bytes in the host than its memory limit lets it hold itself.

mod keys;
mod split;

pub(crate) use split::{MAX_NESTING, check_record};

pub use keys::RecordKey;

use crate::runtime::wit::RecordKeys;
use crate::runtime::wit::trawl::connector::http::{Error, Request};
use crate::runtime::wit::v0_2::trawl::connector0_2_0::responses::{
    self, HostBody, HostRecords, PageError, PageRead, PageShape, Response, Span,
};
use crate::runtime::wit::v0_3::trawl::connector0_3_0::keyed_pages;
use crate::runtime::{HostState, LimitExceeded};
use crate::shared_text::SharedText;
use bytes::Bytes;
use std::ops::Range;
use wasmtime::component::Resource;

/// The most members a connector may ask for in one `read-page`, of each record and of the page:
/// what it needs is an id, a time and a cursor, and every one asked for costs a span per record.
const MAX_NAMES: usize = 32;

/// A response body held by the host.
pub struct Body {
    /// UTF-8 text (any page is), or bytes that are not.
    bytes: Result<SharedText, (Bytes, std::str::Utf8Error)>,
}

impl Body {
    fn new(bytes: Bytes) -> Self {
        Body {
            bytes: SharedText::from_utf8(bytes),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            Ok(text) => text.as_bytes(),
            Err((bytes, _)) => bytes,
        }
    }
}

/// The records of a body the host read and checked, until the connector returns them in its page.
pub struct ReadRecords {
    text: SharedText,
    records: Vec<Range<usize>>,
    /// Each record's id and time, when the connector had the host read them.
    keys: Option<Vec<RecordKey>>,
}

impl ReadRecords {
    /// The records of `text` at `records`, each one JSON object the host checked.
    pub(crate) fn new(text: SharedText, records: Vec<Range<usize>>) -> Self {
        ReadRecords {
            text,
            records,
            keys: None,
        }
    }

    /// These records with each one's id and time, in the records' order, as the host read them.
    pub(crate) fn with_keys(self, keys: Option<Vec<RecordKey>>) -> Self {
        ReadRecords { keys, ..self }
    }

    /// Each record's id and time, in the records' order, when the host read them; taken, since
    /// they become the records'.
    pub fn take_keys(&mut self) -> Option<Vec<RecordKey>> {
        self.keys.take()
    }

    /// How many records the body has.
    pub fn count(&self) -> usize {
        self.records.len()
    }

    /// The text of record `index`: one JSON object, checked.
    pub fn record(&self, index: u32) -> Option<&str> {
        self.text.get(self.range(index)?)
    }

    /// Where record `index` is in [`text`](Self::text).
    pub fn range(&self, index: u32) -> Option<Range<usize>> {
        self.records.get(usize::try_from(index).ok()?).cloned()
    }

    /// The body's text, which every record is a piece of.
    pub fn text(&self) -> &SharedText {
        &self.text
    }

    /// What holding these costs, for the connector's limit: the text is counted again, since it
    /// outlives its body if the connector drops that first.
    fn held_bytes(&self) -> usize {
        let keys = self.keys.iter().flatten();
        self.text.len()
            + self.records.len() * size_of::<Range<usize>>()
            + keys
                .map(|key| size_of::<RecordKey>() + key.id.len())
                .sum::<usize>()
    }
}

impl responses::Host for HostState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let response = match self.send_request(request).await {
            Ok(response) => response,
            Err(error) => return Ok(Err(error)),
        };
        let body = Body::new(response.body);
        self.hold(body.as_bytes().len()).map_err(memory_limit)?;
        Ok(Ok(Response {
            status: response.status,
            headers: response.headers,
            body: self.push_resource(body)?,
        }))
    }
}

/// Holding more in the host than the connector's memory limit is running out of memory.
fn memory_limit(limit: usize) -> wasmtime::Error {
    LimitExceeded::Memory { limit }.into()
}

impl HostBody for HostState {
    fn bytes(&mut self, body: Resource<Body>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.resources().get(&body)?.as_bytes().to_vec())
    }

    fn read_page(
        &mut self,
        body: Resource<Body>,
        shape: PageShape,
    ) -> wasmtime::Result<Result<PageRead, PageError>> {
        self.read_body(&body, shape, None)
    }

    fn drop(&mut self, body: Resource<Body>) -> wasmtime::Result<()> {
        let body = self.resources().delete(body)?;
        self.release(body.as_bytes().len());
        Ok(())
    }
}

impl keyed_pages::Host for HostState {
    fn read_page(
        &mut self,
        body: Resource<Body>,
        shape: PageShape,
        keys: RecordKeys,
    ) -> wasmtime::Result<Result<PageRead, PageError>> {
        self.read_body(&body, shape, Some(keys))
    }
}

impl HostState {
    /// `read-page` of either version: the body split into records, the members asked for
    /// gathered, and with `keys` each record's id and time read.
    fn read_body(
        &mut self,
        body: &Resource<Body>,
        shape: PageShape,
        keys: Option<RecordKeys>,
    ) -> wasmtime::Result<Result<PageRead, PageError>> {
        if shape.picked.len() > MAX_NAMES || shape.members.len() > MAX_NAMES {
            wasmtime::bail!(
                "read-page asks for {} members of each record and {} of the page; at most \
                 {MAX_NAMES} of each",
                shape.picked.len(),
                shape.members.len()
            );
        }
        // The reading is the host's work on the connector's behalf: its time counts against the
        // call's CPU budget (it is bounded by the body's size, so a check before and after is
        // enough), and what it allocates against the memory limit, before it is allocated.
        self.check_cpu_budget()?;
        let asked = shape.picked.len();
        // The keys are found in the same pass, as two more members of each record, after those
        // the connector asked for and never handed to it.
        let mut picked = shape.picked;
        if let Some(keys) = &keys {
            picked.extend([keys.id.clone(), keys.time.clone()]);
        }
        let text = match &self.resources().get(body)?.bytes {
            Ok(text) => text.clone(),
            Err((_, error)) => {
                let offset = error.valid_up_to();
                return Ok(Err(PageError {
                    offset: offset as u64,
                    message: format!(
                        "expected UTF-8 text at byte {offset}, found a byte sequence that is not UTF-8"
                    ),
                }));
            }
        };
        let layout = split::Shape {
            records: &shape.records,
            picked: &picked,
            members: &shape.members,
        };
        let bounds = split::Bounds {
            records: self.max_page_records(),
            bytes: self.room_to_hold(),
        };
        let split = match split::split_page_within(text.as_bytes(), &layout, bounds) {
            Ok(split) => split,
            Err(split::SplitFailure::Malformed(error)) => {
                return Ok(Err(PageError {
                    offset: error.offset as u64,
                    message: error.to_string(),
                }));
            }
            Err(split::SplitFailure::TooManyRecords { limit }) => {
                return Err(LimitExceeded::PageRecords { limit }.into());
            }
            Err(split::SplitFailure::TooLarge { .. }) => {
                return Err(memory_limit(self.memory_limit()));
            }
        };
        let row = |index: usize| &split.picked[index * picked.len()..][..picked.len()];
        let count = split.records.as_ref().map_or(0, Vec::len);
        // Held while the reading lasts, and let go of at its end: the ranges, then what is
        // handed to the connector, and each record's key.
        let mut reading = self.holding(
            split.records.as_ref().map_or(0, Vec::capacity) * size_of::<Range<usize>>()
                + split.picked.capacity() * size_of::<split::Piece>(),
        )?;
        let picked_ranges = || (0..count).flat_map(|index| &row(index)[..asked]);
        reading.add(self, gathered_size(picked_ranges()))?;
        let (picked_text, picked_spans) = gather(&text, picked_ranges())?;
        if keys.is_some() {
            let ids: usize = (0..count).map(|index| row(index)[asked].len()).sum();
            reading.add(self, count * size_of::<RecordKey>() + ids)?;
        }
        // The two key members follow those asked for in each record's row.
        let read_keys = keys
            .as_ref()
            .zip(split.records.as_ref())
            .map(|(keys, records)| {
                keys::read_keys(&text, records, keys, |index| {
                    let key = &row(index)[asked..];
                    [key[0].range(), key[1].range()]
                })
            });
        let read_keys = match read_keys.transpose() {
            Ok(read_keys) => read_keys,
            Err(error) => {
                reading.release(self);
                return Ok(Err(error));
            }
        };
        // A member named more than once is copied once for each time (a cursor of 30 MiB named
        // 32 times would be 960 MiB): counted before it is copied.
        let members_size = split
            .members
            .iter()
            .flatten()
            .map(ExactSizeIterator::len)
            .sum();
        reading.add(self, members_size)?;
        let members = split
            .members
            .iter()
            .map(|range| {
                range
                    .as_ref()
                    .and_then(|range| text.get(range.clone()))
                    .map(str::to_string)
            })
            .collect();
        reading.release(self);
        let records = match split.records {
            None => None,
            Some(records) => {
                let read = ReadRecords::new(text.clone(), records).with_keys(read_keys);
                self.hold(read.held_bytes()).map_err(memory_limit)?;
                Some(self.push_resource(read)?)
            }
        };
        self.check_cpu_budget()?;
        Ok(Ok(PageRead {
            records,
            count: u32::try_from(count)?,
            picked_text,
            picked: picked_spans,
            members,
        }))
    }
}

/// What [`gather`] allocates for `pieces`.
fn gathered_size<'a>(pieces: impl Iterator<Item = &'a split::Piece>) -> usize {
    pieces.fold(0, |size, piece| {
        size + size_of::<Option<Span>>() + piece.len()
    })
}

/// The pieces of `text` at `ranges` copied one after another into one string, and where each
/// went: one string for a page's hundreds of picked members, rather than one each, spares the
/// connector an allocation per member.
fn gather<'a>(
    text: &str,
    pieces: impl Iterator<Item = &'a split::Piece> + Clone,
) -> wasmtime::Result<(String, Vec<Option<Span>>)> {
    let (count, length) = pieces.clone().fold((0, 0), |(count, length), piece| {
        (count + 1, length + piece.len())
    });
    let mut gathered = String::with_capacity(length);
    let mut spans = Vec::with_capacity(count);
    for piece in pieces {
        let piece = piece.range().and_then(|range| text.get(range));
        spans.push(match piece {
            None => None,
            Some(piece) => {
                let start = u32::try_from(gathered.len())?;
                gathered.push_str(piece);
                Some(Span {
                    start,
                    length: u32::try_from(piece.len())?,
                })
            }
        });
    }
    Ok((gathered, spans))
}

impl HostRecords for HostState {
    fn text(
        &mut self,
        records: Resource<ReadRecords>,
        index: u32,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self
            .resources()
            .get(&records)?
            .record(index)
            .map(str::to_string))
    }

    fn drop(&mut self, records: Resource<ReadRecords>) -> wasmtime::Result<()> {
        let records = self.resources().delete(records)?;
        self.release(records.held_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_members_are_gathered_into_one_text() {
        let text = r#"{"id":"é1","t":5}"#;
        let pieces = [Some(6..11), None, Some(16..17)].map(split::Piece::from);
        let (gathered, spans) = gather(text, pieces.iter()).unwrap();
        assert_eq!(gathered, "\"é1\"5");
        let piece = |span: &Option<Span>| {
            span.as_ref().map(|span| {
                let start = span.start as usize;
                &gathered[start..start + span.length as usize]
            })
        };
        let pieces: Vec<_> = spans.iter().map(piece).collect();
        assert_eq!(pieces, [Some("\"é1\""), None, Some("5")]);
    }

    use crate::capabilities::Capabilities;
    use crate::runtime::GuestLimits;
    use crate::runtime::wit::TimeFormat;

    /// A state with `memory_bytes` to hold, holding `text` as a response body.
    fn holding_body(memory_bytes: usize, text: String) -> (HostState, Resource<Body>) {
        let limits = GuestLimits {
            memory_bytes,
            ..GuestLimits::default()
        };
        let mut state = HostState::new(Capabilities::none("test"), &limits);
        state.hold(text.len()).unwrap();
        let body = state.push_resource(Body::new(text.into())).unwrap();
        (state, body)
    }

    fn shape(members: Vec<String>) -> PageShape {
        PageShape {
            records: "data".into(),
            picked: vec![],
            members,
        }
    }

    #[test]
    fn a_member_named_many_times_counts_each_copy_against_the_memory_limit() {
        let text = format!(r#"{{"data":[],"next":"{}"}}"#, "c".repeat(1 << 20));
        let (mut state, body) = holding_body(8 << 20, text);
        let read = state.read_body(&body, shape(vec!["next".into(); 4]), None);
        assert_eq!(read.unwrap().unwrap().members.len(), 4);
        let error = state
            .read_body(&body, shape(vec!["next".into(); 32]), None)
            .unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<LimitExceeded>(),
                Some(LimitExceeded::Memory { .. })
            ),
            "{error}"
        );
    }

    #[test]
    fn what_a_reading_held_is_let_go_of_when_the_page_is_refused() {
        let text = format!(
            r#"{{"data":[{}{{"t":1}}]}}"#,
            r#"{"id":1,"t":1},"#.repeat(1000)
        );
        let (mut state, body) = holding_body(8 << 20, text);
        let room = state.room_to_hold();
        let keys = RecordKeys {
            id: "id".into(),
            time: "t".into(),
            time_format: TimeFormat::EpochMillis,
        };
        for _ in 0..3 {
            let read = state.read_body(&body, shape(vec![]), Some(keys.clone()));
            let error = read.unwrap().unwrap_err();
            assert!(
                error.message.starts_with("expected record 1000"),
                "{}",
                error.message
            );
            assert_eq!(state.room_to_hold(), room);
        }
    }

    #[test]
    fn a_body_is_text_only_when_all_of_it_is_utf8() {
        let text = "{\"a\":\"é\"}".repeat(20);
        let body = Body::new(text.clone().into());
        assert_eq!(body.bytes.as_deref().ok(), Some(text.as_str()));
        // Long enough for the vector check, and wrong only near its end.
        let mut bytes = text.into_bytes();
        let at = bytes.len() - 2;
        bytes[at] = 0xff;
        let body = Body::new(bytes.clone().into());
        let (_, error) = body.bytes.as_ref().expect_err("not UTF-8");
        assert_eq!(error.valid_up_to(), at);
        assert_eq!(body.as_bytes(), bytes);
    }
}
