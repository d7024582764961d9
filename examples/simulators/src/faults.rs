//! The fault script: rules that make a simulator misbehave on purpose, so that connectors' retry,
//! backoff and resume logic can be exercised deterministically.
//!
//! Each request to a simulator (control routes under `/__mock/` excepted) gets a sequence number
//! counted from 1. Rules are tried in the order they were pushed and the first one that fires decides
//! what happens to the request; if none fires, the request is served normally.
//!
//! Over HTTP (`POST /__mock/faults`) rules are JSON, for example:
//!
//! ```json
//! [
//!   {"trigger": {"nth": 3}, "action": {"status": {"status": 503, "body": "<html>down</html>",
//!                                                "content_type": "text/html", "retry_after": 2}}},
//!   {"trigger": {"path_contains": "/1725152400/"}, "action": "reset_connection", "times": 1},
//!   {"trigger": {"probability": {"rate": 0.05, "seed": 7}}, "action": {"delay_ms": 1500}},
//!   {"trigger": {"nth": 9}, "action": "truncated_body"},
//!   {"trigger": {"streaks": {"every_ms": 30000, "lasting_ms": 5000, "seed": 7}},
//!    "action": {"status": {"status": 503}}}
//! ]
//! ```
//!
//! Besides faults that strike requests one at a time, [`Streaks`] make every request fail for a
//! stretch of time (an outage, a deploy), which is what exhausts a client that gives up after N
//! attempts.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// One rule: when `trigger` matches, do `action`, at most `times` times (unlimited if `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub trigger: Trigger,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Exactly the n-th request (counting from 1).
    Nth(u64),
    /// Every request whose path and query string contain this text.
    PathContains(String),
    /// Each request with probability `rate`, drawn from a generator seeded with `seed`, so that a
    /// given request sequence always fails at the same places.
    Probability { rate: f64, seed: u64 },
    /// Every request inside a streak of failures, by the time since the server started.
    Streaks(Streaks),
}

/// Outages: each `every` of the server's life holds one streak, `lasting` long, at a place in it
/// drawn from `seed`, so that a run replays the same outages at the same moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streaks {
    #[serde(rename = "every_ms", with = "millis")]
    pub every: Duration,
    #[serde(rename = "lasting_ms", with = "millis")]
    pub lasting: Duration,
    pub seed: u64,
}

impl Streaks {
    /// Streaks of `lasting` once in each `every` (`lasting` is cut to `every`).
    pub fn new(every: Duration, lasting: Duration, seed: u64) -> Self {
        Self {
            every,
            lasting: lasting.min(every),
            seed,
        }
    }

    /// Whether `elapsed` (time since the server started) falls inside a streak.
    pub fn covers(&self, elapsed: Duration) -> bool {
        let every = self.every.as_nanos();
        let lasting = self.lasting.min(self.every).as_nanos();
        if every == 0 || lasting == 0 {
            return false;
        }
        let at = elapsed.as_nanos();
        let period = at / every;
        let start = period * every + self.offset(period as u64, every - lasting);
        (start..start + lasting).contains(&at)
    }

    /// Where the streak of `period` starts within it: anywhere from 0 to `slack`.
    fn offset(&self, period: u64, slack: u128) -> u128 {
        let mut rng = SplitMix64::new(self.seed ^ period.wrapping_mul(0xA24B_AED4_963E_E407));
        u128::from(rng.next_u64()) % (slack + 1)
    }
}

/// What happens to a request a rule fired on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer with this status and body instead of serving the request.
    Status {
        status: u16,
        #[serde(default)]
        body: String,
        #[serde(default = "json_content_type")]
        content_type: String,
        /// Seconds for a `Retry-After` header; no header when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Wait, then serve normally (to trip client timeouts).
    #[serde(rename = "delay_ms", with = "millis")]
    Delay(Duration),
    /// Serve normally but send only the first half of the body, with a `Content-Length` that matches
    /// the cut: the HTTP exchange is valid, the JSON is not.
    TruncatedBody,
    /// Drop the connection without sending a response.
    ResetConnection,
}

fn json_content_type() -> String {
    "application/json".to_owned()
}

impl Action {
    /// A status with a plausible body: a gateway's HTML page for 502/503/504 (what a proxy in front
    /// of an API returns), a JSON `{"message": ...}` otherwise.
    pub fn status(status: u16) -> Self {
        if matches!(status, 502..=504) {
            return Self::html(status);
        }
        Self::json(status, &serde_json::json!({ "message": reason(status) }))
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::Status {
            status,
            body: body.to_string(),
            content_type: json_content_type(),
            retry_after: None,
        }
    }

    /// An HTML error page, as a load balancer or framework error handler would send.
    pub fn html(status: u16) -> Self {
        let title = format!("{status} {}", reason(status));
        let body = format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
             <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        );
        Self::Status {
            status,
            body,
            content_type: "text/html".to_owned(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header to a `Status` action; other actions are returned unchanged.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        if let Self::Status { retry_after, .. } = &mut self {
            *retry_after = Some(secs);
        }
        self
    }
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

impl Fault {
    pub fn new(trigger: Trigger, action: Action) -> Self {
        Self {
            trigger,
            action,
            times: None,
        }
    }

    /// `action` on exactly the n-th request.
    pub fn at(n: u64, action: Action) -> Self {
        Self::new(Trigger::Nth(n), action)
    }

    /// `action` on every request whose path and query contain `text` (limit it with [`Fault::times`]).
    pub fn on_path(text: impl Into<String>, action: Action) -> Self {
        Self::new(Trigger::PathContains(text.into()), action)
    }

    /// `action` on a deterministic pseudo-random share `rate` of requests.
    pub fn with_probability(rate: f64, seed: u64, action: Action) -> Self {
        Self::new(Trigger::Probability { rate, seed }, action)
    }

    /// `action` on every request inside one of `streaks`.
    pub fn in_streaks(streaks: Streaks, action: Action) -> Self {
        Self::new(Trigger::Streaks(streaks), action)
    }

    /// Stops the rule after it has fired `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// The n-th request gets `status` with the body of [`Action::status`].
    pub fn status_at(n: u64, status: u16) -> Self {
        Self::at(n, Action::status(status))
    }

    /// Requests whose path and query contain `text` get `status`, at most `times` times.
    pub fn status_on_path(text: impl Into<String>, status: u16, times: Option<u32>) -> Self {
        Self {
            times,
            ..Self::on_path(text, Action::status(status))
        }
    }
}

/// Rules that strike each request with at most one of `shares`' actions, each with its share's
/// probability: a rule fires with its share of what the rules before it left, each drawing from
/// its own generator (seeded from `seed`), so that the run replays exactly.
pub fn mixed(seed: u64, shares: Vec<(f64, Action)>) -> Vec<Fault> {
    let mut left = 1.0;
    shares
        .into_iter()
        .enumerate()
        .map(|(i, (share, action))| {
            let rate = if left > 0.0 {
                (share / left).min(1.0)
            } else {
                0.0
            };
            left -= share;
            Fault::with_probability(rate, seed.wrapping_add(i as u64), action)
        })
        .collect()
}

/// The everyday faults of an unreliable API: 5% 429 (`too_many`, the vendor's own), 5% 500
/// (`server_error`, the vendor's own), 2% a gateway's HTML 502, 2% connections reset before any
/// response, 1% bodies cut in half.
pub fn everyday(seed: u64, too_many: Action, server_error: Action) -> Vec<Fault> {
    mixed(
        seed,
        vec![
            (0.05, too_many),
            (0.05, server_error),
            (0.02, Action::html(502)),
            (0.02, Action::ResetConnection),
            (0.01, Action::TruncatedBody),
        ],
    )
}

/// The rules of one server. Clones share the same rules, so a test can add faults while the server
/// runs.
#[derive(Debug, Clone, Default)]
pub struct FaultScript {
    rules: Arc<Mutex<Vec<Rule>>>,
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    fired: u32,
    rng: SplitMix64,
}

impl FaultScript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a rule; it is tried after the rules already there.
    pub fn push(&self, fault: Fault) {
        self.extend([fault]);
    }

    pub fn extend(&self, faults: impl IntoIterator<Item = Fault>) {
        let mut rules = self.lock();
        rules.extend(faults.into_iter().map(|fault| {
            let seed = match fault.trigger {
                Trigger::Probability { seed, .. } => seed,
                _ => 0,
            };
            Rule {
                fault,
                fired: 0,
                rng: SplitMix64::new(seed),
            }
        }));
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The rules currently in force, in order.
    pub fn faults(&self) -> Vec<Fault> {
        self.lock().iter().map(|rule| rule.fault.clone()).collect()
    }

    /// Decides the fate of request number `seq` for `target` (path and query), received `elapsed`
    /// after the server started: the action of the first rule that fires, if any. Firing counts
    /// against that rule's `times`.
    pub(crate) fn decide(&self, seq: u64, target: &str, elapsed: Duration) -> Option<Action> {
        let mut rules = self.lock();
        // `fires` needs `&mut` (a probability rule advances its generator), which `find` cannot lend.
        let rule = rules
            .iter_mut()
            .find_map(|rule| rule.fires(seq, target, elapsed).then_some(rule))?;
        rule.fired += 1;
        Some(rule.fault.action.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        // A panic elsewhere while holding the lock leaves the rules intact; keep serving.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Rule {
    fn fires(&mut self, seq: u64, target: &str, elapsed: Duration) -> bool {
        if self.fault.times.is_some_and(|times| self.fired >= times) {
            return false;
        }
        match &self.fault.trigger {
            Trigger::Nth(n) => *n == seq,
            Trigger::PathContains(text) => target.contains(text.as_str()),
            Trigger::Probability { rate, .. } => self.rng.next_f64() < *rate,
            Trigger::Streaks(streaks) => streaks.covers(elapsed),
        }
    }
}

/// Carries out `action` for `req`, calling `next` when the request is to be served after all.
pub(crate) async fn apply(action: Action, req: Request, next: Next) -> Response {
    match action {
        Action::Status {
            status,
            body,
            content_type,
            retry_after,
        } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            if let Some(secs) = retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Action::Delay(delay) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        Action::TruncatedBody => truncate(next.run(req).await).await,
        Action::ResetConnection => reset_connection(),
    }
}

async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return reset_connection();
    };
    // A body built from `Bytes` has an exact size, from which hyper writes the new Content-Length.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

/// A response whose body fails before its first byte. hyper has only buffered the status line and
/// headers at that point, so it drops the connection without sending anything: the client sees the
/// connection close before any response.
fn reset_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    Response::new(Body::from_stream(failing))
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        delay: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_times_run_out() {
        let script = FaultScript::new();
        script.push(Fault::status_on_path("/a", 503, Some(2)));
        script.push(Fault::status_at(3, 500));

        let status = |action: Option<Action>| match action {
            Some(Action::Status { status, .. }) => Some(status),
            _ => None,
        };
        assert_eq!(
            status(script.decide(1, "/a?x=1", Duration::ZERO)),
            Some(503)
        );
        assert_eq!(status(script.decide(2, "/b", Duration::ZERO)), None);
        assert_eq!(status(script.decide(3, "/a", Duration::ZERO)), Some(503));
        // The path rule is spent; the same request number would now reach the next rule.
        assert_eq!(status(script.decide(3, "/a", Duration::ZERO)), Some(500));
        assert_eq!(status(script.decide(4, "/a", Duration::ZERO)), None);
    }

    #[test]
    fn probability_is_deterministic_and_close_to_rate() {
        let run = || {
            let script = FaultScript::new();
            script.push(Fault::with_probability(0.25, 99, Action::status(500)));
            (1..=2000)
                .map(|seq| script.decide(seq, "/", Duration::ZERO).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|&&hit| hit).count();
        assert!((400..600).contains(&hits), "{hits} hits");
    }

    #[test]
    fn streaks_fail_everything_inside_and_nothing_outside() {
        let streaks = Streaks::new(Duration::from_secs(10), Duration::from_secs(3), 5);
        let script = FaultScript::new();
        script.push(Fault::in_streaks(streaks, Action::status(503)));
        let mut inside = 0;
        for tenth in 0..1000 {
            let at = Duration::from_millis(tenth * 100);
            let fired = script.decide(tenth + 1, "/", at).is_some();
            assert_eq!(fired, streaks.covers(at), "{at:?}");
            inside += u32::from(fired);
        }
        // Three seconds in each of ten periods of ten.
        assert_eq!(inside, 300);
        // Each period's streak is one unbroken run; the seed moves it.
        for period in 0..10u64 {
            let covered: Vec<u64> = (0..100)
                .filter(|tenth| {
                    streaks.covers(Duration::from_millis(period * 10_000 + tenth * 100))
                })
                .collect();
            assert_eq!(covered.len(), 30);
            assert_eq!(covered[29] - covered[0], 29, "period {period}");
        }
        let other = Streaks::new(Duration::from_secs(10), Duration::from_secs(3), 6);
        assert!((0..1000).any(|tenth| {
            let at = Duration::from_millis(tenth * 100);
            streaks.covers(at) != other.covers(at)
        }));
        assert!(!Streaks::new(Duration::from_secs(1), Duration::ZERO, 1).covers(Duration::ZERO));
        assert!(
            Streaks::new(Duration::from_secs(1), Duration::from_secs(2), 1)
                .covers(Duration::from_millis(1500))
        );
    }

    #[test]
    fn the_everyday_mix_strikes_each_share() {
        let script = FaultScript::new();
        script.extend(everyday(3, Action::status(429), Action::status(500)));
        let mut seen = std::collections::HashMap::<String, u32>::new();
        for seq in 1..=20_000 {
            let kind = match script.decide(seq, "/", Duration::ZERO) {
                Some(Action::Status { status, .. }) => status.to_string(),
                Some(Action::ResetConnection) => "reset".to_owned(),
                Some(Action::TruncatedBody) => "cut".to_owned(),
                Some(other) => panic!("{other:?}"),
                None => continue,
            };
            *seen.entry(kind).or_default() += 1;
        }
        for (kind, share) in [
            ("429", 0.05),
            ("500", 0.05),
            ("502", 0.02),
            ("reset", 0.02),
            ("cut", 0.01),
        ] {
            let expected = 20_000.0 * share;
            let got = f64::from(seen[kind]);
            assert!((got - expected).abs() < expected * 0.2, "{kind}: {got}");
        }
    }

    #[test]
    fn faults_round_trip_through_json() {
        let json = r#"[
            {"trigger": {"nth": 3}, "action": {"status": {"status": 429}}},
            {"trigger": {"path_contains": "/v1/"}, "action": "reset_connection", "times": 1},
            {"trigger": {"probability": {"rate": 0.5, "seed": 1}}, "action": {"delay_ms": 1500}},
            {"trigger": {"nth": 9}, "action": "truncated_body"},
            {"trigger": {"streaks": {"every_ms": 30000, "lasting_ms": 5000, "seed": 7}},
             "action": {"status": {"status": 503}}}
        ]"#;
        let faults: Vec<Fault> = serde_json::from_str(json).unwrap();
        assert_eq!(
            faults[0],
            Fault::at(
                3,
                Action::Status {
                    status: 429,
                    body: String::new(),
                    content_type: "application/json".into(),
                    retry_after: None
                }
            )
        );
        assert_eq!(
            faults[1],
            Fault::on_path("/v1/", Action::ResetConnection).times(1)
        );
        assert_eq!(faults[2].action, Action::Delay(Duration::from_millis(1500)));
        assert_eq!(
            faults[4].trigger,
            Trigger::Streaks(Streaks::new(
                Duration::from_secs(30),
                Duration::from_secs(5),
                7
            ))
        );
        let again: Vec<Fault> =
            serde_json::from_str(&serde_json::to_string(&faults).unwrap()).unwrap();
        assert_eq!(faults, again);
    }

    #[test]
    fn default_bodies() {
        let Action::Status {
            body, content_type, ..
        } = Action::status(503)
        else {
            unreachable!()
        };
        assert!(body.contains("503 Service Unavailable") && content_type == "text/html");
        let Action::Status {
            body, retry_after, ..
        } = Action::status(429).with_retry_after(5)
        else {
            unreachable!()
        };
        assert_eq!(
            (body.as_str(), retry_after),
            (r#"{"message":"Too Many Requests"}"#, Some(5))
        );
    }
}
