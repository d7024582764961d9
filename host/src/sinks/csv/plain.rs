//! The common record read in one scan for its row: an object whose members are all plain values
//! (strings, whole numbers, `true`, `false`, `null`), as nearly every vendor's audit events are.
//!
//! The general walk ([`for_each_cell`](super::super::flatten::for_each_cell)) hands over each
//! cell's text, which the row then scans again for what needs quotes and copies twice. Here the
//! scan that finds a string's end also finds its commas, the only byte of an unescaped JSON string
//! that calls for quotes (a quote or a line break in one is always escaped), so most cells are
//! found to be usable as they are, and are copied once, straight from the record into the row.

use crate::masks;
use std::ops::Range;

/// What a plain member's value makes in its cell, by where it is in the record's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PlainValue {
    /// `null`: an empty cell.
    Empty,
    /// The text there is the cell, as it is.
    AsIs(Range<usize>),
    /// The text there is the cell, but it holds a comma: it goes in quotes. It holds no quote.
    InQuotes(Range<usize>),
    /// A string with escapes, its quotes included: decoded, then quoted as its text needs.
    Escaped(Range<usize>),
}

/// The members the record before had, by their place in it: each one's name as written with the
/// quotes and colon around it, and its column. A vendor's records nearly always have the same
/// members in the same order, so a member is recognized by one comparison of those bytes, rather
/// than read as a name that is then compared with the header's. `None` at a place whose name was
/// not followed by its colon directly: there is nothing to compare.
#[derive(Default)]
pub(super) struct MemberGuesses(Vec<Option<(Box<[u8]>, usize)>>);

/// Calls `each` with the column and the value of every member of the record `json`, the columns
/// of names not guessed coming from `column_of`. `None`, perhaps after some calls, when the
/// record is not all plain members, a name has no column or `each` says `false`: the caller then
/// starts again another way (in the end with the general walk, which reads every record and says
/// what is wrong with one).
///
/// `json` is a record the host has checked, so only what tells plain members apart is looked at.
#[inline]
pub(super) fn plain_members(
    json: &str,
    guesses: &mut MemberGuesses,
    column_of: impl Fn(&str) -> Option<usize>,
    mut each: impl FnMut(usize, PlainValue) -> bool,
) -> Option<()> {
    let bytes = json.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return (skip_whitespace(bytes, at + 1) == bytes.len()).then_some(());
    }
    let mut place = 0;
    loop {
        let column = match guesses.0.get(place) {
            Some(Some((written, column))) if starts_with(bytes, at, written) => {
                at += written.len();
                *column
            }
            _ => {
                let (column, after) = member_name(json, at, &column_of)?;
                let written = &bytes[at..after];
                if written.ends_with(b"\":") {
                    if guesses.0.len() <= place {
                        guesses.0.resize(place + 1, None);
                    }
                    guesses.0[place] = Some((written.into(), column));
                }
                at = after;
                column
            }
        };
        place += 1;
        at = skip_whitespace(bytes, at);
        let value = match *bytes.get(at)? {
            b'"' => {
                let scan = scan_string(bytes, at + 1)?;
                let value = if scan.escaped {
                    PlainValue::Escaped(at..scan.end + 1)
                } else if scan.comma {
                    PlainValue::InQuotes(at + 1..scan.end)
                } else {
                    PlainValue::AsIs(at + 1..scan.end)
                };
                at = scan.end + 1;
                value
            }
            b't' if bytes[at..].starts_with(b"true") => {
                at += 4;
                PlainValue::AsIs(at - 4..at)
            }
            b'f' if bytes[at..].starts_with(b"false") => {
                at += 5;
                PlainValue::AsIs(at - 5..at)
            }
            b'n' if bytes[at..].starts_with(b"null") => {
                at += 4;
                PlainValue::Empty
            }
            b'0'..=b'9' => {
                let start = at;
                at = masks::past_digits(bytes, at);
                // Parsed and printed again by the general walk: a fraction, an exponent, a
                // sign, or more digits than a `u64` holds. A leading zero is only `0` itself in
                // JSON, which is as it is.
                const U64_DIGITS: usize = 19;
                if matches!(bytes.get(at), Some(b'.' | b'e' | b'E')) || at - start > U64_DIGITS {
                    return None;
                }
                PlainValue::AsIs(start..at)
            }
            _ => return None,
        };
        if !each(column, value) {
            return None;
        }
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            Some(b'}') => {
                return (skip_whitespace(bytes, at + 1) == bytes.len()).then_some(());
            }
            _ => return None,
        }
    }
}

/// The member's name at `at` (its opening quote), read the long way: its column, and where its
/// colon ends. `None` if it has escapes or no column.
#[inline(never)]
fn member_name(
    json: &str,
    at: usize,
    column_of: impl Fn(&str) -> Option<usize>,
) -> Option<(usize, usize)> {
    let bytes = json.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let scan = scan_string(bytes, at + 1)?;
    if scan.escaped {
        return None;
    }
    let column = column_of(json.get(at + 1..scan.end)?)?;
    let colon = skip_whitespace(bytes, scan.end + 1);
    (bytes.get(colon) == Some(&b':')).then_some((column, colon + 1))
}

/// Whether `bytes` has `short` at `at`: a word or two compared for what is that short, rather
/// than a call into `memcmp`.
#[inline(always)]
fn starts_with(bytes: &[u8], at: usize, short: &[u8]) -> bool {
    let Some(piece) = bytes.get(at..at + short.len()) else {
        return false;
    };
    let len = short.len();
    let word = |of: &[u8], from: usize| {
        u64::from_le_bytes(of[from..from + 8].try_into().expect("eight bytes"))
    };
    let half = |of: &[u8], from: usize| {
        u32::from_le_bytes(of[from..from + 4].try_into().expect("four bytes"))
    };
    match len {
        // Two words (or halves) that may overlap cover it all.
        8..=16 => word(piece, 0) == word(short, 0) && word(piece, len - 8) == word(short, len - 8),
        4..8 => half(piece, 0) == half(short, 0) && half(piece, len - 4) == half(short, len - 4),
        _ => piece == short,
    }
}

#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|&byte| matches!(byte, b' ' | b'\n' | b'\r' | b'\t'))
    {
        at += 1;
    }
    at
}

/// What a scan of a string found.
struct StringScan {
    /// Where its closing quote is.
    end: usize,
    /// Whether it has an escape.
    escaped: bool,
    /// Whether it has a comma (looked for only up to the first escape).
    comma: bool,
}

/// The string whose text starts at `from`, just past its opening quote; `None` if it has no end.
/// Sixteen bytes a step, then eight near the record's end: most strings in records are short, and
/// for them a call into `memchr` cost more than the scan.
#[inline(always)]
fn scan_string(bytes: &[u8], from: usize) -> Option<StringScan> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    /// The top bit of each byte of `word` that is `byte`. A bit above the lowest may be a false
    /// alarm, but only above a byte that truly is `byte`.
    #[inline(always)]
    fn equal(word: u64, byte: u8) -> u64 {
        let zero_where_equal = word ^ (ONES * u64::from(byte));
        zero_where_equal.wrapping_sub(ONES) & !zero_where_equal & HIGH_BITS
    }
    let mut at = from;
    let mut comma = false;
    while let Some(block) = bytes.get(at..at + 16) {
        let block = block.try_into().expect("sixteen bytes");
        let stops = masks::any_of(block, [b'"', b'\\']);
        let commas = masks::any_of(block, [b',']);
        if stops == 0 {
            comma |= commas != 0;
            at += 16;
            continue;
        }
        let first = stops.trailing_zeros();
        comma |= commas & ((1 << first) - 1) != 0;
        return finish_string(bytes, at + first as usize, comma);
    }
    let stop = loop {
        let Some(chunk) = bytes.get(at..at + 8) else {
            let rest = bytes.get(at..)?;
            let offset = rest
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\')?;
            comma |= rest[..offset].contains(&b',');
            break at + offset;
        };
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let stops = equal(word, b'"') | equal(word, b'\\');
        let commas = equal(word, b',');
        if stops == 0 {
            comma |= commas != 0;
            at += 8;
            continue;
        }
        // The lowest stop is a true one; a comma bit below it is one too.
        let first = stops.trailing_zeros();
        comma |= commas & ((1 << first) - 1) != 0;
        break at + first as usize / 8;
    };
    finish_string(bytes, stop, comma)
}

/// The scan of a string whose first quote or backslash is at `stop`, with `comma` before it.
#[inline(always)]
fn finish_string(bytes: &[u8], stop: usize, comma: bool) -> Option<StringScan> {
    if bytes[stop] == b'"' {
        return Some(StringScan {
            end: stop,
            escaped: false,
            comma,
        });
    }
    // An escape: its text is decoded, commas and all, so looking for them ends here. The byte
    // after a backslash is never the closing quote, and `\uXXXX` holds none.
    finish_escaped(bytes, stop + 2).map(|end| StringScan {
        end,
        escaped: true,
        comma,
    })
}

/// The closing quote of a string with escapes, from `at`, somewhere in its text past an escape.
fn finish_escaped(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each member's name and value, with the names numbered in the order first seen.
    fn members(json: &str) -> Option<Vec<(String, PlainValue)>> {
        let names = std::cell::RefCell::new(Vec::<String>::new());
        let column_of = |name: &str| {
            let mut names = names.borrow_mut();
            Some(
                names
                    .iter()
                    .position(|known| known == name)
                    .unwrap_or_else(|| {
                        names.push(name.to_string());
                        names.len() - 1
                    }),
            )
        };
        let mut found = Vec::new();
        plain_members(
            json,
            &mut MemberGuesses::default(),
            column_of,
            |column, value| {
                found.push((column, value));
                true
            },
        )?;
        let names = names.borrow();
        Some(
            found
                .into_iter()
                .map(|(column, value)| (names[column].clone(), value))
                .collect(),
        )
    }

    fn text(json: &str, value: &PlainValue) -> String {
        match value {
            PlainValue::Empty => "(empty)".into(),
            PlainValue::AsIs(range) => format!("as is {}", &json[range.clone()]),
            PlainValue::InQuotes(range) => format!("in quotes {}", &json[range.clone()]),
            PlainValue::Escaped(range) => format!("escaped {}", &json[range.clone()]),
        }
    }

    fn described(json: &str) -> Option<Vec<String>> {
        Some(
            members(json)?
                .iter()
                .map(|(name, value)| format!("{name}: {}", text(json, value)))
                .collect(),
        )
    }

    #[test]
    fn plain_members_are_read_with_what_their_cells_need() {
        let json = r#"{"id":12,"a":"x, y","b":"say \"hi\"","c":null,"d":true,"e":false,"f":"plain text here"}"#;
        assert_eq!(
            described(json).unwrap(),
            [
                "id: as is 12",
                "a: in quotes x, y",
                r#"b: escaped "say \"hi\"""#,
                "c: (empty)",
                "d: as is true",
                "e: as is false",
                "f: as is plain text here",
            ]
        );
        assert_eq!(
            described(" { \"a\" : 1 ,\n\"b\" :\t\"\" } ").unwrap(),
            ["a: as is 1", "b: as is "]
        );
        assert_eq!(described("{}").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn anything_but_plain_members_is_left_to_the_general_walk() {
        for json in [
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":-1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":12345678901234567890}"#,
            r#"{"a\"b":1}"#,
            r#"{"a":1} x"#,
            r#"["a"]"#,
            r#"{"a":"no end"#,
        ] {
            assert_eq!(members(json), None, "{json}");
        }
        let only_a = |name: &str| (name == "a").then_some(0);
        let json = r#"{"a":1,"b":2}"#;
        let mut guesses = MemberGuesses::default();
        assert_eq!(plain_members(json, &mut guesses, only_a, |_, _| true), None);
        let mut calls = 0;
        let first_only = |_, _| {
            calls += 1;
            calls == 1
        };
        assert_eq!(
            plain_members(json, &mut guesses, |_| Some(0), first_only),
            None
        );
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_name_not_followed_by_its_colon_is_read_the_long_way_in_every_record() {
        let json = r#"{"a" :1,"b":"x"}"#;
        let mut guesses = MemberGuesses::default();
        for _ in 0..2 {
            let mut found = Vec::new();
            let read = plain_members(
                json,
                &mut guesses,
                |name| Some(usize::from(name == "b")),
                |column, value| {
                    found.push((column, value));
                    true
                },
            );
            assert_eq!(read, Some(()));
            assert_eq!(
                found,
                [(0, PlainValue::AsIs(6..7)), (1, PlainValue::AsIs(13..14))]
            );
        }
    }

    /// Every length the comparison takes a different way, with each byte changed in turn.
    #[test]
    fn a_name_as_written_is_found_only_where_every_byte_is_the_same() {
        for len in 0..24u8 {
            let short: Vec<u8> = (0..len).map(|at| b'a' + at).collect();
            let bytes = [&b"xx"[..], &short, b"yy"].concat();
            assert!(starts_with(&bytes, 2, &short), "{len}");
            if len > 0 {
                assert!(!starts_with(&bytes[..bytes.len() - 3], 2, &short), "{len}");
            }
            for at in 0..usize::from(len) {
                let mut other = bytes.clone();
                other[2 + at] ^= 1;
                assert!(!starts_with(&other, 2, &short), "{len}, byte {at}");
            }
        }
    }

    /// Commas and stops in every place of a sixteen- and an eight-byte step, and next to their
    /// edges.
    #[test]
    fn a_comma_is_found_wherever_it_is_and_only_before_the_end() {
        for len in 0..48 {
            let plain = "x".repeat(len);
            let json = format!(r#"{{"a":"{plain}","b":","}}"#);
            assert_eq!(
                members(&json).unwrap()[0].1,
                PlainValue::AsIs(6..6 + len),
                "{json}"
            );
            for at in 0..len {
                let mut cell = plain.clone().into_bytes();
                cell[at] = b',';
                let cell = String::from_utf8(cell).unwrap();
                let json = format!(r#"{{"a":"{cell}"}}"#);
                assert_eq!(
                    members(&json).unwrap()[0].1,
                    PlainValue::InQuotes(6..6 + len)
                );
                let escaped = format!(r#"{{"a":"{cell}\n{cell}"}}"#);
                assert_eq!(
                    members(&escaped).unwrap()[0].1,
                    PlainValue::Escaped(5..escaped.len() - 1)
                );
            }
        }
    }

    /// Numbers of every length the steps take a different way, followed by what may end them.
    #[test]
    fn a_number_ends_at_its_last_digit_and_only_a_whole_one_is_as_it_is() {
        for len in 1..40 {
            let number = "9".repeat(len);
            for after in [",\"b\":1}", "}", " }", ".5}", "e3}"] {
                let json = format!(r#"{{"a":{number}{after}"#);
                let expected = (len <= 19 && !after.starts_with(['.', 'e']))
                    .then(|| vec![PlainValue::AsIs(5..5 + len)]);
                let found = members(&json).map(|members| {
                    members
                        .into_iter()
                        .take(1)
                        .map(|(_, value)| value)
                        .collect()
                });
                assert_eq!(found, expected, "{json}");
            }
        }
    }
}
