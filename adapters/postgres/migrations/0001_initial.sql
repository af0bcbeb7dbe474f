-- Bazaar's PostgreSQL schema.
--
-- Each aggregate row keeps the full aggregate as JSON in `doc` (one serde
-- round trip, so nothing is lost between the core's types and the store)
-- plus real columns for everything a query filters, sorts or constrains on.
-- `doc` is `text`, not `jsonb`: no query looks inside it, and `jsonb` would
-- only add a parse on every write and a re-render on every read.
-- Timestamps are BIGINT nanoseconds since the Unix epoch: `timestamptz`
-- keeps microseconds only, and the core's timestamps must round-trip exactly.
-- Ids are hyphenated lower-case UUID text, whose text order is UUID order
-- (under the C collation used for every id column).

-- Substring search (the catalog's text rule) is served by trigram indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE outbox (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    occurred_at    BIGINT  NOT NULL,
    envelope       TEXT    NOT NULL,
    published      BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_until  BIGINT
);
-- The relay only ever looks at unpublished rows, in seq order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE NOT published;

CREATE TABLE users (
    id    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    doc   TEXT NOT NULL
);

CREATE TABLE products (
    pk           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT    COLLATE "C" NOT NULL UNIQUE,
    vendor_id    TEXT    COLLATE "C" NOT NULL,
    status       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    price_minor  BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    version      BIGINT  NOT NULL,
    downloads    BIGINT  NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    rating_sum   BIGINT  NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_count BIGINT  NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    -- Lower-cased by Rust (`str::to_lowercase`, as the reference search
    -- does); tags newline-separated so no term matches across two tags.
    search_title       TEXT COLLATE "C" NOT NULL,
    search_tags        TEXT COLLATE "C" NOT NULL,
    search_description TEXT COLLATE "C" NOT NULL,
    -- Weighted full-text vector (title A > tags B > description C) for
    -- word-level search and ranking; the exact substring rule of the core
    -- is decided on the columns above (see src/catalog.rs).
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', search_title), 'A')
        || setweight(to_tsvector('simple', search_tags), 'B')
        || setweight(to_tsvector('simple', search_description), 'C')
    ) STORED,
    doc          TEXT    NOT NULL
);
CREATE INDEX products_by_vendor ON products (vendor_id, created_at DESC, id DESC);
CREATE INDEX products_newest ON products (status, created_at DESC, id DESC);
CREATE INDEX products_by_kind ON products (status, kind);
CREATE INDEX products_by_price ON products (status, price_minor);
CREATE INDEX products_by_downloads ON products (status, downloads DESC);
CREATE INDEX products_search_vector ON products USING GIN (search_vector);
-- Every term must be a substring of one of the three fields, so it is a
-- substring of their concatenation: a trigram LIKE on this expression
-- narrows the candidates through the index before the exact check.
CREATE INDEX products_search_trgm ON products
    USING GIN ((search_title || E'\n' || search_tags || E'\n' || search_description) gin_trgm_ops)
    WHERE status = 'approved';

CREATE TABLE product_categories (
    product_pk BIGINT NOT NULL REFERENCES products (pk) ON DELETE CASCADE,
    category   TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (product_pk, category)
);
CREATE INDEX product_categories_by_category ON product_categories (category, product_pk);

CREATE TABLE reviews (
    id         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    product_id TEXT   COLLATE "C" NOT NULL REFERENCES products (id),
    buyer_id   TEXT   COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    doc        TEXT   NOT NULL,
    CONSTRAINT reviews_one_per_buyer UNIQUE (buyer_id, product_id)
);
CREATE INDEX reviews_by_product ON reviews (product_id, created_at DESC, id DESC);

CREATE TABLE orders (
    id         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    buyer_id   TEXT   COLLATE "C" NOT NULL,
    status     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    doc        TEXT   NOT NULL
);
CREATE INDEX orders_by_buyer ON orders (buyer_id, created_at DESC, id DESC);

CREATE TABLE payment_intents (
    id           TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    order_id     TEXT   COLLATE "C" NOT NULL CONSTRAINT payment_intents_one_per_order UNIQUE,
    provider     TEXT   NOT NULL,
    provider_ref TEXT,
    version      BIGINT NOT NULL,
    doc          TEXT   NOT NULL
);
CREATE INDEX payment_intents_by_provider_ref ON payment_intents (provider, provider_ref);

CREATE TABLE webhook_inbox (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE idempotency_keys (
    scope        TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    response     TEXT,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE licenses (
    pk         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   COLLATE "C" NOT NULL UNIQUE,
    key        TEXT   NOT NULL UNIQUE,
    buyer_id   TEXT   COLLATE "C" NOT NULL,
    product_id TEXT   COLLATE "C" NOT NULL,
    order_id   TEXT   COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    doc        TEXT   NOT NULL,
    -- Exactly one license per order line.
    CONSTRAINT licenses_one_per_order_line UNIQUE (order_id, product_id)
);
CREATE INDEX licenses_by_buyer ON licenses (buyer_id, pk);

CREATE TABLE assets (
    id         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    product_id TEXT   COLLATE "C" NOT NULL,
    file_name  TEXT   COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    doc        TEXT   NOT NULL,
    CONSTRAINT assets_one_per_version UNIQUE (product_id, file_name, version)
);

CREATE TABLE event_inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE dead_letters (
    id        TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    consumer  TEXT   NOT NULL,
    event_id  TEXT   NOT NULL,
    failed_at BIGINT NOT NULL,
    doc       TEXT   NOT NULL,
    UNIQUE (consumer, event_id)
);
CREATE INDEX dead_letters_oldest ON dead_letters (failed_at, id);

CREATE TABLE notifications (
    id         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    dedup_key  TEXT   NOT NULL UNIQUE,
    user_id    TEXT   COLLATE "C" NOT NULL,
    order_id   TEXT   COLLATE "C",
    created_at BIGINT NOT NULL,
    doc        TEXT   NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_by_order ON notifications (order_id, created_at, id) WHERE order_id IS NOT NULL;

CREATE TABLE notification_preferences (
    user_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    doc     TEXT NOT NULL
);
