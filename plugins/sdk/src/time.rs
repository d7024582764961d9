//! Times as vendors write them: RFC 3339 / ISO 8601 text to and from milliseconds since the
//! epoch, without pulling a date library into every connector.

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_rfc3339_seconds(unix: i64) -> String {
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

/// Parses `YYYY-MM-DDThh:mm:ss[.fff…][Z|±hh:mm|±hhmm|±hh]` into milliseconds since the epoch.
/// Fractions beyond milliseconds are cut off; a time without a zone is taken as UTC.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
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
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_yandex_sends() {
        let mail = parse_rfc3339_millis("2025-04-23T04:59:35.118Z").unwrap();
        assert_eq!(mail, 1_745_384_375_118);
        assert_eq!(
            parse_rfc3339_millis("2025-06-10T08:05:23Z"),
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
            assert_eq!(parse_rfc3339_millis(same), Some(mail), "{same}");
        }
        assert_eq!(
            parse_rfc3339_millis("2025-04-23T04:59:35.1Z"),
            Some(1_745_384_375_100)
        );
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T00:00:00Z"),
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
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_the_forms_verkada_sends() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2025-09-16T03:12:45Z"),
            Some(1_757_992_365_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-09-16T03:12:45.5Z"),
            Some(1_757_992_365_500)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-09-16T03:12:45.123456+00:00"),
            Some(1_757_992_365_123)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-09-16T12:12:45+09:00"),
            Some(1_757_992_365_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-09-15T22:12:45-0500"),
            Some(1_757_992_365_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-09-16 03:12:45"),
            Some(1_757_992_365_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "2025-09-16",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-09-16T24:00:00Z",
            "2025-09-16T03:12:45.Z",
            "2025-09-16T03:12:45Zx",
            "2025-09-16T03:12:45+9",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_whole_seconds_and_reads_them_back() {
        assert_eq!(format_rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339_seconds(951_825_600), "2000-02-29T12:00:00Z");
        assert_eq!(format_rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
        for unix in [0, 951_825_600, 1_749_542_723, 4_102_444_800] {
            assert_eq!(
                parse_rfc3339_millis(&format_rfc3339_seconds(unix)),
                Some(unix * 1000),
                "{unix}"
            );
        }
    }
}
