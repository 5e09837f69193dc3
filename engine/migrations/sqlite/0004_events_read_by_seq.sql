-- A filtered read of the events scans them in `seq` order, a window at a
-- time, and its cursor moves past what it scanned (events::feed), so no
-- index by type is needed: it cost a page written per type per commit.
DROP INDEX events_by_type;
