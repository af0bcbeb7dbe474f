//! Page-number pagination shared by every listing (`{items, total, page, limit}`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size; larger requests are capped to it, not refused.
pub const MAX_LIMIT: u32 = 100;

/// A validated page request: `page >= 1`, `1 <= limit <= 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PageRequest {
    page: u32,
    limit: u32,
}

impl PageRequest {
    /// Page `page` (from 1) of `limit` items; `limit` above [`MAX_LIMIT`] is
    /// capped to it because a client asking for "a lot" deserves the most we
    /// serve, not an error.
    ///
    /// # Errors
    /// [`Error::Validation`] on `page` when it is 0, on `limit` when it is 0.
    pub fn new(page: u32, limit: u32) -> Result<Self> {
        let mut errors = Vec::new();
        if page == 0 {
            errors.push(crate::error::FieldError::new("page", "must be at least 1"));
        }
        if limit == 0 {
            errors.push(crate::error::FieldError::new("limit", format!("must be 1 to {MAX_LIMIT}")));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        Ok(Self { page, limit: limit.min(MAX_LIMIT) })
    }

    /// From optional query parameters: page 1 and [`DEFAULT_LIMIT`] by default.
    ///
    /// # Errors
    /// As [`PageRequest::new`].
    pub fn from_params(page: Option<u32>, limit: Option<u32>) -> Result<Self> {
        Self::new(page.unwrap_or(1), limit.unwrap_or(DEFAULT_LIMIT))
    }

    /// The page number, from 1.
    pub fn page(&self) -> u32 {
        self.page
    }

    /// The (capped) page size.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many items precede this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }

    /// The slice of `items` (already filtered and ordered) this page covers.
    pub fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        let start = usize::try_from(self.offset()).unwrap_or(usize::MAX).min(items.len());
        let end = start.saturating_add(self.limit as usize).min(items.len());
        items[start..end].to_vec()
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { page: 1, limit: DEFAULT_LIMIT }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// How many items match in all pages.
    pub total: u64,
    /// The page number, from 1.
    pub page: u32,
    /// The page size used (after capping).
    pub limit: u32,
}

impl<T: Clone> Page<T> {
    /// Cuts the page `req` out of the complete, ordered `all`.
    pub fn of(all: &[T], req: PageRequest) -> Self {
        Self { items: req.slice(all), total: all.len() as u64, page: req.page(), limit: req.limit() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_capped_and_zeroes_refused() {
        assert_eq!(PageRequest::new(1, 1_000).unwrap().limit(), 100);
        assert_eq!(PageRequest::from_params(None, None).unwrap(), PageRequest::default());
        match PageRequest::new(0, 0).unwrap_err() {
            Error::Validation(f) => assert_eq!(f.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_slice_and_count() {
        let all: Vec<u32> = (0..45).collect();
        let p = Page::of(&all, PageRequest::new(3, 20).unwrap());
        assert_eq!((p.items, p.total, p.page, p.limit), ((40..45).collect(), 45, 3, 20));
        let beyond = Page::of(&all, PageRequest::new(u32::MAX, 100).unwrap());
        assert!(beyond.items.is_empty());
        assert_eq!(beyond.total, 45);
    }
}
