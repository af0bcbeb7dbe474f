-- Refresh-token families (one per login) and their tokens, for rotation
-- with reuse detection. Only SHA-256 hashes of tokens are stored.

-- Revocation is a mark on the family, not on each token, so it also covers
-- a successor that a racing rotation stored. A rotation locks its family's
-- row (`SELECT … FOR UPDATE`), which serialises rotations and revocations
-- within one family and nothing else.
CREATE TABLE refresh_sessions (
    id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);

-- Every token ever issued, spent ones included: a spent token must stay
-- recognisable for its reuse to be detected. Looked up by hash only.
CREATE TABLE refresh_tokens (
    hash       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL REFERENCES refresh_sessions (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at   BIGINT
);
-- Serves the foreign key: deleting (purging) a family finds its tokens
-- without a scan.
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
