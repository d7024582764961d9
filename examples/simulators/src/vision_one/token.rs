//! `skipToken`: the whole state of a paged query, as base64url JSON, so that a `nextLink` works
//! whatever else the client sends with it. It carries a hash of the query header, so that a page
//! asked for with another query is refused.

use serde::{Deserialize, Serialize};

/// What a `nextLink` continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipToken {
    pub v: u8,
    /// The route (`/v3.0/search/detections`, ...).
    pub r: String,
    /// [`hash`] of the `TMV1-Query` (search) or `TMV1-Filter` (alerts) header.
    pub q: String,
    /// The time range, in Unix seconds, as first asked.
    pub s: i64,
    pub e: i64,
    /// `select`, empty for all fields.
    #[serde(default)]
    pub sel: String,
    pub top: usize,
    /// `default` or `performance` (search); empty for alerts.
    #[serde(default)]
    pub m: String,
    /// Records already served.
    pub off: usize,
    /// Pages already served (empty searching pages excluded).
    pub n: u32,
    /// Searching polls already answered (performance mode).
    #[serde(default)]
    pub k: u32,
    /// Alerts: `dateTimeTarget` and `orderBy`.
    #[serde(default)]
    pub t: String,
    #[serde(default)]
    pub o: String,
}

impl SkipToken {
    pub fn encode(&self) -> String {
        base64url_encode(&serde_json::to_vec(self).expect("a token serializes"))
    }

    pub fn decode(text: &str) -> Option<SkipToken> {
        let bytes = base64url_decode(text)?;
        let token: SkipToken = serde_json::from_slice(&bytes).ok()?;
        (token.v == 1).then_some(token)
    }
}

/// FNV-1a (64 bits) of `text`, in hex: enough to tell two queries apart.
pub fn hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= value << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "{\"v\":1}", "\u{ff}\u{fe}?>"] {
            let encoded = base64url_encode(text.as_bytes());
            assert!(!encoded.contains(['+', '/', '=']));
            assert_eq!(base64url_decode(&encoded).unwrap(), text.as_bytes());
        }
        assert_eq!(base64url_encode(b"Man"), "TWFu");
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert!(base64url_decode("a").is_none());
        assert!(base64url_decode("ab%3D").is_none());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = SkipToken {
            v: 1,
            r: "/v3.0/search/detections".into(),
            q: hash("productCode:PTP"),
            s: 1,
            e: 2,
            sel: String::new(),
            top: 50,
            m: "default".into(),
            off: 100,
            n: 2,
            k: 0,
            t: String::new(),
            o: String::new(),
        };
        assert_eq!(SkipToken::decode(&token.encode()), Some(token));
        assert_eq!(SkipToken::decode("c2tpcFRva2Vu"), None);
        assert_eq!(SkipToken::decode("!!!"), None);
        assert_ne!(hash("a"), hash("b"));
    }
}
