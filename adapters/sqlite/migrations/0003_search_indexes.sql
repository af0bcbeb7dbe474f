-- Indexes that let a search without text stop after one page: each sort
-- order reads an index already in that order (ties broken by created_at
-- desc, id desc, as the reference search does), so `LIMIT` ends the scan
-- instead of sorting every match. The kind index also covers the price
-- bounds, so the facet counts never read the product rows.
DROP INDEX products_by_price;
DROP INDEX products_by_downloads;
DROP INDEX products_by_kind;
CREATE INDEX products_by_price ON products (status, price_minor, created_at DESC, id DESC);
CREATE INDEX products_by_price_desc ON products (status, price_minor DESC, created_at DESC, id DESC);
CREATE INDEX products_by_downloads ON products (status, downloads DESC, created_at DESC, id DESC);
CREATE INDEX products_by_kind ON products (status, kind, price_minor);
-- The display rating with `RatingPrior::DEFAULT` (C·m = 15, C = 5); the
-- browse query's ORDER BY uses the very same expression, so the planner
-- matches it to this index.
CREATE INDEX products_by_rating
    ON products (status, ((15.0 + rating_sum) / (5.0 + rating_count)) DESC, created_at DESC, id DESC);
-- Approved products in rowid order, for a text search that has to look at
-- every one (terms too short for the trigram index): the FTS rows and the
-- product rows are then read in storage order, not in a sort order's.
CREATE INDEX products_by_status ON products (status);
