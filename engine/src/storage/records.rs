//! Conversation records in the database: how a record is stored (a row of
//! the fields people filter on, the record itself as JSON, its messages one
//! row each with their words indexed), and how it is read back: one record,
//! a search page, export rows, retention.

use base64::Engine as _;
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use switchboard_proto::model::{
    ConversationExportRow, ConversationListItem, ConversationPage, ConversationRecord,
    ConversationState, CustomerRef, Message, NamedRef, OfferOutcome,
};
use switchboard_proto::{AgentId, ConversationId, CustomerId, Timestamp};

use super::change::{Statement, Value};
use super::{Change, Database, Dialect, StorageError};
use std::borrow::Cow;

/// A conversation's row: what search filters on, and the record itself.
#[derive(Debug, Clone)]
pub struct RecordRow {
    id: String,
    state: &'static str,
    queue_id: String,
    queue_name: String,
    customer_id: Option<String>,
    customer_name: String,
    customer_email: Option<String>,
    customer_verified: bool,
    created_ms: i64,
    first_accepted_ms: Option<i64>,
    ended_ms: Option<i64>,
    closed_ms: Option<i64>,
    /// Every agent that had a leg, first joined first, each once.
    agents: Vec<String>,
    wrap_ups: Vec<String>,
    /// The record as JSON, its messages left out (they have their rows).
    json: String,
}

impl RecordRow {
    /// The row of `record`; its `messages` are not part of it.
    pub fn of(record: &ConversationRecord) -> Result<RecordRow, StorageError> {
        let mut agents: Vec<String> = Vec::new();
        for leg in &record.legs {
            if !agents.contains(&leg.agent.id) {
                agents.push(leg.agent.id.clone());
            }
        }
        let json = if record.messages.is_empty() {
            serde_json::to_string(record)
        } else {
            let mut head = record.clone();
            head.messages.clear();
            serde_json::to_string(&head)
        }
        .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        Ok(RecordRow {
            id: record.conversation_id.as_str().to_owned(),
            state: record.state.as_str(),
            queue_id: record.queue.id.clone(),
            queue_name: record.queue.name.clone(),
            customer_id: record.customer.id.as_ref().map(|id| id.as_str().to_owned()),
            customer_name: record.customer.name.clone(),
            customer_email: record.customer.email.clone(),
            customer_verified: record.customer.verified,
            created_ms: record.created_at.millis(),
            first_accepted_ms: record.first_accepted_at.map(Timestamp::millis),
            ended_ms: record.ended_at.map(Timestamp::millis),
            closed_ms: record.closed_at.map(Timestamp::millis),
            agents,
            wrap_ups: record
                .wrap_ups
                .iter()
                .map(|wrap_up| wrap_up.reason.id.clone())
                .collect(),
            json,
        })
    }
}

/// ` a b `: a list in one column, each item with a space either side, so
/// `instr(column, ' a ')` finds an item whole.
fn spaced(items: &[String]) -> String {
    let mut out = String::from(" ");
    for item in items {
        out.push_str(item);
        out.push(' ');
    }
    out
}

fn unspaced(column: &str) -> Vec<String> {
    column.split_whitespace().map(str::to_owned).collect()
}

impl RecordRow {
    /// The statements that store this row: the customer's (an anonymous
    /// one's comes with their one conversation; a verified one's exists
    /// already, `identify_customer`), the conversation's, and one per agent.
    pub(crate) fn statements(&self) -> Vec<Statement<'_>> {
        let text = Value::text;
        let mut statements = Vec::with_capacity(2 + self.agents.len());
        if let Some(customer) = &self.customer_id {
            statements.push(Statement {
                sql: "INSERT INTO customers (id, external_id, name, email, verified, first_seen_ms, last_seen_ms) \
                      VALUES ($1, NULL, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
                values: vec![
                    text(customer),
                    text(&self.customer_name),
                    Value::Text(self.customer_email.as_deref().map(Cow::Borrowed)),
                    Value::Int(Some(i64::from(self.customer_verified))),
                    Value::Int(Some(self.created_ms)),
                ],
            });
        }
        statements.push(Statement {
            sql: "INSERT INTO conversations (id, state, queue_id, queue_name, customer_id, customer_name, created_ms, \
                    first_accepted_ms, ended_ms, closed_ms, agents, wrap_ups, message_count, record) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13) \
                  ON CONFLICT (id) DO UPDATE SET state = excluded.state, queue_id = excluded.queue_id, \
                    queue_name = excluded.queue_name, customer_name = excluded.customer_name, \
                    first_accepted_ms = excluded.first_accepted_ms, ended_ms = excluded.ended_ms, \
                    closed_ms = excluded.closed_ms, agents = excluded.agents, \
                    wrap_ups = excluded.wrap_ups, record = excluded.record",
            values: vec![
                text(&self.id),
                text(self.state),
                text(&self.queue_id),
                text(&self.queue_name),
                Value::Text(self.customer_id.as_deref().map(Cow::Borrowed)),
                text(&self.customer_name),
                Value::Int(Some(self.created_ms)),
                Value::Int(self.first_accepted_ms),
                Value::Int(self.ended_ms),
                Value::Int(self.closed_ms),
                Value::Text(Some(Cow::Owned(spaced(&self.agents)))),
                Value::Text(Some(Cow::Owned(spaced(&self.wrap_ups)))),
                text(&self.json),
            ],
        });
        for agent in &self.agents {
            statements.push(Statement {
                sql: "INSERT INTO conversation_agents (agent_id, conversation_id) VALUES ($1, $2) \
                      ON CONFLICT (agent_id, conversation_id) DO NOTHING",
                values: vec![text(agent), text(&self.id)],
            });
        }
        statements
    }

    /// A row with every optional part present, for tests of the SQL.
    #[cfg(test)]
    pub(crate) fn example() -> RecordRow {
        RecordRow {
            id: "c1".into(),
            state: "active",
            queue_id: "q".into(),
            queue_name: "Q".into(),
            customer_id: Some("cu".into()),
            customer_name: "Ann".into(),
            customer_email: Some("ann@example.com".into()),
            customer_verified: true,
            created_ms: 1,
            first_accepted_ms: Some(2),
            ended_ms: Some(3),
            closed_ms: Some(4),
            agents: vec!["alice".into()],
            wrap_ups: vec!["sale".into()],
            json: "{}".into(),
        }
    }
}

/// What a search or an export asks for. Every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Words of the transcript, each required (any case, whole words).
    pub words: Vec<String>,
    pub queue: Option<String>,
    pub agent: Option<AgentId>,
    pub customer: Option<CustomerId>,
    pub state: Option<ConversationState>,
    pub wrap_up: Option<String>,
    /// `created_at` at or after.
    pub from: Option<Timestamp>,
    /// `created_at` before.
    pub to: Option<Timestamp>,
    /// Only conversations this agent had a leg in (an agent searching).
    pub visible_to: Option<AgentId>,
}

/// Most words a search takes (each is one index lookup).
pub const MAX_SEARCH_WORDS: usize = 8;

impl SearchFilter {
    /// The words of `q`: letters and digits, lowercased; the rest separates
    /// them. Nothing of `q` reaches SQL but these words, as bound values.
    pub fn words_of(q: &str) -> Vec<String> {
        q.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
}

/// Where a page starts: after this conversation, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    created_ms: i64,
    id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.created_ms, self.id))
    }

    /// `None` for anything [`encode`](Self::encode) did not make.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (created, id) = text.split_once(':')?;
        let created_ms = created.parse().ok()?;
        if id.is_empty() {
            return None;
        }
        Some(Cursor {
            created_ms,
            id: id.to_owned(),
        })
    }
}

/// A bound value of a query being built.
enum Arg {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause built from a filter, with its values bound, never
/// spliced into the text.
struct Clause {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Clause {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// `common[i]`: whether word `i` is in so many messages that reading
    /// conversations newest first finds a page sooner than gathering them.
    fn of(
        filter: &SearchFilter,
        common: &[bool],
        after: Option<&Cursor>,
        dialect: Dialect,
    ) -> Clause {
        let mut clause = Clause {
            conditions: Vec::new(),
            args: Vec::new(),
        };
        for (word, common) in filter.words.iter().take(MAX_SEARCH_WORDS).zip(common) {
            let condition = match (dialect, *common) {
                // A rare word: the few conversations that have it.
                (Dialect::Sqlite, false) => {
                    // One quoted FTS5 term: only a double quote is special.
                    let term = format!("\"{}\"", word.replace('"', "\"\""));
                    let n = clause.arg(Arg::Text(term));
                    format!(
                        "c.id IN (SELECT conversation_id FROM message_words WHERE message_words MATCH {n})"
                    )
                }
                (Dialect::Postgres, false) => {
                    let n = clause.arg(Arg::Text(word.clone()));
                    format!(
                        "c.id IN (SELECT conversation_id FROM messages WHERE search @@ plainto_tsquery('simple', {n}))"
                    )
                }
                // A common word: conversations are read newest first and
                // each checked by its own messages, so the page fills after
                // a few, instead of every match being gathered and sorted.
                (Dialect::Sqlite, true) => {
                    let n = clause.arg(Arg::Text(format!(" {word} ")));
                    format!(
                        "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id \
                         AND instr(' ' || m.words || ' ', {n}) > 0)"
                    )
                }
                (Dialect::Postgres, true) => {
                    let n = clause.arg(Arg::Text(word.clone()));
                    format!(
                        "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id \
                         AND m.search @@ plainto_tsquery('simple', {n}))"
                    )
                }
            };
            clause.conditions.push(condition);
        }
        if let Some(queue) = &filter.queue {
            let n = clause.arg(Arg::Text(queue.clone()));
            clause.conditions.push(format!("c.queue_id = {n}"));
        }
        if let Some(customer) = &filter.customer {
            let n = clause.arg(Arg::Text(customer.as_str().to_owned()));
            clause.conditions.push(format!("c.customer_id = {n}"));
        }
        for agent in [&filter.agent, &filter.visible_to].into_iter().flatten() {
            let n = clause.arg(Arg::Text(agent.as_str().to_owned()));
            clause.conditions.push(format!(
                "c.id IN (SELECT conversation_id FROM conversation_agents WHERE agent_id = {n})"
            ));
        }
        if let Some(state) = filter.state {
            let n = clause.arg(Arg::Text(state.as_str().to_owned()));
            clause.conditions.push(format!("c.state = {n}"));
        }
        if let Some(reason) = &filter.wrap_up {
            let n = clause.arg(Arg::Text(format!(" {reason} ")));
            clause.conditions.push(match dialect {
                Dialect::Sqlite => format!("instr(c.wrap_ups, {n}) > 0"),
                Dialect::Postgres => format!("strpos(c.wrap_ups, {n}) > 0"),
            });
        }
        if let Some(from) = filter.from {
            let n = clause.arg(Arg::Int(from.millis()));
            clause.conditions.push(format!("c.created_ms >= {n}"));
        }
        if let Some(to) = filter.to {
            let n = clause.arg(Arg::Int(to.millis()));
            clause.conditions.push(format!("c.created_ms < {n}"));
        }
        if let Some(cursor) = after {
            // A row value: both databases read the index from the cursor
            // on, where an OR of the two columns made them scan and sort.
            let created = clause.arg(Arg::Int(cursor.created_ms));
            let id = clause.arg(Arg::Text(cursor.id.clone()));
            clause
                .conditions
                .push(format!("(c.created_ms, c.id) < ({created}, {id})"));
        }
        clause
    }

    fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }
}

const LIST_COLUMNS: &str = "c.id, c.state, c.queue_id, c.queue_name, c.customer_name, \
    c.created_ms, c.first_accepted_ms, c.ended_ms, c.closed_ms, c.agents, c.wrap_ups, c.message_count, \
    c.customer_id";

/// One listed row, as read.
struct ListRow {
    id: String,
    state: ConversationState,
    queue_id: String,
    queue_name: String,
    customer_name: String,
    created_ms: i64,
    first_accepted_ms: Option<i64>,
    ended_ms: Option<i64>,
    closed_ms: Option<i64>,
    agents: String,
    wrap_ups: String,
    message_count: i64,
    customer_id: Option<String>,
}

impl ListRow {
    fn read(row: &sqlx::any::AnyRow) -> Result<ListRow, StorageError> {
        let state: String = row.try_get(1)?;
        Ok(ListRow {
            id: row.try_get(0)?,
            state: ConversationState::parse(&state)
                .ok_or_else(|| StorageError::Corrupt(format!("unknown state {state:?}")))?,
            queue_id: row.try_get(2)?,
            queue_name: row.try_get(3)?,
            customer_name: row.try_get(4)?,
            created_ms: row.try_get(5)?,
            first_accepted_ms: row.try_get(6)?,
            ended_ms: row.try_get(7)?,
            closed_ms: row.try_get(8)?,
            agents: row.try_get(9)?,
            wrap_ups: row.try_get(10)?,
            message_count: row.try_get(11)?,
            customer_id: row.try_get(12)?,
        })
    }

    fn item(self) -> ConversationListItem {
        ConversationListItem {
            conversation_id: ConversationId::new(self.id),
            state: self.state,
            queue: NamedRef::new(self.queue_id, self.queue_name),
            customer: CustomerRef {
                id: self.customer_id.map(CustomerId::new),
                name: self.customer_name,
            },
            agents: unspaced(&self.agents)
                .into_iter()
                .map(AgentId::new)
                .collect(),
            created_at: Timestamp(self.created_ms),
            closed_at: self.closed_ms.map(Timestamp),
            wrap_ups: unspaced(&self.wrap_ups),
            message_count: u64::try_from(self.message_count).unwrap_or(0),
        }
    }

    fn export(self) -> ConversationExportRow {
        // Whole milliseconds as seconds: three decimals, exactly.
        let seconds = |from: i64, to: i64| (to - from).max(0) as f64 / 1000.0;
        ConversationExportRow {
            wait_s: self
                .first_accepted_ms
                .map(|accepted| seconds(self.created_ms, accepted)),
            handle_s: self
                .first_accepted_ms
                .zip(self.ended_ms)
                .map(|(accepted, ended)| seconds(accepted, ended)),
            conversation_id: ConversationId::new(self.id),
            state: self.state,
            queue_id: self.queue_id,
            customer_id: self.customer_id.map(CustomerId::new),
            customer_name: self.customer_name,
            agents: self.agents.trim().to_owned(),
            created_at: Timestamp(self.created_ms),
            first_accepted_at: self.first_accepted_ms.map(Timestamp),
            ended_at: self.ended_ms.map(Timestamp),
            closed_at: self.closed_ms.map(Timestamp),
            wrap_ups: self.wrap_ups.trim().to_owned(),
            message_count: u64::try_from(self.message_count).unwrap_or(0),
        }
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            created_ms: self.created_ms,
            id: self.id.clone(),
        }
    }
}

/// Messages a word may be in and still count as rare.
const RARE_MESSAGES: usize = 2_000;

/// Is `word` in more than [`RARE_MESSAGES`] messages? Counted up to that
/// bound only, so the question costs little either way.
async fn is_common(pool: &AnyPool, dialect: Dialect, word: &str) -> Result<bool, StorageError> {
    let (sql, arg) = match dialect {
        Dialect::Sqlite => (
            format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM message_words WHERE message_words MATCH $1 LIMIT {})",
                RARE_MESSAGES + 1
            ),
            format!("\"{}\"", word.replace('"', "\"\"")),
        ),
        Dialect::Postgres => (
            format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE search @@ plainto_tsquery('simple', $1) LIMIT {}) t",
                RARE_MESSAGES + 1
            ),
            word.to_owned(),
        ),
    };
    let row = sqlx::query(&sql).bind(arg).fetch_one(pool).await?;
    let count: i64 = row.try_get(0)?;
    Ok(count > RARE_MESSAGES as i64)
}

async fn list(
    pool: &AnyPool,
    dialect: Dialect,
    filter: &SearchFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<ListRow>, StorageError> {
    let mut common = Vec::with_capacity(filter.words.len());
    for word in filter.words.iter().take(MAX_SEARCH_WORDS) {
        common.push(is_common(pool, dialect, word).await?);
    }
    let clause = Clause::of(filter, &common, after, dialect);
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM conversations c {} ORDER BY c.created_ms DESC, c.id DESC LIMIT {}",
        clause.sql(),
        limit
    );
    let mut query = sqlx::query(&sql);
    for arg in clause.args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(ListRow::read).collect()
}

impl Database {
    /// A conversation's record with its whole transcript.
    pub async fn record(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StorageError> {
        let pool = self.pool().clone();
        let id = id.as_str().to_owned();
        self.run(async move {
            let Some(row) = sqlx::query("SELECT record FROM conversations WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&pool)
                .await?
            else {
                return Ok(None);
            };
            let json: String = row.try_get(0)?;
            let mut record: ConversationRecord = serde_json::from_str(&json)
                .map_err(|error| StorageError::Corrupt(error.to_string()))?;
            record.messages = messages(&pool, &id, 0)
                .await?
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect();
            Ok(Some(record))
        })
        .await
    }

    /// A conversation's messages after `after_seq`, in order.
    pub async fn messages(
        &self,
        id: &ConversationId,
        after_seq: u64,
    ) -> Result<Vec<Arc<Message>>, StorageError> {
        let pool = self.pool().clone();
        let id = id.as_str().to_owned();
        self.run(async move { messages(&pool, &id, after_seq).await })
            .await
    }

    /// One page of a search, newest `created_at` first.
    pub async fn search(
        &self,
        filter: SearchFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<ConversationPage, StorageError> {
        if !filter.words.is_empty() {
            // Every message written so far is found.
            self.index_now().await?;
        }
        let pool = self.pool().clone();
        let dialect = self.dialect();
        self.run(async move {
            // One more than asked says whether there is a next page.
            let mut rows = list(&pool, dialect, &filter, after.as_ref(), limit + 1).await?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = if more {
                rows.last().map(|row| row.cursor().encode())
            } else {
                None
            };
            Ok(ConversationPage {
                items: rows.into_iter().map(ListRow::item).collect(),
                next_cursor,
            })
        })
        .await
    }

    /// Every conversation the filter selects, as export rows, newest first,
    /// read a page at a time: memory stays flat however many there are.
    /// The receiver ends after the last row, or after an error.
    pub fn export(
        &self,
        filter: SearchFilter,
    ) -> tokio::sync::mpsc::Receiver<Result<ConversationExportRow, StorageError>> {
        const PAGE: usize = 500;
        let (rows_out, rows_in) = tokio::sync::mpsc::channel(PAGE);
        let pool = self.pool().clone();
        let dialect = self.dialect();
        let indexed = (!filter.words.is_empty()).then(|| self.inner.writer.index_now());
        self.inner.runtime.handle().spawn(async move {
            if let Some(indexed) = indexed {
                if let Err(error) = indexed.await {
                    let _ = rows_out.send(Err(error)).await;
                    return;
                }
            }
            let mut after: Option<Cursor> = None;
            loop {
                let page = match list(&pool, dialect, &filter, after.as_ref(), PAGE).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = rows_out.send(Err(error)).await;
                        return;
                    }
                };
                let last = page.len() < PAGE;
                after = page.last().map(ListRow::cursor);
                for row in page {
                    if rows_out.send(Ok(row.export())).await.is_err() {
                        return; // the client went away
                    }
                }
                if last {
                    return;
                }
            }
        });
        rows_in
    }

    /// Deletes the records (and transcripts) of conversations that finished
    /// before `cutoff`. Returns how many went.
    pub async fn delete_finished_before(&self, cutoff: Timestamp) -> Result<u64, StorageError> {
        let pool = self.pool().clone();
        let dialect = self.dialect();
        self.run(async move {
            let mut tx = pool.begin().await?;
            let old = "SELECT id FROM conversations WHERE state IN ('closed', 'abandoned') \
                       AND COALESCE(closed_ms, ended_ms, created_ms) < $1";
            if dialect == Dialect::Sqlite {
                sqlx::query(&format!(
                    "DELETE FROM message_words WHERE rowid IN \
                     (SELECT rowid FROM messages WHERE conversation_id IN ({old}))"
                ))
                .bind(cutoff.millis())
                .execute(&mut *tx)
                .await?;
            }
            for table in ["messages", "conversation_agents"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE conversation_id IN ({old})"
                ))
                .bind(cutoff.millis())
                .execute(&mut *tx)
                .await?;
            }
            let gone = sqlx::query(&format!("DELETE FROM conversations WHERE id IN ({old})"))
                .bind(cutoff.millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Events and delivery logs as old go too (a cursor stays valid:
            // reading after it finds what is left). Events by `seq`: up to
            // the first one recent enough (read from the oldest on, so only
            // the rows going are read), and never the newest, whose `seq`
            // the next event's follows.
            sqlx::query(
                "DELETE FROM events WHERE seq < COALESCE(\
                   (SELECT seq FROM events WHERE at_ms >= $1 ORDER BY seq LIMIT 1), \
                   (SELECT max(seq) FROM events))",
            )
            .bind(cutoff.millis())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE at_ms < $1")
                .bind(cutoff.millis())
                .execute(&mut *tx)
                .await?;
            // A customer with no conversation left keeps no profile either.
            sqlx::query(
                "DELETE FROM customers WHERE last_seen_ms < $1 AND NOT EXISTS \
                 (SELECT 1 FROM conversations c WHERE c.customer_id = customers.id)",
            )
            .bind(cutoff.millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(gone)
        })
        .await
    }
}

impl Database {
    /// Conversations the record says are live, created before `cutoff`.
    pub async fn live_conversations_before(
        &self,
        cutoff: Timestamp,
    ) -> Result<Vec<ConversationId>, StorageError> {
        let pool = self.pool().clone();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT id FROM conversations WHERE state NOT IN ('closed', 'abandoned') \
                 AND created_ms < $1 ORDER BY created_ms LIMIT 1000",
            )
            .bind(cutoff.millis())
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|row| Ok(ConversationId::new(row.try_get::<String, _>(0)?)))
                .collect()
        })
        .await
    }

    /// Closes in the record a conversation whose live state is gone for
    /// good, with a system message that says so. Returns false when it was
    /// already final (another node did it first).
    pub async fn close_interrupted(
        &self,
        id: &ConversationId,
        text: &str,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let pool = self.pool().clone();
        let dialect = self.dialect();
        let (id, text) = (id.clone(), text.to_owned());
        self.run(async move {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(
                "SELECT record, message_count FROM conversations WHERE id = $1 \
                 AND state NOT IN ('closed', 'abandoned')",
            )
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(false);
            };
            let json: String = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            let mut record: ConversationRecord = serde_json::from_str(&json)
                .map_err(|error| StorageError::Corrupt(error.to_string()))?;
            record.state = ConversationState::Closed;
            record.ended_at = record.ended_at.or(Some(now));
            record.closed_at = Some(now);
            record.participants.clear();
            record.owner = None;
            for offer in &mut record.offers {
                if offer.outcome == OfferOutcome::Pending {
                    offer.outcome = OfferOutcome::Cancelled;
                    offer.resolved_at = Some(now);
                }
            }
            for leg in &mut record.legs {
                if leg.left_at.is_none() {
                    leg.left_at = Some(now);
                    leg.left_because = Some("interrupted".into());
                }
            }
            let seq = u64::try_from(count).unwrap_or(0) + 1;
            let message = Message {
                conversation_id: id.clone(),
                seq,
                id: switchboard_proto::MessageId::for_seq(&id, seq),
                from: switchboard_proto::model::Author::system(),
                text,
                ts: now,
                client_msg_id: None,
            };
            let changes = [
                Change::Record(Box::new(RecordRow::of(&record)?)),
                Change::Message(Arc::new(message)),
            ];
            super::writer::pool::apply_in(&mut tx, dialect, changes.iter()).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}

async fn messages(
    pool: &AnyPool,
    id: &str,
    after_seq: u64,
) -> Result<Vec<Arc<Message>>, StorageError> {
    let rows = sqlx::query(
        "SELECT message FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(id)
    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let json: String = row.try_get(0)?;
            serde_json::from_str::<Message>(&json)
                .map(Arc::new)
                .map_err(|error| StorageError::Corrupt(error.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_letters_and_digits_only() {
        assert_eq!(
            SearchFilter::words_of("Refund'; DROP TABLE messages; --"),
            vec!["refund", "drop", "table", "messages"]
        );
        assert_eq!(
            SearchFilter::words_of("Où est ma commande?"),
            vec!["où", "est", "ma", "commande"]
        );
        assert!(SearchFilter::words_of("\" * ( ) :").is_empty());
    }

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let cursor = Cursor {
            created_ms: 1_700_000_000_123,
            id: "c-1".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", "MTIzOg"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
