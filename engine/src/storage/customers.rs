//! Customers in the database: linking a verified customer's chats by the
//! web site's own id, their profile, who may look them up, and erasure.

use sqlx::Row;
use switchboard_proto::model::{ConversationRecord, CustomerProfile, Role};
use switchboard_proto::{AgentId, CustomerId, Timestamp};

use super::{Database, Dialect, StorageError};

/// A verified customer as their chat starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub id: CustomerId,
    /// As the profile has them now.
    pub name: String,
    pub email: Option<String>,
    /// Conversations they had before this one.
    pub previous_conversations: u64,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Database {
    /// The customer whose web site id is `external_id`, created on their
    /// first chat. The identity's `name` and `email` update the profile;
    /// `typed` (what the customer typed) only fills a new profile.
    pub async fn identify_customer(
        &self,
        external_id: &str,
        name: Option<&str>,
        email: Option<&str>,
        typed: (&str, Option<&str>),
        now: Timestamp,
    ) -> Result<Identified, StorageError> {
        let pool = self.pool().clone();
        let external_id = external_id.to_owned();
        let (name, email) = (name.map(str::to_owned), email.map(str::to_owned));
        let (typed_name, typed_email) = (typed.0.to_owned(), typed.1.map(str::to_owned));
        let fresh = CustomerId::generate();
        self.run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO customers (id, external_id, name, email, verified, first_seen_ms, last_seen_ms) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (external_id) DO NOTHING",
            )
            .bind(fresh.as_str())
            .bind(external_id.as_str())
            .bind(name.clone().unwrap_or(typed_name))
            .bind(email.clone().or(typed_email))
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE customers SET name = COALESCE($1, name), email = COALESCE($2, email), \
                 last_seen_ms = $3 WHERE external_id = $4",
            )
            .bind(name)
            .bind(email)
            .bind(now.millis())
            .bind(external_id.as_str())
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(
                "SELECT c.id, c.name, c.email, \
                   (SELECT COUNT(*) FROM conversations v WHERE v.customer_id = c.id) \
                 FROM customers c WHERE c.external_id = $1",
            )
            .bind(external_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Identified {
                id: CustomerId::new(row.try_get::<String, _>(0)?),
                name: row.try_get(1)?,
                email: row.try_get(2)?,
                previous_conversations: count(row.try_get(3)?),
            })
        })
        .await
    }

    pub async fn customer(&self, id: &CustomerId) -> Result<Option<CustomerProfile>, StorageError> {
        let pool = self.pool().clone();
        let id = id.clone();
        self.run(async move {
            let row = sqlx::query(
                "SELECT c.external_id, c.name, c.email, c.verified, c.first_seen_ms, c.last_seen_ms, \
                   (SELECT COUNT(*) FROM conversations v WHERE v.customer_id = c.id) \
                 FROM customers c WHERE c.id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(&pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(CustomerProfile {
                id,
                external_id: row.try_get(0)?,
                name: row.try_get(1)?,
                email: row.try_get(2)?,
                verified: row.try_get::<i64, _>(3)? == 1,
                first_seen_at: Timestamp(row.try_get(4)?),
                last_seen_at: Timestamp(row.try_get(5)?),
                conversations: count(row.try_get(6)?),
            }))
        })
        .await
    }

    /// Did `agent` have a leg in any conversation of `customer`?
    pub async fn agent_served_customer(
        &self,
        agent: &AgentId,
        customer: &CustomerId,
    ) -> Result<bool, StorageError> {
        let pool = self.pool().clone();
        let (agent, customer) = (agent.as_str().to_owned(), customer.as_str().to_owned());
        self.run(async move {
            let row = sqlx::query(
                "SELECT 1 FROM conversation_agents a JOIN conversations c ON c.id = a.conversation_id \
                 WHERE a.agent_id = $1 AND c.customer_id = $2 LIMIT 1",
            )
            .bind(agent)
            .bind(customer)
            .fetch_optional(&pool)
            .await?;
            Ok(row.is_some())
        })
        .await
    }

    /// Erases a customer: their row goes; each of their conversations keeps
    /// its figures (state, queue, agents, times, wrap-ups) and loses their
    /// name, email, attributes and every message, search words included.
    /// Refused (`Ok(false)`) while one of their conversations is live.
    pub async fn erase_customer(&self, id: &CustomerId) -> Result<EraseOutcome, StorageError> {
        let pool = self.pool().clone();
        let dialect = self.dialect();
        let id = id.clone();
        self.run(async move {
            let mut tx = pool.begin().await?;
            let known = sqlx::query("SELECT 1 FROM customers WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return Ok(EraseOutcome::Unknown);
            }
            let live = sqlx::query(
                "SELECT 1 FROM conversations WHERE customer_id = $1 \
                 AND state NOT IN ('closed', 'abandoned') LIMIT 1",
            )
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_some() {
                return Ok(EraseOutcome::Live);
            }
            let rows = sqlx::query("SELECT id, record FROM conversations WHERE customer_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let theirs = "SELECT id FROM conversations WHERE customer_id = $1";
            if dialect == Dialect::Sqlite {
                sqlx::query(&format!(
                    "DELETE FROM message_words WHERE rowid IN \
                     (SELECT rowid FROM messages WHERE conversation_id IN ({theirs}))"
                ))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
                // A message that is its own `message.created` event leaves
                // that event behind, at the same `seq`, as a reference to a
                // message that is gone: it reads `{"erased": true}`.
                sqlx::query(&format!(
                    "INSERT INTO events (seq, id, type, at_ms, conversation_id, agent_id, \
                       queue_id, customer_id, data, message_seq) \
                     SELECT rowid, event_id, 'message.created', at_ms, conversation_id, \
                       event_agent_id, event_queue_id, NULL, '{{}}', seq FROM messages \
                     WHERE event_id IS NOT NULL AND conversation_id IN ({theirs})"
                ))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&format!(
                "DELETE FROM messages WHERE conversation_id IN ({theirs})"
            ))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
            for row in &rows {
                let conversation: String = row.try_get(0)?;
                let json: String = row.try_get(1)?;
                let mut record: ConversationRecord = serde_json::from_str(&json)
                    .map_err(|error| StorageError::Corrupt(error.to_string()))?;
                record.customer.name = String::new();
                record.customer.email = None;
                record.attributes.clear();
                record.messages.clear();
                for wrap_up in &mut record.wrap_ups {
                    wrap_up.notes = None;
                }
                for participant in &mut record.participants {
                    if participant.role == Role::Customer {
                        participant.name = String::new();
                    }
                }
                record.erased = true;
                let json = serde_json::to_string(&record)
                    .map_err(|error| StorageError::Corrupt(error.to_string()))?;
                sqlx::query(
                    "UPDATE conversations SET customer_name = '', record = $1 WHERE id = $2",
                )
                .bind(json)
                .bind(conversation)
                .execute(&mut *tx)
                .await?;
            }
            // What events said of them goes too: their ids, types and
            // times stay, and so do the figures reports count (waits,
            // handle times, reason ids), so reports rebuilt from the
            // events do not change.
            // Of the events reports count, the figures stay; every other
            // event of theirs keeps nothing.
            let counted: Vec<&str> = crate::reports::projector::COUNTED
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            let places: Vec<String> = (0..counted.len()).map(|i| format!("${}", i + 2)).collect();
            let places = places.join(", ");
            let select_sql = format!(
                "SELECT seq, data FROM events WHERE customer_id = $1 AND type IN ({places})"
            );
            let mut select = sqlx::query(&select_sql).bind(id.as_str());
            for kind in &counted {
                select = select.bind(*kind);
            }
            let events = select.fetch_all(&mut *tx).await?;
            for row in &events {
                let seq: i64 = row.try_get(0)?;
                let data: String = row.try_get(1)?;
                let data = serde_json::from_str(&data).unwrap_or_default();
                let kept = crate::reports::projection::kept_on_erasure(&data);
                sqlx::query("UPDATE events SET data = $1 WHERE seq = $2")
                    .bind(kept.to_string())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
            let blank_sql = format!(
                "UPDATE events SET data = '{{\"erased\":true}}' \
                 WHERE customer_id = $1 AND type NOT IN ({places})"
            );
            let mut blank = sqlx::query(&blank_sql).bind(id.as_str());
            for kind in &counted {
                blank = blank.bind(*kind);
            }
            blank.execute(&mut *tx).await?;
            sqlx::query("DELETE FROM customers WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(EraseOutcome::Erased {
                conversations: rows.len() as u64,
            })
        })
        .await
    }
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EraseOutcome {
    Erased {
        conversations: u64,
    },
    /// A conversation of theirs is still live: nothing was changed.
    Live,
    Unknown,
}
