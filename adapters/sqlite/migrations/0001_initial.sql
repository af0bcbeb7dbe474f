-- Bazaar's embedded schema.
--
-- Each aggregate row keeps the full aggregate as JSON in `doc` (one serde
-- round trip, so nothing is lost between the core's types and the store)
-- plus real columns for everything a query filters, sorts or constrains on.
-- Those columns are written from the same value in the same statement.
-- Timestamps are INTEGER nanoseconds since the Unix epoch (exact, sortable);
-- ids are hyphenated lower-case UUID text, whose text order is UUID order.

CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    envelope       TEXT    NOT NULL,
    published      INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    claimed_until  INTEGER
) STRICT;
-- The relay only ever looks at unpublished rows, in seq order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published = 0;

CREATE TABLE users (
    id    TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    doc   TEXT NOT NULL
) STRICT;

CREATE TABLE products (
    pk           INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    vendor_id    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    price_minor  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    downloads    INTEGER NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    rating_sum   INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    doc          TEXT    NOT NULL
) STRICT;
CREATE INDEX products_by_vendor ON products (vendor_id, created_at DESC, id DESC);
CREATE INDEX products_newest ON products (status, created_at DESC, id DESC);
CREATE INDEX products_by_kind ON products (status, kind);
CREATE INDEX products_by_price ON products (status, price_minor);
CREATE INDEX products_by_downloads ON products (status, downloads DESC);

CREATE TABLE product_categories (
    product_pk INTEGER NOT NULL REFERENCES products (pk) ON DELETE CASCADE,
    category   TEXT    NOT NULL,
    PRIMARY KEY (product_pk, category)
) STRICT, WITHOUT ROWID;
CREATE INDEX product_categories_by_category ON product_categories (category, product_pk);

-- Lower-cased (by Rust, as the reference search does) searchable text.
-- Trigram tokens give substring matching, which is what the search
-- semantics ask for; rowid = products.pk.
CREATE VIRTUAL TABLE products_fts USING fts5 (
    title, tags, description,
    tokenize = 'trigram case_sensitive 1'
);

CREATE TABLE reviews (
    id         TEXT    NOT NULL PRIMARY KEY,
    product_id TEXT    NOT NULL REFERENCES products (id),
    buyer_id   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL,
    UNIQUE (buyer_id, product_id)
) STRICT;
CREATE INDEX reviews_by_product ON reviews (product_id, created_at DESC, id DESC);

CREATE TABLE orders (
    id         TEXT    NOT NULL PRIMARY KEY,
    buyer_id   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL
) STRICT;
CREATE INDEX orders_by_buyer ON orders (buyer_id, created_at DESC, id DESC);

CREATE TABLE payment_intents (
    id           TEXT    NOT NULL PRIMARY KEY,
    order_id     TEXT    NOT NULL UNIQUE,
    provider     TEXT    NOT NULL,
    provider_ref TEXT,
    version      INTEGER NOT NULL,
    doc          TEXT    NOT NULL
) STRICT;
CREATE INDEX payment_intents_by_provider_ref ON payment_intents (provider, provider_ref);

CREATE TABLE webhook_inbox (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    response     TEXT,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE licenses (
    pk         INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    key        TEXT    NOT NULL UNIQUE,
    buyer_id   TEXT    NOT NULL,
    product_id TEXT    NOT NULL,
    order_id   TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT    NOT NULL,
    -- Exactly one license per order line.
    UNIQUE (order_id, product_id)
) STRICT;
CREATE INDEX licenses_by_buyer ON licenses (buyer_id, pk);

CREATE TABLE assets (
    id         TEXT    NOT NULL PRIMARY KEY,
    product_id TEXT    NOT NULL,
    file_name  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT    NOT NULL,
    UNIQUE (product_id, file_name, version)
) STRICT;

CREATE TABLE event_inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE dead_letters (
    id        TEXT    NOT NULL PRIMARY KEY,
    consumer  TEXT    NOT NULL,
    event_id  TEXT    NOT NULL,
    failed_at INTEGER NOT NULL,
    doc       TEXT    NOT NULL,
    UNIQUE (consumer, event_id)
) STRICT;
CREATE INDEX dead_letters_oldest ON dead_letters (failed_at, id);

CREATE TABLE notifications (
    id         TEXT    NOT NULL PRIMARY KEY,
    dedup_key  TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    order_id   TEXT,
    created_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL
) STRICT;
CREATE INDEX notifications_by_user ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_by_order ON notifications (order_id, created_at, id) WHERE order_id IS NOT NULL;

CREATE TABLE notification_preferences (
    user_id TEXT NOT NULL PRIMARY KEY,
    doc     TEXT NOT NULL
) STRICT;
