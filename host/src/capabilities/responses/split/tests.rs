//! The page reader against serde_json: generated pages, mutated and broken ones, and the
//! edges of UTF-8, nesting and member names.

use super::*;
use crate::test_rng::Rng;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

// ---- serde_json's reading of a body, with each object's members in order, duplicates kept.

#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    List(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Unsigned(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Signed(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Text(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Tree>()? {
            members.push(member);
        }
        Ok(Tree::Map(members))
    }
}

/// What a page of `shape` holds, by serde_json's reading (`Err` when the JSON is fine but
/// the shape is not).
struct Model {
    records: Option<Vec<Tree>>,
    picked: Vec<Option<Tree>>,
    members: Vec<Option<Tree>>,
}

fn once<'t>(members: &'t [(String, Tree)], name: &str) -> Result<Option<&'t Tree>, ()> {
    let mut found = members
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, v)| v);
    let first = found.next();
    if found.next().is_some() {
        return Err(());
    }
    Ok(first)
}

fn model(tree: Tree, shape: &Shape<'_>) -> Result<Model, ()> {
    let (list, members) = if shape.records.is_empty() {
        (Some(tree), vec![None; shape.members.len()])
    } else {
        let Tree::Map(page) = tree else {
            return Err(());
        };
        once(&page, shape.records)?;
        let mut members = Vec::new();
        for name in shape.members {
            members.push(once(&page, name)?.cloned());
        }
        let list = page.into_iter().find(|(key, _)| key == shape.records);
        (list.map(|(_, list)| list), members)
    };
    let records = match list {
        None | Some(Tree::Null) if !shape.records.is_empty() => None,
        Some(Tree::List(records)) => Some(records),
        _ => return Err(()),
    };
    let mut picked = Vec::new();
    for record in records.iter().flatten() {
        let Tree::Map(fields) = record else {
            return Err(());
        };
        for name in shape.picked {
            picked.push(once(fields, name)?.cloned());
        }
    }
    Ok(Model {
        records,
        picked,
        members,
    })
}

/// Checks that `range` is exactly one JSON value (by serde_json's reading) equal to `want`.
fn assert_value(body: &[u8], range: &Range<usize>, want: &Tree, what: &str) {
    let text = &body[range.clone()];
    let got: Tree = serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("{what}: {e} in {:?}", String::from_utf8_lossy(text)));
    assert_eq!(&got, want, "{what}");
    let mut stream =
        serde_json::Deserializer::from_slice(&body[range.start..]).into_iter::<IgnoredAny>();
    assert!(matches!(stream.next(), Some(Ok(_))), "{what}");
    assert_eq!(stream.byte_offset(), range.len(), "{what}: the value's end");
}

fn assert_slots(body: &[u8], got: &[Option<Range<usize>>], want: &[Option<Tree>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (got, want)) in got.iter().zip(want).enumerate() {
        match (got, want) {
            (None, None) => {}
            (Some(range), Some(want)) => assert_value(body, range, want, &format!("{what} {i}")),
            _ => panic!("{what} {i}: found {got:?}, serde_json finds {want:?}"),
        }
    }
}

fn assert_agrees(body: &[u8], page: &SplitPage, model: &Model) {
    match (&page.records, &model.records) {
        (None, None) => {}
        (Some(got), Some(want)) => {
            assert_eq!(got.len(), want.len(), "the number of records");
            let mut end = 0;
            for (i, (range, want)) in got.iter().zip(want).enumerate() {
                assert!(range.start >= end, "records in order");
                end = range.end;
                assert_eq!(body[range.start], b'{');
                assert_value(body, range, want, &format!("record {i}"));
            }
        }
        (got, want) => panic!("records: found {got:?}, serde_json finds {want:?}"),
    }
    assert_slots(body, &ranges(&page.picked), &model.picked, "picked");
    assert_slots(body, &page.members, &model.members, "member");
}

// ---- Generated pages.

/// Bits of string text, as written inside quotes.
const PIECES: &[&str] = &[
    "a",
    "id",
    "time",
    "Hello, world",
    "é",
    "日本語",
    "😀",
    "\\u00e9",
    "\\u00E9",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "\\ud83d\\ude00",
    "\\u0041",
    "{\\\"id\\\":1}",
    ":",
    ",",
    "[]{}",
    " ",
    "\u{7f}",
    "0123456789abcdefghijklmnopqrstuvwxyz",
    "\\n\\n",
];
const OTHER_FIELDS: &[&str] = &[
    "name", "kind", "i", "idd", "ID", "Id", "times", "x", "ti\\me", "data", "",
];
const OTHER_MEMBERS: &[&str] = &["total", "links", "id", "has_more", "next", "datas", "x"];

#[derive(Clone, Copy)]
enum Val {
    Any,
    /// An object or array holding members named like picked ones, which must not count.
    Decoy,
    Records,
    Null,
}

struct Gen {
    rng: Rng,
    out: Vec<u8>,
    /// 0 compact, 1 spaces, 2 pretty, 3 anything.
    spacing: u8,
    lone_surrogates: bool,
    picked_names: Vec<String>,
    records: Vec<Range<usize>>,
    picked: Vec<Option<Range<usize>>>,
}

impl Gen {
    fn new(seed: u64, picked_names: &[String]) -> Gen {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let spacing = rng.below(4) as u8;
        Gen {
            rng,
            out: Vec::new(),
            spacing,
            lone_surrogates: false,
            picked_names: picked_names.to_vec(),
            records: Vec::new(),
            picked: Vec::new(),
        }
    }

    fn ws(&mut self) {
        const SPACES: [&[&str]; 4] = [
            &[""],
            &["", " "],
            &["\n", "\n  ", " ", "\r\n", ""],
            &["", "", " ", "\t", "\n", "\r\n", "  \n\t", "\r"],
        ];
        let space = *self.rng.pick(SPACES[usize::from(self.spacing)]);
        self.out.extend_from_slice(space.as_bytes());
    }

    fn push(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn string(&mut self) {
        self.out.push(b'"');
        let count = if self.rng.chance(5) {
            40 + self.rng.below(40)
        } else {
            self.rng.below(6)
        };
        for _ in 0..count {
            if self.lone_surrogates && self.rng.chance(5) {
                let lone = *self.rng.pick(&["\\ud800", "\\udfff", "\\uDC00x"]);
                self.push(lone);
            } else {
                let piece = *self.rng.pick(PIECES);
                self.push(piece);
            }
        }
        self.out.push(b'"');
    }

    /// `name`, quoted, sometimes with one character written as a `\u` escape.
    fn name(&mut self, name: &str) {
        if name.is_empty() || !self.rng.chance(20) {
            let quoted = serde_json::to_string(name).unwrap();
            self.push(&quoted);
            return;
        }
        let k = self.rng.below(name.chars().count());
        self.out.push(b'"');
        for (i, c) in name.chars().enumerate() {
            if i == k {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let escape = if self.rng.chance(50) {
                        format!("\\u{unit:04x}")
                    } else {
                        format!("\\u{unit:04X}")
                    };
                    self.push(&escape);
                }
            } else if c == '"' || c == '\\' {
                self.out.push(b'\\');
                self.out.push(c as u8);
            } else {
                self.push(c.encode_utf8(&mut [0; 4]));
            }
        }
        self.out.push(b'"');
    }

    fn digits(&mut self, count: usize) {
        for _ in 0..count {
            let digit = b'0' + self.rng.below(10) as u8;
            self.out.push(digit);
        }
    }

    fn number(&mut self) {
        if self.rng.chance(30) {
            self.out.push(b'-');
        }
        if self.rng.chance(25) {
            self.out.push(b'0');
        } else {
            let digit = b'1' + self.rng.below(9) as u8;
            self.out.push(digit);
            let more = if self.rng.chance(10) {
                22
            } else {
                self.rng.below(8)
            };
            self.digits(more);
        }
        if self.rng.chance(35) {
            self.out.push(b'.');
            let count = 1 + self.rng.below(6);
            self.digits(count);
        }
        if self.rng.chance(25) {
            let e = *self.rng.pick(&["e", "E", "e+", "e-", "E+", "E-"]);
            self.push(e);
            let count = 1 + self.rng.below(2);
            self.digits(count);
        }
    }

    fn value(&mut self, depth: usize) {
        let roll = self.rng.below(100);
        match roll {
            _ if depth >= 5 || roll < 30 => {
                if self.rng.chance(50) {
                    self.string()
                } else {
                    self.number()
                }
            }
            30..45 => {
                let literal = *self.rng.pick(&["true", "false", "null"]);
                self.push(literal);
            }
            45..70 => {
                self.out.push(b'[');
                self.ws();
                for i in 0..self.rng.below(4) {
                    if i > 0 {
                        self.out.push(b',');
                        self.ws();
                    }
                    self.value(depth + 1);
                    self.ws();
                }
                self.out.push(b']');
            }
            _ => {
                let count = self.rng.below(4);
                let members: Vec<(String, Val)> = (0..count)
                    .map(|_| (self.rng.pick(OTHER_FIELDS).to_string(), Val::Any))
                    .collect();
                self.object(&members, depth + 1);
            }
        }
    }

    /// An object of `members` (names unescaped); the range of each one's value.
    fn object(&mut self, members: &[(String, Val)], depth: usize) -> Vec<Range<usize>> {
        let mut ranges = Vec::new();
        self.out.push(b'{');
        self.ws();
        for (i, (name, val)) in members.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
                self.ws();
            }
            self.name(name);
            self.ws();
            self.out.push(b':');
            self.ws();
            let start = self.out.len();
            match val {
                Val::Any => self.value(depth),
                Val::Decoy => self.decoy(depth),
                Val::Records => self.records(depth),
                Val::Null => self.push("null"),
            }
            ranges.push(start..self.out.len());
            self.ws();
        }
        self.out.push(b'}');
        ranges
    }

    fn decoy(&mut self, depth: usize) {
        let mut members: Vec<(String, Val)> = self
            .picked_names
            .clone()
            .into_iter()
            .map(|name| (name, Val::Any))
            .collect();
        members.push(("data".to_owned(), Val::Any));
        members.push(("cursor".to_owned(), Val::Any));
        if self.rng.chance(50) {
            self.object(&members, depth + 1);
        } else {
            self.out.push(b'[');
            self.object(&members, depth + 2);
            self.out.push(b']');
        }
    }

    fn records(&mut self, depth: usize) {
        self.out.push(b'[');
        self.ws();
        let count = if self.rng.chance(10) {
            0
        } else {
            1 + self.rng.below(5)
        };
        for i in 0..count {
            if i > 0 {
                self.out.push(b',');
                self.ws();
            }
            self.record(depth + 1);
            self.ws();
        }
        self.out.push(b']');
    }

    fn record(&mut self, depth: usize) {
        let mut members: Vec<(String, Val)> = Vec::new();
        for (i, name) in self.picked_names.clone().into_iter().enumerate() {
            if !self.picked_names[..i].contains(&name) && self.rng.chance(70) {
                members.push((name, Val::Any));
            }
        }
        for _ in 0..self.rng.below(5) {
            let name = self.rng.pick(OTHER_FIELDS).to_string();
            if self.picked_names.contains(&name) {
                continue;
            }
            let val = if self.rng.chance(30) {
                Val::Decoy
            } else {
                Val::Any
            };
            members.push((name, val));
        }
        self.shuffle(&mut members);
        let start = self.out.len();
        let ranges = self.object(&members, depth);
        self.records.push(start..self.out.len());
        for name in self.picked_names.clone() {
            let found = members.iter().position(|(other, _)| *other == name);
            self.picked.push(found.map(|i| ranges[i].clone()));
        }
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.rng.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// What a generated page must split into.
struct Expected {
    records: Option<Vec<Range<usize>>>,
    picked: Vec<Option<Range<usize>>>,
    members: Vec<Option<Range<usize>>>,
}

fn generate(seed: u64, shape: &Shape<'_>, lone_surrogates: bool) -> (Vec<u8>, Expected) {
    let mut g = Gen::new(seed, shape.picked);
    g.lone_surrogates = lone_surrogates;
    g.ws();
    let expected = if shape.records.is_empty() {
        g.records(0);
        Expected {
            records: Some(g.records.clone()),
            picked: g.picked.clone(),
            members: vec![None; shape.members.len()],
        }
    } else {
        let mut members: Vec<(String, Val)> = Vec::new();
        let records = match g.rng.below(10) {
            0 => None,
            1 => Some(Val::Null),
            _ => Some(Val::Records),
        };
        if let Some(val) = records {
            members.push((shape.records.to_owned(), val));
        }
        for name in ["cursor", "meta"] {
            if g.rng.chance(50) && !members.iter().any(|(other, _)| other == name) {
                let val = if name == "meta" { Val::Decoy } else { Val::Any };
                members.push((name.to_owned(), val));
            }
        }
        for _ in 0..g.rng.below(3) {
            let name = g.rng.pick(OTHER_MEMBERS).to_string();
            if name != shape.records && !shape.members.contains(&name) {
                members.push((name, Val::Any));
            }
        }
        g.shuffle(&mut members);
        let ranges = g.object(&members, 0);
        let listed = matches!(records, Some(Val::Records));
        Expected {
            records: listed.then(|| g.records.clone()),
            picked: if listed { g.picked.clone() } else { Vec::new() },
            members: shape
                .members
                .iter()
                .map(|name| {
                    let found = members.iter().position(|(other, _)| other == name);
                    found.map(|i| ranges[i].clone())
                })
                .collect(),
        }
    };
    g.ws();
    (g.out, expected)
}

struct Shapes {
    records: &'static str,
    picked: Vec<String>,
    members: Vec<String>,
}

impl Shapes {
    fn shape(&self) -> Shape<'_> {
        Shape {
            records: self.records,
            picked: &self.picked,
            members: &self.members,
        }
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn shapes() -> Vec<Shapes> {
    vec![
        Shapes {
            records: "data",
            picked: strings(&["id", "time"]),
            members: strings(&["cursor", "meta"]),
        },
        Shapes {
            records: "items",
            picked: Vec::new(),
            members: Vec::new(),
        },
        Shapes {
            records: "data",
            picked: strings(&["id", "naïve \"q\"", "id"]),
            members: strings(&["data", "cursor"]),
        },
        Shapes {
            records: "",
            picked: strings(&["time", "id"]),
            members: strings(&["cursor"]),
        },
        Shapes {
            records: "dat\\a",
            picked: strings(&["ti\\me"]),
            members: strings(&["meta"]),
        },
    ]
}

#[test]
fn generated_pages_split_as_serde_json_reads_them() {
    let shapes = shapes();
    for seed in 0..2_000u64 {
        let shapes = &shapes[seed as usize % shapes.len()];
        let shape = shapes.shape();
        let (body, expected) = generate(seed, &shape, false);
        let text = String::from_utf8_lossy(&body);
        assert!(
            serde_json::from_slice::<IgnoredAny>(&body).is_ok(),
            "{text}"
        );
        let page = split_page(&body, &shape).unwrap_or_else(|e| panic!("{e} in {text}"));
        assert_eq!(page.records, expected.records, "{text}");
        assert_eq!(ranges(&page.picked), expected.picked, "{text}");
        assert_eq!(page.members, expected.members, "{text}");
        let tree = serde_json::from_slice::<Tree>(&body).unwrap();
        let model = model(tree, &shape).unwrap_or_else(|()| panic!("not a page: {text}"));
        assert_agrees(&body, &page, &model);
    }
}

#[test]
fn lone_surrogates_pass_as_serde_json_lets_them() {
    let shapes = shapes();
    let mut lone = 0;
    for seed in 0..500u64 {
        let shapes = &shapes[seed as usize % shapes.len()];
        let shape = shapes.shape();
        let (body, expected) = generate(seed, &shape, true);
        let text = String::from_utf8_lossy(&body);
        assert!(
            serde_json::from_slice::<IgnoredAny>(&body).is_ok(),
            "{text}"
        );
        let page = split_page(&body, &shape).unwrap_or_else(|e| panic!("{e} in {text}"));
        assert_eq!(page.records, expected.records, "{text}");
        assert_eq!(ranges(&page.picked), expected.picked, "{text}");
        assert_eq!(page.members, expected.members, "{text}");
        lone += usize::from(serde_json::from_slice::<Tree>(&body).is_err());
    }
    assert!(lone > 50, "{lone}");
}

/// Shape errors: the JSON is fine, the page is not.
const SHAPE_ERRORS: &[&str] = &[
    "`{` opening the page's object",
    "`[` opening the list of records",
    "`[` opening the list of records, or `null`",
    "`{` opening a record",
    "the list of records once",
    "each member once",
    "each picked member once",
];

/// One byte replaced, inserted or removed, or the body cut short.
fn corrupt_bytes(rng: &mut Rng, page: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut body = page.to_vec();
    let at = rng.below(body.len() + 1);
    match rng.below(4) {
        0 => body.truncate(at),
        1 => body.insert(at, *rng.pick(bytes)),
        2 if at < body.len() => {
            body.remove(at);
        }
        _ if at < body.len() => body[at] = *rng.pick(bytes),
        _ => body.push(*rng.pick(bytes)),
    }
    body
}

/// Valid JSON, but maybe not a page of `shape`: a record that is not an object, a member that
/// may now be there twice, or the whole page wrapped in an array.
fn corrupt_shape(rng: &mut Rng, page: &[u8], expected: &Expected, shape: &Shape<'_>) -> Vec<u8> {
    let splice = |range: Range<usize>, with: &[u8]| {
        let mut body = page[..range.start].to_vec();
        body.extend_from_slice(with);
        body.extend_from_slice(&page[range.end..]);
        body
    };
    let records = expected.records.as_deref().unwrap_or_default();
    let open = page
        .iter()
        .position(|&b| b == b'{' || b == b'[')
        .unwrap_or(0)
        + 1;
    match rng.below(5) {
        0 if !records.is_empty() => {
            let record = rng.pick(records).clone();
            let with = *rng.pick(&["[]", "1", "\"x\"", "null", "[{}]"]);
            splice(record, with.as_bytes())
        }
        1 if !records.is_empty() && !shape.picked.is_empty() => {
            let at = rng.pick(records).start + 1;
            let name = rng.pick(shape.picked);
            let member = format!("{}:0,", serde_json::to_string(name).unwrap());
            splice(at..at, member.as_bytes())
        }
        2 if !shape.records.is_empty() => {
            let name = if rng.chance(50) || shape.members.is_empty() {
                shape.records
            } else {
                rng.pick(shape.members)
            };
            let value = rng.pick(&["null", "[]", "[{}]", "1"]);
            let member = format!("{}:{value},", serde_json::to_string(name).unwrap());
            splice(open..open, member.as_bytes())
        }
        3 => {
            let mut body = b"[".to_vec();
            body.extend_from_slice(page);
            body.push(b']');
            body
        }
        _ => {
            let with = *rng.pick(&["[]", "{}", "null", "[{}]", " 1 "]);
            splice(0..page.len(), with.as_bytes())
        }
    }
}

#[test]
fn corrupt_pages_fail_exactly_where_serde_json_fails() {
    const BYTES: &[u8] =
        b"{}[],:\"\\ \n\t\r0123456789-+.eEtrufalsn/abxu\x00\x01\x1f\x7f\xff\xc3\xa9\xe6\x80";
    let shapes = shapes();
    let mut outcomes = [0usize; 4];
    for seed in 0..2_000u64 {
        let shapes = &shapes[seed as usize % shapes.len()];
        let shape = shapes.shape();
        let (page, expected) = generate(seed, &shape, seed % 3 == 0);
        let mut rng = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        for round in 0..6 {
            let body = if round < 4 {
                corrupt_bytes(&mut rng, &page, BYTES)
            } else {
                corrupt_shape(&mut rng, &page, &expected, &shape)
            };
            let text = String::from_utf8_lossy(&body);
            let json = serde_json::from_slice::<IgnoredAny>(&body).is_ok();
            let utf8 = std::str::from_utf8(&body).map_err(|e| e.valid_up_to());
            let result = split_page(&body, &shape);
            if let Err(error) = &result
                && error.expected == "UTF-8 text"
            {
                assert_eq!(utf8, Err(error.offset), "{text}");
            }
            if !json || utf8.is_err() {
                let Err(error) = &result else {
                    panic!("accepted {text}");
                };
                if let Err(serde) = serde_json::from_slice::<IgnoredAny>(&body) {
                    assert_blames_like_serde_json(&body, error, &serde);
                }
                outcomes[0] += 1;
                continue;
            }
            let Ok(tree) = serde_json::from_slice::<Tree>(&body) else {
                // Fine JSON that serde_json cannot make strings of: a lone surrogate.
                if let Err(error) = &result {
                    assert!(SHAPE_ERRORS.contains(&error.expected), "{error} in {text}");
                }
                outcomes[1] += 1;
                continue;
            };
            match (result, model(tree, &shape)) {
                (Ok(page), Ok(model)) => {
                    assert_agrees(&body, &page, &model);
                    outcomes[2] += 1;
                }
                (Err(error), Err(())) => {
                    assert!(SHAPE_ERRORS.contains(&error.expected), "{error} in {text}");
                    outcomes[3] += 1;
                }
                (Ok(_), Err(())) => panic!("accepted a page of another shape: {text}"),
                (Err(error), Ok(_)) => panic!("{error} in {text}"),
            }
        }
    }
    assert!(outcomes.iter().all(|&count| count > 20), "{outcomes:?}");
}

/// Checks that `error` blames the byte serde_json blames, give or take its habits.
fn assert_blames_like_serde_json(body: &[u8], error: &SplitError, serde: &serde_json::Error) {
    // serde_json's column, as an offset: one past the byte it blames, mostly.
    let line = body
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(serde.line().wrapping_sub(2))
        .map_or(0, |(at, _)| at + 1);
    let serde_at = line + serde.column();
    let agree = match error.expected {
        // It blames the byte before a control character, and the end of a `\u` escape.
        CONTROL => serde_at == error.offset,
        "a hexadecimal digit" => serde_at >= error.offset,
        // It reads no UTF-8 in strings; and a record that is not an object is refused here
        // before anything after it.
        "UTF-8 text" => serde_at > error.offset,
        expected if SHAPE_ERRORS.contains(&expected) => serde_at >= error.offset,
        // It blames the last byte at the end of the body.
        _ if error.offset == body.len() => serde_at == error.offset,
        _ => serde_at == error.offset + 1,
    };
    let text = String::from_utf8_lossy(body);
    assert!(agree, "{text}: {error} / {serde}");
}

#[test]
fn random_fragments_are_json_exactly_when_serde_json_says_so() {
    const ALPHABET: &[&str] = &[
        "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\n", "0", "1", "9", "-", "+", ".", "e",
        "E", "true", "false", "null", "tru", "nul", "\"a\"", "\\u00e9", "\\ud800", "\\u12", "\\n",
        "\\x", "é", "\t", "\u{1}", "x", "\"k\":",
    ];
    let shape = Shapes {
        records: "",
        picked: strings(&["k"]),
        members: Vec::new(),
    };
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut valid = 0;
    for _ in 0..30_000 {
        let mut body = b"[{\"a\":".to_vec();
        for _ in 0..rng.below(12) {
            body.extend_from_slice(rng.pick(ALPHABET).as_bytes());
        }
        body.extend_from_slice(b"}]");
        let text = String::from_utf8_lossy(&body);
        let serde = serde_json::from_slice::<IgnoredAny>(&body);
        let result = split_page(&body, &shape.shape());
        assert_eq!(result.is_ok(), serde.is_ok(), "{text}: {result:?}");
        valid += usize::from(result.is_ok());
        let (Err(error), Err(serde)) = (result, serde) else {
            continue;
        };
        assert_blames_like_serde_json(&body, &error, &serde);
    }
    assert!(valid > 500, "{valid}");
}

fn page_shape() -> Shapes {
    Shapes {
        records: "data",
        picked: strings(&["id", "time"]),
        members: strings(&["cursor"]),
    }
}

fn array_shape() -> Shapes {
    Shapes {
        records: "",
        picked: strings(&["id"]),
        members: strings(&["cursor"]),
    }
}

#[test]
fn broken_bodies_fail_at_the_offending_byte() {
    let page = page_shape();
    let array = array_shape();
    let cases: &[(&Shapes, &[u8], usize, &str, &str)] = &[
        (
            &page,
            b"",
            0,
            "`{` opening the page's object",
            "the end of the body",
        ),
        (
            &page,
            b" \n",
            2,
            "`{` opening the page's object",
            "the end of the body",
        ),
        (&page, b"[{}]", 0, "`{` opening the page's object", "`[`"),
        (
            &page,
            b"\xef\xbb\xbf{}",
            0,
            "`{` opening the page's object",
            "a character outside ASCII",
        ),
        (
            &page,
            b"{\"data\":[{\"id\":\"ab",
            18,
            "`\"` closing the string",
            "the end of the body",
        ),
        (
            &page,
            b"{\"data\":[{\"id\":12",
            17,
            "`,` or `}`",
            "the end of the body",
        ),
        (
            &page,
            b"{\"data\":[{\"id\":1.",
            17,
            "a digit after the decimal point",
            "the end of the body",
        ),
        (
            &array,
            b"[{\"a\":1e+",
            9,
            "a digit in the exponent",
            "the end of the body",
        ),
        (&array, b"[{\"a\":1e}]", 8, "a digit in the exponent", "`}`"),
        (
            &page,
            b"{\"data\":[{\"id\":1},",
            18,
            "`{` opening a record",
            "the end of the body",
        ),
        (
            &page,
            b"{\"a\":1,",
            7,
            "a member's name",
            "the end of the body",
        ),
        (&page, b"{\"a\":[1,", 8, "a value", "the end of the body"),
        (&page, b"{\"a\":[1,]}", 8, "a value", "`]`"),
        (&page, b"{\"a\":[,]}", 6, "a value or `]`", "`,`"),
        (&page, b"{\"a\":{,}}", 6, "a member's name or `}`", "`,`"),
        (&page, b"{\"a\":{\"b\" 1}}", 10, "`:`", "`1`"),
        (
            &page,
            b"{\"a\":{\"b\":1 \"c\":2}}",
            12,
            "`,` or `}`",
            "`\"`",
        ),
        (&page, b"{\"a\":[1 2]}", 8, "`,` or `]`", "`2`"),
        (&page, b"{\"a\":[1}", 7, "`,` or `]`", "`}`"),
        (&page, b"{\"a\":\"x\\qy\"}", 8, ESCAPE, "`q`"),
        (
            &page,
            b"{\"a\":\"\\u12g4\"}",
            10,
            "a hexadecimal digit",
            "`g`",
        ),
        (
            &page,
            b"{\"a\":\"\\u12",
            10,
            "a hexadecimal digit",
            "the end of the body",
        ),
        (&page, b"{\"a\":\"x\ty\"}", 7, CONTROL, "a tab"),
        (&page, b"{\"a\":\"x\ny\"}", 7, CONTROL, "a line feed"),
        (
            &page,
            b"{\"a\":\"x\x01y\"}",
            7,
            CONTROL,
            "the control character U+0001",
        ),
        (
            &page,
            b"{\"a\":01}",
            6,
            "no digit after a leading `0`",
            "`1`",
        ),
        (
            &page,
            b"{\"a\":-01}",
            7,
            "no digit after a leading `0`",
            "`1`",
        ),
        (
            &page,
            b"{\"a\":1.}",
            7,
            "a digit after the decimal point",
            "`}`",
        ),
        (&page, b"{\"a\":.5}", 5, "a value", "`.`"),
        (&page, b"{\"a\":+1}", 5, "a value", "`+`"),
        (&page, b"{\"a\":-}", 6, "a digit", "`}`"),
        (&page, b"{\"a\":-", 6, "a digit", "the end of the body"),
        (&page, b"{\"a\":tru}", 8, "`true`", "`}`"),
        (&page, b"{\"a\":nul", 8, "`null`", "the end of the body"),
        (&page, b"{\"a\":fals3}", 9, "`false`", "`3`"),
        (&page, b"{\"data\":[]} x", 12, "the end of the body", "`x`"),
        (&page, b"{} {}", 3, "the end of the body", "`{`"),
        (
            &page,
            b"{\"data\":[{},[1]]}",
            12,
            "`{` opening a record",
            "`[`",
        ),
        (&page, b"{\"data\":[1]}", 9, "`{` opening a record", "`1`"),
        (
            &page,
            b"{\"data\":{}}",
            8,
            "`[` opening the list of records, or `null`",
            "`{`",
        ),
        (&page, b"{\"data\":nulL}", 11, "`null`", "`L`"),
        (
            &page,
            b"{\"data\":[],\"data\":[]}",
            11,
            "the list of records once",
            "`\"`",
        ),
        (
            &page,
            b"{\"data\":null,\"d\\u0061ta\":x}",
            13,
            "the list of records once",
            "`\"`",
        ),
        (
            &page,
            b"{\"cursor\":1,\"cursor\":2}",
            12,
            "each member once",
            "`\"`",
        ),
        (
            &page,
            b"{\"data\":[{\"id\":1,\"id\":2}]}",
            17,
            "each picked member once",
            "`\"`",
        ),
        (
            &page,
            b"{\"data\":[{\"id\":1,\"\\u0069d\":x}]}",
            17,
            "each picked member once",
            "`\"`",
        ),
        (
            &array,
            b"{\"data\":[]}",
            0,
            "`[` opening the list of records",
            "`{`",
        ),
        (&array, b"[{},{}]]", 7, "the end of the body", "`]`"),
        (&array, b"[{}, 2]", 5, "`{` opening a record", "`2`"),
        (
            &page,
            b"{\"a\":\"\xff\"}",
            6,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\"\xc3\xa9\xc3\"}",
            8,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\"\xc3",
            6,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\"\xc3\x01",
            6,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (&page, b"{\"a\":\"\xc3\xa9\\x\"}", 9, ESCAPE, "`x`"),
        (
            &page,
            b"{\"a\":\"\\\xff\"}",
            7,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\xff}",
            5,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\"\xed\xa0\x80\"}",
            6,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
        (
            &page,
            b"{\"a\":\xc3\xa9}",
            5,
            "a value",
            "a character outside ASCII",
        ),
        (&page, b"{\"a\":x\"\xff\"}", 5, "a value", "`x`"),
        (
            &page,
            b"{\"a\":\xc3\xa9\xff}",
            5,
            "a value",
            "a character outside ASCII",
        ),
        (
            &page,
            b"{\"a\":\"\xc3\xa9\xe6\x97\xa5\xe6\x97\"}",
            11,
            "UTF-8 text",
            "a byte sequence that is not UTF-8",
        ),
    ];
    for &(shapes, body, offset, expected, found) in cases {
        let text = String::from_utf8_lossy(body);
        let error = split_page(body, &shapes.shape()).expect_err(&text);
        let want = SplitError {
            offset,
            expected,
            found: found.to_owned(),
        };
        assert_eq!(error, want, "{text}");
        // Whatever the shape, the JSON itself is broken here unless the error says otherwise.
        if !SHAPE_ERRORS.contains(&expected) {
            let json = serde_json::from_slice::<IgnoredAny>(body).is_ok();
            assert!(!json || std::str::from_utf8(body).is_err(), "{text}");
        }
    }
    let error = split_page(b"{\"a\":tru}", &page.shape()).unwrap_err();
    assert_eq!(error.to_string(), "expected `true` at byte 8, found `}`");
}

#[test]
fn text_outside_ascii_is_checked_as_std_checks_it() {
    let shape = array_shape();
    let all: Vec<u8> = (0..=0xFF).collect();
    let some: &[u8] = &[
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4,
    ];
    let mut bodies = 0;
    for lead in 0x80..=0xFFu8 {
        // Every second byte, and the bytes after where a lead byte wants them.
        let seconds = if lead < 0xF0 { &all[..] } else { some };
        let thirds = if lead < 0xE0 { &[b'x'][..] } else { some };
        let fourths = if lead < 0xF0 { &[b'x'][..] } else { some };
        for &second in seconds {
            for &third in thirds {
                for &fourth in fourths {
                    let text = [lead, second, third, fourth, b'x', 0xC3, 0xA9];
                    for end in [1, 2, 3, 4, 7] {
                        let mut body = b"[{\"a\":\"\xc3\xa9".to_vec();
                        let start = body.len();
                        body.extend_from_slice(&text[..end]);
                        body.extend_from_slice(b"\"}]");
                        let result = split_page(&body, &shape.shape());
                        // Where the string's text stops being plain text, if it does.
                        let syntax = text[..end]
                            .iter()
                            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                            .map_or(usize::MAX, |at| start + at);
                        match std::str::from_utf8(&body) {
                            Err(error) if error.valid_up_to() < syntax => {
                                let error = SplitError {
                                    offset: error.valid_up_to(),
                                    expected: "UTF-8 text",
                                    found: "a byte sequence that is not UTF-8".to_owned(),
                                };
                                assert_eq!(result, Err(error), "{body:x?}");
                            }
                            Ok(_) if syntax == usize::MAX => {
                                assert!(result.is_ok(), "{body:x?}");
                            }
                            _ => assert!(result.is_err(), "{body:x?}"),
                        }
                        bodies += 1;
                    }
                }
            }
        }
    }
    assert!(bodies > 400_000, "{bodies}");
}

fn nested(levels: usize) -> Vec<u8> {
    // The page's object, the records and a record are three levels.
    let mut body = b"{\"data\":[{\"a\":".to_vec();
    body.extend(std::iter::repeat_n(b'[', levels - 3));
    body.extend(std::iter::repeat_n(b']', levels - 3));
    body.extend_from_slice(b"}]}");
    body
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    let shape = page_shape();
    let deepest = nested(MAX_NESTING);
    assert!(split_page(&deepest, &shape.shape()).is_ok());
    assert!(serde_json::from_slice::<serde_json::Value>(&deepest).is_ok());
    for levels in [MAX_NESTING + 1, MAX_NESTING + 2, 1_000] {
        let body = nested(levels);
        let error = split_page(&body, &shape.shape()).unwrap_err();
        // The container one too deep: 14 bytes of page, then the 125th `[`.
        let want = SplitError {
            offset: 14 + 124,
            expected: NESTED_TOO_DEEP,
            found: "`[`".to_owned(),
        };
        assert_eq!(error, want);
        let serde = serde_json::from_slice::<serde_json::Value>(&body).unwrap_err();
        assert_eq!(serde.column() - 1, error.offset, "{serde}");
    }
    // Nesting in a page's member counts the same.
    for objects in [126, 127] {
        let mut body = b"{\"meta\":".to_vec();
        body.extend(std::iter::repeat_n(*b"{\"a\":", objects).flatten());
        body.push(b'1');
        body.extend(std::iter::repeat_n(b'}', objects + 1));
        let result = split_page(&body, &shape.shape());
        let serde = serde_json::from_slice::<serde_json::Value>(&body);
        if objects < MAX_NESTING {
            assert!(result.is_ok() && serde.is_ok());
            continue;
        }
        let error = result.unwrap_err();
        assert_eq!(
            (error.offset, error.expected),
            (8 + 126 * 5, NESTED_TOO_DEEP)
        );
        assert_eq!(serde.unwrap_err().column() - 1, error.offset);
    }
}

/// The ranges of picked members, as the model has them.
fn ranges(pieces: &[Piece]) -> Vec<Option<Range<usize>>> {
    pieces.iter().map(|piece| piece.range()).collect()
}

fn text(body: &[u8], range: &Option<Range<usize>>) -> Option<String> {
    range
        .clone()
        .map(|range| String::from_utf8_lossy(&body[range]).into_owned())
}

fn texts(body: &[u8], ranges: &[Option<Range<usize>>]) -> Vec<Option<String>> {
    ranges.iter().map(|range| text(body, range)).collect()
}

fn records(body: &[u8], page: &SplitPage) -> Option<Vec<String>> {
    page.records.as_ref().map(|records| {
        records
            .iter()
            .map(|range| String::from_utf8_lossy(&body[range.clone()]).into_owned())
            .collect()
    })
}

fn some(texts: &[&str]) -> Vec<Option<String>> {
    texts
        .iter()
        .map(|text| (!text.is_empty()).then(|| text.to_string()))
        .collect()
}

/// A page of `count` records `{}` under `data`.
fn empty_records(count: usize) -> Vec<u8> {
    let mut body = b"{\"data\":[".to_vec();
    for index in 0..count {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{}");
    }
    body.extend_from_slice(b"]}");
    body
}

#[test]
fn a_page_past_its_bounds_is_refused_before_its_ranges_are_allocated() {
    let shapes = Shapes {
        records: "data",
        picked: strings(&["id", "t"]),
        members: vec![],
    };
    let shape = shapes.shape();
    let body = empty_records(10_000);
    let cost = record_cost(2);

    let within = Bounds {
        records: 10_000,
        bytes: 10_000 * cost,
    };
    let page = split_page_within(&body, &shape, within).unwrap();
    let records = page.records.unwrap();
    assert_eq!(records.len(), 10_000);
    // The guess from the first record never reserves past the bounds.
    assert!(
        records.capacity() * size_of::<Range<usize>>()
            + page.picked.capacity() * size_of::<Piece>()
            <= (10_001) * cost
    );

    let by_count = Bounds {
        records: 9_999,
        bytes: usize::MAX,
    };
    assert_eq!(
        split_page_within(&body, &shape, by_count),
        Err(SplitFailure::TooManyRecords { limit: 9_999 })
    );
    let by_bytes = Bounds {
        records: usize::MAX,
        bytes: 5_000 * cost,
    };
    assert_eq!(
        split_page_within(&body, &shape, by_bytes),
        Err(SplitFailure::TooLarge {
            limit: 5_000 * cost
        })
    );
    // A page that breaks first is malformed, whatever its size.
    let mut broken = empty_records(10);
    broken[12] = b'x';
    assert!(matches!(
        split_page_within(&broken, &shape, by_count),
        Err(SplitFailure::Malformed(_))
    ));
}

#[test]
fn records_growing_past_the_first_ones_guess_stay_within_the_bounds() {
    // A large first record makes the guess small; the tiny ones after it grow the ranges.
    let mut body = format!("{{\"data\":[{{\"pad\":\"{}\"}}", "x".repeat(20_000)).into_bytes();
    for _ in 0..5_000 {
        body.extend_from_slice(b",{}");
    }
    body.extend_from_slice(b"]}");
    let shapes = Shapes {
        records: "data",
        picked: strings(&["id"]),
        members: vec![],
    };
    let cost = record_cost(1);
    let bounds = Bounds {
        records: usize::MAX,
        bytes: 6_000 * cost,
    };
    let page = split_page_within(&body, &shapes.shape(), bounds).unwrap();
    let records = page.records.unwrap();
    assert_eq!(records.len(), 5_001);
    let allocated = records.capacity() * size_of::<Range<usize>>()
        + page.picked.capacity() * size_of::<Piece>();
    assert!(allocated <= 6_001 * cost, "{allocated} bytes");
}

#[test]
fn names_compare_unescaped() {
    let shapes = Shapes {
        records: "data",
        picked: strings(&["id", "time", "a\"b", "é"]),
        members: strings(&["cursor", "data"]),
    };
    let body = br#"{"c\u0075rsor" : "n", "d\u0061ta":[{"\u0069d":"x","t\u0069me":5,"a\"b":[1],"\u00e9":{},"\ud800":0}]}"#;
    let page = split_page(body, &shapes.shape()).unwrap();
    assert_eq!(records(body, &page).unwrap().len(), 1);
    assert_eq!(
        texts(body, &ranges(&page.picked)),
        some(&["\"x\"", "5", "[1]", "{}"])
    );
    let list = r#"[{"\u0069d":"x","t\u0069me":5,"a\"b":[1],"\u00e9":{},"\ud800":0}]"#;
    assert_eq!(texts(body, &page.members), some(&["\"n\"", list]));
}

#[test]
fn the_body_may_be_the_list_itself() {
    let shapes = array_shape();
    let body = b" [ {\"id\":1} ,\n{\"x\":{\"id\":3}, \"id\" : \"two\"}\n]\n";
    let page = split_page(body, &shapes.shape()).unwrap();
    let want = ["{\"id\":1}", "{\"x\":{\"id\":3}, \"id\" : \"two\"}"];
    assert_eq!(records(body, &page).unwrap(), want);
    assert_eq!(texts(body, &ranges(&page.picked)), some(&["1", "\"two\""]));
    assert_eq!(page.members, [None]);

    let page = split_page(b"[]", &shapes.shape()).unwrap();
    assert_eq!(page.records, Some(Vec::new()));
    assert!(page.picked.is_empty());
}

#[test]
fn records_may_be_null_absent_or_empty() {
    let shapes = page_shape();
    let shape = shapes.shape();
    let cases: &[(&[u8], Option<usize>, &str)] = &[
        (b"{\"data\":null,\"cursor\":\"c\"}", None, "\"c\""),
        (b"{\"meta\":{\"data\":[{}]},\"cursor\":null}", None, "null"),
        (b"{}", None, ""),
        (b"{ }", None, ""),
        (b"{\"data\":[],\"cursor\":1}", Some(0), "1"),
        (b"{\"data\":[ ]}", Some(0), ""),
        (
            b"{\"x\":1,\"x\":2,\"data\":[{\"y\":1,\"y\":2}]}",
            Some(1),
            "",
        ),
    ];
    for &(body, count, cursor) in cases {
        let page = split_page(body, &shape).unwrap();
        assert_eq!(page.records.as_ref().map(Vec::len), count);
        assert_eq!(page.picked.len(), count.unwrap_or(0) * 2);
        assert!(page.picked.iter().all(|piece| !piece.is_some()));
        assert_eq!(texts(body, &page.members), some(&[cursor]));
    }
}

#[test]
fn odd_but_valid_json_passes() {
    let shapes = Shapes {
        records: "data",
        picked: strings(&["id", "id"]),
        members: Vec::new(),
    };
    let body = "{\"data\":[{\"id\":1e400,\"s\":\"\\udc00 \\ud800\\u0000 é \u{7f}\"},{\"id\":-0.0E-0}],\"z\":\"\\/\"}\t\r\n ";
    let bytes = body.as_bytes();
    assert!(serde_json::from_slice::<IgnoredAny>(bytes).is_ok());
    let page = split_page(bytes, &shapes.shape()).unwrap();
    assert_eq!(
        texts(bytes, &ranges(&page.picked)),
        some(&["1e400", "1e400", "-0.0E-0", "-0.0E-0"])
    );
}

/// A page of 300 audit events, about 100 KB: ids, times, a nested actor, text outside ASCII,
/// escapes, numbers of several shapes.
fn audit_page() -> Vec<u8> {
    let mut body = String::from("{\"data\":[");
    for i in 0..300 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            concat!(
                r#"{{"id":"evt-{:08x}-4c1e-9a7b-{:012x}","time":"2024-05-{:02}T12:{:02}:{:02}.123Z","#,
                r#""actor":{{"id":{},"name":"Zoë Müller","email":"zoe.{}@example.com"}},"#,
                r#""action":"user.login","ip":"203.0.113.{}","details":{{"#,
                r#""agent":"Mozilla/5.0 (X11; Linux) \"q\" \\ p","tags":[1,2.5,-3e2,true,null],"#,
                r#""message":"Signed in from a new device \u00e9 \u65e5\u672c"}}}}"#
            ),
            i * 7919,
            i * 104729,
            i % 28 + 1,
            i % 60,
            i % 60,
            1000 + i,
            i,
            i % 255
        ));
    }
    body.push_str("],\"meta\":{\"next_cursor\":\"abc\",\"count\":300}}");
    body.into_bytes()
}

/// Not a test of correctness: run with `cargo test --release -- --ignored --nocapture speed`.
#[test]
#[ignore]
fn speed() {
    use std::hint::black_box;
    use std::time::Instant;
    let compact = audit_page();
    let tree: serde_json::Value = serde_json::from_slice(&compact).unwrap();
    let pretty = serde_json::to_vec_pretty(&tree).unwrap();
    let shapes = Shapes {
        records: "data",
        picked: strings(&["id", "time"]),
        members: strings(&["meta"]),
    };
    let shape = shapes.shape();
    for (name, body) in [("compact", &compact), ("pretty-printed", &pretty)] {
        let page = split_page(body, &shape).unwrap();
        assert_eq!(page.records.as_ref().map(Vec::len), Some(300));
        let runs: [(&str, &dyn Fn()); 3] = [
            ("split_page", &|| {
                black_box(split_page(black_box(body), &shape).unwrap());
            }),
            ("serde_json IgnoredAny", &|| {
                black_box(serde_json::from_slice::<IgnoredAny>(black_box(body)).unwrap());
            }),
            ("std::str::from_utf8", &|| {
                black_box(std::str::from_utf8(black_box(body)).unwrap());
            }),
        ];
        // Taking turns, best of many rounds: the least disturbed by whatever else runs.
        let mut best = [f64::MAX; 3];
        for _ in 0..30 {
            for ((_, run), best) in runs.iter().zip(&mut best) {
                let start = Instant::now();
                for _ in 0..200 {
                    run();
                }
                *best = best.min(start.elapsed().as_secs_f64() / 200.0);
            }
        }
        println!("a {name} page of {} bytes, 300 records:", body.len());
        for ((run, _), best) in runs.iter().zip(best) {
            let rate = body.len() as f64 / best / 1e6;
            println!("{run:>24}: {:6.1} µs a page, {rate:6.0} MB/s", best * 1e6);
        }
    }
}
