//! Extractors whose rejections speak the API's error shape: JSON bodies
//! (400 when unreadable, 422 naming the field when the data is wrong),
//! queries, path ids, and the bearer token.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use bazaar_core::auth::Actor;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body. Unknown fields are refused where the body type says
/// `#[serde(deny_unknown_fields)]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(Self)
    }
}

/// Reads JSON: syntax errors are 400 `malformed`, data errors (missing
/// field, wrong type, unknown field) are 422 `validation` naming the field.
///
/// Every body of this API is an object (or `null` where a body is
/// optional), so a top-level array is refused: serde would otherwise fill a
/// struct from it by position, and `[null, null]` would pass for a patch.
///
/// # Errors
/// As above.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'[') {
        return Err(ApiError::invalid("body", "expected an object, not an array"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(field, strip_position(&inner.to_string()))
        } else {
            ApiError::malformed(format!("the body is not valid JSON: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

// serde_json appends " at line 1 column 42"; the field path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is too large")
    } else {
        ApiError::malformed(rejection.body_text())
    }
}

/// A query string; a bad value is 422 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(q)| Self(q)).map_err(|e| {
            let text = e.body_text();
            let message = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_owned();
            let field = message.split(':').next().filter(|f| !f.contains(' ')).unwrap_or("query").to_owned();
            ApiError::invalid(field, message)
        })
    }
}

/// Path parameters; an id that does not parse is 404 (no such resource).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Self(p))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The authenticated caller (401 without a valid bearer token).
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match MaybeAuth::from_request_parts(parts, state).await? {
            MaybeAuth(Some(actor)) => Ok(Self(actor)),
            MaybeAuth(None) => Err(ApiError::unauthenticated("a bearer token is required")),
        }
    }
}

/// The caller when a bearer token is sent (401 when it is invalid).
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuth(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else { return Ok(Self(None)) };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <token>"))?;
        Ok(Self(Some(state.market.auth.verify(token)?)))
    }
}

/// Reads an integer that JSON may write as `3` or `3.0`: JSON Schema's
/// `integer` admits both, so the API does too.
pub(crate) fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    let n = <serde_json::Number as serde::Deserialize>::deserialize(deserializer)?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let whole = n.as_i64().or_else(|| {
        n.as_f64().filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64).map(|f| f as i64)
    });
    whole.and_then(|v| T::try_from(v).ok()).ok_or_else(|| D::Error::custom(format!("{n} is not an integer in range")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        qty: u32,
    }

    #[test]
    fn syntax_errors_are_400_and_data_errors_name_the_field() {
        assert_eq!(parse_json::<Body>(b"{\"name\":").unwrap_err().code, "malformed");
        let e = parse_json::<Body>(br#"{"name":"a","items":[{"qty":"x"}]}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "validation"));
        assert_eq!(e.details.unwrap()[0]["field"], "items[0].qty");
        let e = parse_json::<Body>(br#"{"name":"a","items":[],"admin":true}"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        let e = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(e.message.contains("name"), "{}", e.message);
        assert_eq!(parse_json::<Body>(br#"{"name":"a","items":[]} trailing"#).unwrap_err().code, "malformed");
    }

    #[test]
    fn a_body_is_an_object_never_an_array_read_by_position() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patch {
            url: Option<String>,
            events: Option<Vec<String>>,
        }
        // serde_json alone fills the struct by position.
        let by_position: Patch = serde_json::from_str(r#"["https://a.example", null]"#).unwrap();
        assert_eq!(by_position.url.as_deref(), Some("https://a.example"));
        for body in [&br#"[null, null]"#[..], br#" ["https://a.example", null]"#, b"\r\n\t[]"] {
            let e = parse_json::<Patch>(body).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (422, "validation"), "{body:?}");
            assert_eq!(e.details.unwrap()[0]["field"], "body");
        }
        let read = parse_json::<Patch>(br#" {"events": ["order.paid"]}"#).unwrap();
        assert_eq!((read.url, read.events), (None, Some(vec!["order.paid".to_owned()])));
        assert!(parse_json::<Option<Patch>>(b"null").unwrap().is_none());
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Debug, serde::Deserialize)]
        struct Stars {
            #[serde(deserialize_with = "super::whole_number")]
            n: u8,
        }
        let read = |json: &str| serde_json::from_str::<Stars>(json).map(|s| s.n);
        assert_eq!(read(r#"{"n": 4}"#).unwrap(), 4);
        assert_eq!(read(r#"{"n": 4.0}"#).unwrap(), 4);
        for bad in [r#"{"n": 4.5}"#, r#"{"n": 256}"#, r#"{"n": -1}"#, r#"{"n": "4"}"#, r#"{"n": 1e300}"#] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
