-- Events for other systems (part 2, section 3), API keys and webhooks.

-- This database's identity: a cursor names it, so a cursor from another
-- cluster is refused rather than misread.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every event, in the one global order: `seq` is given at commit, and
-- every transaction that inserts events first locks event_feed's row, so a reader paging
-- by `seq` never skips an event that commits late.
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    conversation_id TEXT,
    agent_id TEXT,
    queue_id TEXT,
    customer_id TEXT,
    data TEXT NOT NULL,              -- JSON: the type's own fields
    -- `message.created` written beside its message (embedded): the
    -- message's `seq`, and `data` is `{}`; the feed reads the message from
    -- `messages` (erasure scrubs it there) and the customer from
    -- `conversations`. NULL for every other event.
    message_seq BIGINT
);
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_at ON events (at_ms);
CREATE INDEX events_by_customer ON events (customer_id) WHERE customer_id IS NOT NULL;

-- Where a cluster's outbox (a Redis stream) has been copied up to, and by
-- which lease (`epoch`): a node whose lease lapsed cannot commit after
-- its successor. Unused by an embedded node.
CREATE TABLE event_feed (
    name TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    epoch BIGINT NOT NULL
);
INSERT INTO event_feed (name, position, epoch) VALUES ('outbox', '0-0', 0);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,            -- space-separated
    hash TEXT NOT NULL,              -- hex SHA-256 of the key's secret part
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    types TEXT NOT NULL,             -- space-separated; empty: every type
    secret TEXT NOT NULL,            -- signs deliveries, so kept as given
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    cursor BIGINT NOT NULL,          -- the last event acknowledged
    failures BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT
);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    status BIGINT,
    delivered BIGINT NOT NULL,
    events BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
