//! Products ([`ProductRepository`], including search) and reviews
//! ([`ReviewRepository`]), sharing the `products` table so a review and the
//! product's rating stats change in one transaction.
//!
//! # Search
//! [`ProductRepository::search`] reproduces [`search::apply`](bazaar_core::catalog::search::apply) exactly, in two
//! queries: the page, then both facets (the total is derived from the kind
//! facet, which applies every filter but the kind). A search without text
//! takes its own SQL: one static `ORDER BY` per sort order, each held by an
//! index (migration 0003), so `LIMIT` ends the index walk after one page,
//! and facets counted from covering indexes, with no FTS join. The text rule is
//! "every term is a substring of the lower-cased title, a lower-cased tag or
//! the lower-cased description". The searchable text is lower-cased *in
//! Rust* (SQLite's `lower()` only folds ASCII) and stored in an FTS5 table
//! with the trigram tokenizer, which indexes substrings: terms of three or
//! more characters narrow the candidates through the index, and `instr()`
//! over the same columns then decides the exact match and the score (and
//! handles terms too short for trigrams).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bazaar_core::catalog::search::{FacetCount, Facets, SearchQuery, SearchResult, SortOrder};
use bazaar_core::catalog::{Page, PageRequest, Product, ProductRepository, ProductStats, Review, ReviewRepository};
use bazaar_core::events::Event;
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::codec::{db_err, from_json, int, to_json, ts, uint};
use crate::outbox::append;
use crate::store::{SqliteStore, WriteTx};

pub(crate) const INSERT_PRODUCT: &str = "INSERT INTO products
    (id, vendor_id, status, kind, price_minor, created_at, version, downloads, rating_sum, rating_count, doc)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING pk";
pub(crate) const PRODUCT_VERSION: &str = "SELECT pk, version FROM products WHERE id = ?1";
// Stats are deliberately absent: only the atomic increments change them.
pub(crate) const UPDATE_PRODUCT: &str = "UPDATE products SET
    vendor_id = ?2, status = ?3, kind = ?4, price_minor = ?5, created_at = ?6, version = ?7, doc = ?8
    WHERE pk = ?1";
pub(crate) const DELETE_CATEGORIES: &str = "DELETE FROM product_categories WHERE product_pk = ?1";
// OR IGNORE: a repeated category counts once, as the facet rule says.
pub(crate) const INSERT_CATEGORY: &str =
    "INSERT OR IGNORE INTO product_categories (product_pk, category) VALUES (?1, ?2)";
pub(crate) const INSERT_FTS: &str =
    "INSERT INTO products_fts (rowid, title, tags, description) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const UPDATE_FTS: &str = "UPDATE products_fts SET title = ?2, tags = ?3, description = ?4 WHERE rowid = ?1";
pub(crate) const GET_PRODUCT: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products WHERE id = ?1";
// The ids come as one JSON array.
pub(crate) const GET_PRODUCTS: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products
    WHERE id IN (SELECT value FROM json_each(?1))";
pub(crate) const COUNT_BY_VENDOR: &str = "SELECT COUNT(*) FROM products WHERE vendor_id = ?1";
pub(crate) const LIST_BY_VENDOR: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products
    WHERE vendor_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3";
// Ids are lower-case hyphenated UUIDs: their text order is the UUID order.
pub(crate) const LIST_SEARCHABLE: &str = "SELECT doc, downloads, rating_sum, rating_count FROM products
    WHERE status = 'approved' AND (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2";
pub(crate) const RECORD_DOWNLOAD: &str = "UPDATE products SET downloads = downloads + 1 WHERE id = ?1";

pub(crate) const ADD_RATING: &str =
    "UPDATE products SET rating_sum = rating_sum + ?2, rating_count = rating_count + 1 WHERE id = ?1";
pub(crate) const INSERT_REVIEW: &str =
    "INSERT INTO reviews (id, product_id, buyer_id, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const COUNT_REVIEWS: &str = "SELECT COUNT(*) FROM reviews WHERE product_id = ?1";
pub(crate) const LIST_REVIEWS: &str =
    "SELECT doc FROM reviews WHERE product_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3";

/// Approved products passing the text and price filters (a text search).
///
/// ?1 terms (JSON array), ?2 FTS5 prefilter expression or NULL, ?5/?6 price
/// bounds or NULL. Category (?3) and kind (?4) are applied by each query,
/// because each facet leaves out its own dimension. `$columns` are the
/// page query's extra columns (`doc` and the score); the counts need
/// neither, and their CTE is materialized (read twice), so carrying `doc`
/// there would copy every match's document. `products_by_status` walks the
/// approved products in rowid order, so the product and FTS rows are read
/// in storage order (any sort-order index would read them scattered).
macro_rules! text_matches {
    ($columns:expr) => {
        concat!(
            "WITH base AS (
            SELECT p.pk, p.id, p.kind, p.price_minor, p.created_at,
                   p.downloads, p.rating_sum, p.rating_count",
            $columns,
            "
            FROM products AS p INDEXED BY products_by_status JOIN products_fts AS f ON f.rowid = p.pk
            WHERE p.status = 'approved'
              AND (?2 IS NULL OR p.pk IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ?2))
              AND NOT EXISTS (SELECT 1 FROM json_each(?1) AS t
                              WHERE instr(f.title, t.value) = 0 AND instr(f.tags, t.value) = 0
                                AND instr(f.description, t.value) = 0)
              AND (?5 IS NULL OR p.price_minor >= ?5)
              AND (?6 IS NULL OR p.price_minor <= ?6)
        )"
        )
    };
}

macro_rules! text_score {
    () => {
        ",
                   (SELECT COALESCE(SUM((instr(f.title, t.value) > 0) * 3
                                      + (instr(f.tags, t.value) > 0) * 2
                                      + (instr(f.description, t.value) > 0)), 0)
                    FROM json_each(?1) AS t) AS score"
    };
}

macro_rules! in_category {
    () => {
        "(?3 IS NULL OR EXISTS (SELECT 1 FROM product_categories AS c
                                WHERE c.product_pk = base.pk AND c.category = ?3))"
    };
}

/// The text search's order, on `base` columns. ?7 sort. The display rating
/// is written with `RatingPrior::DEFAULT`'s `C·m` and `C` as literals (a
/// unit test pins them), computed in doubles exactly as
/// `RatingPrior::display` does.
macro_rules! text_order {
    () => {
        "CASE WHEN ?7 = 'relevance' THEN base.score END DESC,
        CASE WHEN ?7 = 'price_asc' THEN base.price_minor END ASC,
        CASE WHEN ?7 = 'price_desc' THEN base.price_minor END DESC,
        CASE WHEN ?7 = 'rating' THEN (15.0 + base.rating_sum) / (5.0 + base.rating_count) END DESC,
        CASE WHEN ?7 = 'downloads' THEN base.downloads END DESC,
        base.created_at DESC, base.id DESC"
    };
}

/// One page of a text search. ?7 sort, ?8 limit, ?9 offset. The page
/// query reads `doc` from the product row it already reads (the CTE is used
/// once here, so SQLite folds it into this query instead of copying it).
pub(crate) const TEXT_PAGE: &str = concat!(
    text_matches!(concat!(", p.doc", text_score!())),
    " SELECT doc, downloads, rating_sum, rating_count FROM base
    WHERE ",
    in_category!(),
    " AND (?4 IS NULL OR base.kind = ?4)
    ORDER BY ",
    text_order!(),
    " LIMIT ?8 OFFSET ?9"
);

/// Both facets of a text search, as (dimension, value, count) rows. The
/// total is the kind facet's count for the kind asked for (or the sum of
/// all kinds), because the kind facet applies every other filter.
pub(crate) const TEXT_COUNTS: &str = concat!(
    text_matches!(""),
    " SELECT 'kind', kind, COUNT(*) FROM base WHERE ",
    in_category!(),
    " GROUP BY kind
    UNION ALL
    SELECT 'category', c.category, COUNT(*) FROM base JOIN product_categories AS c ON c.product_pk = base.pk
    WHERE (?4 IS NULL OR base.kind = ?4) GROUP BY c.category"
);

/// The filters of a search without text. ?1 category, ?2 kind, ?3/?4 price
/// bounds, each NULL when absent.
macro_rules! browse_filter {
    () => {
        "p.status = 'approved'
        AND (?1 IS NULL OR EXISTS (SELECT 1 FROM product_categories AS c
                                   WHERE c.product_pk = p.pk AND c.category = ?1))
        AND (?2 IS NULL OR p.kind = ?2)
        AND (?3 IS NULL OR p.price_minor >= ?3)
        AND (?4 IS NULL OR p.price_minor <= ?4)"
    };
}

/// One page of a search without text, in a fixed order that an index of
/// migration 0003 (or `products_newest`) already holds, so the scan stops
/// after the page. ?5 limit, ?6 offset.
macro_rules! browse_page {
    ($order:literal) => {
        concat!(
            "SELECT doc, downloads, rating_sum, rating_count FROM products AS p WHERE ",
            browse_filter!(),
            " ORDER BY ",
            $order,
            " LIMIT ?5 OFFSET ?6"
        )
    };
}

/// `newest`, and `relevance` without text (every score is 0, so the order
/// is the tie-break alone).
pub(crate) const BROWSE_NEWEST: &str = browse_page!("p.created_at DESC, p.id DESC");
pub(crate) const BROWSE_PRICE_ASC: &str = browse_page!("p.price_minor ASC, p.created_at DESC, p.id DESC");
pub(crate) const BROWSE_PRICE_DESC: &str = browse_page!("p.price_minor DESC, p.created_at DESC, p.id DESC");
// The same expression as the `products_by_rating` index, or the planner
// cannot use it.
pub(crate) const BROWSE_RATING: &str =
    browse_page!("(15.0 + p.rating_sum) / (5.0 + p.rating_count) DESC, p.created_at DESC, p.id DESC");
pub(crate) const BROWSE_DOWNLOADS: &str = browse_page!("p.downloads DESC, p.created_at DESC, p.id DESC");

/// The category facet of a search without text: every filter but the
/// category (?2 kind, ?3/?4 price bounds; ?1 is unused, so both count
/// queries bind alike). It walks the covering kind index and looks each
/// product's categories up by primary key.
macro_rules! browse_category_facet {
    () => {
        "SELECT 'category', c.category, COUNT(*)
        FROM products AS p INDEXED BY products_by_kind JOIN product_categories AS c ON c.product_pk = p.pk
        WHERE p.status = 'approved' AND (?2 IS NULL OR p.kind = ?2)
          AND (?3 IS NULL OR p.price_minor >= ?3) AND (?4 IS NULL OR p.price_minor <= ?4)
        GROUP BY c.category"
    };
}

/// Both facets of a search without a category or text, as (dimension,
/// value, count) rows; the kind facet comes from the covering kind index.
pub(crate) const BROWSE_COUNTS: &str = concat!(
    "SELECT 'kind', p.kind, COUNT(*) FROM products AS p
    WHERE p.status = 'approved' AND (?3 IS NULL OR p.price_minor >= ?3) AND (?4 IS NULL OR p.price_minor <= ?4)
    GROUP BY p.kind
    UNION ALL ",
    browse_category_facet!()
);

/// Both facets of a search in category ?1 without text: the kind facet
/// starts from that category's rows instead of every approved product
/// (`CROSS JOIN` makes SQLite keep that order: without statistics it would
/// walk every approved product and look its category up, whatever the
/// category's size).
pub(crate) const BROWSE_COUNTS_IN_CATEGORY: &str = concat!(
    "SELECT 'kind', p.kind, COUNT(*)
    FROM product_categories AS c CROSS JOIN products AS p ON p.pk = c.product_pk
    WHERE c.category = ?1 AND p.status = 'approved'
      AND (?3 IS NULL OR p.price_minor >= ?3) AND (?4 IS NULL OR p.price_minor <= ?4)
    GROUP BY p.kind
    UNION ALL ",
    browse_category_facet!()
);

/// The page query of a search without text.
fn browse_page(sort: SortOrder) -> &'static str {
    match sort {
        SortOrder::Relevance | SortOrder::Newest => BROWSE_NEWEST,
        SortOrder::PriceAsc => BROWSE_PRICE_ASC,
        SortOrder::PriceDesc => BROWSE_PRICE_DESC,
        SortOrder::Rating => BROWSE_RATING,
        SortOrder::Downloads => BROWSE_DOWNLOADS,
    }
}

/// Products in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteProducts {
    store: SqliteStore,
}

impl SqliteProducts {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// Reviews in SQLite (same database as the products they rate).
#[derive(Debug, Clone)]
pub struct SqliteReviews {
    store: SqliteStore,
}

impl SqliteReviews {
    pub(crate) fn new(store: SqliteStore) -> Self {
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
fn product_row(row: &SqliteRow) -> Result<Product> {
    let mut p: Product = from_json(row.get::<&str, _>(0))?;
    p.stats =
        ProductStats { downloads: uint(row.get(1))?, rating_sum: uint(row.get(2))?, rating_count: uint(row.get(3))? };
    Ok(p)
}

/// Inserts a new product, its categories, its text and its events in `tx`.
async fn insert_product(tx: &mut WriteTx, product: &Product, events: &[Event]) -> Result<()> {
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
        .bind(to_json(product)?)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    write_categories_and_text(tx, pk, product, true).await?;
    append(tx, events).await?;
    Ok(())
}

async fn write_categories_and_text(tx: &mut WriteTx, pk: i64, p: &Product, fresh: bool) -> Result<()> {
    if !fresh {
        sqlx::query(DELETE_CATEGORIES).bind(pk).execute(&mut **tx).await.map_err(db_err)?;
    }
    for c in &p.categories {
        sqlx::query(INSERT_CATEGORY).bind(pk).bind(c.as_str()).execute(&mut **tx).await.map_err(db_err)?;
    }
    let (title, tags, description) = haystack(p);
    sqlx::query(if fresh { INSERT_FTS } else { UPDATE_FTS })
        .bind(pk)
        .bind(title)
        .bind(tags)
        .bind(description)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

fn page_bounds(page: PageRequest) -> Result<(i64, i64)> {
    Ok((i64::from(page.limit()), int(page.offset())?))
}

/// The FTS5 prefilter: every term long enough for trigrams, as a quoted
/// phrase (quotes doubled), all required. `None` when no term qualifies.
fn fts_expression(terms: &[String]) -> Option<String> {
    let phrases: Vec<String> =
        terms.iter().filter(|t| t.chars().count() >= 3).map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect();
    (!phrases.is_empty()).then(|| phrases.join(" AND "))
}

fn facet(counts: BTreeMap<String, u64>) -> Vec<FacetCount> {
    let mut v: Vec<FacetCount> = counts.into_iter().map(|(value, count)| FacetCount { value, count }).collect();
    // Count desc, then value asc (the map is already in value order and the sort is stable).
    v.sort_by_key(|f| std::cmp::Reverse(f.count));
    v
}

#[async_trait]
impl ProductRepository for SqliteProducts {
    async fn insert(&self, product: &Product, events: &[Event]) -> Result<()> {
        let mut tx = self.store.write().await?;
        insert_product(&mut tx, product, events).await?;
        self.store.commit(tx).await
    }

    /// One transaction for the whole batch: all or none.
    async fn insert_many(&self, products: &[(Product, Vec<Event>)]) -> Result<()> {
        let mut tx = self.store.write().await?;
        for (product, events) in products {
            insert_product(&mut tx, product, events).await?;
        }
        self.store.commit(tx).await
    }

    async fn update(&self, product: &Product, expected_version: u64, events: &[Event]) -> Result<()> {
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
        sqlx::query(UPDATE_PRODUCT)
            .bind(pk)
            .bind(product.vendor_id.to_string())
            .bind(product.status.as_str())
            .bind(product.kind.as_str())
            .bind(product.pricing.sort_minor())
            .bind(ts(product.created_at)?)
            .bind(int(product.version)?)
            .bind(to_json(product)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        write_categories_and_text(&mut tx, pk, product, false).await?;
        append(&mut tx, events).await?;
        self.store.commit(tx).await
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>> {
        let row =
            sqlx::query(GET_PRODUCT).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.as_ref().map(product_row).transpose()
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = sqlx::query(GET_PRODUCTS).bind(to_json(&ids)?).fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(product_row).collect()
    }

    async fn list_by_vendor(&self, vendor: UserId, page: PageRequest) -> Result<Page<Product>> {
        let (limit, offset) = page_bounds(page)?;
        let vendor = vendor.to_string();
        let total: i64 =
            sqlx::query_scalar(COUNT_BY_VENDOR).bind(&vendor).fetch_one(self.store.pool()).await.map_err(db_err)?;
        let rows = sqlx::query(LIST_BY_VENDOR)
            .bind(&vendor)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_err)?;
        let items = rows.iter().map(product_row).collect::<Result<_>>()?;
        Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
    }

    async fn list_searchable(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        let rows = sqlx::query(LIST_SEARCHABLE)
            .bind(after.map(|id| id.to_string()))
            .bind(i64::from(limit))
            .fetch_all(self.store.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(product_row).collect()
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        let category = query.category();
        let kind = query.kind().map(|k| k.as_str());
        let page = query.page();
        let (limit, offset) = page_bounds(page)?;
        let pool = self.store.pool();

        let (rows, counts) = if query.terms().is_empty() {
            // No text: plain index walks, no FTS join (see `browse_page`).
            let rows = sqlx::query(browse_page(query.sort()))
                .bind(category)
                .bind(kind)
                .bind(query.price_min())
                .bind(query.price_max())
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            let counts = sqlx::query(if category.is_some() { BROWSE_COUNTS_IN_CATEGORY } else { BROWSE_COUNTS })
                .bind(category)
                .bind(kind)
                .bind(query.price_min())
                .bind(query.price_max())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            (rows, counts)
        } else {
            let terms = to_json(query.terms())?;
            let fts = fts_expression(query.terms());
            let rows = sqlx::query(TEXT_PAGE)
                .bind(&terms)
                .bind(&fts)
                .bind(category)
                .bind(kind)
                .bind(query.price_min())
                .bind(query.price_max())
                .bind(query.sort().as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            let counts = sqlx::query(TEXT_COUNTS)
                .bind(&terms)
                .bind(&fts)
                .bind(category)
                .bind(kind)
                .bind(query.price_min())
                .bind(query.price_max())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            (rows, counts)
        };
        let items = rows.iter().map(product_row).collect::<Result<Vec<_>>>()?;

        let (mut categories, mut kinds) = (BTreeMap::new(), BTreeMap::new());
        for row in &counts {
            let (dimension, value, count): (&str, String, i64) = (row.get(0), row.get(1), row.get(2));
            let count = uint(count)?;
            if dimension == "kind" {
                kinds.insert(value, count);
            } else {
                categories.insert(value, count);
            }
        }
        // The kind facet applies every filter but the kind, so the total is
        // its count for the kind asked for, or all of it without a kind.
        let total = match kind {
            Some(kind) => kinds.get(kind).copied().unwrap_or(0),
            None => kinds.values().sum(),
        };
        Ok(SearchResult {
            items,
            total,
            page: page.page(),
            limit: page.limit(),
            facets: Facets { categories: facet(categories), kinds: facet(kinds) },
        })
    }

    async fn record_download(&self, id: ProductId, events: &[Event]) -> Result<()> {
        // One UPDATE is atomic on its own; the transaction is for its events.
        let mut tx = self.store.write().await?;
        let done = sqlx::query(RECORD_DOWNLOAD).bind(id.to_string()).execute(&mut *tx).await.map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("product"));
        }
        append(&mut tx, events).await?;
        self.store.commit(tx).await
    }
}

#[async_trait]
impl ReviewRepository for SqliteReviews {
    async fn insert(&self, review: &Review, events: &[Event]) -> Result<()> {
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
    }

    async fn list_for_product(&self, product: ProductId, page: PageRequest) -> Result<Page<Review>> {
        let (limit, offset) = page_bounds(page)?;
        let product = product.to_string();
        let total: i64 =
            sqlx::query_scalar(COUNT_REVIEWS).bind(&product).fetch_one(self.store.pool()).await.map_err(db_err)?;
        let rows = sqlx::query(LIST_REVIEWS)
            .bind(&product)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.store.pool())
            .await
            .map_err(db_err)?;
        let items = rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect::<Result<_>>()?;
        Ok(Page { items, total: uint(total)?, page: page.page(), limit: page.limit() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trigram_sized_terms_reach_the_index_and_quotes_are_escaped() {
        let terms = vec!["ab".to_owned(), "gmail".to_owned(), "a\"b".to_owned()];
        assert_eq!(fts_expression(&terms).as_deref(), Some("\"gmail\" AND \"a\"\"b\""));
        assert_eq!(fts_expression(&["ab".to_owned()]), None);
    }

    /// The search SQL and the `products_by_rating` index write the display
    /// rating as `(15.0 + rating_sum) / (5.0 + rating_count)`.
    #[test]
    fn rating_prior_matches_the_sql() {
        let prior = bazaar_core::catalog::RatingPrior::DEFAULT;
        assert_eq!(prior.weight(), 5);
        assert_eq!(f64::from(prior.weight()) * prior.mean(), 15.0);
        for sql in [TEXT_PAGE, BROWSE_RATING] {
            assert!(sql.contains("(15.0 + ") && sql.contains("(5.0 + "), "{sql}");
        }
        let index = include_str!("../migrations/0003_search_indexes.sql");
        assert!(index.contains("((15.0 + rating_sum) / (5.0 + rating_count))"));
    }
}
