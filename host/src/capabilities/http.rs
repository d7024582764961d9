//! The `http` capability: outbound requests through reqwest (rustls), only to hosts the connector
//! declared and the user granted, with a timeout, a body cap and secrets substituted on the way out.

use crate::runtime::HostState;
use crate::runtime::wit::Header;
use crate::runtime::wit::trawl::connector::http::{self, Error, Method, Request, Response};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use url::Url;

/// Limits on one request.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// From sending the request to having the whole body.
    pub timeout: Duration,
    /// The largest response body accepted, in bytes.
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

/// A `scheme://host[:port]` pattern; the host may start with `*.` to match any subdomain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: String,
    wildcard: bool,
    port: u16,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "`{text}` is not a host pattern: {reason} (expected scheme://host[:port], e.g. https://api.example.com or https://*.example.com)"
)]
pub struct PatternError {
    text: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| PatternError {
            text: text.to_string(),
            reason,
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| error("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(error("the scheme must be http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(error("only a scheme, a host and a port are allowed"));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        // Let the URL parser deal with ports and IPv6 brackets.
        let url = Url::parse(&format!("{scheme}://{rest}/")).map_err(|_| error("invalid host"))?;
        let host = url.host_str().ok_or_else(|| error("no host"))?.to_string();
        if host.contains('*') {
            return Err(error(
                "a wildcard may only be the first label, as in *.example.com",
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| error("no port"))?;
        Ok(HostPattern {
            scheme,
            host,
            wildcard,
            port,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wildcard = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{wildcard}{}:{}", self.scheme, self.host, self.port)
    }
}

impl HostPattern {
    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_matches = if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host[..host.len() - self.host.len()].ends_with('.')
        } else {
            host.eq_ignore_ascii_case(&self.host)
        };
        host_matches
            && url.scheme() == self.scheme
            && url.port_or_known_default() == Some(self.port)
    }
}

/// Which destinations a connector may reach: those it declared and the user granted. A loopback
/// address can also be granted outright, for local simulators and tests.
#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    connector: String,
    declared: Vec<HostPattern>,
    /// `None`: the user granted every declared host.
    granted: Option<Vec<HostPattern>>,
}

impl NetworkPolicy {
    pub fn new(
        connector: &str,
        declared: &[String],
        granted: Option<&[String]>,
    ) -> Result<Self, PatternError> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|text| text.parse())
                .collect::<Result<Vec<HostPattern>, _>>()
        };
        Ok(NetworkPolicy {
            connector: connector.to_string(),
            declared: parse(declared)?,
            granted: granted.map(parse).transpose()?,
        })
    }

    /// Whether `url` may be sent to; the error says why not and what would allow it.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let origin = origin(url);
        let declared = self.declared.iter().any(|pattern| pattern.matches(url));
        let granted = match &self.granted {
            None => declared,
            Some(grants) => grants.iter().any(|pattern| pattern.matches(url)),
        };
        let declared_list = || {
            self.declared
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (declared, granted) {
            (true, true) => Ok(()),
            (false, true) if is_loopback(url) => Ok(()),
            (true, false) => Err(format!(
                "{origin} is declared by connector `{}` but not granted; grant it with \
                 `--grant {origin}` or in the config's `grants`",
                self.connector
            )),
            (false, true) => Err(format!(
                "{origin} is granted but connector `{}` did not declare it (it declares: {}); \
                 beyond its declared hosts only loopback addresses can be granted",
                self.connector,
                declared_list()
            )),
            (false, false) => Err(format!(
                "{origin} is not among the hosts connector `{}` declared ({}){}",
                self.connector,
                declared_list(),
                if is_loopback(url) {
                    format!("; to use a local server, grant it with `--grant {origin}`")
                } else {
                    String::new()
                }
            )),
        }
    }
}

fn origin(url: &Url) -> String {
    match url.port_or_known_default() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Secret values and the placeholders connectors use for them.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.values.iter().map(|(placeholder, _)| placeholder))
            .finish()
    }
}

impl Secrets {
    /// The placeholder a connector receives instead of the secret param `name`.
    pub fn placeholder(name: &str) -> String {
        format!("{{{{secret:{name}}}}}")
    }

    pub fn insert(&mut self, name: &str, value: String) {
        self.values.push((Self::placeholder(name), value));
    }

    fn substitute(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (placeholder, value) in &self.values {
            if text.contains(placeholder.as_str()) {
                text = text.replace(placeholder.as_str(), value);
            }
        }
        text
    }
}

/// The HTTP client of one connector run.
pub struct HttpCapability {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    secrets: Secrets,
    limits: HttpLimits,
}

impl HttpCapability {
    pub fn new(
        policy: NetworkPolicy,
        secrets: Secrets,
        limits: HttpLimits,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.timeout.min(Duration::from_secs(30)))
            // Every hop of a redirect must pass the same policy as the first request.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if redirect_policy.check(attempt.url()).is_ok() {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()?;
        Ok(HttpCapability {
            client,
            policy,
            secrets,
            limits,
        })
    }

    /// Sends one request on behalf of a connector.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        // Check the URL as the connector wrote it: the policy decides before secrets go in.
        let url = parse_url(&request.url)?;
        self.policy.check(&url).map_err(Error::Denied)?;
        let url = parse_url(&self.secrets.substitute(request.url.as_str()))?;
        tracing::debug!(target: "trawl::http", method = ?request.method, url = %request.url, "request");

        let mut builder = self.client.request(method(request.method), url);
        for Header { name, value } in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::InvalidRequest(format!("`{name}` is not a valid header name"))
            })?;
            let value = reqwest::header::HeaderValue::from_str(&self.secrets.substitute(value))
                .map_err(|_| {
                    Error::InvalidRequest(format!("the value of header `{name}` cannot be sent"))
                })?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let started = Instant::now();
        let exchange = async {
            let mut response = builder.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_string(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if (body.len() + chunk.len()) as u64 > self.limits.max_body_bytes {
                    return Err(Error::TooLarge(self.limits.max_body_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        let outcome = tokio::time::timeout(self.limits.timeout, exchange)
            .await
            .unwrap_or(Err(Error::Timeout));
        match &outcome {
            Ok(response) => tracing::debug!(target: "trawl::http", status = response.status,
                bytes = response.body.len(), elapsed_ms = started.elapsed().as_millis() as u64, "response"),
            Err(error) => tracing::debug!(target: "trawl::http", error = ?error, "request failed"),
        }
        outcome
    }
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

/// Describes a transport failure without its URL, which may carry a secret in the query.
fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport(message)
}

impl http::Host for HostState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        let Some(http) = self.capabilities.http.clone() else {
            return Err(Error::Denied(
                "no requests may be sent while a connector describes itself".into(),
            ));
        };
        let started = Instant::now();
        let outcome = http.send(request).await;
        self.add_host_time(started.elapsed());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn patterns_parse_and_match() {
        let exact: HostPattern = "https://api.example.com".parse().unwrap();
        assert!(exact.matches(&url("https://api.example.com/v1/x?y=1")));
        assert!(exact.matches(&url("https://API.example.com:443/")));
        assert!(!exact.matches(&url("http://api.example.com/")));
        assert!(!exact.matches(&url("https://api.example.com:8443/")));
        assert!(!exact.matches(&url("https://api.example.com.evil.net/")));

        let wildcard: HostPattern = "https://*.example.com".parse().unwrap();
        assert!(wildcard.matches(&url("https://api.example.com/")));
        assert!(wildcard.matches(&url("https://a.b.example.com/")));
        assert!(!wildcard.matches(&url("https://example.com/")));
        assert!(!wildcard.matches(&url("https://badexample.com/")));

        let local: HostPattern = "http://127.0.0.1:8080".parse().unwrap();
        assert!(local.matches(&url("http://127.0.0.1:8080/v1")));
        assert!(!local.matches(&url("http://127.0.0.1:8081/v1")));

        for bad in [
            "api.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://a.*.com",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_needs_declared_and_granted() {
        let declared = vec!["https://*.example.com".to_string()];
        let all = NetworkPolicy::new("acme", &declared, None).unwrap();
        assert!(all.check(&url("https://api.example.com/")).is_ok());
        let denied = all.check(&url("https://api.other.com/")).unwrap_err();
        assert!(denied.contains("https://api.other.com:443"), "{denied}");
        assert!(denied.contains("https://*.example.com"), "{denied}");
        let local = all.check(&url("http://127.0.0.1:9000/")).unwrap_err();
        assert!(local.contains("--grant http://127.0.0.1:9000"), "{local}");

        let grants = vec!["http://127.0.0.1:9000".to_string()];
        let simulator = NetworkPolicy::new("acme", &declared, Some(&grants)).unwrap();
        assert!(simulator.check(&url("http://127.0.0.1:9000/x")).is_ok());
        let not_granted = simulator
            .check(&url("https://api.example.com/"))
            .unwrap_err();
        assert!(not_granted.contains("not granted"), "{not_granted}");

        let foreign = vec!["https://api.other.com".to_string()];
        let policy = NetworkPolicy::new("acme", &declared, Some(&foreign)).unwrap();
        assert!(policy.check(&url("https://api.other.com/")).is_err());
    }

    #[test]
    fn secrets_are_substituted_and_not_printed() {
        let mut secrets = Secrets::default();
        secrets.insert("token", "s3cr3t".into());
        assert_eq!(
            secrets.substitute("Bearer {{secret:token}}"),
            "Bearer s3cr3t"
        );
        assert_eq!(secrets.substitute("{{secret:other}}"), "{{secret:other}}");
        assert!(!format!("{secrets:?}").contains("s3cr3t"));
    }
}
