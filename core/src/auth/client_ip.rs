//! Whose address a request comes from, for the per-client quotas of every
//! transport alike (REST, GraphQL and the gateway spend their quotas by the
//! same key, so they must agree on it).
//!
//! The TCP peer is the client unless it is one of the operator's
//! [`TrustedProxies`]. Only then is the forwarding header read, from the
//! right: each proxy appends the address it received the request from, so
//! the right-most entry that is not a trusted proxy is the first address
//! no one under the operator's control vouches for. Everything left of it
//! was written by the client and is ignored.
//!
//! ```
//! use std::net::IpAddr;
//! use bazaar_core::auth::client_ip::TrustedProxies;
//!
//! let proxies = TrustedProxies::parse_list("127.0.0.1, 10.0.0.0/8").unwrap();
//! let proxy: IpAddr = "10.0.0.9".parse().unwrap();
//! // A client-written first entry changes nothing.
//! let headers = |name: &str| match name {
//!     "x-forwarded-for" => vec!["6.6.6.6, 203.0.113.7"],
//!     _ => vec![],
//! };
//! assert_eq!(proxies.client(proxy, headers), "203.0.113.7".parse::<IpAddr>().unwrap());
//! // A peer that is not a trusted proxy is the client, whatever it sends.
//! let stranger: IpAddr = "198.51.100.1".parse().unwrap();
//! assert_eq!(proxies.client(stranger, headers), stranger);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// An address block (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/bits`.
    ///
    /// # Errors
    /// A message naming what is wrong: the address or the prefix length.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| format!("bad prefix length {b:?} in {text:?}"))?)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| format!("bad address {addr:?}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(format!("prefix length {bits} of {text:?} is over {max}"));
        }
        Ok(Self { network: canonical(network), bits })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports)
/// as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Which header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, Envoy, cloud load
    /// balancers, `bazaar gateway`).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!("{other:?} is neither x-forwarded-for nor forwarded")),
        }
    }
}

/// The proxies whose forwarding header is believed, and which header they
/// write. Empty (the default): no header is believed and the TCP peer is
/// the client, which is right for a server facing clients directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<Cidr>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies in `blocks`, writing `X-Forwarded-For`.
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self { blocks, header: ForwardedHeader::XForwardedFor }
    }

    /// Parses a comma-separated list of addresses and blocks
    /// (`"127.0.0.1, 10.0.0.0/8"`); an empty list trusts no one.
    ///
    /// # Errors
    /// The first entry that is not an address or block, named.
    pub fn parse_list(list: &str) -> Result<Self, String> {
        let blocks = list.split(',').filter(|s| !s.trim().is_empty()).map(Cidr::parse).collect::<Result<_, _>>()?;
        Ok(Self::new(blocks))
    }

    /// The same proxies writing `header` instead.
    #[must_use]
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The header read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|c| c.contains(ip))
    }

    /// The client's address given the TCP `peer` and `values_of`, which
    /// gives a header's values in the order received (lower-case name:
    /// `headers.get_all(name)`); only [`header`](Self::header) is asked for,
    /// and only when the peer is trusted.
    ///
    /// The peer unless it is trusted; else the header walked from the right
    /// past trusted hops. An entry that is not an address (`unknown`, an
    /// obfuscated RFC 7239 name, garbage) stops the walk at the last
    /// address a trusted proxy vouched for.
    pub fn client<'a, I>(&self, peer: IpAddr, values_of: impl FnOnce(&'static str) -> I) -> IpAddr
    where
        I: IntoIterator<Item = &'a str>,
    {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let values: Vec<&str> = values_of(self.header.name()).into_iter().collect();
        let mut client = peer;
        for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => hop.trim().parse::<IpAddr>().ok(),
                ForwardedHeader::Forwarded => forwarded_for_of(hop),
            };
            let Some(ip) = parsed.map(canonical) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The address in one RFC 7239 element's `for=` parameter
/// (`for=192.0.2.43`, `for="192.0.2.43:47011"`, `for="[2001:db8::1]:4711"`).
fn forwarded_for_of(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })?;
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').and_then(|(v6, _)| v6.parse::<Ipv6Addr>().ok()).map(IpAddr::V6);
    }
    value.parse().ok().or_else(|| value.rsplit_once(':').and_then(|(v4, _)| v4.parse().ok()))
}

/// The address a client is counted under: the address itself for IPv4
/// (and IPv4-mapped IPv6), its /64 network for IPv6. One subscriber is
/// handed a whole /64, so counting single IPv6 addresses would give each
/// of them 2^64 quotas.
pub fn quota_addr(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The client behind `peer` for these `X-Forwarded-For` and
    /// `Forwarded` lines.
    fn resolve<const X: usize, const F: usize>(
        proxies: &TrustedProxies,
        peer: IpAddr,
        xff: [&'static str; X],
        forwarded: [&'static str; F],
    ) -> IpAddr {
        proxies.client(peer, |name| match name {
            "x-forwarded-for" => xff.to_vec(),
            "forwarded" => forwarded.to_vec(),
            other => panic!("asked for {other}"),
        })
    }

    #[test]
    fn cidr_blocks_match_by_prefix() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(Cidr::parse("10.0.0.0/12").unwrap().contains(ip("10.15.255.255")));
        assert!(!Cidr::parse("10.0.0.0/12").unwrap().contains(ip("10.16.0.0")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("::ffff:127.0.0.1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("2001:db8::/32").unwrap().contains(ip("2001:db8:ffff::1")));
        assert!(Cidr::parse("1.2.3.4/33").unwrap_err().contains("over 32"));
        assert!(Cidr::parse("nope").unwrap_err().contains("nope"));
        assert!(Cidr::parse("10.0.0.0/x").unwrap_err().contains("prefix length"));
    }

    #[test]
    fn lists_parse_or_name_the_bad_entry() {
        assert!(TrustedProxies::parse_list("").unwrap().is_empty());
        assert!(!TrustedProxies::parse_list(" 127.0.0.1 , ::1 ").unwrap().is_empty());
        assert!(TrustedProxies::parse_list("10.0.0.0/8, 10.0.0.300").unwrap_err().contains("10.0.0.300"));
        assert_eq!("Forwarded".parse::<ForwardedHeader>(), Ok(ForwardedHeader::Forwarded));
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }

    #[test]
    fn x_forwarded_for_is_believed_only_from_trusted_peers_and_from_the_right() {
        let proxies = TrustedProxies::parse_list("127.0.0.1, 10.0.0.0/8").unwrap();
        let peer = ip("127.0.0.1");
        assert_eq!(resolve(&proxies, peer, ["6.6.6.6, 203.0.113.9, 10.0.0.2"], []), ip("203.0.113.9"));
        // Two header lines are one list, in order.
        assert_eq!(resolve(&proxies, peer, ["6.6.6.6", "203.0.113.9, 10.0.0.2"], []), ip("203.0.113.9"));
        assert_eq!(resolve(&proxies, ip("198.51.100.7"), ["203.0.113.9"], []), ip("198.51.100.7"));
        assert_eq!(resolve(&proxies, peer, [], []), peer);
        assert_eq!(resolve(&proxies, peer, ["junk, 10.0.0.3"], []), ip("10.0.0.3"));
        // The other header is not read.
        assert_eq!(resolve(&proxies, peer, [], ["for=203.0.113.9"]), peer);
        // Nobody trusted: the header never counts.
        assert_eq!(resolve(&TrustedProxies::default(), peer, ["203.0.113.9"], []), peer);
        // A dual-stack socket's mapped address is the IPv4 proxy.
        assert_eq!(resolve(&proxies, ip("::ffff:127.0.0.1"), ["203.0.113.9"], []), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_elements_are_read_by_their_for_parameter() {
        let proxies = TrustedProxies::parse_list("10.0.0.0/8").unwrap().with_header(ForwardedHeader::Forwarded);
        let peer = ip("10.0.0.1");
        let header = r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.5;by=10.0.0.1"#;
        assert_eq!(resolve(&proxies, peer, ["7.7.7.7"], [header]), ip("2001:db8:cafe::17"));
        assert_eq!(resolve(&proxies, peer, [], ["For=\"192.0.2.60:443\""]), ip("192.0.2.60"));
        assert_eq!(resolve(&proxies, peer, [], ["for=unknown, for=10.0.0.7"]), ip("10.0.0.7"));
        assert_eq!(resolve(&proxies, peer, [], ["proto=http"]), peer);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(quota_addr(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(quota_addr(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(quota_addr(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(quota_addr(ip("2001:db8:1:2:ffff:1:2:3")), ip("2001:db8:1:2::"));
        assert_ne!(quota_addr(ip("2001:db8:1:2::1")), quota_addr(ip("2001:db8:1:3::1")));
    }
}
