//! The network policy: which destinations a connector may reach, as `scheme://host[:port]`
//! patterns it declared and the user granted.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
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

    /// Whether the user's grants name `host` itself (not through a wildcard, not by default):
    /// only then may it be, or resolve to, an internal address.
    pub fn grants_explicitly(&self, host: &str) -> bool {
        self.granted
            .iter()
            .flatten()
            .any(|pattern| !pattern.wildcard && pattern.host.eq_ignore_ascii_case(host))
    }

    /// Whether a request to `url` may carry a secret bound to `hosts` (empty: every declared
    /// host). A loopback server the user granted stands in for the vendor in tests.
    pub fn may_carry(&self, url: &Url, hosts: &[HostPattern]) -> bool {
        let bound = if hosts.is_empty() {
            self.declared.iter().any(|pattern| pattern.matches(url))
        } else {
            hosts.iter().any(|pattern| pattern.matches(url))
        };
        bound
            || (is_loopback(url)
                && url
                    .host_str()
                    .is_some_and(|host| self.grants_explicitly(host)))
    }

    /// Whether `url` may be sent to; the error says why not and what would allow it.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let origin = origin(url);
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| is_internal(*ip))
            && !self.grants_explicitly(url.host_str().unwrap_or_default())
        {
            return Err(format!(
                "{origin} is an internal address ({ip}); only a grant that names it allows that \
                 (`--grant {origin}`)"
            ));
        }
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

/// Addresses a name may only lead to when the user named it in a grant: this machine, private
/// networks, carrier-grade NAT, and link-local ones (where cloud metadata services answer).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [first, second, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (first == 100 && (second & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// A name that resolved to an internal address without a grant naming it.
#[derive(Debug, Error)]
#[error(
    "{host} resolves to {address}, an internal address; only a grant that names it allows that \
     (`--grant https://{host}`)"
)]
pub struct InternalAddress {
    pub host: String,
    pub address: IpAddr,
}

/// Resolves names for the HTTP client, refusing internal addresses the user did not grant by
/// name: a declared vendor host must not become a way into the local network (DNS rebinding).
pub(super) struct GuardedResolver {
    pub policy: Arc<NetworkPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !policy.grants_explicitly(&host)
                && let Some(internal) = addresses.iter().find(|address| is_internal(address.ip()))
            {
                return Err(Box::new(InternalAddress {
                    host,
                    address: internal.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
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
    fn internal_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "203.0.113.7", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn internal_literals_need_a_grant_naming_them() {
        let declared = vec![
            "https://*.example.com".to_string(),
            "http://10.0.0.5".to_string(),
        ];
        let policy = NetworkPolicy::new("acme", &declared, None).unwrap();
        let denied = policy.check(&url("http://10.0.0.5/")).unwrap_err();
        assert!(denied.contains("internal address"), "{denied}");
        let grants = vec!["http://10.0.0.5".to_string()];
        let granted = NetworkPolicy::new("acme", &declared, Some(&grants)).unwrap();
        assert!(granted.check(&url("http://10.0.0.5/")).is_ok());
    }

    #[test]
    fn secrets_go_only_where_they_are_bound() {
        let declared = vec![
            "https://api.example.com".to_string(),
            "https://upload.example.com".to_string(),
        ];
        let grants = vec![
            "https://api.example.com".to_string(),
            "https://upload.example.com".to_string(),
            "http://127.0.0.1:9000".to_string(),
        ];
        let policy = NetworkPolicy::new("acme", &declared, Some(&grants)).unwrap();
        let bound = vec!["https://api.example.com".parse::<HostPattern>().unwrap()];
        assert!(policy.may_carry(&url("https://api.example.com/x"), &bound));
        assert!(!policy.may_carry(&url("https://upload.example.com/x"), &bound));
        assert!(policy.may_carry(&url("https://upload.example.com/x"), &[]));
        assert!(policy.may_carry(&url("http://127.0.0.1:9000/x"), &bound));
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
