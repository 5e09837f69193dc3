-- Reports (part 2, section 4): the event stream projected into 15-minute
-- buckets per queue and per agent. A bucket's totals are JSON (sums and
-- counts, see engine/src/reports/totals.rs), so a new column of a report
-- needs no migration. Keyed by bucket first: a report reads a range of
-- buckets, for one subject or for all.
CREATE TABLE report_queue_buckets (
    bucket_ms BIGINT NOT NULL,
    queue_id TEXT NOT NULL,
    totals TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, queue_id)
);

CREATE TABLE report_agent_buckets (
    bucket_ms BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    totals TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, agent_id)
);

-- Where the projection stands: the last event folded in (seq), what it
-- remembers between events (agents' clocks), and a version that each
-- save moves on, so two nodes projecting at once cannot both commit the
-- same step.
CREATE TABLE report_projection (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL
);

INSERT INTO report_projection (id, seq, state, version) VALUES (1, 0, '{}', 0);
