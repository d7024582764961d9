//! Finding a secret in text that may have written it down character by character in another
//! form: what a server echoing a request back does (a JSON encoder escaping `/` as `\/` or `A` as
//! `\u0041`, a form decoder, an HTML page escaping `&`).
//!
//! A [`Matcher`] finds a sequence of characters where each character may independently be
//! written
//! - as itself (UTF-8),
//! - as a JSON escape: `\uXXXX` in any hex case (a surrogate pair beyond the BMP), or a short
//!   escape (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`),
//! - percent-encoded, `%XX` for each of its UTF-8 bytes, in any hex case; a space also as `+`,
//! - as an HTML character reference: `&#65;`, `&#x41;` (any case, leading zeros, the `;`
//!   optional as HTML parsers allow), or a named one (`&amp;`, `&sol;`, ...).
//!
//! **What it cannot catch**, and no matcher could: a server that hands the secret back
//! transformed rather than escaped (base64, hex of its bytes, hashed, encrypted, reversed,
//! compressed without a `Content-Encoding` that says so), or cut into pieces spread across a body
//! (a character a field, a few characters an element of an array). Redaction keeps a vendor's ordinary echo (an error page quoting the request, a debug
//! endpoint) from reaching a connector; it does not stop a server that means to smuggle the secret
//! out. That server is bounded by the allowlist instead: a secret only ever goes to the hosts it
//! is bound to, so the only servers that can play such tricks are the ones the user already trusts
//! with the secret, and a connector that learnt the secret that way can still only send it where
//! the network policy lets it (its declared and granted hosts), nowhere else.
//!
//! Clean text stays fast: a match can only begin where the first character is written as itself
//! and followed by a byte that can start the second (two bytes, rare, found by `memmem`), or at an
//! escape (`\`, `%`, `&`, found by `memchr`), and nearly all of those fail on a first look at a
//! few bytes. The work grows with the text's length (times the secret's, at worst, for text made
//! to nearly match at every byte). Measured on a clean 32 MiB JSON body (release build): about
//! 7 ms, and 25-45 ms when the body escapes every `/` and holds `%` and `&` in every record,
//! against 1.5 ms for a search of the secret as it is.

/// How text may write each character of what a [`Matcher`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Forms {
    /// Every form the module lists: for responses, where a server may have re-encoded anything.
    Any,
    /// Itself or percent-encoded only: for a URL component, where placeholders are looked for.
    Percent,
}

/// Finds one sequence of characters written in any mix of [`Forms`].
#[derive(Clone, Debug)]
pub(super) struct Matcher {
    chars: Vec<char>,
    forms: Forms,
    ignore_ascii_case: bool,
    /// The first character's UTF-8 bytes, and how many there are.
    first: ([u8; 4], usize),
    /// Which bytes the second character can begin with, in any form (all, when there is none).
    seconds: [bool; 256],
    /// Finders of the first character written as itself (or a space as `+`) followed by a byte
    /// that can start the second: dense single bytes (an `e` in English text) would make every
    /// one a candidate, pairs are rare, and `memmem` finds them at memory speed.
    literal_starts: Vec<memchr::memmem::Finder<'static>>,
}

impl Matcher {
    pub fn new(text: &str, forms: Forms, ignore_ascii_case: bool) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut seconds = [chars.len() < 2; 256];
        if let Some(&second) = chars.get(1) {
            let mut utf8 = [0; 4];
            let lead = second.encode_utf8(&mut utf8).as_bytes()[0];
            let mut allowed = vec![lead, b'%'];
            if ignore_ascii_case {
                allowed.extend([lead.to_ascii_lowercase(), lead.to_ascii_uppercase()]);
            }
            if forms == Forms::Any {
                allowed.extend([b'\\', b'&', b'+']);
            }
            for byte in allowed {
                seconds[usize::from(byte)] = true;
            }
        }
        let mut first = ([0; 4], 0);
        let mut literal_starts = Vec::new();
        if let Some(&ch) = chars.first() {
            first.1 = ch.encode_utf8(&mut first.0).len();
            let mut ways: Vec<Vec<u8>> = vec![first.0[..first.1].to_vec()];
            if ignore_ascii_case && ch.is_ascii() {
                ways = vec![
                    vec![first.0[0].to_ascii_lowercase()],
                    vec![first.0[0].to_ascii_uppercase()],
                ];
            }
            if ch == ' ' && forms == Forms::Any {
                ways.push(vec![b'+']);
            }
            ways.sort();
            ways.dedup();
            for way in ways {
                let followers = (0..=255u8).filter(|byte| seconds[usize::from(*byte)]);
                let needles: Vec<Vec<u8>> = if chars.len() < 2 {
                    vec![way]
                } else {
                    followers
                        .map(|byte| [way.as_slice(), &[byte]].concat())
                        .collect()
                };
                literal_starts.extend(
                    needles
                        .iter()
                        .map(|needle| memchr::memmem::Finder::new(needle).into_owned()),
                );
            }
        }
        Matcher {
            chars,
            forms,
            ignore_ascii_case,
            first,
            seconds,
            literal_starts,
        }
    }

    /// A cheap look at the first bytes of a candidate, to skip most of those that cannot match
    /// (in a clean body, nearly all) without reading them in every form: the first character
    /// written as itself must be followed by something that can start the second, a `\` must
    /// start an escape, a `%` must encode the first character's first byte, a `&` must start a
    /// reference.
    #[inline]
    fn may_start(&self, text: &[u8], start: usize) -> bool {
        let (utf8, width) = &self.first;
        let encoded = &utf8[..*width];
        let byte = text[start];
        let same = |a: u8, b: u8| a == b || (self.ignore_ascii_case && a.eq_ignore_ascii_case(&b));
        let second_ok = |at: usize| {
            text.get(at)
                .map_or(self.chars.len() < 2, |b| self.seconds[usize::from(*b)])
        };
        if same(byte, encoded[0]) {
            let literal = *width == 1 || text.get(start..start + width) == Some(encoded);
            if literal && second_ok(start + width) {
                return true;
            }
            if *width > 1 {
                return false;
            }
        }
        let first = self.chars[0];
        match byte {
            b'%' => percent_byte(text, start).is_some_and(|decoded| same(decoded, encoded[0])),
            b'\\' if self.forms == Forms::Any => match json_escape(text, start) {
                Some((ch, _)) => {
                    ch == first || (self.ignore_ascii_case && ch.eq_ignore_ascii_case(&first))
                }
                // A surrogate pair is checked in full by `match_at`.
                None => text.get(start + 1) == Some(&b'u') && (first as u32) > 0xffff,
            },
            b'&' if self.forms == Forms::Any => match text.get(start + 1) {
                Some(b'#') => true,
                Some(b'a'..=b'z' | b'A'..=b'Z') => NAMED.iter().any(|(_, ch)| *ch == first),
                _ => false,
            },
            b'+' if self.forms == Forms::Any => first == ' ' && second_ok(start + 1),
            _ => false,
        }
    }

    /// How many characters it looks for.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Every match in `text`, in order, none overlapping; each as long as it can be.
    ///
    /// Text made to nearly match at every byte (a server the connector chose can send it) would
    /// cost the secret's length in readings per byte. The readings are counted instead: past
    /// [`READINGS_PER_BYTE`] per byte of text, the rest of the text, from where the search got
    /// to, is taken as one match. Nothing is let through unchecked, and the connector gets an
    /// answer it cannot read; ordinary text, even full of escapes, needs far fewer.
    pub fn find_all(&self, text: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        if self.chars.is_empty() {
            return found;
        }
        let mut candidates = Candidates::new(self, text);
        let mut scratch = Scratch::default();
        let budget = text
            .len()
            .saturating_mul(READINGS_PER_BYTE)
            .saturating_add(MIN_READINGS);
        let mut at = 0;
        while let Some(start) = candidates.next(at) {
            if !self.may_start(text, start) {
                at = start + 1;
                continue;
            }
            if scratch.readings_done > budget {
                found.push(start..text.len());
                break;
            }
            match self.match_at(text, start, &mut scratch) {
                Some(end) => {
                    found.push(start..end);
                    at = end;
                }
                None => at = start + 1,
            }
        }
        found
    }

    /// Whether `text` holds a match.
    pub fn is_in(&self, text: &[u8]) -> bool {
        !self.find_all(text).is_empty()
    }

    /// Where the longest match beginning at `start` ends, if one does.
    fn match_at(&self, text: &[u8], start: usize, scratch: &mut Scratch) -> Option<usize> {
        let Scratch {
            ends,
            next,
            readings,
            readings_done,
        } = scratch;
        ends.clear();
        ends.push(start);
        for &wanted in &self.chars {
            next.clear();
            for &at in ends.iter() {
                readings.clear();
                *readings_done += 1;
                read(text, at, self.forms, readings);
                for &(read, end) in readings.iter() {
                    let same = read == wanted
                        || (self.ignore_ascii_case && read.eq_ignore_ascii_case(&wanted));
                    if same && !next.contains(&end) {
                        next.push(end);
                    }
                }
            }
            if next.is_empty() {
                return None;
            }
            std::mem::swap(ends, next);
        }
        ends.iter().copied().max()
    }
}

/// Readings of a character a search may make per byte of the text, and at least, before it takes
/// the rest of the text as a match (see [`Matcher::find_all`]).
const READINGS_PER_BYTE: usize = 2;
const MIN_READINGS: usize = 1 << 16;

#[derive(Default)]
struct Scratch {
    ends: Vec<usize>,
    next: Vec<usize>,
    readings: Vec<(char, usize)>,
    /// Readings made so far, by every `match_at` of one search.
    readings_done: usize,
}

/// The places a match may begin, in order: where [`Matcher::literal_starts`] are found, and
/// every `%` (and `\\`, `&` for [`Forms::Any`]), merged.
struct Candidates<'a> {
    sources: Vec<std::iter::Peekable<Box<dyn Iterator<Item = usize> + 'a>>>,
}

impl<'a> Candidates<'a> {
    fn new(matcher: &'a Matcher, text: &'a [u8]) -> Self {
        let escapes: Box<dyn Iterator<Item = usize> + 'a> = match matcher.forms {
            Forms::Any => Box::new(memchr::memchr3_iter(b'%', b'\\', b'&', text)),
            Forms::Percent => Box::new(memchr::memchr_iter(b'%', text)),
        };
        let literal = matcher
            .literal_starts
            .iter()
            .map(|finder| Box::new(finder.find_iter(text)) as Box<dyn Iterator<Item = usize> + 'a>);
        Candidates {
            sources: std::iter::once(escapes)
                .chain(literal)
                .map(Iterator::peekable)
                .collect(),
        }
    }

    /// The first candidate at or after `from`.
    fn next(&mut self, from: usize) -> Option<usize> {
        let mut best: Option<usize> = None;
        for source in &mut self.sources {
            while source.next_if(|at| *at < from).is_some() {}
            if let Some(&at) = source.peek() {
                best = Some(best.map_or(at, |best| best.min(at)));
            }
        }
        best
    }
}

/// Every way the text at `at` can be read as one character, and where that reading ends.
fn read(text: &[u8], at: usize, forms: Forms, out: &mut Vec<(char, usize)>) {
    let Some(&byte) = text.get(at) else {
        return;
    };
    if let Some(literal) = utf8_char(text, at) {
        out.push(literal);
    }
    match byte {
        b'%' => {
            if let Some(decoded) = percent_char(text, at) {
                out.push(decoded);
            }
        }
        b'+' if forms == Forms::Any => out.push((' ', at + 1)),
        b'\\' if forms == Forms::Any => {
            if let Some(decoded) = json_escape(text, at) {
                out.push(decoded);
            }
        }
        b'&' if forms == Forms::Any => html_reference(text, at, out),
        _ => {}
    }
}

/// The UTF-8 character at `at`, if one starts there.
fn utf8_char(text: &[u8], at: usize) -> Option<(char, usize)> {
    let width = utf8_width(text[at])?;
    let bytes = text.get(at..at + width)?;
    let ch = std::str::from_utf8(bytes).ok()?.chars().next()?;
    Some((ch, at + width))
}

fn utf8_width(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7f => Some(1),
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

/// `%XX` at `at`, as a byte.
fn percent_byte(text: &[u8], at: usize) -> Option<u8> {
    match text.get(at..at + 3)? {
        [b'%', high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

/// A character percent-encoded at `at`: its first byte as `%XX`, each later UTF-8 byte as `%XX`
/// or as itself.
fn percent_char(text: &[u8], at: usize) -> Option<(char, usize)> {
    let lead = percent_byte(text, at)?;
    let width = utf8_width(lead)?;
    let mut bytes = [lead, 0, 0, 0];
    let mut end = at + 3;
    for slot in bytes.iter_mut().take(width).skip(1) {
        match percent_byte(text, end) {
            Some(byte) => {
                *slot = byte;
                end += 3;
            }
            None => {
                *slot = *text.get(end)?;
                end += 1;
            }
        }
    }
    let ch = std::str::from_utf8(&bytes[..width]).ok()?.chars().next()?;
    Some((ch, end))
}

/// Four hex digits at `at`, as a UTF-16 code unit.
fn hex4(text: &[u8], at: usize) -> Option<u16> {
    let digits = text.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |value, &digit| {
        Some(value << 4 | u16::from(hex_value(digit)?))
    })
}

/// A JSON escape at `at` (which holds a `\`).
fn json_escape(text: &[u8], at: usize) -> Option<(char, usize)> {
    let short = match *text.get(at + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let unit = hex4(text, at + 2)?;
            let end = at + 6;
            if !(0xd800..0xdc00).contains(&unit) {
                return Some((char::from_u32(u32::from(unit))?, end));
            }
            // A high surrogate: the character is the pair.
            if text.get(end..end + 2)? != b"\\u" {
                return None;
            }
            let low = hex4(text, end + 2)?;
            let ch = char::decode_utf16([unit, low]).next()?.ok()?;
            return Some((ch, end + 6));
        }
        _ => return None,
    };
    Some((short, at + 2))
}

/// Named character references a server might use for a character of a secret: HTML5's names for
/// printable ASCII and the no-break space. HTML names are case-sensitive; the few written in
/// capitals too are listed as such.
const NAMED: &[(&str, char)] = &[
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("excl", '!'),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("lpar", '('),
    ("rpar", ')'),
    ("ast", '*'),
    ("midast", '*'),
    ("plus", '+'),
    ("comma", ','),
    ("period", '.'),
    ("sol", '/'),
    ("colon", ':'),
    ("semi", ';'),
    ("equals", '='),
    ("quest", '?'),
    ("commat", '@'),
    ("lsqb", '['),
    ("lbrack", '['),
    ("bsol", '\\'),
    ("rsqb", ']'),
    ("rbrack", ']'),
    ("Hat", '^'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
    ("grave", '`'),
    ("DiacriticalGrave", '`'),
    ("lcub", '{'),
    ("lbrace", '{'),
    ("verbar", '|'),
    ("vert", '|'),
    ("VerticalLine", '|'),
    ("rcub", '}'),
    ("rbrace", '}'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
];

/// Names HTML parsers accept without their `;` (of those in [`NAMED`]).
const LEGACY: &[&str] = &["amp", "AMP", "lt", "LT", "gt", "GT", "quot", "QUOT", "nbsp"];

/// The readings of an HTML character reference at `at` (which holds a `&`): with and without a
/// `;` that follows, since a parser accepts both for numeric references.
fn html_reference(text: &[u8], at: usize, out: &mut Vec<(char, usize)>) {
    let rest = &text[at + 1..];
    if let Some(numeric) = rest.strip_prefix(b"#") {
        let (radix, digits_at) = match numeric.first() {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = &rest[digits_at..];
        let count = digits
            .iter()
            .take_while(|digit| (**digit as char).is_digit(radix))
            .count();
        if count == 0 {
            return;
        }
        let mut value: u32 = 0;
        for &digit in &digits[..count] {
            let digit = (digit as char).to_digit(radix).unwrap_or(0);
            // Past the last code point: no character, however many digits follow.
            value = match value.checked_mul(radix).and_then(|v| v.checked_add(digit)) {
                Some(value) if value <= 0x10ffff => value,
                _ => return,
            };
        }
        let Some(ch) = char::from_u32(value) else {
            return;
        };
        let end = at + 1 + digits_at + count;
        out.push((ch, end));
        if text.get(end) == Some(&b';') {
            out.push((ch, end + 1));
        }
        return;
    }
    for &(name, ch) in NAMED {
        let Some(after) = rest.strip_prefix(name.as_bytes()) else {
            continue;
        };
        let end = at + 1 + name.len();
        if after.first() == Some(&b';') {
            out.push((ch, end + 1));
        } else if LEGACY.contains(&name) {
            out.push((ch, end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(matcher: &Matcher, text: &str) -> Vec<String> {
        matcher
            .find_all(text.as_bytes())
            .into_iter()
            .map(|range| text[range].to_string())
            .collect()
    }

    /// Writes `secret` with each character in the form `pick` chooses for it.
    fn encode(secret: &str, mut pick: impl FnMut(usize) -> usize) -> String {
        let mut out = String::new();
        for (index, ch) in secret.chars().enumerate() {
            let mut utf8 = [0; 4];
            let bytes = ch.encode_utf8(&mut utf8).as_bytes();
            let code = ch as u32;
            let written = match pick(index) % 9 {
                0 => ch.to_string(),
                1 => bytes.iter().map(|b| format!("%{b:02x}")).collect(),
                2 => bytes.iter().map(|b| format!("%{b:02X}")).collect(),
                3 => {
                    let mut units = [0u16; 2];
                    ch.encode_utf16(&mut units)
                        .iter()
                        .map(|unit| format!("\\u{unit:04x}"))
                        .collect()
                }
                4 => {
                    let mut units = [0u16; 2];
                    ch.encode_utf16(&mut units)
                        .iter()
                        .map(|unit| format!("\\u{unit:04X}"))
                        .collect()
                }
                5 => format!("&#{code};"),
                6 => format!("&#x{code:x};"),
                7 => format!("&#X{code:04X};"),
                _ => match ch {
                    '/' => "\\/".into(),
                    '&' => "&amp;".into(),
                    ' ' => "+".into(),
                    '"' => "&quot;".into(),
                    _ => format!("&#{code:05};"),
                },
            };
            out.push_str(&written);
        }
        out
    }

    #[test]
    fn each_form_is_found() {
        let secret = "s3cr3t/+=tok&en é😀";
        let matcher = Matcher::new(secret, Forms::Any, false);
        for form in 0..9 {
            let written = encode(secret, |_| form);
            let text = format!("before {written} after");
            assert_eq!(spans(&matcher, &text), [written], "form {form}");
        }
    }

    #[test]
    fn any_mix_of_forms_is_found_anywhere() {
        // Property-style: pseudo-random mixes of forms, at pseudo-random places, among noise that
        // looks like escapes.
        let secrets = ["a/b+c=d&e\"f\\g", "Tk_9.x~Q-long-token", "pässwört 😀 \t\n"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        for secret in secrets {
            let matcher = Matcher::new(secret, Forms::Any, false);
            for _ in 0..300 {
                let written = encode(secret, |_| next());
                let noise = ["\\\"", "%2", "&#", "&am", "\\u00", "+", "x"];
                let before = noise[next() % noise.len()];
                let after = noise[next() % noise.len()];
                let text = format!("{before}{written}{after}");
                let found = spans(&matcher, &text);
                assert_eq!(found.len(), 1, "{text}: {found:?}");
                assert!(found[0].contains(&written), "{text}: {found:?}");
            }
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        let matcher = Matcher::new("s3cr3t/token", Forms::Any, false);
        for text in [
            "s3cr3t/toke",
            "s3cr3t\\\\/token",
            "s3cr3t%2/token",
            "s3cr3t&#47x;token",
            "S3CR3T/TOKEN",
            "s3cr3t%252Ftoken",
            "s3cr3t&sol token",
            "",
        ] {
            assert!(spans(&matcher, text).is_empty(), "{text}");
        }
        let case = Matcher::new("s3cr3t/token", Forms::Any, true);
        assert_eq!(spans(&case, "x-S3CR3T%2ftoken"), ["S3CR3T%2ftoken"]);
    }

    #[test]
    fn percent_forms_only_for_urls() {
        let matcher = Matcher::new("{{secret:token}}", Forms::Percent, false);
        assert_eq!(
            spans(&matcher, "/a/%7B%7bsecret%3Atoken%7d%7D/{{secret:token}}?"),
            ["%7B%7bsecret%3Atoken%7d%7D", "{{secret:token}}"]
        );
        assert!(spans(&matcher, "&#123;{secret:token}}").is_empty());
    }

    #[test]
    fn matches_do_not_overlap_and_take_the_longest_reading() {
        let matcher = Matcher::new("aa", Forms::Any, false);
        assert_eq!(spans(&matcher, "aaaaa"), ["aa", "aa"]);
        let matcher = Matcher::new("a;", Forms::Any, false);
        assert_eq!(spans(&matcher, "&#97;;"), ["&#97;;"]);
        let matcher = Matcher::new("ab", Forms::Any, false);
        assert_eq!(spans(&matcher, "&#97;b &#97b &#x61b;"), ["&#97;b", "&#97b"]);
    }

    #[test]
    fn text_made_to_nearly_match_everywhere_costs_a_bounded_search_and_is_all_taken() {
        let secret = format!("{}X", "s".repeat(63));
        let matcher = Matcher::new(&secret, Forms::Any, false);
        let text = "s".repeat(1 << 20);
        let found = matcher.find_all(text.as_bytes());
        assert_eq!(found.len(), 1, "{found:?}");
        // From somewhere early on, the rest of the text is taken: nothing gets through unread.
        assert_eq!(found[0].end, text.len());
        assert!(found[0].start < text.len() / 2, "{found:?}");
        // Ordinary text full of escapes is searched in full, and only real matches are taken.
        let ordinary = format!(
            "{}{}{}",
            r#"{"url":"https:\/\/a.test\/x%20y","q":"a&amp;b"},"#.repeat(20_000),
            secret.replace('s', r"\u0073"),
            r#"{"url":"https:\/\/a.test\/"}"#
        );
        let found = matcher.find_all(ordinary.as_bytes());
        assert_eq!(found.len(), 1);
        assert!(found[0].end < ordinary.len());
    }

    #[test]
    fn broken_escapes_do_not_panic() {
        let matcher = Matcher::new("\u{1F600}x", Forms::Any, false);
        for text in [
            "\\ud83d",
            "\\ud83d\\u",
            "\\ud83dx",
            "\\ude00x",
            "%f0%9f",
            "%",
            "%f",
            "&#",
            "&#x",
            "&#99999999999999999999;",
            "&",
            "\\",
            "\u{e9}",
        ] {
            assert!(spans(&matcher, text).is_empty(), "{text}");
        }
        assert_eq!(
            spans(&matcher, "\\uD83D\\uDE00x %F0%9f%98%80x"),
            ["\\uD83D\\uDE00x", "%F0%9f%98%80x"]
        );
    }
}
