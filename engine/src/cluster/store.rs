//! Where conversation logs, closed records and agent presence are kept.
//! [`MemoryStore`] serves the embedded node; the Redis store implements the
//! same trait for a cluster. Futures, so a networked store fits unchanged.

use futures_util::future::{ready, BoxFuture};
use parking_lot::RwLock;
use std::collections::HashMap;
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

#[derive(Default)]
pub struct MemoryStore {
    logs: RwLock<HashMap<ConversationId, Vec<Arc<Message>>>>,
    records: RwLock<HashMap<ConversationId, Arc<ConversationRecord>>>,
    presence: RwLock<HashMap<AgentId, AgentInfo>>,
}

impl Store for MemoryStore {
    fn append_message(&self, message: Arc<Message>) -> BoxFuture<'static, Result<(), StoreError>> {
        self.logs
            .write()
            .entry(message.conversation_id.clone())
            .or_default()
            .push(message);
        Box::pin(ready(Ok(())))
    }

    fn save_record(
        &self,
        record: ConversationRecord,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        // The record carries the transcript: the live log is no longer needed.
        self.logs.write().remove(&record.conversation_id);
        self.records
            .write()
            .insert(record.conversation_id.clone(), Arc::new(record));
        Box::pin(ready(Ok(())))
    }

    fn load_record(
        &self,
        id: &ConversationId,
    ) -> BoxFuture<'static, Result<Option<ConversationRecord>, StoreError>> {
        let record = self.records.read().get(id).map(|record| (**record).clone());
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
