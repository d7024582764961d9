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
//! keeps what it got (a token in its storage) before it ends, but another worker may have looked
//! for it a moment before it was kept and ask again just after the answer came. A request made
//! once the call is over is sent anew, so nothing is answered from a cache, and a first sender
//! that gives up before an answer lets those waiting on it send their own.

use crate::runtime::wit::trawl::connector::http::{Error, Request};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

use super::Received;

type Answer = Result<Received, Error>;
type Identity = [u8; 32];

/// The largest answer kept to be shared until its call ends: a token exchange's, not a page's
/// (pages are never asked for twice alike, and a call may fetch many).
const SHARED_UNTIL_CALL_ENDS: usize = 64 << 10;

/// The requests out now, by what they ask, with where their answer will be.
#[derive(Default)]
pub(super) struct InFlight {
    answers: Mutex<HashMap<Identity, watch::Receiver<Option<Answer>>>>,
}

/// Whether a request is the first of its kind out now, or waits on the one that is.
pub(super) enum Place {
    /// Send it, then [`publish`](Sender::publish) the answer.
    First(Sender),
    /// The answer of an identical request already out.
    Waiting(watch::Receiver<Option<Answer>>),
}

/// The first of identical requests: hands its answer to those waiting on it. Dropped without
/// an answer, it lets them go and send for themselves.
pub(super) struct Sender {
    in_flight: Arc<InFlight>,
    identity: Identity,
    sender: watch::Sender<Option<Answer>>,
}

/// A small answer shared with identical requests until the call that asked for it ends (when
/// this is dropped).
pub struct Shared {
    in_flight: Arc<InFlight>,
    identity: Identity,
}

impl InFlight {
    pub(super) fn place(self: &Arc<Self>, request: &Request) -> Place {
        let identity = identity(request);
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = answers.get(&identity) {
            return Place::Waiting(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        answers.insert(identity, receiver);
        Place::First(Sender {
            in_flight: self.clone(),
            identity,
            sender,
        })
    }

    fn forget(&self, identity: &Identity) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(identity);
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
            self.in_flight.forget(&self.identity);
        }
        self.sender.send_replace(Some(copy(answer)));
        small.then(|| Shared {
            in_flight: self.in_flight.clone(),
            identity: self.identity,
        })
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Given up before an answer: those waiting send their own.
        if self.sender.borrow().is_none() {
            self.in_flight.forget(&self.identity);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.in_flight.forget(&self.identity);
    }
}

/// The answer of the identical request `receiver` waits on; `None` when its sender gave up
/// without one.
pub(super) async fn answer(mut receiver: watch::Receiver<Option<Answer>>) -> Option<Answer> {
    match receiver.wait_for(Option::is_some).await {
        Ok(answer) => answer.as_ref().map(copy),
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

    fn answered(status: u16) -> Answer {
        Ok(Received {
            status,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            work: std::time::Duration::ZERO,
        })
    }

    #[tokio::test]
    async fn requests_out_together_share_the_first_ones_answer() {
        let in_flight = Arc::new(InFlight::default());
        let token = request("https://api.example/token", Some(b""));
        let Place::First(first) = in_flight.place(&token) else {
            panic!("the first request is sent");
        };
        let Place::Waiting(second) = in_flight.place(&token) else {
            panic!("an identical one waits");
        };
        // Another body, another URL: another request.
        assert!(matches!(
            in_flight.place(&request("https://api.example/token", None)),
            Place::First(_)
        ));
        assert!(matches!(
            in_flight.place(&request("https://api.example/other", Some(b""))),
            Place::First(_)
        ));
        let shared = first.publish(&answered(200));
        assert_eq!(answer(second).await.unwrap().unwrap().status, 200);
        // Until the call that asked ends, an identical request gets the answer too: its worker
        // looked for a token a moment before the first call kept it.
        let Place::Waiting(late) = in_flight.place(&token) else {
            panic!("shared until the call ends");
        };
        assert_eq!(answer(late).await.unwrap().unwrap().status, 200);
        // Once the call is over, the same request is sent again: nothing is answered from a
        // cache.
        drop(shared);
        assert!(matches!(in_flight.place(&token), Place::First(_)));
    }

    #[tokio::test]
    async fn a_large_answer_is_shared_only_while_it_is_out() {
        let in_flight = Arc::new(InFlight::default());
        let page = request("https://api.example/page", None);
        let Place::First(first) = in_flight.place(&page) else {
            panic!("sent");
        };
        let big = Ok(Received {
            status: 200,
            headers: Vec::new(),
            body: bytes::Bytes::from(vec![b'x'; SHARED_UNTIL_CALL_ENDS + 1]),
            work: std::time::Duration::ZERO,
        });
        assert!(first.publish(&big).is_none());
        assert!(matches!(in_flight.place(&page), Place::First(_)));
    }

    #[tokio::test]
    async fn a_first_request_given_up_lets_the_waiting_send_their_own() {
        let in_flight = Arc::new(InFlight::default());
        let token = request("https://api.example/token", Some(b""));
        let first = in_flight.place(&token);
        let Place::Waiting(waiting) = in_flight.place(&token) else {
            panic!("an identical one waits");
        };
        drop(first);
        assert!(answer(waiting).await.is_none());
        assert!(matches!(in_flight.place(&token), Place::First(_)));
    }
}
