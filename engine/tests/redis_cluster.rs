//! The cluster's placement and store rules, against a real `redis-server`
//! this test starts on a free loopback port (never the shared one); records,
//! which a cluster keeps in PostgreSQL, against a database of the test's own
//! on the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth).

mod common;

use common::Postgres;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_engine::cluster::key::ActorKey;
use switchboard_engine::cluster::keys::Keys;
use switchboard_engine::cluster::placement::Placement;
use switchboard_engine::cluster::redis_store::RedisStore;
use switchboard_engine::cluster::store::{Snapshot, StateWrite, Store, StoreError};
use switchboard_engine::storage::live::Recorded;
use switchboard_proto::model::{
    Author, ConversationRecord, ConversationState, Message, NamedRef, Role,
};
use switchboard_proto::{ConversationId, MessageId, QueueId, Timestamp};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    async fn connection(&self) -> redis::aio::ConnectionManager {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        redis::aio::ConnectionManager::new(client).await.unwrap()
    }

    async fn node(&self, name: &str, ttl: Duration) -> (Arc<Placement>, RedisStore) {
        let conn = self.connection().await;
        let keys = Keys::new("t");
        let placement = Arc::new(Placement::new(conn.clone(), keys.clone(), name.into(), ttl));
        placement.register(name).await.unwrap();
        (placement, RedisStore::new(conn, keys, name.into()))
    }

    /// Every key in this Redis (test Redis: tiny).
    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut self.connection().await)
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LONG: Duration = Duration::from_secs(30);

fn message(conversation: &ConversationId, seq: u64) -> Arc<Message> {
    Arc::new(Message {
        conversation_id: conversation.clone(),
        seq,
        id: MessageId::new(format!("{conversation}-{seq}")),
        from: Author {
            role: Role::Customer,
            id: None,
            name: "Ada".into(),
        },
        text: format!("message {seq}"),
        ts: Timestamp(seq as i64),
        client_msg_id: None,
    })
}

/// A record with one message, read from its JSON (as the database keeps
/// it), so fields a record gains later take their defaults here.
fn record(id: &ConversationId, state: ConversationState) -> ConversationRecord {
    serde_json::from_value(serde_json::json!({
        "conversation_id": id,
        "state": state,
        "customer": {"name": "Ada"},
        "attributes": {},
        "queue": NamedRef::new("sales", "Sales"),
        "created_at": Timestamp(1),
        "participants": [],
        "legs": [],
        "offers": [],
        "wrap_ups": [],
        "messages": [*message(id, 1)],
    }))
    .expect("a record")
}

/// Waits until `node`'s heartbeat key is gone (its TTL ran out).
async fn until_lapsed(redis: &Redis, node: &str) {
    let mut conn = redis.connection().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: i64 = redis::cmd("EXISTS")
            .arg(format!("t:node:{node}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if alive == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "heartbeat of {node} never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn placement_one_owner_at_a_time() {
    let redis = Redis::start();
    let (one, _) = redis.node("n1", LONG).await;
    let (two, _) = redis.node("n2", LONG).await;
    let queue = ActorKey::Queue(QueueId::new("sales"));
    assert_eq!(one.claim(&queue).await.unwrap().as_deref(), Some("n1"));
    // A live owner keeps it: the second claim answers the owner.
    assert_eq!(two.claim(&queue).await.unwrap().as_deref(), Some("n1"));
    assert_eq!(one.claim(&queue).await.unwrap().as_deref(), Some("n1"));
}

#[tokio::test]
async fn placement_moves_when_the_owners_heartbeat_lapses() {
    let redis = Redis::start();
    let (one, _) = redis.node("n1", Duration::from_millis(300)).await;
    let (two, _) = redis.node("n2", LONG).await;
    let queue = ActorKey::Queue(QueueId::new("sales"));
    assert_eq!(one.claim(&queue).await.unwrap().as_deref(), Some("n1"));
    until_lapsed(&redis, "n1").await;
    assert_eq!(two.dead_nodes().await.unwrap(), vec!["n1".to_owned()]);
    assert_eq!(two.owned_by("n1").await.unwrap(), vec![queue.clone()]);
    assert_eq!(two.claim(&queue).await.unwrap().as_deref(), Some("n2"));
    // The dead node owns nothing now, so it can be forgotten.
    assert!(two.owned_by("n1").await.unwrap().is_empty());
    assert!(two.forget_node("n1").await.unwrap());
    // The lapsed node learns it at its next renewal; it finds the new
    // owner, and cannot claim anything until it rejoins.
    assert!(!one.renew().await.unwrap());
    assert!(!one.lease_valid());
    assert_eq!(one.claim(&queue).await.unwrap().as_deref(), Some("n2"));
    let other = ActorKey::Queue(QueueId::new("support"));
    assert!(one.claim(&other).await.is_err());
    one.register("n1").await.unwrap();
    assert_eq!(one.claim(&other).await.unwrap().as_deref(), Some("n1"));
}

#[tokio::test]
async fn placement_an_actor_with_no_state_has_no_owner() {
    let redis = Redis::start();
    let (one, _) = redis.node("n1", LONG).await;
    let gone = ActorKey::Conversation(ConversationId::new("c-finished"));
    assert_eq!(one.claim(&gone).await.unwrap(), None);
    // Only a conversation being created here is claimed without state.
    assert_eq!(one.claim_new(&gone).await.unwrap().as_deref(), Some("n1"));
}

#[tokio::test]
async fn fencing_a_node_that_lost_its_lease_writes_nothing() {
    let redis = Redis::start();
    let (one, one_store) = redis.node("n1", Duration::from_millis(300)).await;
    let (two, two_store) = redis.node("n2", LONG).await;
    let id = ConversationId::new("c-1");
    let key = ActorKey::Conversation(id.clone());
    assert_eq!(one.claim_new(&key).await.unwrap().as_deref(), Some("n1"));
    let mut first = StateWrite::new(key.clone());
    first.snapshot = Snapshot::Keep(b"v1".to_vec());
    first.messages = vec![message(&id, 1)];
    one_store.write(first).await.unwrap();

    // n1 pauses past its TTL; n2 takes over and writes on.
    until_lapsed(&redis, "n1").await;
    assert_eq!(two.claim(&key).await.unwrap().as_deref(), Some("n2"));
    let mut second = StateWrite::new(key.clone());
    second.snapshot = Snapshot::Keep(b"v2".to_vec());
    second.messages = vec![message(&id, 2)];
    two_store.write(second).await.unwrap();

    // n1 wakes up and tries to write: refused, nothing changes.
    let mut stale = StateWrite::new(key.clone());
    stale.snapshot = Snapshot::Keep(b"stale".to_vec());
    stale.messages = vec![message(&id, 3)];
    assert!(matches!(
        one_store.write(stale).await,
        Err(StoreError::Fenced)
    ));
    // Even after it rejoins: the conversation is n2's.
    one.register("n1").await.unwrap();
    let mut rejoined = StateWrite::new(key.clone());
    rejoined.snapshot = Snapshot::Keep(b"stale".to_vec());
    assert!(matches!(
        one_store.write(rejoined).await,
        Err(StoreError::Fenced)
    ));
    assert_eq!(
        two_store.load_state(&key).await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    let log = two_store.load_log(&id, 0).await.unwrap();
    assert_eq!(log.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn durability_a_message_is_in_the_log_once_and_resume_reads_after_seq() {
    let redis = Redis::start();
    let (one, store) = redis.node("n1", LONG).await;
    let id = ConversationId::new("c-2");
    let key = ActorKey::Conversation(id.clone());
    one.claim_new(&key).await.unwrap();
    for seq in [1, 2, 2, 3] {
        // seq 2 twice: a retried append adds nothing.
        let mut write = StateWrite::new(key.clone());
        write.messages = vec![message(&id, seq)];
        store.write(write).await.unwrap();
    }
    let all = store.load_log(&id, 0).await.unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[1], message(&id, 2));
    let after = store.load_log(&id, 2).await.unwrap();
    assert_eq!(after.iter().map(|m| m.seq).collect::<Vec<_>>(), [3]);
}

#[tokio::test]
async fn durability_a_finished_conversation_leaves_redis_and_releases_its_owner() {
    let redis = Redis::start();
    let postgres = Postgres::create();
    let (one, store) = redis.node("n1", LONG).await;
    let database = postgres.open().await;
    let store = Recorded::new(store, database.clone());
    let id = ConversationId::new("c-3");
    let key = ActorKey::Conversation(id.clone());
    one.claim_new(&key).await.unwrap();
    let mut open = StateWrite::new(key.clone());
    open.snapshot = Snapshot::Keep(b"live".to_vec());
    open.messages = vec![message(&id, 1)];
    open.record = Some(record(&id, ConversationState::Active));
    store.write(open).await.unwrap();
    // Live: recorded from its first write, as it stands.
    let live = database
        .record(&id)
        .await
        .unwrap()
        .expect("recorded while live");
    assert_eq!(live.state, ConversationState::Active);
    assert_eq!(live.messages, vec![(*message(&id, 1)).clone()]);

    let mut done = StateWrite::new(key.clone());
    done.snapshot = Snapshot::Delete;
    done.messages = vec![message(&id, 2)];
    let mut closed = record(&id, ConversationState::Closed);
    closed.messages.push((*message(&id, 2)).clone());
    done.record = Some(closed.clone());
    store.write(done).await.unwrap();

    // The record, with every message, is the database's.
    assert_eq!(database.record(&id).await.unwrap(), Some(closed));
    // Redis keeps nothing of it: no snapshot, no log, no record, no owner.
    assert_eq!(store.load_state(&key).await.unwrap(), None);
    assert!(store.load_log(&id, 0).await.unwrap().is_empty());
    let kept: Vec<String> = redis
        .keys()
        .await
        .into_iter()
        .filter(|key| key.contains("c-3"))
        .collect();
    assert!(kept.is_empty(), "Redis still holds {kept:?}");
    // Nobody owns it any more; asking for it claims nothing.
    assert_eq!(one.claim(&key).await.unwrap(), None);
    assert!(one.owned_by("n1").await.unwrap().is_empty());
}

#[tokio::test]
async fn durability_who_waits_in_a_queue_is_written_by_the_conversations_themselves() {
    let redis = Redis::start();
    let (one, store) = redis.node("n1", LONG).await;
    let sales = QueueId::new("sales");
    let mut waiting = Vec::new();
    for (n, since) in [("c-a", 20), ("c-b", 10)] {
        let id = ConversationId::new(n);
        let key = ActorKey::Conversation(id.clone());
        one.claim_new(&key).await.unwrap();
        let mut write = StateWrite::new(key);
        write.snapshot = Snapshot::Keep(b"queued".to_vec());
        write.waiting = Some((sales.clone(), Some(Timestamp(since))));
        store.write(write).await.unwrap();
        waiting.push(id);
    }
    assert_eq!(
        store.waiting(&sales).await.unwrap(),
        vec![
            (ConversationId::new("c-b"), Timestamp(10)),
            (ConversationId::new("c-a"), Timestamp(20)),
        ]
    );
    // Offered (or abandoned): it waits no more.
    let mut offered = StateWrite::new(ActorKey::Conversation(waiting[1].clone()));
    offered.waiting = Some((sales.clone(), None));
    store.write(offered).await.unwrap();
    assert_eq!(
        store.waiting(&sales).await.unwrap(),
        vec![(ConversationId::new("c-a"), Timestamp(20))]
    );
}

#[tokio::test]
async fn durability_every_closed_record_is_kept_in_the_database_none_in_redis() {
    let redis = Redis::start();
    let postgres = Postgres::create();
    let (one, store) = redis.node("n1", LONG).await;
    let database = postgres.open().await;
    let store = Recorded::new(store, database.clone());
    let names = ["c-old", "c-mid", "c-new"];
    for n in names {
        let id = ConversationId::new(n);
        let key = ActorKey::Conversation(id.clone());
        one.claim_new(&key).await.unwrap();
        let mut done = StateWrite::new(key);
        done.snapshot = Snapshot::Delete;
        done.messages = vec![message(&id, 1)];
        done.record = Some(record(&id, ConversationState::Closed));
        store.write(done).await.unwrap();
    }
    // No count bound (retention is by age, in the database): all kept.
    for n in names {
        let id = ConversationId::new(n);
        assert_eq!(
            database.record(&id).await.unwrap(),
            Some(record(&id, ConversationState::Closed))
        );
    }
    // Another handle on the same database (a node started later) reads them.
    let again = postgres.open().await;
    for n in names {
        let id = ConversationId::new(n);
        assert!(again.record(&id).await.unwrap().is_some(), "{n}");
    }
    let in_redis: Vec<String> = redis
        .keys()
        .await
        .into_iter()
        .filter(|key| names.iter().any(|n| key.contains(n)) || key.contains("record"))
        .collect();
    assert!(in_redis.is_empty(), "Redis holds {in_redis:?}");
}

#[tokio::test]
async fn placement_a_dead_nodes_actor_with_no_state_is_dropped_from_its_list() {
    let redis = Redis::start();
    let (one, _) = redis.node("n1", Duration::from_millis(300)).await;
    let (two, _) = redis.node("n2", LONG).await;
    // Claimed for a chat being created, then n1 died before its first write.
    let ghost = ActorKey::Conversation(ConversationId::new("c-ghost"));
    assert_eq!(one.claim_new(&ghost).await.unwrap().as_deref(), Some("n1"));
    until_lapsed(&redis, "n1").await;
    assert_eq!(two.claim(&ghost).await.unwrap(), None);
    assert!(two.owned_by("n1").await.unwrap().is_empty());
    assert!(two.forget_node("n1").await.unwrap());
}
