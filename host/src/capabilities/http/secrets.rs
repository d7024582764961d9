//! Secret params: the values a connector never sees. It writes `{{secret:NAME}}` instead; the
//! host puts the value into the request on the way out, only where the request's destination
//! cannot change because of it and only for hosts the secret is bound to, and takes it out of the
//! response on the way back.

use super::policy::{self, HostPattern, NetworkPolicy};
use super::redact::{Forms, Matcher};
use crate::runtime::wit::Header;
use crate::runtime::wit::trawl::connector::http::Error;
use bytes::Bytes;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use thiserror::Error;
use url::Url;

/// Values shorter than this are not looked for in responses: every `abc` of a body would be
/// replaced. A secret that short protects nothing anyway.
const MIN_REDACTED_CHARS: usize = 4;

/// The shortest piece of a secret looked for on its own in response headers (as it is, ASCII case
/// ignored), against a server that spreads the secret over several headers in any order.
///
/// False positives: a piece of a random token this long (8 bytes of base64, 48 bits) turns up in
/// a response's few kilobytes of headers by chance with odds around one in 10^10; only a secret
/// made of ordinary words (a passphrase) has pieces that ordinary headers hold, and then the
/// connector sees `{{secret:NAME}}` in place of that word in a header, which breaks nothing it may
/// rely on (it never gets the secret anyway). Not caught: pieces shorter than this (a server that
/// means to hand a secret back seven bytes a header can), and pieces re-encoded (the whole secret
/// is found re-encoded; a piece only as it is).
const HEADER_PIECE_BYTES: usize = 8;

/// Characters a secret put into a URL's path or query keeps as they are: RFC 3986's unreserved
/// ones. Everything else is percent-encoded, so that no value can end a component or start
/// another (`/`, `?`, `#`, `&`, `=`, `%`...).
const URL_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Secret values and the placeholders connectors use for them.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<Secret>,
}

#[derive(Clone)]
struct Secret {
    name: String,
    placeholder: String,
    value: String,
    /// Where it may be sent; empty: every declared host.
    hosts: Vec<HostPattern>,
    /// The placeholder in a URL's path or query, as written or percent-encoded (the SDK's query
    /// builder encodes it).
    in_url: Matcher,
    /// The value echoed back in a response, in any form a server may have re-encoded it in.
    echoed: Matcher,
    /// The same, ASCII case ignored: header names arrive lower-cased.
    echoed_any_case: Matcher,
    /// Every piece of the value [`HEADER_PIECE_BYTES`] long, lower-cased.
    pieces: HashSet<[u8; HEADER_PIECE_BYTES]>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.values.iter().map(|secret| &secret.placeholder))
            .finish()
    }
}

/// A redirect that would take a secret to an origin it is not bound to.
#[derive(Debug, Error)]
#[error(
    "not following the server's redirect to {origin}: the request carries the secret `{secret}`, \
     which may only be sent to {bound}"
)]
pub struct SecretRedirect {
    pub secret: String,
    pub origin: String,
    pub bound: String,
}

impl Secrets {
    /// The placeholder a connector receives instead of the secret param `name`.
    pub fn placeholder(name: &str) -> String {
        format!("{{{{secret:{name}}}}}")
    }

    /// A secret that may go to every host the connector declared.
    pub fn insert(&mut self, name: &str, value: String) {
        self.insert_bound(name, value, Vec::new());
    }

    /// A secret that may only go to `hosts` (empty: every declared host).
    pub fn insert_bound(&mut self, name: &str, value: String, hosts: Vec<HostPattern>) {
        let placeholder = Self::placeholder(name);
        let lower = value.to_ascii_lowercase();
        let pieces = lower
            .as_bytes()
            .windows(HEADER_PIECE_BYTES)
            .filter_map(|piece| piece.try_into().ok())
            .collect();
        self.values.push(Secret {
            name: name.to_string(),
            in_url: Matcher::new(&placeholder, Forms::Percent, false),
            echoed: Matcher::new(&value, Forms::Any, false),
            echoed_any_case: Matcher::new(&value, Forms::Any, true),
            pieces,
            placeholder,
            value,
            hosts,
        });
    }

    /// How many secrets there are: `used` flags are one a secret.
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// `url` with each placeholder in its path and query replaced by its secret, percent-encoded,
    /// marking in `used` which were. A placeholder anywhere that decides where the request goes
    /// (user name, password, host) is refused: a secret must never choose its own destination.
    /// The fragment is never sent, so nothing goes in there.
    pub(super) fn substitute_url(&self, url: &Url, used: &mut [bool]) -> Result<Url, Error> {
        // User name and password as one text: a placeholder's `:` splits it between them.
        let authority = format!(
            "{}:{}@{}",
            url.username(),
            url.password().unwrap_or_default(),
            url.host_str().unwrap_or_default()
        );
        if let Some(placeholder) = placeholder_in(&authority) {
            return Err(Error::Denied(format!(
                "a secret placeholder ({placeholder}) may only be in a URL's path or query, not in \
                 its user name, password or host: a secret must not decide where a request goes"
            )));
        }
        let mut substituted = url.clone();
        if let Some(path) = self.substitute_component(url.path(), used) {
            substituted.set_path(&path);
        }
        if let Some(query) = url
            .query()
            .and_then(|query| self.substitute_component(query, used))
        {
            substituted.set_query(Some(&query));
        }
        let same_destination = substituted.origin() == url.origin()
            && substituted.username() == url.username()
            && substituted.password() == url.password();
        if !same_destination {
            // Values are encoded so that this cannot happen; if it ever did, nothing is sent.
            return Err(Error::Denied(format!(
                "putting the secrets into the URL changed where it goes (from {}); not sent",
                policy::origin(url)
            )));
        }
        Ok(substituted)
    }

    /// `text` (a URL component as serialised: percent-encoded) with every placeholder, written as
    /// is or percent-encoded in any case, replaced by its value percent-encoded; `None` when it has
    /// none. All placeholders are found in the text as the connector wrote it, so that a value
    /// that looks like another placeholder is never substituted in turn.
    fn substitute_component(&self, text: &str, used: &mut [bool]) -> Option<String> {
        let mut found: Vec<(Range<usize>, usize)> = Vec::new();
        for (index, secret) in self.values.iter().enumerate() {
            found.extend(
                secret
                    .in_url
                    .find_all(text.as_bytes())
                    .into_iter()
                    .map(|range| (range, index)),
            );
        }
        if found.is_empty() {
            return None;
        }
        found.sort_by_key(|(range, _)| range.start);
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (range, index) in found {
            if range.start < at {
                continue;
            }
            out.push_str(&text[at..range.start]);
            let value = &self.values[index].value;
            out.extend(percent_encoding::utf8_percent_encode(value, URL_UNRESERVED));
            used[index] = true;
            at = range.end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// Refuses a header whose name holds a placeholder: only values are substituted, and a name
    /// is no place for a secret.
    pub(super) fn check_header_name(&self, name: &str) -> Result<(), Error> {
        match placeholder_in(name) {
            Some(placeholder) => Err(Error::Denied(format!(
                "a secret placeholder ({placeholder}) may not be in a header's name, only in its \
                 value"
            ))),
            None => Ok(()),
        }
    }

    /// A header value with its placeholders replaced, marking in `used` which were. A value
    /// that a secret gives a line break (or a NUL) is refused: it would end the header and start
    /// another the connector did not write.
    pub(super) fn substitute_header_value(
        &self,
        header: &str,
        value: &str,
        used: &mut [bool],
    ) -> Result<String, Error> {
        let mut text = value.to_string();
        for (secret, used) in self.values.iter().zip(used) {
            if !text.contains(secret.placeholder.as_str()) {
                continue;
            }
            if secret.value.contains(['\r', '\n', '\0']) {
                return Err(Error::Denied(format!(
                    "the secret `{}` holds a line break or a NUL, which would end the header \
                     `{header}` early; not sent",
                    secret.name
                )));
            }
            text = text.replace(secret.placeholder.as_str(), &secret.value);
            *used = true;
        }
        Ok(text)
    }

    /// Refuses a request that would carry a secret somewhere it is not bound to.
    pub(super) fn check_bindings(
        &self,
        policy: &NetworkPolicy,
        url: &Url,
        used: &[bool],
    ) -> Result<(), Error> {
        for (secret, _) in self.values.iter().zip(used).filter(|(_, used)| **used) {
            if !policy.may_carry(url, &secret.hosts) {
                return Err(Error::Denied(format!(
                    "the secret `{}` may only be sent to {}, not to {}",
                    secret.name,
                    bound_to(secret),
                    policy::origin(url)
                )));
            }
        }
        Ok(())
    }

    /// Whether a request that carried the secrets flagged in `carried` (all, when unknown) and
    /// was first sent to `first` may follow a redirect to `to`. Within the first origin, yes;
    /// elsewhere only where each secret it carries is bound (a loopback server standing in for a
    /// vendor does not count: the connector chose that one, the server chose this one), and never
    /// when the new URL itself holds a secret it may not go with.
    pub(super) fn may_follow(
        &self,
        policy: &NetworkPolicy,
        first: &Url,
        to: &Url,
        carried: Option<&[bool]>,
    ) -> Result<(), SecretRedirect> {
        if first.origin() == to.origin() {
            return Ok(());
        }
        let refuse = |secret: &Secret| SecretRedirect {
            secret: secret.name.clone(),
            origin: policy::origin(to),
            bound: bound_to(secret),
        };
        for (index, secret) in self.values.iter().enumerate() {
            let carries = carried.is_none_or(|carried| carried[index]);
            let in_url = secret.value.chars().count() >= MIN_REDACTED_CHARS
                && secret.echoed.is_in(to.as_str().as_bytes());
            if (carries || in_url) && !policy.binds(to, &secret.hosts) {
                return Err(refuse(secret));
            }
        }
        Ok(())
    }

    /// Replaces every secret in `bytes`, in any form [`Matcher`] knows, with its placeholder: a
    /// server that echoes a request back must not hand the connector what the host kept from it.
    /// Leaves `bytes` as they are (not copied) when it holds none.
    pub(super) fn redact(&self, bytes: &mut Bytes) {
        let found = self.find(bytes, false);
        if !found.is_empty() {
            *bytes = self.replace(bytes, found).into();
        }
    }

    /// [`redact`](Self::redact) for text.
    pub fn redact_text(&self, text: &str) -> String {
        let found = self.find(text.as_bytes(), false);
        if found.is_empty() {
            return text.to_string();
        }
        String::from_utf8_lossy(&self.replace(text.as_bytes(), found)).into_owned()
    }

    /// Redacts response headers, names (which arrive lower-cased) and values alike, ASCII case
    /// ignored: the secret in any form [`Matcher`] knows, within one name or value or spread over
    /// several in a row (found in all names and values joined in order, every one it touches
    /// redacted); and any piece of it [`HEADER_PIECE_BYTES`] long, as it is, against one spread
    /// over headers in another order.
    pub(super) fn redact_headers(&self, headers: &mut [Header]) {
        // Each name and value, in order, as one text, and where each begins in it.
        let mut joined = Vec::new();
        let mut starts = Vec::with_capacity(headers.len() * 2 + 1);
        for header in headers.iter() {
            for field in [&header.name, &header.value] {
                starts.push(joined.len());
                joined.extend_from_slice(field.as_bytes());
            }
        }
        starts.push(joined.len());
        let lower = joined.to_ascii_lowercase();
        let mut found: Vec<Vec<(Range<usize>, usize)>> = vec![Vec::new(); headers.len() * 2];
        for (index, secret) in self.redacted() {
            let pieces = lower
                .windows(HEADER_PIECE_BYTES)
                .enumerate()
                .filter(|(_, piece)| {
                    <&[u8; HEADER_PIECE_BYTES]>::try_from(*piece)
                        .is_ok_and(|piece| secret.pieces.contains(piece))
                })
                .map(|(at, _)| at..at + HEADER_PIECE_BYTES);
            let matches = secret.echoed_any_case.find_all(&joined);
            for range in matches.into_iter().chain(pieces) {
                // Every field the match overlaps, with the part of it that does.
                for (field, bounds) in starts.windows(2).enumerate() {
                    let (from, to) = (range.start.max(bounds[0]), range.end.min(bounds[1]));
                    if from < to {
                        found[field].push((from - bounds[0]..to - bounds[0], index));
                    }
                }
            }
        }
        for (header, found) in headers.iter_mut().zip(found.chunks_mut(2)) {
            for (field, ranges) in [&mut header.name, &mut header.value].into_iter().zip(found) {
                if !ranges.is_empty() {
                    let ranges = std::mem::take(ranges);
                    *field = String::from_utf8_lossy(&self.replace(field.as_bytes(), ranges))
                        .into_owned();
                }
            }
        }
    }

    /// The secrets long enough to be looked for, with their index.
    fn redacted(&self) -> impl Iterator<Item = (usize, &Secret)> {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, secret)| secret.echoed.len() >= MIN_REDACTED_CHARS)
    }

    /// Every match of every secret in `text`, with the secret's index.
    fn find(&self, text: &[u8], ignore_case: bool) -> Vec<(Range<usize>, usize)> {
        let mut found = Vec::new();
        for (index, secret) in self.redacted() {
            let matcher = if ignore_case {
                &secret.echoed_any_case
            } else {
                &secret.echoed
            };
            found.extend(
                matcher
                    .find_all(text)
                    .into_iter()
                    .map(|range| (range, index)),
            );
        }
        found
    }

    /// `text` with each of `found` (overlapping ones merged) replaced by its secret's placeholder.
    fn replace(&self, text: &[u8], mut found: Vec<(Range<usize>, usize)>) -> Vec<u8> {
        found.sort_by_key(|(range, _)| range.start);
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for (range, index) in found {
            if range.end <= at {
                continue;
            }
            if range.start >= at {
                out.extend_from_slice(&text[at..range.start]);
                out.extend_from_slice(self.values[index].placeholder.as_bytes());
            }
            // An overlapping match only widens what the placeholder before it replaced.
            at = range.end;
        }
        out.extend_from_slice(&text[at..]);
        out
    }

    /// The values that identify the credential of a request: the secrets it carries, or, when it
    /// carries none (a token the connector obtained with them), all of them.
    /// A fingerprint of every secret (its name and value), keyed with `key`, a secret of the
    /// state store: what is kept per credential follows it, and the state file shows nothing a
    /// secret could be recovered from. `None` when the connector is given no secret.
    pub fn fingerprint(&self, key: &[u8]) -> Option<String> {
        use sha2::{Digest, Sha256};
        if self.values.is_empty() {
            return None;
        }
        let mut secrets: Vec<(&str, &str)> = self
            .values
            .iter()
            .map(|secret| (secret.name.as_str(), secret.value.as_str()))
            .collect();
        secrets.sort_unstable();
        let mut hash = Sha256::new();
        hash.update(b"trawl credential\0");
        // Length-prefixed, so that no two lists of secrets hash alike.
        for part in std::iter::once(key).chain(
            secrets
                .iter()
                .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()]),
        ) {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        Some(hex::encode(&hash.finalize()[..16]))
    }

    pub(super) fn credential(&self, used: &[bool]) -> Vec<&str> {
        let any = used.iter().any(|used| *used);
        self.values
            .iter()
            .zip(used)
            .filter(|(_, used)| **used || !any)
            .map(|(secret, _)| secret.value.as_str())
            .collect()
    }
}

/// Where `secret` may go, for messages.
fn bound_to(secret: &Secret) -> String {
    if secret.hosts.is_empty() {
        "the connector's declared hosts".to_string()
    } else {
        secret
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first `{{secret:...}}` in `text`, as written or percent-encoded (any case, any number of
/// times over: a host is decoded by the URL parser, a user name is not), up to its `}}`.
fn placeholder_in(text: &str) -> Option<String> {
    let mut decoded = text.to_string();
    for _ in 0..4 {
        if let Some(start) = decoded.find("{{secret") {
            let rest = &decoded[start..];
            let end = rest.find("}}").map_or(rest.len(), |end| end + 2);
            return Some(format!("`{}`", &rest[..end]));
        }
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(value: &str) -> Secrets {
        let mut secrets = Secrets::default();
        secrets.insert("token", value.into());
        secrets
    }

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_fingerprint_follows_the_credential_and_shows_nothing_of_it() {
        let key = b"a secret of the state store";
        let fingerprint = secrets("key-a").fingerprint(key).unwrap();
        assert_eq!(secrets("key-a").fingerprint(key).unwrap(), fingerprint);
        assert_ne!(secrets("key-b").fingerprint(key).unwrap(), fingerprint);
        // Another store's key: nothing to compare across stores.
        assert_ne!(
            secrets("key-a").fingerprint(b"another").unwrap(),
            fingerprint
        );
        assert!(!fingerprint.contains("key-a"));
        assert_eq!(fingerprint.len(), 32);
        assert_eq!(Secrets::default().fingerprint(key), None);
    }

    #[test]
    fn placeholders_in_the_path_and_query_are_substituted_encoded_in_any_form() {
        let secrets = secrets("a/b?c#d@e%f&g=h i");
        let url = Url::parse(
            "https://api.example.com/v1/{{secret:token}}/x?key=%7B%7Bsecret%3Atoken%7D%7D\
             &lower=%7b%7bsecret%3atoken%7d%7d&raw={{secret:token}}&other={{secret:other}}#{{secret:token}}",
        )
        .unwrap();
        let mut used = [false];
        let sent = secrets.substitute_url(&url, &mut used).unwrap();
        assert_eq!(used, [true]);
        let encoded = "a%2Fb%3Fc%23d%40e%25f%26g%3Dh%20i";
        assert_eq!(sent.path(), format!("/v1/{encoded}/x"));
        assert_eq!(sent.host_str(), Some("api.example.com"));
        let pairs: Vec<(String, String)> = sent.query_pairs().into_owned().collect();
        let value = "a/b?c#d@e%f&g=h i".to_string();
        assert_eq!(
            pairs,
            [
                ("key".into(), value.clone()),
                ("lower".into(), value.clone()),
                ("raw".into(), value),
                ("other".into(), "{{secret:other}}".into()),
            ]
        );
        // The fragment is never sent: nothing went in there.
        assert_eq!(sent.fragment(), Some("{{secret:token}}"));
    }

    #[test]
    fn placeholders_that_would_choose_the_destination_are_refused() {
        let secrets = secrets("evil.example/");
        for url in [
            "http://{{secret:token}}@api.example.com/x",
            "http://user:{{secret:token}}@api.example.com/x",
            "http://%7B%7Bsecret%3Atoken%7D%7D@api.example.com/x",
            "http://%257B%257Bsecret%253Atoken%257D%257D@api.example.com/x",
            "http://{{secret%3Atoken}}.example.com/x",
        ] {
            let Ok(url) = Url::parse(url) else {
                continue;
            };
            let error = secrets.substitute_url(&url, &mut [false]).unwrap_err();
            let Error::Denied(message) = error else {
                panic!("{url}: {error:?}")
            };
            assert!(message.contains("{{secret:token}}"), "{message}");
            assert!(!message.contains("evil"), "{message}");
        }
    }

    #[test]
    fn header_values_are_substituted_and_names_and_line_breaks_refused() {
        let secrets = secrets("s3cr3t");
        let mut used = [false];
        assert_eq!(
            secrets
                .substitute_header_value("authorization", "Bearer {{secret:token}}", &mut used)
                .unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(used, [true]);
        for name in ["x-{{secret:token}}", "x-%7B%7Bsecret%3Atoken%7D%7D"] {
            assert!(matches!(
                secrets.check_header_name(name),
                Err(Error::Denied(message)) if message.contains("header's name")
            ));
        }
        let broken = self::secrets("s3cr3t\r\nx-injected: 1");
        let error = broken
            .substitute_header_value("authorization", "Bearer {{secret:token}}", &mut [false])
            .unwrap_err();
        assert!(
            matches!(&error, Error::Denied(message) if message.contains("line break") && !message.contains("injected")),
            "{error:?}"
        );
    }

    #[test]
    fn a_body_is_redacted_in_every_form_and_left_alone_without_one() {
        let secrets = secrets("a b~c/+=d");
        let mut body = Bytes::from_static(
            b"raw a b~c/+=d, form a+b%7Ec%2F%2B%3Dd, query a%20b~c%2F%2B%3Dd, \
              json a\\u0020b\\u007Ec\\/+=d, html a&#32;b&#x7e;c&sol;&#43;&equals;d",
        );
        secrets.redact(&mut body);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "raw {{secret:token}}, form {{secret:token}}, query {{secret:token}}, \
             json {{secret:token}}, html {{secret:token}}"
        );
        let clean = Bytes::from(vec![b'x'; 100]);
        let mut same = clean.clone();
        secrets.redact(&mut same);
        assert_eq!(same.as_ptr(), clean.as_ptr(), "a clean body was copied");
    }

    #[test]
    fn headers_are_redacted_whole_split_and_in_pieces() {
        let secrets = secrets("Tok3n-Value-0123456789");
        let mut headers = vec![
            header("x-echo", "Bearer Tok3n\\u002dValue-0123456789"),
            header("tok3n-value-0123456789", "name"),
            header("x-first", "Tok3n-Val"),
            header("ue-0123456789", "split into the next name"),
            header("x-a", "3456789 ... Tok3n-Va"),
            header("content-type", "application/json"),
        ];
        secrets.redact_headers(&mut headers);
        let shown = format!("{headers:?}");
        for piece in ["Tok3n", "Value", "0123456789", "tok3n", "ue-01"] {
            assert!(!shown.contains(piece), "{piece} in {shown}");
        }
        assert_eq!(headers[0].value, "Bearer {{secret:token}}");
        assert_eq!(headers[1].name, "{{secret:token}}");
        assert_eq!(headers[5].value, "application/json");
    }

    #[test]
    fn redirects_keep_secrets_to_their_hosts() {
        let mut secrets = Secrets::default();
        secrets.insert_bound(
            "token",
            "s3cr3t-value".into(),
            vec!["https://api.example.com".parse().unwrap()],
        );
        let declared = vec!["https://api.example.com".to_string()];
        let grants = vec![
            "https://api.example.com".to_string(),
            "http://127.0.0.1:9000".to_string(),
        ];
        let policy = NetworkPolicy::new("acme", &declared, Some(&grants)).unwrap();
        let url = |text: &str| Url::parse(text).unwrap();
        let first = url("https://api.example.com/x");
        let loopback = url("http://127.0.0.1:9000/steal");
        assert!(
            secrets
                .may_follow(&policy, &first, &url("https://api.example.com/y"), None)
                .is_ok()
        );
        let refused = secrets
            .may_follow(&policy, &first, &loopback, Some(&[true]))
            .unwrap_err();
        assert!(refused.to_string().contains("127.0.0.1:9000"), "{refused}");
        // A request without the secret may go there, unless the server put it in the URL.
        assert!(
            secrets
                .may_follow(&policy, &first, &loopback, Some(&[false]))
                .is_ok()
        );
        let smuggled = url("http://127.0.0.1:9000/?k=s3cr3t%2Dvalue");
        assert!(
            secrets
                .may_follow(&policy, &first, &smuggled, Some(&[false]))
                .is_err()
        );
    }
}
