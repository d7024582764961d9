//! What this connector knows about Yandex 360 that needs no host: the query's date bounds, how an
//! event's time and id are read, and the vendor's error bodies.

use serde::Deserialize;
use serde_json::Value;

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
    (rfc3339_seconds(after), rfc3339_seconds(before))
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339_seconds(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
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

#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "uniqId", default)]
    uniq_id: Value,
    #[serde(rename = "eventType", default)]
    event_type: Value,
    #[serde(default)]
    date: Value,
}

/// Reads the id and time of one event (a JSON object's text).
///
/// The id is `uniqId|eventType|date-in-ms`: Yandex's `uniqId` is its event id, but the same
/// `uniqId` has been seen on events of different types, so the type and the time are part of
/// the key. The time is the parsed `date`, so that a different rendering of the same instant
/// still matches.
pub fn read_event(text: &str) -> Result<EventKey, String> {
    let fields: Fields = serde_json::from_str(text)
        .map_err(|error| format!("an event is not a JSON object ({error}): {}", excerpt(text)))?;
    let time = event_time(&fields.date).ok_or_else(|| {
        format!(
            "an event has no usable `date` ({}): {}",
            fields.date,
            excerpt(text)
        )
    })?;
    let kind = match &fields.event_type {
        Value::String(kind) => kind.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(match id_text(&fields.uniq_id) {
        Some(uniq) => EventKey {
            id: format!("{uniq}|{kind}|{time}"),
            time,
            hashed_id: false,
        },
        None => EventKey {
            id: format!("fnv:{:016x}|{kind}|{time}", fnv1a(text.as_bytes())),
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
                parse_iso8601(text)
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

/// Parses `YYYY-MM-DDThh:mm:ss[.fff…][Z|±hh:mm|±hhmm|±hh]` into milliseconds since the epoch.
/// Fractions beyond milliseconds are cut off; a time without a zone is taken as UTC.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let at = |index: usize, allowed: &[u8]| bytes.get(index).is_some_and(|b| allowed.contains(b));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut index = 19;
    let mut millis = 0;
    if at(index, b".,") {
        index += 1;
        let digits_start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == digits_start {
            return None;
        }
        let digits = &text[digits_start..index.min(digits_start + 3)];
        millis = format!("{digits:0<3}").parse::<i64>().ok()?;
    }
    let offset_seconds = match &bytes[index..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (number_of(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (number_of(&[*h1, *h2])?, number_of(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    // A leap second is kept in its minute.
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    unix.checked_mul(1000)?.checked_add(millis)
}

fn number_of(digits: &[u8]) -> Option<i64> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { yoe + 1 } else { yoe } + era * 400;
    (y, m, d)
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

/// The start of a text, for messages.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_of_both_streams_and_other_renderings() {
        let mail = parse_iso8601("2025-04-23T04:59:35.118Z").unwrap();
        assert_eq!(mail, 1_745_384_375_118);
        assert_eq!(
            parse_iso8601("2025-06-10T08:05:23Z"),
            Some(1_749_542_723_000)
        );
        for same in [
            "2025-04-23T07:59:35.118+03:00",
            "2025-04-23T07:59:35.118+0300",
            "2025-04-23T07:59:35.118+03",
            "2025-04-23T04:59:35.118",
            "2025-04-23 04:59:35.1189999Z",
            "2025-04-23t04:59:35,118z",
            "2025-04-22T23:59:35.118-05:00",
        ] {
            assert_eq!(parse_iso8601(same), Some(mail), "{same}");
        }
        assert_eq!(
            parse_iso8601("2025-04-23T04:59:35.1Z"),
            Some(1_745_384_375_100)
        );
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "2025-04-23",
            "2025-04-23T04:59Z",
            "2025-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-04-23T24:00:00Z",
            "2025-04-23T04:59:35.Z",
            "2025-04-23T04:59:35Zjunk",
            "2025-04-23T04:59:35+3:00",
            "2025-04-23T04:59:35+03:0",
            "2025/04/23T04:59:35Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
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
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_825_600), "2000-02-29T12:00:00Z");
        assert_eq!(rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
        for unix in [0, 951_825_600, 1_749_542_723, 4_102_444_800] {
            assert_eq!(
                parse_iso8601(&rfc3339_seconds(unix)),
                Some(unix * 1000),
                "{unix}"
            );
        }
    }

    #[test]
    fn ids_are_uniq_id_type_and_time() {
        let mail = r#"{"eventType":"message_receive","date":"2025-04-23T04:59:35.118Z","uniqId":"16657237516700001"}"#;
        assert_eq!(
            read_event(mail).unwrap(),
            EventKey {
                id: "16657237516700001|message_receive|1745384375118".into(),
                time: 1_745_384_375_118,
                hashed_id: false,
            }
        );
        // The same uniqId on another event type is another event.
        let seen = mail.replace("message_receive", "message_seen");
        assert_ne!(read_event(&seen).unwrap().id, read_event(mail).unwrap().id);
        // Rendered differently, the same event keeps its id.
        let offset = mail.replace("04:59:35.118Z", "07:59:35.118+03:00");
        assert_eq!(
            read_event(&offset).unwrap().id,
            read_event(mail).unwrap().id
        );
        let numeric = r#"{"uniqId":5379628844452860001,"eventType":"fs-mkdir","date":"2025-06-10T08:05:23Z"}"#;
        assert_eq!(
            read_event(numeric).unwrap().id,
            "5379628844452860001|fs-mkdir|1749542723000"
        );
        let anonymous = r#"{"eventType":"fs-mkdir","date":"2025-06-10T08:05:23Z","uniqId":""}"#;
        let key = read_event(anonymous).unwrap();
        assert!(key.hashed_id && key.id.starts_with("fnv:"), "{key:?}");
        assert_eq!(read_event(anonymous).unwrap(), key);
        assert!(read_event(r#"{"uniqId":"1","eventType":"x"}"#).is_err());
        assert!(read_event(r#"{"uniqId":"1","date":"yesterday"}"#).is_err());
        assert!(read_event("[1,2]").is_err());
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
        assert!(error_message(long.as_bytes(), None).chars().count() < 210);
    }
}
