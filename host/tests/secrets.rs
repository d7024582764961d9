//! Third-party connectors cannot hurt the user: secrets stay out of the sandbox and go only where
//! they are bound, the network policy holds through redirects and name resolution, and storage is
//! private and bounded. Each test runs the hostile test connector against the host.

mod support;

use std::sync::Arc;
use std::time::Duration;
use trawl::capabilities::Capabilities;
use trawl::capabilities::clock::Clock;
use trawl::capabilities::http::{HttpLimits, Secrets};
use trawl::capabilities::storage::StorageScope;
use trawl::runtime::Page;
use trawl::runtime::wit::trawl::connector::http::Error as HttpError;
use trawl::runtime::wit::{FetchError, PageRequest, Param, Window};
use trawl::runtime::{Connector, GuestLimits, Runtime};
use trawl::state::StateStore;
use trawl_simulators::workvivo;

/// A secret value with characters a query must encode.
const SECRET: &str = "s3cr3t/+=token";

struct Host {
    _runtime: Runtime,
    connector: Connector,
    store: StateStore,
}

impl Host {
    async fn new() -> Self {
        let (runtime, connector) = support::load_hostile(GuestLimits::default(), None).await;
        Host {
            _runtime: runtime,
            connector,
            store: StateStore::in_memory().unwrap(),
        }
    }

    /// Capabilities as `trawl run` builds them: the token bound to api.hostile.test, no retries
    /// (each test wants one attempt's answer), small limits where a test needs them.
    fn capabilities(
        &self,
        grants: Option<&[String]>,
        limits: HttpLimits,
        quota: u64,
    ) -> Capabilities {
        let info = self.connector.info();
        Capabilities {
            connector: info.name.as_str().into(),
            clock: Clock::System,
            http: Some(Arc::new(support::hostile_http(
                &self.connector,
                SECRET,
                grants,
                limits,
            ))),
            storage: Some(StorageScope::new(
                self.store.clone(),
                &info.name,
                "default",
                quota,
            )),
        }
    }

    async fn fetch(
        &self,
        capabilities: Capabilities,
        params: &[(&str, &str)],
    ) -> Result<Page, FetchError> {
        let request = PageRequest {
            stream: "events".into(),
            window: Window {
                start: 0,
                end: 1000,
            },
            cursor: None,
            params: params
                .iter()
                .map(|(name, value)| Param {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .chain([Param {
                    name: "token".into(),
                    value: Secrets::placeholder("token"),
                }])
                .collect(),
        };
        self.connector
            .fetch_page(capabilities, &request)
            .await
            .expect("the sandbox holds")
    }
}

/// What the hostile connector saw of a response: status, body, Location.
fn seen(page: &Page) -> serde_json::Value {
    serde_json::from_str(page.records[0].json.as_str()).unwrap()
}

fn denied(outcome: Result<Page, FetchError>) -> String {
    match outcome {
        Err(FetchError::Http(HttpError::Denied(message))) => message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_goes_only_to_the_hosts_it_is_bound_to() {
    let host = Host::new().await;
    // other.hostile.test is declared and granted, but the token is bound to api.hostile.test.
    let message = denied(
        host.fetch(
            host.capabilities(None, HttpLimits::default(), 1024),
            &[
                ("behaviour", "request"),
                ("target", "https://other.hostile.test/collect"),
                ("send_secret", "true"),
            ],
        )
        .await,
    );
    assert!(message.contains("secret `token`"), "{message}");
    assert!(message.contains("https://api.hostile.test"), "{message}");
    assert!(!message.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_cannot_hand_the_secret_to_the_connector() {
    let server = workvivo::start(Default::default()).await.unwrap();
    let host = Host::new().await;
    let grants = vec![server.base_url()];
    let page = host
        .fetch(
            host.capabilities(Some(&grants), HttpLimits::default(), 1024),
            &[
                ("behaviour", "request"),
                ("target", &format!("{}/__mock/echo", server.base_url())),
                ("send_secret", "true"),
            ],
        )
        .await
        .expect("the echo answers");
    let body = seen(&page)["body"].as_str().unwrap().to_string();
    // The server did get the secret, in the header and (percent-encoded) in the query, and echoed
    // both back ...
    assert!(body.contains("authorization"), "{body}");
    assert!(body.contains("key="), "{body}");
    // ... but the connector only ever sees the placeholder.
    assert!(!body.contains(SECRET), "{body}");
    assert!(!body.contains("s3cr3t%2F%2B%3Dtoken"), "{body}");
    assert!(!body.contains("s3cr3t%2f%2b%3dtoken"), "{body}");
    assert!(body.contains("Bearer {{secret:token}}"), "{body}");
    assert!(body.contains("key={{secret:token}}"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_passed_with_the_sdk_query_builder_reaches_the_vendor() {
    let server = workvivo::start(Default::default()).await.unwrap();
    let host = Host::new().await;
    let grants = vec![server.base_url()];
    // The SDK's `.query("key", "{{secret:token}}")` percent-encodes the placeholder; the host
    // finds it there and puts the secret in, encoded in turn.
    host.fetch(
        host.capabilities(Some(&grants), HttpLimits::default(), 1024),
        &[
            ("behaviour", "request"),
            ("target", &format!("{}/v1/anything", server.base_url())),
            ("send_secret", "true"),
        ],
    )
    .await
    .expect("the server answers");
    let requests = server.requests();
    let request = requests.last().expect("the server was asked");
    let url = url::Url::parse(&format!("http://x{}", request.path)).unwrap();
    let key = url.query_pairs().find(|(name, _)| name == "key");
    assert_eq!(
        key.map(|(_, value)| value.into_owned()).as_deref(),
        Some(SECRET),
        "{}",
        request.path
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {SECRET}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_foreign_host_is_not_followed() {
    let server = workvivo::start(Default::default()).await.unwrap();
    let host = Host::new().await;
    let grants = vec![server.base_url()];
    for foreign in ["https://evil.example/steal", "http://127.0.0.1:9/"] {
        let target = format!("{}/__mock/redirect?to={foreign}", server.base_url());
        let page = host
            .fetch(
                host.capabilities(Some(&grants), HttpLimits::default(), 1024),
                &[("behaviour", "request"), ("target", &target)],
            )
            .await
            .expect("the redirect itself is the answer");
        let seen = seen(&page);
        assert_eq!(seen["status"], 302, "{seen}");
        assert_eq!(seen["location"], foreign, "{seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_name_that_resolves_to_an_internal_address_is_refused() {
    let host = Host::new().await;
    // `https://localhost` is declared; without a grant naming its address, its 127.0.0.1 is off
    // limits.
    let message = denied(
        host.fetch(
            host.capabilities(None, HttpLimits::default(), 1024),
            &[("behaviour", "request"), ("target", "https://localhost/")],
        )
        .await,
    );
    assert!(message.contains("internal address"), "{message}");
    assert!(
        message.contains("--grant http://127.0.0.1:PORT"),
        "{message}"
    );
    // A grant of the name does not open it either: what a name resolves to is up to its DNS.
    let by_name = vec!["https://localhost".to_string()];
    let message = denied(
        host.fetch(
            host.capabilities(Some(&by_name), HttpLimits::default(), 1024),
            &[("behaviour", "request"), ("target", "https://localhost/")],
        )
        .await,
    );
    assert!(message.contains("names the address itself"), "{message}");
    // With a grant of the address, the request goes out (and finds nothing listening on 443).
    let grants = vec![
        "https://localhost".to_string(),
        "https://127.0.0.1".to_string(),
        "https://[::1]".to_string(),
    ];
    let outcome = host
        .fetch(
            host.capabilities(Some(&grants), HttpLimits::default(), 1024),
            &[("behaviour", "request"), ("target", "https://localhost/")],
        )
        .await;
    assert!(
        matches!(outcome, Err(FetchError::Http(HttpError::Transport(_)))),
        "{outcome:?}"
    );
    // An internal address written as an IP is refused the same way.
    let message = denied(
        host.fetch(
            host.capabilities(None, HttpLimits::default(), 1024),
            &[
                ("behaviour", "request"),
                ("target", "http://169.254.169.254/latest/"),
            ],
        )
        .await,
    );
    assert!(message.contains("169.254.169.254"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_response_is_cut_off_at_the_cap() {
    let server = workvivo::start(Default::default()).await.unwrap();
    let host = Host::new().await;
    let grants = vec![server.base_url()];
    let limits = HttpLimits {
        timeout: Duration::from_secs(30),
        max_body_bytes: 1 << 20,
    };
    let outcome = host
        .fetch(
            host.capabilities(Some(&grants), limits, 1024),
            &[
                ("behaviour", "request"),
                (
                    "target",
                    &format!("{}/__mock/big?bytes=50000000", server.base_url()),
                ),
            ],
        )
        .await;
    assert!(
        matches!(outcome, Err(FetchError::Http(HttpError::TooLarge(limit))) if limit == 1 << 20),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_bounded_and_private() {
    let host = Host::new().await;
    let outcome = host
        .fetch(
            host.capabilities(None, HttpLimits::default(), 256 << 10),
            &[("behaviour", "hoard")],
        )
        .await;
    match outcome {
        Err(FetchError::InvalidParams(message)) => {
            assert!(message.contains("QuotaExceeded"), "{message}");
            // 64 KiB values under a 256 KiB quota: the fourth write is refused.
            assert!(message.contains("write 3"), "{message}");
        }
        other => panic!("expected the quota to refuse a write, got {other:?}"),
    }

    // Another connector's token, in the same state store, is out of reach.
    let host = Host::new().await;
    host.store
        .kv_set("victim/default", "token", b"victim-token", 1024)
        .unwrap()
        .unwrap();
    let page = host
        .fetch(
            host.capabilities(None, HttpLimits::default(), 1024),
            &[("behaviour", "read-storage")],
        )
        .await
        .unwrap();
    assert_eq!(seen(&page)["found"], serde_json::Value::Null);
    // Its own key is found: the read works, the namespace is what keeps them apart.
    host.store
        .kv_set("hostile/default", "token", b"own", 1024)
        .unwrap()
        .unwrap();
    let page = host
        .fetch(
            host.capabilities(None, HttpLimits::default(), 1024),
            &[("behaviour", "read-storage")],
        )
        .await
        .unwrap();
    assert_eq!(seen(&page)["found"], "own");
}
