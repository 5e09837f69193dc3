-- The system of record (conversations, their messages, customers) and, for
-- an embedded node, the live state the actors need after a restart
-- (snapshots, presence, logouts, queue indexes). Times are unix ms.

CREATE TABLE actor_state (
    actor TEXT PRIMARY KEY,          -- `kind:id`, as in a cluster's keys
    snapshot BLOB NOT NULL           -- MessagePack, the actor's own encoding
);

CREATE TABLE presence (
    agent_id TEXT PRIMARY KEY,
    view BLOB NOT NULL
);

CREATE TABLE logouts (
    agent_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);

CREATE TABLE waiting (
    queue_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (queue_id, conversation_id)
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_accepted_ms INTEGER,
    ended_ms INTEGER,
    closed_ms INTEGER,
    agents TEXT NOT NULL,            -- ` a b `: every agent with a leg, first joined first
    wrap_ups TEXT NOT NULL,          -- ` reason reason `: one space around each id
    message_count INTEGER NOT NULL,
    record TEXT NOT NULL             -- the record as JSON, without its messages
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
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    message TEXT NOT NULL,           -- JSON, as on the wire
    words TEXT NOT NULL,             -- customer and agent words, as the engine cuts them
    indexed INTEGER NOT NULL DEFAULT 0,  -- 1 once its words are in message_words
    PRIMARY KEY (conversation_id, seq)
);
-- What the search index has yet to take (a few rows at any time).
CREATE INDEX messages_to_index ON messages (indexed) WHERE indexed = 0;

-- Full-text search (`q`): the words of each customer or agent message,
-- as the engine cuts them (the same on PostgreSQL), under the message's
-- rowid. Filled by the writer in batches (at most a second behind, and
-- before every search), not in each message's own commit: FTS5 writes a
-- new index segment per transaction.
CREATE VIRTUAL TABLE message_words USING fts5(
    text,
    conversation_id UNINDEXED,
    seq UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 0'
);
