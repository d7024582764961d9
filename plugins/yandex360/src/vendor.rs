//! What this connector knows about Yandex 360 that needs no host: the query's date bounds, how an
//! event's time and id are read, and the vendor's error bodies.

use serde_json::Value;
use trawl_sdk::excerpt;
use trawl_sdk::time::{format_rfc3339_seconds, parse_rfc3339_millis};

/// The two audit logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Mail,
    Disk,
}

impl Stream {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mail" => Some(Stream::Mail),
            "disk" => Some(Stream::Disk),
            _ => None,
        }
    }

    /// The stream's name, which is also the last segment of its endpoint.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Mail => "mail",
            Stream::Disk => "disk",
        }
    }
}

/// `afterDate` and `beforeDate` for the half-open window `[start, end)` (milliseconds).
///
/// Whether the API includes either bound is not documented, and it may compare whole seconds
/// only, so the query is widened to whole seconds and a second before the start: it then covers
/// the window whatever the API does with its bounds, and the connector keeps only the events
/// inside the window.
pub fn query_bounds(start: i64, end: i64) -> (String, String) {
    let after = start.div_euclid(1000) - 1;
    let before = (end + 999).div_euclid(1000);
    (
        format_rfc3339_seconds(after),
        format_rfc3339_seconds(before),
    )
}

/// An event's time and the id trawl dedups it by.
#[derive(Debug, PartialEq, Eq)]
pub struct EventKey {
    pub id: String,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// The event had no `uniqId`: its id is a hash of its text.
    pub hashed_id: bool,
}

/// The members of an event [`read_event`] needs, to be picked out of a page.
pub const EVENT_KEYS: [&str; 3] = ["uniqId", "eventType", "date"];

/// Reads the id and time of one event from its picked members ([`EVENT_KEYS`]); `text` gives
/// the event's whole JSON text, which only an event without `uniqId` or a broken one needs.
///
/// The id is `uniqId|eventType|date-in-ms`: Yandex's `uniqId` is its event id, but the same
/// `uniqId` has been seen on events of different types, so the type and the time are part of
/// the key. The time is the parsed `date`, so that a different rendering of the same instant
/// still matches.
pub fn read_event(
    picked: [Option<&str>; EVENT_KEYS.len()],
    text: impl Fn() -> String,
) -> Result<EventKey, String> {
    let [uniq_id, event_type, date] = picked.map(|raw| {
        raw.map_or(Ok(Value::Null), serde_json::from_str)
            .map_err(|error| {
                format!(
                    "an event has a member that is not JSON ({error}): {}",
                    excerpt(&text())
                )
            })
    });
    let (uniq_id, event_type, date) = (uniq_id?, event_type?, date?);
    let time = event_time(&date).ok_or_else(|| {
        format!(
            "an event has no usable `date` ({}): {}",
            date,
            excerpt(&text())
        )
    })?;
    let kind = match &event_type {
        Value::String(kind) => kind.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(match id_text(&uniq_id) {
        Some(uniq) => EventKey {
            id: format!("{uniq}|{kind}|{time}"),
            time,
            hashed_id: false,
        },
        None => EventKey {
            id: format!("fnv:{:016x}|{kind}|{time}", fnv1a(text().as_bytes())),
            time,
            hashed_id: true,
        },
    })
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An event's `date`: ISO 8601 text (mail has milliseconds, disk whole seconds), or, should the
/// API ever send one, a number of seconds or milliseconds since the epoch.
pub fn event_time(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                epoch_number(text.parse().ok()?)
            } else {
                parse_rfc3339_millis(text)
            }
        }
        Value::Number(number) => epoch_number(number.as_i64()?),
        _ => None,
    }
}

/// Seconds or milliseconds since the epoch, told apart by size (1e11 seconds is the year 5138).
fn epoch_number(number: i64) -> Option<i64> {
    if number.abs() >= 100_000_000_000 {
        Some(number)
    } else {
        number.checked_mul(1000)
    }
}

/// Items of a list param: separated by commas or white space, empty ones dropped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// User ids of a list param, each a whole number (`string<uint64>`); the first bad one otherwise.
pub fn split_uids(text: &str) -> Result<Vec<String>, String> {
    let uids = split_list(text);
    match uids
        .iter()
        .find(|uid| uid.parse::<u64>().is_err() || !uid.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(bad) => Err(bad.clone()),
        None => Ok(uids),
    }
}

/// What the vendor said in an error answer: the `message` (and `code`) of a JSON body such as
/// `{"code":16,"message":"Unauthenticated","details":[]}`, else the start of the body, with the
/// `X-Request-Id` Yandex's support asks for.
pub fn error_message(body: &[u8], request_id: Option<&str>) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let from_json = parsed.as_ref().and_then(|value| {
        let message = ["message", "error_description", "error", "description"]
            .iter()
            .find_map(|key| value.get(key)?.as_str().filter(|m| !m.trim().is_empty()))?;
        Some(match value.get("code").filter(|code| !code.is_null()) {
            Some(code) => format!("{} (code {code})", message.trim()),
            None => message.trim().to_string(),
        })
    });
    let mut message = from_json.unwrap_or_else(|| match excerpt(text) {
        empty if empty.is_empty() => "no message".to_string(),
        excerpt => excerpt,
    });
    if let Some(id) = request_id.map(str::trim).filter(|id| !id.is_empty()) {
        message.push_str(&format!("; X-Request-Id {id}"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_times_as_text_or_numbers() {
        assert_eq!(
            event_time(&json!("2025-04-23T04:59:35.118Z")),
            Some(1_745_384_375_118)
        );
        assert_eq!(event_time(&json!(1_749_542_723)), Some(1_749_542_723_000));
        assert_eq!(
            event_time(&json!(1_749_542_723_456_i64)),
            Some(1_749_542_723_456)
        );
        assert_eq!(event_time(&json!("1749542723")), Some(1_749_542_723_000));
        assert_eq!(event_time(&json!(null)), None);
        assert_eq!(event_time(&json!(["2025-06-10T08:05:23Z"])), None);
    }

    #[test]
    fn query_bounds_cover_the_window_in_whole_seconds() {
        // 2025-06-10T08:00:00Z .. 08:15:00Z
        let start = 1_749_542_400_000;
        assert_eq!(
            query_bounds(start, start + 900_000),
            (
                "2025-06-10T07:59:59Z".to_string(),
                "2025-06-10T08:15:00Z".to_string()
            )
        );
        assert_eq!(
            query_bounds(start + 1, start + 1001),
            (
                "2025-06-10T07:59:59Z".to_string(),
                "2025-06-10T08:00:02Z".to_string()
            )
        );
    }

    /// Reads an event as the connector does: its picked members as the host hands them over
    /// (raw JSON), its text on demand.
    fn read(text: &str) -> Result<EventKey, String> {
        let event: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        let picked = EVENT_KEYS.map(|key| event.get(key).map(Value::to_string));
        read_event(picked.each_ref().map(Option::as_deref), || text.to_string())
    }

    #[test]
    fn ids_are_uniq_id_type_and_time() {
        let mail = r#"{"eventType":"message_receive","date":"2025-04-23T04:59:35.118Z","uniqId":"16657237516700001"}"#;
        assert_eq!(
            read(mail).unwrap(),
            EventKey {
                id: "16657237516700001|message_receive|1745384375118".into(),
                time: 1_745_384_375_118,
                hashed_id: false,
            }
        );
        // The same uniqId on another event type is another event.
        let seen = mail.replace("message_receive", "message_seen");
        assert_ne!(read(&seen).unwrap().id, read(mail).unwrap().id);
        // Rendered differently, the same event keeps its id.
        let offset = mail.replace("04:59:35.118Z", "07:59:35.118+03:00");
        assert_eq!(read(&offset).unwrap().id, read(mail).unwrap().id);
        let numeric = r#"{"uniqId":5379628844452860001,"eventType":"fs-mkdir","date":"2025-06-10T08:05:23Z"}"#;
        assert_eq!(
            read(numeric).unwrap().id,
            "5379628844452860001|fs-mkdir|1749542723000"
        );
        let anonymous = r#"{"eventType":"fs-mkdir","date":"2025-06-10T08:05:23Z","uniqId":""}"#;
        let key = read(anonymous).unwrap();
        assert!(key.hashed_id && key.id.starts_with("fnv:"), "{key:?}");
        assert_eq!(read(anonymous).unwrap(), key);
        assert!(read(r#"{"uniqId":"1","eventType":"x"}"#).is_err());
        assert!(read(r#"{"uniqId":"1","date":"yesterday"}"#).is_err());
        assert!(read("[1,2]").is_err());
    }

    #[test]
    fn list_params() {
        assert_eq!(
            split_uids(" 1130000062000001, 1130000062000002\n3 ").unwrap(),
            ["1130000062000001", "1130000062000002", "3"]
        );
        assert!(split_uids("").unwrap().is_empty());
        assert_eq!(split_uids("1,two").unwrap_err(), "two");
        assert_eq!(split_uids("['1']").unwrap_err(), "['1']");
        assert_eq!(split_uids("-1").unwrap_err(), "-1");
        assert_eq!(
            split_list("message_receive,message_trash"),
            ["message_receive", "message_trash"]
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(
                br#"{"code":16,"message":"Unauthenticated","details":[]}"#,
                Some("abc-1")
            ),
            "Unauthenticated (code 16); X-Request-Id abc-1"
        );
        assert_eq!(
            error_message(br#"{"message":"Permission denied"}"#, None),
            "Permission denied"
        );
        assert_eq!(error_message(b"", None), "no message");
        assert_eq!(error_message(b"  ", Some(" ")), "no message");
        assert!(error_message(b"<html>502 Bad Gateway</html>", None).contains("502 Bad Gateway"));
        let long = "x".repeat(1000);
        assert!(error_message(long.as_bytes(), None).chars().count() < 310);
    }
}
