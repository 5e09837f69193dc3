//! Placement: which node owns each actor. An owner is recorded in Redis
//! (`owner:<kind>:<id>` -> node) and valid while that node's heartbeat key
//! lives. Claims are compare-and-set in Lua, so two nodes never both own an
//! actor; a node whose heartbeat lapsed owns nothing until it renews.

use parking_lot::RwLock;
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::key::ActorKey;
use super::keys::Keys;
use super::store::StoreError;

/// Owner of `KEYS[1]`: the current owner while its heartbeat lives;
/// otherwise this node (ARGV[1]) takes it, if its own heartbeat lives.
/// ARGV[2] = key prefix, ARGV[3] = the actor's name, ARGV[4] = '1' when
/// the actor exists only with a snapshot (`KEYS[2]`): then '' answers
/// that there is nothing to own (logged out, finished).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
local alive = redis.call('EXISTS', ARGV[2] .. ':node:' .. ARGV[1]) == 1
if current == ARGV[1] then
  if alive then return current end
  return false
end
if current and redis.call('EXISTS', ARGV[2] .. ':node:' .. current) == 1 then
  return current
end
if not alive then return false end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  if current then
    redis.call('SREM', ARGV[2] .. ':owned:' .. current, ARGV[3])
    redis.call('DEL', KEYS[1])
  end
  return ''
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', ARGV[2] .. ':owned:' .. ARGV[1], ARGV[3])
if current then redis.call('SREM', ARGV[2] .. ':owned:' .. current, ARGV[3]) end
return ARGV[1]
",
    )
});

/// Renews this node's heartbeat (`KEYS[1]`) for ARGV[1] ms. Answers 0 when
/// it had lapsed: the node was taken for dead and must start over.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end
return 0
",
    )
});

/// Removes a dead node from the cluster once it owns nothing.
static FORGET_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// Owners remembered at most; the cache starts over past this.
const OWNERS_CACHED: usize = 100_000;

pub fn unavailable(error: redis::RedisError) -> StoreError {
    metrics::counter!("switchboard_redis_errors_total").increment(1);
    StoreError::Unavailable(error.to_string())
}

pub struct Placement {
    conn: ConnectionManager,
    keys: Keys,
    /// This node's incarnation: its node id plus a suffix unique per start.
    me: String,
    ttl: Duration,
    /// Where this node's process started; lease times count from here.
    epoch: Instant,
    /// Until when (ms after `epoch`) this node may act as an owner: the
    /// time its last renewal was sent plus the TTL, less a margin.
    lease_until_ms: AtomicU64,
    owners: RwLock<HashMap<ActorKey, String>>,
}

impl Placement {
    pub fn new(conn: ConnectionManager, keys: Keys, me: String, ttl: Duration) -> Self {
        Self {
            conn,
            keys,
            me,
            ttl,
            epoch: Instant::now(),
            lease_until_ms: AtomicU64::new(0),
            owners: RwLock::default(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// May this node act as an owner now? False once its lease may have
    /// lapsed (a pause, a lost Redis) until a renewal succeeds.
    pub fn lease_valid(&self) -> bool {
        self.now_ms() < self.lease_until_ms.load(Ordering::Acquire)
    }

    fn extend_lease(&self, sent_at_ms: u64) {
        let margin = (self.ttl.as_millis() as u64) / 10;
        let until = sent_at_ms + self.ttl.as_millis() as u64 - margin;
        self.lease_until_ms.store(until, Ordering::Release);
    }

    pub fn drop_lease(&self) {
        self.lease_until_ms.store(0, Ordering::Release);
    }

    /// Joins (or rejoins) the cluster: a fresh heartbeat and a listing.
    pub async fn register(&self, about: &str) -> Result<(), StoreError> {
        let sent_at = self.now_ms();
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.keys.heartbeat(&self.me))
            .arg(about)
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg(self.keys.nodes())
            .arg(&self.me)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)?;
        self.extend_lease(sent_at);
        Ok(())
    }

    /// Renews the heartbeat. `Ok(false)`: it had lapsed, so other nodes
    /// may have taken this node's actors; the caller must drop them all.
    pub async fn renew(&self) -> Result<bool, StoreError> {
        let sent_at = self.now_ms();
        let mut conn = self.conn.clone();
        let renewed: i64 = RENEW
            .key(self.keys.heartbeat(&self.me))
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if renewed == 1 {
            self.extend_lease(sent_at);
        } else {
            self.drop_lease();
        }
        Ok(renewed == 1)
    }

    /// Gives up the heartbeat (drain): survivors adopt this node's actors at
    /// their next scan instead of waiting for the TTL.
    pub async fn resign(&self) -> Result<(), StoreError> {
        self.drop_lease();
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.keys.heartbeat(&self.me))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// The owner last seen for `key`, without asking Redis.
    pub fn cached_owner(&self, key: &ActorKey) -> Option<String> {
        self.owners.read().get(key).cloned()
    }

    pub fn forget_owner(&self, key: &ActorKey) {
        self.owners.write().remove(key);
    }

    pub fn forget_all_owners(&self) {
        self.owners.write().clear();
    }

    /// The live owner of `key`, claiming it for this node when it has none.
    /// `None`: the actor does not exist (an agent not logged in, a
    /// conversation finished or unknown), so nobody owns it.
    pub async fn claim(&self, key: &ActorKey) -> Result<Option<String>, StoreError> {
        // Queues are configured: they exist without a snapshot.
        let needs_snapshot = !matches!(key, ActorKey::Queue(_));
        self.claim_with(key, needs_snapshot).await
    }

    /// Claims a conversation being created here (no snapshot yet).
    pub async fn claim_new(&self, key: &ActorKey) -> Result<Option<String>, StoreError> {
        self.claim_with(key, false).await
    }

    async fn claim_with(
        &self,
        key: &ActorKey,
        needs_snapshot: bool,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let owner: Option<String> = CLAIM
            .key(self.keys.owner(key))
            .key(self.keys.state(key))
            .arg(&self.me)
            .arg(self.keys.prefix())
            .arg(key.name())
            .arg(if needs_snapshot { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let owner = owner.ok_or_else(|| {
            StoreError::Unavailable("this node's heartbeat lapsed; it owns nothing".into())
        })?;
        if owner.is_empty() {
            return Ok(None);
        }
        let mut owners = self.owners.write();
        if owners.len() >= OWNERS_CACHED {
            // Finished conversations are never forgotten one by one.
            owners.clear();
        }
        owners.insert(key.clone(), owner.clone());
        Ok(Some(owner))
    }

    /// Nodes listed in the cluster whose heartbeat is gone.
    pub async fn dead_nodes(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.nodes())
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let others: Vec<String> = nodes.into_iter().filter(|node| *node != self.me).collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for node in &others {
            pipe.cmd("EXISTS").arg(self.keys.heartbeat(node));
        }
        let alive: Vec<i64> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(others
            .into_iter()
            .zip(alive)
            .filter(|(_, alive)| *alive == 0)
            .map(|(node, _)| node)
            .collect())
    }

    /// The actors `node` owned (as far as Redis knows).
    pub async fn owned_by(&self, node: &str) -> Result<Vec<ActorKey>, StoreError> {
        let mut conn = self.conn.clone();
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.owned(node))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(names
            .iter()
            .filter_map(|name| ActorKey::parse(name))
            .collect())
    }

    /// Drops a dead node from the cluster's list once it owns nothing.
    pub async fn forget_node(&self, node: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let forgotten: i64 = FORGET_NODE
            .key(self.keys.nodes())
            .key(self.keys.owned(node))
            .key(self.keys.heartbeat(node))
            .arg(node)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(forgotten == 1)
    }
}
