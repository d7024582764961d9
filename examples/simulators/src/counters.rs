//! What a simulator has answered, counted: requests, 429s (and how many the client brought on
//! itself), token exchanges, in total and per key. A test asserts on these rather than on
//! durations; the bench reads them from `GET /__mock/counters`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::response::Response;
use serde::Serialize;

/// The counts of one simulator, as a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests received (control routes excepted), faulted ones included.
    pub requests: u64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// 429s sent, whatever the reason (injected ones included).
    pub too_many_requests: u64,
    /// 429s sent because the key was over its quota or still blocked after an earlier 429.
    pub self_caused_429s: u64,
    /// Requests a fault rule answered or changed.
    pub faulted: u64,
    /// Token exchanges (Verkada's `POST /token`).
    pub token_requests: u64,
    /// The same per key: the token (Workvivo, Vision One, Yandex 360) or the API key (Verkada)
    /// a request was made with. Requests a fault answered before the simulator saw them, or
    /// that did not authenticate, are counted only in the totals.
    pub per_key: BTreeMap<String, KeyCounters>,
}

/// The counts of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCounters {
    pub requests: u64,
    pub ok: u64,
    pub too_many_requests: u64,
    pub self_caused_429s: u64,
    pub token_requests: u64,
}

impl Counters {
    /// The counts of `key`, zero if it never made a request.
    pub fn key(&self, key: &str) -> KeyCounters {
        self.per_key.get(key).cloned().unwrap_or_default()
    }
}

/// Whose request a response answered, attached by a simulator to the response (as an extension)
/// so that the server counts it per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribution {
    pub(crate) key: String,
    pub(crate) self_caused_429: bool,
    pub(crate) token_request: bool,
}

impl Attribution {
    pub(crate) fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            self_caused_429: false,
            token_request: false,
        }
    }

    /// A 429 the key brought on itself (over quota, or back too early after one).
    pub(crate) fn self_caused_429(mut self) -> Self {
        self.self_caused_429 = true;
        self
    }

    pub(crate) fn token_request(mut self) -> Self {
        self.token_request = true;
        self
    }

    /// Attaches this attribution to `response`.
    pub(crate) fn to(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Shared running counts; clones share them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally(Arc<Mutex<Counters>>);

impl Tally {
    pub(crate) fn record(&self, status: u16, faulted: bool, attribution: Option<&Attribution>) {
        let ok = (200..300).contains(&status);
        let too_many = status == 429;
        let mut counters = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counters.requests += 1;
        counters.ok += u64::from(ok);
        counters.too_many_requests += u64::from(too_many);
        counters.faulted += u64::from(faulted);
        let Some(attribution) = attribution else {
            return;
        };
        let self_caused = too_many && attribution.self_caused_429;
        counters.self_caused_429s += u64::from(self_caused);
        counters.token_requests += u64::from(attribution.token_request);
        let key = counters.per_key.entry(attribution.key.clone()).or_default();
        key.requests += 1;
        key.ok += u64::from(ok);
        key.too_many_requests += u64::from(too_many);
        key.self_caused_429s += u64::from(self_caused);
        key.token_requests += u64::from(attribution.token_request);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_keys() {
        let tally = Tally::default();
        let a = Attribution::new("a");
        tally.record(200, false, Some(&a));
        tally.record(429, false, Some(&a.clone().self_caused_429()));
        // An injected 429 that reached no simulator code: not self-caused, no key.
        tally.record(429, true, None);
        tally.record(200, false, Some(&Attribution::new("b").token_request()));
        let counters = tally.snapshot();
        assert_eq!(
            (
                counters.requests,
                counters.ok,
                counters.too_many_requests,
                counters.self_caused_429s,
                counters.faulted,
                counters.token_requests
            ),
            (4, 2, 2, 1, 1, 1)
        );
        assert_eq!(
            counters.key("a"),
            KeyCounters {
                requests: 2,
                ok: 1,
                too_many_requests: 1,
                self_caused_429s: 1,
                token_requests: 0
            }
        );
        assert_eq!(counters.key("b").token_requests, 1);
        assert_eq!(counters.key("c"), KeyCounters::default());
    }
}
