-- The system of record (conversations, their messages, customers). In a
-- cluster the live state stays in Redis; the live tables exist here too so
-- both databases have one schema. Times are unix ms.

CREATE TABLE actor_state (
    actor TEXT PRIMARY KEY,
    snapshot BYTEA NOT NULL
);

CREATE TABLE presence (
    agent_id TEXT PRIMARY KEY,
    view BYTEA NOT NULL
);

CREATE TABLE logouts (
    agent_id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL
);

CREATE TABLE waiting (
    queue_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, conversation_id)
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    first_accepted_ms BIGINT,
    ended_ms BIGINT,
    closed_ms BIGINT,
    agents TEXT NOT NULL,            -- ` a b `: every agent with a leg, first joined first
    wrap_ups TEXT NOT NULL,
    message_count BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX conversations_by_created ON conversations (created_ms DESC, id DESC);
CREATE INDEX conversations_by_queue ON conversations (queue_id, created_ms DESC);
-- The few live ones, among a year of finished ones (cluster recovery).
CREATE INDEX conversations_live ON conversations (created_ms)
    WHERE state NOT IN ('closed', 'abandoned');

CREATE TABLE conversation_agents (
    conversation_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);
CREATE INDEX conversation_agents_by_conversation ON conversation_agents (conversation_id);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    message TEXT NOT NULL,
    words TEXT NOT NULL,             -- customer and agent words, as the engine cuts them
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', words)) STORED,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX messages_search ON messages USING GIN (search);
