-- Customers: one row per verified customer (by the web site's own id,
-- `external_id`) and one per anonymous chat. Erasure deletes the row.
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    external_id TEXT UNIQUE,
    name TEXT NOT NULL,
    email TEXT,
    verified INTEGER NOT NULL,       -- 1: linked by a signed identity
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);

ALTER TABLE conversations ADD COLUMN customer_id TEXT;
CREATE INDEX conversations_by_customer ON conversations (customer_id, created_ms DESC);
