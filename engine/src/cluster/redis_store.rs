//! The cluster's [`Store`] on Redis. Every write is one Lua script that
//! first checks this node still owns the actor and still has its heartbeat
//! (fencing): a node that was paused past its TTL writes nothing.
//!
//! Layout (see `keys.rs`): a snapshot per actor (MessagePack), a Stream per
//! conversation with one entry per message (id `<seq>-1`, so a retried
//! append is refused by Redis and changes nothing), a hash of agent
//! presence. Records are the database's (`storage`), not Redis's.

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::{Arc, LazyLock};
use switchboard_proto::model::Message;
use switchboard_proto::{AgentId, ConversationId, QueueId, Timestamp};

use super::key::ActorKey;
use super::keys::Keys;
use super::placement::unavailable;
use super::store::{Presence, Snapshot, StateWrite, Store, StoreError};
use crate::events::DomainEvent;
use crate::queue::routing::AgentView;

/// KEYS: owner, my heartbeat, state, log, presence, my owned set, queue
/// index, logouts, the event outbox.
/// ARGV: me, snapshot mode ('', 'keep', 'delete'), snapshot, presence op
/// ('', 'set', 'del'), presence field, presence value (the row, or the
/// logout's unix ms for 'del'), actor name, queue index op ('', 'add',
/// 'rem'), score, the number of events n, n events (JSON), then (seq,
/// message) pairs.
///
/// The events go to the outbox in the same script as the state that
/// yielded them: both happen, or (fenced) neither.
///
/// Deleting a conversation's snapshot (it closed) deletes its log too: its
/// transcript lives in the database by then.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local events = tonumber(ARGV[10])
for i = 11, 10 + events do
  redis.call('XADD', KEYS[9], '*', 'e', ARGV[i])
end
for i = 11 + events, #ARGV, 2 do
  redis.pcall('XADD', KEYS[4], ARGV[i] .. '-1', 'm', ARGV[i + 1])
end
if ARGV[4] == 'set' then
  redis.call('HSET', KEYS[5], ARGV[5], ARGV[6])
elseif ARGV[4] == 'del' then
  redis.call('HDEL', KEYS[5], ARGV[5])
  redis.call('HSET', KEYS[8], ARGV[5], ARGV[6])
end
if ARGV[8] == 'add' then
  redis.call('ZADD', KEYS[7], ARGV[9], string.sub(ARGV[7], 6))
elseif ARGV[8] == 'rem' then
  redis.call('ZREM', KEYS[7], string.sub(ARGV[7], 6))
end
if ARGV[2] == 'keep' then
  redis.call('SET', KEYS[3], ARGV[3])
elseif ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[3])
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[6], ARGV[7])
  if string.sub(ARGV[7], 1, 5) == 'conv:' then
    redis.call('DEL', KEYS[4])
  end
end
return 1
",
    )
});

pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    me: String,
}

impl RedisStore {
    pub fn new(conn: ConnectionManager, keys: Keys, me: String) -> Self {
        Self { conn, keys, me }
    }
}

fn encoded<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|error| StoreError::Unavailable(error.to_string()))
}

fn decoded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes)
        .map_err(|error| StoreError::Unavailable(format!("undecodable stored value: {error}")))
}

fn event_json(event: &DomainEvent) -> Result<String, StoreError> {
    serde_json::to_string(event).map_err(|error| StoreError::Unavailable(error.to_string()))
}

impl Store for RedisStore {
    fn keeps_state(&self) -> bool {
        true
    }

    fn carries_events(&self) -> bool {
        true
    }

    fn append_events(
        &self,
        events: Vec<DomainEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let outbox = self.keys.outbox();
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for event in &events {
                pipe.cmd("XADD")
                    .arg(&outbox)
                    .arg("*")
                    .arg("e")
                    .arg(event_json(event)?)
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
        })
    }

    fn write(&self, write: StateWrite) -> BoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let keys = self.keys.clone();
        let me = self.me.clone();
        Box::pin(async move {
            let log = match &write.key {
                ActorKey::Conversation(id) => keys.log(id),
                _ => keys.log(&ConversationId::new("-")),
            };
            let waiting_key = match &write.waiting {
                Some((queue, _)) => keys.waiting(queue),
                None => keys.waiting(&QueueId::new("-")),
            };
            let mut invocation = WRITE.prepare_invoke();
            invocation
                .key(keys.owner(&write.key))
                .key(keys.heartbeat(&me))
                .key(keys.state(&write.key))
                .key(log)
                .key(keys.presence())
                .key(keys.owned(&me))
                .key(waiting_key)
                .key(keys.logouts())
                .key(keys.outbox())
                .arg(&me);
            match &write.snapshot {
                Snapshot::Unchanged => invocation.arg("").arg(""),
                Snapshot::Keep(bytes) => invocation.arg("keep").arg(bytes.as_slice()),
                Snapshot::Delete => invocation.arg("delete").arg(""),
            };
            match &write.presence {
                None => invocation.arg("").arg("").arg(""),
                Some((agent, Presence::Listed(row))) => {
                    invocation.arg("set").arg(agent.as_str()).arg(encoded(row)?)
                }
                Some((agent, Presence::LoggedOut(at))) => {
                    invocation.arg("del").arg(agent.as_str()).arg(at.millis())
                }
            };
            invocation.arg(write.key.name());
            match &write.waiting {
                None => invocation.arg("").arg(0),
                Some((_, Some(since))) => invocation.arg("add").arg(since.0),
                Some((_, None)) => invocation.arg("rem").arg(0),
            };
            invocation.arg(write.events.len());
            for event in &write.events {
                invocation.arg(event_json(event)?);
            }
            for message in &write.messages {
                invocation.arg(message.seq).arg(encoded(message.as_ref())?);
            }
            let written: i64 = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written == 1 {
                Ok(())
            } else {
                metrics::counter!("switchboard_fenced_writes_total").increment(1);
                Err(StoreError::Fenced)
            }
        })
    }

    fn create_state(
        &self,
        key: &ActorKey,
        snapshot: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let mut conn = self.conn.clone();
        let state = self.keys.state(key);
        Box::pin(async move {
            redis::cmd("SET")
                .arg(state)
                .arg(snapshot)
                .arg("NX")
                .query_async::<Option<String>>(&mut conn)
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }

    fn load_state(
        &self,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        let mut conn = self.conn.clone();
        let state = self.keys.state(key);
        Box::pin(async move {
            redis::cmd("GET")
                .arg(state)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)
        })
    }

    fn load_log(
        &self,
        id: &ConversationId,
        after_seq: u64,
    ) -> BoxFuture<'static, Result<Vec<Arc<Message>>, StoreError>> {
        let mut conn = self.conn.clone();
        let log = self.keys.log(id);
        Box::pin(async move {
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(log)
                .arg(format!("{}-1", after_seq + 1))
                .arg("+")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            reply
                .ids
                .iter()
                .map(|entry| {
                    let bytes: Vec<u8> = entry.get("m").ok_or_else(|| {
                        StoreError::Unavailable(format!("log entry {} has no message", entry.id))
                    })?;
                    decoded::<Message>(&bytes).map(Arc::new)
                })
                .collect()
        })
    }

    fn waiting(
        &self,
        queue: &QueueId,
    ) -> BoxFuture<'static, Result<Vec<(ConversationId, Timestamp)>, StoreError>> {
        let mut conn = self.conn.clone();
        let waiting = self.keys.waiting(queue);
        Box::pin(async move {
            let rows: Vec<(String, i64)> = redis::cmd("ZRANGE")
                .arg(waiting)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .map(|(id, since)| (ConversationId::new(id), Timestamp(since)))
                .collect())
        })
    }

    fn presence(&self) -> BoxFuture<'static, Result<Vec<AgentView>, StoreError>> {
        let mut conn = self.conn.clone();
        let presence = self.keys.presence();
        Box::pin(async move {
            let rows: Vec<Vec<u8>> = redis::cmd("HVALS")
                .arg(presence)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            rows.iter().map(|row| decoded(row)).collect()
        })
    }

    fn logged_out_at(
        &self,
        agent: &AgentId,
    ) -> BoxFuture<'static, Result<Option<Timestamp>, StoreError>> {
        let mut conn = self.conn.clone();
        let logouts = self.keys.logouts();
        let agent = agent.as_str().to_owned();
        Box::pin(async move {
            let at: Option<i64> = redis::cmd("HGET")
                .arg(logouts)
                .arg(agent)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(at.map(Timestamp))
        })
    }
}
