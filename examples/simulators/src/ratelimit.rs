//! Per-key token buckets, the shape most SaaS rate limits take (Laravel's throttle included).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so tests running with a paused clock can step through refills.
use tokio::time::Instant;

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Served; `remaining` whole requests are left in the bucket.
    Allowed { remaining: u32 },
    /// Rejected; one token will be back after `retry_after_secs` (always at least 1).
    Limited { retry_after_secs: u64 },
}

/// A bucket of `per_minute` tokens for each key, refilled continuously at `per_minute / 60` a second.
///
/// Kept as GCRA (one "theoretical arrival time" per key) in integer nanoseconds, so that the
/// `Retry-After` values tests assert on are exact rather than subject to float rounding.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    /// Per key: the instant at which its bucket will be full again.
    full_at: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            full_at: Mutex::default(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// Takes one token from `key`'s bucket if it has one.
    pub fn check(&self, key: &str) -> Decision {
        if self.per_minute == 0 {
            return Decision::Limited {
                retry_after_secs: 60,
            };
        }
        let interval = Duration::from_secs(60) / self.per_minute;
        let window = interval * self.per_minute;
        let now = Instant::now();
        let mut full_at = self.full_at.lock().unwrap_or_else(|e| e.into_inner());
        let previous = full_at.get(key).map_or(now, |&at| at.max(now));
        let used = previous + interval - now;
        if used <= window {
            full_at.insert(key.to_owned(), previous + interval);
            let remaining = (window - used).as_nanos() / interval.as_nanos();
            Decision::Allowed {
                remaining: remaining as u32,
            }
        } else {
            let wait = (used - window).as_nanos().div_ceil(1_000_000_000);
            Decision::Limited {
                retry_after_secs: (wait as u64).max(1),
            }
        }
    }
}

/// "At most `requests` in any `per`", the way Vision One (100 a minute) and Verkada (300 a minute
/// and 25 in any 5 seconds) state their quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    pub per: Duration,
}

/// Every quota at once, per key, counted exactly over sliding windows. A rejected request does
/// not count, unless [`counting_refused`](Self::counting_refused) says so.
#[derive(Debug)]
pub struct SlidingQuotas {
    quotas: Vec<Quota>,
    count_refused: bool,
    sent: Mutex<HashMap<String, std::collections::VecDeque<Instant>>>,
}

impl SlidingQuotas {
    pub fn new(quotas: Vec<Quota>) -> Self {
        Self {
            quotas,
            count_refused: false,
            sent: Mutex::default(),
        }
    }

    /// Whether a refused request uses up quota too, as some vendors count it.
    pub fn counting_refused(mut self, count_refused: bool) -> Self {
        self.count_refused = count_refused;
        self
    }

    /// Admits one request for `key` if no quota is exhausted.
    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let longest = self
            .quotas
            .iter()
            .map(|quota| quota.per)
            .max()
            .unwrap_or_default();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let times = sent.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|&at| now.duration_since(at) >= longest)
        {
            times.pop_front();
        }
        let mut wait = Duration::ZERO;
        let mut remaining = u32::MAX;
        for quota in &self.quotas {
            let in_window: Vec<Instant> = times
                .iter()
                .copied()
                .filter(|&at| now.duration_since(at) < quota.per)
                .collect();
            let used = in_window.len() as u32;
            if used >= quota.requests {
                // Room comes back when the oldest request still counted leaves the window.
                let oldest = in_window[in_window.len() - quota.requests as usize];
                wait = wait.max(quota.per - now.duration_since(oldest));
            } else {
                remaining = remaining.min(quota.requests - used - 1);
            }
        }
        if wait.is_zero() || self.count_refused {
            times.push_back(now);
        }
        if wait > Duration::ZERO {
            return Decision::Limited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
        }
        Decision::Allowed { remaining }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sliding_quotas_count_every_window() {
        let quotas = SlidingQuotas::new(vec![
            Quota {
                requests: 3,
                per: Duration::from_secs(1),
            },
            Quota {
                requests: 5,
                per: Duration::from_secs(10),
            },
        ]);
        for _ in 0..3 {
            assert!(matches!(quotas.check("a"), Decision::Allowed { .. }));
        }
        assert!(matches!(quotas.check("a"), Decision::Limited { .. }));
        assert!(matches!(quotas.check("b"), Decision::Allowed { .. }));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(quotas.check("a"), Decision::Allowed { .. }));
        assert!(matches!(quotas.check("a"), Decision::Allowed { .. }));
        // Five in ten seconds now, whatever the one-second window says.
        assert_eq!(
            quotas.check("a"),
            Decision::Limited {
                retry_after_secs: 9
            }
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(matches!(quotas.check("a"), Decision::Allowed { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn refused_requests_count_when_so_set() {
        let one_a_second = || {
            vec![Quota {
                requests: 1,
                per: Duration::from_secs(1),
            }]
        };
        for (count_refused, after_retrying) in [(false, true), (true, false)] {
            let quotas = SlidingQuotas::new(one_a_second()).counting_refused(count_refused);
            assert!(matches!(quotas.check("a"), Decision::Allowed { .. }));
            tokio::time::advance(Duration::from_millis(500)).await;
            // Refused; when it counts, it holds the window open past the first one's second.
            assert!(matches!(quotas.check("a"), Decision::Limited { .. }));
            tokio::time::advance(Duration::from_millis(600)).await;
            let allowed = matches!(quotas.check("a"), Decision::Allowed { .. });
            assert_eq!(allowed, after_retrying, "counting refused: {count_refused}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_empties_then_refills() {
        let limiter = RateLimiter::new(3);
        assert_eq!(limiter.check("a"), Decision::Allowed { remaining: 2 });
        assert_eq!(limiter.check("a"), Decision::Allowed { remaining: 1 });
        assert_eq!(limiter.check("a"), Decision::Allowed { remaining: 0 });
        // 3 a minute is one token every 20 s.
        assert_eq!(
            limiter.check("a"),
            Decision::Limited {
                retry_after_secs: 20
            }
        );
        // Keys do not share buckets.
        assert_eq!(limiter.check("b"), Decision::Allowed { remaining: 2 });

        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(
            limiter.check("a"),
            Decision::Limited {
                retry_after_secs: 5
            }
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(limiter.check("a"), Decision::Allowed { remaining: 0 });
    }

    #[test]
    fn zero_limit_rejects_everything() {
        assert_eq!(
            RateLimiter::new(0).check("a"),
            Decision::Limited {
                retry_after_secs: 60
            }
        );
    }
}
