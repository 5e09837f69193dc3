//! What the database is asked to store ([`Change`]) and the SQL that stores
//! it, written once as [`Statement`]s: the SQL text and its values. Both
//! writers run the same statements, SQLite's synchronously on the writer's
//! thread, sqlx's (PostgreSQL) asynchronously; only messages, most of what a
//! busy node writes, are stored by each writer its own way ([`MessageRow`]).

use std::borrow::Cow;
use std::sync::Arc;
use switchboard_proto::model::{Message, Role};

use super::records::{RecordRow, SearchFilter};
use crate::events::DomainEvent;

/// One thing to store. A write is a list of them, applied in order, whole.
#[derive(Debug, Clone)]
pub enum Change {
    /// An actor's snapshot (`kind:id`): `Some` keeps it, `None` deletes it.
    Snapshot {
        actor: String,
        bytes: Option<Vec<u8>>,
    },
    /// An actor's first snapshot, unless it has one.
    CreateSnapshot { actor: String, bytes: Vec<u8> },
    /// A logged-in agent's directory row; `None` when it logs out.
    Presence {
        agent: String,
        view: Option<Vec<u8>>,
    },
    /// When the agent last logged out (tokens issued before it are refused).
    Logout { agent: String, at_ms: i64 },
    /// A conversation's place in a queue's index; `None` once it left.
    Waiting {
        queue: String,
        conversation: String,
        since_ms: Option<i64>,
    },
    /// The conversation's record as it stands (its messages apart).
    Record(Box<RecordRow>),
    /// A message of a conversation's log and transcript. Stored once: a
    /// second write of the same `seq` changes nothing.
    Message(Arc<Message>),
    /// An event for other systems: its `seq` (the cursor) is given as it
    /// commits. Stored once: a second write of the same id changes nothing.
    Event(Arc<DomainEvent>),
}

/// A value bound to a statement's `$n`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Blob(&'a [u8]),
}

impl<'a> Value<'a> {
    pub(crate) fn text(text: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(text)))
    }
}

/// One SQL statement with its values, `$1` first. Each `$n` appears first
/// in the text in the order of the values (SQLite numbers them so).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement<'a> {
    pub sql: &'static str,
    pub values: Vec<Value<'a>>,
}

fn statement<'a>(sql: &'static str, values: Vec<Value<'a>>) -> Statement<'a> {
    Statement { sql, values }
}

impl Change {
    /// The statements that apply this change; none for a message, which
    /// its writer stores with the others of its batch ([`MessageRow`]).
    pub(crate) fn statements(&self) -> Vec<Statement<'_>> {
        use Value::{Blob, Int};
        match self {
            Change::Snapshot {
                actor,
                bytes: Some(bytes),
            } => vec![statement(
                "INSERT INTO actor_state (actor, snapshot) VALUES ($1, $2) \
                 ON CONFLICT (actor) DO UPDATE SET snapshot = excluded.snapshot",
                vec![Value::text(actor), Blob(bytes)],
            )],
            Change::Snapshot { actor, bytes: None } => vec![statement(
                "DELETE FROM actor_state WHERE actor = $1",
                vec![Value::text(actor)],
            )],
            Change::CreateSnapshot { actor, bytes } => vec![statement(
                "INSERT INTO actor_state (actor, snapshot) VALUES ($1, $2) \
                 ON CONFLICT (actor) DO NOTHING",
                vec![Value::text(actor), Blob(bytes)],
            )],
            Change::Presence {
                agent,
                view: Some(view),
            } => vec![statement(
                "INSERT INTO presence (agent_id, view) VALUES ($1, $2) \
                 ON CONFLICT (agent_id) DO UPDATE SET view = excluded.view",
                vec![Value::text(agent), Blob(view)],
            )],
            Change::Presence { agent, view: None } => vec![statement(
                "DELETE FROM presence WHERE agent_id = $1",
                vec![Value::text(agent)],
            )],
            Change::Logout { agent, at_ms } => vec![statement(
                "INSERT INTO logouts (agent_id, at_ms) VALUES ($1, $2) \
                 ON CONFLICT (agent_id) DO UPDATE SET at_ms = CASE \
                   WHEN excluded.at_ms > logouts.at_ms THEN excluded.at_ms ELSE logouts.at_ms END",
                vec![Value::text(agent), Int(Some(*at_ms))],
            )],
            Change::Waiting {
                queue,
                conversation,
                since_ms: Some(since),
            } => vec![statement(
                "INSERT INTO waiting (queue_id, conversation_id, since_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (queue_id, conversation_id) DO UPDATE SET since_ms = excluded.since_ms",
                vec![Value::text(queue), Value::text(conversation), Int(Some(*since))],
            )],
            Change::Waiting {
                queue,
                conversation,
                since_ms: None,
            } => vec![statement(
                "DELETE FROM waiting WHERE queue_id = $1 AND conversation_id = $2",
                vec![Value::text(queue), Value::text(conversation)],
            )],
            Change::Record(row) => row.statements(),
            Change::Message(_) => Vec::new(),
            Change::Event(event) => vec![insert_event(event)],
        }
    }
}

/// Takes the lock every PostgreSQL transaction that inserts events holds
/// first, so events commit in the order of their `seq`: a reader paging by
/// `seq` never passes one that commits later (SQLite's writes are one at a
/// time anyway).
pub(crate) const POSTGRES_LOCK_EVENTS: &str =
    "SELECT position FROM event_feed WHERE name = 'outbox' FOR UPDATE";

/// One event's row. PostgreSQL's copy from the outbox may meet an event
/// twice (a copier that lost its lease mid-batch): its `id` is unique there.
pub(crate) fn insert_event(event: &DomainEvent) -> Statement<'_> {
    statement(
        "INSERT INTO events (id, type, at_ms, conversation_id, agent_id, queue_id, customer_id, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        event_values(event),
    )
}

/// SQLite's: an event is written once, in the transaction of the change
/// it comes from, so nothing needs an index on `id` (each index is one more
/// page written per commit). Its `seq` is the writer's (one counter for
/// `events` and `messages`, see [`SQLITE_INSERT_MESSAGE`]). Values:
/// [`sqlite_event_values`].
pub(crate) const SQLITE_INSERT_EVENT: &str =
    "INSERT INTO events (id, type, at_ms, conversation_id, agent_id, queue_id, customer_id, data, \
     message_seq, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A `message.created` event's message: (conversation, message `seq`).
pub(crate) fn message_of_event(event: &DomainEvent) -> Option<(&str, i64)> {
    match event.kind {
        switchboard_proto::feed::EventType::MessageCreated => Some((
            event.conversation_id.as_ref()?.as_str(),
            event.data["message"]["seq"].as_i64()?,
        )),
        _ => None,
    }
}

/// An event's columns for [`SQLITE_INSERT_EVENT`], at `seq`. A
/// `message.created` whose message is not written in the same transaction
/// (a cluster's copier writes events apart from messages) is stored as a
/// reference (`message_seq`, `data` `{}`, no customer), so a message is not
/// stored twice and adds no entry to the index by customer; the feed joins
/// the message and the customer back in (`events::feed`).
pub(crate) fn sqlite_event_values(event: &DomainEvent, seq: i64) -> Vec<Value<'_>> {
    let message_seq = message_of_event(event).map(|(_, seq)| seq);
    // A reference's `data` is `{}`: the message is not encoded only to be
    // dropped (this runs on the writer's thread).
    let data = match message_seq {
        Some(_) => Cow::Borrowed("{}"),
        None => Cow::Owned(event.data.to_string()),
    };
    let mut values = event_columns(event, data);
    if message_seq.is_some() {
        values[6] = Value::Text(None);
    }
    values.push(Value::Int(message_seq));
    values.push(Value::Int(Some(seq)));
    values
}

/// An event's columns, in the order of [`insert_event`] and
/// [`SQLITE_INSERT_EVENT`].
pub(crate) fn event_values(event: &DomainEvent) -> Vec<Value<'_>> {
    event_columns(event, Cow::Owned(event.data.to_string()))
}

fn event_columns<'a>(event: &'a DomainEvent, data: Cow<'a, str>) -> Vec<Value<'a>> {
    fn text(value: Option<&str>) -> Value<'_> {
        Value::Text(value.map(Cow::Borrowed))
    }
    vec![
        Value::text(&event.id),
        Value::text(event.kind.as_str()),
        Value::Int(Some(event.at.millis())),
        text(event.conversation_id.as_ref().map(|id| id.as_str())),
        text(event.agent_id.as_ref().map(|id| id.as_str())),
        text(event.queue_id.as_ref().map(|id| id.as_str())),
        text(event.customer_id.as_ref().map(|id| id.as_str())),
        Value::Text(Some(data)),
    ]
}

/// Stores (or replaces) one message. A second write of the same `seq` with
/// the same content changes nothing (a retried append); with other content
/// it replaces it: the live log is the truth, and its `seq` now names
/// another message. SQLite indexes a replaced message's words again later
/// (`indexed = 0`); PostgreSQL's generated column follows `words` by itself.
/// SQLite's `rowid` comes from the writer's counter, which gives `events`
/// their `seq` too: a message written with its `message.created` event is
/// that event (`event_*`, `rowid` its `seq`), with no row in `events`.
/// Values: [`MessageRow::sqlite_values`].
pub(crate) const SQLITE_INSERT_MESSAGE: &str =
    "INSERT INTO messages (conversation_id, seq, at_ms, message, words, rowid, event_id, \
       event_queue_id, event_agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (conversation_id, seq) DO UPDATE SET at_ms = excluded.at_ms, \
       message = excluded.message, words = excluded.words, indexed = 0 \
     WHERE messages.message <> excluded.message";

/// SQLite: the newest `seq` given, to an event or to a message row (the
/// writer gives both from one counter; the feed reads up to it).
pub(crate) const SQLITE_NEWEST_SEQ: &str =
    "SELECT max(COALESCE((SELECT max(seq) FROM events), 0), \
     COALESCE((SELECT max(rowid) FROM messages), 0))";

/// Raises a conversation's message count to the highest `seq` stored.
pub(crate) const RAISE_MESSAGE_COUNT: &str =
    "UPDATE conversations SET message_count = $1 WHERE id = $2 AND message_count < $1";

/// A message as its row stores it.
pub(crate) struct MessageRow<'a> {
    pub conversation_id: &'a str,
    pub seq: i64,
    pub at_ms: i64,
    /// As on the wire.
    pub json: String,
    /// What search finds it by.
    pub words: String,
}

impl<'a> MessageRow<'a> {
    pub fn of(message: &'a Message) -> Result<MessageRow<'a>, serde_json::Error> {
        Ok(MessageRow {
            conversation_id: message.conversation_id.as_str(),
            seq: i64::try_from(message.seq).unwrap_or(i64::MAX),
            at_ms: message.ts.millis(),
            json: serde_json::to_string(message)?,
            words: indexed_words(message),
        })
    }

    /// Its values for [`SQLITE_INSERT_MESSAGE`]: at `rowid`, and with its
    /// `message.created` event if that is written with it.
    pub fn sqlite_values<'b>(
        &'b self,
        rowid: i64,
        event: Option<&'b DomainEvent>,
    ) -> [Value<'b>; 9] {
        let [conversation, seq, at, json, words] = self.values();
        let text = |value: Option<&'b str>| Value::Text(value.map(Cow::Borrowed));
        [
            conversation,
            seq,
            at,
            json,
            words,
            Value::Int(Some(rowid)),
            text(event.map(|event| event.id.as_str())),
            text(
                event
                    .and_then(|event| event.queue_id.as_ref())
                    .map(|id| id.as_str()),
            ),
            text(
                event
                    .and_then(|event| event.agent_id.as_ref())
                    .map(|id| id.as_str()),
            ),
        ]
    }

    /// Its values, in the order of the row's columns (and of
    /// [`SQLITE_INSERT_MESSAGE`]).
    pub fn values(&self) -> [Value<'_>; 5] {
        [
            Value::text(self.conversation_id),
            Value::Int(Some(self.seq)),
            Value::Int(Some(self.at_ms)),
            Value::text(&self.json),
            Value::text(&self.words),
        ]
    }
}

/// The words a message is found by: customer and agent text only (not the
/// engine's system lines), in the same words a query is cut into, so both
/// databases match alike.
fn indexed_words(message: &Message) -> String {
    if message.from.role == Role::System {
        return String::new();
    }
    SearchFilter::words_of(&message.text).join(" ")
}

/// The messages of a batch, the last of each (conversation, seq) only, in
/// that order: a retried append is then one row, and a multi-row statement
/// touches each row once.
pub(crate) fn latest_per_seq<'a>(messages: &[&'a Message]) -> Vec<&'a Message> {
    let mut unique: std::collections::BTreeMap<(&str, u64), &Message> = Default::default();
    for message in messages {
        unique.insert((message.conversation_id.as_str(), message.seq), message);
    }
    unique.into_values().collect()
}

/// The highest `seq` stored per conversation, for [`RAISE_MESSAGE_COUNT`].
#[derive(Default)]
pub(crate) struct HighestSeq(std::collections::HashMap<String, i64>);

impl HighestSeq {
    pub fn stored(&mut self, conversation: &str, seq: i64) {
        match self.0.get_mut(conversation) {
            Some(top) => *top = (*top).max(seq),
            None => {
                self.0.insert(conversation.to_owned(), seq);
            }
        }
    }

    pub fn statements(&self) -> impl Iterator<Item = Statement<'_>> {
        self.0.iter().map(|(conversation, seq)| {
            statement(
                RAISE_MESSAGE_COUNT,
                vec![Value::Int(Some(*seq)), Value::text(conversation)],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite numbers `$n` in the order each first appears; the writers
    /// bind by position, so every statement must name them in order.
    #[test]
    fn every_statement_names_its_values_in_order() {
        let changes = vec![
            Change::Snapshot {
                actor: "a".into(),
                bytes: Some(vec![1]),
            },
            Change::Snapshot {
                actor: "a".into(),
                bytes: None,
            },
            Change::CreateSnapshot {
                actor: "a".into(),
                bytes: vec![1],
            },
            Change::Presence {
                agent: "a".into(),
                view: Some(vec![1]),
            },
            Change::Presence {
                agent: "a".into(),
                view: None,
            },
            Change::Logout {
                agent: "a".into(),
                at_ms: 1,
            },
            Change::Waiting {
                queue: "q".into(),
                conversation: "c".into(),
                since_ms: Some(1),
            },
            Change::Waiting {
                queue: "q".into(),
                conversation: "c".into(),
                since_ms: None,
            },
            Change::Record(Box::new(RecordRow::example())),
            Change::Event(Arc::new(DomainEvent::new(
                switchboard_proto::feed::EventType::AgentLoggedOut,
                switchboard_proto::Timestamp(1),
                serde_json::json!({}),
            ))),
        ];
        let mut sqls: Vec<(&str, usize)> = changes
            .iter()
            .flat_map(Change::statements)
            .map(|s| (s.sql, s.values.len()))
            .collect();
        sqls.push((SQLITE_INSERT_MESSAGE, 9));
        sqls.push((SQLITE_INSERT_EVENT, 10));
        sqls.push((RAISE_MESSAGE_COUNT, 2));
        for (sql, count) in sqls {
            let mut next = 1;
            let mut rest = sql;
            while let Some(at) = rest.find('$') {
                let digits: String = rest[at + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let n: usize = digits.parse().expect("a number after $");
                assert!(n <= next, "{sql}: ${n} before ${next}");
                if n == next {
                    next += 1;
                }
                rest = &rest[at + 1 + digits.len()..];
            }
            assert_eq!(next - 1, count, "{sql}: values bound");
        }
    }
}
