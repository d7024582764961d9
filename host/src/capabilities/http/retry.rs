//! Which failed requests are sent again, and how long to wait first: exponential backoff with full
//! jitter, for as long as the run makes progress somewhere (or within the attempts and time a
//! user set).

use crate::runtime::wit::trawl::connector::http::{Error, Method};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How a request that failed in a way worth retrying is sent again.
///
/// Retried: a 429, 500, 502, 503 or 504 response, a connection that could not be made (refused,
/// DNS, TLS), a connection reset, a timeout and a body cut short. Never retried: every other status
/// (400, 401, 403, 404 and the rest of 4xx are the connector's to handle; a 401 may make it renew a
/// token and call again), a body over the size cap, a request the policy denied.
///
/// Which methods are retried: every method when the connection could not be made (the request
/// never left) or when the server answered with a status above, POST included: a 429 or 503 says
/// the request was not processed, and the POSTs connectors send (token exchanges, search queries)
/// are idempotent in practice. After a failure once the request may have reached the server (a
/// reset, a timeout, a body cut short), only idempotent methods are sent again (GET, HEAD, PUT,
/// DELETE, as RFC 9110 defines them), since a POST or PATCH may have taken effect.
///
/// The wait before retry `n` (from 1) is uniform in `[0, min(max_delay, base * factor^(n-1))]`
/// ("full jitter", so that workers that failed together do not retry together), but never less than
/// a `Retry-After` the server sent.
///
/// Patience is counted in time, run-wide: a request is sent again for as long as the run makes
/// progress somewhere (any answer that is not a failure worth retrying, to any request of the
/// run), and the run gives up once nothing has for `stall`. A streak of faults on one window
/// does not stop a run whose other windows move, and two minutes of nothing but 503s do not stop
/// a run that is patient for thirty. A user may cap it further: retries also stop after
/// `max_attempts` attempts in all, or when the next wait would end past `total` from the first
/// attempt; then the last response (a 429 or 5xx reaches the connector as a normal response) or
/// the last error is returned. A stalled run's request fails with a message naming what kept
/// failing.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off. No cap by default.
    pub max_attempts: u32,
    /// The time budget of one request, retries and waits included (but not the last attempt once
    /// started, which is bounded by the request timeout). No cap (a year) by default.
    pub total: Duration,
    /// How long the whole run may go without progress before its requests stop being retried.
    pub stall: Duration,
    /// The first backoff ceiling.
    pub base: Duration,
    /// How much the ceiling grows with each retry.
    pub factor: f64,
    /// The largest backoff ceiling (a longer `Retry-After` is still honoured).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            total: UNCAPPED,
            stall: Duration::from_secs(30 * 60),
            base: Duration::from_millis(500),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
        }
    }
}

/// A request's time budget when the user set none: a year, far past any stall.
const UNCAPPED: Duration = Duration::from_secs(365 * 86_400);

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The longest wait before retry `retry` (from 1), before jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let growth = self
            .factor
            .max(1.0)
            .powi(retry.saturating_sub(1).min(64) as i32);
        let ceiling = self.base.as_secs_f64() * growth;
        Duration::try_from_secs_f64(ceiling)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Whether a status is worth retrying.
pub(super) fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// How an attempt failed without a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// No connection could be made: the request never left.
    Connect,
    /// The request may have reached the server: a reset, a timeout, a body cut short.
    Interrupted,
    /// Sending it again cannot help: a body over the cap, a redirect loop.
    Permanent,
}

impl Failure {
    pub(super) fn of(error: &reqwest::Error) -> Self {
        if error.is_connect() {
            Failure::Connect
        } else if error.is_redirect() || error.is_builder() {
            Failure::Permanent
        } else {
            Failure::Interrupted
        }
    }

    pub(super) fn retryable(self, method: Method) -> bool {
        match self {
            Failure::Connect => true,
            Failure::Interrupted => idempotent(method),
            Failure::Permanent => false,
        }
    }
}

fn idempotent(method: Method) -> bool {
    matches!(
        method,
        Method::Get | Method::Head | Method::Put | Method::Delete
    )
}

/// When the run last made progress, and what failed since: shared by every request of a run.
#[derive(Debug)]
pub(super) struct Patience {
    streak: Mutex<Streak>,
}

#[derive(Debug)]
struct Streak {
    last_progress: Instant,
    /// Failures worth retrying since then, by origin and kind ("answers 503"), and the last of
    /// each origin's as the log would say it.
    failures: BTreeMap<String, (BTreeMap<String, u64>, String)>,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            streak: Mutex::new(Streak {
                last_progress: Instant::now(),
                failures: BTreeMap::new(),
            }),
        }
    }
}

impl Patience {
    fn streak(&self) -> std::sync::MutexGuard<'_, Streak> {
        self.streak.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An answer that is not a failure worth retrying: the run moves.
    pub(super) fn progressed(&self) {
        let mut streak = self.streak();
        streak.last_progress = Instant::now();
        streak.failures.clear();
    }

    /// A failure worth retrying, of `kind` ("answers 503"), described by `detail`.
    pub(super) fn failed(&self, origin: &str, kind: String, detail: String) {
        let mut streak = self.streak();
        let (kinds, last) = streak.failures.entry(origin.to_string()).or_default();
        *kinds.entry(kind).or_default() += 1;
        *last = detail;
    }

    /// Whether nothing has moved for `stall`; if so, the error that ends the request, naming
    /// what kept failing.
    pub(super) fn stalled(&self, origin: &str, stall: Duration) -> Option<Error> {
        let streak = self.streak();
        let quiet = streak.last_progress.elapsed();
        if quiet < stall {
            return None;
        }
        let mut message = format!(
            "no request to {origin} succeeded for {}",
            human_duration(quiet)
        );
        if let Some((kinds, last)) = streak.failures.get(origin) {
            for (index, (kind, count)) in kinds.iter().enumerate() {
                let _ = write!(
                    message,
                    "{}{count} {kind}",
                    if index == 0 { ": " } else { ", " }
                );
            }
            let _ = write!(message, "; last: {last}");
        }
        let _ = write!(
            message,
            " (the run gives up after this long without progress: `limits: (stall_minutes: ...)` \
             in the config)"
        );
        Some(Error::Transport(message))
    }
}

/// `30 min`, `2 min 5 s`, `45 s`, `1.5 s`.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..10 => format!("{:.1} s", duration.as_secs_f64()),
        10..60 => format!("{seconds} s"),
        _ if seconds.is_multiple_of(60) => format!("{} min", seconds / 60),
        _ => format!("{} min {} s", seconds / 60, seconds % 60),
    }
}

/// Random waits for full jitter: a SplitMix64 sequence, seeded at random, shared lock-free by every
/// task of a capability.
#[derive(Debug)]
pub(super) struct Jitter {
    state: AtomicU64,
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter {
            state: AtomicU64::new(RandomState::new().hash_one(0x6a69_7474_6572_u64)),
        }
    }
}

impl Jitter {
    /// A wait uniform in `[0, ceiling]`.
    pub(super) fn full(&self, ceiling: Duration) -> Duration {
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 53 random bits, as a fraction in [0, 1].
        let fraction = (z >> 11) as f64 / ((1u64 << 53) - 1) as f64;
        ceiling.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn patience_runs_out_only_after_a_stall_and_names_what_failed() {
        let patience = Patience::default();
        let stall = Duration::from_secs(60);
        let origin = "https://api.example.com:443";
        for _ in 0..3 {
            patience.failed(origin, "answers 503".into(), "503 from /a".into());
        }
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(patience.stalled(origin, stall).is_none());
        // Progress anywhere in the run starts the clock again and forgets the failures.
        patience.progressed();
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(patience.stalled(origin, stall).is_none());
        patience.failed(origin, "answers 503".into(), "503 from /b".into());
        patience.failed(
            origin,
            "connections reset or cut short".into(),
            "reset on /c".into(),
        );
        patience.failed("https://other:443", "answers 502".into(), "502".into());
        tokio::time::advance(Duration::from_secs(10)).await;
        let Some(Error::Transport(message)) = patience.stalled(origin, stall) else {
            panic!("the run should have stalled");
        };
        assert!(
            message.starts_with(
                "no request to https://api.example.com:443 succeeded for 1 min: 1 answers 503, \
                 1 connections reset or cut short; last: reset on /c"
            ),
            "{message}"
        );
        assert!(message.contains("stall_minutes"), "{message}");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 min");
        assert_eq!(human_duration(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn ceilings_grow_to_the_cap() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u64> = (1..=9)
            .map(|retry| policy.ceiling(retry).as_millis() as u64)
            .collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }

    #[test]
    fn full_jitter_covers_the_range() {
        let jitter = Jitter::default();
        let ceiling = Duration::from_secs(8);
        let waits: Vec<Duration> = (0..2000).map(|_| jitter.full(ceiling)).collect();
        assert!(waits.iter().all(|wait| *wait <= ceiling));
        let below = |limit: Duration| waits.iter().filter(|wait| **wait < limit).count();
        // Roughly uniform: about a quarter in each quarter of the range.
        for quarter in 1..=3 {
            let share = below(ceiling * quarter / 4);
            let expected = 500 * quarter as usize;
            assert!(share.abs_diff(expected) < 150, "{share} vs {expected}");
        }
        assert_eq!(jitter.full(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn what_is_retried() {
        for status in [429, 500, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [200, 204, 301, 400, 401, 403, 404, 409, 413, 422, 501, 505] {
            assert!(!retryable_status(status), "{status}");
        }
        for method in [
            Method::Get,
            Method::Head,
            Method::Put,
            Method::Delete,
            Method::Post,
            Method::Patch,
        ] {
            assert!(Failure::Connect.retryable(method));
            assert!(!Failure::Permanent.retryable(method));
        }
        assert!(Failure::Interrupted.retryable(Method::Get));
        assert!(Failure::Interrupted.retryable(Method::Head));
        assert!(!Failure::Interrupted.retryable(Method::Post));
        assert!(!Failure::Interrupted.retryable(Method::Patch));
    }
}
