//! The time range of `trawl run`: dates (whole days in the configured time zone, both inclusive,
//! as the seed scripts take them), RFC 3339 times, or Unix seconds.

use crate::state::Interval;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangeError {
    #[error(
        "invalid {which} `{text}`: expected a date YYYY-MM-DD, a time such as \
         2024-09-01T09:00:00Z or 2024-09-01T09:00:00+09:00, or Unix seconds"
    )]
    Unparsable { which: &'static str, text: String },
    #[error("the range ends ({end}) before it starts ({start})")]
    Inverted { start: String, end: String },
    #[error("the range starts ({start}) in the future; nothing can be fetched yet")]
    Future { start: String },
}

/// One end of a range as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    Day(Date),
    Instant(Timestamp),
}

fn parse_bound(which: &'static str, text: &str) -> Result<Bound, RangeError> {
    let text = text.trim();
    let unparsable = || RangeError::Unparsable {
        which,
        text: text.to_string(),
    };
    if text.len() == 10 && text.as_bytes()[4] == b'-' {
        return text
            .parse::<Date>()
            .map(Bound::Day)
            .map_err(|_| unparsable());
    }
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds: i64 = text.parse().map_err(|_| unparsable())?;
        return Timestamp::from_second(seconds)
            .map(Bound::Instant)
            .map_err(|_| unparsable());
    }
    text.parse::<Timestamp>()
        .map(Bound::Instant)
        .map_err(|_| unparsable())
}

/// The half-open interval `start..end` covers, with `end` defaulting to now and never past it.
pub fn parse_range(
    start: &str,
    end: Option<&str>,
    timezone: &TimeZone,
    now: Timestamp,
) -> Result<Interval, RangeError> {
    let start_bound = parse_bound("start", start)?;
    let start_at = match start_bound {
        Bound::Day(day) => start_of_day(day, timezone),
        Bound::Instant(instant) => instant,
    };
    let end_at = match end.map(|text| parse_bound("end", text)).transpose()? {
        // A date as the end means that whole day.
        Some(Bound::Day(day)) => start_of_day(day.saturating_add(1.day()), timezone),
        Some(Bound::Instant(instant)) => instant,
        None => now,
    };
    if end_at <= start_at {
        return Err(RangeError::Inverted {
            start: start.to_string(),
            end: end.map_or_else(|| format!("now, {now}"), str::to_string),
        });
    }
    if start_at >= now {
        return Err(RangeError::Future {
            start: start.to_string(),
        });
    }
    Ok(Interval::new(
        start_at.as_millisecond(),
        end_at.min(now).as_millisecond(),
    ))
}

fn start_of_day(day: Date, timezone: &TimeZone) -> Timestamp {
    day.to_zoned(timezone.clone())
        .map(|zoned| zoned.timestamp())
        .unwrap_or_else(|_| day.to_zoned(TimeZone::UTC).expect("a UTC day").timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn ts(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn dates_are_whole_days_in_the_zone() {
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        let range = parse_range("2024-09-01", Some("2024-09-02"), &tokyo, now()).unwrap();
        assert_eq!(range.start, ts("2024-08-31T15:00:00Z"));
        assert_eq!(range.end, ts("2024-09-02T15:00:00Z"));
        let single = parse_range("2024-09-01", Some("2024-09-01"), &TimeZone::UTC, now()).unwrap();
        assert_eq!(single.end - single.start, 86_400_000);
    }

    #[test]
    fn instants_and_unix_seconds() {
        let range = parse_range(
            "1725148800",
            Some("2024-09-01T02:00:00+01:00"),
            &TimeZone::UTC,
            now(),
        )
        .unwrap();
        assert_eq!(
            range,
            Interval::new(ts("2024-09-01T00:00:00Z"), ts("2024-09-01T01:00:00Z"))
        );
    }

    #[test]
    fn the_end_is_never_past_now() {
        let range = parse_range("2025-12-31", Some("2026-01-05"), &TimeZone::UTC, now()).unwrap();
        assert_eq!(range.end, now().as_millisecond());
        let open = parse_range("2025-12-31", None, &TimeZone::UTC, now()).unwrap();
        assert_eq!(open.end, now().as_millisecond());
    }

    #[test]
    fn bad_ranges_are_explained() {
        let utc = TimeZone::UTC;
        assert!(matches!(
            parse_range("2024-13-01", None, &utc, now()),
            Err(RangeError::Unparsable { which: "start", .. })
        ));
        assert!(matches!(
            parse_range("2024-09-01", Some("yesterday"), &utc, now()),
            Err(RangeError::Unparsable { which: "end", .. })
        ));
        assert_eq!(
            parse_range("2024-09-02", Some("2024-09-01"), &utc, now())
                .unwrap_err()
                .to_string(),
            "the range ends (2024-09-01) before it starts (2024-09-02)"
        );
        assert!(matches!(
            parse_range("2027-01-01", None, &utc, now()),
            Err(RangeError::Inverted { .. })
        ));
        assert!(matches!(
            parse_range("2027-01-01", Some("2027-01-02"), &utc, now()),
            Err(RangeError::Future { .. })
        ));
    }
}
