//! The ISO 8601 times the audit log API reads and writes, in milliseconds.

use crate::timefmt::rfc3339_utc;

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ` (disk dates).
pub fn rfc3339_seconds(unix: i64) -> String {
    rfc3339_utc(unix)
}

/// Milliseconds as `YYYY-MM-DDThh:mm:ss.fffZ` (mail dates).
pub fn rfc3339_millis(millis: i64) -> String {
    let seconds = rfc3339_utc(millis.div_euclid(1000));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        millis.rem_euclid(1000)
    )
}

/// Parses `afterDate` / `beforeDate`: `YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)`, as the API documents
/// them; anything else (no zone, a date alone, Unix seconds) is `None`.
pub fn parse_query_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, expected)| bytes.get(at) != Some(&expected))
    {
        return None;
    }
    let date = crate::timefmt::parse_date(text.get(..10)?)?;
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if bytes.get(at) == Some(&b'.') {
        let first = at + 1;
        at = first;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == first {
            return None;
        }
        let fraction = &text[first..at.min(first + 3)];
        millis = format!("{fraction:0<3}").parse::<i64>().ok()?;
    }
    let offset = match &text[at..] {
        "Z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            if zone.as_bytes()[3] != b':' {
                return None;
            }
            let hours = digits(at + 1, 2)?;
            let minutes = digits(at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if zone.starts_with('-') {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    Some((date + hour * 3600 + minute * 60 + second - offset) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(
            rfc3339_millis(1_745_384_375_118),
            "2025-04-23T04:59:35.118Z"
        );
        assert_eq!(rfc3339_millis(5), "1970-01-01T00:00:00.005Z");
        assert_eq!(rfc3339_seconds(1_749_542_723), "2025-06-10T08:05:23Z");
        let at = 1_745_384_375_118;
        for text in [
            "2025-04-23T04:59:35.118Z",
            "2025-04-23T07:59:35.118+03:00",
            "2025-04-22T23:59:35.118-05:00",
            "2025-04-23T04:59:35.118999Z",
        ] {
            assert_eq!(parse_query_time(text), Some(at), "{text}");
        }
        assert_eq!(
            parse_query_time("2022-12-31T23:59:59+03:00"),
            Some(1_672_520_399_000)
        );
        for bad in [
            "2025-04-23T04:59:35",
            "2025-04-23",
            "1745384375",
            "2025-04-23T04:59:35 03:00",
            "2025-04-23T04:59:35.Z",
            "2025-02-30T00:00:00Z",
            "2025-04-23t04:59:35Z",
            "2025-04-23T04:59:35+0300",
        ] {
            assert_eq!(parse_query_time(bad), None, "{bad}");
        }
    }
}
