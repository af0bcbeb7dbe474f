//! Products ([`ProductRepository`], including search) and reviews
//! ([`ReviewRepository`]), sharing the `products` table so a review and the
//! product's rating stats change in one transaction.
//!
//! # Search
//! [`ProductRepository::search`] reproduces [`search::apply`](bazaar_core::catalog::search::apply) exactly, in two
//! queries (the page; then the total and both facets in one `UNION ALL`).
//! The text rule is "every term is a substring of the lower-cased title, a
//! lower-cased tag or the lower-cased description", scored 3/2/1 per term.
//! That is a substring rule, which PostgreSQL's full-text search (word
//! lexemes) cannot decide: a weighted `tsvector` (title A > tags B >
//! description C, GIN-indexed) is kept for word-level search, but matching
//! and relevance here are computed expressions (`strpos` per term and
//! field) over text lower-cased *in Rust* (so it is exactly
//! `str::to_lowercase`, whatever the database locale), narrowed first by a
//! trigram GIN index (`LIKE ALL` over the fields' concatenation, a superset
//! of the exact rule).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bazaar_core::catalog::search::{FacetCount, Facets, SearchQuery, SearchResult};
use bazaar_core::catalog::{
    Page, PageRequest, Product, ProductRepository, ProductStats, RatingPrior, Review, ReviewRepository,
};
use bazaar_core::events::Event;
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::{Error, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::outbox::append;
use crate::store::{PgStore, WriteTx};

// `id` is collated "C": its text order is the UUID order.
pub(crate) const LIST_SEARCHABLE: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products
    WHERE status = 'approved' AND ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2";
pub(crate) const INSERT_PRODUCT: &str = "INSERT INTO products
    (id, vendor_id, status, kind, price_minor, created_at, version, downloads, rating_sum, rating_count,
     search_title, search_tags, search_description, doc)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING pk";
// Locked: the version check and the write are one step.
pub(crate) const PRODUCT_VERSION: &str = "SELECT pk, version FROM products WHERE id = $1 FOR UPDATE";
// Stats are deliberately absent: only the atomic increments change them.
pub(crate) const UPDATE_PRODUCT: &str = "UPDATE products SET
    vendor_id = $2, status = $3, kind = $4, price_minor = $5, created_at = $6, version = $7, doc = $8,
    search_title = $9, search_tags = $10, search_description = $11
    WHERE pk = $1";
pub(crate) const DELETE_CATEGORIES: &str = "DELETE FROM product_categories WHERE product_pk = $1";
// A repeated category counts once, as the facet rule says.
pub(crate) const INSERT_CATEGORIES: &str = "INSERT INTO product_categories (product_pk, category)
    SELECT $1, c FROM unnest($2::text[]) AS c ON CONFLICT DO NOTHING";
pub(crate) const GET_PRODUCT: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products WHERE id = $1";
pub(crate) const GET_PRODUCTS: &str =
    "SELECT doc, downloads, rating_sum, rating_count FROM products WHERE id = ANY($1)";
pub(crate) const COUNT_BY_VENDOR: &str = "SELECT COUNT(*) FROM products WHERE vendor_id = $1";
pub(crate) const LIST_BY_VENDOR: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products
    WHERE vendor_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";
pub(crate) const RECORD_DOWNLOAD: &str = "UPDATE products SET downloads = downloads + 1 WHERE id = $1";

pub(crate) const ADD_RATING: &str =
    "UPDATE products SET rating_sum = rating_sum + $2, rating_count = rating_count + 1 WHERE id = $1";
pub(crate) const INSERT_REVIEW: &str =
    "INSERT INTO reviews (id, product_id, buyer_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const COUNT_REVIEWS: &str = "SELECT COUNT(*) FROM reviews WHERE product_id = $1";
pub(crate) const LIST_REVIEWS: &str =
    "SELECT doc FROM reviews WHERE product_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";

/// Approved products passing the text and price filters, with their score.
///
/// $1 terms (text[]), $2 the same terms as `%term%` LIKE patterns (`LIKE
/// ALL` of an empty array is true), `$longest` the pattern of the longest
/// term (or `%`): GIN cannot serve `LIKE ALL (array)`, but it serves this
/// single LIKE, so the trigram index narrows the candidates by the most
/// selective term. $5/$6 are price bounds or NULL. Category ($3) and kind
/// ($4) are applied by each query, because each facet leaves out its own
/// dimension.
macro_rules! matching {
    ($longest:literal) => {
        concat!("WITH base AS (
            SELECT p.pk, p.id, p.kind, p.price_minor, p.created_at,
                   p.downloads, p.rating_sum, p.rating_count, p.doc,
                   (SELECT COALESCE(SUM(CASE WHEN strpos(p.search_title, t) > 0 THEN 3 ELSE 0 END
                                      + CASE WHEN strpos(p.search_tags, t) > 0 THEN 2 ELSE 0 END
                                      + CASE WHEN strpos(p.search_description, t) > 0 THEN 1 ELSE 0 END), 0)
                    FROM unnest($1::text[]) AS t) AS score
            FROM products AS p
            WHERE p.status = 'approved'
              AND (p.search_title || E'\\n' || p.search_tags || E'\\n' || p.search_description) LIKE ",
            $longest,
            "::text
              AND (p.search_title || E'\\n' || p.search_tags || E'\\n' || p.search_description) LIKE ALL ($2::text[])
              AND NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS t
                              WHERE strpos(p.search_title, t) = 0 AND strpos(p.search_tags, t) = 0
                                AND strpos(p.search_description, t) = 0)
              AND ($5::bigint IS NULL OR p.price_minor >= $5::bigint)
              AND ($6::bigint IS NULL OR p.price_minor <= $6::bigint)
        )")
    };
}

macro_rules! in_category {
    () => {
        "($3::text IS NULL OR EXISTS (SELECT 1 FROM product_categories AS c
                                      WHERE c.product_pk = base.pk AND c.category = $3::text))"
    };
}

/// One page of matches. $7 sort, $8 limit, $9 offset, $10/$11 the rating
/// prior's `C·m` and `C` (so the display rating is computed exactly as
/// `RatingPrior::display` does, in doubles), $12 the longest term's pattern.
pub(crate) const SEARCH_PAGE: &str = concat!(
    matching!("$12"),
    " SELECT doc, downloads, rating_sum, rating_count FROM base
    WHERE ",
    in_category!(),
    " AND ($4::text IS NULL OR kind = $4::text)
    ORDER BY
        CASE WHEN $7::text = 'relevance' THEN score END DESC,
        CASE WHEN $7::text = 'price_asc' THEN price_minor END ASC,
        CASE WHEN $7::text = 'price_desc' THEN price_minor END DESC,
        CASE WHEN $7::text = 'rating' THEN ($10::float8 + rating_sum) / ($11::float8 + rating_count) END DESC,
        CASE WHEN $7::text = 'downloads' THEN downloads END DESC,
        created_at DESC, id DESC
    LIMIT $8 OFFSET $9"
);

/// The total and both facets, as (dimension, value, count) rows; $7 the
/// longest term's pattern.
pub(crate) const SEARCH_COUNTS: &str = concat!(
    matching!("$7"),
    " SELECT 'total' AS dimension, ''::text AS value, COUNT(*) AS n FROM base WHERE ",
    in_category!(),
    " AND ($4::text IS NULL OR kind = $4::text)
    UNION ALL
    SELECT 'kind', kind, COUNT(*) FROM base WHERE ",
    in_category!(),
    " GROUP BY kind
    UNION ALL
    SELECT 'category', c.category, COUNT(*) FROM base JOIN product_categories AS c ON c.product_pk = base.pk
    WHERE ($4::text IS NULL OR base.kind = $4::text) GROUP BY c.category"
);

/// Products in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgProducts {
    store: PgStore,
}

impl PgProducts {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

/// Reviews in PostgreSQL (same database as the products they rate).
#[derive(Debug, Clone)]
pub struct PgReviews {
    store: PgStore,
}

impl PgReviews {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

/// The lower-cased searchable text: title, tags (newline-separated: a term
/// never contains whitespace, so it cannot match across two tags) and
/// description.
fn haystack(p: &Product) -> (String, String, String) {
    let tags: Vec<String> = p.tags.iter().map(|t| t.to_lowercase()).collect();
    (p.title.to_lowercase(), tags.join("\n"), p.description.to_lowercase())
}

/// Reads a product row (`doc, downloads, rating_sum, rating_count`); the
/// stats columns are authoritative because increments bypass the doc.
fn product_row(row: &PgRow) -> Result<Product> {
    let mut p: Product = from_json(row.get::<&str, _>(0))?;
    p.stats =
        ProductStats { downloads: uint(row.get(1))?, rating_sum: uint(row.get(2))?, rating_count: uint(row.get(3))? };
    Ok(p)
}

async fn write_categories(tx: &mut WriteTx, pk: i64, p: &Product, fresh: bool) -> Result<()> {
    if !fresh {
        sqlx::query(DELETE_CATEGORIES).bind(pk).execute(&mut **tx).await.map_err(db_err)?;
    }
    sqlx::query(INSERT_CATEGORIES).bind(pk).bind(&p.categories).execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

fn page_bounds(page: PageRequest) -> Result<(i64, i64)> {
    Ok((i64::from(page.limit()), int(page.offset())?))
}

/// The trigram prefilter: each term as a `%term%` LIKE pattern, with LIKE's
/// own wildcards and escape character escaped.
fn like_patterns(terms: &[String]) -> Vec<String> {
    terms.iter().map(|t| format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))).collect()
}

fn facet(counts: BTreeMap<String, u64>) -> Vec<FacetCount> {
    let mut v: Vec<FacetCount> = counts.into_iter().map(|(value, count)| FacetCount { value, count }).collect();
    // Count desc, then value asc (the map is already in value order and the sort is stable).
    v.sort_by_key(|f| std::cmp::Reverse(f.count));
    v
}

#[async_trait]
impl ProductRepository for PgProducts {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let (title, tags, description) = haystack(product);
                let mut tx = self.store.write().await?;
                let pk: i64 = sqlx::query_scalar(INSERT_PRODUCT)
                    .bind(product.id.to_string())
                    .bind(product.vendor_id.to_string())
                    .bind(product.status.as_str())
                    .bind(product.kind.as_str())
                    .bind(product.pricing.sort_minor())
                    .bind(ts(product.created_at)?)
                    .bind(int(product.version)?)
                    .bind(int(product.stats.downloads)?)
                    .bind(int(product.stats.rating_sum)?)
                    .bind(int(product.stats.rating_count)?)
                    .bind(&title)
                    .bind(&tags)
                    .bind(&description)
                    .bind(to_json(product)?)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                write_categories(&mut tx, pk, product, true).await?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                let row = sqlx::query(PRODUCT_VERSION)
                    .bind(product.id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("product"))?;
                let (pk, current): (i64, i64) = (row.get(0), row.get(1));
                let current = uint(current)?;
                if current != expected_version {
                    return Err(Error::VersionMismatch { expected: expected_version, current });
                }
                if expected_version.checked_add(1) != Some(product.version) {
                    return Err(Error::internal(
                        "updating a product",
                        format!("new version {} is not expected version {expected_version} + 1", product.version),
                    ));
                }
                let (title, tags, description) = haystack(product);
                sqlx::query(UPDATE_PRODUCT)
                    .bind(pk)
                    .bind(product.vendor_id.to_string())
                    .bind(product.status.as_str())
                    .bind(product.kind.as_str())
                    .bind(product.pricing.sort_minor())
                    .bind(ts(product.created_at)?)
                    .bind(int(product.version)?)
                    .bind(to_json(product)?)
                    .bind(title)
                    .bind(tags)
                    .bind(description)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                write_categories(&mut tx, pk, product, false).await?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        self.store
            .run(async {
                let row = sqlx::query(GET_PRODUCT)
                    .bind(id.to_string())
                    .fetch_optional(self.store.pool())
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(product_row).transpose()
            })
            .await
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.store
            .run(async {
                let rows = sqlx::query(GET_PRODUCTS).bind(&ids).fetch_all(self.store.pool()).await.map_err(db_err)?;
                rows.iter().map(product_row).collect()
            })
            .await
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        self.store
            .run(async {
                let (limit, offset) = page_bounds(page)?;
                let vendor = vendor.to_string();
                let total: i64 = sqlx::query_scalar(COUNT_BY_VENDOR)
                    .bind(&vendor)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let rows = sqlx::query(LIST_BY_VENDOR)
                    .bind(&vendor)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let items = rows.iter().map(product_row).collect::<Result<_>>()?;
                Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
            })
            .await
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        self.store
            .run(async {
                let rows = sqlx::query(LIST_SEARCHABLE)
                    .bind(after.map(|id| id.to_string()))
                    .bind(i64::from(limit))
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter().map(product_row).collect()
            })
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.store
            .run(async {
                let terms = query.terms().to_vec();
                let patterns = like_patterns(&terms);
                let longest = terms
                    .iter()
                    .zip(&patterns)
                    .max_by_key(|(t, _)| t.chars().count())
                    .map_or_else(|| "%".to_owned(), |(_, p)| p.clone());
                let category = query.category().map(str::to_owned);
                let kind = query.kind().map(|k| k.as_str());
                let page = query.page();
                let (limit, offset) = page_bounds(page)?;
                let prior = RatingPrior::DEFAULT;
                let weight = f64::from(prior.weight());

                let rows = sqlx::query(SEARCH_PAGE)
                    .bind(&terms)
                    .bind(&patterns)
                    .bind(&category)
                    .bind(kind)
                    .bind(query.price_min())
                    .bind(query.price_max())
                    .bind(query.sort().as_str())
                    .bind(limit)
                    .bind(offset)
                    .bind(weight * prior.mean())
                    .bind(weight)
                    .bind(&longest)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let items = rows.iter().map(product_row).collect::<Result<Vec<_>>>()?;

                let counts = sqlx::query(SEARCH_COUNTS)
                    .bind(&terms)
                    .bind(&patterns)
                    .bind(&category)
                    .bind(kind)
                    .bind(query.price_min())
                    .bind(query.price_max())
                    .bind(&longest)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let (mut total, mut categories, mut kinds) = (0, BTreeMap::new(), BTreeMap::new());
                for row in &counts {
                    let (dimension, value, count): (&str, String, i64) = (row.get(0), row.get(1), row.get(2));
                    let count = uint(count)?;
                    match dimension {
                        "total" => total = count,
                        "kind" => {
                            kinds.insert(value, count);
                        }
                        _ => {
                            categories.insert(value, count);
                        }
                    }
                }
                Ok(SearchResult {
                    items,
                    total,
                    page: page.page(),
                    limit: page.limit(),
                    facets: Facets { categories: facet(categories), kinds: facet(kinds) },
                })
            })
            .await
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                // One UPDATE is atomic on its own; the transaction is for its events.
                let mut tx = self.store.write().await?;
                let done = sqlx::query(RECORD_DOWNLOAD).bind(id.to_string()).execute(&mut *tx).await.map_err(db_err)?;
                if done.rows_affected() == 0 {
                    return Err(Error::not_found("product"));
                }
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }
}

#[async_trait]
impl ReviewRepository for PgReviews {
    async fn insert(&self, review: &Review, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                let product = review.product_id.to_string();
                let rated = sqlx::query(ADD_RATING)
                    .bind(&product)
                    .bind(i64::from(review.rating.stars()))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if rated.rows_affected() == 0 {
                    return Err(Error::not_found("product"));
                }
                // A duplicate (buyer, product) or id fails here and the rollback
                // takes the stats increment back with it.
                sqlx::query(INSERT_REVIEW)
                    .bind(review.id.to_string())
                    .bind(&product)
                    .bind(review.buyer_id.to_string())
                    .bind(ts(review.created_at)?)
                    .bind(to_json(review)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn list_for_product(&self, product: ProductId, page: PageRequest) -> Result<Page<Review>> {
        self.store
            .run(async {
                let (limit, offset) = page_bounds(page)?;
                let product = product.to_string();
                let total: i64 = sqlx::query_scalar(COUNT_REVIEWS)
                    .bind(&product)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let rows = sqlx::query(LIST_REVIEWS)
                    .bind(&product)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let items = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
                Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        let terms = vec!["50%".to_owned(), "a_b".to_owned(), "c\\d".to_owned()];
        assert_eq!(like_patterns(&terms), vec!["%50\\%%", "%a\\_b%", "%c\\\\d%"]);
    }
}
