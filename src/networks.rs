//! `WAGATE_WEBHOOK_DENY_NETWORKS`: networks no webhook may reach. Checked when a webhook is
//! configured, and again at delivery on the addresses its name resolves to then (a name can
//! point elsewhere by the time it is used).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The variable, named in every message about it.
pub const VAR: &str = "WAGATE_WEBHOOK_DENY_NETWORKS";

/// The `lastError` of a delivery whose host is in a denied network.
pub const DENIED_NETWORK: &str = "denied_network";

/// How long a configuration waits for a name to resolve; one that does not by then is let
/// through, as one that does not resolve at all: delivery checks again.
const RESOLVE_WAIT: Duration = Duration::from_secs(5);

/// What `private` stands for: loopback, link-local, RFC 1918, RFC 4193, and the unspecified
/// addresses (0.0.0.0 reaches the local host on Linux).
const PRIVATE: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "0.0.0.0/8",
    "::1/128",
    "::/128",
    "fe80::/10",
    "fc00::/7",
];

/// One network: its address with the host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    /// `10.0.0.0/8`, `fc00::/7`, or a bare address (that address alone). Host bits are cleared.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (a, Some(p.parse().ok()?)),
            Some(_) => return None,
            None => (s, None),
        };
        match addr.parse().ok()? {
            IpAddr::V4(ip) => {
                let prefix = prefix.unwrap_or(32);
                (prefix <= 32).then(|| Cidr {
                    net: Ipv4Addr::from(u32::from(ip) & mask_v4(prefix)).into(),
                    prefix,
                })
            }
            IpAddr::V6(ip) => {
                let prefix = prefix.unwrap_or(128);
                (prefix <= 128).then(|| Cidr {
                    net: Ipv6Addr::from(u128::from(ip) & mask_v6(prefix)).into(),
                    prefix,
                })
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// Every address of a name was in a denied network: the error the resolver fails with, found
/// again in the chain of the request's error.
#[derive(Debug, thiserror::Error)]
#[error("every address of the name is in a denied network")]
pub struct DeniedNetwork;

/// The denied networks; empty (the default) denies nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    nets: Vec<Cidr>,
}

impl DenyList {
    /// A comma list of CIDRs, bare addresses, or `private`; the error names the variable.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item.eq_ignore_ascii_case("private") {
                nets.extend(PRIVATE.iter().filter_map(|p| Cidr::parse(p)));
                continue;
            }
            nets.push(Cidr::parse(item).ok_or_else(|| {
                format!(
                    "{VAR}: {item:?} is not a network: expected CIDRs like 10.0.0.0/8 or fc00::/7, addresses, or \"private\", separated by commas"
                )
            })?);
        }
        Ok(Self { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is in a denied network; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// reaches its IPv4 address, so it is denied as that address too.
    pub fn denies(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.nets
            .iter()
            .any(|n| n.contains(ip) || mapped.is_some_and(|v4| n.contains(v4)))
    }

    /// The addresses a name resolved to, without the denied ones; an error when there were
    /// some and none is left.
    pub fn allowed(&self, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, DeniedNetwork> {
        let any = !found.is_empty();
        let kept: Vec<SocketAddr> = found.into_iter().filter(|a| !self.denies(a.ip())).collect();
        if any && kept.is_empty() {
            return Err(DeniedNetwork);
        }
        Ok(kept)
    }

    /// Why a webhook may not have `url`: its host is an address in a denied network, or a
    /// name all of whose addresses are. Answered before `deadline`: a name that has not
    /// resolved by then, or does not resolve, passes (delivery checks again).
    pub async fn refuses(&self, url: &str, deadline: tokio::time::Instant) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let u = reqwest::Url::parse(url).ok()?;
        let host = u.host_str()?;
        if let Some(ip) = literal_ip(&u) {
            return self
                .denies(ip)
                .then(|| format!("{host} is in a denied network ({VAR})"));
        }
        let port = u.port_or_known_default().unwrap_or(0);
        let lookup = tokio::net::lookup_host((host, port));
        let found = tokio::time::timeout_at(deadline, lookup).await.ok()?.ok()?;
        self.allowed(found.collect())
            .err()
            .map(|_| format!("{host} resolves only to addresses in denied networks ({VAR})"))
    }

    /// A configuration's deadline for `refuses`, shared by all its webhooks.
    pub fn deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + RESOLVE_WAIT
    }
}

/// The host of `url` when it is an IP address (the URL parser has already turned other
/// spellings of an address, like `2130706433`, into the dotted or bracketed form).
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The webhook client's resolver when networks are denied: the system's answer without the
/// denied addresses, failing with `DeniedNetwork` when none is left.
pub struct DenyingResolver {
    pub deny: Arc<DenyList>,
}

impl reqwest::dns::Resolve for DenyingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let deny = self.deny.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = deny.allowed(found.collect())?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn cidrs_parse_with_their_host_bits_cleared_and_bad_ones_do_not() {
        let c = Cidr::parse("10.1.2.3/8").expect("v4");
        assert_eq!(c, Cidr::parse("10.0.0.0/8").expect("v4"));
        assert!(c.contains(ip("10.255.255.255")));
        assert!(!c.contains(ip("11.0.0.0")));
        let host = Cidr::parse("203.0.113.7").expect("a bare address");
        assert!(host.contains(ip("203.0.113.7")));
        assert!(!host.contains(ip("203.0.113.8")));
        let all_v4 = Cidr::parse("0.0.0.0/0").expect("all of IPv4");
        assert!(all_v4.contains(ip("255.255.255.255")));
        assert!(
            !all_v4.contains(ip("::1")),
            "a v4 network holds no v6 address"
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/-1",
            "10/8",
            "x",
            "10.0.0.0/8/8",
            "fe80::1%eth0",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_networks_match_on_their_prefix_bits() {
        let ula = Cidr::parse("fc00::/7").expect("v6");
        assert!(ula.contains(ip("fd12:3456::1")));
        assert!(ula.contains(ip("fc00::")));
        assert!(!ula.contains(ip("fe00::1")));
        let link = Cidr::parse("fe80::/10").expect("v6");
        assert!(link.contains(ip("febf:ffff::1")));
        assert!(!link.contains(ip("fec0::1")));
        assert!(Cidr::parse("::/0")
            .expect("all")
            .contains(ip("2001:db8::1")));
    }

    #[test]
    fn private_denies_loopback_link_local_rfc1918_rfc4193_unspecified_and_their_mapped_forms() {
        let deny = DenyList::parse("private").expect("private");
        for denied in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::2",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
        ] {
            assert!(deny.denies(ip(denied)), "{denied}");
        }
        for allowed in [
            "8.8.8.8",
            "203.0.113.5",
            "172.32.0.1",
            "172.15.255.255",
            "100.64.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "fec0::1",
        ] {
            assert!(!deny.denies(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn a_list_mixes_words_cidrs_and_addresses_and_a_bad_item_names_the_variable() {
        let deny = DenyList::parse(" PRIVATE , 203.0.113.0/24,2001:db8::/32 ,").expect("list");
        assert!(deny.denies(ip("203.0.113.9")));
        assert!(deny.denies(ip("2001:db8::5")));
        assert!(
            deny.denies(ip("::ffff:203.0.113.9")),
            "mapped forms of any v4 network"
        );
        assert!(deny.denies(ip("10.0.0.1")));
        assert!(!deny.denies(ip("198.51.100.1")));
        // A mapped network written as such matches the mapped form as given.
        let mapped = DenyList::parse("::ffff:0:0/96").expect("mapped");
        assert!(mapped.denies(ip("::ffff:1.2.3.4")));
        assert!(DenyList::parse("").expect("empty").is_empty());
        assert!(DenyList::parse(" , ").expect("empty").is_empty());
        let err = DenyList::parse("private,10.0.0.0/33").expect_err("bad prefix");
        assert!(
            err.starts_with("WAGATE_WEBHOOK_DENY_NETWORKS: \"10.0.0.0/33\""),
            "{err}"
        );
    }

    #[test]
    fn resolved_addresses_lose_the_denied_ones_and_fail_when_none_is_left() {
        let deny = DenyList::parse("private").expect("private");
        let at = |s: &str| -> SocketAddr { s.parse().expect("socket address") };
        assert_eq!(
            deny.allowed(vec![at("127.0.0.1:80"), at("8.8.8.8:80")])
                .expect("one left"),
            [at("8.8.8.8:80")]
        );
        assert!(deny
            .allowed(vec![at("127.0.0.1:80"), at("[::1]:80")])
            .is_err());
        assert!(deny
            .allowed(Vec::new())
            .expect("nothing to deny")
            .is_empty());
    }

    #[tokio::test]
    async fn the_resolver_fails_with_denied_network_for_a_name_that_resolves_only_there() {
        let name = || "localhost".parse::<reqwest::dns::Name>().expect("name");
        let denying = DenyingResolver {
            deny: Arc::new(DenyList::parse("private").expect("private")),
        };
        let err = match denying.resolve(name()).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.is::<DeniedNetwork>(), "{err}");
        let other = DenyingResolver {
            deny: Arc::new(DenyList::parse("10.0.0.0/8").expect("list")),
        };
        let addrs: Vec<SocketAddr> = other.resolve(name()).await.expect("resolves").collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[tokio::test]
    async fn configuring_refuses_denied_addresses_and_names_that_resolve_only_there() {
        let deny = DenyList::parse("private").expect("private");
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "https://[fd00::1]:8443/h",
            "http://localhost:1/",
        ] {
            let why = deny.refuses(url, DenyList::deadline()).await;
            assert!(why.is_some_and(|w| w.contains(VAR)), "{url}");
        }
        for url in [
            "http://203.0.113.5/",
            "http://[2001:db8::1]/",
            "http://name.invalid/",
        ] {
            assert_eq!(deny.refuses(url, DenyList::deadline()).await, None, "{url}");
        }
        let open = DenyList::default();
        assert_eq!(
            open.refuses("http://127.0.0.1/", DenyList::deadline())
                .await,
            None
        );
    }
}
