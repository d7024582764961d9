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
    for_each_cell(json, |name, _| each(name))
}

/// Calls `each` with every (column, cell) pair [`flatten`] would make of the JSON object `json`, in
/// the same order, without building the values: a CSV row is filled from one scan of its record,
/// with no allocation for most cells.
pub fn for_each_cell(
    json: &str,
    mut each: impl FnMut(&str, &str),
) -> Result<(), serde_json::Error> {
    let mut name = String::new();
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde::Deserializer::deserialize_map(
        &mut deserializer,
        Members {
            name: &mut name,
            each: &mut each,
            top: true,
        },
    )?;
    deserializer.end()
}

/// Walks a value whose column name is in `name`: an object with members names their columns
/// (`name.key`), anything else is one column.
struct Members<'a, F> {
    name: &'a mut String,
    each: &'a mut F,
    /// The record itself: its members are not prefixed, and an empty record has no column.
    top: bool,
}

impl<'de, F: FnMut(&str, &str)> serde::de::DeserializeSeed<'de> for Members<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(&str, &str)> serde::de::Visitor<'de> for Members<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let base = self.name.len();
        let mut empty = true;
        while map
            .next_key_seed(KeyInto {
                name: self.name,
                dot: !self.top,
            })?
            .is_some()
        {
            empty = false;
            map.next_value_seed(Members {
                name: self.name,
                each: self.each,
                top: false,
            })?;
            self.name.truncate(base);
        }
        if empty && !self.top {
            (self.each)(self.name, "{}");
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Lists are rare in records and their cell depends on all their items: read them whole.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        (self.each)(self.name, &cell(&Value::Array(items)));
        Ok(())
    }

    fn visit_str<E>(self, text: &str) -> Result<(), E> {
        (self.each)(self.name, text);
        Ok(())
    }

    fn visit_bool<E>(self, flag: bool) -> Result<(), E> {
        (self.each)(self.name, if flag { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E>(self, number: i64) -> Result<(), E> {
        (self.each)(self.name, itoa::Buffer::new().format(number));
        Ok(())
    }

    fn visit_u64<E>(self, number: u64) -> Result<(), E> {
        (self.each)(self.name, itoa::Buffer::new().format(number));
        Ok(())
    }

    fn visit_f64<E>(self, number: f64) -> Result<(), E> {
        // Spelled as a parsed value would be (serde_json's float formatting).
        let text = serde_json::Number::from_f64(number).map_or_else(String::new, |n| n.to_string());
        (self.each)(self.name, &text);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        (self.each)(self.name, "");
        Ok(())
    }
}

/// Appends a member's key to the column name (after a `.` below the top level).
struct KeyInto<'a> {
    name: &'a mut String,
    dot: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyInto<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        if self.dot {
            self.name.push('.');
        }
        self.name.push_str(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
