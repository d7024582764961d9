//! Parsers for the command-line flags every simulator takes.

use crate::ratelimit::Quota;
use std::time::Duration;

/// `--quota N/DURATION`: at most N requests in any DURATION, given in `s` or `ms` (`5/1s`,
/// `100/60s`, `25/5000ms`).
pub fn parse_quota(text: &str) -> Result<Quota, String> {
    let invalid = || format!("`{text}` is not a quota such as 5/1s, 100/60s or 25/5000ms");
    let (requests, per) = text.split_once('/').ok_or_else(invalid)?;
    let requests: u32 = requests.trim().parse().map_err(|_| invalid())?;
    let per = per.trim();
    let per = if let Some(millis) = per.strip_suffix("ms") {
        Duration::from_millis(millis.parse().map_err(|_| invalid())?)
    } else if let Some(seconds) = per.strip_suffix('s') {
        Duration::from_secs(seconds.parse().map_err(|_| invalid())?)
    } else {
        return Err(invalid());
    };
    if requests == 0 || per.is_zero() {
        return Err(invalid());
    }
    Ok(Quota { requests, per })
}

/// A fault rate: the share of requests that get a fault, from 0 to 1.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{text}` is not a number between 0 and 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_and_rates() {
        let quota = parse_quota("25/5000ms").unwrap();
        assert_eq!((quota.requests, quota.per), (25, Duration::from_secs(5)));
        let quota = parse_quota(" 100 / 60s ").unwrap();
        assert_eq!((quota.requests, quota.per), (100, Duration::from_secs(60)));
        for bad in ["", "5", "5/1", "5/1m", "0/1s", "5/0s", "x/1s"] {
            assert!(parse_quota(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
    }
}
