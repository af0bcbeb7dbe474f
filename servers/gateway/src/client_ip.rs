//! The client's address: the TCP peer, or, when the peer is a trusted
//! proxy, the right-most `X-Forwarded-For` entry that is not one.

use std::net::IpAddr;

use http::HeaderMap;

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
    /// A message when the address or prefix length is invalid.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| format!("bad prefix length {b:?}"))?)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| format!("bad address {addr:?}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(format!("prefix length {bits} is over {max}"));
        }
        Ok(Self { network, bits })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
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

/// Finds client addresses behind a list of trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct ClientIpResolver {
    trusted: Vec<Cidr>,
}

impl ClientIpResolver {
    /// A resolver trusting `blocks` (already validated by the config).
    pub fn new(blocks: &[String]) -> Self {
        Self { trusted: blocks.iter().filter_map(|b| Cidr::parse(b).ok()).collect() }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client address: the peer unless it is trusted, then walking
    /// `X-Forwarded-For` from the right past trusted hops. A malformed entry
    /// stops the walk at the last address known good (never believe what a
    /// client could have written).
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        for hop in hops.iter().rev().flat_map(|v| v.rsplit(',')) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn cidr_blocks_match_by_prefix() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/12").unwrap().contains("10.15.255.255".parse().unwrap()));
        assert!(!Cidr::parse("10.0.0.0/12").unwrap().contains("10.16.0.0".parse().unwrap()));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let resolver = ClientIpResolver::new(&["127.0.0.1".into(), "10.0.0.0/8".into()]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        // Client-written left part is ignored: the right-most untrusted hop wins.
        assert_eq!(
            resolver.resolve(peer, &headers("6.6.6.6, 203.0.113.9, 10.0.0.2")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(resolver.resolve(stranger, &headers("203.0.113.9")), stranger);
        assert_eq!(resolver.resolve(peer, &HeaderMap::new()), peer);
        assert_eq!(resolver.resolve(peer, &headers("junk, 10.0.0.3")), "10.0.0.3".parse::<IpAddr>().unwrap());
    }
}
