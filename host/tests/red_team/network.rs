//! Attacks on the network policy and on secrets, played end to end: `hostile.wasm` tries to send
//! a secret where it is not bound, to reach internal addresses, to read a secret a server echoed
//! back, and to exhaust trawl with a compressed body; hostile servers on loopback help it. Each
//! test checks that the attack failed (the server never got the secret, the internal address was
//! never contacted, the connector never saw the secret in any form) and that the error says why.

use crate::support;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl::capabilities::Capabilities;
use trawl::capabilities::clock::Clock;
use trawl::capabilities::http::{HttpLimits, NetworkPolicy, Secrets};
use trawl::runtime::Page;
use trawl::runtime::wit::trawl::connector::http::Error as HttpError;
use trawl::runtime::wit::{FetchError, PageRequest, Param, Window};
use trawl::runtime::{Connector, GuestLimits, Runtime};

/// The hostile connector, loaded once a test.
struct Host {
    _runtime: Runtime,
    connector: Connector,
}

impl Host {
    async fn new() -> Self {
        let (runtime, connector) = support::load_hostile(GuestLimits::default(), None).await;
        Host {
            _runtime: runtime,
            connector,
        }
    }

    /// Capabilities as `trawl run` builds them: the secret `token` bound to api.hostile.test,
    /// `grants` granted, no retries.
    fn capabilities(&self, secret: &str, grants: &[String], limits: HttpLimits) -> Capabilities {
        Capabilities {
            connector: self.connector.info().name.as_str().into(),
            clock: Clock::System,
            http: Some(Arc::new(support::hostile_http(
                &self.connector,
                secret,
                Some(grants),
                limits,
            ))),
            storage: None,
        }
    }

    async fn fetch(
        &self,
        capabilities: Capabilities,
        behaviour: &str,
        target: &str,
        send_secret: bool,
    ) -> Result<Page, FetchError> {
        let params = [
            ("behaviour", behaviour.to_string()),
            ("target", target.to_string()),
            ("send_secret", send_secret.to_string()),
            ("token", Secrets::placeholder("token")),
        ];
        let request = PageRequest {
            stream: "events".into(),
            window: Window {
                start: 0,
                end: 1000,
            },
            cursor: None,
            params: params
                .into_iter()
                .map(|(name, value)| Param {
                    name: name.into(),
                    value,
                })
                .collect(),
        };
        self.connector
            .fetch_page(capabilities, &request)
            .await
            .expect("the sandbox holds")
    }
}

/// A server on loopback that writes down every request it gets (its head, as text) and answers
/// each with what `answer` makes of that head, then closes the connection.
struct Server {
    base_url: String,
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = received.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0; 4096];
                    while !head.windows(4).any(|four| four == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    log.lock().unwrap().push(head.clone());
                    let _ = socket.write_all(&answer(&head)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            received,
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

fn respond(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    let mut response = response.into_bytes();
    response.extend_from_slice(body);
    response
}

fn ok(body: &str) -> Vec<u8> {
    respond(
        "200 OK",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

/// What the connector handed back: everything it saw of the responses.
fn seen(page: &Page) -> serde_json::Value {
    serde_json::from_str(page.records[0].json.as_str()).unwrap()
}

fn denied(outcome: Result<Page, FetchError>) -> String {
    match outcome {
        Err(FetchError::Http(HttpError::Denied(message))) => message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Every string in `value`, at any depth.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => out.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        serde_json::Value::Object(members) => members.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

/// `text` with every escape it holds decoded, of every kind at once (JSON, percent, HTML), the
/// way a connector bent on reading a secret would: written independently of trawl's matcher,
/// greedily, in one pass.
fn decode_everything(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0;
    let hex = |slice: &[u8]| {
        std::str::from_utf8(slice)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    };
    let push_char = |out: &mut Vec<u8>, ch: char| {
        let mut utf8 = [0; 4];
        out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
    };
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(b"\\u")
            && rest.len() >= 6
            && let Some(unit) = hex(&rest[2..6])
        {
            let low = (rest.len() >= 12 && rest[6..8] == *b"\\u")
                .then(|| hex(&rest[8..12]))
                .flatten();
            let pair = low.and_then(|low| {
                char::decode_utf16([unit as u16, low as u16])
                    .next()?
                    .ok()
                    .filter(|ch| (*ch as u32) > 0xffff)
            });
            match pair {
                Some(ch) => {
                    push_char(&mut out, ch);
                    at += 12;
                }
                None => {
                    push_char(&mut out, char::from_u32(unit).unwrap_or('?'));
                    at += 6;
                }
            }
            continue;
        }
        if rest.first() == Some(&b'\\') && rest.len() >= 2 {
            let short = match rest[1] {
                b'/' => Some(b'/'),
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                _ => None,
            };
            if let Some(byte) = short {
                out.push(byte);
                at += 2;
                continue;
            }
        }
        if rest.first() == Some(&b'%')
            && rest.len() >= 3
            && let Some(byte) = hex(&rest[1..3])
        {
            out.push(byte as u8);
            at += 3;
            continue;
        }
        if rest.first() == Some(&b'&') {
            let end = rest.iter().position(|b| *b == b';').unwrap_or(rest.len());
            let entity = std::str::from_utf8(&rest[1..end]).unwrap_or("");
            let named = [
                ("amp", '&'),
                ("quot", '"'),
                ("lt", '<'),
                ("gt", '>'),
                ("sol", '/'),
                ("plus", '+'),
                ("equals", '='),
                ("excl", '!'),
                ("tilde", '~'),
            ];
            let ch = if let Some(hex_digits) = entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
            {
                hex(hex_digits.as_bytes()).and_then(char::from_u32)
            } else if let Some(digits) = entity.strip_prefix('#') {
                digits.parse().ok().and_then(char::from_u32)
            } else {
                named
                    .iter()
                    .find(|(name, _)| *name == entity)
                    .map(|(_, ch)| *ch)
            };
            if let Some(ch) = ch.filter(|_| end < rest.len()) {
                push_char(&mut out, ch);
                at += end + 1;
                continue;
            }
        }
        if plus_is_space && rest[0] == b'+' {
            out.push(b' ');
        } else {
            out.push(rest[0]);
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether anything the connector saw gives the secret away, decoded in any way, in any case.
fn exposes(seen: &serde_json::Value, secret: &str) -> Option<String> {
    let mut texts = Vec::new();
    strings(seen, &mut texts);
    // Also every text joined, as a connector that glued headers together would see them.
    texts.push(texts.concat());
    let secret = secret.to_lowercase();
    texts.into_iter().find(|text| {
        [
            text.clone(),
            decode_everything(text, false),
            decode_everything(text, true),
        ]
        .iter()
        .any(|decoded| decoded.to_lowercase().contains(&secret))
    })
}

/// The value of query parameter `name` in a request head, decoded as a vendor would.
fn query_param(head: &str, name: &str) -> Option<String> {
    let target = head.split_whitespace().nth(1)?;
    let url = url::Url::parse(&format!("http://x{target}")).ok()?;
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

// --- A: placeholders never choose the destination; the URL sent is the one checked ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_in_the_authority_cannot_send_the_request_elsewhere() {
    let elsewhere = Server::start(|_| ok("{}")).await;
    let vendor = Server::start(|_| ok("{}")).await;
    let host = Host::new().await;
    // Once substituted as text, this secret would make `http://{{secret:token}}@vendor/` go to
    // `elsewhere`, with user and password in its Authorization header.
    let secret = format!("k3y:s3cr3t-value@127.0.0.1:{}/?", elsewhere.port);
    let grants = vec![vendor.base_url.clone(), elsewhere.base_url.clone()];
    let message = denied(
        host.fetch(
            host.capabilities(&secret, &grants, HttpLimits::default()),
            "secret-in-authority",
            &format!("{}/x", vendor.base_url),
            false,
        )
        .await,
    );
    assert!(message.contains("{{secret:token}}"), "{message}");
    assert!(message.contains("user name, password or host"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received()
    );
    assert!(vendor.received().is_empty(), "{:?}", vendor.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_path_or_query_stays_there_and_reaches_the_vendor_whole() {
    let vendor = Server::start(|_| ok("{}")).await;
    let host = Host::new().await;
    let secret = "../../admin?x=1#frag@evil.example/ %2F";
    let grants = vec![vendor.base_url.clone()];
    for behaviour in ["secret-in-path", "secret-in-query"] {
        host.fetch(
            host.capabilities(secret, &grants, HttpLimits::default()),
            behaviour,
            &format!("{}/base", vendor.base_url),
            false,
        )
        .await
        .unwrap_or_else(|error| panic!("{behaviour}: {error:?}"));
    }
    let received = vendor.received();
    assert_eq!(received.len(), 2, "{received:?}");
    // The path: one segment holding the whole secret, encoded; nothing went past it.
    let target = received[0].split_whitespace().nth(1).unwrap();
    let segments: Vec<&str> = target.split('/').collect();
    assert_eq!(segments.len(), 4, "{target}");
    assert_eq!(segments[3], "tail", "{target}");
    let segment = percent_encoding::percent_decode_str(segments[2]).decode_utf8_lossy();
    assert_eq!(segment, secret, "{target}");
    assert!(!target.contains('?') && !target.contains('#'), "{target}");
    // The query: the vendor reads the secret itself, not the placeholder the SDK encoded.
    assert_eq!(
        query_param(&received[1], "key").as_deref(),
        Some(secret),
        "{}",
        received[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_in_a_header_name_is_refused() {
    let message = denied_before_anything_is_sent("secret-in-header-name").await;
    assert!(message.contains("header's name"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cannot_name_another_site_in_its_host_header() {
    let message = denied_before_anything_is_sent("fronted-host").await;
    assert!(message.contains("Host header"), "{message}");
}

/// Runs `behaviour` against a granted server and returns the `denied` error it must end in,
/// checking that nothing reached the server.
async fn denied_before_anything_is_sent(behaviour: &str) -> String {
    let vendor = Server::start(|_| ok("{}")).await;
    let host = Host::new().await;
    let grants = vec![vendor.base_url.clone()];
    let message = denied(
        host.fetch(
            host.capabilities("s3cr3t-value", &grants, HttpLimits::default()),
            behaviour,
            &vendor.base_url,
            false,
        )
        .await,
    );
    assert!(vendor.received().is_empty(), "{:?}", vendor.received());
    message
}

// --- B: a secret a server echoes back never reaches the connector ---

/// The response of a server that echoes `secret` back in every way it can think of.
fn echo_in_every_form(secret: &str) -> Vec<u8> {
    let json_u: String = secret
        .encode_utf16()
        .enumerate()
        .map(|(index, unit)| {
            if index % 2 == 0 {
                format!("\\u{unit:04x}")
            } else {
                format!("\\u{unit:04X}")
            }
        })
        .collect();
    let json_short = secret
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('/', "\\/");
    let lower_pct: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let html_dec: String = secret
        .chars()
        .map(|ch| format!("&#{};", ch as u32))
        .collect();
    let html_hex: String = secret
        .chars()
        .map(|ch| format!("&#x{:X};", ch as u32))
        .collect();
    let html_named = secret
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('/', "&sol;");
    // Each character in a different form from the one before.
    let mixed: String = secret
        .chars()
        .enumerate()
        .map(|(index, ch)| match index % 4 {
            0 => format!("\\u{:04X}", ch as u32),
            1 => format!("%{:02x}", ch as u32),
            2 => format!("&#{};", ch as u32),
            _ => ch.to_string(),
        })
        .collect();
    let body = format!(
        r#"{{"json_u":"{json_u}","json_short":"{json_short}","pct":"{lower_pct}","form":"{form}","html_dec":"{html_dec}","html_hex":"{html_hex}","html_named":"{html_named}","mixed":"{mixed}","clean":"hello"}}"#
    );
    let half = secret.len() / 2;
    let (first, second) = secret.split_at(half);
    let mut headers = vec![
        ("x-json", json_u.clone()),
        ("x-pct", lower_pct.clone()),
        ("x-html", html_dec.clone()),
        // Split over two headers in a row, then over two in another order.
        ("x-part-1", first.to_string()),
        ("x-part-2", second.to_string()),
        ("x-later", second.to_string()),
        ("x-sooner", first.to_string()),
        ("x-clean", "hello".to_string()),
    ];
    // As a header name, when it can be one (it arrives lower-cased).
    if secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        headers.push((secret, "name".into()));
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    respond("200 OK", &headers, body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_in_any_encoding_never_reaches_the_connector() {
    let host = Host::new().await;
    for secret in ["Zq8/Tk&y+Wp~9 \"x<Lm", "Zq8.Tk&y+Wp~9!xRv"] {
        let echoed = secret.to_string();
        let vendor = Server::start(move |_| echo_in_every_form(&echoed)).await;
        let grants = vec![vendor.base_url.clone()];
        let page = host
            .fetch(
                host.capabilities(secret, &grants, HttpLimits::default()),
                "secret-in-api-key",
                &vendor.base_url,
                false,
            )
            .await
            .expect("the echo answers");
        let seen = seen(&page);
        // The vendor did get the secret, in both requests.
        let received = vendor.received();
        assert_eq!(received.len(), 2);
        for head in &received {
            assert!(head.contains(&format!("x-api-key: {secret}")), "{head}");
        }
        // The connector saw the answers, with placeholders where the secret was.
        assert_eq!(seen["status"], 200, "{seen}");
        assert_eq!(seen["held"]["status"], 200, "{seen}");
        let shown = seen.to_string();
        assert!(shown.contains("{{secret:token}}"), "{shown}");
        assert!(shown.contains(r#"["x-clean","hello"]"#), "{shown}");
        assert!(shown.contains(r#"\"clean\":\"hello\""#), "{shown}");
        if let Some(text) = exposes(&seen, secret) {
            panic!("the connector saw the secret {secret:?} in {text:?}");
        }
    }
}

// --- C: the network policy ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_does_not_open_the_internal_address_behind_it() {
    let local = Server::start(|_| ok("{}")).await;
    let host = Host::new().await;
    let by_name = format!("http://localhost:{}", local.port);
    let message = denied(
        host.fetch(
            host.capabilities(
                "s3cr3t-value",
                std::slice::from_ref(&by_name),
                HttpLimits::default(),
            ),
            "request",
            &format!("{by_name}/x"),
            false,
        )
        .await,
    );
    assert!(message.contains("internal address"), "{message}");
    assert!(message.contains("names the address itself"), "{message}");
    assert!(message.contains("--grant http://"), "{message}");
    assert!(local.received().is_empty(), "{:?}", local.received());

    // Granting the address itself opens it, by name too.
    let grants = vec![by_name.clone(), local.base_url.clone()];
    let page = host
        .fetch(
            host.capabilities("s3cr3t-value", &grants, HttpLimits::default()),
            "request",
            &format!("{by_name}/x"),
            false,
        )
        .await
        .expect("a granted address answers");
    assert_eq!(seen(&page)["status"], 200);
    assert_eq!(local.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_in_any_spelling_are_refused() {
    let local = Server::start(|_| ok("{}")).await;
    let host = Host::new().await;
    // Only 127.0.0.1 on this port is granted: each of these reaches this machine (or an internal
    // network) another way.
    let grants = vec![local.base_url.clone()];
    let port = local.port;
    for target in [
        format!("http://0.0.0.0:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        format!("http://[::127.0.0.1]:{port}/"),
        format!("http://[64:ff9b::7f00:1]:{port}/"),
        format!("http://[2002:7f00:1::1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://127.0.0.2:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://100.64.0.1/".to_string(),
        "http://[fd00::1]/".to_string(),
        "http://[fe80::1]/".to_string(),
        "http://224.0.0.1/".to_string(),
    ] {
        let message = denied(
            host.fetch(
                host.capabilities("s3cr3t-value", &grants, HttpLimits::default()),
                "request",
                &target,
                true,
            )
            .await,
        );
        assert!(message.contains("internal address"), "{target}: {message}");
        assert!(message.contains("--grant"), "{target}: {message}");
    }
    assert!(local.received().is_empty(), "{:?}", local.received());
}

#[tokio::test]
async fn a_wildcard_over_a_public_suffix_cannot_be_granted() {
    for pattern in ["https://*.com", "https://*.co.uk", "https://*.github.io"] {
        let grants = vec![pattern.to_string()];
        let error = NetworkPolicy::new(
            "hostile",
            &["https://api.hostile.test".into()],
            Some(&grants),
        )
        .expect_err("a wildcard over a public suffix is refused");
        let message = error.to_string();
        assert!(message.contains(pattern), "{message}");
        assert!(message.contains("public suffix"), "{message}");
    }
    // Nor declared: the same check refuses it when a connector's hosts are read.
    let declared = vec!["https://*.github.io".to_string()];
    assert!(NetworkPolicy::new("hostile", &declared, None).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_cannot_carry_a_secret_to_another_origin() {
    const SECRET: &str = "s3cr3t-api-key-value";
    let elsewhere = Server::start(|_| ok(r#"{"stolen":true}"#)).await;
    let to = format!("{}/steal", elsewhere.base_url);
    let smuggled = format!("{}/steal?k={SECRET}", elsewhere.base_url);
    let vendor = Server::start(move |head| {
        let location = if head.contains("/smuggle") {
            &smuggled
        } else {
            &to
        };
        respond("302 Found", &[("location", location)], b"")
    })
    .await;
    let host = Host::new().await;
    // Both granted: `elsewhere` is a place the connector may go, but not with the secret.
    let grants = vec![vendor.base_url.clone(), elsewhere.base_url.clone()];
    let message = denied(
        host.fetch(
            host.capabilities(SECRET, &grants, HttpLimits::default()),
            "secret-in-api-key",
            &vendor.base_url,
            false,
        )
        .await,
    );
    assert!(message.contains("not following"), "{message}");
    assert!(message.contains(&elsewhere.base_url), "{message}");
    assert!(message.contains("secret `token`"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received()
    );
    assert!(vendor.received()[0].contains(SECRET));

    // A server that puts the secret into the new URL itself gets the same answer.
    let message = denied(
        host.fetch(
            host.capabilities(SECRET, &grants, HttpLimits::default()),
            "request",
            &format!("{}/smuggle", vendor.base_url),
            false,
        )
        .await,
    );
    assert!(message.contains("not following"), "{message}");
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received()
    );

    // A request that carries no secret follows the redirect to a granted origin.
    let page = host
        .fetch(
            host.capabilities(SECRET, &grants, HttpLimits::default()),
            "request",
            &vendor.base_url,
            false,
        )
        .await
        .expect("followed");
    assert_eq!(seen(&page)["status"], 200);
    let received = elsewhere.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0].contains(SECRET), "{received:?}");
}

// --- D: compressed bodies arrive decoded, and the cap holds on the decoded size ---

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_cut_at_the_cap_and_gzip_arrives_decoded() {
    const SECRET: &str = "s3cr3t-api-key-value";
    // 256 MiB of zeros, about 256 KiB compressed.
    let bomb = Arc::new(gzip(&vec![0u8; 256 << 20]));
    let page = Arc::new(gzip(
        format!(r#"{{"echo":"{SECRET}","data":[1,2,3]}}"#).as_bytes(),
    ));
    let vendor = {
        let (bomb, page) = (bomb.clone(), page.clone());
        Server::start(move |head| {
            let body = if head.contains("/bomb") { &bomb } else { &page };
            respond("200 OK", &[("content-encoding", "gzip")], body)
        })
        .await
    };
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let host = Host::new().await;
    let grants = vec![vendor.base_url.clone()];
    let limits = HttpLimits {
        timeout: Duration::from_secs(30),
        max_body_bytes: 4 << 20,
    };
    let started = Instant::now();
    let outcome = host
        .fetch(
            host.capabilities(SECRET, &grants, limits.clone()),
            "request",
            &format!("{}/bomb", vendor.base_url),
            false,
        )
        .await;
    assert!(
        matches!(outcome, Err(FetchError::Http(HttpError::TooLarge(limit))) if limit == 4 << 20),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // An ordinary compressed page arrives as the JSON it is, redacted like any other.
    let page = host
        .fetch(
            host.capabilities(SECRET, &grants, limits),
            "secret-in-api-key",
            &format!("{}/page", vendor.base_url),
            false,
        )
        .await
        .expect("a gzip page answers");
    let seen = seen(&page);
    assert_eq!(
        seen["body"], r#"{"echo":"{{secret:token}}","data":[1,2,3]}"#,
        "{seen}"
    );
    assert_eq!(seen["held"]["body"], seen["body"], "{seen}");
    assert!(exposes(&seen, SECRET).is_none(), "{seen}");
}
