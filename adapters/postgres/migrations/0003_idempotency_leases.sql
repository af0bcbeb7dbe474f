-- Idempotency keys carry the token of the request holding them and a lease:
-- a request that dies holding a key frees it when the lease ends, and a
-- retry takes it over. Keys in flight before this migration get an empty
-- token and a lease already over, so a retry frees them at once.
ALTER TABLE idempotency_keys ADD COLUMN token TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
