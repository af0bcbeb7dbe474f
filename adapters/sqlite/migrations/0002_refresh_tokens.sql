-- Refresh-token families (one per login) and their tokens, for rotation
-- with reuse detection. Only SHA-256 hashes of tokens are stored.

-- Revocation is a mark on the family, not on each token, so it also covers
-- a successor that a racing rotation stored.
CREATE TABLE refresh_sessions (
    id      TEXT    NOT NULL PRIMARY KEY,
    user_id TEXT    NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) STRICT, WITHOUT ROWID;

-- Every token ever issued, spent ones included: a spent token must stay
-- recognisable for its reuse to be detected. Looked up by hash only.
CREATE TABLE refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES refresh_sessions (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    spent_at   INTEGER
) STRICT, WITHOUT ROWID;
-- Serves the foreign key: deleting (purging) a family finds its tokens
-- without a scan.
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
