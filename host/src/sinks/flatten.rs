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
    }
}
