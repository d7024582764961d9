//! Each record's id and event time, read by the host from the members a connector named
//! (`keyed-pages`, contract 0.3.0) instead of by the connector, record by record, in the sandbox.

use super::PageError;
use crate::event_time::{TimeEncoding, parse_json_time};
use crate::runtime::wit::{RecordKeys, TimeFormat};
use std::ops::Range;

/// What the host read of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub id: String,
    /// Milliseconds since the epoch, UTC.
    pub event_time: i64,
}

/// The id and time of each record of `text` at `records`, from the raw JSON of its members
/// `keys.id` and `keys.time`, found at `id_and_time(i)` for record `i`. The first record that
/// lacks either, or has one that is not what `keys` says, is the page's error.
pub fn read_keys(
    text: &str,
    records: &[Range<usize>],
    keys: &RecordKeys,
    id_and_time: impl Fn(usize) -> [Option<Range<usize>>; 2],
) -> Result<Vec<RecordKey>, PageError> {
    let encoding = TimeEncoding::from(keys.time_format);
    let mut read = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let [id, time] = id_and_time(index).map(|range| range.map(|range| &text[range]));
        let error = |name: &str, raw: Option<&str>, expected: &str| {
            let found = match raw {
                None => "no such member".to_string(),
                Some(raw) => format!("`{}`", excerpt(raw)),
            };
            PageError {
                offset: record.start as u64,
                message: format!(
                    "expected record {index} (at byte {}) to have `{name}`, {expected}; found {found}",
                    record.start
                ),
            }
        };
        let id = id
            .and_then(id_text)
            .ok_or_else(|| error(&keys.id, id, "its id: a non-empty string or a number"))?;
        let event_time = time
            .and_then(|raw| parse_json_time(raw, encoding))
            .ok_or_else(|| error(&keys.time, time, expected_time(keys.time_format)))?;
        read.push(RecordKey { id, event_time });
    }
    Ok(read)
}

fn expected_time(format: TimeFormat) -> &'static str {
    match format {
        TimeFormat::Rfc3339 => "its event time: an RFC 3339 string",
        TimeFormat::EpochSeconds => "its event time: seconds since the epoch, a number or a string",
        TimeFormat::EpochMillis => {
            "its event time: milliseconds since the epoch, a number or a string"
        }
    }
}

/// The id a member's raw JSON (already checked) gives a record: a string's text, or a number as
/// written when it is a plain whole number (ids longer than 64 bits stay exact), else as serde_json
/// writes it. Connectors that read ids themselves do the same (the SDK's `json::id_text`), so a
/// connector that moves to keys keeps its ids, and with them what it deduplicated.
fn id_text(raw: &str) -> Option<String> {
    let plain_whole = |text: &str| {
        !text.is_empty()
            && text.bytes().all(|byte| byte.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'))
    };
    if plain_whole(raw) {
        return Some(raw.to_owned());
    }
    if let Some(inner) = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        let text = if inner.contains('\\') {
            serde_json::from_str::<String>(raw).ok()?
        } else {
            inner.to_owned()
        };
        return (!text.is_empty()).then_some(text);
    }
    serde_json::from_str::<serde_json::Number>(raw)
        .ok()
        .map(|number| number.to_string())
}

/// At most the first 40 characters of a member, for an error message.
fn excerpt(raw: &str) -> String {
    const LONGEST: usize = 40;
    match raw.char_indices().nth(LONGEST) {
        None => raw.to_string(),
        Some((end, _)) => format!("{}...", &raw[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strings_or_numbers() {
        let cases = [
            ("7", Some("7")),
            ("0", Some("0")),
            (
                "123456789012345678901234567890",
                Some("123456789012345678901234567890"),
            ),
            ("-3", Some("-3")),
            ("1.50", Some("1.5")),
            (r#""abc""#, Some("abc")),
            (r#""a\"b""#, Some("a\"b")),
            (r#""\u00e9""#, Some("é")),
            (r#""""#, None),
            (r#""\u0000""#, Some("\0")),
            ("null", None),
            ("true", None),
            ("[1]", None),
            ("{}", None),
        ];
        for (raw, id) in cases {
            assert_eq!(id_text(raw).as_deref(), id, "{raw}");
        }
    }

    fn keys(format: TimeFormat) -> RecordKeys {
        RecordKeys {
            id: "id".into(),
            time: "t".into(),
            time_format: format,
        }
    }

    /// The keys of `records`, each `(id, time)` raw JSON, as `read_keys` reads them from a page.
    fn read(
        records: &[(Option<&str>, Option<&str>)],
        format: TimeFormat,
    ) -> Result<Vec<RecordKey>, PageError> {
        let mut text = String::new();
        let mut ranges = Vec::new();
        let mut members = Vec::new();
        for (id, time) in records {
            let start = text.len();
            text.push_str("{}");
            ranges.push(start..text.len());
            for raw in [id, time] {
                members.push(raw.map(|raw| {
                    let at = text.len();
                    text.push_str(raw);
                    at..text.len()
                }));
            }
        }
        read_keys(&text, &ranges, &keys(format), |index| {
            [members[2 * index].clone(), members[2 * index + 1].clone()]
        })
    }

    #[test]
    fn every_record_gets_its_id_and_time() {
        let read = read(
            &[
                (Some("1"), Some("1749336563")),
                (Some(r#""b""#), Some(r#""1749336564""#)),
            ],
            TimeFormat::EpochSeconds,
        )
        .unwrap();
        assert_eq!(
            read,
            [
                RecordKey {
                    id: "1".into(),
                    event_time: 1_749_336_563_000
                },
                RecordKey {
                    id: "b".into(),
                    event_time: 1_749_336_564_000
                },
            ]
        );
    }

    #[test]
    fn a_record_without_a_usable_key_is_the_pages_error_at_that_record() {
        let good = (Some("1"), Some(r#""2025-04-23T04:59:35Z""#));
        let error = read(&[good, (None, good.1)], TimeFormat::Rfc3339).unwrap_err();
        assert_eq!(error.offset, 25);
        assert_eq!(
            error.message,
            "expected record 1 (at byte 25) to have `id`, its id: a non-empty string or a number; \
             found no such member"
        );
        let error = read(&[good, (good.0, Some("1749336563"))], TimeFormat::Rfc3339).unwrap_err();
        assert_eq!(
            error.message,
            "expected record 1 (at byte 25) to have `t`, its event time: an RFC 3339 string; \
             found `1749336563`"
        );
        let long = format!("\"{}\"", "x".repeat(60));
        let error = read(&[(Some(&long), Some("1"))], TimeFormat::EpochMillis);
        assert!(error.is_ok(), "a long id is an id");
        let error = read(&[(Some("1"), Some(&long))], TimeFormat::EpochMillis).unwrap_err();
        assert!(
            error
                .message
                .ends_with(&format!("found `\"{}...`", "x".repeat(39)))
        );
    }
}
