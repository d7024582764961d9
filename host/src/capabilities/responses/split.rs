//! One strict pass over a response body that holds a page of JSON records.
//!
//! The host must both trust a page (the whole body is JSON, as strictly as serde_json reads it)
//! and cut it up (each record's text, and the few members a connector keys on). A connector's scan
//! for the cuts and then serde_json's check of each record read every byte twice; this reads it
//! once. It builds no values and decodes nothing but the rare member name with escapes, so on a
//! compact page it beats serde_json's `IgnoredAny`, which only checks (and checks no UTF-8).

use crate::masks;
use std::borrow::Cow;
use std::ops::Range;

/// How a page is laid out: which member of the page's object holds the records, and which
/// members the connector needs.
pub struct Shape<'a> {
    /// The member of the body's top-level object that holds the array of records; empty when the
    /// body is itself the array of records.
    pub records: &'a str,
    /// Top-level members of each record to find (by name).
    pub picked: &'a [String],
    /// Top-level members of the page's object to find (by name); ignored when `records` is empty.
    pub members: &'a [String],
}

/// Where each part of a page is in its body (byte ranges into the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPage {
    /// Each record's object, `{` to `}` inclusive, in the page's order; `None` when the page's
    /// object has no `records` member or its value is `null`.
    pub records: Option<Vec<Range<usize>>>,
    /// For record i and picked name j, at `i * picked.len() + j`: the raw JSON text of that
    /// member's value, or none where the record lacks it.
    pub picked: Vec<Piece>,
    /// For each of `members`, in order, the raw JSON text of its value; `None` where the page
    /// lacks it.
    pub members: Vec<Option<Range<usize>>>,
}

/// Where and why a body is not the page it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} at byte {offset}, found {found}")]
pub struct SplitError {
    /// The offending byte, so that a log line can point into the body it quotes (the body's
    /// length when the body ends too soon).
    pub offset: usize,
    /// What a page would have there, in words for the log line.
    pub expected: &'static str,
    /// What is there instead: the byte quoted when it is printable ASCII, else described.
    pub found: String,
}

/// How much a reading of a page may make of it: the host's bookkeeping (a range per record, one
/// per picked member of each) is allocated on a connector's behalf, so it is bounded before it is
/// allocated, never after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The most records a page may have.
    pub records: usize,
    /// The most bytes the reading may allocate for its ranges.
    pub bytes: usize,
}

impl Bounds {
    pub const NONE: Bounds = Bounds {
        records: usize::MAX,
        bytes: usize::MAX,
    };
}

/// Why a body could not be read as a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitFailure {
    /// It is not a page: the connector's answer to that is its own.
    #[error(transparent)]
    Malformed(#[from] SplitError),
    /// It has more records than [`Bounds::records`].
    #[error("the page has more than {limit} records")]
    TooManyRecords { limit: usize },
    /// Reading it would take more than [`Bounds::bytes`].
    #[error("reading the page takes more than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Where a picked member's value is in its body, in two `u32`s rather than an
/// `Option<Range<usize>>`'s three words: a page has one for every record and picked name, and
/// pages of tiny records have millions. Bodies are read only below 4 GiB.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    start: u32,
    end: u32,
}

impl Piece {
    /// No piece: the record lacks the member.
    pub const NONE: Piece = Piece {
        start: u32::MAX,
        end: u32::MAX,
    };

    /// The piece at `range` of a body shorter than `u32::MAX` bytes.
    #[inline]
    fn at(range: Range<usize>) -> Self {
        Piece {
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    #[inline]
    pub fn is_some(self) -> bool {
        self.start != u32::MAX
    }

    #[inline]
    pub fn range(self) -> Option<Range<usize>> {
        self.is_some()
            .then_some(self.start as usize..self.end as usize)
    }

    /// The piece's length in bytes; 0 for none.
    #[inline]
    pub fn len(self) -> usize {
        self.range().map_or(0, |range| range.len())
    }
}

impl From<Option<Range<usize>>> for Piece {
    fn from(range: Option<Range<usize>>) -> Self {
        range.map_or(Piece::NONE, Piece::at)
    }
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.range().fmt(f)
    }
}

/// The longest body read as a page: its offsets fit a [`Piece`].
pub const MAX_BODY_LEN: usize = u32::MAX as usize - 1;

/// What the reading of one record costs in ranges, with `picked` members picked of each.
pub fn record_cost(picked: usize) -> usize {
    size_of::<Range<usize>>() + picked * size_of::<Piece>()
}

/// Reads `body` as a page of `shape`, checking all of it.
#[cfg(test)]
pub fn split_page(body: &[u8], shape: &Shape<'_>) -> Result<SplitPage, SplitError> {
    match split_page_within(body, shape, Bounds::NONE) {
        Ok(page) => Ok(page),
        Err(SplitFailure::Malformed(error)) => Err(error),
        Err(other) => unreachable!("unbounded, yet {other}"),
    }
}

/// Reads `body` as a page of `shape`, checking all of it, within `bounds`.
pub fn split_page_within(
    body: &[u8],
    shape: &Shape<'_>,
    bounds: Bounds,
) -> Result<SplitPage, SplitFailure> {
    let mut reader = Reader::new(body, shape.picked, bounds);
    if body.len() > MAX_BODY_LEN {
        return Err(SplitFailure::TooLarge {
            limit: MAX_BODY_LEN,
        });
    }
    match split(&mut reader, body, shape) {
        Ok(page) => Ok(page),
        Err(error) => Err(reader
            .exceeded
            .take()
            .unwrap_or(SplitFailure::Malformed(*error))),
    }
}

fn split(reader: &mut Reader<'_, '_>, body: &[u8], shape: &Shape<'_>) -> Step<SplitPage> {
    reader.skip_ws();
    let (records, members) = if shape.records.is_empty() {
        if reader.peek() != Some(b'[') {
            return Err(reader.fail(reader.pos, "`[` opening the list of records"));
        }
        (Some(reader.records(1)?), vec![None; shape.members.len()])
    } else {
        reader.page(shape.records, shape.members)?
    };
    reader.skip_ws();
    if reader.pos < body.len() {
        return Err(reader.fail(reader.pos, "the end of the body"));
    }
    Ok(SplitPage {
        records,
        picked: std::mem::take(&mut reader.picked),
        members,
    })
}

/// Checks that `text` is one JSON object and nothing else (whitespace around it aside), as
/// strictly as a page's records are checked and no deeper than [`MAX_NESTING`]: the one check of a
/// record a connector wrote out itself, so that every later walk over it (CSV columns, filters)
/// can rely on its depth.
pub fn check_record(text: &[u8]) -> Result<(), SplitError> {
    let mut reader = Reader::new(text, &[], Bounds::NONE);
    reader.skip_ws();
    if reader.peek() != Some(b'{') {
        return Err(*reader.fail(reader.pos, "`{` opening the record"));
    }
    reader.record(1).map_err(|error| *error)?;
    reader.skip_ws();
    if reader.pos < text.len() {
        return Err(*reader.fail(reader.pos, "the end of the record"));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects serde_json deserializes (its recursion limit of 128
/// fails on the 128th container), so that a page this accepts is one its consumers can read.
/// `IgnoredAny` alone has no limit; the limit also keeps the stack of open containers in a `u128`.
pub const MAX_NESTING: usize = 127;
const NESTED_TOO_DEEP: &str = "at most 127 nested arrays and objects";

const ESCAPE: &str = "an escape: one of `\"` `\\` `/` `b` `f` `n` `r` `t` `u`";
const CONTROL: &str = "text without raw control characters (they must be escaped)";

const ONES: u64 = u64::from_le_bytes([1; 8]);
/// The top bit of every byte of a word: set in a byte outside ASCII.
const HIGH_BITS: u64 = ONES << 7;

/// A member's name: `start` at its opening quote, `end` just past its closing one.
#[derive(Clone, Copy)]
struct Name {
    start: usize,
    end: usize,
    escaped: bool,
}

/// One pass over a body: where it is, and what it has found so far.
struct Reader<'b, 's> {
    body: &'b [u8],
    /// The next byte to read.
    pos: usize,
    picked_names: &'s [String],
    /// Bit n set when a picked name is n bytes long (n < 64): most members' names are not, and
    /// are told apart by their length alone.
    picked_lengths: u64,
    /// The output's `picked`, filled record by record.
    picked: Vec<Piece>,
    bounds: Bounds,
    /// What one record costs in ranges.
    record_cost: usize,
    /// Records the ranges have room for within `bounds` (counted down as records are read).
    records_left: usize,
    /// The bound the page went past, if it did: the reading stops there.
    exceeded: Option<SplitFailure>,
}

type Members = Vec<Option<Range<usize>>>;

/// A step of reading; the error boxed, so that the steps that succeed (nearly all) pass back a
/// word rather than a whole error.
type Step<T> = Result<T, Box<SplitError>>;

impl<'b, 's> Reader<'b, 's> {
    fn new(body: &'b [u8], picked_names: &'s [String], bounds: Bounds) -> Self {
        let record_cost = record_cost(picked_names.len());
        Reader {
            body,
            pos: 0,
            picked_names,
            picked_lengths: picked_names
                .iter()
                .filter(|name| name.len() < 64)
                .fold(0, |lengths, name| lengths | 1 << name.len()),
            picked: Vec::new(),
            bounds,
            record_cost,
            records_left: bounds.records.min(bounds.bytes / record_cost),
            exceeded: None,
        }
    }

    /// Counts one more record against the bounds, before its ranges are allocated.
    #[inline(always)]
    fn count_record(&mut self) -> Step<()> {
        if self.records_left == 0 {
            return Err(self.out_of_bounds());
        }
        self.records_left -= 1;
        Ok(())
    }

    /// Room for more records when the guess made at the first fell short: doubling, as a
    /// vector's own growth does, but never past the room the bounds leave.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, records: &mut Vec<Range<usize>>) {
        let more = records.len().min(self.records_left + 1);
        records.reserve_exact(more);
        let picked = self.picked_names.len();
        let wanted = (records.len() + more) * picked;
        self.picked
            .reserve_exact(wanted.saturating_sub(self.picked.len()));
    }

    #[cold]
    #[inline(never)]
    fn out_of_bounds(&mut self) -> Box<SplitError> {
        let by_count = self.bounds.records <= self.bounds.bytes / self.record_cost;
        self.exceeded = Some(if by_count {
            SplitFailure::TooManyRecords {
                limit: self.bounds.records,
            }
        } else {
            SplitFailure::TooLarge {
                limit: self.bounds.bytes,
            }
        });
        self.fail(self.pos, "a page within its bounds")
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    /// Most tokens follow one another directly: that case is one test, inline.
    #[inline(always)]
    fn skip_ws(&mut self) {
        if self.body.get(self.pos).is_some_and(|&byte| byte <= b' ') {
            self.skip_some_ws();
        }
    }

    /// Tests bits rather than matching bytes: a `match` here compiles to a jump table, whose
    /// indirect jumps cost more than the rest of the loop.
    #[inline]
    fn skip_some_ws(&mut self) {
        const SPACE: u64 = 1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r';
        let mut pos = self.pos;
        while let Some(&byte) = self.body.get(pos) {
            if byte > b' ' || SPACE >> byte & 1 == 0 {
                break;
            }
            pos += 1;
        }
        self.pos = pos;
    }

    /// `level` counts the container about to open at `pos` and every one around it.
    #[inline]
    fn nest(&self, level: usize) -> Step<()> {
        if level > MAX_NESTING {
            return Err(self.fail(self.pos, NESTED_TOO_DEEP));
        }
        Ok(())
    }

    /// The page's object, at `pos` (after whitespace): the records and the wanted members.
    fn page(
        &mut self,
        records_name: &str,
        member_names: &[String],
    ) -> Step<(Option<Vec<Range<usize>>>, Members)> {
        let mut members = vec![None; member_names.len()];
        if self.peek() != Some(b'{') {
            return Err(self.fail(self.pos, "`{` opening the page's object"));
        }
        self.nest(1)?;
        self.pos += 1;
        self.skip_ws();
        let mut records = None;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok((records, members));
        }
        let mut seen_records = false;
        let mut first = true;
        loop {
            let name = self.name(first)?;
            first = false;
            let key = self.key(name);
            let key = key.as_deref();
            let is_records = key == Some(records_name.as_bytes());
            // Two lists of records, or two cursors, leave no right one to pick: refuse the page
            // where the second begins, before anything after it.
            if is_records && seen_records {
                return Err(self.fail(name.start, "the list of records once"));
            }
            let slot = key.and_then(|key| position(member_names, key));
            if slot.is_some_and(|j| matches!(members.get(j), Some(Some(_)))) {
                return Err(self.fail(name.start, "each member once"));
            }
            self.colon()?;
            let start = self.pos;
            if is_records {
                seen_records = true;
                match self.peek() {
                    Some(b'[') => records = Some(self.records(2)?),
                    Some(b'n') => self.literal(b"null", "`null`")?,
                    _ => {
                        return Err(
                            self.fail(self.pos, "`[` opening the list of records, or `null`")
                        );
                    }
                }
            } else {
                self.skip_value(1)?;
            }
            if let Some(j) = slot {
                fill(&mut members, member_names, j, Some(start..self.pos));
            }
            if self.comma_or(b'}', "`,` or `}`")? {
                return Ok((records, members));
            }
        }
    }

    /// The array of records at `pos`, `level` deep (counting itself).
    fn records(&mut self, level: usize) -> Step<Vec<Range<usize>>> {
        self.nest(level)?;
        self.pos += 1;
        self.skip_ws();
        let mut records = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(records);
        }
        loop {
            if self.peek() != Some(b'{') {
                return Err(self.fail(self.pos, "`{` opening a record"));
            }
            let start = self.pos;
            self.count_record()?;
            if records.len() == records.capacity() && !records.is_empty() {
                self.grow(&mut records);
            }
            self.record(level + 1)?;
            if records.is_empty() {
                // A page's records are much alike in size: the first says about how many follow,
                // which spares the output vectors most of their regrowing; never more than the
                // bounds leave room for, so that a page of tiny records cannot reserve past them.
                let rest = self.body.len().saturating_sub(self.pos);
                let guess = (rest / (self.pos - start + 1) + 1).min(self.records_left + 1);
                records.reserve(guess);
                self.picked
                    .reserve(guess.saturating_mul(self.picked_names.len()));
            }
            records.push(start..self.pos);
            if self.comma_or(b']', "`,` or `]`")? {
                return Ok(records);
            }
        }
    }

    /// One record's object at `pos`, `level` deep: notes its picked members.
    fn record(&mut self, level: usize) -> Step<()> {
        self.nest(level)?;
        let names = self.picked_names;
        let base = self.picked.len();
        self.picked.resize(base + names.len(), Piece::NONE);
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            let mut first = true;
            loop {
                let name = self.name(first)?;
                first = false;
                let slot = if names.is_empty() {
                    None
                } else {
                    self.which(name, names)
                };
                if slot.is_some_and(|j| self.picked.get(base + j).is_some_and(|p| p.is_some())) {
                    return Err(self.fail(name.start, "each picked member once"));
                }
                self.colon()?;
                let start = self.pos;
                self.skip_value(level)?;
                if let Some(j) = slot
                    && let Some(slots) = self.picked.get_mut(base..)
                {
                    fill(slots, names, j, Piece::at(start..self.pos));
                }
                if self.comma_or(b'}', "`,` or `}`")? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// After a member or an element: a `,` (and the whitespace after it) to go on, or `close`
    /// to end the container. Says whether it ended.
    #[inline(always)]
    fn comma_or(&mut self, close: u8, expected: &'static str) -> Step<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.fail(self.pos, expected)),
        }
    }

    /// A member's name at `pos`; `first` when it may instead be the `}` of an empty object.
    #[inline(always)]
    fn name(&mut self, first: bool) -> Step<Name> {
        let start = self.pos;
        // Not one step returning a `Name`: inside a `Result`, it came back through memory in pieces
        // that the read of it stalled on (measured: the record loop's slowest instruction).
        let escaped = self.name_escaped(first)?;
        Ok(Name {
            start,
            end: self.pos,
            escaped,
        })
    }

    /// A member's name at `pos`; `first` when it may instead be the `}` of an empty object. Says
    /// whether it has escapes.
    #[inline(always)]
    fn name_escaped(&mut self, first: bool) -> Step<bool> {
        if self.peek() != Some(b'"') {
            let expected = if first {
                "a member's name or `}`"
            } else {
                "a member's name"
            };
            return Err(self.fail(self.pos, expected));
        }
        self.skip_string()
    }

    /// What a name says, to compare with wanted names: its bytes as written unless it has escapes;
    /// `None` when those decode to no string (a lone surrogate), which no wanted name can equal.
    fn key(&self, name: Name) -> Option<Cow<'b, [u8]>> {
        let body: &'b [u8] = self.body;
        if !name.escaped {
            return body
                .get(name.start + 1..name.end.saturating_sub(1))
                .map(Cow::Borrowed);
        }
        let quoted = std::str::from_utf8(body.get(name.start..name.end)?).ok()?;
        let decoded = serde_json::from_str::<String>(quoted).ok()?;
        Some(Cow::Owned(decoded.into_bytes()))
    }

    /// Which of `names` a record's member is: the check made for every member of every record, so
    /// kept apart from [`Reader::key`], which is cheap enough once a page.
    #[inline]
    fn which(&self, name: Name, names: &[String]) -> Option<usize> {
        if name.escaped {
            return self.which_decoded(name, names);
        }
        let raw = self.body.get(name.start + 1..name.end.saturating_sub(1))?;
        if raw.len() < 64 && self.picked_lengths >> raw.len() & 1 == 0 {
            return None;
        }
        // Folded rather than `==`, which calls `memcmp`: dear for names this short.
        names.iter().position(|name| {
            let name = name.as_bytes();
            name.len() == raw.len()
                && name.iter().zip(raw).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
        })
    }

    /// A name with escapes is rare enough to decode and compare the slow way.
    #[cold]
    fn which_decoded(&self, name: Name, names: &[String]) -> Option<usize> {
        self.key(name).and_then(|key| position(names, &key))
    }

    /// The `:` after a member's name, and the whitespace around it.
    #[inline(always)]
    fn colon(&mut self) -> Step<()> {
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.fail(self.pos, "`:`"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// Any value at `pos`, inside `level` containers. Most members' values are strings or
    /// numbers: those are read here, inline.
    #[inline(always)]
    fn skip_value(&mut self, level: usize) -> Step<()> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            _ => self.skip_any(level),
        }
    }

    /// Any value at `pos`, inside `level` containers. Iterative, so that nesting costs a bit of a
    /// word rather than a stack frame.
    #[inline(never)]
    fn skip_any(&mut self, level: usize) -> Step<()> {
        // Bit k says whether the container opened k levels above the innermost one is an object.
        let mut objects: u128 = 0;
        let mut open = 0usize;
        let mut just_opened = false;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.skip_string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b'{') => {
                    self.nest(level + open + 1)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        objects = (objects << 1) | 1;
                        open += 1;
                        self.name_escaped(true)?;
                        self.colon()?;
                        just_opened = false;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.nest(level + open + 1)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        objects <<= 1;
                        open += 1;
                        just_opened = true;
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true", "`true`")?,
                Some(b'f') => self.literal(b"false", "`false`")?,
                Some(b'n') => self.literal(b"null", "`null`")?,
                _ => {
                    let expected = if just_opened {
                        "a value or `]`"
                    } else {
                        "a value"
                    };
                    return Err(self.fail(self.pos, expected));
                }
            }
            just_opened = false;
            // After a value: close containers until one goes on after a comma.
            loop {
                if open == 0 {
                    return Ok(());
                }
                self.skip_ws();
                let in_object = objects & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if in_object {
                            self.name_escaped(false)?;
                            self.colon()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => {
                        let expected = if in_object {
                            "`,` or `}`"
                        } else {
                            "`,` or `]`"
                        };
                        return Err(self.fail(self.pos, expected));
                    }
                }
                self.pos += 1;
                objects >>= 1;
                open -= 1;
            }
        }
    }

    /// A string at `pos` (its opening quote); says whether it has escapes, the only strings whose
    /// text differs from their bytes. Most strings are plain ASCII text: those take a path short
    /// enough to inline.
    #[inline(always)]
    fn skip_string(&mut self) -> Step<bool> {
        let stop = scan_ascii(self.body, self.pos + 1);
        if self.body.get(stop) == Some(&b'"') {
            self.pos = stop + 1;
            return Ok(false);
        }
        self.finish_string(stop)
    }

    /// The rest of a string, from the first byte at `stop` that is not plain ASCII text: an
    /// escape, a byte outside ASCII, a control byte or the end of the body.
    #[inline(never)]
    fn finish_string(&mut self, mut stop: usize) -> Step<bool> {
        let body = self.body;
        let mut escaped = false;
        loop {
            let Some(&byte) = body.get(stop) else {
                return Err(self.fail(stop, "`\"` closing the string"));
            };
            if byte == b'"' {
                self.pos = stop + 1;
                return Ok(escaped);
            } else if byte >= 0x80 {
                stop = skip_utf8(body, stop).map_err(not_utf8)?;
            } else if byte == b'\\' {
                escaped = true;
                let kind = body.get(stop + 1).copied().unwrap_or(0);
                // Any four hex digits, lone surrogates too: serde_json accepts them when it only
                // checks a body, so refusing them would refuse pages it reads.
                if kind == b'u' {
                    for digit in stop + 2..stop + 6 {
                        if !body.get(digit).is_some_and(u8::is_ascii_hexdigit) {
                            return Err(self.fail(digit, "a hexadecimal digit"));
                        }
                    }
                    stop += 6;
                } else if matches!(kind, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                    stop += 2;
                } else {
                    return Err(self.fail(stop + 1, ESCAPE));
                }
            } else {
                return Err(self.fail(stop, CONTROL));
            }
            stop = scan_ascii(body, stop);
        }
    }

    #[inline]
    fn skip_number(&mut self) -> Step<()> {
        let body = self.body;
        let mut at = self.pos;
        if body.get(at) == Some(&b'-') {
            at += 1;
        }
        match body.get(at) {
            Some(b'0') => {
                at += 1;
                if body.get(at).is_some_and(u8::is_ascii_digit) {
                    return Err(self.fail(at, "no digit after a leading `0`"));
                }
            }
            Some(b'1'..=b'9') => at = masks::past_digits(body, at + 1),
            _ => return Err(self.fail(at, "a digit")),
        }
        if body.get(at) == Some(&b'.') {
            at += 1;
            if !body.get(at).is_some_and(u8::is_ascii_digit) {
                return Err(self.fail(at, "a digit after the decimal point"));
            }
            at = masks::past_digits(body, at + 1);
        }
        if matches!(body.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(body.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !body.get(at).is_some_and(u8::is_ascii_digit) {
                return Err(self.fail(at, "a digit in the exponent"));
            }
            at = masks::past_digits(body, at + 1);
        }
        self.pos = at;
        Ok(())
    }

    /// `true`, `false` or `null` at `pos`.
    #[inline]
    fn literal<const N: usize>(&mut self, word: &[u8; N], expected: &'static str) -> Step<()> {
        let end = self.pos + N;
        // As arrays of a known length, compared in a register or two rather than by `memcmp`.
        let found = self
            .body
            .get(self.pos..end)
            .and_then(|found| <&[u8; N]>::try_from(found).ok());
        if found == Some(word) {
            self.pos = end;
            return Ok(());
        }
        let at = (self.pos..end)
            .zip(word)
            .find(|&(at, byte)| self.body.get(at) != Some(byte))
            .map_or(end, |(at, _)| at);
        Err(self.fail(at, expected))
    }

    /// The error for the byte at `at` (or the end of the body). A byte there that starts no UTF-8
    /// character is reported as such: the body is not text, whatever else was expected.
    #[cold]
    #[inline(never)]
    fn fail(&self, at: usize, expected: &'static str) -> Box<SplitError> {
        let found = match self.body.get(at) {
            None => "the end of the body".to_owned(),
            Some(b' ') => "a space".to_owned(),
            Some(b'\t') => "a tab".to_owned(),
            Some(b'\n') => "a line feed".to_owned(),
            Some(b'\r') => "a carriage return".to_owned(),
            Some(&byte) if byte.is_ascii_control() => {
                format!("the control character U+{byte:04X}")
            }
            Some(&byte) if byte.is_ascii() => format!("`{}`", char::from(byte)),
            Some(_) => {
                if utf8_width(self.body, at).is_none() {
                    return not_utf8(at);
                }
                "a character outside ASCII".to_owned()
            }
        };
        Box::new(SplitError {
            offset: at,
            expected,
            found,
        })
    }
}

fn not_utf8(at: usize) -> Box<SplitError> {
    Box::new(SplitError {
        offset: at,
        expected: "UTF-8 text",
        found: "a byte sequence that is not UTF-8".to_owned(),
    })
}

/// The first of `names` that is `key`.
#[inline]
fn position(names: &[String], key: &[u8]) -> Option<usize> {
    names.iter().position(|name| name.as_bytes() == key)
}

/// Gives `range` to slot `j` and to every later slot of the same name (a caller may name a member
/// twice).
#[inline]
fn fill<T: Clone>(slots: &mut [T], names: &[String], j: usize, range: T) {
    let Some(name) = names.get(j) else { return };
    let mut later = slots.iter_mut().zip(names).skip(j);
    if let Some((slot, _)) = later.next() {
        *slot = range.clone();
    }
    // Lengths first: comparing strings calls `memcmp`, and a name is rarely there twice.
    for (slot, _) in later.filter(|(_, other)| other.len() == name.len() && *other == name) {
        *slot = range.clone();
    }
}

/// Finds the first byte at or after `from` that is not plain ASCII text (`"`, `\`, a control
/// byte or a byte outside ASCII; the body's length if none): sixteen bytes a step, then eight
/// near the body's end. Most strings are all plain text: this loop is where they are read.
#[inline]
fn scan_ascii(body: &[u8], mut from: usize) -> usize {
    while let Some(block) = body.get(from..from + 16) {
        let stops = masks::string_stops(block.try_into().expect("sixteen bytes"));
        if stops != 0 {
            return from + stops.trailing_zeros() as usize;
        }
        from += 16;
    }
    let rest = body.get(from..).unwrap_or_default();
    let (words, tail) = rest.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let hits = special_bytes(word) | (word & HIGH_BITS);
        if hits != 0 {
            return from + i * 8 + (hits.trailing_zeros() / 8) as usize;
        }
    }
    let from = from + words.len() * 8;
    for (i, &byte) in tail.iter().enumerate() {
        if byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte) {
            return from + i;
        }
    }
    body.len()
}

/// Past the characters outside ASCII at `at`, or where the first that is not UTF-8 begins.
/// Checked here, a character at a time as strings are read, rather than by `str::from_utf8` for
/// each string: most such strings are short, with a few such characters, and a call costs more
/// than they do.
#[inline]
fn skip_utf8(body: &[u8], mut at: usize) -> Result<usize, usize> {
    while body.get(at).is_some_and(|&byte| byte >= 0x80) {
        at += utf8_width(body, at).ok_or(at)?;
    }
    Ok(at)
}

/// The length of the UTF-8 character outside ASCII at `at`, or `None` where there is none: as
/// `str::from_utf8` judges, which ends valid text at the first byte of such a sequence.
#[inline]
fn utf8_width(body: &[u8], at: usize) -> Option<usize> {
    // The range of the second byte rules out overlong forms, surrogates and code points past
    // U+10FFFF; any other byte after the lead is in 0x80..=0xBF.
    let (width, second) = match body.get(at)? {
        0xC2..=0xDF => (2, 0x80..=0xBF),
        0xE0 => (3, 0xA0..=0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
        0xED => (3, 0x80..=0x9F),
        0xF0 => (4, 0x90..=0xBF),
        0xF1..=0xF3 => (4, 0x80..=0xBF),
        0xF4 => (4, 0x80..=0x8F),
        _ => return None,
    };
    if !second.contains(body.get(at + 1)?) {
        return None;
    }
    for next in at + 2..at + width {
        if !(0x80..=0xBF).contains(body.get(next)?) {
            return None;
        }
    }
    Some(width)
}

/// The top bit of each byte of `word` (little-endian) that is `"`, `\` or below 0x20; bits above
/// the lowest may be false alarms, the lowest never is. Bytes outside ASCII never match.
#[inline]
fn special_bytes(word: u64) -> u64 {
    // Flipping bit 1 turns `"` (0x22) into 0x20 and keeps control bytes below 0x20, so one test
    // for "below 0x21" finds both.
    let flipped = word ^ (ONES * 0x02);
    let control_or_quote = flipped.wrapping_sub(ONES * 0x21) & !flipped;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control_or_quote | backslash) & HIGH_BITS
}

#[cfg(test)]
mod tests;
