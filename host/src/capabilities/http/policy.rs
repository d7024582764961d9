//! The network policy: which destinations a connector may reach, as `scheme://host[:port]`
//! patterns it declared and the user granted.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use thiserror::Error;
use url::Url;

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

/// `scheme://host:port` of `url`, the port always spelled out.
pub(super) fn origin(url: &Url) -> String {
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
}
