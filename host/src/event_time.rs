//! Event times as vendors write them, read into milliseconds since the epoch: from a page's
//! records as the host reads them, and from the files an output already holds.

use crate::runtime::wit::TimeFormat;

/// How an event time is written in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEncoding {
    Rfc3339,
    EpochSeconds,
    EpochMillis,
}

impl From<TimeFormat> for TimeEncoding {
    fn from(format: TimeFormat) -> Self {
        match format {
            TimeFormat::Rfc3339 => TimeEncoding::Rfc3339,
            TimeFormat::EpochSeconds => TimeEncoding::EpochSeconds,
            TimeFormat::EpochMillis => TimeEncoding::EpochMillis,
        }
    }
}

/// Reads a time written as text: a CSV cell, or the text of a JSON string.
pub fn parse_time(cell: &str, encoding: TimeEncoding) -> Option<i64> {
    let cell = cell.trim();
    let scale = match encoding {
        TimeEncoding::Rfc3339 => {
            return cell
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|time| time.as_millisecond());
        }
        TimeEncoding::EpochSeconds => 1000,
        TimeEncoding::EpochMillis => 1,
    };
    // Whole numbers, as nearly every vendor writes them, exactly and without a float.
    if let Ok(whole) = cell.parse::<i64>() {
        return whole.checked_mul(scale);
    }
    let number = cell.parse::<f64>().ok()?;
    let millis = (number * scale as f64).round();
    // `inf` and `NaN` parse as floats, and a cast would make a time of them.
    (millis.is_finite() && millis.abs() < i64::MAX as f64).then_some(millis as i64)
}

/// Reads a time from a member's raw JSON: a string holding the time, or (for epoch times) a
/// number.
pub fn parse_json_time(raw: &str, encoding: TimeEncoding) -> Option<i64> {
    match raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(text) if !text.contains('\\') => parse_time(text, encoding),
        Some(_) => parse_time(&serde_json::from_str::<String>(raw).ok()?, encoding),
        None if encoding == TimeEncoding::Rfc3339 => None,
        None => parse_time(raw, encoding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_encoding() {
        assert_eq!(
            parse_time("2025-04-23T04:59:35.118Z", TimeEncoding::Rfc3339),
            Some(1_745_384_375_118)
        );
        assert_eq!(
            parse_time("2025-06-10T11:05:23+03:00", TimeEncoding::Rfc3339),
            Some(1_749_542_723_000)
        );
        assert_eq!(
            parse_time("1749336563", TimeEncoding::EpochSeconds),
            Some(1_749_336_563_000)
        );
        assert_eq!(
            parse_time(" 1749336563.25 ", TimeEncoding::EpochSeconds),
            Some(1_749_336_563_250)
        );
        assert_eq!(
            parse_time("1749336563123", TimeEncoding::EpochMillis),
            Some(1_749_336_563_123)
        );
        assert_eq!(parse_time("yesterday", TimeEncoding::Rfc3339), None);
    }

    #[test]
    fn what_is_not_a_time_is_refused() {
        for cell in [
            "",
            "inf",
            "NaN",
            "-inf",
            "1e300",
            "9223372036854775807",
            "12abc",
        ] {
            assert_eq!(parse_time(cell, TimeEncoding::EpochSeconds), None, "{cell}");
        }
        assert_eq!(parse_time("1e400", TimeEncoding::EpochMillis), None);
    }

    #[test]
    fn json_times_are_numbers_or_strings() {
        let seconds = TimeEncoding::EpochSeconds;
        assert_eq!(
            parse_json_time("1749336563", seconds),
            Some(1_749_336_563_000)
        );
        assert_eq!(
            parse_json_time(r#""1749336563""#, seconds),
            Some(1_749_336_563_000)
        );
        assert_eq!(
            parse_json_time(r#""\u0031749336563""#, seconds),
            Some(1_749_336_563_000)
        );
        assert_eq!(
            parse_json_time(r#""2025-04-23T04:59:35.118Z""#, TimeEncoding::Rfc3339),
            Some(1_745_384_375_118)
        );
        for raw in ["null", "true", "[1]", "{}", r#""""#, r#""soon""#] {
            assert_eq!(parse_json_time(raw, seconds), None, "{raw}");
        }
        // A number is not an RFC 3339 time.
        assert_eq!(parse_json_time("1749336563", TimeEncoding::Rfc3339), None);
    }
}
