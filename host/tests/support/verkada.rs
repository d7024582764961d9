//! Reading what `verkada.wasm` wrote, and the simulator's requests, the way Verkada orders them.

use serde_json::Value;
use std::path::Path;
use trawl_simulators::RequestLogEntry;
use trawl_simulators::verkada::QUARTER;

pub const AUDIT_FILE: &str = "verkada_audit_log.jsonl";
pub const ALERTS_FILE: &str = "verkada_camera_alerts.jsonl";

pub fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}

pub fn seconds(row: &Value, field: &str) -> i64 {
    match &row[field] {
        Value::Number(number) => number.as_i64().unwrap(),
        Value::String(text) => text.parse::<jiff::Timestamp>().unwrap().as_second(),
        other => panic!("{field} is {other}"),
    }
}

/// The quarter hour an audit row was selected by (its processing time, or its event time before
/// Verkada had processing times), and its event time: the order of the output.
pub fn audit_order(row: &Value) -> (i64, i64) {
    let selected = match row["processed_timestamp"] {
        Value::Null => seconds(row, "timestamp"),
        _ => seconds(row, "processed_timestamp"),
    };
    (selected.div_euclid(QUARTER), seconds(row, "timestamp"))
}

pub fn alert_order(row: &Value) -> (i64, i64) {
    let created = seconds(row, "created");
    (created.div_euclid(QUARTER), created)
}

/// `written` holds each of `expected` exactly once and nothing else, ordered by window, then event
/// time (rows sharing both may come in any order).
pub fn assert_exactly_once_in_order(
    written: &[Value],
    expected: &[&Value],
    order: impl Fn(&Value) -> (i64, i64),
) {
    let mut left: Vec<&Value> = expected.to_vec();
    for row in written {
        let Some(at) = left.iter().position(|candidate| *candidate == row) else {
            panic!("written but not expected, or written twice: {row}");
        };
        left.swap_remove(at);
    }
    assert!(left.is_empty(), "never written: {left:#?}");
    let keys: Vec<(i64, i64)> = written.iter().map(order).collect();
    assert!(keys.is_sorted(), "out of order: {keys:?}");
}

pub fn is_token(request: &RequestLogEntry) -> bool {
    request.method == "POST" && request.path == "/token"
}
