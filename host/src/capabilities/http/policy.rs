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
    reason: String,
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: &str| PatternError {
            text: text.to_string(),
            reason: reason.to_string(),
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
        if wildcard {
            check_wildcard(&url).map_err(|reason| error(&reason))?;
        }
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

/// Refuses a wildcard that would match every site of a registry (`*.com`, `*.co.uk`) or of a
/// hosting service whose users each get a subdomain (`*.github.io`): the public suffix list says
/// which names those are. A wildcard is for one organisation's own subdomains.
fn check_wildcard(url: &Url) -> Result<(), String> {
    let Some(url::Host::Domain(domain)) = url.host() else {
        return Err("a wildcard needs a domain name after `*.`, not an address".into());
    };
    let domain = domain.trim_end_matches('.');
    match psl::suffix(domain.as_bytes()) {
        Some(suffix) if suffix.as_bytes() == domain.as_bytes() => Err(format!(
            "`{domain}` is a public suffix (anyone can register a name under it), so `*.{domain}` \
             would match sites of every owner; name the organisation's own domain, as in \
             *.vendor.{domain}"
        )),
        _ => Ok(()),
    }
}

impl HostPattern {
    /// Whether the pattern names this address itself (no wildcard), spelt the same way: a grant
    /// of 127.0.0.1 is not one of ::ffff:127.0.0.1.
    fn names_address(&self, ip: IpAddr) -> bool {
        !self.wildcard
            && self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|named| named == ip)
    }

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

    /// Whether the user's grants name `host` itself (not through a wildcard, not by default).
    pub fn grants_explicitly(&self, host: &str) -> bool {
        self.granted
            .iter()
            .flatten()
            .any(|pattern| !pattern.wildcard && pattern.host.eq_ignore_ascii_case(host))
    }

    /// Whether a grant names the address `ip` itself (`--grant http://127.0.0.1:8080`): only then
    /// may a request reach it when it is internal. A grant of a name does not do: what a name
    /// resolves to is up to whoever runs its DNS, and a vendor name must not become a way into
    /// the user's network.
    pub fn grants_address(&self, ip: IpAddr) -> bool {
        self.granted
            .iter()
            .flatten()
            .any(|pattern| pattern.names_address(ip))
    }

    /// Whether a secret bound to `hosts` (empty: every declared host) belongs at `url`.
    pub fn binds(&self, url: &Url, hosts: &[HostPattern]) -> bool {
        if hosts.is_empty() {
            self.declared.iter().any(|pattern| pattern.matches(url))
        } else {
            hosts.iter().any(|pattern| pattern.matches(url))
        }
    }

    /// Whether a request the connector sends to `url` may carry a secret bound to `hosts`: where
    /// it [`binds`](Self::binds), and at a loopback address the user granted, which stands in for
    /// the vendor in tests and demos (never for a redirect: see `Secrets::may_follow`).
    pub fn may_carry(&self, url: &Url, hosts: &[HostPattern]) -> bool {
        self.binds(url, hosts)
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
            && !self.grants_address(ip)
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

/// What a range of addresses is, for [`is_internal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Range {
    /// Not reachable on the public internet, or not meant to be: this machine, private and
    /// link-local networks, carrier-grade NAT, multicast, reserved and documentation ranges.
    Internal,
    /// An IPv6 form of an IPv4 address (IPv4-mapped, NAT64's well-known prefix, 6to4): it is as
    /// internal as the IPv4 address it carries, found at this bit offset.
    Embeds(u8),
}

/// IPv4 ranges that are [`Range::Internal`]; anything else is public.
const INTERNAL_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8: "this network", 0.0.0.0 reaches this machine
    (0x0a00_0000, 8),  // 10.0.0.0/8: private
    (0x6440_0000, 10), // 100.64.0.0/10: carrier-grade NAT
    (0x7f00_0000, 8),  // 127.0.0.0/8: loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16: link-local, where cloud metadata services answer
    (0xac10_0000, 12), // 172.16.0.0/12: private
    (0xc000_0000, 24), // 192.0.0.0/24: IETF protocol assignments (DS-Lite, NAT64 discovery)
    (0xc000_0200, 24), // 192.0.2.0/24: documentation (TEST-NET-1)
    (0xc058_6300, 24), // 192.88.99.0/24: the retired 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16: private
    (0xc612_0000, 15), // 198.18.0.0/15: benchmarking, used inside networks
    (0xc633_6400, 24), // 198.51.100.0/24: documentation (TEST-NET-2)
    (0xcb00_7100, 24), // 203.0.113.0/24: documentation (TEST-NET-3)
    (0xe000_0000, 4),  // 224.0.0.0/4: multicast
    (0xf000_0000, 4),  // 240.0.0.0/4: reserved, and 255.255.255.255, broadcast
];

/// IPv6 ranges and what they are; anything else is public. The most specific range that holds
/// an address decides.
const RANGES_V6: &[(u128, u8, Range)] = &[
    (0, 128, Range::Internal),                          // ::/128: unspecified
    (1, 128, Range::Internal),                          // ::1/128: loopback
    (0, 96, Range::Internal),                           // ::/96: IPv4-compatible, deprecated
    (0xffff_0000_0000, 96, Range::Embeds(96)),          // ::ffff:0:0/96: IPv4-mapped
    (0xffff_0000_0000_0000, 96, Range::Internal),       // ::ffff:0:0:0/96: IPv4-translated
    (0x0064_ff9b_u128 << 96, 96, Range::Embeds(96)),    // 64:ff9b::/96: NAT64, well-known
    (0x0064_ff9b_0001_u128 << 80, 48, Range::Internal), // 64:ff9b:1::/48: NAT64 of a local network, where the IPv4 part may sit anywhere
    (0x0100_u128 << 112, 64, Range::Internal),          // 100::/64: discard-only
    (0x2001_u128 << 112, 23, Range::Internal), // 2001::/23: IETF protocol assignments (Teredo, which hides an IPv4 address, benchmarking, ORCHID)
    (0x2001_0db8_u128 << 96, 32, Range::Internal), // 2001:db8::/32: documentation
    (0x2002_u128 << 112, 16, Range::Embeds(16)), // 2002::/16: 6to4
    (0x3fff_u128 << 112, 20, Range::Internal), // 3fff::/20: documentation
    (0xfc00_u128 << 112, 7, Range::Internal),  // fc00::/7: unique local (private)
    (0xfe80_u128 << 112, 10, Range::Internal), // fe80::/10: link-local
    (0xfec0_u128 << 112, 10, Range::Internal), // fec0::/10: site-local, deprecated
    (0xff00_u128 << 112, 8, Range::Internal),  // ff00::/8: multicast
];

fn in_v4(address: u32, (network, length): (u32, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
    address & mask == network & mask
}

fn in_v6(address: u128, network: u128, length: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
    address & mask == network & mask
}

/// Addresses a request may only reach when the user named the address in a grant: this machine,
/// private and link-local networks (where cloud metadata services answer), carrier-grade NAT,
/// multicast and broadcast, reserved and documentation ranges, and IPv6 forms that carry one of
/// these IPv4 addresses (IPv4-mapped, NAT64, 6to4; the IPv4-compatible and local NAT64 forms
/// always).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let address = u32::from(v4);
            INTERNAL_V4.iter().any(|range| in_v4(address, *range))
        }
        IpAddr::V6(v6) => {
            let address = u128::from(v6);
            let range = RANGES_V6
                .iter()
                .filter(|(network, length, _)| in_v6(address, *network, *length))
                .max_by_key(|(_, length, _)| *length);
            match range {
                None => false,
                Some((_, _, Range::Internal)) => true,
                Some((_, _, Range::Embeds(offset))) => {
                    let embedded = (address >> (96 - u32::from(*offset))) as u32;
                    is_internal(IpAddr::V4(embedded.into()))
                }
            }
        }
    }
}

/// A name that resolved to an internal address no grant names.
#[derive(Debug, Error)]
#[error(
    "{host} resolves to {address}, an internal address; a grant of the name does not open it, \
     only a grant that names the address itself does (`--grant {}`)",
    address_grant(*address)
)]
pub struct InternalAddress {
    pub host: String,
    pub address: IpAddr,
}

/// Resolves names for the HTTP client, dropping internal addresses no grant names (a grant of
/// the name is not enough): a declared vendor host must not become a way into the local network
/// (DNS rebinding, or a vendor name pointed at 127.0.0.1).
pub(super) struct GuardedResolver {
    pub policy: Arc<NetworkPolicy>,
}

/// The addresses `host` resolves to that a request may reach: public ones, and internal ones a
/// grant names. `Err` when it resolves only to internal addresses no grant names.
async fn resolve_guarded(
    policy: &NetworkPolicy,
    host: &str,
) -> std::io::Result<Result<Vec<SocketAddr>, InternalAddress>> {
    let addresses = tokio::net::lookup_host((host, 0)).await?;
    // Internal addresses no grant names are dropped; if nothing is left, the name is refused.
    // (`localhost` is 127.0.0.1 and ::1: a grant of 127.0.0.1 opens only that.)
    let (open, closed): (Vec<SocketAddr>, Vec<SocketAddr>) = addresses
        .partition(|address| !is_internal(address.ip()) || policy.grants_address(address.ip()));
    Ok(match closed.first() {
        Some(internal) if open.is_empty() => Err(InternalAddress {
            host: host.to_string(),
            address: internal.ip(),
        }),
        _ => Ok(open),
    })
}

/// For a request that goes through a proxy, which resolves names itself: refuses `host` if it
/// resolves here only to internal addresses no grant names. A name that does not resolve here
/// is left to the proxy (it may know names this machine does not).
pub(super) async fn check_name(policy: &NetworkPolicy, host: &str) -> Result<(), InternalAddress> {
    match resolve_guarded(policy, host).await {
        Ok(Err(internal)) => Err(internal),
        _ => Ok(()),
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            match resolve_guarded(&policy, name.as_str()).await? {
                Ok(open) => Ok(Box::new(open.into_iter()) as reqwest::dns::Addrs),
                Err(internal) => {
                    Err(Box::new(internal) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

/// How a grant names `address`, for messages (the scheme and port are the user's to choose).
fn address_grant(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("http://{v4}:PORT"),
        IpAddr::V6(v6) => format!("http://[{v6}]:PORT"),
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        // The first and last address of each range, and a neighbour outside it where there is
        // one that is public.
        for internal in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::7f00:1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0:8.8.8.8",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:ffff::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(is_internal(ip(internal)), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.114.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "fbff::1",
            "fe00::1",
        ] {
            assert!(!is_internal(ip(public)), "{public}");
        }
    }

    #[test]
    fn every_ipv6_form_of_an_ipv4_address_is_judged_as_that_address() {
        // Property-style, over addresses spread across the whole IPv4 space.
        let mut seed: u32 = 0x2545_f491;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let v4 = std::net::Ipv4Addr::from(seed);
            let internal = is_internal(IpAddr::V4(v4));
            let embedded = u128::from(seed);
            let mapped = std::net::Ipv6Addr::from(0xffff_0000_0000 | embedded);
            let nat64 = std::net::Ipv6Addr::from((0x0064_ff9b_u128 << 96) | embedded);
            let six_to_four = std::net::Ipv6Addr::from((0x2002_u128 << 112) | (embedded << 80));
            for form in [mapped, nat64, six_to_four] {
                assert_eq!(is_internal(IpAddr::V6(form)), internal, "{v4} as {form}");
            }
            // Forms that are always refused, whatever they carry.
            let compatible = std::net::Ipv6Addr::from(embedded);
            let local_nat64 = std::net::Ipv6Addr::from((0x0064_ff9b_0001_u128 << 80) | embedded);
            assert!(is_internal(IpAddr::V6(compatible)), "{compatible}");
            assert!(is_internal(IpAddr::V6(local_nat64)), "{local_nat64}");
        }
    }

    #[test]
    fn a_grant_of_a_name_does_not_open_the_internal_address_it_resolves_to() {
        let declared = vec!["https://api.example.com".to_string()];
        let grants = vec![
            "https://api.example.com".to_string(),
            "https://localhost".to_string(),
            "http://127.0.0.1:8080".to_string(),
            "http://[::1]:8080".to_string(),
        ];
        let policy = NetworkPolicy::new("acme", &declared, Some(&grants)).unwrap();
        assert!(policy.grants_address(ip("127.0.0.1")));
        assert!(!policy.grants_address(ip("::ffff:127.0.0.1")));
        assert!(policy.grants_address(ip("::1")));
        assert!(!policy.grants_address(ip("127.0.0.2")));
        assert!(!policy.grants_address(ip("10.0.0.1")));
        let message = InternalAddress {
            host: "api.example.com".into(),
            address: ip("10.0.0.1"),
        }
        .to_string();
        assert!(
            message.contains("--grant http://10.0.0.1:PORT"),
            "{message}"
        );
    }

    #[test]
    fn wildcards_under_a_public_suffix_are_refused() {
        for pattern in [
            "https://*.com",
            "https://*.co.uk",
            "https://*.github.io",
            "https://*.COM",
            "https://*.com.",
            "http://*.127.0.0.1",
            "https://*.s3.amazonaws.com",
        ] {
            let error = pattern.parse::<HostPattern>().unwrap_err().to_string();
            assert!(error.contains(pattern), "{error}");
            assert!(
                error.contains("public suffix") || error.contains("not an address"),
                "{error}"
            );
        }
        for pattern in [
            "https://*.example.com",
            "https://*.vendor.co.uk",
            "https://*.acme.github.io",
            "https://*.workvivo.io",
            "https://github.io",
        ] {
            assert!(pattern.parse::<HostPattern>().is_ok(), "{pattern}");
        }
        let declared = vec!["https://*.co.uk".to_string()];
        assert!(NetworkPolicy::new("acme", &declared, None).is_err());
        let grants = vec!["https://*.com".to_string()];
        assert!(NetworkPolicy::new("acme", &[], Some(&grants)).is_err());
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
