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

#[cfg(test)]
mod tests {
    use super::*;

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
