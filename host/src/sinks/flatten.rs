//! Turning a JSON object into flat `column -> cell` pairs for CSV.

use serde_json::Value;

/// Flattens `object` into (column, cell) pairs: nested objects become dotted keys (`a.b`), lists of
/// plain values are joined with commas, lists holding objects or lists stay JSON, `null` is empty.
pub fn flatten(object: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut cells = Vec::with_capacity(object.len());
    for (key, value) in object {
        push(key.clone(), value, &mut cells);
    }
    cells
}

fn push(key: String, value: &Value, cells: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, inner) in fields {
                push(format!("{key}.{name}"), inner, cells);
            }
        }
        other => cells.push((key, cell(other))),
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) if items.iter().all(is_plain) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        // Lists of objects and empty objects keep their structure rather than lose it.
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

fn is_plain(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// Calls `each` with the name of every column [`flatten`] would make of the JSON object `json`, in
/// the same order, without building the values: telling whether a record brings new columns costs
/// a scan rather than a parse into allocated values.
pub fn column_names(json: &str, mut each: impl FnMut(&str)) -> Result<(), serde_json::Error> {
    walk(json, false, |name, _| each(name))
}

/// Calls `each` with every (column, cell) pair [`flatten`] would make of the JSON object `json`, in
/// the same order: a CSV row is filled from one scan of its record, with no allocation for most
/// cells. A name that is in the record twice comes twice; the last one is what a parse keeps.
///
/// `json` is a record trawl has checked already, so this reads it without checking it again: a
/// plain string or a whole number is its own cell, and only the rare cell that differs from its
/// text (an escaped string, a fraction, a list) is parsed. Text whose structure breaks is refused,
/// in serde_json's words, and no text makes it panic; what it does not look for again (a control
/// byte in a string, say) is what the first check ruled out.
pub fn for_each_cell(json: &str, each: impl FnMut(&str, &str)) -> Result<(), serde_json::Error> {
    walk(json, true, each)
}

/// Walks the record `json`, making its cells only if `cells`: a walk for the names passes each
/// value's text as it is instead of decoding or parsing it.
fn walk(json: &str, cells: bool, each: impl FnMut(&str, &str)) -> Result<(), serde_json::Error> {
    let mut walk = Walk {
        text: json,
        at: 0,
        name: String::new(),
        depth: 0,
        cells,
        each,
    };
    walk.record().map_err(|Unreadable| not_an_object(json))
}

/// Why a record could not be read, in serde_json's words when it has some.
fn not_an_object(json: &str) -> serde_json::Error {
    // A parse into values, not `IgnoredAny`: its recursion limit names a record nested too deep,
    // which `IgnoredAny` reads without a limit.
    match serde_json::from_str::<Value>(json) {
        Err(error) => error,
        Ok(_) => <serde_json::Error as serde::de::Error>::custom("expected a JSON object"),
    }
}

/// The record's text is not what it should be; [`not_an_object`] says how.
struct Unreadable;

/// One pass over a JSON object's text, with the column name of the value being read in `name`.
struct Walk<'a, F> {
    text: &'a str,
    at: usize,
    name: String,
    /// Objects open around the one being read: the walk recurses into nested objects, and stops
    /// past the depth a record is checked for where it enters trawl rather than at the stack's
    /// end, whatever text it is given.
    depth: usize,
    /// Whether `each` wants the cells spelled, or only the names.
    cells: bool,
    each: F,
}

impl<'a, F: FnMut(&str, &str)> Walk<'a, F> {
    fn record(&mut self) -> Result<(), Unreadable> {
        self.skip_whitespace();
        self.expect(b'{')?;
        self.object(true)?;
        self.skip_whitespace();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(Unreadable)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Unreadable> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Unreadable)
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// The members of an object whose `{` was just read: the record itself (`top`), whose
    /// members are not prefixed and which has no column when empty, or a value in it, whose
    /// members are columns `name.key`.
    fn object(&mut self, top: bool) -> Result<(), Unreadable> {
        if self.depth >= crate::capabilities::responses::MAX_NESTING {
            return Err(Unreadable);
        }
        self.depth += 1;
        let read = self.members(top);
        self.depth -= 1;
        read
    }

    fn members(&mut self, top: bool) -> Result<(), Unreadable> {
        let base = self.name.len();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            if !top {
                (self.each)(&self.name, "{}");
            }
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            let key = self.string(true)?;
            if !top {
                self.name.push('.');
            }
            self.name.push_str(&key);
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            self.value()?;
            self.name.truncate(base);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Unreadable),
            }
        }
    }

    fn value(&mut self) -> Result<(), Unreadable> {
        match self.peek().ok_or(Unreadable)? {
            b'"' => {
                let text = self.string(self.cells)?;
                (self.each)(&self.name, &text);
            }
            b'{' => {
                self.at += 1;
                self.object(false)?;
            }
            b'[' => {
                // Lists are rare in records and their cell depends on all their items: parsed.
                let start = self.at;
                self.skip_nested()?;
                let text = &self.text[start..self.at];
                if self.cells {
                    let items: Value = serde_json::from_str(text).map_err(|_| Unreadable)?;
                    (self.each)(&self.name, &cell(&items));
                } else {
                    (self.each)(&self.name, text);
                }
            }
            b't' => self.word("true", "true")?,
            b'f' => self.word("false", "false")?,
            b'n' => self.word("null", "")?,
            _ => self.number()?,
        }
        Ok(())
    }

    fn word(&mut self, word: &str, cell: &str) -> Result<(), Unreadable> {
        if !self.text[self.at..].starts_with(word) {
            return Err(Unreadable);
        }
        self.at += word.len();
        (self.each)(&self.name, cell);
        Ok(())
    }

    /// A whole number without a sign that fits a `u64` is spelled as parsing and printing it
    /// would spell it; any other number is parsed, so that it is spelled as a parsed value would
    /// be (`1.50` as `1.5`, `1e3` as `1000.0`).
    fn number(&mut self) -> Result<(), Unreadable> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        let text = &self.text[start..self.at];
        const U64_DIGITS: usize = 19;
        let plain = !text.is_empty()
            && text.len() <= U64_DIGITS
            && text.bytes().all(|byte| byte.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        if plain || !self.cells {
            (self.each)(&self.name, text);
        } else {
            let number: Value = serde_json::from_str(text).map_err(|_| Unreadable)?;
            if !number.is_number() {
                return Err(Unreadable);
            }
            (self.each)(&self.name, &cell(&number));
        }
        Ok(())
    }

    /// A string at `at` (its opening quote): its own text when it has no escape, which is
    /// nearly always, or when it need not be `decode`d; decoded otherwise.
    fn string(&mut self, decode: bool) -> Result<std::borrow::Cow<'a, str>, Unreadable> {
        let text = self.text;
        let bytes = text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return Err(Unreadable);
        }
        let start = self.at;
        let mut at = start + 1;
        let mut escaped = false;
        loop {
            at = quote_or_backslash(bytes, at).ok_or(Unreadable)?;
            if bytes[at] == b'"' {
                break;
            }
            // The byte after a backslash is never the closing quote; `\uXXXX` has no quote.
            escaped = true;
            at += 2;
            if at > bytes.len() {
                return Err(Unreadable);
            }
        }
        self.at = at + 1;
        if escaped && decode {
            serde_json::from_str(&text[start..self.at])
                .map(std::borrow::Cow::Owned)
                .map_err(|_| Unreadable)
        } else {
            Ok(std::borrow::Cow::Borrowed(&text[start + 1..at]))
        }
    }

    /// Past the list or object at `at`, whatever it holds.
    fn skip_nested(&mut self) -> Result<(), Unreadable> {
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or(Unreadable)? {
                b'"' => {
                    self.string(false)?;
                    continue;
                }
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    depth = depth.checked_sub(1).ok_or(Unreadable)?;
                    if depth == 0 {
                        self.at += 1;
                        return Ok(());
                    }
                }
                // Outside strings, a JSON text is ASCII: stepping a byte at a time stays on
                // character boundaries.
                byte if !byte.is_ascii() => return Err(Unreadable),
                _ => {}
            }
            self.at += 1;
        }
    }
}

/// The first `"` or `\\` at or after `from`, eight bytes a step: most strings in records are
/// short, and for them a call into `memchr` cost more than the scan.
#[inline]
fn quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    /// The top bit of each byte of `word` that is `byte`; bits above the lowest may be false
    /// alarms, the lowest never is.
    fn bytes_equal(word: u64, byte: u8) -> u64 {
        let zero_where_equal = word ^ (ONES * u64::from(byte));
        zero_where_equal.wrapping_sub(ONES) & !zero_where_equal & HIGH_BITS
    }
    let rest = bytes.get(from..)?;
    let (words, tail) = rest.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return Some(from + i * 8 + (hits.trailing_zeros() / 8) as usize);
        }
    }
    let tail_start = from + words.len() * 8;
    tail.iter()
        .position(|&byte| byte == b'"' || byte == b'\\')
        .map(|i| tail_start + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use serde_json::json;

    #[test]
    fn a_walk_stops_at_the_depth_records_are_checked_for_rather_than_overflowing() {
        let depth = 100_000;
        let deep = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let error = for_each_cell(&deep, |_, _| {}).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
        assert!(column_names(&deep, |_| {}).is_err());
    }

    #[test]
    fn flattens_nested_objects_and_lists() {
        let value = json!({
            "id": 7,
            "name": "x",
            "missing": null,
            "flag": true,
            "nested": {"a": 1, "b": {"c": "deep"}},
            "ips": ["10.0.0.1", "10.0.0.2"],
            "objects": [{"k": 1}],
            "empty": {}
        });
        let cells = flatten(value.as_object().unwrap());
        let get = |key: &str| {
            cells
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, cell)| cell.as_str())
        };
        assert_eq!(get("id"), Some("7"));
        assert_eq!(get("missing"), Some(""));
        assert_eq!(get("flag"), Some("true"));
        assert_eq!(get("nested.a"), Some("1"));
        assert_eq!(get("nested.b.c"), Some("deep"));
        assert_eq!(get("ips"), Some("10.0.0.1,10.0.0.2"));
        assert_eq!(get("objects"), Some(r#"[{"k":1}]"#));
        assert_eq!(get("empty"), Some("{}"));
        assert_eq!(get("nested"), None);

        let mut names = Vec::new();
        column_names(&value.to_string(), |name| names.push(name.to_string())).unwrap();
        let expected: Vec<String> = cells.iter().map(|(name, _)| name.clone()).collect();
        assert_eq!(names, expected);

        let mut scanned = Vec::new();
        for_each_cell(&value.to_string(), |name, cell| {
            scanned.push((name.to_string(), cell.to_string()))
        })
        .unwrap();
        assert_eq!(scanned, cells);
    }

    #[test]
    fn cells_are_spelled_as_parsed_values_would_be() {
        let json = r#"{"big": 18446744073709551615, "bigger": 18446744073709551616, "neg": -42,
            "float": 1.50, "exp": 1e3, "tiny": 5e-324, "esc": "a\"b\u00e9", "mixed": [1, "x", null, true],
            "deep": [[1]], "e": {}, "n": null}"#;
        let value: Value = serde_json::from_str(json).unwrap();
        let mut scanned = Vec::new();
        for_each_cell(json, |name, cell| {
            scanned.push((name.to_string(), cell.to_string()))
        })
        .unwrap();
        let mut expected = flatten(value.as_object().unwrap());
        expected.sort();
        scanned.sort();
        assert_eq!(scanned, expected);
    }

    /// A generated value: strings of every kind of text and escape, numbers of every spelling,
    /// lists, nested objects (names unique in each, so that a parse keeps every member), and
    /// whitespace between tokens.
    fn generate(rng: &mut Rng, depth: usize, out: &mut String) {
        const TEXT: &[&str] = &[
            "",
            "a",
            "Hello, world",
            "é",
            "日本語",
            "😀",
            r#"\""#,
            r"\\",
            r"\n",
            r"\/",
            "/",
            r"\u00e9",
            r"\ud83d\ude00",
            r"\t tab",
            "a long run of plain text, as in a user agent",
        ];
        const NUMBERS: &[&str] = &[
            "0",
            "7",
            "-0",
            "-42",
            "1.50",
            "1e3",
            "-1.5E-2",
            "5e-324",
            "0.0",
            "10",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234567890",
        ];
        const NAMES: &[&str] = &["a", "b", "id", "é", r#"q\"uote"#, "user_agent", "x y"];
        let space = |rng: &mut Rng, out: &mut String| {
            out.push_str(rng.pick::<&str>(&["", "", "", " ", "\n", "\t", "\r\n  "]));
        };
        let kind = if depth >= 3 {
            rng.below(3)
        } else {
            rng.below(5)
        };
        match kind {
            0 => {
                out.push('"');
                for _ in 0..rng.below(3) {
                    out.push_str(rng.pick::<&str>(TEXT));
                }
                out.push('"');
            }
            1 => out.push_str(rng.pick::<&str>(NUMBERS)),
            2 => out.push_str(rng.pick::<&str>(&["true", "false", "null"])),
            3 => {
                out.push('[');
                for item in 0..rng.below(3) {
                    if item > 0 {
                        out.push(',');
                    }
                    space(rng, out);
                    generate(rng, depth + 1, out);
                    space(rng, out);
                }
                out.push(']');
            }
            _ => generate_object(rng, depth + 1, out, NAMES.len()),
        }

        fn generate_object(rng: &mut Rng, depth: usize, out: &mut String, most: usize) {
            let mut names = NAMES.to_vec();
            out.push('{');
            for member in 0..rng.below(most) {
                if member > 0 {
                    out.push(',');
                }
                let name = names.remove(rng.below(names.len()));
                out.push_str(&format!(
                    "{}\"{name}\"{}:",
                    rng.pick(&["", " "]),
                    rng.pick(&["", "\n"])
                ));
                generate(rng, depth, out);
            }
            out.push('}');
        }
    }

    fn scanned(json: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
        let mut cells = Vec::new();
        for_each_cell(json, |name, cell| {
            cells.push((name.to_string(), cell.to_string()))
        })?;
        Ok(cells)
    }

    #[test]
    fn generated_records_make_the_cells_their_parsed_values_make() {
        let mut rng = Rng(0x5eed_f1a7);
        for case in 0..5_000 {
            let mut json = String::new();
            generate_object_for_test(&mut rng, &mut json);
            let value: Value = serde_json::from_str(&json).unwrap();
            let mut got = scanned(&json).unwrap_or_else(|error| panic!("{json}: {error}"));
            let mut expected = flatten(value.as_object().unwrap());
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "case {case}: {json}");

            // Every part of a record is refused, never misread, and nothing makes the walk panic.
            for end in (0..json.len()).filter(|&end| json.is_char_boundary(end)) {
                assert!(scanned(&json[..end]).is_err(), "{:?}", &json[..end]);
            }
            let mut broken = json.clone().into_bytes();
            let at = rng.below(broken.len());
            broken[at] = *rng.pick(b"{}[]\",:\\ 0-.etx");
            if let Ok(broken) = String::from_utf8(broken) {
                let parsed = serde_json::from_str::<serde_json::Map<String, Value>>(&broken);
                let walked = scanned(&broken);
                if parsed.is_ok() {
                    assert!(walked.is_ok(), "{broken}");
                }
            }
        }

        fn generate_object_for_test(rng: &mut Rng, out: &mut String) {
            out.push_str(rng.pick::<&str>(&["", " ", "\n"]));
            // The top level is an object, whatever `generate` would pick.
            let mut inner = String::new();
            while !inner.starts_with('{') {
                inner.clear();
                generate(rng, 0, &mut inner);
            }
            out.push_str(&inner);
        }
    }

    #[test]
    fn a_name_twice_comes_twice_and_broken_text_gets_serde_json_words() {
        assert_eq!(
            scanned(r#"{"a":"1","b":2,"a":"3"}"#).unwrap(),
            [("a", "1"), ("b", "2"), ("a", "3")].map(|(n, c)| (n.to_string(), c.to_string()))
        );
        let error = scanned(r#"{"a": [1, 2}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            serde_json::from_str::<Value>(r#"{"a": [1, 2}"#)
                .unwrap_err()
                .to_string()
        );
        assert_eq!(
            scanned("[1]").unwrap_err().to_string(),
            "expected a JSON object"
        );
    }

    #[test]
    fn column_names_of_awkward_records() {
        let names = |json: &str| {
            let mut names = Vec::new();
            column_names(json, |name| names.push(name.to_string())).map(|()| names)
        };
        assert_eq!(names("{}").unwrap(), Vec::<String>::new());
        assert_eq!(
            names(r#"{"a\"b": {"c": {}}, "d": [{"e": 1}], "f": -1.5}"#).unwrap(),
            ["a\"b.c", "d", "f"]
        );
        assert!(names(r#"{"a": 1"#).is_err());
        assert!(names(r#"{"a": 1} x"#).is_err());
    }
}
