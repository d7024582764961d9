//! Client-side rate limiting, shared by every request of a run, and what servers say about it.
//!
//! Requests are counted per key: the origin (`scheme://host:port`) and a fingerprint of the
//! credential sent, so that two profiles with different tokens against the same host have separate
//! budgets, while every worker of one profile shares one. A key is limited by any number of
//! [`RateLimit`]s at once (Verkada's 300 per minute *and* 25 per 5 seconds; Vision One's per second,
//! minute and hour), and can be paused as a whole when a server asks for it (`Retry-After`, or a
//! quota reported as exhausted) or refuses a request with a 429.
//!
//! A key nobody declared a quota for learns one ([`LearnedRate`]): it starts modestly, grows
//! slowly while requests succeed and is cut when the vendor answers 429. With a state store
//! ([`RateLimiters::with_store`]), what each key learned, its recent sends and any pause in force
//! outlive the process, so that the next process (another stream's, the next cron run's) neither
//! spends what this one just used nor starts learning again.

use super::retry::Jitter;
use crate::runtime::wit::Header;
use crate::state::StateStore;
use crate::state::quotas::QuotaRecord;
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
    /// A keyed hash of the credential's values; `None` for requests that carry none.
    credential: Option<[u8; 16]>,
}

impl RateKey {
    pub(super) fn origin(&self) -> &str {
        &self.origin
    }

    /// The fingerprint as the state store keeps it: hex, empty for no credential.
    fn stored_credential(&self) -> String {
        self.credential.map(hex::encode).unwrap_or_default()
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

/// How trawl answers a 429 and learns quotas nobody declared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaTuning {
    /// The rate a quota nobody declared is first tried at; its period is the window learned
    /// rates are counted over.
    pub learn_from: RateLimit,
    /// The shortest pause of a key after a 429 (a vendor's documented cool-down), whatever else
    /// the answer says.
    pub cooldown: Duration,
    /// The first pause after a 429 that says nothing of how long to wait; it doubles with each
    /// such 429 in a row, up to `max_backoff`, and is jittered (at least half of it is waited).
    /// A vendor may block a key for a while after a 429 and start the block over when the key
    /// comes back early, so the pauses must grow past any block: a cap below it would come back
    /// early forever.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for QuotaTuning {
    fn default() -> Self {
        QuotaTuning {
            learn_from: RateLimit::per_minute(60),
            cooldown: Duration::ZERO,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(15 * 60),
        }
    }
}

/// What one key's rate limiter knows, for a run's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaReport {
    pub origin: String,
    /// The rate learned, when nobody declared one.
    pub learned: Option<RateLimit>,
    /// Times the key was paused after a 429 or at a server's request.
    pub pauses: u64,
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
    /// Keys credential fingerprints: a random secret, the state store's when there is one (so
    /// that fingerprints are the same in every process using it), else this process's own.
    fingerprint_key: Vec<u8>,
    tuning: QuotaTuning,
    /// Where what the limiters know is kept between processes.
    store: Option<StateStore>,
    /// One instant and the wall-clock time it was: stored times are turned into instants and back
    /// through it, so that a time read and written again is the same to the millisecond (merging
    /// two processes' sends relies on it).
    anchor: (Instant, i64),
    buckets: Mutex<HashMap<RateKey, Arc<Bucket>>>,
}

impl Default for Registry {
    fn default() -> Self {
        let random = |seed: u64| RandomState::new().hash_one(seed).to_le_bytes();
        Registry {
            fingerprint_key: [random(0x7472_6177_6c00), random(0x6b65_7900)].concat(),
            tuning: QuotaTuning::default(),
            store: None,
            anchor: (Instant::now(), epoch_millis(SystemTime::now())),
            buckets: Mutex::default(),
        }
    }
}

fn epoch_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

impl fmt::Debug for RateLimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiters")
            .field("keys", &self.lock().len())
            .finish()
    }
}

/// Saving what the limiters know failed; the run goes on without it.
#[derive(Debug, Error)]
#[error("cannot keep what is known of vendors' quotas in the state store: {0}")]
pub struct QuotaStoreError(#[from] crate::state::StateError);

impl RateLimiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Limiters answering 429s and learning quotas as `tuning` says, with no state store.
    pub fn with_tuning(tuning: QuotaTuning) -> Self {
        RateLimiters {
            inner: Arc::new(Registry {
                tuning,
                ..Registry::default()
            }),
        }
    }

    /// Limiters that load what `store` knows of each key on its first use and save to it with
    /// [`save`](Self::save).
    pub fn with_store(store: StateStore, tuning: QuotaTuning) -> Result<Self, QuotaStoreError> {
        Ok(RateLimiters {
            inner: Arc::new(Registry {
                fingerprint_key: store.fingerprint_key()?,
                tuning,
                store: Some(store),
                ..Registry::default()
            }),
        })
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
            hash.update((self.inner.fingerprint_key.len() as u64).to_le_bytes());
            hash.update(&self.inner.fingerprint_key);
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

    /// The limiter of `key`, created on first use from what the state store knows of it.
    pub(super) fn bucket(&self, key: &RateKey) -> Arc<Bucket> {
        if let Some(bucket) = self.lock().get(key) {
            return bucket.clone();
        }
        // Read outside the lock: it is one indexed row, but other keys need not wait for it.
        let saved = self.inner.store.as_ref().and_then(|store| {
            store
                .quota(&key.origin, &key.stored_credential())
                .inspect_err(|error| {
                    tracing::warn!(target: "trawl::http", origin = key.origin, %error,
                        "cannot read what is known of this quota; starting afresh");
                })
                .ok()
                .flatten()
        });
        self.lock()
            .entry(key.clone())
            .or_insert_with(|| {
                let bucket = Bucket::new(self.inner.tuning);
                if let Some(saved) = saved {
                    bucket.restore(&saved, self.inner.anchor);
                }
                Arc::new(bucket)
            })
            .clone()
    }

    /// Saves what every key knows to the state store (if any), merged with what other processes
    /// saved meanwhile. One transaction, whatever the number of keys.
    pub fn save(&self) -> Result<(), QuotaStoreError> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let records: Vec<QuotaRecord> = self
            .lock()
            .iter()
            .map(|(key, bucket)| bucket.snapshot(key, self.inner.anchor))
            .collect();
        let now = to_millis(Instant::now(), self.inner.anchor);
        store.save_quotas(&records, now)?;
        Ok(())
    }

    /// What each key learned and how often it was paused, for keys that did either.
    pub fn reports(&self) -> Vec<QuotaReport> {
        let mut reports: Vec<QuotaReport> = self
            .lock()
            .iter()
            .filter_map(|(key, bucket)| {
                let quota = bucket.quota.lock().unwrap_or_else(PoisonError::into_inner);
                let learned = quota
                    .used_learning
                    .then(|| quota.learned.limit(self.inner.tuning.learn_from.per));
                (learned.is_some() || quota.pauses > 0).then(|| QuotaReport {
                    origin: key.origin.clone(),
                    learned,
                    pauses: quota.pauses,
                })
            })
            .collect();
        reports.sort_by(|a, b| a.origin.cmp(&b.origin));
        reports
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RateKey, Arc<Bucket>>> {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An instant as milliseconds since the epoch, through `anchor`.
fn to_millis(at: Instant, anchor: (Instant, i64)) -> i64 {
    let (anchor_at, anchor_ms) = anchor;
    if at >= anchor_at {
        anchor_ms.saturating_add(i64::try_from((at - anchor_at).as_millis()).unwrap_or(i64::MAX))
    } else {
        anchor_ms.saturating_sub(i64::try_from((anchor_at - at).as_millis()).unwrap_or(i64::MAX))
    }
}

/// Milliseconds since the epoch as an instant, through `anchor`; `None` if too far back for the
/// clock to hold.
fn from_millis(ms: i64, anchor: (Instant, i64)) -> Option<Instant> {
    let (anchor_at, anchor_ms) = anchor;
    if ms >= anchor_ms {
        anchor_at.checked_add(Duration::from_millis((ms - anchor_ms) as u64))
    } else {
        anchor_at.checked_sub(Duration::from_millis(anchor_ms.saturating_sub(ms) as u64))
    }
}

/// A quota learned by additive increase and multiplicative decrease (AIMD, as TCP finds a
/// network's capacity), counted as requests per window (the period of
/// [`QuotaTuning::learn_from`]).
///
/// What a "rate" is against a vendor's sliding-window quota: the vendor lets N requests through
/// in any window and refuses the next. The learned limit is kept the same way, at most `rate`
/// requests in any window, exactly, by the send log, so a short run goes at full speed and a
/// long one is held to the rate. Every request the vendor saw is counted, refused ones too (some
/// vendors count them).
///
/// - Growth: one more request per window each time a window's worth of requests in a row
///   succeeded while the limit was in use, that is while it held some request back within the
///   last window (a limit that holds nothing back is not tested, and does not grow). Slow on purpose: from 90% of the real quota back up to it takes ten windows'
///   worth of requests per step, so a 429 comes once in about a thousand requests at 100 a
///   window.
/// - Cut, on a 429: to 90% of the requests the vendor admitted in the window before it, which is
///   where a sliding window refuses, and by at least 10%. When that would be less than an eighth
///   of the rate, so little cannot be the quota (a 429 early in a run may have been earned by
///   another process on the same credential, or by a burst), and the cut is 10%. At most one cut a window: the cut shows only as the window slides, and until
///   then a vendor that blocks after a 429 refuses again whatever the rate (the key's pause
///   answers those).
#[derive(Clone, Copy, Debug, PartialEq)]
struct LearnedRate {
    per_window: f64,
    /// Successes since the rate last grew.
    successes: u32,
    /// When it was last cut.
    cut_at: Option<Instant>,
}

/// No learned rate goes below one request per window, nor above this.
const MOST_LEARNED_PER_WINDOW: f64 = 100_000.0;

impl LearnedRate {
    fn new(per_window: f64) -> Self {
        LearnedRate {
            per_window: per_window.clamp(1.0, MOST_LEARNED_PER_WINDOW),
            successes: 0,
            cut_at: None,
        }
    }

    fn limit(&self, window: Duration) -> RateLimit {
        RateLimit::new(self.per_window.floor().max(1.0) as u32, window)
    }

    fn succeeded(&mut self, in_use: bool) {
        if !in_use {
            return;
        }
        self.successes += 1;
        if f64::from(self.successes) >= self.per_window {
            self.per_window = (self.per_window + 1.0).min(MOST_LEARNED_PER_WINDOW);
            self.successes = 0;
        }
    }

    /// A 429, when the vendor saw `admitted` requests in the `window` before it. Returns whether
    /// the rate was cut.
    fn refused(&mut self, admitted: usize, now: Instant, window: Duration) -> bool {
        if self
            .cut_at
            .is_some_and(|cut_at| now.duration_since(cut_at) < window)
        {
            return false;
        }
        let target = 0.9 * admitted as f64;
        let cut = if target >= self.per_window / 8.0 {
            target.min(self.per_window * 0.9)
        } else {
            self.per_window * 0.9
        };
        self.per_window = cut.max(1.0);
        self.successes = 0;
        self.cut_at = Some(now);
        true
    }
}

/// How a key answers 429s, and what it learned.
struct QuotaState {
    learned: LearnedRate,
    /// When the learned rate last held a request back.
    held_back_at: Option<Instant>,
    /// Whether the learned rate was used this run (no quota was declared for the key).
    used_learning: bool,
    /// 429s in a row that said nothing of how long to wait.
    strikes: u32,
    /// When the pause of the last strike began: 429s to requests sent before it are part of the
    /// same refusal, and do not strike again.
    struck_at: Option<Instant>,
    pauses: u64,
}

/// What a 429 did to its key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Refusal {
    /// How long every request to the key is held, if this answer paused it anew.
    pub paused_for: Option<Duration>,
    /// The learned rate after a cut, if this answer cut it.
    pub learned: Option<RateLimit>,
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
pub(super) struct Bucket {
    log: tokio::sync::Mutex<SendLog>,
    paused_until: Mutex<Option<Instant>>,
    /// When requests in flight finished, by ticket, until the log (behind its mutex, which a
    /// waiter may hold) takes them in.
    finished: Mutex<HashMap<u64, Instant>>,
    finishing: tokio::sync::Notify,
    /// When requests were answered (or failed), oldest first, for the last hour: what is saved
    /// for the next process, and what a learned rate is cut from. Kept apart from the log, which a
    /// waiter holds for as long as it waits.
    answered: Mutex<VecDeque<Instant>>,
    /// The longest window of any limit this key was held to: older sends need not be saved.
    longest_window: Mutex<Duration>,
    tuning: QuotaTuning,
    quota: Mutex<QuotaState>,
    jitter: Jitter,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket::new(QuotaTuning::default())
    }
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
        let now = Instant::now();
        self.bucket
            .finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.ticket, now);
        self.bucket.note_answer(now);
        self.bucket.finishing.notify_waiters();
    }
}

impl Bucket {
    /// Waits until one more request fits every limit in `limits` and the key is not paused, then
    /// records it as sent now. Returns its slot, to be dropped when the request is over, or
    /// `None` without waiting (and without recording anything) when that would be after
    /// `deadline`.
    ///
    /// With no `limits` (nobody declared a quota), the key's learned rate is kept instead.
    pub(super) async fn acquire(
        &self,
        limits: &[RateLimit],
        deadline: Instant,
    ) -> Option<Slot<'_>> {
        let learned;
        let limits = if limits.is_empty() {
            let mut quota = self.quota();
            quota.used_learning = true;
            learned = [quota.learned.limit(self.tuning.learn_from.per)];
            &learned[..]
        } else {
            limits
        };
        if let Some(longest) = limits.iter().map(|limit| limit.per).max() {
            let mut kept = self
                .longest_window
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *kept = (*kept).max(longest);
        }
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

    fn new(tuning: QuotaTuning) -> Self {
        let start = tuning.learn_from;
        Bucket {
            log: tokio::sync::Mutex::default(),
            paused_until: Mutex::default(),
            finished: Mutex::default(),
            finishing: tokio::sync::Notify::new(),
            answered: Mutex::default(),
            longest_window: Mutex::new(tuning.learn_from.per),
            tuning,
            quota: Mutex::new(QuotaState {
                learned: LearnedRate::new(f64::from(start.requests.max(1))),
                held_back_at: None,
                used_learning: false,
                strikes: 0,
                struck_at: None,
                pauses: 0,
            }),
            jitter: Jitter::default(),
        }
    }

    fn quota(&self) -> std::sync::MutexGuard<'_, QuotaState> {
        self.quota.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in what a state store kept of this key: its recent sends (answered at those times),
    /// its learned rate, its strikes and any pause still in force.
    fn restore(&self, saved: &QuotaRecord, anchor: (Instant, i64)) {
        let window = self.tuning.learn_from.per;
        {
            let mut quota = self.quota();
            if let Some(per_minute) = saved.learned_per_minute {
                quota.learned = LearnedRate::new(per_minute * window.as_secs_f64() / 60.0);
            }
            quota.strikes = saved.strikes;
        }
        if let Some(until) = saved
            .paused_until_ms
            .and_then(|until| from_millis(until, anchor))
            .filter(|until| *until > Instant::now())
        {
            *self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(until);
        }
        let mut log = self
            .log
            .try_lock()
            .expect("a bucket being made is used by nobody else");
        let mut sends: Vec<Instant> = saved
            .sends_ms
            .iter()
            .filter_map(|&ms| from_millis(ms, anchor))
            .collect();
        sends.sort_unstable();
        self.answers().extend(sends.iter().copied());
        for at in sends {
            let ticket = log.next_ticket;
            log.next_ticket += 1;
            log.sends.push_back(Sent {
                ticket,
                at,
                in_flight: false,
            });
        }
        log.sends.make_contiguous().sort_by_key(|sent| sent.at);
        log.keep = log.keep.max(log.sends.len());
    }

    /// What to save of this key: requests answered within the longest window it was held to,
    /// the learned rate, strikes and any pause in force.
    fn snapshot(&self, key: &RateKey, anchor: (Instant, i64)) -> QuotaRecord {
        let now = Instant::now();
        let longest = *self
            .longest_window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let sends_ms = self
            .answers()
            .iter()
            .filter(|at| now.duration_since(**at) < longest)
            .map(|at| to_millis(*at, anchor))
            .collect();
        let quota = self.quota();
        QuotaRecord {
            origin: key.origin.clone(),
            credential: key.stored_credential(),
            learned_per_minute: quota.used_learning.then(|| {
                quota.learned.per_window * 60.0 / self.tuning.learn_from.per.as_secs_f64()
            }),
            sends_ms,
            paused_until_ms: self
                .paused_until()
                .filter(|until| *until > now)
                .map(|until| to_millis(until, anchor)),
            strikes: quota.strikes,
        }
    }

    /// An answer that was not a 429 nor a 5xx, to a request that waited `waited` for room: the
    /// strikes are over, and a learned rate in use grows.
    pub(super) fn answered(&self, waited: Duration) {
        let now = Instant::now();
        let window = self.tuning.learn_from.per;
        let mut quota = self.quota();
        quota.strikes = 0;
        if quota.used_learning {
            if !waited.is_zero() {
                quota.held_back_at = Some(now);
            }
            let in_use = quota
                .held_back_at
                .is_some_and(|at| now.duration_since(at) < window);
            quota.learned.succeeded(in_use);
        }
    }

    /// A 429 to a request sent at `sent_at`, whose answer asked for a pause of `hinted` (a
    /// `Retry-After` or a reset), if any. The whole key pauses: for the hint, or else for a
    /// backoff that doubles with each 429 in a row (jittered, so that processes that were refused
    /// together do not return together), and at least for the cool-down. A learned rate is cut.
    pub(super) fn refused(&self, sent_at: Instant, hinted: Option<Duration>) -> Refusal {
        let now = Instant::now();
        let window = self.tuning.learn_from.per;
        let mut refusal = Refusal {
            paused_for: None,
            learned: None,
        };
        let pause = {
            // Every request the vendor saw in the window, this process's and those a previous
            // one saved, refused ones too.
            let seen = self
                .answers()
                .iter()
                .rev()
                .take_while(|at| now.duration_since(**at) < window)
                .count();
            let mut quota = self.quota();
            if quota.used_learning && quota.learned.refused(seen, now, window) {
                refusal.learned = Some(quota.learned.limit(window));
            }
            let backoff = match hinted {
                Some(hinted) => hinted,
                None if quota.struck_at.is_some_and(|struck_at| sent_at < struck_at) => {
                    // Sent before the last strike's pause began: the same refusal, seen again.
                    Duration::ZERO
                }
                None => {
                    quota.strikes = quota.strikes.saturating_add(1);
                    quota.struck_at = Some(now);
                    let ceiling = self
                        .tuning
                        .first_backoff
                        .saturating_mul(1 << quota.strikes.saturating_sub(1).min(20))
                        .min(self.tuning.max_backoff);
                    // Half fixed, half jittered: a pause of nothing would not be one.
                    ceiling / 2 + self.jitter.full(ceiling / 2)
                }
            };
            backoff.max(self.tuning.cooldown).min(MAX_PAUSE)
        };
        if !pause.is_zero() && self.pause_until(now + pause) {
            self.quota().pauses += 1;
            refusal.paused_for = Some(pause);
        }
        refusal
    }

    fn answers(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note_answer(&self, at: Instant) {
        let mut answers = self.answers();
        answers.push_back(at);
        while answers.len() > crate::state::quotas::MAX_SENDS_KEPT
            || answers
                .front()
                .is_some_and(|first| at.duration_since(*first) >= MAX_PAUSE)
        {
            answers.pop_front();
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

    /// A vendor's quota as strict vendors keep it: at most `limit` requests in any `per`, refused
    /// requests counted too, and after a 429 every request refused for `block` (and a request
    /// during the block makes it start again).
    struct StrictVendor {
        limit: usize,
        per: Duration,
        block: Duration,
        seen: VecDeque<Instant>,
        blocked_until: Option<Instant>,
        admitted: u64,
        refused: u64,
    }

    impl StrictVendor {
        fn new(limit: usize, per: Duration) -> Self {
            StrictVendor {
                limit,
                per,
                block: Duration::from_secs(5),
                seen: VecDeque::new(),
                blocked_until: None,
                admitted: 0,
                refused: 0,
            }
        }

        fn answer(&mut self) -> bool {
            let now = Instant::now();
            while self
                .seen
                .front()
                .is_some_and(|at| now.duration_since(*at) >= self.per)
            {
                self.seen.pop_front();
            }
            let refused = self.blocked_until.is_some_and(|until| now < until)
                || self.seen.len() >= self.limit;
            self.seen.push_back(now);
            if refused {
                self.blocked_until = Some(now + self.block);
                self.refused += 1;
            } else {
                self.admitted += 1;
            }
            !refused
        }
    }

    /// `workers` tasks sending `requests` in all through `bucket` with no declared limits to
    /// `vendor`, each answered 50 ms after it left; returns the vendor afterwards.
    async fn send_to(
        bucket: Arc<Bucket>,
        vendor: StrictVendor,
        workers: usize,
        requests: u64,
    ) -> StrictVendor {
        let vendor = Arc::new(Mutex::new(vendor));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (bucket, vendor, sent) = (bucket.clone(), vendor.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                    let slot = bucket.acquire(&[], Instant::now() + FAR).await.unwrap();
                    let waited = slot.waited;
                    let sent_at = Instant::now();
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    let admitted = vendor.lock().unwrap().answer();
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    drop(slot);
                    if admitted {
                        bucket.answered(waited);
                    } else {
                        bucket.refused(sent_at, None);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::into_inner(vendor).unwrap().into_inner().unwrap()
    }

    fn learned(bucket: &Bucket) -> f64 {
        bucket.quota().learned.per_window
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_rate_converges_just_under_a_strict_sliding_window() {
        let tuning = QuotaTuning {
            // Started near the real quota, so that it is met within the test.
            learn_from: RateLimit::per_minute(90),
            ..QuotaTuning::default()
        };
        let bucket = Arc::new(Bucket::new(tuning));
        let vendor = send_to(
            bucket.clone(),
            StrictVendor::new(100, Duration::from_secs(60)),
            4,
            3000,
        )
        .await;
        // The rate went past the quota at least once and was cut each time, to just under it.
        assert!(
            vendor.refused > 0,
            "{} admitted, rate {}",
            vendor.admitted,
            learned(&bucket)
        );
        assert!(
            vendor.refused * 100 <= vendor.admitted + vendor.refused,
            "{} refused of {}",
            vendor.refused,
            vendor.admitted + vendor.refused
        );
        let rate = learned(&bucket);
        assert!((85.0..=101.0).contains(&rate), "{rate}");

        // Started far above the quota, it comes down at the first refusal and stays under it.
        let tuning = QuotaTuning {
            learn_from: RateLimit::per_minute(400),
            ..QuotaTuning::default()
        };
        let bucket = Arc::new(Bucket::new(tuning));
        let vendor = send_to(
            bucket.clone(),
            StrictVendor::new(100, Duration::from_secs(60)),
            4,
            600,
        )
        .await;
        assert!(vendor.refused <= 6, "{}", vendor.refused);
        assert!(
            (80.0..=100.0).contains(&learned(&bucket)),
            "{}",
            learned(&bucket)
        );
        assert!(bucket.quota().pauses >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_rate_grows_only_while_it_holds_requests_back() {
        let bucket = Bucket::new(QuotaTuning {
            learn_from: RateLimit::per_minute(10),
            ..QuotaTuning::default()
        });
        // Five requests a minute under a limit of ten: nothing is held back, nothing is learned.
        for _ in 0..20 {
            let slot = waited(&bucket, &[], Instant::now() + FAR).await.unwrap();
            bucket.answered(slot);
            tokio::time::sleep(Duration::from_secs(12)).await;
        }
        assert_eq!(learned(&bucket), 10.0);
        // Flat out, requests wait for room: from the first held back, every success counts, and
        // a window's worth of them adds one.
        for _ in 0..30 {
            let slot = waited(&bucket, &[], Instant::now() + FAR).await.unwrap();
            bucket.answered(slot);
        }
        let rate = learned(&bucket);
        assert!(rate > 10.0 && rate <= 12.0, "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bare_429_pauses_the_whole_key_longer_each_time() {
        let tuning = QuotaTuning {
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(8),
            ..QuotaTuning::default()
        };
        let bucket = Arc::new(Bucket::new(tuning));
        let limits = [RateLimit::per_second(100)];
        let mut pauses = Vec::new();
        for _ in 0..5 {
            let sent_at = Instant::now();
            waited(&bucket, &limits, sent_at + FAR).await.unwrap();
            let refusal = bucket.refused(sent_at, None);
            // Declared limits are kept as they are: nothing is learned.
            assert_eq!(refusal.learned, None);
            let pause = refusal.paused_for.unwrap();
            // Any other caller (another worker) waits the pause out too (to the timer's
            // millisecond).
            let other = waited(&bucket, &limits, Instant::now() + FAR)
                .await
                .unwrap();
            assert!(
                other >= pause && other <= pause + Duration::from_millis(1),
                "{other:?} {pause:?}"
            );
            pauses.push(pause);
        }
        // Jittered within the upper half of a ceiling that doubles up to the cap.
        for (pause, ceiling) in pauses.iter().zip([2, 4, 8, 8, 8]) {
            let ceiling = Duration::from_secs(ceiling);
            assert!(*pause >= ceiling / 2 && *pause <= ceiling, "{pause:?}");
        }
        // A 429 to a request sent before the pause began is the same refusal: no longer pause.
        let before = Instant::now();
        waited(&bucket, &limits, before + FAR).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(bucket.refused(before, None).paused_for.is_some());
        assert_eq!(bucket.refused(before, None).paused_for, None);
        // A success ends the strikes; a Retry-After is taken as it is, and the cool-down is
        // the least any 429 pauses for.
        bucket.answered(Duration::ZERO);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let cooled = Bucket::new(QuotaTuning {
            cooldown: Duration::from_secs(5),
            ..tuning
        });
        let now = Instant::now();
        assert_eq!(
            cooled.refused(now, Some(Duration::from_secs(1))).paused_for,
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            bucket.refused(now, Some(Duration::from_secs(3))).paused_for,
            Some(Duration::from_secs(3))
        );
        assert_eq!(bucket.quota().strikes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_process_keeps_to_what_the_first_just_spent_and_learned() {
        let dir = tempfile::tempdir().unwrap();
        let store = || crate::state::StateStore::open(dir.path()).unwrap();
        let limits = [
            RateLimit::new(25, Duration::from_secs(5)),
            RateLimit::per_minute(300),
        ];
        let origin = || "https://api.example.com:443".to_string();
        let first = RateLimiters::with_store(store(), QuotaTuning::default()).unwrap();
        let key = first.key(origin(), ["api-key"]);
        let bucket = first.bucket(&key);
        for _ in 0..25 {
            assert_eq!(
                waited(&bucket, &limits, Instant::now() + FAR).await,
                Some(Duration::ZERO)
            );
        }
        // A learned rate on another origin, cut once, and a pause in force.
        let learning = first.bucket(&first.key("https://learn.example.com:443".into(), ["t"]));
        waited(&learning, &[], Instant::now() + FAR).await.unwrap();
        learning.refused(Instant::now(), Some(Duration::from_secs(30)));
        first.save().unwrap();

        // Another process on the same store: the same fingerprint, the first's 25 sends in
        // its window, the learned rate and the pause.
        let second = RateLimiters::with_store(store(), QuotaTuning::default()).unwrap();
        let again = second.key(origin(), ["api-key"]);
        assert_eq!(again, key);
        assert_ne!(again, second.key(origin(), ["another-key"]));
        let bucket = second.bucket(&again);
        // Times are stored on the wall clock, which runs while this test's clock is paused: they
        // come back a few milliseconds early (a real process's clocks run together).
        let close_to = |found: Duration, expected: Duration| {
            found <= expected && found + Duration::from_millis(500) > expected
        };
        let wait = waited(&bucket, &limits, Instant::now() + FAR)
            .await
            .unwrap();
        assert!(close_to(wait, Duration::from_secs(5)), "{wait:?}");
        let learning = second.bucket(&second.key("https://learn.example.com:443".into(), ["t"]));
        let learned_before =
            learned(&first.bucket(&first.key("https://learn.example.com:443".into(), ["t"])));
        assert!(learned_before < 60.0);
        assert_eq!(learned(&learning), learned_before);
        let started = Instant::now();
        waited(&learning, &[], started + FAR).await.unwrap();
        // The pause was 30 s from the refusal, 5 s before.
        let paused = Instant::now() - started;
        assert!(close_to(paused, Duration::from_secs(25)), "{paused:?}");
        let reports = second.reports();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].origin, "https://learn.example.com:443");
        assert_eq!(
            reports[0].learned,
            Some(RateLimit::per_minute(learned_before as u32))
        );
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
