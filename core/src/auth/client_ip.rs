//! Whose IP a request comes from, for the per-IP quotas of every transport
//! alike (REST and GraphQL spend one sign-in quota, so they must agree on
//! the key).
//!
//! Behind a trusted proxy the socket peer is the proxy itself, so the first
//! `X-Forwarded-For` entry wins; without one the header is
//! attacker-controlled and ignored. With neither, loopback (in-process
//! callers such as tests).
//!
//! ```
//! use std::net::IpAddr;
//! use bazaar_core::auth::client_ip::client_ip;
//!
//! let peer: IpAddr = "10.0.0.9".parse().unwrap();
//! assert_eq!(client_ip(Some("203.0.113.7, 10.0.0.1"), Some(peer), true), "203.0.113.7".parse::<IpAddr>().unwrap());
//! assert_eq!(client_ip(Some("203.0.113.7"), Some(peer), false), peer);
//! ```

use std::net::{IpAddr, Ipv4Addr};

/// The client's IP from the `X-Forwarded-For` value (when
/// `trust_forwarded_for` and its first entry is an address), else the
/// socket `peer`, else loopback.
pub fn client_ip(forwarded_for: Option<&str>, peer: Option<IpAddr>, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = forwarded_for
        .filter(|_| trust_forwarded_for)
        .and_then(|v| v.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok());
    forwarded.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_counts_only_when_trusted_and_well_formed() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let client: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(client_ip(Some(" 2001:db8::7 , 10.0.0.1"), Some(peer), true), client);
        assert_eq!(client_ip(Some("2001:db8::7"), Some(peer), false), peer);
        assert_eq!(client_ip(Some("not-an-ip"), Some(peer), true), peer);
        assert_eq!(client_ip(None, None, true), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
