//! A node's membership in a cluster: joining (Redis connections, placement,
//! bus, store), keeping its heartbeat, stepping down when the heartbeat
//! lapsed, and adopting the actors of nodes that died or drained.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

use super::bus::Bus;
use super::key::ActorKey;
use super::keys::Keys;
use super::placement::Placement;
use super::redis_store::RedisStore;
use super::routed::{Activate, Retire};
use crate::agent::actor::AgentActor;
use crate::config::ClusterConfig;
use crate::context::EngineContext;
use crate::conversation::actor::ConversationActor;
use crate::error::EngineError;
use crate::queue::actor::QueueActor;

/// What joining made: the pieces the engine context takes.
pub struct Joined {
    pub bus: Arc<Bus>,
    pub store: RedisStore,
    /// What an operator should know about this Redis (no persistence).
    pub warnings: Vec<String>,
}

/// Connects to Redis and registers this node. Fails when Redis cannot be
/// reached, so a misconfigured node stops at start rather than limp.
pub async fn join(config: &ClusterConfig, node_id: &str) -> Result<Joined, EngineError> {
    let unavailable =
        |error: redis::RedisError| EngineError::Unavailable(format!("cluster.redis_url: {error}"));
    let client = redis::Client::open(config.redis_url.as_str()).map_err(unavailable)?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(config.request_timeout)
        .set_response_timeout(config.request_timeout)
        .set_number_of_retries(2)
        .set_max_delay(500);
    let conn = ConnectionManager::new_with_config(client.clone(), manager)
        .await
        .map_err(unavailable)?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let me = format!("{node_id}.{}", &suffix[suffix.len() - 8..]);
    let keys = Keys::new(&config.key_prefix);
    let placement = Arc::new(Placement::new(
        conn.clone(),
        keys.clone(),
        me.clone(),
        config.heartbeat_ttl,
    ));
    placement.register(node_id).await?;
    let warnings = persistence_warning(conn.clone())
        .await
        .into_iter()
        .collect();
    let bus = Bus::start(placement, client, config.request_timeout);
    let store = RedisStore::new(conn, keys, me);
    Ok(Joined {
        bus,
        store,
        warnings,
    })
}

/// A warning when Redis keeps nothing on disk (no AOF, no RDB snapshots):
/// restarted, it comes back empty. The record survives in the database, but
/// live state does not (see docs/operations.md). `None` when it persists,
/// or when `CONFIG` is not allowed (a managed Redis: its operator knows).
async fn persistence_warning(conn: ConnectionManager) -> Option<String> {
    let setting = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<Vec<String>>(&mut conn)
                .await
                .ok()
                .and_then(|pair| pair.get(1).cloned())
        }
    };
    let appendonly = setting("appendonly").await?;
    let save = setting("save").await?;
    redis_persistence_warning(&appendonly, &save)
}

/// The rule behind [`persistence_warning`], on `CONFIG GET` answers.
fn redis_persistence_warning(appendonly: &str, save: &str) -> Option<String> {
    if appendonly.eq_ignore_ascii_case("yes") || !save.trim().is_empty() {
        return None;
    }
    Some(
        "Redis has no persistence (appendonly no, save \"\"): if it restarts, it comes back \
         empty, and live chats, queues and presence are rebuilt only from what the database \
         holds; turn on AOF (appendonly yes)"
            .to_owned(),
    )
}

/// The pace of the heartbeat and of adoption: three ticks per TTL, so one
/// late tick never lets a lease lapse; a tick that is late is not made up.
fn third_of_ttl(placement: &Placement) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(placement.ttl() / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Keeps the heartbeat, every third of the TTL, until the node resigns;
/// adoption runs beside it, so a long adoption never lets the lease lapse.
pub async fn keep_membership(engine: Arc<EngineContext>, bus: Arc<Bus>, node_id: String) {
    let placement = bus.placement().clone();
    actix::spawn(adopt_orphans(engine.clone(), placement.clone()));
    let mut tick = third_of_ttl(&placement);
    loop {
        tick.tick().await;
        if engine.is_resigned() {
            return;
        }
        match placement.renew().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    node = placement.me(),
                    "heartbeat lapsed: stepping down and rejoining"
                );
                metrics::counter!("switchboard_lease_lost_total").increment(1);
                retire_all(&engine);
                placement.forget_all_owners();
                // Stay dead for one TTL: a write the old actors still have
                // in flight fails its fence (no heartbeat), the others adopt
                // what they can, and no old actor is left running when
                // this node comes back under the same name.
                tokio::time::sleep(placement.ttl()).await;
                if placement.register(&node_id).await.is_err() {
                    continue;
                }
                // What still names this node as owner comes back here.
                adopt(&engine, &placement, placement.me().to_owned()).await;
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
    }
}

/// Every third of the TTL, adopts the actors of nodes whose heartbeat is
/// gone (dead, or drained).
async fn adopt_orphans(engine: Arc<EngineContext>, placement: Arc<Placement>) {
    let mut tick = third_of_ttl(&placement);
    loop {
        tick.tick().await;
        if engine.is_resigned() {
            return;
        }
        if !placement.lease_valid() {
            continue;
        }
        match placement.dead_nodes().await {
            Ok(dead) => {
                for node in dead {
                    adopt(&engine, &placement, node).await;
                }
            }
            Err(error) => tracing::warn!(%error, "could not list nodes"),
        }
    }
}

/// Claims each actor `node` owned and starts here those this node won.
async fn adopt(engine: &Arc<EngineContext>, placement: &Placement, node: String) {
    let Ok(keys) = placement.owned_by(&node).await else {
        return;
    };
    let mut adopted = 0;
    for key in keys {
        match placement.claim(&key).await {
            Ok(Some(owner)) if owner == placement.me() => match activate(engine, &key).await {
                Ok(()) => adopted += 1,
                Err(error) => {
                    // This node owns it now: it must run here, later.
                    tracing::warn!(actor = %key.name(), %error, "adopted actor did not start; retrying");
                    reactivate_later(engine.clone(), key);
                }
            },
            Ok(_) => {}
            // Redis is not answering: the next tick tries again.
            Err(_) => return,
        }
    }
    if adopted > 0 {
        tracing::info!(from = %node, adopted, "adopted actors");
        metrics::counter!("switchboard_actors_adopted_total").increment(adopted);
    }
    if node != placement.me() {
        let _ = placement.forget_node(&node).await;
    }
}

/// Starts an actor again from its store a little later (its write failed,
/// so its state here may not match what the store holds), unless another
/// node owns it by then or it is gone. Retries while the store does not
/// answer, so its timers run again without waiting for a message to wake
/// it. An embedded node (no bus) retries until its database answers.
pub fn reactivate_later(engine: Arc<EngineContext>, key: ActorKey) {
    actix::spawn(async move {
        let mut delay = Duration::from_millis(200);
        let mut attempts = 0;
        loop {
            tokio::time::sleep(delay).await;
            if engine.is_resigned() {
                return;
            }
            attempts += 1;
            let Some(bus) = engine.bus.clone() else {
                delay = (delay * 2).min(Duration::from_secs(5));
                match activate(&engine, &key).await {
                    Ok(()) => return,
                    Err(EngineError::NotFound { .. }) => return,
                    Err(error) => {
                        tracing::warn!(actor = %key.name(), %error, "not started again yet");
                        continue;
                    }
                }
            };
            let placement = bus.placement().clone();
            delay = (delay * 2).min(placement.ttl());
            match placement.claim(&key).await {
                Ok(Some(owner)) if owner == placement.me() => {
                    if activate(&engine, &key).await.is_ok() {
                        return;
                    }
                }
                Ok(_) => return,
                Err(_) => {}
            }
            if attempts >= 30 {
                tracing::error!(actor = %key.name(), "could not start again from Redis");
                return;
            }
        }
    });
}

/// Starts an actor this node owns from its snapshot (timers re-armed).
pub(crate) async fn activate(
    engine: &Arc<EngineContext>,
    key: &ActorKey,
) -> Result<(), EngineError> {
    match key {
        ActorKey::Agent(_) => AgentActor::activate(engine, key).await.map(drop),
        ActorKey::Queue(_) => QueueActor::activate(engine, key).await.map(drop),
        ActorKey::Conversation(_) => ConversationActor::activate(engine, key).await.map(drop),
    }
}

/// Stops every actor here without writing: this node's lease lapsed, so
/// others may own them now. Sessions reconnect and find the new owners.
pub(crate) fn retire_all(engine: &EngineContext) {
    let running = engine.directory.take_all();
    for addr in running.agents {
        addr.do_send(Retire);
    }
    for addr in running.queues {
        addr.do_send(Retire);
    }
    for addr in running.conversations {
        addr.do_send(Retire);
    }
    engine.hub.reset_all(500);
}

/// How long a drained node waits for the last writes before it resigns.
pub const RESIGN_GRACE: Duration = Duration::from_millis(200);

#[cfg(test)]
mod persistence_tests {
    use super::redis_persistence_warning;

    #[test]
    fn redis_without_aof_or_rdb_is_reported() {
        assert!(redis_persistence_warning("no", "").is_some());
        assert!(redis_persistence_warning("yes", "").is_none());
        assert!(redis_persistence_warning("no", "3600 1 300 100").is_none());
    }
}
