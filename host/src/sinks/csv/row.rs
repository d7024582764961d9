//! A record as a CSV row: the loop every record of a CSV output goes through, shared by the sink
//! (which writes rows in order) and its encoder (which makes them ahead, on the workers).
//!
//! Rows are spelled as the `csv` crate spells them with its default quoting, which is also how the
//! seed scripts' `csv.DictWriter` does: a cell goes in quotes, its quotes doubled, only when it
//! holds a comma, a quote or a line break, and lines end with CRLF. The tests hold this to the
//! crate itself.
//!
//! A record of plain members, as nearly all are, is read in one scan that leaves most cells in
//! its text ([`plain_members`]); any other goes through the general walk, which flattens nested
//! objects.

use super::super::flatten::for_each_cell;
use super::super::{Encoder, OutputRecord, Rendered};
use super::ExtraColumn;
use super::plain::{MemberGuesses, PlainValue, plain_members};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

/// The header's index, looked up when a field is not where the record before had it: foldhash
/// rather than SipHash, which was a tenth of a CSV run's time. Still seeded at random, since the
/// names come from vendor data.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A header, and how a field finds its column in it.
#[derive(Debug)]
pub(super) struct Layout {
    /// Tells apart the headers one sink has had: a row made under one is written only under it.
    pub version: u64,
    pub columns: Vec<String>,
    index: FastMap<String, usize>,
    /// The columns trawl fills itself, and where they are.
    extras: Vec<(usize, ExtraColumn)>,
}

impl Layout {
    pub fn new(version: u64, columns: Vec<String>, extra_columns: &[ExtraColumn]) -> Self {
        let index: FastMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(at, name)| (name.clone(), at))
            .collect();
        let extras = extra_columns
            .iter()
            .filter_map(|extra| index.get(extra.name()).map(|&at| (at, extra.clone())))
            .collect();
        Layout {
            version,
            columns,
            index,
            extras,
        }
    }

    /// The column of the field `name`, if the header has one.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Whether `record` is one of plain members (see [`plain_members`]) that all have a column:
    /// the quick answer for nearly every record. `false` leaves it to the general walk, which
    /// also names the fields that are new.
    pub fn has_every_column(&self, record: &OutputRecord, members: &mut MemberGuesses) -> bool {
        plain_members(&record.json, members, |name| self.column(name), |_, _| true).is_some()
    }
}

/// Where a column's cell of the record at hand is.
#[derive(Clone, Debug)]
enum Cell {
    Empty,
    /// In the record's own text, as it is.
    InRecord(Range<usize>),
    /// In the encoder's `made`, quoted as needed.
    Made(Range<usize>),
    /// The encoder's `local_timestamp`.
    LocalTime,
}

/// Makes rows under one [`Layout`], reusing its buffers from one record to the next.
pub(super) struct RowEncoder<'a> {
    layout: &'a Layout,
    timezone: &'a jiff::tz::TimeZone,
    guesses: ColumnGuesses,
    members: MemberGuesses,
    /// The cells of the record at hand that are not its text as it is, each already quoted as
    /// needed, one after another.
    made: Vec<u8>,
    /// The text of the string with escapes at hand, decoded.
    unescaped: Vec<u8>,
    /// Each column's cell of the record at hand.
    cells: Vec<Cell>,
    /// The last `local_timestamp` cell made, and the time it was made from: records of a page
    /// share it.
    local_time: Option<(i64, Vec<u8>)>,
}

impl<'a> RowEncoder<'a> {
    pub fn new(layout: &'a Layout, timezone: &'a jiff::tz::TimeZone) -> Self {
        RowEncoder {
            layout,
            timezone,
            guesses: ColumnGuesses::default(),
            members: MemberGuesses::default(),
            made: Vec::new(),
            unescaped: Vec::new(),
            cells: Vec::new(),
            local_time: None,
        }
    }

    /// Appends the row of `record` to `out`. `Ok(Some(name))`, with nothing appended, when the
    /// record has a field the header has no column for (the first such).
    pub fn encode(
        &mut self,
        record: &OutputRecord,
        out: &mut Vec<u8>,
    ) -> Result<Option<String>, serde_json::Error> {
        if !self.layout.extras.is_empty()
            && self
                .local_time
                .as_ref()
                .is_none_or(|(made_from, _)| *made_from != record.fetched_at)
        {
            let mut cell = Vec::new();
            push_cell(
                &mut cell,
                local_timestamp(record.fetched_at, self.timezone).as_bytes(),
            );
            self.local_time = Some((record.fetched_at, cell));
        }
        if self.plain_cells(record).is_none()
            && let Some(new_field) = self.walked_cells(record)?
        {
            return Ok(Some(new_field));
        }
        let pieces = self.pieces(record);
        if let [only] = self.cells.as_slice()
            && pieces.of(only).is_empty()
        {
            // A line with nothing on it would read as no row at all.
            out.extend_from_slice(b"\"\"\r\n");
            return Ok(None);
        }
        pieces.row(&self.cells, out);
        Ok(None)
    }

    /// Where the cells of `record`, the one at hand, are.
    fn pieces<'r>(&'r self, record: &'r OutputRecord) -> Pieces<'r> {
        Pieces {
            record: record.json.as_bytes(),
            made: &self.made,
            local_time: self.local_time.as_ref().map_or(&[], |(_, cell)| cell),
        }
    }

    /// Starts the cells of a record afresh, with the columns trawl fills itself.
    fn start(&mut self) {
        let RowEncoder {
            layout,
            made,
            cells,
            ..
        } = self;
        made.clear();
        cells.clear();
        cells.resize(layout.columns.len(), Cell::Empty);
        for (at, extra) in &layout.extras {
            match extra {
                ExtraColumn::LocalTimestamp => cells[*at] = Cell::LocalTime,
            }
        }
    }

    /// The cells of a record of plain members (see [`plain_members`]), most of them left in
    /// its text; `None` for any other record, or one with a field the header has no column for.
    fn plain_cells(&mut self, record: &OutputRecord) -> Option<()> {
        self.start();
        let RowEncoder {
            layout,
            members,
            made,
            unescaped,
            cells,
            ..
        } = self;
        let json: &str = &record.json;
        plain_members(
            json,
            members,
            |name| layout.column(name),
            |at, value| {
                // A name twice in one record: the last one counts, as in a parsed object.
                cells[at] = match value {
                    PlainValue::Empty => Cell::Empty,
                    PlainValue::AsIs(range) => Cell::InRecord(range),
                    PlainValue::InQuotes(range) => {
                        let start = made.len();
                        made.push(b'"');
                        made.extend_from_slice(&json.as_bytes()[range]);
                        made.push(b'"');
                        Cell::Made(start..made.len())
                    }
                    PlainValue::Escaped(range) => {
                        if !unescape(&json.as_bytes()[range], unescaped) {
                            return false;
                        }
                        let start = made.len();
                        push_cell(made, unescaped);
                        Cell::Made(start..made.len())
                    }
                };
                true
            },
        )
    }

    /// The cells of any record, from the general walk. `Ok(Some(name))` when the record has a
    /// field the header has no column for (the first such).
    fn walked_cells(&mut self, record: &OutputRecord) -> Result<Option<String>, serde_json::Error> {
        self.start();
        let RowEncoder {
            layout,
            guesses,
            made,
            cells,
            ..
        } = self;
        let mut new_field = None;
        let mut place = 0;
        for_each_cell(&record.json, |name, cell| {
            match guesses.column(place, name, layout) {
                Some(at) => {
                    let start = made.len();
                    push_cell(made, cell.as_bytes());
                    cells[at] = Cell::Made(start..made.len());
                }
                None => {
                    if new_field.is_none() {
                        new_field = Some(name.to_string());
                    }
                }
            }
            place += 1;
        })?;
        Ok(new_field)
    }
}

/// Where the bytes of a record's cells are.
struct Pieces<'a> {
    record: &'a [u8],
    made: &'a [u8],
    local_time: &'a [u8],
}

impl Pieces<'_> {
    fn of(&self, cell: &Cell) -> &[u8] {
        match cell {
            Cell::Empty => &[],
            Cell::InRecord(range) => &self.record[range.clone()],
            Cell::Made(range) => &self.made[range.clone()],
            Cell::LocalTime => self.local_time,
        }
    }

    /// Appends the row of `cells` to `out`.
    fn row(&self, cells: &[Cell], out: &mut Vec<u8>) {
        for (column, cell) in cells.iter().enumerate() {
            if column > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.of(cell));
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes the JSON string `quoted` (its quotes included, from a record the host checked) into
/// `text`, in place of what it held. Into a buffer kept from one string to the next, rather than
/// a new `String` from `serde_json` for each: about one record in ten has such a string. `false`
/// where `serde_json` would refuse it too (a lone surrogate): the general walk then says why.
fn unescape(quoted: &[u8], text: &mut Vec<u8>) -> bool {
    text.clear();
    let Some(mut rest) = quoted
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
    else {
        return false;
    };
    while let Some(at) = memchr::memchr(b'\\', rest) {
        text.extend_from_slice(&rest[..at]);
        let Some(&kind) = rest.get(at + 1) else {
            return false;
        };
        rest = &rest[at + 2..];
        let byte = match kind {
            b'"' | b'\\' | b'/' => kind,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let Some((code, after)) = code_point(rest) else {
                    return false;
                };
                rest = after;
                text.extend_from_slice(code.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return false,
        };
        text.push(byte);
    }
    text.extend_from_slice(rest);
    true
}

/// The character of the `\u` escape whose four hex digits start `digits` (with the escape of its
/// low half after them, for one outside the Basic Multilingual Plane), and what follows it.
fn code_point(digits: &[u8]) -> Option<(char, &[u8])> {
    fn unit(digits: &[u8]) -> Option<(u32, &[u8])> {
        let hex = std::str::from_utf8(digits.get(..4)?).ok()?;
        let value = u32::from_str_radix(hex, 16).ok()?;
        // `from_str_radix` takes a sign; a JSON escape does not.
        hex.bytes()
            .all(|byte| byte.is_ascii_hexdigit())
            .then_some((value, &digits[4..]))
    }
    let (high, rest) = unit(digits)?;
    match high {
        0xD800..=0xDBFF => {
            let (low, rest) = unit(rest.strip_prefix(b"\\u")?)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            Some((char::from_u32(code)?, rest))
        }
        _ => Some((char::from_u32(high)?, rest)),
    }
}

/// Appends `cell` to `out`, in quotes with its quotes doubled if it holds a comma, a quote or a
/// line break, as it is otherwise.
fn push_cell(out: &mut Vec<u8>, cell: &[u8]) {
    if !needs_quotes(cell) {
        out.extend_from_slice(cell);
        return;
    }
    out.push(b'"');
    for piece in cell.split_inclusive(|&byte| byte == b'"') {
        out.extend_from_slice(piece);
        if piece.ends_with(b"\"") {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// The `local_timestamp` cell of a record fetched at `millis`, as `2025-06-08 09:07:21 JST`.
fn local_timestamp(millis: i64, timezone: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|time| {
            time.to_zoned(timezone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// Whether `cell` holds a comma, a quote or a line break. Looked for eight bytes at a time: it is
/// asked of every cell of every row, and most cells hold none.
fn needs_quotes(cell: &[u8]) -> bool {
    const fn splat(byte: u8) -> u64 {
        u64::from_ne_bytes([byte; 8])
    }
    /// Whether any byte of `word` is `byte` (exact: the borrow can only run past a byte that is).
    fn has(word: u64, byte: u8) -> bool {
        let differs = word ^ splat(byte);
        differs.wrapping_sub(splat(1)) & !differs & splat(0x80) != 0
    }
    let mut words = cell.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_ne_bytes(chunk.try_into().expect("chunks of eight bytes"));
        if has(word, b',') | has(word, b'"') | has(word, b'\r') | has(word, b'\n') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'))
}

/// The column each cell of the record before went to, by the cell's place in its record. A
/// vendor's records nearly always have the same fields in the same order, so a name is compared
/// with the one column it most likely has instead of being hashed and looked up.
#[derive(Default)]
pub(super) struct ColumnGuesses(Vec<usize>);

impl ColumnGuesses {
    /// The column of the cell named `name` at `place` in its record, if the header has one.
    pub fn column(&mut self, place: usize, name: &str, layout: &Layout) -> Option<usize> {
        if let Some(&guess) = self.0.get(place)
            && layout
                .columns
                .get(guess)
                .is_some_and(|column| column == name)
        {
            return Some(guess);
        }
        let found = layout.column(name)?;
        if self.0.len() <= place {
            self.0.resize(place + 1, usize::MAX);
        }
        self.0[place] = found;
        Some(found)
    }
}

/// A CSV sink's [`Encoder`]: rows made under the header the sink has when a window is fetched.
pub(super) struct CsvEncoder {
    /// The sink's current layout, replaced whenever its header changes.
    pub layout: Arc<RwLock<Arc<Layout>>>,
    pub timezone: jiff::tz::TimeZone,
}

impl Encoder for CsvEncoder {
    fn encode(&self, records: &mut [OutputRecord]) {
        let layout = self
            .layout
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if layout.columns.is_empty() {
            // A new file: its header comes from the first records, in the sink.
            return;
        }
        let mut encoder = RowEncoder::new(&layout, &self.timezone);
        // A row is about as long as its record: a little longer with `local_timestamp`.
        let guess: usize = records.iter().map(|record| record.json.len() + 32).sum();
        let mut rows = Vec::with_capacity(guess);
        let ranges: Vec<Option<Range<usize>>> = records
            .iter()
            .map(|record| {
                let start = rows.len();
                // A record with a new field, or one the walk refuses, is left to the sink, which
                // widens the header or reports it.
                match encoder.encode(record, &mut rows) {
                    Ok(None) => Some(start..rows.len()),
                    _ => {
                        rows.truncate(start);
                        None
                    }
                }
            })
            .collect();
        let rows = Arc::new(rows);
        for (record, range) in records.iter_mut().zip(ranges) {
            record.rendered = range.map(|range| Rendered {
                layout: layout.version,
                made: rows.clone(),
                range,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::JsonObject;
    use crate::sinks::flatten::flatten;
    use crate::test_rng::Rng;

    fn utc() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::UTC
    }

    fn record(json: &str) -> OutputRecord {
        OutputRecord {
            id: "1".into(),
            event_time: 0,
            fetched_at: 1_749_341_241_000,
            json: JsonObject::parse(json.into()).unwrap(),
            rendered: None,
        }
    }

    fn encode(layout: &Layout, json: &str) -> Result<String, Option<String>> {
        let timezone = utc();
        let mut out = Vec::new();
        match RowEncoder::new(layout, &timezone).encode(&record(json), &mut out) {
            Ok(None) => Ok(String::from_utf8(out).unwrap()),
            Ok(Some(name)) => {
                assert!(out.is_empty(), "a refused record appended {out:?}");
                Err(Some(name))
            }
            Err(_) => Err(None),
        }
    }

    /// The row the `csv` crate writes for `cells`.
    fn crate_row(cells: &[&str]) -> String {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::new());
        writer.write_record(cells).unwrap();
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn cells_land_under_their_columns_with_local_time_first() {
        let layout = Layout::new(
            1,
            columns(&["local_timestamp", "id", "event", "note"]),
            &[ExtraColumn::LocalTimestamp],
        );
        assert_eq!(
            encode(&layout, r#"{"note":"a, \"b\"\nc","id":7,"event":"x"}"#).unwrap(),
            "2025-06-08 00:07:21 UTC,7,x,\"a, \"\"b\"\"\nc\"\r\n"
        );
        assert_eq!(
            encode(&layout, r#"{"id":8}"#).unwrap(),
            "2025-06-08 00:07:21 UTC,8,,\r\n"
        );
    }

    #[test]
    fn a_field_without_a_column_appends_nothing_and_is_named() {
        let layout = Layout::new(1, columns(&["id"]), &[]);
        assert_eq!(
            encode(&layout, r#"{"id":1,"new":{"deep":2}}"#),
            Err(Some("new.deep".into()))
        );
    }

    #[test]
    fn a_single_empty_cell_is_quoted_as_the_crate_does() {
        let layout = Layout::new(1, columns(&["id"]), &[]);
        assert_eq!(encode(&layout, r#"{}"#).unwrap(), crate_row(&[""]));
        assert_eq!(encode(&layout, r#"{"id":""}"#).unwrap(), "\"\"\r\n");
    }

    #[test]
    fn a_record_field_named_like_an_extra_column_wins() {
        let layout = Layout::new(
            1,
            columns(&["local_timestamp", "id"]),
            &[ExtraColumn::LocalTimestamp],
        );
        assert_eq!(
            encode(&layout, r#"{"id":1,"local_timestamp":"theirs"}"#).unwrap(),
            "theirs,1\r\n"
        );
    }

    /// Generated cells (every byte the quoting looks at, in every place) and headers, against the
    /// `csv` crate writing the same cells.
    #[test]
    fn rows_are_spelled_as_the_csv_crate_spells_them() {
        const PIECES: &[&str] = &[
            "a", "b c", ",", "\\\"", "\\n", "\\r", "\\r\\n", " ", "é", "\\u00e9", "", "x,y", "''",
            "#", ";", "\\t", "\\\"\\\"",
        ];
        let mut rng = Rng(0x05ee_dc5f);
        for case in 0..3_000 {
            let width = 1 + rng.below(5);
            let names: Vec<String> = (0..width).map(|at| format!("f{at}")).collect();
            let layout = Layout::new(1, names.clone(), &[]);
            let mut fields = Vec::new();
            let mut expected = vec![String::new(); width];
            for (at, name) in names.iter().enumerate() {
                if rng.chance(20) {
                    continue;
                }
                let text: String = (0..rng.below(4))
                    .map(|_| *rng.pick::<&str>(PIECES))
                    .collect();
                let value: String = serde_json::from_str(&format!("\"{text}\"")).unwrap();
                expected[at] = value;
                fields.push(format!("\"{name}\":\"{text}\""));
            }
            let json = format!("{{{}}}", fields.join(","));
            let cells: Vec<&str> = expected.iter().map(String::as_str).collect();
            assert_eq!(
                encode(&layout, &json).unwrap(),
                crate_row(&cells),
                "case {case}: {json}"
            );
        }
    }

    #[test]
    fn strings_with_escapes_decode_as_serde_json_decodes_them() {
        // Pieces of a string's text as written in JSON, between `|`: a lone surrogate, a short
        // or signed `\u` and an unknown escape are refused by both.
        let pieces: Vec<&str> = concat!(
            r#"a| |,|é|\"|\\|\/|\b|\f|\n|\r|\t|\u00e9|\u0000|\u20AC|\uFFFF|"#,
            r#"\ud83d\ude00|\uD83D\uDE00|\ud83d|\ude00|\ud83d\u0041|\u12|\u+123|\x"#
        )
        .split('|')
        .collect();
        let mut rng = Rng(0x0e5c_a9e5);
        let mut text = Vec::new();
        for case in 0..5_000 {
            let inner: String = (0..rng.below(5)).map(|_| *rng.pick(&pieces)).collect();
            let quoted = format!("\"{inner}\"");
            let expected = serde_json::from_str::<String>(&quoted).ok();
            let decoded = unescape(quoted.as_bytes(), &mut text)
                .then(|| String::from_utf8(text.clone()).unwrap());
            assert_eq!(decoded, expected, "case {case}: {quoted}");
        }
    }

    /// One encoder, as a page's records meet it: members that come and go and change places,
    /// every kind of value, names twice, whitespace. Each row is held to `flatten` (what a
    /// parsed record makes) written by the `csv` crate, so what the encoder learns from one
    /// record must never spoil the next.
    #[test]
    fn one_encoder_makes_every_record_of_a_page_as_flatten_and_the_crate_would() {
        const NAMES: &[&str] = &["id", "event", "note", "when", "ip", "count", "user"];
        const VALUES: &[&str] = &[
            r#""plain""#,
            r#""a, b""#,
            r#""say \"hi\"""#,
            r#""line\nbreak""#,
            r#""é, \u00e9""#,
            r#""""#,
            r#"",""#,
            "0",
            "17",
            "-3",
            "2.50",
            "1e3",
            "18446744073709551616",
            "true",
            "false",
            "null",
            r#"{"inner":1,"deep":{"x":"y, z"}}"#,
            "{}",
            "[1,2]",
            r#"[{"a":1}]"#,
            "[]",
        ];
        let mut rng = Rng(0x0dd_ba11);
        for page in 0..200 {
            let mut records = Vec::new();
            let mut shape: Vec<&str> = NAMES.to_vec();
            for _ in 0..20 {
                // Mostly the shape of the record before, sometimes another.
                if rng.chance(25) {
                    shape = NAMES.iter().copied().filter(|_| rng.chance(70)).collect();
                    for at in (1..shape.len()).rev() {
                        shape.swap(at, rng.below(at + 1));
                    }
                    if rng.chance(10) && !shape.is_empty() {
                        shape.push(shape[0]);
                    }
                }
                // Whitespace around some members' colons and commas, not others'.
                let spaced = rng.chance(20);
                let space = |rng: &mut Rng| if spaced && rng.chance(50) { " " } else { "" };
                // A name twice is given plain values both times: for a name that is once a
                // plain value and once an object, the cells of both are kept (a parse would keep
                // only the last), which is the general walk's choice and not tested here.
                let members: Vec<String> = shape
                    .iter()
                    .map(|name| {
                        let twice = shape.iter().filter(|other| *other == name).count() > 1;
                        let value = loop {
                            let value = *rng.pick(VALUES);
                            if !twice || !value.starts_with(['{', '[']) {
                                break value;
                            }
                        };
                        format!("\"{name}\"{}:{}{value}", space(&mut rng), space(&mut rng))
                    })
                    .collect();
                let mut json = format!("{{{}", space(&mut rng));
                for (at, member) in members.iter().enumerate() {
                    if at > 0 {
                        json.push_str(&format!("{},{}", space(&mut rng), space(&mut rng)));
                    }
                    json.push_str(member);
                }
                json.push_str(&format!("{}}}", space(&mut rng)));
                records.push(json);
            }
            let parsed: Vec<serde_json::Map<String, serde_json::Value>> = records
                .iter()
                .map(|json| serde_json::from_str(json).unwrap())
                .collect();
            let mut columns: Vec<String> = parsed
                .iter()
                .flat_map(flatten)
                .map(|(name, _)| name)
                .collect();
            columns.sort();
            columns.dedup();
            for at in (1..columns.len()).rev() {
                columns.swap(at, rng.below(at + 1));
            }
            columns.insert(rng.below(columns.len() + 1), "local_timestamp".into());
            let layout = Layout::new(1, columns.clone(), &[ExtraColumn::LocalTimestamp]);
            let timezone = utc();
            let mut encoder = RowEncoder::new(&layout, &timezone);
            for (json, object) in records.iter().zip(&parsed) {
                let mut row = Vec::new();
                assert_eq!(encoder.encode(&record(json), &mut row).unwrap(), None);
                let cells: std::collections::HashMap<String, String> =
                    flatten(object).into_iter().collect();
                let expected: Vec<&str> = columns
                    .iter()
                    .map(|column| match cells.get(column) {
                        Some(cell) => cell.as_str(),
                        None if column == "local_timestamp" => "2025-06-08 00:07:21 UTC",
                        None => "",
                    })
                    .collect();
                assert_eq!(
                    String::from_utf8(row).unwrap(),
                    crate_row(&expected),
                    "page {page}: {json}"
                );
            }
        }
    }

    #[test]
    fn a_special_byte_is_found_in_any_place_and_next_to_any_byte() {
        for len in 0..20 {
            for neighbour in 0..=255u8 {
                let plain = vec![neighbour; len];
                let expected = matches!(neighbour, b',' | b'"' | b'\r' | b'\n') && len > 0;
                assert_eq!(needs_quotes(&plain), expected, "{len} x {neighbour}");
                for special in [b',', b'"', b'\r', b'\n'] {
                    for at in 0..len {
                        let mut cell = plain.clone();
                        cell[at] = special;
                        assert!(
                            needs_quotes(&cell),
                            "{special} at {at} of {len} x {neighbour}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_encoder_leaves_records_it_cannot_make_to_the_sink() {
        let layout = Arc::new(RwLock::new(Arc::new(Layout::new(3, columns(&["id"]), &[]))));
        let encoder = CsvEncoder {
            layout: layout.clone(),
            timezone: utc(),
        };
        let mut records = vec![
            record(r#"{"id":1}"#),
            record(r#"{"id":2,"new":1}"#),
            record(r#"{"id":3}"#),
        ];
        encoder.encode(&mut records);
        let made = |record: &OutputRecord| {
            let made = record.rendered.as_ref().expect("made ahead");
            (
                made.layout,
                String::from_utf8(made.bytes().to_vec()).unwrap(),
            )
        };
        assert_eq!(made(&records[0]), (3, "1\r\n".to_string()));
        assert_eq!(records[1].rendered, None);
        // Nothing of the record left out is in the rows of the page.
        assert_eq!(made(&records[2]), (3, "3\r\n".to_string()));
        let rows = &records[2].rendered.as_ref().unwrap().made;
        assert_eq!(rows.as_slice(), b"1\r\n3\r\n");

        // A new file's header is made by the sink: nothing is made ahead of it.
        *layout.write().unwrap() = Arc::new(Layout::new(4, Vec::new(), &[]));
        let mut records = vec![record(r#"{"id":1}"#)];
        encoder.encode(&mut records);
        assert_eq!(records[0].rendered, None);
    }
}
