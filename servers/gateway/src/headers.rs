//! Header rules of a proxy: hop-by-hop headers removed, `X-Forwarded-*`
//! added, `x-request-id` kept or made, W3C `traceparent` continued (or a
//! trace started) with the gateway as the parent span.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C trace context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// W3C trace context: vendor-specific trace state, handed on as received.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
/// `upgrade` goes too unless `keep_upgrade` (a WebSocket handshake), and
/// `te: trailers` stays (gRPC needs it end to end).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let trailers = headers.get(header::TE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The incoming request id if it is sane, else a new UUID v7.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers.get(&REQUEST_ID).filter(|v| !v.is_empty() && v.len() <= 128 && v.to_str().is_ok()).cloned().unwrap_or_else(
        || HeaderValue::try_from(uuid::Uuid::now_v7().to_string()).unwrap_or(HeaderValue::from_static("-")),
    )
}

/// The `traceparent` to send upstream: the incoming trace continued with a
/// new span id for the gateway's hop, or a new sampled trace.
pub fn traceparent(headers: &HeaderMap) -> HeaderValue {
    let span: u64 = rand::random::<u64>().max(1);
    let continued = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(parse_traceparent);
    let text = match continued {
        Some((trace, flags)) => format!("00-{trace}-{span:016x}-{flags}"),
        None => format!("00-{:032x}-{span:016x}-01", rand::random::<u128>().max(1)),
    };
    HeaderValue::try_from(text)
        .unwrap_or(HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01"))
}

/// The caller's W3C trace context (`traceparent` and `tracestate`), when
/// its `traceparent` is valid.
pub fn incoming_trace(headers: &HeaderMap) -> Option<bazaar_core::events::TraceContext> {
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    bazaar_core::events::TraceContext::parse(header(&TRACEPARENT)?, header(&TRACESTATE))
}

/// `(trace id, flags)` of a valid version-00 traceparent.
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ok = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    ok.then_some((trace, flags))
}

/// Adds `X-Forwarded-For` (appending the peer), `-Proto` and `-Host`.
pub fn add_forwarded(headers: &mut HeaderMap, peer: IpAddr) {
    let chain = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(value) = HeaderValue::try_from(chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.entry(X_FORWARDED_PROTO).or_insert(HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.entry(X_FORWARDED_HOST).or_insert(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        h.insert("x-kept", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none() && h.get("connection").is_none());
        assert!(h.get("upgrade").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.get("x-kept").unwrap(), "yes");
    }

    #[test]
    fn traceparent_is_continued_or_started() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        let next = traceparent(&h);
        let (trace, flags) = parse_traceparent(next.to_str().unwrap()).unwrap();
        assert_eq!((trace, flags), ("4bf92f3577b34da6a3ce929d0e0e4736", "01"));
        assert!(!next.to_str().unwrap().contains("00f067aa0ba902b7"), "the gateway is the new parent");
        h.insert(TRACEPARENT, "garbage".parse().unwrap());
        let fresh = traceparent(&h);
        assert!(parse_traceparent(fresh.to_str().unwrap()).is_some());
        assert_ne!(parse_traceparent(fresh.to_str().unwrap()).unwrap().0, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn request_ids_are_kept_or_made() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, "abc-123".parse().unwrap());
        assert_eq!(request_id(&h), "abc-123");
        let made = request_id(&HeaderMap::new());
        assert!(uuid::Uuid::parse_str(made.to_str().unwrap()).is_ok());
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        h.insert("host", "shop.example".parse().unwrap());
        add_forwarded(&mut h, "127.0.0.1".parse().unwrap());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "203.0.113.9, 127.0.0.1");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "shop.example");
    }
}
