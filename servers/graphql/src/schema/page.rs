//! Cursor pagination over the core's page-number pages.
//!
//! The core pages every listing by number (`PageRequest { page, limit }`,
//! with a total). A list field takes `first` (page size, 1 to 100, default
//! 20) and `after` (an opaque cursor) and answers
//! `{items, totalCount, nextCursor}`. A cursor names the next page and the
//! page size it was made with, so `after` alone continues a listing;
//! `first` given with `after` must match the cursor's size (a different
//! size would not line up with the pages already read).

use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bazaar_core::Error;
use bazaar_core::page::{DEFAULT_LIMIT, Page, PageRequest};

use super::types::{License, Notification, Order};

/// A page of a listing and where the next one starts.
#[derive(Debug, SimpleObject)]
#[graphql(concrete(name = "OrderConnection", params(Order)))]
#[graphql(concrete(name = "LicenseConnection", params(License)))]
#[graphql(concrete(name = "NotificationConnection", params(Notification)))]
pub struct Connection<T: OutputType> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items in all pages.
    pub total_count: u64,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: OutputType> Connection<T> {
    /// The connection of a core page.
    pub(crate) fn of<U>(page: Page<U>, item: impl FnMut(U) -> T) -> Self {
        let next_cursor = next_cursor(page.page, page.limit, page.total);
        Self { items: page.items.into_iter().map(item).collect(), total_count: page.total, next_cursor }
    }
}

/// The cursor of the page after `page`, if there is one.
pub(crate) fn next_cursor(page: u32, limit: u32, total: u64) -> Option<String> {
    let seen = u64::from(page) * u64::from(limit);
    (seen < total).then(|| encode(page + 1, limit))
}

fn encode(page: u32, limit: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("p{page}:{limit}"))
}

fn decode(cursor: &str) -> Option<(u32, u32)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (page, limit) = raw.strip_prefix('p')?.split_once(':')?;
    Some((page.parse().ok()?, limit.parse().ok()?))
}

/// The page `first` and `after` ask for.
///
/// # Errors
/// `Validation` on `after` for a cursor this API did not make, on `first`
/// when it is below 1 or differs from the cursor's page size.
pub(crate) fn request(first: Option<i32>, after: Option<&str>) -> bazaar_core::Result<PageRequest> {
    let first = first
        .map(|n| u32::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| Error::invalid("first", "must be 1 to 100")))
        .transpose()?;
    match after {
        None => PageRequest::new(1, first.unwrap_or(DEFAULT_LIMIT)),
        Some(cursor) => {
            let (page, limit) = decode(cursor).ok_or_else(|| Error::invalid("after", "not a cursor of this API"))?;
            if first.is_some_and(|n| n.min(bazaar_core::page::MAX_LIMIT) != limit) {
                return Err(Error::invalid("first", "must be the page size the cursor was made with"));
            }
            PageRequest::new(page, limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_walk_every_page_once() {
        let first = request(Some(2), None).unwrap();
        assert_eq!((first.page(), first.limit()), (1, 2));
        let cursor = next_cursor(1, 2, 5).unwrap();
        let second = request(None, Some(&cursor)).unwrap();
        assert_eq!((second.page(), second.limit()), (2, 2));
        let third = request(Some(2), Some(&next_cursor(2, 2, 5).unwrap())).unwrap();
        assert_eq!(third.page(), 3);
        assert_eq!(next_cursor(3, 2, 5), None, "the last page has no next");
        assert_eq!(next_cursor(1, 20, 0), None, "an empty listing has no next");
    }

    #[test]
    fn bad_arguments_name_their_field() {
        let field = |e: Error| match e {
            Error::Validation(f) => f[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(request(Some(0), None).unwrap_err()), "first");
        assert_eq!(field(request(Some(-3), None).unwrap_err()), "first");
        assert_eq!(field(request(None, Some("nope")).unwrap_err()), "after");
        assert_eq!(field(request(Some(5), Some(&next_cursor(1, 2, 5).unwrap())).unwrap_err()), "first");
        assert_eq!(request(Some(500), None).unwrap().limit(), 100, "large pages are capped as in REST");
    }
}
