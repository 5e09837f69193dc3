//! Where conversation logs, closed records and agent presence are kept.
//! [`MemoryStore`] serves the embedded node; the Redis store implements the
//! same trait for a cluster. Futures, so a networked store fits unchanged.

use futures_util::future::{ready, BoxFuture};
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use switchboard_proto::model::{AgentInfo, ConversationRecord, Message};
use switchboard_proto::{AgentId, ConversationId};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub trait Store: Send + Sync + 'static {
    /// Appends to a conversation's log. A message is acknowledged to its
    /// sender only after this completes.
    fn append_message(&self, message: Arc<Message>) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Keeps the record of a conversation that changes no more.
    fn save_record(&self, record: ConversationRecord)
        -> BoxFuture<'static, Result<(), StoreError>>;
    fn load_record(
        &self,
        id: &ConversationId,
    ) -> BoxFuture<'static, Result<Option<ConversationRecord>, StoreError>>;
    /// An agent's directory row (state and load), or `None` at logout.
    fn put_presence(&self, agent: &AgentId, info: Option<AgentInfo>);
    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentInfo>, StoreError>>;
}

/// The embedded node's store. Closed records are kept up to a bound, oldest
/// dropped first, so a long-running node does not grow without end.
///
/// It keeps no message log: in one process the conversation actor's own log
/// is the log (it lives as long as the conversation, and the record carries
/// the transcript after), so a second copy would only cost a global lock on
/// every message.
pub struct MemoryStore {
    records: RwLock<Records>,
    presence: RwLock<HashMap<AgentId, AgentInfo>>,
}

struct Records {
    by_id: HashMap<ConversationId, Arc<ConversationRecord>>,
    /// Oldest first.
    order: VecDeque<ConversationId>,
    kept: usize,
}

impl MemoryStore {
    pub fn new(records_kept: usize) -> Self {
        Self {
            records: RwLock::new(Records {
                by_id: HashMap::new(),
                order: VecDeque::new(),
                kept: records_kept.max(1),
            }),
            presence: RwLock::default(),
        }
    }
}

impl Store for MemoryStore {
    fn append_message(&self, _message: Arc<Message>) -> BoxFuture<'static, Result<(), StoreError>> {
        // The conversation actor holds the log (see the type's comment).
        Box::pin(ready(Ok(())))
    }

    fn save_record(
        &self,
        record: ConversationRecord,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        // The record carries the transcript: the live log is no longer needed.
        let mut records = self.records.write();
        let id = record.conversation_id.clone();
        if records.by_id.insert(id.clone(), Arc::new(record)).is_none() {
            records.order.push_back(id);
        }
        while records.order.len() > records.kept {
            if let Some(oldest) = records.order.pop_front() {
                records.by_id.remove(&oldest);
            }
        }
        Box::pin(ready(Ok(())))
    }

    fn load_record(
        &self,
        id: &ConversationId,
    ) -> BoxFuture<'static, Result<Option<ConversationRecord>, StoreError>> {
        let record = self
            .records
            .read()
            .by_id
            .get(id)
            .map(|record| (**record).clone());
        Box::pin(ready(Ok(record)))
    }

    fn put_presence(&self, agent: &AgentId, info: Option<AgentInfo>) {
        let mut presence = self.presence.write();
        match info {
            Some(info) => presence.insert(agent.clone(), info),
            None => presence.remove(agent),
        };
    }

    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentInfo>, StoreError>> {
        let rows = self.presence.read().values().cloned().collect();
        Box::pin(ready(Ok(rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::model::{ConversationState, Customer, NamedRef};
    use switchboard_proto::Timestamp;

    fn record(id: &str) -> ConversationRecord {
        ConversationRecord {
            conversation_id: ConversationId::new(id),
            state: ConversationState::Closed,
            customer: Customer {
                name: "Ada".into(),
                email: None,
            },
            attributes: Default::default(),
            queue: NamedRef::new("sales", "Sales"),
            created_at: Timestamp(0),
            first_accepted_at: None,
            ended_at: None,
            closed_at: None,
            participants: Vec::new(),
            owner: None,
            legs: Vec::new(),
            offers: Vec::new(),
            wrap_ups: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn kept(store: &MemoryStore, id: &str) -> bool {
        futures_util::FutureExt::now_or_never(store.load_record(&ConversationId::new(id)))
            .and_then(Result::ok)
            .flatten()
            .is_some()
    }

    #[test]
    fn embedded_store_keeps_the_newest_records_up_to_its_bound() {
        let store = MemoryStore::new(2);
        for id in ["a", "b", "c"] {
            let _ = futures_util::FutureExt::now_or_never(store.save_record(record(id)));
        }
        assert!(!kept(&store, "a"));
        assert!(kept(&store, "b"));
        assert!(kept(&store, "c"));
    }
}
