//! The `http` capability: outbound requests through reqwest (rustls), only to hosts the connector
//! declared and the user granted, with a timeout, a body cap and secrets substituted on the way out.
//!
//! Every request goes through the same steps:
//! 1. the [`NetworkPolicy`] checks the URL as the connector wrote it; [`Secrets`] go into its path,
//!    query and header values (never where they could change its destination), and the policy and
//!    each secret's binding are checked again on the exact URL that is sent;
//! 2. the [`RateLimiters`] wait until it fits every [`RateLimit`] of its origin and credential
//!    (shared by all workers of a run) and any pause a server asked for;
//! 3. it is sent; a 429, a `Retry-After` or an exhausted quota in the answer pauses the whole key
//!    (a 429 also cuts a learned rate);
//! 4. a 429, a 5xx gateway error or a connection failure is sent again after a backoff, as the
//!    [`RetryPolicy`] says, for as long as the run makes progress somewhere; anything else, and
//!    the last answer once a user's cap on retries is reached, goes back to the connector.
//!
//! [`HttpStats`] counts what happened, for a run's summary.

mod coalesce;
mod policy;
mod ratelimit;
mod redact;
mod retry;
mod secrets;

pub use policy::{HostPattern, InternalAddress, NetworkPolicy, PatternError, is_internal};
pub use ratelimit::{
    QuotaReport, QuotaStoreError, QuotaTuning, RateLimit, RateLimitParseError, RateLimiters,
};
pub use retry::RetryPolicy;
pub use secrets::{SecretRedirect, Secrets};

use crate::runtime::HostState;
use crate::runtime::wit::Header;
use crate::runtime::wit::trawl::connector::http::{self, Error, Method, Request, Response};
use bytes::Bytes;
pub use coalesce::{Call, Shared as SharedAnswer};
use ratelimit::Bucket;
use retry::{Failure, Jitter, Patience};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use url::Url;

/// Limits on one request.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// From sending the request to having the whole body, for each attempt.
    pub timeout: Duration,
    /// The largest response body accepted, in bytes once decoded (a compressed body is counted
    /// as it comes out of the decoder, so a decompression bomb stops here).
    pub max_body_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            timeout: Duration::from_secs(60),
            max_body_bytes: 32 << 20,
        }
    }
}

/// Counters of a run's HTTP traffic. Cloning is cheap: clones count together.
#[derive(Clone, Default)]
pub struct HttpStats {
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    status_429: AtomicU64,
    status_5xx: AtomicU64,
    transport_errors: AtomicU64,
    bytes_received: AtomicU64,
    rate_limit_wait_micros: AtomicU64,
    backoff_wait_micros: AtomicU64,
}

/// What [`HttpStats`] counted, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpStatsSnapshot {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a failure (included in `requests`).
    pub retries: u64,
    /// 429 responses received.
    pub status_429: u64,
    /// 5xx responses received.
    pub status_5xx: u64,
    /// Attempts that got no response: connection failures, resets, timeouts, bodies cut short.
    pub transport_errors: u64,
    /// Response body bytes received (decoded, when compressed), of every attempt.
    pub bytes_received: u64,
    /// Time spent waiting for room under the rate limits or for a server-requested pause to end,
    /// summed over requests (two requests waiting one second each count two seconds).
    pub rate_limit_wait: Duration,
    /// Time spent backing off before retries, summed over requests.
    pub backoff_wait: Duration,
}

impl fmt::Debug for HttpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl HttpStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> HttpStatsSnapshot {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        HttpStatsSnapshot {
            requests: get(&c.requests),
            retries: get(&c.retries),
            status_429: get(&c.status_429),
            status_5xx: get(&c.status_5xx),
            transport_errors: get(&c.transport_errors),
            bytes_received: get(&c.bytes_received),
            rate_limit_wait: Duration::from_micros(get(&c.rate_limit_wait_micros)),
            backoff_wait: Duration::from_micros(get(&c.backoff_wait_micros)),
        }
    }

    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    fn add_time(counter: &AtomicU64, time: Duration) {
        Self::add(counter, u64::try_from(time.as_micros()).unwrap_or(u64::MAX));
    }
}

/// The HTTP client of one connector run.
pub struct HttpCapability {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    secrets: Secrets,
    limits: HttpLimits,
    rate_limits: Vec<RateLimit>,
    limiters: RateLimiters,
    retry: RetryPolicy,
    jitter: Jitter,
    /// When the run last made progress, shared by every request of it.
    patience: Arc<Patience>,
    stats: HttpStats,
    /// Logs every exchange in full (secrets redacted).
    trace: bool,
    /// Turns to have a request out, when their number is bounded.
    in_flight: Option<Arc<Turns>>,
    /// Requests may go through a proxy, which resolves their names itself.
    proxied: bool,
    /// Identical requests out at the same time, answered once.
    identical: Arc<coalesce::InFlight>,
}

/// Whether the environment names a proxy reqwest would send requests through.
fn proxy_in_environment() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .any(|name| {
            [name.to_string(), name.to_ascii_lowercase()]
                .iter()
                .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
        })
}

/// Turns to have a request out, shared by every clone of a client.
struct Turns {
    semaphore: Arc<tokio::sync::Semaphore>,
    /// Set while a run's stream is stopping: a request that gets a turn gives it back unsent.
    refusing: AtomicBool,
}

/// The right to have a request out, given back when dropped.
pub struct Turn {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

tokio::task_local! {
    /// Which secrets the request being sent carries (one flag a secret), for the redirect policy,
    /// which reqwest runs inside the request's future and tells nothing about the request.
    static CARRIED: Vec<bool>;
    /// Where the time a request spends waiting on the vendor's patience (backoffs, pauses, room
    /// under a quota) is counted, for a caller that does not count it against its own clock.
    pub(crate) static PATIENT_WAIT: Arc<PatientWait>;
}

/// Time spent waiting on a vendor's patience: waits over, and the one going on.
#[derive(Debug, Default)]
pub struct PatientWait {
    /// Microseconds of waits that are over.
    over: AtomicU64,
    /// When the wait going on began.
    since: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl PatientWait {
    /// All the time waited so far, the wait going on included.
    pub fn waited(&self) -> Duration {
        let ongoing = self
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map_or(Duration::ZERO, |since| since.elapsed());
        Duration::from_micros(self.over.load(Ordering::Relaxed)) + ongoing
    }

    /// Counts the time until `wait` is done (or dropped) as waiting.
    pub(crate) async fn during<T>(wait: impl Future<Output = T>) -> T {
        let Ok(patient) = PATIENT_WAIT.try_with(Arc::clone) else {
            return wait.await;
        };
        let began = tokio::time::Instant::now();
        *patient
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(began);
        struct Over(Arc<PatientWait>, tokio::time::Instant);
        impl Drop for Over {
            fn drop(&mut self) {
                let micros = u64::try_from(self.1.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.0.over.fetch_add(micros, Ordering::Relaxed);
                *self
                    .0
                    .since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
        }
        let _over = Over(patient, began);
        wait.await
    }
}

/// How much of a body `--trace-http` shows.
const TRACE_BODY: usize = 2048;

/// A body that came in one piece is kept where it came in unless it is smaller than this.
const COPIED_BELOW: usize = 16 * 1024;

/// A response as it came in. Its body is the piece of the connection's buffer hyper handed over,
/// not a copy, when it came in one piece, as a page from a nearby server nearly always does:
/// copying each page was 2% of a run's CPU. A copy shares the body.
#[derive(Clone, Debug)]
pub struct Received {
    pub status: u16,
    /// In the order received; names are lower case.
    pub headers: Vec<Header>,
    pub body: Bytes,
    /// Time spent on the answer for the connector once it arrived (taking secrets out of it,
    /// tracing it): work, not waiting, so it counts against the connector's CPU budget. A server
    /// the connector chose can make redaction slow; that must cost the connector, not trawl.
    pub(crate) work: Duration,
}

impl From<Received> for Response {
    fn from(received: Received) -> Self {
        Response {
            status: received.status,
            headers: received.headers,
            body: received.body.into(),
        }
    }
}

/// Logs a request and its response for `--trace-http`: URL and headers as the connector wrote
/// them (placeholders, never secrets), the response as the connector gets it (redacted), its body
/// as the bytes they are, never decoded and written out again (which would undo the escapes a
/// secret could hide behind). Credentials the connector obtained itself (a session token from a
/// login call) are not secrets the host knows, so header values and JSON string members that look
/// like credentials are blanked out in place. Last, the whole line goes through the redactor.
fn trace_exchange(secrets: &Secrets, url: &str, headers: &[Header], response: &Received) {
    let shown = |header: &Header| {
        if looks_like_credential(&header.name, CREDENTIAL_HEADERS)
            && !header.value.contains("{{secret:")
        {
            format!("{}: <hidden>", header.name)
        } else {
            format!("{}: {}", header.name, header.value)
        }
    };
    let request_headers: Vec<String> = headers.iter().map(shown).collect();
    let response_headers: Vec<String> = response.headers.iter().map(shown).collect();
    let shown_body = &response.body[..response.body.len().min(TRACE_BODY)];
    let body = String::from_utf8_lossy(&hide_credential_members(shown_body)).into_owned();
    let line = format!(
        "url={url} request_headers={request_headers:?} status={} response_headers={response_headers:?} body_bytes={}\n{body}",
        response.status,
        response.body.len()
    );
    let line = secrets.redact_text(&line);
    tracing::info!(target: "trawl::http", "exchange {line}");
}

const CREDENTIAL_HEADERS: &[&str] = &[
    "auth",
    "token",
    "key",
    "cookie",
    "secret",
    "session",
    "signature",
];
const CREDENTIAL_MEMBERS: &[&str] = &["token", "secret", "password", "session"];

fn looks_like_credential(name: &str, words: &[&str]) -> bool {
    let name = name.to_ascii_lowercase();
    words.iter().any(|word| name.contains(word))
}

/// `body` with the text of every JSON string that is the value of a member whose name looks like
/// a credential replaced by `<hidden>`, at any depth; the rest byte for byte as it was. Works on
/// any bytes (a body cut short for the trace, or not JSON at all): it only looks for `"name":"`.
fn hide_credential_members(body: &[u8]) -> Vec<u8> {
    /// Where the string that starts at `at` (on its opening quote) ends, past its closing quote.
    fn string_end(body: &[u8], at: usize) -> usize {
        let mut index = at + 1;
        while index < body.len() {
            match body[index] {
                b'\\' => index += 2,
                b'"' => return index + 1,
                _ => index += 1,
            }
        }
        body.len()
    }
    let skip_space = |mut index: usize| {
        while body.get(index).is_some_and(u8::is_ascii_whitespace) {
            index += 1;
        }
        index
    };
    let mut out = Vec::with_capacity(body.len());
    let mut index = 0;
    while let Some(found) = memchr::memchr(b'"', &body[index..]) {
        let start = index + found;
        let end = string_end(body, start);
        out.extend_from_slice(&body[index..end]);
        index = end;
        let name = String::from_utf8_lossy(&body[start + 1..end.saturating_sub(1).max(start + 1)]);
        let colon = skip_space(end);
        if !looks_like_credential(&name, CREDENTIAL_MEMBERS) || body.get(colon) != Some(&b':') {
            continue;
        }
        let value = skip_space(colon + 1);
        if body.get(value) != Some(&b'"') {
            continue;
        }
        out.extend_from_slice(&body[end..value]);
        out.extend_from_slice(b"\"<hidden>\"");
        index = string_end(body, value);
    }
    out.extend_from_slice(&body[index..]);
    out
}

impl HttpCapability {
    /// A client with no rate limits of its own, its own [`RateLimiters`] and [`HttpStats`], and
    /// the default [`RetryPolicy`]; the `with_*` methods change these.
    pub fn new(
        policy: NetworkPolicy,
        secrets: Secrets,
        limits: HttpLimits,
    ) -> Result<Self, reqwest::Error> {
        Self::with_proxy(policy, secrets, limits, None)
    }

    /// As [`new`](Self::new), through `proxy` instead of any the environment names.
    fn with_proxy(
        policy: NetworkPolicy,
        secrets: Secrets,
        limits: HttpLimits,
        proxy: Option<reqwest::Proxy>,
    ) -> Result<Self, reqwest::Error> {
        let proxied = proxy.is_some() || proxy_in_environment();
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let redirect_secrets = Arc::new(secrets.clone());
        let builder = reqwest::Client::builder()
            .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.timeout.min(Duration::from_secs(30)))
            .dns_resolver(Arc::new(policy::GuardedResolver {
                policy: policy.clone(),
            }))
            // Every hop of a redirect must pass the same policy as the first request; one to
            // another origin is followed only where each secret the request carried is bound
            // (reqwest keeps custom headers, such as an API key's, across origins).
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("more than 5 redirects");
                }
                if redirect_policy.check(attempt.url()).is_err() {
                    return attempt.stop();
                }
                let first = attempt.previous().first().cloned();
                let followed = first.map_or(Ok(()), |first| {
                    CARRIED
                        .try_with(|carried| {
                            redirect_secrets.may_follow(
                                &redirect_policy,
                                &first,
                                attempt.url(),
                                Some(carried),
                            )
                        })
                        // Not sent by `attempt`: assume it carries every secret.
                        .unwrap_or_else(|_| {
                            redirect_secrets.may_follow(
                                &redirect_policy,
                                &first,
                                attempt.url(),
                                None,
                            )
                        })
                });
                match followed {
                    Ok(()) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                }
            }));
        let builder = match proxy {
            Some(proxy) => builder.proxy(proxy),
            None => builder,
        };
        let client = builder.build()?;
        Ok(HttpCapability {
            client,
            policy,
            secrets,
            limits,
            rate_limits: Vec::new(),
            limiters: RateLimiters::new(),
            retry: RetryPolicy::default(),
            jitter: Jitter::default(),
            patience: Arc::default(),
            stats: HttpStats::new(),
            trace: false,
            in_flight: None,
            proxied,
            identical: Arc::default(),
        })
    }

    /// Enforces these limits (all of them at once) on every origin and credential this client
    /// sends to, replacing any given before. Unusable limits (0 requests, or over no time) are
    /// dropped with a warning.
    pub fn with_rate_limits(mut self, limits: impl IntoIterator<Item = RateLimit>) -> Self {
        self.rate_limits = limits
            .into_iter()
            .filter(|limit| {
                let usable = limit.is_usable();
                if !usable {
                    tracing::warn!(target: "trawl::http", %limit, "ignoring a rate limit that allows nothing");
                }
                usable
            })
            .collect();
        self.rate_limits.sort_unstable_by_key(|limit| limit.per);
        self.rate_limits.dedup();
        self
    }

    /// Counts requests in `limiters`, shared with the other clients of the run, instead of in
    /// limiters of its own.
    pub fn with_rate_limiters(mut self, limiters: RateLimiters) -> Self {
        self.limiters = limiters;
        self
    }

    /// Has at most `most` requests out at once, across every clone of this client: a request holds
    /// its turn through its retries and their waits, and others wait for a turn.
    pub fn with_requests_in_flight(mut self, most: usize) -> Self {
        self.in_flight = Some(Arc::new(Turns {
            semaphore: Arc::new(tokio::sync::Semaphore::new(most.max(1))),
            refusing: AtomicBool::new(false),
        }));
        self
    }

    /// Requests still waiting for a turn are refused, and so is every later one until
    /// [`accept_new_requests`](Self::accept_new_requests): a stream's run is stopping, and a
    /// request that would be refused like the one that failed (a revoked token) must not go out
    /// again.
    pub fn refuse_new_requests(&self) {
        if let Some(turns) = &self.in_flight {
            turns.refusing.store(true, Ordering::SeqCst);
        }
    }

    /// Ends [`refuse_new_requests`](Self::refuse_new_requests), for the next stream's run.
    pub fn accept_new_requests(&self) {
        if let Some(turns) = &self.in_flight {
            turns.refusing.store(false, Ordering::SeqCst);
        }
    }

    /// Logs every request and response in full, secrets redacted (`--trace-http`).
    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Counts into `stats`, shared with the other clients of the run, instead of counters of its
    /// own.
    pub fn with_stats(mut self, stats: HttpStats) -> Self {
        self.stats = stats;
        self
    }

    /// The rate limits this client enforces.
    pub fn rate_limits(&self) -> &[RateLimit] {
        &self.rate_limits
    }

    /// What this client's counters say now.
    pub fn stats(&self) -> HttpStatsSnapshot {
        self.stats.snapshot()
    }

    /// What the rate limiters learned and how often they paused, per origin.
    pub fn quota_reports(&self) -> Vec<QuotaReport> {
        self.limiters.reports()
    }

    /// The counters themselves, to read them later or share them.
    pub fn stats_handle(&self) -> HttpStats {
        self.stats.clone()
    }

    /// Sends one request on behalf of a connector, waiting for its turn and the rate limits, and
    /// retrying as the [`RetryPolicy`] says.
    pub async fn send(&self, request: Request) -> Result<Received, Error> {
        self.send_in_turn(request, None, coalesce::Call::begin())
            .await
            .0
    }

    /// As [`send`](Self::send), for a call into a connector that may send more: the turn is kept
    /// when the answer is a failure, and returned, to be handed back with the call's next request
    /// or dropped when the call ends. A failure may well stop the run, and until the connector has
    /// said so, no other request should go out in its place.
    pub async fn send_in_turn(
        &self,
        request: Request,
        kept: Option<Turn>,
        call: Call,
    ) -> (Result<Received, Error>, Option<Turn>, Option<SharedAnswer>) {
        let first = match self.identical.place(&request, call) {
            coalesce::Place::First(first) => first,
            coalesce::Place::Waiting(waiting) => match coalesce::answer(waiting).await {
                Some(answer) => return (answer, kept, None),
                // Its sender gave up before an answer: this one is sent after all.
                None => return Box::pin(self.send_in_turn(request, kept, call)).await,
            },
        };
        let mut turn = kept;
        let outcome = self.send_taking_turn(request, &mut turn).await;
        let shared = first.publish(&outcome);
        let succeeded = matches!(&outcome, Ok(response) if response.status < 400);
        if !succeeded {
            return (outcome, turn, shared);
        }
        if turn.take().is_some() {
            // Giving up the turn woke the call waiting for it, on this thread, where the runtime
            // runs it next, but only once this task yields; and this task goes on to read the
            // page it got, without yielding. Yielding now sends the next request while this page
            // is read (with one worker: 396 -> 308 ms for 720 pages).
            tokio::task::yield_now().await;
        }
        (outcome, None, shared)
    }

    /// A turn to have a request out, if their number is bounded; refused once the run stops.
    async fn take_turn(&self) -> Result<Option<Turn>, Error> {
        let Some(turns) = &self.in_flight else {
            return Ok(None);
        };
        let turn = turns
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore of request turns is never closed");
        // Checked once the turn is had: the turn a failed request gives up may have been given
        // to this one before the run stopped. Refused, it gives the turn to the next in line,
        // which is refused in turn.
        if turns.refusing.load(Ordering::SeqCst) {
            return Err(Error::Denied(
                "not sent: the run is stopping after another request failed".into(),
            ));
        }
        Ok(Some(Turn { _permit: turn }))
    }

    async fn send_taking_turn(
        &self,
        request: Request,
        turn: &mut Option<Turn>,
    ) -> Result<Received, Error> {
        // Check the URL as the connector wrote it, then again as it is sent: the secrets go only
        // into its path and query, encoded, and the origin may not change.
        let written = parse_url(&request.url)?;
        self.policy.check(&written).map_err(Error::Denied)?;
        let mut used = vec![false; self.secrets.len()];
        let url = self.secrets.substitute_url(&written, &mut used)?;

        let mut builder = self.client.request(method(request.method), url.clone());
        for Header { name, value } in &request.headers {
            self.secrets.check_header_name(name)?;
            if name.eq_ignore_ascii_case("host") {
                // A front end that serves many sites (a CDN) routes by it: another site's name
                // there would take the request, and its secrets, to that site.
                return Err(Error::Denied(
                    "a request may not set its Host header: trawl sets it from the URL".into(),
                ));
            }
            let header =
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    Error::InvalidRequest(format!("`{name}` is not a valid header name"))
                })?;
            let value = reqwest::header::HeaderValue::from_str(
                &self
                    .secrets
                    .substitute_header_value(name, value, &mut used)?,
            )
            .map_err(|_| {
                Error::InvalidRequest(format!("the value of header `{name}` cannot be sent"))
            })?;
            builder = builder.header(header, value);
        }
        self.policy.check(&url).map_err(Error::Denied)?;
        self.secrets.check_bindings(&self.policy, &url, &used)?;
        if self.proxied
            && let Some(url::Host::Domain(name)) = url.host()
        {
            // A proxy resolves the name itself, out of the resolver's sight: the name is looked
            // up here too, and refused if all it leads to is internal and not granted.
            policy::check_name(&self.policy, name)
                .await
                .map_err(|internal| Error::Denied(internal.to_string()))?;
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let prepared = builder
            .build()
            .map_err(|error| Error::InvalidRequest(describe(&error.without_url())))?;
        let key = self
            .limiters
            .key(policy::origin(&url), self.secrets.credential(&used));
        let bucket = self.limiters.bucket(&key);
        let exchange = Exchange {
            url: &request.url,
            method: request.method,
            origin: key.origin(),
            bucket: &bucket,
        };
        if turn.is_none() {
            *turn = self.take_turn().await?;
        }
        tracing::debug!(target: "trawl::http", method = ?request.method, url = %request.url, "request");
        let outcome = CARRIED
            .scope(used, self.send_with_retries(&exchange, prepared))
            .await;
        // Nothing of a response reaches the connector before the secrets are out of it: body,
        // header names and values, and error messages (status text never reaches it).
        let mut response = outcome.map_err(|error| self.redact_error(error))?;
        let working = std::time::Instant::now();
        self.secrets.redact(&mut response.body);
        self.secrets.redact_headers(&mut response.headers);
        if self.trace {
            trace_exchange(&self.secrets, &request.url, &request.headers, &response);
        }
        response.work = working.elapsed();
        Ok(response)
    }

    /// `error` with any secret in its message replaced by its placeholder.
    fn redact_error(&self, error: Error) -> Error {
        match error {
            Error::Denied(message) => Error::Denied(self.secrets.redact_text(&message)),
            Error::Transport(message) => Error::Transport(self.secrets.redact_text(&message)),
            Error::InvalidRequest(message) => {
                Error::InvalidRequest(self.secrets.redact_text(&message))
            }
            other => other,
        }
    }

    async fn send_with_retries(
        &self,
        exchange: &Exchange<'_>,
        prepared: reqwest::Request,
    ) -> Result<Received, Error> {
        let stats = &self.stats.counters;
        let started = tokio::time::Instant::now();
        let deadline = started + self.retry.total;
        let mut last = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let acquiring = exchange.bucket.acquire(&self.rate_limits, deadline);
            let Some(slot) = PatientWait::during(acquiring).await else {
                tracing::info!(target: "trawl::http", url = %exchange.url, origin = exchange.origin,
                    budget_s = self.retry.total.as_secs_f64(),
                    "not sent: the rate limits or a server-requested pause would hold it past its time budget");
                return last.unwrap_or(Err(Error::Timeout));
            };
            let waited = slot.waited;
            HttpStats::add_time(&stats.rate_limit_wait_micros, waited);
            if !waited.is_zero() {
                tracing::trace!(target: "trawl::http", url = %exchange.url,
                    waited_ms = waited.as_millis() as u64, "waited for the rate limit");
            }
            let Some(request) = prepared.try_clone() else {
                // Bodies are always bytes, which clone; a stream would not.
                return Err(Error::InvalidRequest(
                    "the request body cannot be sent twice".into(),
                ));
            };
            HttpStats::add(&stats.requests, 1);
            let sent_at = tokio::time::Instant::now();
            let outcome = self.attempt(request).await;
            // Answered: the request now counts from this instant (see `SendLog::room`).
            drop(slot);

            let (retryable, retry_after) = match &outcome {
                Ok(response) => {
                    tracing::debug!(target: "trawl::http", url = %exchange.url, status = response.status,
                        bytes = response.body.len(), elapsed_ms = sent_at.elapsed().as_millis() as u64,
                        attempt, "response");
                    match response.status {
                        429 => HttpStats::add(&stats.status_429, 1),
                        500..=599 => HttpStats::add(&stats.status_5xx, 1),
                        _ => {}
                    }
                    let hint = ratelimit::server_hint(
                        response.status,
                        &response.headers,
                        SystemTime::now(),
                    );
                    let hinted = hint.pause.filter(|pause| !pause.is_zero());
                    if response.status == 429 {
                        self.refused(exchange, sent_at, hinted);
                    } else if let Some(pause) = hinted
                        && exchange
                            .bucket
                            .pause_until(tokio::time::Instant::now() + pause)
                    {
                        tracing::info!(target: "trawl::http", origin = exchange.origin,
                            status = response.status, pause_s = pause.as_secs_f64(),
                            "the server asked to wait: holding every request to this host and credential");
                    }
                    let retryable = retry::retryable_status(response.status);
                    if retryable {
                        self.patience.failed(
                            exchange.origin,
                            format!("answers {}", response.status),
                            format!("{} from {}", response.status, exchange.url),
                        );
                    } else {
                        exchange.bucket.answered(waited);
                        self.patience.progressed();
                    }
                    (retryable, hint.retry_after)
                }
                Err((error, failure)) => {
                    HttpStats::add(&stats.transport_errors, 1);
                    tracing::debug!(target: "trawl::http", url = %exchange.url, ?error, ?failure,
                        attempt, "request failed");
                    let retryable = failure.retryable(exchange.method);
                    if retryable {
                        let kind = match (error, failure) {
                            (Error::Timeout, _) => "timeouts",
                            (_, Failure::Connect) => "connections refused or failed",
                            _ => "connections reset or cut short",
                        };
                        self.patience.failed(
                            exchange.origin,
                            kind.to_string(),
                            format!("{} on {}", describe_error(error), exchange.url),
                        );
                    }
                    (retryable, None)
                }
            };
            let outcome = outcome.map_err(|(error, _)| error);
            if !retryable {
                return outcome;
            }
            if attempt >= self.retry.max_attempts {
                if self.retry.max_attempts > 1 {
                    tracing::debug!(target: "trawl::http", url = %exchange.url, attempt,
                        "giving up: no attempts left");
                }
                return outcome;
            }
            let backoff = self.jitter.full(self.retry.ceiling(attempt));
            let wait = backoff.max(retry_after.unwrap_or_default());
            if tokio::time::Instant::now() + wait > deadline {
                tracing::debug!(target: "trawl::http", url = %exchange.url, attempt,
                    wait_ms = wait.as_millis() as u64, "giving up: the wait would exceed the time budget");
                return outcome;
            }
            if let Some(stalled) = self.patience.stalled(exchange.origin, self.retry.stall) {
                tracing::debug!(target: "trawl::http", url = %exchange.url, attempt,
                    "giving up: the run made no progress for its stall limit");
                return Err(stalled);
            }
            match &outcome {
                Ok(response) => tracing::debug!(target: "trawl::http", url = %exchange.url,
                    status = response.status, attempt, wait_ms = wait.as_millis() as u64, "retrying"),
                Err(error) => tracing::debug!(target: "trawl::http", url = %exchange.url,
                    ?error, attempt, wait_ms = wait.as_millis() as u64, "retrying"),
            }
            HttpStats::add(&stats.retries, 1);
            HttpStats::add_time(&stats.backoff_wait_micros, wait);
            PatientWait::during(tokio::time::sleep(wait)).await;
            last = Some(outcome);
        }
    }

    /// A 429: the whole key pauses and a learned rate is cut (see [`Bucket::refused`]).
    fn refused(
        &self,
        exchange: &Exchange<'_>,
        sent_at: tokio::time::Instant,
        hinted: Option<Duration>,
    ) {
        let refusal = exchange.bucket.refused(sent_at, hinted);
        if let Some(learned) = refusal.learned {
            tracing::info!(target: "trawl::http", origin = exchange.origin, %learned,
                "the vendor refused a request (429): keeping to a lower rate from now on");
        }
        if let Some(pause) = refusal.paused_for {
            tracing::info!(target: "trawl::http", origin = exchange.origin,
                pause_s = pause.as_secs_f64(),
                "the vendor refused a request (429): holding every request to this host and credential");
        }
    }

    /// One attempt: sends `request` and reads the whole answer within the timeout.
    async fn attempt(&self, request: reqwest::Request) -> Result<Received, (Error, Failure)> {
        let failed = |error: reqwest::Error| {
            let failure =
                if internal_address(&error).is_some() || refused_redirect(&error).is_some() {
                    Failure::Permanent
                } else {
                    Failure::of(&error)
                };
            (transport_error(error), failure)
        };
        let exchange = async {
            let mut response = self.client.execute(request).await.map_err(failed)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_string(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect();
            let mut pieces: Vec<Bytes> = Vec::new();
            let mut received = 0;
            while let Some(chunk) = response.chunk().await.map_err(failed)? {
                HttpStats::add(&self.stats.counters.bytes_received, chunk.len() as u64);
                received += chunk.len() as u64;
                if received > self.limits.max_body_bytes {
                    return Err((
                        Error::TooLarge(self.limits.max_body_bytes),
                        Failure::Permanent,
                    ));
                }
                pieces.push(chunk);
            }
            let body = match pieces.as_slice() {
                // Kept where it came in, in the connection's read buffer. A small body is copied
                // out all the same: that buffer may be many times its size, and holding the body
                // would hold all of it.
                [only] if only.len() >= COPIED_BELOW => only.clone(),
                // Joined into a buffer of its size.
                _ => pieces.concat().into(),
            };
            Ok(Received {
                status,
                headers,
                body,
                work: Duration::ZERO,
            })
        };
        tokio::time::timeout(self.limits.timeout, exchange)
            .await
            .unwrap_or(Err((Error::Timeout, Failure::Interrupted)))
    }
}

/// What one `send` is about, for the retry loop and its log lines.
struct Exchange<'a> {
    /// The URL as the connector wrote it: placeholders, never secrets.
    url: &'a str,
    method: Method,
    origin: &'a str,
    bucket: &'a Bucket,
}

fn parse_url(text: &str) -> Result<Url, Error> {
    let url =
        Url::parse(text).map_err(|error| Error::InvalidRequest(format!("invalid URL: {error}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Error::InvalidRequest(format!(
            "only http and https URLs can be requested, not {other}"
        ))),
    }
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Head => reqwest::Method::HEAD,
    }
}

/// The cause of type `E` of a failed request, if it has one.
fn cause<E: std::error::Error + 'static>(error: &reqwest::Error) -> Option<&E> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<E>() {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

/// The refusal of the name resolver, when that is why a request failed.
fn internal_address(error: &reqwest::Error) -> Option<&InternalAddress> {
    cause(error)
}

/// The refusal of the redirect policy to take a secret elsewhere, when that is why.
fn refused_redirect(error: &reqwest::Error) -> Option<&SecretRedirect> {
    cause(error)
}

/// Describes a transport failure without its URL, which may carry a secret in the query.
fn transport_error(error: reqwest::Error) -> Error {
    if let Some(internal) = internal_address(&error) {
        return Error::Denied(internal.to_string());
    }
    if let Some(refused) = refused_redirect(&error) {
        return Error::Denied(refused.to_string());
    }
    if error.is_timeout() {
        return Error::Timeout;
    }
    Error::Transport(describe(&error.without_url()))
}

/// An error and its causes on one line.
/// A failed attempt's error, for the message of a run that gave up.
fn describe_error(error: &Error) -> String {
    match error {
        Error::Timeout => "timed out".into(),
        Error::Transport(message) | Error::Denied(message) | Error::InvalidRequest(message) => {
            message.clone()
        }
        other => format!("{other:?}"),
    }
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl http::Host for HostState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        self.send_request(request).await.map(Response::from)
    }
}

impl HostState {
    /// Sends a connector's request (`http.send`, `responses.send`).
    pub(crate) async fn send_request(&mut self, request: Request) -> Result<Received, Error> {
        let Some(http) = self.capabilities.http.clone() else {
            return Err(Error::Denied(
                "no requests may be sent while a connector describes itself".into(),
            ));
        };
        // Waiting (on the network, rate limits, backoffs) does not count against the connector's
        // CPU budget; the work done on the answer for it does, and the next epoch tick checks it.
        let started = std::time::Instant::now();
        let (outcome, kept, shared) = PATIENT_WAIT
            .scope(
                self.patient_wait.clone(),
                http.send_in_turn(request, self.kept_turn.take(), self.call),
            )
            .await;
        self.kept_turn = kept;
        self.keep_shared_answer(shared);
        let work = outcome
            .as_ref()
            .map_or(Duration::ZERO, |received| received.work);
        self.add_host_time(started.elapsed().saturating_sub(work));
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;
    use trawl_simulators::RunningServer;
    use trawl_simulators::faults::{Action, Fault};
    use trawl_simulators::workvivo::{self, Config, DEFAULT_START};

    const TOKEN: &str = "sim-token";

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Quick retries, so that tests run in milliseconds.
    fn fast_retry() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(5),
            max_delay: Duration::from_millis(40),
            ..RetryPolicy::default()
        }
    }

    /// A client of the Workvivo connector with `token` as its secret, granted `base_url`.
    fn client(base_url: &str, token: &str) -> HttpCapability {
        let declared = vec!["https://api.workvivo.io".to_string()];
        let grants = vec![base_url.to_string()];
        let policy = NetworkPolicy::new("workvivo", &declared, Some(&grants)).unwrap();
        let mut secrets = Secrets::default();
        secrets.insert("token", token.to_string());
        HttpCapability::new(policy, secrets, HttpLimits::default())
            .unwrap()
            .with_retry(fast_retry())
            .with_rate_limiters(fast_limiters())
    }

    /// Limiters that pause a key only briefly after a 429.
    fn fast_limiters() -> RateLimiters {
        RateLimiters::with_tuning(QuotaTuning {
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            ..QuotaTuning::default()
        })
    }

    /// One hour of SIEM events, the way the connector asks for it.
    fn siem(base_url: &str, method: Method) -> Request {
        Request {
            method,
            url: format!(
                "{base_url}/v1/siem/{DEFAULT_START}/{}",
                DEFAULT_START + 3600
            ),
            headers: vec![
                header("authorization", "Bearer {{secret:token}}"),
                header("workvivo-id", "sim-org"),
            ],
            body: None,
        }
    }

    async fn simulator(config: Config) -> RunningServer {
        workvivo::start(config).await.unwrap()
    }

    /// Polls `condition` until it holds (for at most 5 seconds).
    async fn until(mut condition: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < give_up, "timed out waiting");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A server that answers the n-th connection with the n-th canned bytes and closes it, and
    /// records when each request arrived. Connections beyond the script are closed at once.
    struct Canned {
        base_url: String,
        arrivals: Arc<Mutex<Vec<Instant>>>,
    }

    impl Canned {
        async fn start(responses: Vec<Vec<u8>>) -> Canned {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
            let log = arrivals.clone();
            tokio::spawn(async move {
                let mut responses = responses.into_iter();
                while let Ok((mut socket, _)) = listener.accept().await {
                    let Some(response) = responses.next() else {
                        continue;
                    };
                    let log = log.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0; 1024];
                        while !head.windows(4).any(|four| four == b"\r\n\r\n") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        log.lock().unwrap().push(Instant::now());
                        let _ = socket.write_all(&response).await;
                        let _ = socket.shutdown().await;
                    });
                }
            });
            Canned { base_url, arrivals }
        }

        fn arrivals(&self) -> Vec<Instant> {
            self.arrivals.lock().unwrap().clone()
        }

        fn request(&self) -> Request {
            Request {
                method: Method::Get,
                url: format!("{}/events", self.base_url),
                headers: vec![header("authorization", "Bearer {{secret:token}}")],
                body: None,
            }
        }
    }

    fn canned(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
        let mut response = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(body);
        response.into_bytes()
    }

    #[test]
    fn secrets_are_substituted_and_not_printed() {
        let mut secrets = Secrets::default();
        secrets.insert("token", "s3cr3t".into());
        let mut used = [false];
        let substitute = |text: &str, used: &mut [bool]| {
            secrets
                .substitute_header_value("authorization", text, used)
                .unwrap()
        };
        assert_eq!(
            substitute("Bearer {{secret:token}}", &mut used),
            "Bearer s3cr3t"
        );
        assert_eq!(
            substitute("{{secret:other}}", &mut used),
            "{{secret:other}}"
        );
        assert!(!format!("{secrets:?}").contains("s3cr3t"));
    }

    /// `request`, told apart from identical ones by a header: identical requests out together
    /// get one answer, and these tests are about requests that each go out.
    fn numbered(mut request: Request, number: usize) -> Request {
        request
            .headers
            .push(header("x-request-number", &number.to_string()));
        request
    }

    #[test]
    fn the_credential_is_the_secrets_sent_or_else_all_of_them() {
        let mut secrets = Secrets::default();
        secrets.insert("key", "k".into());
        secrets.insert("secret", "s".into());
        let mut used = vec![false; 2];
        secrets
            .substitute_url(
                &Url::parse("https://x/?key={{secret:key}}").unwrap(),
                &mut used,
            )
            .unwrap();
        assert_eq!(used, [true, false]);
        assert_eq!(secrets.credential(&used), ["k"]);
        // A request with a token the connector obtained carries no secret: it counts against the
        // credentials that obtained it.
        assert_eq!(secrets.credential(&[false, false]), ["k", "s"]);
    }

    #[tokio::test]
    async fn no_more_requests_are_out_at_once_than_allowed() {
        let server = simulator(Config::default()).await;
        let answer_after = Duration::from_millis(150);
        server
            .faults()
            .push(Fault::with_probability(1.0, 1, Action::Delay(answer_after)));
        let client = client(&server.base_url(), TOKEN).with_requests_in_flight(2);
        let sends = (0..6).map(|n| client.send(numbered(siem(&server.base_url(), Method::Get), n)));
        for response in futures_util::future::join_all(sends).await {
            assert_eq!(response.unwrap().status, 200);
        }
        let mut arrivals: Vec<Duration> = server
            .requests()
            .iter()
            .map(|request| request.received_at)
            .collect();
        arrivals.sort();
        assert_eq!(arrivals.len(), 6);
        // A third request can only have gone out once one of the two before it was answered.
        for three in arrivals.windows(3) {
            assert!(
                three[2] - three[0] >= answer_after,
                "three requests out at once: {arrivals:?}"
            );
        }

        // Once refused, requests waiting for a turn are not sent, nor are later ones.
        let sends: Vec<_> = (0..3)
            .map(|n| client.send(numbered(siem(&server.base_url(), Method::Get), n)))
            .collect();
        // Polled after the sends: the first two have their turns by then, the third waits.
        let refuse = async { client.refuse_new_requests() };
        let (answers, ()) = tokio::join!(futures_util::future::join_all(sends), refuse);
        let statuses: Vec<_> = answers
            .iter()
            .map(|answer| answer.as_ref().map(|response| response.status))
            .collect();
        assert!(
            matches!(statuses[..], [Ok(200), Ok(200), Err(Error::Denied(_))]),
            "{statuses:?}"
        );
        let later = client.send(siem(&server.base_url(), Method::Get)).await;
        assert!(matches!(later, Err(Error::Denied(_))), "{later:?}");
        assert_eq!(server.requests().len(), 8);

        // Until the next stream's run begins.
        client.accept_new_requests();
        let next = client.send(siem(&server.base_url(), Method::Get)).await;
        assert_eq!(next.unwrap().status, 200);
    }

    #[tokio::test]
    async fn a_failed_answer_keeps_its_turn_until_the_call_is_done() {
        let server = simulator(Config::default()).await;
        server.faults().push(Fault::status_at(1, 401));
        let client = client(&server.base_url(), TOKEN).with_requests_in_flight(1);
        let request = || siem(&server.base_url(), Method::Get);
        let call = Call::begin();
        let (refused, kept, _) = client.send_in_turn(request(), None, call).await;
        assert_eq!(refused.unwrap().status, 401);
        assert!(kept.is_some(), "a failed answer gave up its turn");
        // No one else's request goes out in its place...
        let waiting = tokio::time::timeout(Duration::from_millis(200), client.send(request()));
        assert!(
            waiting.await.is_err(),
            "a request went out while a failed one held the turn"
        );
        // ...but the same call can go on with it (a new token, the page again).
        let (again, kept, _) = client.send_in_turn(request(), kept, call).await;
        assert_eq!(again.unwrap().status, 200);
        assert!(kept.is_none(), "a successful answer kept its turn");
        assert_eq!(client.send(request()).await.unwrap().status, 200);
    }

    #[tokio::test]
    async fn a_server_error_then_success_is_retried() {
        let server = simulator(Config::default()).await;
        server.faults().push(Fault::status_at(1, 500));
        let client = client(&server.base_url(), TOKEN);
        let response = client.send(siem(&server.base_url(), Method::Get)).await;
        assert_eq!(response.unwrap().status, 200);
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [500, 200]);
        let stats = client.stats();
        assert_eq!(
            (
                stats.requests,
                stats.retries,
                stats.status_5xx,
                stats.status_429
            ),
            (2, 1, 1, 0)
        );
        assert!(stats.bytes_received > 0);
    }

    #[tokio::test]
    async fn a_429_without_retry_after_backs_off_and_succeeds() {
        let server = simulator(Config::default()).await;
        server.faults().push(Fault::at(2, Action::status(429)));
        server.faults().push(Fault::at(3, Action::status(429)));
        let client = client(&server.base_url(), TOKEN);
        let request = || siem(&server.base_url(), Method::Get);
        assert_eq!(client.send(request()).await.unwrap().status, 200);
        assert_eq!(client.send(request()).await.unwrap().status, 200);
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 429, 429, 200]);
        let stats = client.stats();
        assert_eq!((stats.requests, stats.retries, stats.status_429), (4, 2, 2));
    }

    #[tokio::test]
    async fn client_errors_are_returned_at_once() {
        let server = simulator(Config::default()).await;
        let client = client(&server.base_url(), TOKEN);
        for (n, status) in [400, 403, 404, 409, 422].into_iter().enumerate() {
            server.faults().push(Fault::status_at(n as u64 + 1, status));
            let response = client.send(siem(&server.base_url(), Method::Get)).await;
            assert_eq!(response.unwrap().status, status);
            assert_eq!(server.requests().len(), n + 1, "{status} was retried");
        }
        // A real 401, from a token the simulator does not know.
        let refused = self::client(&server.base_url(), "expired-token");
        for method in [Method::Get, Method::Head] {
            let response = refused.send(siem(&server.base_url(), method)).await;
            assert_eq!(response.unwrap().status, 401);
        }
        assert_eq!(server.requests().len(), 7);
        assert_eq!(client.stats().retries + refused.stats().retries, 0);
    }

    #[tokio::test]
    async fn a_reset_connection_is_retried_but_not_for_a_post() {
        let server = simulator(Config::default()).await;
        server.faults().push(Fault::at(1, Action::ResetConnection));
        let client = client(&server.base_url(), TOKEN);
        let response = client.send(siem(&server.base_url(), Method::Get)).await;
        assert_eq!(response.unwrap().status, 200);
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [0, 200]);

        // The POST may have reached the server: it is not sent again.
        server.faults().push(Fault::at(3, Action::ResetConnection));
        let error = client
            .send(siem(&server.base_url(), Method::Post))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert_eq!(server.requests().len(), 3);
        let stats = client.stats();
        assert_eq!(
            (stats.requests, stats.retries, stats.transport_errors),
            (3, 1, 2)
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_for_any_method_until_attempts_run_out() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let base_url = format!("http://127.0.0.1:{port}");
        let client = client(&base_url, "s3cr3t-in-query").with_retry(RetryPolicy {
            max_attempts: 3,
            ..fast_retry()
        });
        let mut request = siem(&base_url, Method::Post);
        request.url.push_str("?key={{secret:token}}");
        let error = client.send(request).await.unwrap_err();
        let Error::Transport(message) = error else {
            panic!("{error:?}")
        };
        assert!(!message.contains("s3cr3t"), "{message}");
        let stats = client.stats();
        assert_eq!(
            (stats.requests, stats.retries, stats.transport_errors),
            (3, 2, 3)
        );
    }

    #[tokio::test]
    async fn a_body_cut_short_is_retried() {
        let body = r#"{"data":[],"status":"success"}"#;
        // The server promises 100 bytes, sends 9 and closes the connection.
        let mut cut =
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n".to_vec();
        cut.extend_from_slice(br#"{"data":["#);
        let server = Canned::start(vec![cut, canned("200 OK", &[], body)]).await;
        let client = client(&server.base_url, TOKEN);
        let response = client.send(server.request()).await.unwrap();
        assert_eq!(
            (response.status, &response.body[..]),
            (200, body.as_bytes())
        );
        assert_eq!(server.arrivals().len(), 2);
        assert_eq!(client.stats().transport_errors, 1);
    }

    #[tokio::test]
    async fn a_body_in_pieces_is_joined_and_one_in_one_piece_is_kept_whole() {
        let large = format!(r#"{{"data":"{}"}}"#, "x".repeat(COPIED_BELOW * 2));
        let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for piece in [r#"{"data":"#, r#""a, b","#, r#""more":[1,2]}"#] {
            chunked.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let server = Canned::start(vec![
            chunked,
            canned("200 OK", &[], &large),
            canned("200 OK", &[], "{}"),
        ])
        .await;
        let client = client(&server.base_url, TOKEN);
        let expected = [r#"{"data":"a, b","more":[1,2]}"#, &large, "{}"];
        for body in expected {
            let response = client.send(server.request()).await.unwrap();
            assert_eq!(std::str::from_utf8(&response.body), Ok(body));
        }
        let total: usize = expected.iter().map(|body| body.len()).sum();
        assert_eq!(client.stats().bytes_received, total as u64);
    }

    /// The simulator's `TruncatedBody` sends a `Content-Length` that matches the cut: a complete
    /// HTTP exchange whose JSON is cut short. That is the connector's to notice (a malformed page),
    /// not a transport failure, so it is returned as it is.
    #[tokio::test]
    async fn a_complete_response_with_cut_json_is_returned_as_it_is() {
        let server = simulator(Config::default()).await;
        server.faults().push(Fault::at(1, Action::TruncatedBody));
        let client = client(&server.base_url(), TOKEN);
        let response = client
            .send(siem(&server.base_url(), Method::Get))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert!(serde_json::from_slice::<serde_json::Value>(&response.body).is_err());
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn when_retries_run_out_the_last_503_is_returned() {
        let server = simulator(Config::default()).await;
        server
            .faults()
            .push(Fault::status_on_path("/v1/siem/", 503, None));
        let client = client(&server.base_url(), TOKEN).with_retry(RetryPolicy {
            max_attempts: 4,
            ..fast_retry()
        });
        let response = client
            .send(siem(&server.base_url(), Method::Get))
            .await
            .unwrap();
        assert_eq!(response.status, 503);
        assert!(String::from_utf8_lossy(&response.body).contains("503 Service Unavailable"));
        assert_eq!(server.requests().len(), 4);
        let stats = client.stats();
        assert_eq!((stats.requests, stats.retries, stats.status_5xx), (4, 3, 4));

        // The time budget ends retries too: a Retry-After longer than what is left of it is not
        // waited for.
        server.faults().clear();
        server.faults().push(Fault::on_path(
            "/v1/siem/",
            Action::status(503).with_retry_after(2),
        ));
        let client = self::client(&server.base_url(), TOKEN).with_retry(RetryPolicy {
            total: Duration::from_millis(500),
            ..fast_retry()
        });
        let started = Instant::now();
        let response = client
            .send(siem(&server.base_url(), Method::Get))
            .await
            .unwrap();
        assert_eq!(response.status, 503);
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(server.requests().len(), 5);
    }

    #[tokio::test]
    async fn retry_after_pauses_the_key_for_every_worker_of_that_credential() {
        let server = simulator(Config::default()).await;
        server
            .faults()
            .push(Fault::at(1, Action::status(429).with_retry_after(1)));
        let limiters = fast_limiters();
        let worker = |token: &str| {
            Arc::new(client(&server.base_url(), token).with_rate_limiters(limiters.clone()))
        };
        let (first, second, other_profile) = (worker(TOKEN), worker(TOKEN), worker("other-token"));

        let request = siem(&server.base_url(), Method::Get);
        let first_task = {
            let (first, request) = (first.clone(), request.clone());
            tokio::spawn(async move { first.send(request).await })
        };
        until(|| first.stats().status_429 == 1).await;
        // Another worker with the same credential waits for the pause; one with another
        // credential does not.
        let second_task = {
            let (second, request) = (second.clone(), request.clone());
            tokio::spawn(async move { second.send(request).await })
        };
        let other = other_profile.send(request.clone()).await.unwrap();
        assert_eq!(other.status, 401);
        assert_eq!(first_task.await.unwrap().unwrap().status, 200);
        assert_eq!(second_task.await.unwrap().unwrap().status, 200);

        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        let paused_at = requests[0].received_at;
        assert_eq!(requests[0].status, 429);
        for request in &requests[1..] {
            let after = request.received_at - paused_at;
            if request.header("authorization") == Some("Bearer other-token") {
                assert!(after < Duration::from_millis(500), "{after:?}");
            } else {
                assert!(after >= Duration::from_millis(990), "{after:?}");
            }
        }
        assert!(second.stats().rate_limit_wait >= Duration::from_millis(500));
        assert_eq!(first.stats().status_429, 1);
    }

    #[tokio::test]
    async fn an_http_date_retry_after_pauses_the_key() {
        // Two seconds ahead, whole seconds: a wait of more than one second.
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(
                &(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2)),
            )
            .unwrap();
        let ok = || canned("200 OK", &[], "{}");
        let server = Canned::start(vec![
            canned("429 Too Many Requests", &[("retry-after", &date)], ""),
            ok(),
            ok(),
        ])
        .await;
        let client = Arc::new(client(&server.base_url, TOKEN));
        let first = {
            let (client, request) = (client.clone(), numbered(server.request(), 1));
            tokio::spawn(async move { client.send(request).await })
        };
        until(|| client.stats().status_429 == 1).await;
        assert_eq!(
            client
                .send(numbered(server.request(), 2))
                .await
                .unwrap()
                .status,
            200
        );
        assert_eq!(first.await.unwrap().unwrap().status, 200);
        let arrivals = server.arrivals();
        assert_eq!(arrivals.len(), 3);
        for later in &arrivals[1..] {
            assert!(*later - arrivals[0] >= Duration::from_millis(990));
        }
    }

    #[tokio::test]
    async fn an_exhausted_quota_pauses_the_key_until_it_resets() {
        let server = Canned::start(vec![
            canned(
                "200 OK",
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
                "{}",
            ),
            canned("200 OK", &[], "{}"),
        ])
        .await;
        let client = client(&server.base_url, TOKEN);
        for _ in 0..2 {
            assert_eq!(client.send(server.request()).await.unwrap().status, 200);
        }
        let arrivals = server.arrivals();
        assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(990));
        assert_eq!(client.stats().retries, 0);
    }

    #[tokio::test]
    async fn rate_limits_space_requests_of_every_client_sharing_the_registry() {
        let server = simulator(Config::default()).await;
        let limiters = fast_limiters();
        let limit = RateLimit::new(2, Duration::from_millis(300));
        let clients: Vec<Arc<HttpCapability>> = (0..2)
            .map(|_| {
                Arc::new(
                    client(&server.base_url(), TOKEN)
                        .with_rate_limiters(limiters.clone())
                        .with_rate_limits([limit, RateLimit::per_minute(1000)]),
                )
            })
            .collect();
        assert_eq!(
            clients[0].rate_limits(),
            [limit, RateLimit::per_minute(1000)]
        );
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (c, client) in clients.iter().enumerate() {
            for n in 0..3 {
                let request = numbered(siem(&server.base_url(), Method::Get), c * 3 + n);
                let client = client.clone();
                tasks.push(tokio::spawn(async move { client.send(request).await }));
            }
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().status, 200);
        }
        // Six requests at two per 300 ms: at 0, 0, 300, 300, 600 and 600 ms.
        assert!(started.elapsed() >= Duration::from_millis(600));
        let arrivals: Vec<Duration> = server.requests().iter().map(|r| r.received_at).collect();
        let mut sorted = arrivals.clone();
        sorted.sort();
        for pair in sorted.windows(3) {
            // Sent exactly 300 ms apart; on a loaded machine, arrival can be tens of ms uneven.
            assert!(
                pair[2] - pair[0] >= Duration::from_millis(200),
                "{sorted:?}"
            );
        }
        let waited = clients[0].stats().rate_limit_wait + clients[1].stats().rate_limit_wait;
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// `trawl::http`'s log lines, down to trace, on this thread until the guard is dropped.
        fn http_logs() -> (Self, (tracing::Dispatch, tracing::dispatcher::DefaultGuard)) {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_env_filter(tracing_subscriber::EnvFilter::new("trawl::http=trace"))
                .with_ansi(false)
                .finish();
            let dispatch = tracing::Dispatch::new(subscriber);
            // With a single dispatcher registered, tracing decides whether a log line is wanted
            // from the first thread that reaches it, and another test's thread, without a
            // subscriber, would turn it off for everyone. With two, it asks all of them.
            let second = tracing::Dispatch::new(tracing_subscriber::registry());
            let guard = tracing::dispatcher::set_default(&dispatch);
            (captured, (second, guard))
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn secrets_stay_out_of_logs_stats_and_errors() {
        const SECRET: &str = "s3cr3t-t0ken-value";
        let (captured, _capturing) = Captured::http_logs();

        let server = simulator(Config {
            token: SECRET.into(),
            ..Config::default()
        })
        .await;
        server
            .faults()
            .push(Fault::at(1, Action::status(503).with_retry_after(1)));
        server.faults().push(Fault::at(2, Action::ResetConnection));
        let client =
            client(&server.base_url(), SECRET).with_rate_limits([RateLimit::per_second(5)]);
        let mut request = siem(&server.base_url(), Method::Get);
        request.url.push_str("?key={{secret:token}}");
        assert_eq!(client.send(request).await.unwrap().status, 200);
        // The secret did go out.
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests[2].path.contains(SECRET));

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("retrying"), "{logs}");
        assert!(logs.contains("the server asked to wait"), "{logs}");
        assert!(logs.contains("?key={{secret:token}}"), "{logs}");
        assert!(!logs.contains(SECRET), "{logs}");
        let shown = format!(
            "{:?} {:?} {:?}",
            client.stats(),
            client.stats_handle(),
            client.limiters
        );
        assert!(!shown.contains(SECRET), "{shown}");
    }

    #[tokio::test]
    async fn the_trace_shows_redacted_bytes_and_never_decodes_an_escaped_secret() {
        const SECRET: &str = "s3cr3t-t0ken-value";
        let (captured, _capturing) = Captured::http_logs();

        // Escaped so that a trace which decoded the JSON and wrote it out again would show it.
        let body = r#"{"echo":"s3cr3t\u002Dt0ken\u002dvalue","password":"own-pass\"word","nested":{"session_token":"own-session"},"n":1}"#;
        let server = Canned::start(vec![canned(
            "200 OK",
            &[
                ("x-echo", "s3cr3t\\u002dt0ken-value"),
                ("set-cookie", "own=1"),
            ],
            body,
        )])
        .await;
        let client = client(&server.base_url, SECRET).with_trace(true);
        let response = client.send(server.request()).await.unwrap();
        assert!(!String::from_utf8_lossy(&response.body).contains("s3cr3t"));

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("exchange"), "{logs}");
        assert!(logs.contains(r#"{"echo":"{{secret:token}}","#), "{logs}");
        assert!(!logs.contains(SECRET), "{logs}");
        assert!(!logs.contains("s3cr3t"), "{logs}");
        // Credentials the connector would obtain itself are blanked out where they are.
        assert!(!logs.contains("own-pass"), "{logs}");
        assert!(!logs.contains("own-session"), "{logs}");
        assert!(!logs.contains("own=1"), "{logs}");
        assert!(logs.contains(r#""n":1}"#), "{logs}");
    }

    #[test]
    fn credential_members_are_hidden_in_place() {
        let body = br#"{"token": "abc\"def", "a":{"Session":"x"},"tokens":[1],"password":"cut"#;
        assert_eq!(
            String::from_utf8(hide_credential_members(body)).unwrap(),
            r#"{"token": "<hidden>", "a":{"Session":"<hidden>"},"tokens":[1],"password":"<hidden>""#
        );
        let not_json = b"plain \" text \"token\": 5";
        assert_eq!(hide_credential_members(not_json), not_json);
    }

    #[tokio::test]
    async fn through_a_proxy_a_name_that_resolves_to_an_internal_address_is_refused() {
        // The proxy would take the request anywhere: it resolves the name itself.
        let proxy = Canned::start(vec![canned("200 OK", &[], "{}")]).await;
        let through_proxy = |grants: Option<&[String]>| {
            let declared = vec!["http://localhost:9".to_string()];
            let policy = NetworkPolicy::new("acme", &declared, grants).unwrap();
            let proxy = reqwest::Proxy::all(&proxy.base_url).unwrap();
            HttpCapability::with_proxy(
                policy,
                Secrets::default(),
                HttpLimits::default(),
                Some(proxy),
            )
            .unwrap()
            .with_retry(RetryPolicy::none())
        };
        let request = || Request {
            method: Method::Get,
            url: "http://localhost:9/x".into(),
            headers: vec![],
            body: None,
        };
        let error = through_proxy(None).send(request()).await.unwrap_err();
        assert!(
            matches!(&error, Error::Denied(message) if message.contains("internal address")),
            "{error:?}"
        );
        assert!(proxy.arrivals().is_empty());
        // Granted by address, it goes out, through the proxy.
        let grants = vec![
            "http://localhost:9".to_string(),
            "http://127.0.0.1:9".to_string(),
        ];
        let response = through_proxy(Some(&grants)).send(request()).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(proxy.arrivals().len(), 1);
    }
}
