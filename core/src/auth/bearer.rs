//! Where a request carries its bearer token, for every transport alike:
//! `Authorization: Bearer <token>`, and for WebSocket handshakes, which
//! browsers cannot give headers, a `Sec-WebSocket-Protocol` entry
//! `bearer.<token>` or the pair `bearer, <token>`. The API server and the
//! gateway read tokens with these, so a token the one accepts is never
//! refused by the other.
//!
//! ```
//! use bazaar_core::auth::bearer::{from_authorization, from_subprotocols};
//!
//! assert_eq!(from_authorization("Bearer abc.def"), Some("abc.def"));
//! assert_eq!(from_authorization("Basic dXNlcg=="), None);
//! // The entry the handshake must answer with comes along.
//! assert_eq!(from_subprotocols(["chat", "bearer.abc"]), Some(("abc", "bearer.abc")));
//! assert_eq!(from_subprotocols(["bearer", "abc"]), Some(("abc", "bearer")));
//! ```

/// The token of an `Authorization` header value, when its scheme is
/// `Bearer` (any case) and the token is not empty.
pub fn from_authorization(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The token among the offered WebSocket subprotocols (each
/// `Sec-WebSocket-Protocol` value split on commas, in order), with the
/// entry a server must echo to accept the handshake: `bearer.<token>`
/// itself, or `bearer` for the pair form.
pub fn from_subprotocols<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, &'a str)> {
    let offered: Vec<&str> = offered.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect();
    offered.iter().enumerate().find_map(|(i, entry)| {
        if let Some(token) = entry.strip_prefix("bearer.").filter(|t| !t.is_empty()) {
            return Some((token, *entry));
        }
        (entry.eq_ignore_ascii_case("bearer")).then(|| offered.get(i + 1).map(|token| (*token, *entry))).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_empty_bearer_credentials_are_tokens() {
        assert_eq!(from_authorization("  bearer  tok  "), Some("tok"));
        assert_eq!(from_authorization("Bearer "), None);
        assert_eq!(from_authorization("Bearer"), None);
        assert_eq!(from_authorization("Token tok"), None);
    }

    #[test]
    fn subprotocols_give_the_first_token_and_the_entry_to_echo() {
        assert_eq!(from_subprotocols(["graphql-ws", " bearer.t1 ", "bearer.t2"]), Some(("t1", "bearer.t1")));
        assert_eq!(from_subprotocols(["Bearer", "t1"]), Some(("t1", "Bearer")));
        assert_eq!(from_subprotocols(["bearer."]), None, "an empty token is none");
        assert_eq!(from_subprotocols(["bearer"]), None, "a pair needs its second half");
        assert_eq!(from_subprotocols(["chat", ""]), None);
    }
}
