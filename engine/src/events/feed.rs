//! The global order of events and reading it: a cursor is the database's
//! `seq` of an event (given at commit, one committer at a time, so `seq`
//! order is commit order) and the id of the database that gave it, so a
//! cursor from another cluster is refused instead of misread.
//!
//! A reader waits for the next event on an [`EventSignal`], which the
//! writer raises after each commit with events (and, in a cluster, a
//! PostgreSQL `NOTIFY` from the node that moved them in).

use base64::Engine as _;
use sqlx::Row;
use std::time::Duration;
use switchboard_proto::feed::{EventPage, EventType};
use switchboard_proto::{AgentId, ConversationId, CustomerId, QueueId, Timestamp};
use tokio::sync::watch;

use super::DomainEvent;
use crate::error::EngineError;
use crate::storage::change::SQLITE_NEWEST_SEQ;
use crate::storage::{Database, Dialect, StorageError};
use crate::Engine;

/// Most events on one page.
pub const MAX_EVENTS_PAGE: usize = 1000;
pub const DEFAULT_EVENTS_PAGE: usize = 100;
/// Longest long-poll, in seconds.
pub const MAX_WAIT_S: u64 = 30;

/// Raised when events were committed: readers waiting for the next event
/// look again.
#[derive(Clone)]
pub struct EventSignal(std::sync::Arc<watch::Sender<u64>>);

impl Default for EventSignal {
    fn default() -> Self {
        Self(std::sync::Arc::new(watch::channel(0).0))
    }
}

impl EventSignal {
    pub fn raise(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Where a reader is: after the event `seq` of the database `feed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCursor {
    pub feed: String,
    pub seq: i64,
}

impl FeedCursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("e1.{}.{}", self.feed, self.seq))
    }

    /// `None` for anything [`encode`](Self::encode) did not make.
    pub fn decode(text: &str) -> Option<FeedCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let rest = text.strip_prefix("e1.")?;
        let (feed, seq) = rest.rsplit_once('.')?;
        let seq: i64 = seq.parse().ok()?;
        if feed.is_empty() || seq < 0 {
            return None;
        }
        Some(FeedCursor {
            feed: feed.to_owned(),
            seq,
        })
    }
}

/// Events read, and how far the read looked: every event up to
/// `scanned_to` that is not in `events` did not pass the filter, so the
/// next read starts there.
#[derive(Debug, Default)]
pub struct EventsRead {
    pub events: Vec<(i64, DomainEvent)>,
    pub scanned_to: i64,
}

/// Events looked at per query of a filtered read: a window of `seq`s, so
/// a rare type costs a bounded scan per query, never a scan of the table
/// at once (there is no index by type: it was a page per commit).
const SCAN_WINDOW: i64 = 10_000;

impl Database {
    /// Events after `seq`, oldest first, of `types` only (all when empty),
    /// at most `limit`. Scans `seq` windows up to the newest event (read
    /// first: every event up to it is committed, since events commit in
    /// `seq` order) until it has `limit` of them; one query per window, and
    /// one more to jump a gap after a window that found nothing.
    pub async fn events_after(
        &self,
        seq: i64,
        types: &[EventType],
        limit: usize,
    ) -> Result<EventsRead, StorageError> {
        let dialect = self.dialect();
        // A `message.created` stored as a reference (`message_seq`) gets
        // its message from `messages` and its customer from `conversations`.
        let mut sql = String::from(
            "SELECT e.seq, e.id, e.type, e.at_ms, e.conversation_id, e.agent_id, e.queue_id, \
               COALESCE(e.customer_id, c.customer_id) AS customer_id, e.data, e.message_seq, \
               m.message \
             FROM events e \
             LEFT JOIN messages m ON e.message_seq IS NOT NULL \
               AND m.conversation_id = e.conversation_id AND m.seq = e.message_seq \
             LEFT JOIN conversations c ON e.message_seq IS NOT NULL AND c.id = e.conversation_id \
             WHERE e.seq > $1 AND e.seq <= $2",
        );
        if !types.is_empty() {
            let places: Vec<String> = (0..types.len()).map(|i| format!("${}", i + 4)).collect();
            sql.push_str(&format!(" AND e.type IN ({})", places.join(", ")));
        }
        // SQLite: a message written with its event is that event (its
        // `rowid` the `seq`; storage::change::SQLITE_INSERT_MESSAGE).
        if dialect == Dialect::Sqlite
            && (types.is_empty() || types.contains(&EventType::MessageCreated))
        {
            sql.push_str(
                " UNION ALL \
                 SELECT m.rowid, m.event_id, 'message.created', m.at_ms, m.conversation_id, \
                   m.event_agent_id, m.event_queue_id, c.customer_id, '{}', m.seq, m.message \
                 FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.rowid > $1 AND m.rowid <= $2 AND m.event_id IS NOT NULL",
            );
        }
        sql.push_str(" ORDER BY 1 LIMIT $3");
        let (newest_sql, first_sql) = match dialect {
            Dialect::Sqlite => (SQLITE_NEWEST_SEQ, SQLITE_FIRST_AFTER),
            Dialect::Postgres => (NEWEST, FIRST_AFTER),
        };
        let types: Vec<&'static str> = types.iter().map(|kind| kind.as_str()).collect();
        let pool = self.pool().clone();
        self.run(async move {
            let newest: i64 = sqlx::query(newest_sql).fetch_one(&pool).await?.try_get(0)?;
            let mut read = EventsRead {
                events: Vec::new(),
                scanned_to: seq,
            };
            while read.events.len() < limit && read.scanned_to < newest {
                let upto = read.scanned_to.saturating_add(SCAN_WINDOW).min(newest);
                let wanted = i64::try_from(limit - read.events.len()).unwrap_or(i64::MAX);
                let mut query = sqlx::query(&sql)
                    .bind(read.scanned_to)
                    .bind(upto)
                    .bind(wanted);
                for kind in &types {
                    query = query.bind(*kind);
                }
                let rows = query.fetch_all(&pool).await?;
                for row in &rows {
                    read.events.push(event_of(row)?);
                }
                read.scanned_to = if read.events.len() >= limit {
                    read.events.last().map_or(upto, |(seq, _)| *seq)
                } else {
                    upto
                };
                if rows.is_empty() && read.scanned_to < newest {
                    // Past a gap (retention) at once: nothing is kept
                    // before the first `seq` after this window.
                    let first: Option<i64> = sqlx::query(first_sql)
                        .bind(read.scanned_to)
                        .fetch_one(&pool)
                        .await?
                        .try_get(0)?;
                    let before_first = first.map_or(newest, |first| first.saturating_sub(1));
                    read.scanned_to = read.scanned_to.max(before_first.min(newest));
                }
            }
            Ok(read)
        })
        .await
    }

    /// The newest event's `seq` (0 when there is none).
    pub async fn newest_event(&self) -> Result<i64, StorageError> {
        let pool = self.pool().clone();
        let sql = match self.dialect() {
            Dialect::Sqlite => SQLITE_NEWEST_SEQ,
            Dialect::Postgres => NEWEST,
        };
        self.run(async move {
            let row = sqlx::query(sql).fetch_one(&pool).await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
        .await
    }
}

/// The newest `seq` given, and the first one after `$1`. SQLite's give
/// `messages` rows `seq`s too (a `rowid` is below the newest event's only
/// if it was committed before it); a message with no `event_id` is not an
/// event, but whatever it holds is committed, and a window over it is
/// simply empty.
const NEWEST: &str = "SELECT COALESCE(MAX(seq), 0) FROM events";
const FIRST_AFTER: &str = "SELECT MIN(seq) FROM events WHERE seq > $1";
const SQLITE_FIRST_AFTER: &str =
    "SELECT min(COALESCE((SELECT MIN(seq) FROM events WHERE seq > $1), \
     9223372036854775807), COALESCE((SELECT MIN(rowid) FROM messages WHERE rowid > $1), \
     9223372036854775807))";

/// An event from its row.
fn event_of(row: &sqlx::any::AnyRow) -> Result<(i64, DomainEvent), StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("event row: {what}"));
    let kind: String = row.try_get("type")?;
    let data: String = row.try_get("data")?;
    let text = |name: &str| row.try_get::<Option<String>, _>(name);
    let event = DomainEvent {
        id: row.try_get("id")?,
        kind: EventType::parse(&kind).ok_or_else(|| corrupt(&format!("type {kind:?}")))?,
        at: Timestamp(row.try_get("at_ms")?),
        conversation_id: text("conversation_id")?.map(ConversationId::new),
        agent_id: text("agent_id")?.map(AgentId::new),
        queue_id: text("queue_id")?.map(QueueId::new),
        customer_id: text("customer_id")?.map(CustomerId::new),
        data: match (
            row.try_get::<Option<i64>, _>("message_seq")?,
            row.try_get::<Option<String>, _>("message")?,
        ) {
            // Stored as a reference: the message as `messages` has it now.
            (Some(_), Some(message)) => serde_json::json!({
                "message": serde_json::from_str::<serde_json::Value>(&message)
                    .map_err(|_| corrupt("message is not JSON"))?
            }),
            // Its message is gone: erasure deletes a customer's messages.
            (Some(_), None) => serde_json::json!({"erased": true}),
            (None, _) => serde_json::from_str(&data).map_err(|_| corrupt("data is not JSON"))?,
        },
    };
    Ok((row.try_get("seq")?, event))
}

/// `GET /api/v1/events` as asked.
#[derive(Debug, Default, Clone)]
pub struct EventsQuery {
    pub after: Option<String>,
    /// Comma-separated type names.
    pub types: Option<String>,
    pub limit: Option<usize>,
    pub wait_s: Option<u64>,
}

/// The type names of a `types=a,b` filter, or why it is refused.
pub fn parse_types(text: Option<&str>) -> Result<Vec<EventType>, EngineError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            EventType::parse(name).ok_or_else(|| {
                EngineError::BadRequest(format!("types: {name:?} is not an event type"))
            })
        })
        .collect()
}

impl Engine {
    /// Where `after` points, checked: this database's, well formed.
    pub fn event_cursor(&self, after: Option<&str>) -> Result<FeedCursor, EngineError> {
        let feed = self.database().feed_id().to_owned();
        let Some(text) = after else {
            return Ok(FeedCursor { feed, seq: 0 });
        };
        let cursor = FeedCursor::decode(text).ok_or_else(|| {
            EngineError::BadRequest(
                "after: not a cursor this server gave; start again without it".into(),
            )
        })?;
        if cursor.feed != feed {
            return Err(EngineError::BadRequest(
                "after: a cursor of another Switchboard database; start again without it".into(),
            ));
        }
        Ok(cursor)
    }

    /// One page of events after the cursor; with `wait_s`, waits up to
    /// that long for the first one when none is newer.
    pub async fn events(&self, query: EventsQuery) -> Result<EventPage, EngineError> {
        let limit = query.limit.unwrap_or(DEFAULT_EVENTS_PAGE);
        if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
            return Err(EngineError::BadRequest(format!(
                "limit: from 1 to {MAX_EVENTS_PAGE}"
            )));
        }
        let wait_s = query.wait_s.unwrap_or(0);
        if wait_s > MAX_WAIT_S {
            return Err(EngineError::BadRequest(format!(
                "wait_s: from 0 to {MAX_WAIT_S}"
            )));
        }
        let types = parse_types(query.types.as_deref())?;
        let cursor = self.event_cursor(query.after.as_deref())?;
        let database = self.database();
        let mut signal = database.event_signal().subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_s);
        // Where the next look starts: a filtered read moves past events it
        // scanned and left out, and never reads them twice.
        let mut from = cursor.seq;
        loop {
            let read = database.events_after(from, &types, limit).await?;
            from = read.scanned_to;
            let now = tokio::time::Instant::now();
            if !read.events.is_empty() || now >= deadline {
                let cursor_at = |seq: i64| {
                    FeedCursor {
                        feed: cursor.feed.clone(),
                        seq,
                    }
                    .encode()
                };
                let events = read
                    .events
                    .iter()
                    .map(|(seq, event)| event.to_wire(cursor_at(*seq)))
                    .collect();
                return Ok(EventPage {
                    events,
                    next_cursor: cursor_at(read.scanned_to),
                });
            }
            // Woken by a commit here or a NOTIFY from another node; at
            // least once a second, should a notification be lost.
            let nap = (deadline - now).min(Duration::from_secs(1));
            let _ = tokio::time::timeout(nap, signal.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_refuses_what_it_did_not_make() {
        let cursor = FeedCursor {
            feed: "0192-ab".into(),
            seq: 42,
        };
        assert_eq!(FeedCursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "nope", "ZTEuYS4tMQ", "ZTEuLjQy", "%%%"] {
            assert_eq!(FeedCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_event_types_are_refused_by_name() {
        assert_eq!(
            parse_types(Some("message.created, conversation.closed")).unwrap(),
            vec![EventType::MessageCreated, EventType::ConversationClosed]
        );
        let refused = parse_types(Some("message.created,nope")).unwrap_err();
        assert!(refused.to_string().contains("nope"), "{refused}");
    }
}
