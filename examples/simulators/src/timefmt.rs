//! UTC calendar conversions without a date crate: simulators only need whole seconds and the
//! proleptic Gregorian calendar (Howard Hinnant's `days_from_civil` / `civil_from_days`).

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339_utc(unix: i64) -> String {
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

/// Parses `YYYY-MM-DD` as midnight UTC in Unix seconds; `None` if it is not a real date.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let mut field = |len: usize| {
        let p = parts.next()?;
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse::<i64>().ok())?
    };
    let (y, m, d) = (field(4)?, field(2)?, field(2)?);
    let days = days_from_civil(y, m, d);
    // Round-tripping rejects dates such as 2024-02-30 that the arithmetic would silently roll over.
    (civil_from_days(days) == (y, m, d)).then_some(days * 86_400)
}

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
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_749_336_563), "2025-06-07T22:49:23Z");
        assert_eq!(rfc3339_utc(1_725_148_800), "2024-09-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_825_600), "2000-02-29T12:00:00Z");
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date("2024-09-01"), Some(1_725_148_800));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-9-1",
            "20240901",
            "2024-09-01x",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
