//! A page of JSON records read in one pass.
//!
//! Vendor APIs answer with an object one of whose members is the array of records. Read with
//! serde, every record is passed over twice (once to find where it ends, again for its id and
//! time), which was a third of a whole run's CPU time. [`split_page`] finds where each record
//! begins and ends and picks out the members a connector asks for in the same pass. Strings, most
//! of a record's bytes, are skipped with `memchr` and the body's UTF-8 is checked with `simdutf8`,
//! both vectorised when connectors are built with `simd128`.
//!
//! The scan checks the structure it walks (objects, arrays, strings, matching brackets, commas
//! and colons between a record's members) but not the spelling of numbers and literals inside a
//! record: the host checks every record's JSON in full, and a connector reads the members it
//! picked with serde.

use std::fmt;

use memchr::memchr2;
use serde::Deserialize;

/// Where and why a page is not the JSON it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset into the body.
    pub offset: usize,
    /// What the page should have had there.
    pub expected: &'static str,
    found: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} at byte {}, found {}",
            self.expected, self.offset, self.found
        )
    }
}

impl std::error::Error for JsonError {}

/// A page split into its records and its other top-level members, all borrowed from the body.
#[derive(Debug)]
pub struct SplitPage<'a, const N: usize> {
    records: Option<Vec<RawRecord<'a, N>>>,
    members: Vec<(Name<'a>, &'a str)>,
}

impl<'a, const N: usize> SplitPage<'a, N> {
    /// The records in the page's order; `None` when the page has no records member or it is
    /// `null`.
    pub fn records(&self) -> Option<&[RawRecord<'a, N>]> {
        self.records.as_deref()
    }

    /// The raw JSON of another top-level member, if the page has it.
    pub fn member(&self, key: &str) -> Option<&'a str> {
        self.members
            .iter()
            .find(|(name, _)| name.is(key))
            .map(|(_, raw)| *raw)
    }

    /// Another top-level member read with serde; `Ok(None)` if the page does not have it.
    pub fn parse_member<T: Deserialize<'a>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, serde_json::Error> {
        self.member(key).map(serde_json::from_str).transpose()
    }
}

/// One record of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a, const N: usize> {
    /// The record's JSON object, exactly as the page has it.
    pub text: &'a str,
    /// The raw JSON of each member asked for, in the order asked; `None` where the record lacks
    /// it.
    pub picked: [Option<&'a str>; N],
}

/// Splits `body`, a JSON object, into the records of its array member `records_key` and its other
/// members, picking out the top-level members named in `picked` from each record.
///
/// Member names are compared after unescaping, as serde would. A record that names a picked
/// member twice is an error rather than a guess at which one counts.
pub fn split_page<'a, const N: usize>(
    body: &'a [u8],
    records_key: &str,
    picked: [&str; N],
) -> Result<SplitPage<'a, N>, JsonError> {
    let text = utf8(body)?;
    let mut scan = Scanner::new(text);
    let mut page = SplitPage {
        records: None,
        members: Vec::new(),
    };
    scan.skip_whitespace();
    scan.expect(b'{', "`{` opening the page's object")?;
    scan.skip_whitespace();
    let mut seen_records = false;
    if !scan.eat(b'}') {
        loop {
            let key_at = scan.pos;
            let key = scan.key()?;
            let value_start = scan.pos;
            if key.is(records_key) {
                if seen_records {
                    // Keeping either list would silently drop the other's records.
                    scan.pos = key_at;
                    return Err(scan.error("the list of records once"));
                }
                seen_records = true;
                page.records = scan.records(&picked)?;
            } else {
                scan.value()?;
                page.members.push((key, &text[value_start..scan.pos]));
            }
            scan.skip_whitespace();
            if scan.eat(b',') {
                scan.skip_whitespace();
                continue;
            }
            scan.expect(b'}', "`,` or `}` after a member of the page's object")?;
            break;
        }
    }
    scan.skip_whitespace();
    if scan.pos < text.len() {
        return Err(scan.error("the end of the body after the page's object"));
    }
    Ok(page)
}

fn utf8(body: &[u8]) -> Result<&str, JsonError> {
    // The fast check says only whether; the standard one, on failure, says where.
    if let Ok(text) = simdutf8::basic::from_utf8(body) {
        return Ok(text);
    }
    std::str::from_utf8(body).map_err(|error| JsonError {
        offset: error.valid_up_to(),
        expected: "UTF-8 text",
        found: "a byte sequence that is not UTF-8".into(),
    })
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Closing brackets owed by the arrays and objects being skipped, innermost last.
    closers: Vec<u8>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            closers: Vec::new(),
        }
    }

    fn error(&self, expected: &'static str) -> JsonError {
        let found = match self.bytes.get(self.pos) {
            None => "the end of the body".to_string(),
            Some(byte) if byte.is_ascii() => format!("`{}`", byte.escape_ascii()),
            Some(_) => "a character outside ASCII".to_string(),
        };
        JsonError {
            offset: self.pos,
            expected,
            found,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), JsonError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// A member's name and the colon after it, leaving the scan at the value.
    fn key(&mut self) -> Result<Name<'a>, JsonError> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(self.error("`\"` opening a member name"));
        }
        let open = self.pos;
        let (close, escaped) = self.string()?;
        self.skip_whitespace();
        self.expect(b':', "`:` after a member name")?;
        self.skip_whitespace();
        Ok(Name {
            written: &self.text[open + 1..close],
            escaped,
        })
    }

    /// Passes over a string, the scan at its opening quote; returns where its closing quote is and
    /// whether it has escapes.
    fn string(&mut self) -> Result<(usize, bool), JsonError> {
        let open = self.pos;
        let mut at = open + 1;
        let mut escaped = false;
        loop {
            let Some(found) = self
                .bytes
                .get(at..)
                .and_then(|rest| memchr2(b'"', b'\\', rest))
            else {
                self.pos = open;
                return Err(JsonError {
                    offset: open,
                    expected: "a string closed by `\"`",
                    found: "no closing quote".into(),
                });
            };
            at += found;
            if self.bytes[at] == b'"' {
                self.pos = at + 1;
                return Ok((at, escaped));
            }
            // A backslash escapes the byte after it, which may be a quote.
            escaped = true;
            at += 2;
        }
    }

    /// Passes over any value, the scan at its first byte.
    fn value(&mut self) -> Result<(), JsonError> {
        match self.bytes.get(self.pos) {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => self.nested(),
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                self.pos += 1;
                while let Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'+' | b'-' | b'.') =
                    self.bytes.get(self.pos)
                {
                    self.pos += 1;
                }
                Ok(())
            }
            _ => Err(self.error("a JSON value")),
        }
    }

    /// Passes over an array or object, the scan at its opening bracket, checking that brackets
    /// match.
    fn nested(&mut self) -> Result<(), JsonError> {
        let depth = self.closers.len();
        loop {
            match self.bytes.get(self.pos) {
                None => {
                    return Err(self.error("the rest of an array or object"));
                }
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b'{') => self.closers.push(b'}'),
                Some(b'[') => self.closers.push(b']'),
                Some(&closer @ (b'}' | b']')) => {
                    if self.closers.pop() != Some(closer) {
                        return Err(self.error("a bracket matching the one it closes"));
                    }
                    if self.closers.len() == depth {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
            self.pos += 1;
        }
    }

    /// The records member's value: an array of objects, or `null`.
    fn records<const N: usize>(
        &mut self,
        picked: &[&str; N],
    ) -> Result<Option<Vec<RawRecord<'a, N>>>, JsonError> {
        if self.bytes[self.pos..].starts_with(b"null") {
            self.pos += 4;
            return Ok(None);
        }
        self.expect(b'[', "`[` opening the list of records (or `null`)")?;
        let mut records = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Some(records));
        }
        loop {
            records.push(self.record(picked)?);
            self.skip_whitespace();
            if self.eat(b',') {
                self.skip_whitespace();
                continue;
            }
            self.expect(b']', "`,` or `]` after a record")?;
            return Ok(Some(records));
        }
    }

    /// One record: an object whose top-level members are walked, the picked ones kept.
    fn record<const N: usize>(
        &mut self,
        picked: &[&str; N],
    ) -> Result<RawRecord<'a, N>, JsonError> {
        let start = self.pos;
        self.expect(b'{', "`{` opening a record")?;
        let mut found = [None; N];
        self.skip_whitespace();
        if !self.eat(b'}') {
            loop {
                let key_at = self.pos;
                let key = self.key()?;
                let value_start = self.pos;
                self.value()?;
                if let Some(slot) = picked.iter().position(|wanted| key.is(wanted)) {
                    if found[slot].is_some() {
                        self.pos = key_at;
                        return Err(self.error("each picked member once per record"));
                    }
                    found[slot] = Some(&self.text[value_start..self.pos]);
                }
                self.skip_whitespace();
                if self.eat(b',') {
                    self.skip_whitespace();
                    continue;
                }
                self.expect(b'}', "`,` or `}` after a member of a record")?;
                break;
            }
        }
        Ok(RawRecord {
            text: &self.text[start..self.pos],
            picked: found,
        })
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

/// A member's name as the page writes it.
#[derive(Debug, Clone, Copy)]
struct Name<'a> {
    written: &'a str,
    /// Whether it has escapes, so that it must be unescaped to be compared.
    escaped: bool,
}

impl Name<'_> {
    fn is(&self, wanted: &str) -> bool {
        if !self.escaped {
            return self.written == wanted;
        }
        serde_json::from_str::<String>(&format!("\"{}\"", self.written))
            .is_ok_and(|name| name == wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#" {
        "data": [
            {"id": 1, "time": "2024-09-01T00:00:00Z", "note": "a \"quoted\" word, and a \\"},
            {"nested": {"id": "not me", "list": [1, [2, {"x": "]"}]]}, "id": "b-2"},
            {}
        ],
        "meta": {"pagination": {"total_records": 3}},
        "next": null
    } "#;

    #[test]
    fn splits_records_and_picks_their_members() {
        let page = split_page(PAGE.as_bytes(), "data", ["id", "time"]).unwrap();
        let records = page.records().unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].text,
            r#"{"id": 1, "time": "2024-09-01T00:00:00Z", "note": "a \"quoted\" word, and a \\"}"#
        );
        assert_eq!(
            records[0].picked,
            [Some("1"), Some("\"2024-09-01T00:00:00Z\"")]
        );
        // Only top-level members are picked, not those of nested objects.
        assert_eq!(records[1].picked, [Some("\"b-2\""), None]);
        assert_eq!(
            records[2],
            RawRecord {
                text: "{}",
                picked: [None, None]
            }
        );
        for record in records {
            serde_json::from_str::<serde_json::Value>(record.text).unwrap();
        }
    }

    #[test]
    fn keeps_the_other_members_for_serde() {
        #[derive(Deserialize)]
        struct Meta {
            pagination: Pagination,
        }
        #[derive(Deserialize)]
        struct Pagination {
            total_records: u64,
        }
        let page = split_page(PAGE.as_bytes(), "data", []).unwrap();
        let meta: Meta = page.parse_member("meta").unwrap().unwrap();
        assert_eq!(meta.pagination.total_records, 3);
        assert_eq!(page.member("next"), Some("null"));
        assert_eq!(page.member("absent"), None);
        assert_eq!(page.parse_member::<u64>("absent").unwrap(), None);
    }

    #[test]
    fn a_missing_or_null_records_member_is_no_records() {
        let page = split_page::<0>(br#"{"meta": {}}"#, "data", []).unwrap();
        assert!(page.records().is_none());
        let page = split_page::<0>(br#"{"data": null}"#, "data", []).unwrap();
        assert!(page.records().is_none());
        let page = split_page::<0>(br#"{"data": []}"#, "data", []).unwrap();
        assert_eq!(page.records().unwrap().len(), 0);
        let page = split_page::<0>(b"{}", "data", []).unwrap();
        assert!(page.records().is_none());
    }

    #[test]
    fn names_written_with_escapes_are_matched() {
        let page = split_page(
            br#"{"d\u0061ta": [{"\u0069d": 7}], "\u006Eext": 1}"#,
            "data",
            ["id"],
        )
        .unwrap();
        assert_eq!(page.records().unwrap()[0].picked, [Some("7")]);
        assert_eq!(page.member("next"), Some("1"));
    }

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

    #[test]
    fn a_second_list_of_records_is_an_error() {
        let error = split_page::<0>(br#"{"data": [{}], "data": []}"#, "data", []).unwrap_err();
        assert_eq!(
            (error.offset, error.expected),
            (15, "the list of records once")
        );
    }

    #[test]
    fn a_member_picked_twice_is_an_error() {
        let error = split_page(br#"{"data": [{"id": 1, "id": 2}]}"#, "data", ["id"]).unwrap_err();
        assert_eq!(error.offset, 20);
        assert_eq!(error.expected, "each picked member once per record");
    }

    #[test]
    fn broken_pages_say_where() {
        let cases: [(&[u8], usize, &str); 12] = [
            (b"", 0, "`{` opening the page's object"),
            (b"[1]", 0, "`{` opening the page's object"),
            (br#"{"data": [{"id": 1}"#, 19, "`,` or `]` after a record"),
            (
                br#"{"data": [{"id": 1, "note": "cut"#,
                28,
                "a string closed by `\"`",
            ),
            (
                br#"{"data": [{"id": 1, "note": "cut\"#,
                28,
                "a string closed by `\"`",
            ),
            (
                br#"{"data": [{"id": 1 "x": 2}]}"#,
                19,
                "`,` or `}` after a member of a record",
            ),
            (br#"{"data": [{"id" 1}]}"#, 16, "`:` after a member name"),
            (br#"{"data": [1, 2]}"#, 10, "`{` opening a record"),
            (
                br#"{"data": {"id": 1}}"#,
                9,
                "`[` opening the list of records (or `null`)",
            ),
            (
                br#"{"data": [{"a": [1, 2}]}]}"#,
                21,
                "a bracket matching the one it closes",
            ),
            (
                br#"{"data": [{"a": [1, 2"#,
                21,
                "the rest of an array or object",
            ),
            (
                br#"{"data": []} trailing"#,
                13,
                "the end of the body after the page's object",
            ),
        ];
        for (body, offset, expected) in cases {
            let error = split_page(body, "data", ["id"]).unwrap_err();
            assert_eq!(
                (error.offset, error.expected),
                (offset, expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_says_where() {
        let error = split_page(b"{\"data\": [{\"id\": \"\xff\"}]}", "data", ["id"]).unwrap_err();
        assert_eq!((error.offset, error.expected), (18, "UTF-8 text"));
    }

    #[test]
    fn agrees_with_serde_on_generated_pages() {
        // Records with every kind of value, escapes and whitespace, split and compared with what
        // serde_json reads from the same page.
        let mut records = Vec::new();
        for i in 0..200u32 {
            let mut record = serde_json::Map::new();
            record.insert("id".into(), serde_json::json!(i));
            record.insert(
                "text".into(),
                serde_json::json!(format!(
                    "line {i}\n\t\"quote\" \\ back, {{brace}} [bracket] ü"
                )),
            );
            if i % 3 == 0 {
                record.insert(
                    "nested".into(),
                    serde_json::json!({"id": "inner", "a": [i, null, true, false, -1.5e3]}),
                );
            }
            if i % 5 == 0 {
                record.insert("time".into(), serde_json::json!(1_725_148_800 + i));
            }
            records.push(serde_json::Value::Object(record));
        }
        let body =
            serde_json::to_string_pretty(&serde_json::json!({"items": records, "total": 200}))
                .unwrap();
        let page = split_page(body.as_bytes(), "items", ["id", "time"]).unwrap();
        let split = page.records().unwrap();
        assert_eq!(split.len(), records.len());
        for (raw, value) in split.iter().zip(&records) {
            let reread: serde_json::Value = serde_json::from_str(raw.text).unwrap();
            assert_eq!(&reread, value);
            let id: serde_json::Value = serde_json::from_str(raw.picked[0].unwrap()).unwrap();
            assert_eq!(&id, &value["id"]);
            let time =
                raw.picked[1].map(|text| serde_json::from_str::<serde_json::Value>(text).unwrap());
            assert_eq!(time.as_ref(), value.get("time"));
        }
        assert_eq!(page.parse_member::<u32>("total").unwrap(), Some(200));
    }
}
