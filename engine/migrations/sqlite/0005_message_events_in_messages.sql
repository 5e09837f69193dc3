-- An embedded node's `message.created` is its message's row, not a row of
-- `events` as well: a message's commit writes no page of `events`
-- (docs/benchmarks.md, events). The writer gives `events.seq` and these
-- rows' `rowid` from one counter, in the order of the changes, so the
-- feed reads both tables in one order (events::feed). `event_id` is NULL
-- for a message whose event is a row of `events` (written before this, or
-- by a cluster's copier); erasure moves its event into `events` as a
-- reference, at the same `seq`, before the message goes.
ALTER TABLE messages ADD COLUMN event_id TEXT;
ALTER TABLE messages ADD COLUMN event_queue_id TEXT;
ALTER TABLE messages ADD COLUMN event_agent_id TEXT;
