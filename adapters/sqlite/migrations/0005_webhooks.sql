-- Vendors' webhook endpoints and the deliveries queued for them.

-- An endpoint is an aggregate like the others: its JSON in `doc` (URL,
-- events, signing secrets, timestamps), its owner as a real column.
-- Ids are UUID v7 text, so id order is registration order.
CREATE TABLE webhook_endpoints (
    id        TEXT NOT NULL PRIMARY KEY,
    vendor_id TEXT NOT NULL,
    doc       TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_by_vendor ON webhook_endpoints (vendor_id, id);

-- A delivery is a queue entry whose state changes on every attempt, so
-- every field is a real column (no `doc`): a claim or an outcome is a plain
-- UPDATE. The queue of an endpoint is its deliveries in id order (UUID v7:
-- queue order). Deleting an endpoint deletes its deliveries.
CREATE TABLE webhook_deliveries (
    id              TEXT    NOT NULL PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    vendor_id       TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    traceparent     TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    -- Pending: when it may next be attempted, or the lease of the worker
    -- attempting it.
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    -- One delivery per endpoint, event and type: a redelivered event queues
    -- nothing new. Also serves the foreign key (an endpoint's deliveries).
    UNIQUE (endpoint_id, event_id, event_type)
) STRICT;
-- The claim: pending deliveries that are due...
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- ...with no earlier pending one of their endpoint waiting; also an
-- endpoint's deliveries of one status, newest first.
CREATE INDEX webhook_deliveries_by_endpoint_status ON webhook_deliveries (endpoint_id, status, id);
-- An endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
