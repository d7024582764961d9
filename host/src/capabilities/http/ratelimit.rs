//! Client-side rate limiting, shared by every request of a run, and what servers say about it.
//!
//! Requests are counted per key: the origin (`scheme://host:port`) and a fingerprint of the
//! credential sent, so that two profiles with different tokens against the same host have separate
//! budgets, while every worker of one profile shares one. A key is limited by any number of
//! [`RateLimit`]s at once (Verkada's 300 per minute *and* 25 per 5 seconds; Vision One's per second,
//! minute and hour), and can be paused as a whole when a server asks for it (`Retry-After`, or a
//! quota reported as exhausted).

use crate::runtime::wit::Header;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;
// tokio's clock, so that tests with a paused clock can step through windows.
use tokio::time::Instant;

/// The longest a server can pause a key for; a longer `Retry-After` or reset is treated as this.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// At most `requests` requests in any `per` (a sliding window, as vendors state their quotas).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    pub const fn new(requests: u32, per: Duration) -> Self {
        RateLimit { requests, per }
    }

    /// The same limit over a slightly longer window. A send is logged just before the request
    /// leaves, and the vendor counts it when it arrives; were two requests N apart to travel at
    /// different speeds, the vendor could see them closer than `per`. 0.5% of the window (at
    /// most 100 ms) absorbs that, at a cost well under the 2% a full quota allows.
    pub fn with_safety_margin(self) -> Self {
        RateLimit {
            per: self.per + (self.per / 200).min(Duration::from_millis(100)),
            ..self
        }
    }

    pub const fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }

    pub const fn per_minute(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }

    pub const fn per_hour(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(3600))
    }

    /// Whether the limit can be enforced: a limit of 0 requests, or over no time, cannot.
    pub fn is_usable(&self) -> bool {
        self.requests > 0 && !self.per.is_zero()
    }
}

/// A connector's declared quota: `requests` per `per` milliseconds.
impl From<&crate::runtime::wit::RateLimit> for RateLimit {
    fn from(limit: &crate::runtime::wit::RateLimit) -> Self {
        RateLimit::new(limit.requests, Duration::from_millis(limit.per))
    }
}

impl From<crate::runtime::wit::RateLimit> for RateLimit {
    fn from(limit: crate::runtime::wit::RateLimit) -> Self {
        RateLimit::from(&limit)
    }
}

/// `300/60s`, `25/5s`, `5/1s`, `800/1h`, `10/500ms`.
impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.per.as_millis();
        let per = if millis.is_multiple_of(3_600_000) && millis > 0 {
            format!("{}h", millis / 3_600_000)
        } else if millis.is_multiple_of(60_000) && millis > 0 {
            format!("{}m", millis / 60_000)
        } else if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        };
        write!(f, "{}/{per}", self.requests)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "`{text}` is not a rate limit: {reason} (expected requests/period, e.g. 300/60s, 25/5s, 5/s, \
     20/min, 800/h or 10/500ms)"
)]
pub struct RateLimitParseError {
    text: String,
    reason: &'static str,
}

/// Parses `requests/period`: a period is an optional whole number and a unit (`ms`, `s`, `sec`,
/// `m`, `min`, `h`, `hour`), so `300/60s`, `300/min` and `300/1m` are the same limit.
impl FromStr for RateLimit {
    type Err = RateLimitParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| RateLimitParseError {
            text: text.to_string(),
            reason,
        };
        let (requests, period) = text.split_once('/').ok_or_else(|| error("no `/`"))?;
        let requests: u32 = requests
            .trim()
            .parse()
            .map_err(|_| error("the number of requests is not a whole number"))?;
        let period = period.trim();
        let digits = period.len()
            - period
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let (count, unit) = period.split_at(digits);
        let count: u64 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| error("the period is too long"))?
        };
        let unit_millis: u64 = match unit.trim() {
            "ms" => 1,
            "s" | "sec" | "second" => 1000,
            "m" | "min" | "minute" => 60_000,
            "h" | "hour" => 3_600_000,
            _ => return Err(error("the period's unit must be ms, s, min or h")),
        };
        let limit = RateLimit::new(
            requests,
            Duration::from_millis(
                count
                    .checked_mul(unit_millis)
                    .ok_or_else(|| error("the period is too long"))?,
            ),
        );
        if !limit.is_usable() {
            return Err(error("both numbers must be above zero"));
        }
        Ok(limit)
    }
}

/// What requests are counted together: an origin and the credential they carry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct RateKey {
    origin: String,
    /// A salted hash of the credential's values; `None` for requests that carry none.
    credential: Option<[u8; 16]>,
}

impl RateKey {
    pub(super) fn origin(&self) -> &str {
        &self.origin
    }
}

/// Shows a few bytes of the (salted) fingerprint, never anything a secret could be recovered from.
impl fmt::Debug for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credential {
            Some(hash) => write!(
                f,
                "{} (credential {})",
                self.origin,
                hex::encode(&hash[..4])
            ),
            None => write!(f, "{} (no credential)", self.origin),
        }
    }
}

/// The rate limiters of a run, one per origin and credential, shared by every [`HttpCapability`]
/// given the same registry and every task that uses them. Cloning is cheap: clones share the same
/// limiters.
///
/// [`HttpCapability`]: super::HttpCapability
#[derive(Clone, Default)]
pub struct RateLimiters {
    inner: Arc<Registry>,
}

struct Registry {
    /// Salts credential fingerprints, so that they mean nothing outside this process.
    salt: u64,
    buckets: Mutex<HashMap<RateKey, Arc<Bucket>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            salt: RandomState::new().hash_one(0x7472_6177_6c00_u64),
            buckets: Mutex::default(),
        }
    }
}

impl fmt::Debug for RateLimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiters")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl RateLimiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of requests to `origin` that carry the secret `values` (none: no credential). The
    /// order of the values does not matter.
    pub(super) fn key<'a>(
        &self,
        origin: String,
        values: impl IntoIterator<Item = &'a str>,
    ) -> RateKey {
        let mut values: Vec<&str> = values.into_iter().collect();
        values.sort_unstable();
        values.dedup();
        let credential = (!values.is_empty()).then(|| {
            let mut hash = Sha256::new();
            hash.update(b"trawl rate-limit key\0");
            hash.update(self.inner.salt.to_le_bytes());
            for value in values {
                // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
                hash.update((value.len() as u64).to_le_bytes());
                hash.update(value.as_bytes());
            }
            let digest = hash.finalize();
            let mut short = [0; 16];
            short.copy_from_slice(&digest[..16]);
            short
        });
        RateKey { origin, credential }
    }

    /// The limiter of `key`, created on first use.
    pub(super) fn bucket(&self, key: &RateKey) -> Arc<Bucket> {
        self.lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Bucket::default()))
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RateKey, Arc<Bucket>>> {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limiter of one key: an exact sliding-window log of send instants, and a pause.
///
/// Why a log and not GCRA (the `governor` crate) or a token bucket: vendors state their quotas as
/// "at most N requests in any T seconds", sometimes several at once (300 per minute *and* 25 per
/// 5 seconds). GCRA enforces a rate with a burst tolerance; configured as N per T it spaces
/// requests T/N apart once the burst is spent, so it either refuses the burst a vendor grants (25
/// requests at once, then a pause) or, with the burst allowed, lets more than N through in some
/// windows as it refills continuously. It also needs one limiter per window, each unaware of the
/// others' waits. The log checks every limit against the same record of what was actually sent,
/// so it is exact for all of them at once, and it is small: it holds at most the largest N among
/// the limits (hundreds of instants).
///
/// One log serves every limit: the request about to go out fits a limit of N per T when the N-th
/// most recent send is at least T ago.
///
/// Fairness: the log sits behind a tokio mutex, which is FIFO. A caller holds it while it waits
/// for room, so callers go out one at a time in the order they arrived, each recording the
/// instant it actually left; a crowd of waiters never wakes at once, and a waiter that is cancelled
/// (its call timed out) leaves nothing behind. The pause lives outside the mutex, so that a
/// response can pause the key while someone waits for room; the waiter checks it again on waking.
#[derive(Default)]
pub(super) struct Bucket {
    log: tokio::sync::Mutex<SendLog>,
    paused_until: Mutex<Option<Instant>>,
    /// When requests in flight finished, by ticket, until the log (behind its mutex, which a
    /// waiter may hold) takes them in.
    finished: Mutex<HashMap<u64, Instant>>,
    finishing: tokio::sync::Notify,
}

/// One request as the log knows it.
#[derive(Clone, Copy, Debug)]
struct Sent {
    ticket: u64,
    /// When it left; once it is answered, when the answer came.
    at: Instant,
    in_flight: bool,
}

#[derive(Default)]
struct SendLog {
    /// Requests, oldest first.
    sends: VecDeque<Sent>,
    /// How many to keep: the largest N of any limit checked against this log.
    keep: usize,
    next_ticket: u64,
}

/// What stands between a request and the wire.
enum Room {
    /// It may go at this instant (or now, if `None`).
    At(Option<Instant>),
    /// A request it must be counted against is still in flight: when the vendor saw it is not
    /// known until it is answered.
    AfterInFlight,
}

impl SendLog {
    /// When one more request fits every limit.
    ///
    /// A request's place in the window is the instant its answer arrived, not the instant it
    /// left: the vendor counted it somewhere in between, and only the later bound is safe. Taking
    /// the departure instead lets a request that was slow to arrive be counted by the vendor
    /// later than by us, and the one N requests after it gets a 429.
    fn room(&self, limits: &[RateLimit]) -> Room {
        let mut ready: Option<Instant> = None;
        for limit in limits.iter().filter(|limit| limit.is_usable()) {
            let n = limit.requests as usize;
            let len = self.sends.len();
            if len < n {
                continue;
            }
            let sent = self.sends[len - n];
            if sent.in_flight {
                return Room::AfterInFlight;
            }
            ready = ready.max(Some(sent.at + limit.per));
        }
        Room::At(ready)
    }

    fn record(&mut self, at: Instant) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.sends.push_back(Sent {
            ticket,
            at,
            in_flight: true,
        });
        while self.sends.len() > self.keep {
            self.sends.pop_front();
        }
        ticket
    }

    /// Moves answered requests to the instant of their answer, keeping the log in time order.
    fn take_in(&mut self, finished: &mut HashMap<u64, Instant>) {
        if finished.is_empty() {
            return;
        }
        for sent in self.sends.iter_mut() {
            if let Some(at) = finished.remove(&sent.ticket) {
                sent.at = at;
                sent.in_flight = false;
            }
        }
        // Tickets no longer in the log were pushed out by newer requests and do not matter.
        finished.clear();
        self.sends.make_contiguous().sort_by_key(|sent| sent.at);
    }
}

/// A request's place in its key's log; dropping it (answered, failed or abandoned) marks the
/// request as finished.
pub(super) struct Slot<'a> {
    bucket: &'a Bucket,
    ticket: u64,
    /// How long the request waited for room.
    pub waited: Duration,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.bucket
            .finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.ticket, Instant::now());
        self.bucket.finishing.notify_waiters();
    }
}

impl Bucket {
    /// Waits until one more request fits every limit in `limits` and the key is not paused, then
    /// records it as sent now. Returns its slot, to be dropped when the request is over, or
    /// `None` without waiting (and without recording anything) when that would be after
    /// `deadline`.
    pub(super) async fn acquire(
        &self,
        limits: &[RateLimit],
        deadline: Instant,
    ) -> Option<Slot<'_>> {
        let started = Instant::now();
        let mut log = tokio::time::timeout_at(deadline, self.log.lock())
            .await
            .ok()?;
        let largest = limits
            .iter()
            .filter(|limit| limit.is_usable())
            .map(|limit| limit.requests as usize)
            .max()
            .unwrap_or(0);
        log.keep = log.keep.max(largest);
        loop {
            // Registered before looking, so that an answer arriving meanwhile still wakes us.
            let finishing = self.finishing.notified();
            log.take_in(&mut self.finished.lock().unwrap_or_else(PoisonError::into_inner));
            let now = Instant::now();
            match log.room(limits) {
                Room::AfterInFlight => {
                    tokio::time::timeout_at(deadline, finishing).await.ok()?;
                }
                Room::At(ready) => match ready.max(self.paused_until()) {
                    Some(ready) if ready > now => {
                        if ready > deadline {
                            return None;
                        }
                        tokio::time::sleep_until(ready).await;
                    }
                    _ => {
                        let ticket = log.record(now);
                        return Some(Slot {
                            bucket: self,
                            ticket,
                            waited: now - started,
                        });
                    }
                },
            }
        }
    }

    /// Pauses the key until `until`, unless it is paused longer already. Returns whether this is
    /// news worth a log line: the key was not paused, or the pause grew by more than a second
    /// (every response of an exhausted quota repeats the same reset).
    pub(super) fn pause_until(&self, until: Instant) -> bool {
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *paused {
            Some(current) if current >= until => false,
            Some(current) if current > Instant::now() => {
                *paused = Some(until);
                until - current > Duration::from_secs(1)
            }
            _ => {
                *paused = Some(until);
                true
            }
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a response says about when to send again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ServerHint {
    /// `Retry-After` of a 429 or 503: the wait before retrying this request.
    pub retry_after: Option<Duration>,
    /// How long the whole key should wait: that `Retry-After`, or the time until an exhausted quota
    /// resets (`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, or the draft standard's
    /// `RateLimit-Remaining` and `RateLimit-Reset`), whichever is longer. At most [`MAX_PAUSE`].
    pub pause: Option<Duration>,
}

/// Reads `Retry-After` and quota headers; `now` is the current wall-clock time, to turn dates and
/// epoch timestamps into waits.
pub(super) fn server_hint(status: u16, headers: &[Header], now: SystemTime) -> ServerHint {
    let header = |name: &str| {
        headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.trim())
    };
    let retry_after = match status {
        429 | 503 => header("retry-after").and_then(|value| parse_retry_after(value, now)),
        _ => None,
    };
    let exhausted = |name| header(name).and_then(|v| v.parse::<f64>().ok()) == Some(0.0);
    let reset = if exhausted("x-ratelimit-remaining") {
        header("x-ratelimit-reset").and_then(|value| parse_reset(value, now))
    } else if exhausted("ratelimit-remaining") {
        // The draft standard's reset is always a number of seconds.
        header("ratelimit-reset").and_then(parse_seconds)
    } else {
        None
    };
    ServerHint {
        retry_after: retry_after.map(|wait| wait.min(MAX_PAUSE)),
        pause: retry_after.max(reset).map(|wait| wait.min(MAX_PAUSE)),
    }
}

/// `Retry-After`: delta-seconds or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = parse_seconds(value) {
        return Some(seconds);
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let date = UNIX_EPOCH.checked_add(Duration::try_from(date.as_duration()).ok()?)?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// `X-RateLimit-Reset`: epoch seconds (GitHub, Laravel), epoch milliseconds, or, below 10^9, a
/// number of seconds from now (Twitter-style APIs use both).
fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let number: f64 = value
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let epoch = if number >= 1e12 {
        number / 1000.0
    } else if number >= 1e9 {
        number
    } else {
        return Duration::try_from_secs_f64(number).ok();
    };
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::try_from_secs_f64(epoch - now).unwrap_or_default())
}

fn parse_seconds(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Duration::try_from_secs_f64(value.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn a_request_counts_from_its_answer() {
        let bucket = Arc::new(Bucket::default());
        let limits = [RateLimit::new(1, Duration::from_secs(1))];
        let start = Instant::now();
        let deadline = start + Duration::from_secs(60);
        let slow = bucket.acquire(&limits, deadline).await.unwrap();
        let next = {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                waited(&bucket, &limits, deadline).await;
                Instant::now()
            })
        };
        // The first request takes 3 s to be answered; the vendor may have counted it at any
        // moment until then, so the next may only go 1 s after the answer.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(slow);
        assert_eq!(next.await.unwrap() - start, Duration::from_secs(4));
    }

    /// Acquires a slot for a request answered at once, returning how long it waited.
    async fn waited(bucket: &Bucket, limits: &[RateLimit], deadline: Instant) -> Option<Duration> {
        bucket
            .acquire(limits, deadline)
            .await
            .map(|slot| slot.waited)
    }

    use super::*;

    const FAR: Duration = Duration::from_secs(24 * 3600);

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The most sends within any window of `per`, given sorted instants.
    fn most_in_any_window(sends: &[Instant], per: Duration) -> usize {
        let mut most = 0;
        let mut first = 0;
        for (last, &at) in sends.iter().enumerate() {
            while at - sends[first] >= per {
                first += 1;
            }
            most = most.max(last - first + 1);
        }
        most
    }

    #[test]
    fn limits_parse_and_print() {
        let cases = [
            ("300/60s", RateLimit::per_minute(300), "300/1m"),
            ("300/min", RateLimit::per_minute(300), "300/1m"),
            ("25/5s", RateLimit::new(25, Duration::from_secs(5)), "25/5s"),
            ("5/s", RateLimit::per_second(5), "5/1s"),
            ("800/h", RateLimit::per_hour(800), "800/1h"),
            (
                "10/500ms",
                RateLimit::new(10, Duration::from_millis(500)),
                "10/500ms",
            ),
            (" 20 / 1 min ", RateLimit::per_minute(20), "20/1m"),
        ];
        for (text, limit, shown) in cases {
            assert_eq!(text.parse::<RateLimit>(), Ok(limit), "{text}");
            assert_eq!(limit.to_string(), shown);
            assert_eq!(shown.parse::<RateLimit>(), Ok(limit));
        }
        for bad in ["300", "0/s", "5/0s", "x/s", "5/fortnight", "-1/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        let wit = crate::runtime::wit::RateLimit {
            requests: 25,
            per: 5000,
        };
        assert_eq!(
            RateLimit::from(wit),
            RateLimit::new(25, Duration::from_secs(5))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides_exactly() {
        let bucket = Bucket::default();
        let limits = [
            RateLimit::new(25, Duration::from_secs(5)),
            RateLimit::per_minute(300),
        ];
        let start = Instant::now();
        let deadline = start + FAR;
        let mut sends = Vec::new();
        for _ in 0..25 {
            assert_eq!(
                waited(&bucket, &limits, deadline).await,
                Some(Duration::ZERO)
            );
            sends.push(Instant::now());
        }
        // The 26th waits until the first has left the 5-second window, and not a moment longer.
        assert_eq!(
            waited(&bucket, &limits, deadline).await,
            Some(Duration::from_secs(5))
        );
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        sends.push(Instant::now());

        // Keep going flat out for three minutes of (virtual) time.
        while Instant::now() - start < Duration::from_secs(180) {
            waited(&bucket, &limits, deadline).await.unwrap();
            sends.push(Instant::now());
        }
        assert_eq!(most_in_any_window(&sends, Duration::from_secs(5)), 25);
        assert_eq!(most_in_any_window(&sends, Duration::from_secs(60)), 300);
        // The minute limit is reached after 12 bursts of 25 (at 0, 5, ..., 55 s): the 301st request
        // waits for the first minute to end, exactly.
        assert_eq!(sends[299] - start, Duration::from_secs(55));
        assert_eq!(sends[300] - start, Duration::from_secs(60));
        // Over three minutes, exactly the limit: 300 a minute.
        assert_eq!(sends.len(), 3 * 300 + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_refused_at_once() {
        let bucket = Bucket::default();
        let limits = [RateLimit::per_second(1)];
        let start = Instant::now();
        waited(&bucket, &limits, start + FAR).await.unwrap();
        assert_eq!(
            waited(&bucket, &limits, start + Duration::from_millis(500)).await,
            None
        );
        assert_eq!(Instant::now(), start);
        // The refused request was not recorded: the next one goes out one second after the first.
        assert_eq!(
            waited(&bucket, &limits, start + FAR).await,
            Some(Duration::from_secs(1))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_never_exceed_any_limit() {
        let bucket = Arc::new(Bucket::default());
        let limits = Arc::new([
            RateLimit::per_second(5),
            RateLimit::per_minute(20),
            RateLimit::per_hour(800),
        ]);
        let start = Instant::now();
        let sends = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (bucket, limits, sends) = (bucket.clone(), limits.clone(), sends.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    waited(&bucket, &limits[..], start + FAR).await.unwrap();
                    sends.lock().unwrap().push((Instant::now(), worker));
                    // Some work between requests.
                    tokio::time::sleep(Duration::from_millis(50 * worker)).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let sends: Vec<Instant> = sends.lock().unwrap().iter().map(|(at, _)| *at).collect();
        assert_eq!(sends.len(), 80);
        assert!(sends.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(most_in_any_window(&sends, Duration::from_secs(1)), 5);
        assert_eq!(most_in_any_window(&sends, Duration::from_secs(60)), 20);
        // Every slot is taken as soon as it opens while all workers are busy: the first minute's
        // 20 requests go out 5 a second, and the 80th is in the fourth minute.
        for (k, at) in sends.iter().take(20).enumerate() {
            assert_eq!(*at - start, Duration::from_secs(k as u64 / 5));
        }
        let last = *sends.last().unwrap() - start;
        assert!(
            last >= Duration::from_secs(180) && last < Duration::from_secs(185),
            "{last:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_including_those_already_waiting() {
        let bucket = Arc::new(Bucket::default());
        let limits = [RateLimit::per_second(1)];
        let start = Instant::now();
        waited(&bucket, &limits, start + FAR).await.unwrap();
        // Someone is waiting for the next slot (at 1 s) when a response pauses the key.
        let waiting = {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                waited(&bucket, &limits, start + FAR).await.unwrap();
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(bucket.pause_until(start + Duration::from_secs(10)));
        // A shorter pause does not shorten it; a slightly longer one is not news.
        assert!(!bucket.pause_until(start + Duration::from_secs(3)));
        assert!(!bucket.pause_until(start + Duration::from_millis(10_500)));
        assert!(bucket.pause_until(start + Duration::from_secs(12)));
        // A newcomer with no limits of its own queues behind the waiter, and waits out the pause.
        waited(&bucket, &[], start + FAR).await.unwrap();
        let newcomer_at = Instant::now();
        let waiting_at = waiting.await.unwrap();
        assert_eq!(waiting_at - start, Duration::from_secs(12));
        assert!(newcomer_at >= waiting_at);
        assert_eq!(newcomer_at - start, Duration::from_secs(12));
        // A caller whose deadline falls inside a pause is refused without waiting.
        bucket.pause_until(Instant::now() + Duration::from_secs(30));
        let before = Instant::now();
        assert_eq!(
            waited(&bucket, &[], before + Duration::from_secs(29)).await,
            None
        );
        assert_eq!(Instant::now(), before);
    }

    #[test]
    fn credentials_get_separate_keys_and_are_not_shown() {
        let limiters = RateLimiters::new();
        let origin = || "https://api.example.com:443".to_string();
        let alice = limiters.key(origin(), ["token-alice"]);
        let bob = limiters.key(origin(), ["token-bob"]);
        assert_ne!(alice, bob);
        assert_eq!(alice, limiters.key(origin(), ["token-alice"]));
        assert_eq!(
            limiters.key(origin(), ["a", "b"]),
            limiters.key(origin(), ["b", "a", "b"])
        );
        assert_ne!(
            limiters.key(origin(), ["ab", "c"]),
            limiters.key(origin(), ["a", "bc"])
        );
        assert_ne!(
            alice,
            limiters.key("https://other.example.com:443".into(), ["token-alice"])
        );
        assert_eq!(limiters.key(origin(), []).credential, None);
        assert!(!Arc::ptr_eq(
            &limiters.bucket(&alice),
            &limiters.bucket(&bob)
        ));
        assert!(Arc::ptr_eq(
            &limiters.bucket(&alice),
            &limiters.clone().bucket(&alice)
        ));
        let shown = format!("{alice:?} {bob:?} {limiters:?}");
        assert!(!shown.contains("token"), "{shown}");
        assert!(shown.contains("https://api.example.com:443"), "{shown}");
        // Another registry salts differently: fingerprints mean nothing outside their registry.
        assert_ne!(alice, RateLimiters::new().key(origin(), ["token-alice"]));
    }

    #[test]
    fn retry_after_and_quota_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let hint = |status, headers: &[Header]| server_hint(status, headers, now);

        let seconds = hint(429, &[header("retry-after", "7")]);
        assert_eq!(seconds.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(seconds.pause, Some(Duration::from_secs(7)));
        assert_eq!(
            hint(503, &[header("Retry-After", " 2 ")]).retry_after,
            Some(Duration::from_secs(2))
        );
        // An HTTP-date, 90 seconds after `now`.
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::from_second(1_750_000_090).unwrap())
            .unwrap();
        assert!(date.ends_with("GMT"), "{date}");
        assert_eq!(
            hint(429, &[header("retry-after", &date)]).retry_after,
            Some(Duration::from_secs(90))
        );
        // A date in the past: retry now.
        assert_eq!(
            hint(
                429,
                &[header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]
            )
            .retry_after,
            Some(Duration::ZERO)
        );
        assert_eq!(
            hint(429, &[header("retry-after", "soon")]),
            ServerHint::default()
        );
        // Only a 429 or 503 is retried after `Retry-After`.
        assert_eq!(
            hint(500, &[header("retry-after", "7")]),
            ServerHint::default()
        );
        // Absurd waits are capped.
        assert_eq!(
            hint(429, &[header("retry-after", "99999999")]).pause,
            Some(MAX_PAUSE)
        );

        // An exhausted quota pauses the key until it resets, whatever the status.
        let epoch = hint(
            200,
            &[
                header("x-ratelimit-remaining", "0"),
                header("x-ratelimit-reset", "1750000030"),
            ],
        );
        assert_eq!(epoch.pause, Some(Duration::from_secs(30)));
        assert_eq!(epoch.retry_after, None);
        let millis = hint(
            200,
            &[
                header("x-ratelimit-remaining", "0"),
                header("x-ratelimit-reset", "1750000012000"),
            ],
        );
        assert_eq!(millis.pause, Some(Duration::from_secs(12)));
        let delta = hint(
            429,
            &[
                header("X-RateLimit-Remaining", "0"),
                header("X-RateLimit-Reset", "45"),
                header("Retry-After", "5"),
            ],
        );
        assert_eq!(delta.pause, Some(Duration::from_secs(45)));
        assert_eq!(delta.retry_after, Some(Duration::from_secs(5)));
        let draft = hint(
            200,
            &[
                header("ratelimit-remaining", "0"),
                header("ratelimit-reset", "20"),
            ],
        );
        assert_eq!(draft.pause, Some(Duration::from_secs(20)));
        // Quota left, or no reset given: nothing to do.
        assert_eq!(
            hint(
                200,
                &[
                    header("x-ratelimit-remaining", "3"),
                    header("x-ratelimit-reset", "45"),
                ],
            ),
            ServerHint::default()
        );
        assert_eq!(
            hint(200, &[header("x-ratelimit-remaining", "0")]),
            ServerHint::default()
        );
        // A reset already past.
        assert_eq!(
            hint(
                200,
                &[
                    header("x-ratelimit-remaining", "0"),
                    header("x-ratelimit-reset", "1749999999"),
                ],
            )
            .pause,
            Some(Duration::ZERO)
        );
    }
}
