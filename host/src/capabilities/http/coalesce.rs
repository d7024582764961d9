//! Identical requests out at the same time get one answer.
//!
//! Workers of a run that need the same thing at the same moment ask for it alike: the typical
//! case is a token exchange when a shared token is missing or near its end, where every worker
//! would otherwise `POST /token` at once (Verkada: about 50 token requests where 11 do, each
//! against the same quota as the data). The first of identical requests (same method, URL,
//! headers and body, as the connector wrote them, secrets still placeholders) is sent; the
//! others wait for its answer and get a copy of it, so the vendor sees one.
//!
//! A small answer stays to be shared until the connector call that asked for it ends: that call
//! keeps what it got (a token in its storage) before it ends, but another call may have looked for
//! it a moment before it was kept and ask just after the answer came. Only a call that began
//! before the answer came gets it that way, and never the call that asked for it: a request sent
//! again by the same call (polling a search until it is done) or made by a call that began later
//! is sent anew, so nothing is answered from a cache. A first sender that gives up before an
//! answer lets those waiting on it send their own.

use crate::runtime::wit::trawl::connector::http::{Error, Request};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Received;

type Answer = Result<Received, Error>;
type Identity = [u8; 32];

/// The largest answer kept to be shared until its call ends: a token exchange's, not a page's
/// (pages are never asked for twice alike, and a call may fetch many).
const SHARED_UNTIL_CALL_ENDS: usize = 64 << 10;

/// The connector call a request is made in: which one, and when it began.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    id: u64,
    began: Instant,
}

impl Call {
    /// A call beginning now.
    pub fn begin() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Call {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            began: Instant::now(),
        }
    }
}

/// An answer, and when it came.
type Answered = Option<(Instant, Answer)>;

/// A request out now, or answered and still shared.
struct Entry {
    /// Tells this entry from a later one for the same request.
    generation: u64,
    /// The call that sent it.
    sent_by: u64,
    answer: watch::Receiver<Answered>,
}

/// The requests out now, by what they ask, with where their answer will be.
#[derive(Default)]
pub(super) struct InFlight {
    entries: Mutex<HashMap<Identity, Entry>>,
    generations: AtomicU64,
}

/// Whether a request is the first of its kind out now, or gets the answer of the one that is.
pub(super) enum Place {
    /// Send it, then [`publish`](Sender::publish) the answer.
    First(Sender),
    /// The answer of an identical request, out now or answered since this call began.
    Waiting(watch::Receiver<Answered>),
}

/// The first of identical requests: hands its answer to those waiting on it. Dropped without
/// an answer, it lets them go and send for themselves.
pub(super) struct Sender {
    in_flight: Arc<InFlight>,
    identity: Identity,
    generation: u64,
    sender: watch::Sender<Answered>,
}

/// A small answer shared with identical requests until the call that asked for it ends (when
/// this is dropped).
pub struct Shared {
    in_flight: Arc<InFlight>,
    identity: Identity,
    generation: u64,
}

impl InFlight {
    pub(super) fn place(self: &Arc<Self>, request: &Request, call: Call) -> Place {
        let identity = identity(request);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&identity) {
            let joinable = match &*entry.answer.borrow() {
                None => true,
                Some((answered_at, _)) => entry.sent_by != call.id && call.began <= *answered_at,
            };
            if joinable {
                return Place::Waiting(entry.answer.clone());
            }
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let (sender, answer) = watch::channel(None);
        entries.insert(
            identity,
            Entry {
                generation,
                sent_by: call.id,
                answer,
            },
        );
        Place::First(Sender {
            in_flight: self.clone(),
            identity,
            generation,
            sender,
        })
    }

    /// Drops the entry of `identity`, if it is still the one of `generation`.
    fn forget(&self, identity: &Identity, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(identity)
            .is_some_and(|entry| entry.generation == generation)
        {
            entries.remove(identity);
        }
    }
}

impl Sender {
    /// Hands the answer to those waiting on it; a small one stays to be shared until the
    /// returned guard is dropped, at the end of the call.
    pub(super) fn publish(self, answer: &Answer) -> Option<Shared> {
        let small = match answer {
            Ok(received) => received.body.len() <= SHARED_UNTIL_CALL_ENDS,
            Err(_) => false,
        };
        if !small {
            // Out of the table first: a request made from now on is sent anew.
            self.in_flight.forget(&self.identity, self.generation);
        }
        self.sender
            .send_replace(Some((Instant::now(), copy(answer))));
        small.then(|| Shared {
            in_flight: self.in_flight.clone(),
            identity: self.identity,
            generation: self.generation,
        })
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Given up before an answer: those waiting send their own.
        if self.sender.borrow().is_none() {
            self.in_flight.forget(&self.identity, self.generation);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.in_flight.forget(&self.identity, self.generation);
    }
}

/// The answer of the identical request `receiver` waits on; `None` when its sender gave up
/// without one.
pub(super) async fn answer(mut receiver: watch::Receiver<Answered>) -> Option<Answer> {
    match receiver.wait_for(Option::is_some).await {
        Ok(answered) => answered.as_ref().map(|(_, answer)| copy(answer)),
        Err(_) => None,
    }
}

/// A copy of an answer for another request (the contract's error type has no `Clone`).
fn copy(answer: &Answer) -> Answer {
    match answer {
        Ok(received) => Ok(received.clone()),
        Err(error) => Err(match error {
            Error::Denied(message) => Error::Denied(message.clone()),
            Error::Timeout => Error::Timeout,
            Error::TooLarge(limit) => Error::TooLarge(*limit),
            Error::Transport(message) => Error::Transport(message.clone()),
            Error::InvalidRequest(message) => Error::InvalidRequest(message.clone()),
        }),
    }
}

/// What a request asks, as the connector wrote it: method, URL, headers in order and body,
/// each length-prefixed so that no two requests share an identity.
fn identity(request: &Request) -> Identity {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(format!("{:?}", request.method).as_bytes());
    part(request.url.as_bytes());
    for header in &request.headers {
        part(header.name.as_bytes());
        part(header.value.as_bytes());
    }
    match &request.body {
        Some(body) => {
            part(b"body");
            part(body);
        }
        None => part(b"no body"),
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wit::Header;
    use crate::runtime::wit::trawl::connector::http::Method;

    fn request(url: &str, body: Option<&[u8]>) -> Request {
        Request {
            method: Method::Post,
            url: url.into(),
            headers: vec![Header {
                name: "x-api-key".into(),
                value: "{{secret:api_key}}".into(),
            }],
            body: body.map(<[u8]>::to_vec),
        }
    }

    fn answered(status: u16, body_len: usize) -> Answer {
        Ok(Received {
            status,
            headers: Vec::new(),
            body: bytes::Bytes::from(vec![b'x'; body_len]),
            work: std::time::Duration::ZERO,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn requests_out_together_share_the_first_ones_answer() {
        let in_flight = Arc::new(InFlight::default());
        let (first_call, other_call) = (Call::begin(), Call::begin());
        let token = request("https://api.example/token", Some(b""));
        let Place::First(first) = in_flight.place(&token, first_call) else {
            panic!("the first request is sent");
        };
        let Place::Waiting(second) = in_flight.place(&token, other_call) else {
            panic!("an identical one waits");
        };
        // Another body, another URL: another request.
        assert!(matches!(
            in_flight.place(&request("https://api.example/token", None), other_call),
            Place::First(_)
        ));
        assert!(matches!(
            in_flight.place(&request("https://api.example/other", Some(b"")), other_call),
            Place::First(_)
        ));
        tokio::time::advance(std::time::Duration::from_millis(5)).await;
        let shared = first.publish(&answered(200, 10));
        assert_eq!(answer(second).await.unwrap().unwrap().status, 200);
        // Until the call that asked ends, a call that began before the answer came gets it too:
        // its worker looked for a token a moment before the first call kept it.
        let Place::Waiting(late) = in_flight.place(&token, other_call) else {
            panic!("shared with a call that began before the answer");
        };
        assert_eq!(answer(late).await.unwrap().unwrap().status, 200);
        // Not the call that asked (it asks again on purpose), nor one that began after.
        assert!(matches!(
            in_flight.place(&token, first_call),
            Place::First(_)
        ));
        drop(shared);
        assert!(matches!(
            in_flight.place(&token, Call::begin()),
            Place::First(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_began_after_the_answer_sends_its_own() {
        let in_flight = Arc::new(InFlight::default());
        let token = request("https://api.example/token", Some(b""));
        let Place::First(first) = in_flight.place(&token, Call::begin()) else {
            panic!("sent");
        };
        let _shared = first.publish(&answered(200, 10));
        tokio::time::advance(std::time::Duration::from_millis(5)).await;
        assert!(matches!(
            in_flight.place(&token, Call::begin()),
            Place::First(_)
        ));
    }

    #[tokio::test]
    async fn a_large_answer_is_shared_only_while_it_is_out() {
        let in_flight = Arc::new(InFlight::default());
        let page = request("https://api.example/page", None);
        let Place::First(first) = in_flight.place(&page, Call::begin()) else {
            panic!("sent");
        };
        let other = Call::begin();
        assert!(
            first
                .publish(&answered(200, SHARED_UNTIL_CALL_ENDS + 1))
                .is_none()
        );
        assert!(matches!(in_flight.place(&page, other), Place::First(_)));
    }

    #[tokio::test]
    async fn a_first_request_given_up_lets_the_waiting_send_their_own() {
        let in_flight = Arc::new(InFlight::default());
        let token = request("https://api.example/token", Some(b""));
        let first = in_flight.place(&token, Call::begin());
        let Place::Waiting(waiting) = in_flight.place(&token, Call::begin()) else {
            panic!("an identical one waits");
        };
        drop(first);
        assert!(answer(waiting).await.is_none());
        assert!(matches!(
            in_flight.place(&token, Call::begin()),
            Place::First(_)
        ));
    }
}
