//! Parsers for the command-line flags every simulator takes.

use crate::faults::{Action, Fault, Streaks, everyday};
use crate::ratelimit::{EarlyRetry, Quota};
use std::time::Duration;

/// Flags every simulator takes: what an early retry does to a block after a 429, and outages.
#[derive(clap::Args, Debug, Clone)]
pub struct Strictness {
    /// What a request that comes back while its key is blocked after a 429 does to the block
    #[arg(long, value_enum, default_value_t)]
    pub early_retry: EarlyRetry,
    /// Fault streaks: in every EVERY, one stretch of LASTING in which every request fails, placed
    /// by --seed, e.g. 30s/5s
    #[arg(long, value_name = "EVERY/LASTING", value_parser = parse_streaks)]
    pub fault_streaks: Option<(Duration, Duration)>,
    /// Status of the requests inside a streak (502 to 504 with a gateway's HTML page)
    #[arg(long, value_name = "STATUS", default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..600))]
    pub streak_status: u16,
    /// Strike requests with the everyday faults, drawn from --seed: 5% 429, 5% 500, 2% HTML 502,
    /// 2% connection resets, 1% bodies cut in half
    #[arg(long)]
    pub everyday_faults: bool,
}

impl Strictness {
    /// The fault rules these flags ask for, drawn from `seed`: the streaks first, then the
    /// everyday faults with the vendor's own 429 and 500.
    pub fn faults(&self, seed: u64, too_many: Action, server_error: Action) -> Vec<Fault> {
        let mut faults: Vec<Fault> = self
            .fault_streaks
            .map(|(every, lasting)| {
                Fault::in_streaks(
                    Streaks::new(every, lasting, seed),
                    Action::status(self.streak_status),
                )
            })
            .into_iter()
            .collect();
        if self.everyday_faults {
            faults.extend(everyday(seed, too_many, server_error));
        }
        faults
    }
}

/// A duration in `s` or `ms` (`5s`, `250ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix("ms") {
        millis.parse().ok().map(Duration::from_millis)
    } else {
        text.strip_suffix('s')?
            .parse()
            .ok()
            .map(Duration::from_secs)
    }
}

/// `--fault-streaks EVERY/LASTING`: `30s/5s`, `1000ms/200ms`; LASTING no longer than EVERY.
pub fn parse_streaks(text: &str) -> Result<(Duration, Duration), String> {
    let invalid = || format!("`{text}` is not EVERY/LASTING such as 30s/5s or 1000ms/200ms");
    let (every, lasting) = text.split_once('/').ok_or_else(invalid)?;
    let every = parse_duration(every).ok_or_else(invalid)?;
    let lasting = parse_duration(lasting).ok_or_else(invalid)?;
    if every.is_zero() || lasting.is_zero() || lasting > every {
        return Err(invalid());
    }
    Ok((every, lasting))
}

/// `--quota N/DURATION`: at most N requests in any DURATION, given in `s` or `ms` (`5/1s`,
/// `100/60s`, `25/5000ms`).
pub fn parse_quota(text: &str) -> Result<Quota, String> {
    let invalid = || format!("`{text}` is not a quota such as 5/1s, 100/60s or 25/5000ms");
    let (requests, per) = text.split_once('/').ok_or_else(invalid)?;
    let requests: u32 = requests.trim().parse().map_err(|_| invalid())?;
    let per = parse_duration(per).ok_or_else(invalid)?;
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
        assert_eq!(
            parse_streaks("30s/5s"),
            Ok((Duration::from_secs(30), Duration::from_secs(5)))
        );
        assert_eq!(
            parse_streaks("1000ms/200ms"),
            Ok((Duration::from_secs(1), Duration::from_millis(200)))
        );
        for bad in ["", "30s", "5s/30s", "0s/0s", "30/5", "30s/0s"] {
            assert!(parse_streaks(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
    }
}
