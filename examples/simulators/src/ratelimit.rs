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
    count_refused: bool,
    /// Per key: the instant at which its bucket will be full again.
    full_at: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            count_refused: false,
            full_at: Mutex::default(),
        }
    }

    /// Whether a refused request takes a token too (the bucket goes into debt), so that a client
    /// retrying too soon keeps itself limited.
    pub fn counting_refused(mut self, count_refused: bool) -> Self {
        self.count_refused = count_refused;
        self
    }

    /// Takes a token from `key`'s bucket whether or not it has one: a request refused elsewhere
    /// that still counts.
    pub fn charge(&self, key: &str) {
        if self.per_minute == 0 {
            return;
        }
        let interval = Duration::from_secs(60) / self.per_minute;
        let now = Instant::now();
        let mut full_at = self.full_at.lock().unwrap_or_else(|e| e.into_inner());
        let previous = full_at.get(key).map_or(now, |&at| at.max(now));
        full_at.insert(key.to_owned(), previous + interval);
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
            if self.count_refused {
                full_at.insert(key.to_owned(), previous + interval);
            }
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

    /// Counts a request for `key` that was refused elsewhere but still uses up quota.
    pub fn charge(&self, key: &str) {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .push_back(Instant::now());
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

/// What happens to a key after a 429 it brought on itself: it is refused for a while, whatever
/// its quota says, as vendors that punish hammering do (Verkada's 5-second cooldown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// How long the key is refused after a 429.
    pub block: Duration,
    pub early_retry: EarlyRetry,
}

impl Penalty {
    /// Refused for `block`, an early retry changing nothing.
    pub fn block(block: Duration) -> Self {
        Self {
            block,
            early_retry: EarlyRetry::default(),
        }
    }

    pub fn early_retry(mut self, early_retry: EarlyRetry) -> Self {
        self.early_retry = early_retry;
        self
    }
}

/// What a request that comes back while its key is blocked does to the block (it is refused in
/// every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EarlyRetry {
    /// The block ends when it would have.
    #[default]
    Refused,
    /// The block starts over from the early request.
    Restarts,
    /// The block starts over, twice as long as the last one (at most [`MAX_BLOCK_GROWTH`] times
    /// [`Penalty::block`]).
    Doubles,
}

/// How far [`EarlyRetry::Doubles`] can stretch a block: 64 times its first length.
pub const MAX_BLOCK_GROWTH: u32 = 64;

/// Every limit of a simulator for one kind of key (token, organisation): a token bucket, sliding
/// quotas, the penalty after a 429, and whether refused requests count against the quotas.
#[derive(Debug)]
pub struct Gate {
    limiter: Option<RateLimiter>,
    quotas: Option<SlidingQuotas>,
    penalty: Option<Penalty>,
    count_refused: bool,
    blocks: Mutex<HashMap<String, Block>>,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    until: Instant,
    length: Duration,
}

impl Gate {
    pub fn new(
        per_minute: Option<u32>,
        quotas: &[Quota],
        penalty: Option<Penalty>,
        count_refused: bool,
    ) -> Self {
        Self {
            limiter: per_minute.map(|n| RateLimiter::new(n).counting_refused(count_refused)),
            quotas: (!quotas.is_empty())
                .then(|| SlidingQuotas::new(quotas.to_vec()).counting_refused(count_refused)),
            penalty: penalty.filter(|penalty| !penalty.block.is_zero()),
            count_refused,
            blocks: Mutex::default(),
        }
    }

    /// The token bucket's size a minute, if there is one (for `X-RateLimit-Limit`).
    pub fn per_minute(&self) -> Option<u32> {
        self.limiter.as_ref().map(RateLimiter::limit)
    }

    /// Whether any limit applies at all.
    pub fn limits(&self) -> bool {
        self.limiter.is_some() || self.quotas.is_some()
    }

    /// Admits one request for `key`, or says how long it must wait. Every refusal is one the
    /// client brought on itself: over quota, or back too early after one.
    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(block) = blocks.get_mut(key)
            && now < block.until
        {
            if let Some(penalty) = self.penalty {
                match penalty.early_retry {
                    EarlyRetry::Refused => {}
                    EarlyRetry::Restarts => block.until = now + block.length,
                    EarlyRetry::Doubles => {
                        block.length = (block.length * 2).min(penalty.block * MAX_BLOCK_GROWTH);
                        block.until = now + block.length;
                    }
                }
            }
            if self.count_refused {
                self.charge(key);
            }
            return Decision::Limited {
                retry_after_secs: whole_seconds(block.until - now),
            };
        }
        // Checked in turn: unless refused requests count, one a limit refuses does not count
        // against the next.
        let mut remaining = u32::MAX;
        let mut refused = None;
        if let Some(limiter) = &self.limiter {
            match limiter.check(key) {
                Decision::Allowed { remaining: left } => remaining = remaining.min(left),
                Decision::Limited { retry_after_secs } => refused = Some(retry_after_secs),
            }
        }
        if let Some(quotas) = &self.quotas {
            if refused.is_none() {
                match quotas.check(key) {
                    Decision::Allowed { remaining: left } => remaining = remaining.min(left),
                    Decision::Limited { retry_after_secs } => refused = Some(retry_after_secs),
                }
            } else if self.count_refused {
                quotas.charge(key);
            }
        }
        let Some(mut retry_after_secs) = refused else {
            return Decision::Allowed { remaining };
        };
        if let Some(penalty) = self.penalty {
            blocks.insert(
                key.to_owned(),
                Block {
                    until: now + penalty.block,
                    length: penalty.block,
                },
            );
            retry_after_secs = retry_after_secs.max(whole_seconds(penalty.block));
        }
        Decision::Limited { retry_after_secs }
    }

    fn charge(&self, key: &str) {
        if let Some(limiter) = &self.limiter {
            limiter.charge(key);
        }
        if let Some(quotas) = &self.quotas {
            quotas.charge(key);
        }
    }
}

/// Seconds to wait, rounded up, at least 1 (what `Retry-After` can say).
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_a_second() -> Vec<Quota> {
        vec![Quota {
            requests: 1,
            per: Duration::from_secs(1),
        }]
    }

    fn limited(decision: Decision) -> Option<u64> {
        match decision {
            Decision::Limited { retry_after_secs } => Some(retry_after_secs),
            Decision::Allowed { .. } => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_the_key_for_the_penalty() {
        let gate = Gate::new(
            None,
            &one_a_second(),
            Some(Penalty::block(Duration::from_secs(5))),
            false,
        );
        assert_eq!(limited(gate.check("a")), None);
        assert_eq!(limited(gate.check("a")), Some(5));
        // The quota alone would allow it again after a second; the block holds for five.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(limited(gate.check("a")), Some(3));
        assert_eq!(limited(gate.check("b")), None, "keys are blocked alone");
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(limited(gate.check("a")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn coming_back_early_extends_the_block_when_so_set() {
        for (early_retry, waits) in [
            (EarlyRetry::Refused, [4, 3, 2]),
            (EarlyRetry::Restarts, [5, 5, 5]),
            (EarlyRetry::Doubles, [10, 20, 40]),
        ] {
            let gate = Gate::new(
                None,
                &one_a_second(),
                Some(Penalty::block(Duration::from_secs(5)).early_retry(early_retry)),
                false,
            );
            assert_eq!(limited(gate.check("a")), None);
            assert_eq!(limited(gate.check("a")), Some(5));
            // Back one second into the block, then again a second later, and again.
            let mut seen = Vec::new();
            for _ in 0..3 {
                tokio::time::advance(Duration::from_secs(1)).await;
                seen.push(limited(gate.check("a")).unwrap_or(0));
            }
            assert_eq!(seen, waits, "{early_retry:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn doubling_stops_at_its_ceiling() {
        let gate = Gate::new(
            None,
            &one_a_second(),
            Some(Penalty::block(Duration::from_secs(1)).early_retry(EarlyRetry::Doubles)),
            false,
        );
        gate.check("a");
        let mut last = 0;
        for _ in 0..10 {
            last = limited(gate.check("a")).unwrap();
        }
        assert_eq!(last, u64::from(MAX_BLOCK_GROWTH));
    }

    #[tokio::test(start_paused = true)]
    async fn refused_requests_use_up_the_quota_through_the_gate() {
        let quotas = [Quota {
            requests: 3,
            per: Duration::from_secs(10),
        }];
        for (count_refused, allowed_after) in [(false, true), (true, false)] {
            let gate = Gate::new(None, &quotas, None, count_refused);
            for _ in 0..3 {
                assert_eq!(limited(gate.check("a")), None);
            }
            tokio::time::advance(Duration::from_secs(5)).await;
            // Three refused retries, five seconds in.
            for _ in 0..3 {
                assert!(limited(gate.check("a")).is_some());
            }
            tokio::time::advance(Duration::from_secs(5)).await;
            // The first three have left the window; the refused ones, if counted, have not.
            assert_eq!(
                limited(gate.check("a")).is_none(),
                allowed_after,
                "counting refused: {count_refused}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_bucket_goes_into_debt_when_refused_requests_count() {
        let limiter = RateLimiter::new(60).counting_refused(true);
        assert_eq!(limiter.check("a"), Decision::Allowed { remaining: 59 });
        for _ in 0..59 {
            limiter.check("a");
        }
        // Empty: each refused request pushes the next token a second further away.
        assert_eq!(limited(limiter.check("a")), Some(1));
        assert_eq!(limited(limiter.check("a")), Some(2));
        assert_eq!(limited(limiter.check("a")), Some(3));
    }

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
