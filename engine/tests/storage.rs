//! The system of record against both real databases: a SQLite file in a
//! temporary folder and a PostgreSQL database of the test's own. Every
//! rule runs on each, through the same code a node uses (the group-commit
//! writer, search, customers, erasure, retention).

mod common;

use common::{Postgres, SqliteFile};
use futures_util::StreamExt;
use std::sync::Arc;
use switchboard_engine::events::DomainEvent;
use switchboard_engine::storage::customers::EraseOutcome;
use switchboard_engine::storage::records::{Cursor, RecordRow, SearchFilter};
use switchboard_engine::storage::{Change, Database, DatabaseConfig, StorageError};
use switchboard_proto::model::*;
use switchboard_proto::{AgentId, ConversationId, CustomerId, MessageId, QueueId, Timestamp};

/// Runs `body` on a fresh SQLite database and on a fresh PostgreSQL one.
async fn on_both<F, Fut>(body: F)
where
    F: Fn(Database) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sqlite = SqliteFile::create();
    body(
        Database::open(DatabaseConfig::new(sqlite.url()))
            .await
            .expect("sqlite opens"),
    )
    .await;
    let postgres = Postgres::create();
    body(postgres.open().await).await;
}

const T0: i64 = 1_790_000_000_000;

fn record(
    id: &str,
    customer: &str,
    agent: &str,
    state: ConversationState,
    created: i64,
) -> ConversationRecord {
    let agent_ref = NamedRef::new(agent, agent.to_uppercase());
    let closed = state.is_final().then_some(Timestamp(created + 60_000));
    ConversationRecord {
        conversation_id: ConversationId::new(id),
        state,
        customer: Customer {
            id: Some(CustomerId::new(customer)),
            name: format!("Name of {customer}"),
            email: Some(format!("{customer}@example.com")),
            ..Customer::default()
        },
        attributes: [("page".to_owned(), serde_json::json!("/orders/1"))].into(),
        queue: NamedRef::new("sales", "Sales"),
        created_at: Timestamp(created),
        first_accepted_at: Some(Timestamp(created + 5_000)),
        ended_at: closed,
        closed_at: closed,
        participants: Vec::new(),
        owner: None,
        legs: vec![Leg {
            agent: agent_ref.clone(),
            role: LegRole::Owner,
            joined_at: Timestamp(created + 5_000),
            left_at: closed,
            left_because: None,
        }],
        offers: Vec::new(),
        wrap_ups: if state.is_final() {
            vec![WrapUpRecord {
                agent: agent_ref,
                reason: Reason {
                    id: "resolved".into(),
                    label: "Resolved".into(),
                },
                notes: None,
                at: Timestamp(created + 60_000),
                automatic: false,
            }]
        } else {
            Vec::new()
        },
        messages: Vec::new(),
        erased: false,
    }
}

fn message(id: &str, seq: u64, text: &str, created: i64) -> Arc<Message> {
    let conversation = ConversationId::new(id);
    Arc::new(Message {
        id: MessageId::for_seq(&conversation, seq),
        conversation_id: conversation,
        seq,
        from: Author {
            role: if seq % 2 == 1 {
                Role::Customer
            } else {
                Role::Agent
            },
            id: None,
            name: "someone".into(),
        },
        text: text.into(),
        ts: Timestamp(created + seq as i64 * 1_000),
        client_msg_id: None,
    })
}

/// Writes a conversation (its row, then its messages) in one write.
async fn store(database: &Database, record: &ConversationRecord, texts: &[&str]) {
    let mut changes = vec![Change::Record(Box::new(RecordRow::of(record).unwrap()))];
    for (n, text) in texts.iter().enumerate() {
        let id = record.conversation_id.as_str();
        changes.push(Change::Message(message(
            id,
            n as u64 + 1,
            text,
            record.created_at.millis(),
        )));
    }
    database.write(changes).await.expect("written");
}

fn ids(page: &ConversationPage) -> Vec<&str> {
    page.items
        .iter()
        .map(|item| item.conversation_id.as_str())
        .collect()
}

fn words(q: &str) -> SearchFilter {
    SearchFilter {
        words: SearchFilter::words_of(q),
        ..SearchFilter::default()
    }
}

#[actix_rt::test]
async fn a_record_and_its_transcript_read_back_whole_and_a_message_is_stored_once() {
    on_both(|database| async move {
        let mut closed = record("c-1", "cu-a", "bob", ConversationState::Closed, T0);
        store(&database, &closed, &["Hello", "Hi, how can I help?"]).await;
        // A retried write of message 2 (the same message) changes nothing.
        database
            .write(vec![Change::Message(message(
                "c-1",
                2,
                "Hi, how can I help?",
                T0,
            ))])
            .await
            .unwrap();
        let read = database
            .record(&closed.conversation_id)
            .await
            .unwrap()
            .unwrap();
        closed.messages = vec![
            (*message("c-1", 1, "Hello", T0)).clone(),
            (*message("c-1", 2, "Hi, how can I help?", T0)).clone(),
        ];
        assert_eq!(read, closed);
        let after_one = database.messages(&closed.conversation_id, 1).await.unwrap();
        assert_eq!(after_one.len(), 1);

        // A write that reached the record but never the live store is
        // replaced by the message that took its seq; its words go with it.
        let live = record("c-2", "cu-b", "bob", ConversationState::Active, T0);
        store(&database, &live, &["first", "never acknowledged zebra"]).await;
        database
            .write(vec![Change::Message(message(
                "c-2",
                2,
                "the real second",
                T0,
            ))])
            .await
            .unwrap();
        let texts: Vec<String> = database
            .messages(&live.conversation_id, 0)
            .await
            .unwrap()
            .iter()
            .map(|m| m.text.clone())
            .collect();
        assert_eq!(texts, ["first", "the real second"]);
        assert!(database
            .search(words("zebra"), None, 50)
            .await
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            ids(&database.search(words("real"), None, 50).await.unwrap()),
            ["c-2"]
        );
        // The engine's own lines are not searched.
        let mut system = (*message("c-2", 3, "Bob Chen joined the chat", T0)).clone();
        system.from = Author::system();
        database
            .write(vec![Change::Message(Arc::new(system))])
            .await
            .unwrap();
        assert!(database
            .search(words("joined"), None, 50)
            .await
            .unwrap()
            .items
            .is_empty());
        assert!(database
            .record(&ConversationId::new("c-none"))
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[actix_rt::test]
async fn search_matches_every_word_in_any_case_and_filters_and_pages_newest_first() {
    on_both(|database| async move {
        for n in 0..5 {
            let agent = if n % 2 == 0 { "bob" } else { "carol" };
            let state = if n == 4 {
                ConversationState::Active
            } else {
                ConversationState::Closed
            };
            let r = record(
                &format!("c-{n}"),
                &format!("cu-{n}"),
                agent,
                state,
                T0 + n * 1_000,
            );
            store(
                &database,
                &r,
                &[&format!("Parcel number {n} is LATE"), "We are on it"],
            )
            .await;
        }
        let all = database
            .search(SearchFilter::default(), None, 50)
            .await
            .unwrap();
        assert_eq!(ids(&all), ["c-4", "c-3", "c-2", "c-1", "c-0"]);
        assert_eq!(all.items[1].message_count, 2);
        assert_eq!(all.items[1].wrap_ups, ["resolved"]);
        assert_eq!(all.items[1].customer.id, Some(CustomerId::new("cu-3")));

        let found = database.search(words("late 3"), None, 50).await.unwrap();
        assert_eq!(ids(&found), ["c-3"]);
        let none = database
            .search(words("parcel cancelled"), None, 50)
            .await
            .unwrap();
        assert!(none.items.is_empty(), "every word is required");
        let quoted = database
            .search(words("\"late\" *"), None, 50)
            .await
            .unwrap();
        assert_eq!(quoted.items.len(), 5, "query syntax is only words");

        let carol = SearchFilter {
            agent: Some(AgentId::new("carol")),
            ..SearchFilter::default()
        };
        assert_eq!(
            ids(&database.search(carol, None, 50).await.unwrap()),
            ["c-3", "c-1"]
        );
        let active = SearchFilter {
            state: Some(ConversationState::Active),
            ..SearchFilter::default()
        };
        assert_eq!(
            ids(&database.search(active, None, 50).await.unwrap()),
            ["c-4"]
        );
        let window = SearchFilter {
            from: Some(Timestamp(T0 + 1_000)),
            to: Some(Timestamp(T0 + 3_000)),
            ..SearchFilter::default()
        };
        assert_eq!(
            ids(&database.search(window, None, 50).await.unwrap()),
            ["c-2", "c-1"]
        );
        let visible = SearchFilter {
            visible_to: Some(AgentId::new("bob")),
            ..SearchFilter::default()
        };
        assert_eq!(
            ids(&database.search(visible, None, 50).await.unwrap()),
            ["c-4", "c-2", "c-0"]
        );

        // Pages of two: each conversation once, in order.
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = database
                .search(SearchFilter::default(), after, 2)
                .await
                .unwrap();
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            match page.next_cursor {
                Some(next) => after = Some(Cursor::decode(&next).expect("our cursor")),
                None => break,
            }
        }
        assert_eq!(seen, ["c-4", "c-3", "c-2", "c-1", "c-0"]);
    })
    .await;
}

#[actix_rt::test]
async fn export_reads_every_row_a_page_at_a_time() {
    on_both(|database| async move {
        for n in 0..1_203 {
            let r = record(
                &format!("c-{n:05}"),
                "cu-x",
                "bob",
                ConversationState::Closed,
                T0 + n,
            );
            database
                .write(vec![Change::Record(Box::new(RecordRow::of(&r).unwrap()))])
                .await
                .unwrap();
        }
        let mut rows = database.export(SearchFilter::default());
        let mut count = 0;
        let mut last: Option<String> = None;
        while let Some(row) = rows.recv().await {
            let row = row.unwrap();
            if let Some(previous) = &last {
                assert!(
                    row.conversation_id.as_str() < previous.as_str(),
                    "newest first, once each"
                );
            }
            assert_eq!(row.wait_s, Some(5.0));
            assert_eq!(row.handle_s, Some(55.0));
            last = Some(row.conversation_id.as_str().to_owned());
            count += 1;
        }
        assert_eq!(count, 1_203);
    })
    .await;
}

#[actix_rt::test]
async fn a_verified_customer_is_one_customer_across_chats_and_erasure_leaves_no_trace() {
    on_both(|database| async move {
        let now = Timestamp(T0);
        let first = database
            .identify_customer(
                "shop-1",
                Some("Ada"),
                Some("ada@example.com"),
                ("typed", None),
                now,
            )
            .await
            .unwrap();
        assert_eq!(first.previous_conversations, 0);
        let mut r = record(
            "c-a",
            first.id.as_str(),
            "bob",
            ConversationState::Closed,
            T0,
        );
        r.customer.verified = true;
        store(&database, &r, &["My secret parcel code is 4242"]).await;
        let again = database
            .identify_customer(
                "shop-1",
                Some("Ada L."),
                None,
                ("typed", Some("x@y.z")),
                Timestamp(T0 + 10),
            )
            .await
            .unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(
            again.email.as_deref(),
            Some("ada@example.com"),
            "typed never changes a profile"
        );
        // With no name in the identity, the profile's stays.
        let third = database
            .identify_customer(
                "shop-1",
                None,
                None,
                ("Somebody Else", None),
                Timestamp(T0 + 20),
            )
            .await
            .unwrap();
        assert_eq!(third.name, "Ada L.");
        assert_eq!(again.previous_conversations, 1);
        assert_eq!(again.name, "Ada L.");
        let profile = database.customer(&first.id).await.unwrap().unwrap();
        assert_eq!(profile.name, "Ada L.");
        assert_eq!(
            profile.email.as_deref(),
            Some("ada@example.com"),
            "kept when not given"
        );
        assert!(profile.verified);
        assert!(database
            .agent_served_customer(&AgentId::new("bob"), &first.id)
            .await
            .unwrap());
        assert!(!database
            .agent_served_customer(&AgentId::new("carol"), &first.id)
            .await
            .unwrap());

        // A live conversation holds the erasure off, changing nothing.
        let live = record(
            "c-b",
            first.id.as_str(),
            "bob",
            ConversationState::Active,
            T0 + 1,
        );
        store(&database, &live, &["still here"]).await;
        assert_eq!(
            database.erase_customer(&first.id).await.unwrap(),
            EraseOutcome::Live
        );
        assert!(database.customer(&first.id).await.unwrap().is_some());
        let mut closed = live.clone();
        closed.state = ConversationState::Closed;
        store(&database, &closed, &[]).await;

        assert_eq!(
            database.erase_customer(&first.id).await.unwrap(),
            EraseOutcome::Erased { conversations: 2 }
        );
        assert!(database.customer(&first.id).await.unwrap().is_none());
        let erased = database.record(&r.conversation_id).await.unwrap().unwrap();
        assert!(erased.erased);
        assert!(erased.messages.is_empty());
        assert!(erased.attributes.is_empty());
        let json = serde_json::to_string(&erased).unwrap();
        for trace in ["Ada", "ada@example.com", "4242", "/orders/1"] {
            assert!(!json.contains(trace), "{trace} remains: {json}");
        }
        assert!(database
            .search(words("4242"), None, 50)
            .await
            .unwrap()
            .items
            .is_empty());
        // The figures stay: both conversations are still counted.
        assert_eq!(
            database
                .search(SearchFilter::default(), None, 50)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
        assert_eq!(
            database.erase_customer(&first.id).await.unwrap(),
            EraseOutcome::Unknown
        );
    })
    .await;
}

#[actix_rt::test]
async fn retention_deletes_only_finished_conversations_older_than_the_cutoff() {
    on_both(|database| async move {
        let day = 24 * 3600 * 1000;
        let old = record(
            "c-old",
            "cu-1",
            "bob",
            ConversationState::Closed,
            T0 - 400 * day,
        );
        let old_live = record(
            "c-old-live",
            "cu-2",
            "bob",
            ConversationState::Active,
            T0 - 400 * day,
        );
        let recent = record(
            "c-recent",
            "cu-3",
            "bob",
            ConversationState::Closed,
            T0 - day,
        );
        for r in [&old, &old_live, &recent] {
            store(&database, r, &["words to forget"]).await;
        }
        let deleted = database
            .delete_finished_before(Timestamp(T0 - 365 * day))
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(database
            .record(&old.conversation_id)
            .await
            .unwrap()
            .is_none());
        assert!(database
            .record(&old_live.conversation_id)
            .await
            .unwrap()
            .is_some());
        assert!(database
            .record(&recent.conversation_id)
            .await
            .unwrap()
            .is_some());
        let found = database.search(words("forget"), None, 50).await.unwrap();
        assert_eq!(ids(&found), ["c-recent", "c-old-live"]);
    })
    .await;
}

#[actix_rt::test]
async fn an_interrupted_conversation_is_closed_once_with_a_system_message() {
    on_both(|database| async move {
        let live = record("c-lost", "cu-1", "bob", ConversationState::Active, T0);
        store(&database, &live, &["hello", "hi"]).await;
        let candidates = database
            .live_conversations_before(Timestamp(T0 + 1))
            .await
            .unwrap();
        assert_eq!(candidates, [ConversationId::new("c-lost")]);
        let now = Timestamp(T0 + 90_000);
        assert!(database
            .close_interrupted(&live.conversation_id, "interrupted", now)
            .await
            .unwrap());
        assert!(!database
            .close_interrupted(&live.conversation_id, "interrupted", now)
            .await
            .unwrap());
        let closed = database
            .record(&live.conversation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed.state, ConversationState::Closed);
        assert_eq!(closed.closed_at, Some(now));
        assert_eq!(closed.messages.len(), 3);
        assert_eq!(closed.messages[2].seq, 3);
        assert_eq!(closed.messages[2].text, "interrupted");
        assert_eq!(closed.messages[2].from.role, Role::System);
        assert!(database
            .live_conversations_before(Timestamp(T0 + 1))
            .await
            .unwrap()
            .is_empty());
        // The system message was written beside the writer (SQLite gave
        // its row a rowid): the writer's next message and event still go in.
        let next = record("c-next", "cu-2", "bob", ConversationState::Active, T0);
        store(&database, &next, &["anyone there?"]).await;
        let said = message("c-next", 2, "yes", T0);
        database
            .write(vec![
                Change::Message(said.clone()),
                Change::Event(Arc::new(said_event(&said, "cu-2"))),
            ])
            .await
            .expect("written after a write beside the writer");
        let read = database.events_after(0, &[], 100).await.unwrap().events;
        assert_eq!(read.last().unwrap().1.data["message"]["text"], "yes");
    })
    .await;
}

#[actix_rt::test]
async fn a_sqlite_file_with_a_newer_schema_is_refused() {
    // The file's own migrations table says a newer node wrote it (the same
    // on PostgreSQL: `a_node_refuses_a_database_whose_schema_is_newer_than_its_own`).
    let sqlite = SqliteFile::create();
    let database = Database::open(DatabaseConfig::new(sqlite.url()))
        .await
        .unwrap();
    drop(database);
    let stamp =
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99990001, 'newer', true, X'00', 0)";
    run_sqlite(&sqlite, stamp).await;
    match Database::open(DatabaseConfig::new(sqlite.url())).await {
        Err(StorageError::SchemaNewer { found, .. }) => assert_eq!(found, 99990001),
        Err(other) => panic!("wrong refusal: {other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

/// One statement on a SQLite file, outside the engine.
async fn run_sqlite(file: &SqliteFile, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[actix_rt::test]
async fn a_word_in_most_conversations_pages_newest_first_like_a_rare_one() {
    on_both(|database| async move {
        // More messages with "parcel" than a rare word may have (2,000).
        let mut changes = Vec::new();
        for n in 0..2_100_i64 {
            let r = record(
                &format!("c-{n:05}"),
                "cu-x",
                "bob",
                ConversationState::Closed,
                T0 + n,
            );
            changes.push(Change::Record(Box::new(RecordRow::of(&r).unwrap())));
            let text = if n % 700 == 0 {
                format!("parcel {n} zebra")
            } else {
                format!("parcel {n}")
            };
            changes.push(Change::Message(message(
                &format!("c-{n:05}"),
                1,
                &text,
                T0 + n,
            )));
        }
        database.write(changes).await.unwrap();
        let page = database.search(words("PARCEL"), None, 3).await.unwrap();
        assert_eq!(ids(&page), ["c-02099", "c-02098", "c-02097"]);
        let next = Cursor::decode(page.next_cursor.as_deref().unwrap()).unwrap();
        let page = database
            .search(words("parcel"), Some(next), 2)
            .await
            .unwrap();
        assert_eq!(ids(&page), ["c-02096", "c-02095"]);
        // A common word with a rare one: only conversations with both.
        let both = database
            .search(words("parcel zebra"), None, 50)
            .await
            .unwrap();
        assert_eq!(ids(&both), ["c-01400", "c-00700", "c-00000"]);
        let number = database
            .search(words("parcel 1234"), None, 50)
            .await
            .unwrap();
        assert_eq!(ids(&number), ["c-01234"]);
    })
    .await;
}

/// `memory:` (tests, benchmarks): the writer has a connection of its own
/// to the same in-memory database the readers use.
#[actix_rt::test]
async fn a_memory_database_reads_back_what_its_writer_committed() {
    let database = Database::open(DatabaseConfig::new("memory:"))
        .await
        .expect("memory: opens");
    let other = Database::open(DatabaseConfig::new("memory:"))
        .await
        .expect("a second memory: opens");
    let r = record("c-mem", "cu-1", "bob", ConversationState::Active, T0);
    store(&database, &r, &["parcel arrived", "good"]).await;
    let read = database
        .record(&r.conversation_id)
        .await
        .unwrap()
        .expect("the record is there");
    assert_eq!(read.messages.len(), 2);
    let found = database.search(words("parcel"), None, 10).await.unwrap();
    assert_eq!(ids(&found), ["c-mem"]);
    // Each `memory:` database is its own.
    assert!(other.record(&r.conversation_id).await.unwrap().is_none());
}

/// Rule: under steady writes the SQLite WAL starts over instead of growing
/// with every message, though the writer's commits never checkpoint it
/// (a thread does, and the writer copies the last few frames itself).
/// SQLite counts the restarts in the WAL's header (its checkpoint
/// sequence, bytes 12..16).
#[actix_rt::test]
async fn steady_writes_keep_the_sqlite_wal_bounded() {
    let sqlite = SqliteFile::create();
    let database = Database::open(DatabaseConfig::new(sqlite.url()))
        .await
        .expect("sqlite opens");
    let r = record("c-wal", "cu-1", "bob", ConversationState::Active, T0);
    store(&database, &r, &[]).await;
    let wal = sqlite.0.join("switchboard.db-wal");
    let restarts = || {
        let header = std::fs::read(&wal).unwrap_or_default();
        header
            .get(12..16)
            .map_or(0, |n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]))
    };
    let text = "lorem ipsum ".repeat(50);
    // Many writes in flight, as on a busy node: the writer never idles, so
    // no checkpoint ends with nothing new behind it by chance.
    let mut writes = futures_util::stream::iter(1..=20_000_u64)
        .map(|seq| database.write(vec![Change::Message(message("c-wal", seq, &text, T0))]))
        .buffer_unordered(64)
        .enumerate();
    while let Some((done, written)) = writes.next().await {
        written.expect("written");
        if done % 100 == 0 && restarts() >= 3 {
            return;
        }
    }
    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
    panic!("the WAL never started over: {size} bytes after 20,000 writes");
}

/// An event of `kind` at `at_ms`, about a conversation and its customer
/// (if any), as the engine makes them.
fn event(
    kind: switchboard_proto::feed::EventType,
    at_ms: i64,
    about: Option<(&str, &str)>,
    data: serde_json::Value,
) -> Change {
    let mut event = DomainEvent::new(kind, Timestamp(at_ms), data);
    if let Some((conversation, customer)) = about {
        event.conversation_id = Some(ConversationId::new(conversation));
        event.customer_id = Some(CustomerId::new(customer));
    }
    Change::Event(Arc::new(event))
}

/// Retention deletes old events but never the newest: SQLite's `seq` is a
/// plain rowid, which would be handed out again if the table emptied.
#[actix_rt::test]
async fn retention_keeps_the_newest_event_so_no_seq_is_given_twice() {
    use switchboard_proto::feed::EventType;
    on_both(|database| async move {
        let day = 24 * 3600 * 1000;
        let old = (0..3)
            .map(|n| {
                event(
                    EventType::AgentLoggedOut,
                    T0 - 400 * day + n,
                    None,
                    serde_json::json!({}),
                )
            })
            .collect();
        database.write(old).await.expect("written");
        let newest = database.newest_event().await.unwrap();
        database
            .delete_finished_before(Timestamp(T0 - 365 * day))
            .await
            .unwrap();
        let left = database.events_after(0, &[], 100).await.unwrap().events;
        assert_eq!(
            left.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [newest]
        );
        let next = vec![event(
            EventType::AgentLoggedIn,
            T0,
            None,
            serde_json::json!({}),
        )];
        database.write(next).await.expect("written");
        assert!(database.newest_event().await.unwrap() > newest);
    })
    .await;
}

/// `message.created` for `message` of `customer`, as a conversation
/// yields it.
fn said_event(message: &Arc<Message>, customer: &str) -> DomainEvent {
    let mut event = DomainEvent::new(
        switchboard_proto::feed::EventType::MessageCreated,
        message.ts,
        serde_json::json!({ "message": message }),
    );
    event.conversation_id = Some(message.conversation_id.clone());
    event.customer_id = Some(CustomerId::new(customer));
    event
}

/// A `message.created` reads back with its message on either database
/// (SQLite keeps a reference to the `messages` row), and reads
/// `{"erased": true}` once the customer's messages are erased.
#[actix_rt::test]
async fn a_message_event_reads_back_with_its_message_until_erased() {
    use switchboard_proto::feed::EventType;
    on_both(|database| async move {
        let chat = record("c-1", "cu-1", "bob", ConversationState::Closed, T0);
        store(&database, &chat, &["Where is my parcel"]).await;
        let sent = message("c-1", 1, "Where is my parcel", T0);
        let data = serde_json::json!({ "message": sent });
        database
            .write(vec![event(
                EventType::MessageCreated,
                T0,
                Some(("c-1", "cu-1")),
                data.clone(),
            )])
            .await
            .expect("written");
        let read = database
            .events_after(0, &[EventType::MessageCreated], 10)
            .await
            .unwrap()
            .events;
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.data, data);

        database
            .erase_customer(&CustomerId::new("cu-1"))
            .await
            .unwrap();
        let read = database
            .events_after(0, &[EventType::MessageCreated], 10)
            .await
            .unwrap()
            .events;
        assert!(
            !read[0].1.data.to_string().contains("parcel"),
            "{:?}",
            read[0].1.data
        );
    })
    .await;
}

/// A filtered read has no index by type: it scans `seq` windows. A rare
/// type far behind many others is found exactly once, the cursor moves
/// past what was scanned (so the next read does not scan it again), and
/// reading on from there finds what comes after, on either database.
#[actix_rt::test]
async fn a_filtered_read_finds_a_rare_event_behind_many_others_once() {
    use switchboard_proto::feed::EventType;
    on_both(|database| async move {
        let login = |at: i64| event(EventType::AgentLoggedIn, at, None, serde_json::json!({}));
        let closed = |at: i64| {
            event(
                EventType::ConversationClosed,
                at,
                Some(("c-1", "cu-1")),
                serde_json::json!({}),
            )
        };
        // 25,000 others, the rare one, 12,000 others: more than two
        // windows on each side.
        let mut changes: Vec<Change> = (0..25_000).map(|i| login(T0 + i)).collect();
        changes.push(closed(T0 + 25_000));
        changes.extend((0..12_000).map(|i| login(T0 + 25_001 + i)));
        database.write(changes).await.expect("written");
        let newest = database.newest_event().await.unwrap();

        let only_closed = [EventType::ConversationClosed];
        let read = database.events_after(0, &only_closed, 100).await.unwrap();
        assert_eq!(read.events.len(), 1, "the rare one, once");
        assert_eq!(read.events[0].1.at, Timestamp(T0 + 25_000));
        assert_eq!(read.scanned_to, newest, "scanned to the newest");
        let again = database
            .events_after(read.scanned_to, &only_closed, 100)
            .await
            .unwrap();
        assert!(again.events.is_empty());
        assert_eq!(again.scanned_to, newest, "a cursor never moves back");

        // A page that fills up stops at its last event, not past it.
        let two = database
            .events_after(0, &[EventType::AgentLoggedIn], 2)
            .await
            .unwrap();
        assert_eq!(two.events.len(), 2);
        assert_eq!(two.scanned_to, two.events[1].0);

        // What comes after the scanned range is found from there.
        database
            .write(vec![closed(T0 + 40_000)])
            .await
            .expect("written");
        let next = database
            .events_after(read.scanned_to, &only_closed, 100)
            .await
            .unwrap();
        assert_eq!(next.events.len(), 1);
        assert_eq!(next.events[0].1.at, Timestamp(T0 + 40_000));
        assert!(next.events[0].0 > newest);
    })
    .await;
}

/// SQLite stores a `message.created` written with its message as that
/// message's row, with no row in `events`; on either database the feed
/// gives the events of one write in the order of its changes, a filter by
/// type finds them, and erasure leaves each at its cursor with its id,
/// reading `{"erased": true}`.
#[actix_rt::test]
async fn a_message_written_with_its_event_reads_in_the_order_of_the_changes() {
    use switchboard_proto::feed::EventType;
    on_both(|database| async move {
        let chat = record("c-1", "cu-1", "bob", ConversationState::Closed, T0);
        let about = Some(("c-1", "cu-1"));
        let first = message("c-1", 1, "Where is my parcel", T0);
        let second = message("c-1", 2, "On its way", T0);
        let said = |m: &Arc<Message>| {
            let mut event = said_event(m, "cu-1");
            event.queue_id = Some(QueueId::new("sales"));
            if m.seq == 2 {
                event.agent_id = Some(AgentId::new("bob"));
            }
            Change::Event(Arc::new(event))
        };
        database
            .write(vec![
                Change::Record(Box::new(RecordRow::of(&chat).unwrap())),
                Change::Message(first.clone()),
                Change::Message(second.clone()),
                event(
                    EventType::ConversationAccepted,
                    T0,
                    about,
                    serde_json::json!({}),
                ),
                said(&first),
                said(&second),
                event(
                    EventType::ConversationEnded,
                    T0 + 9_000,
                    about,
                    serde_json::json!({}),
                ),
            ])
            .await
            .expect("written");
        let read = database.events_after(0, &[], 100).await.unwrap().events;
        let kinds: Vec<EventType> = read.iter().map(|(_, event)| event.kind).collect();
        assert_eq!(
            kinds,
            [
                EventType::ConversationAccepted,
                EventType::MessageCreated,
                EventType::MessageCreated,
                EventType::ConversationEnded
            ]
        );
        let (_, said_first) = &read[1];
        assert_eq!(said_first.data["message"]["text"], "Where is my parcel");
        assert_eq!(said_first.customer_id, Some(CustomerId::new("cu-1")));
        assert_eq!(said_first.queue_id, Some(QueueId::new("sales")));
        assert_eq!(said_first.agent_id, None);
        assert_eq!(read[2].1.agent_id, Some(AgentId::new("bob")));
        let only = database
            .events_after(0, &[EventType::MessageCreated], 100)
            .await
            .unwrap()
            .events;
        assert_eq!(only, read[1..3].to_vec());

        database
            .erase_customer(&CustomerId::new("cu-1"))
            .await
            .unwrap();
        let after = database.events_after(0, &[], 100).await.unwrap().events;
        let place = |events: &[(i64, DomainEvent)]| -> Vec<(i64, String)> {
            events
                .iter()
                .map(|(seq, event)| (*seq, event.id.clone()))
                .collect()
        };
        assert_eq!(place(&after), place(&read), "same cursors, same ids");
        for (_, event) in &after[1..3] {
            assert_eq!(event.data, serde_json::json!({"erased": true}));
        }
        assert_eq!(after[2].1.agent_id, Some(AgentId::new("bob")));
    })
    .await;
}

/// The one counter behind `events.seq` and SQLite's message rows starts
/// after both tables' newest when the node starts again: an event written
/// after a restart comes after a message's event written before it.
#[actix_rt::test]
async fn after_a_restart_a_new_event_comes_after_every_message_event() {
    use switchboard_proto::feed::EventType;
    let file = SqliteFile::create();
    let open = || async {
        Database::open(DatabaseConfig::new(file.url()))
            .await
            .expect("opens")
    };
    let chat = record("c-1", "cu-1", "bob", ConversationState::Closed, T0);
    let said = message("c-1", 1, "Hello", T0);
    let database = open().await;
    database
        .write(vec![
            Change::Record(Box::new(RecordRow::of(&chat).unwrap())),
            Change::Message(said.clone()),
            Change::Event(Arc::new(said_event(&said, "cu-1"))),
        ])
        .await
        .expect("written");
    let before = database.newest_event().await.unwrap();
    drop(database);
    let database = open().await;
    assert_eq!(database.newest_event().await.unwrap(), before);
    database
        .write(vec![event(
            EventType::AgentLoggedIn,
            T0,
            None,
            serde_json::json!({}),
        )])
        .await
        .expect("written");
    let read = database.events_after(0, &[], 100).await.unwrap().events;
    let kinds: Vec<EventType> = read.iter().map(|(_, event)| event.kind).collect();
    assert_eq!(kinds, [EventType::MessageCreated, EventType::AgentLoggedIn]);
    assert!(read[1].0 > before);
}

/// Reports: the projector, stepping through the stored events a batch at
/// a time and saving each step, makes the buckets a recomputation of the
/// same events makes, on both databases; a step computed from a position
/// another node has moved commits nothing; and a rebuild makes them again.
#[actix_rt::test]
async fn report_buckets_saved_step_by_step_equal_a_recomputation_of_the_events() {
    use switchboard_engine::reports::projection::{bucket_of, ReportRules};
    use switchboard_engine::reports::{projector, recompute::recompute};
    use switchboard_proto::feed::EventType;
    let rules = ReportRules {
        service_level_ms: 20_000,
        short_abandon_ms: 5_000,
    };
    on_both(|database| async move {
        // Three hours ago, five agents and two queues, 2,500 events.
        let start = Timestamp::now().millis() - 3 * 3_600_000;
        let mut events = Vec::new();
        let agents = ["ann", "bob", "cy", "dee", "eve"];
        let agent_event = |kind, at: i64, agent: &str, data| {
            let mut event = DomainEvent::new(kind, Timestamp(at), data);
            event.agent_id = Some(AgentId::new(agent));
            event
        };
        for (n, agent) in agents.iter().enumerate() {
            let n = n as i64;
            events.push(agent_event(EventType::AgentLoggedIn, start + n * 1000, agent, serde_json::json!({})));
            events.push(agent_event(EventType::AgentStateChanged, start + 60_000 + n, agent, serde_json::json!({"state": "available"})));
            events.push(agent_event(EventType::AgentStateChanged, start + 3_000_000 + n * 7_000, agent, serde_json::json!({"state": "idle", "reason": "lunch"})));
            events.push(agent_event(EventType::AgentStateChanged, start + 4_000_000 + n * 9_000, agent, serde_json::json!({"state": "available"})));
            if n < 3 {
                events.push(agent_event(EventType::AgentLoggedOut, start + 6_000_000 + n * 60_000, agent, serde_json::json!({})));
            }
        }
        for i in 0..640i64 {
            let at = start + 120_000 + i * 12_000;
            let agent = agents[(i % 5) as usize];
            let queue = QueueId::new(["sales", "support"][(i % 2) as usize]);
            let wait = 1_000 + (i % 40) * 1_000;
            let mut of_chat = |kind, offset: i64, agent: Option<&str>, data| {
                let mut event = DomainEvent::new(kind, Timestamp(at + offset), data);
                event.conversation_id = Some(ConversationId::new(format!("c{i}")));
                event.queue_id = Some(queue.clone());
                event.agent_id = agent.map(AgentId::new);
                events.push(event);
            };
            of_chat(EventType::ConversationQueued, 0, None, serde_json::json!({"reason": "created"}));
            if i % 9 == 0 {
                of_chat(EventType::ConversationAbandoned, wait, None, serde_json::json!({"wait_ms": wait}));
                continue;
            }
            of_chat(EventType::ConversationOffered, wait - 500, Some(agent), serde_json::json!({"kind": "new"}));
            of_chat(EventType::ConversationAccepted, wait, Some(agent), serde_json::json!({"kind": "new", "wait_ms": wait}));
            let reason = ["sale", "info"][(i % 2) as usize];
            of_chat(
                EventType::WrapUpSubmitted,
                wait + 200_000 + i * 10,
                Some(agent),
                serde_json::json!({"reason": {"id": reason}, "role": "owner", "handle_ms": 200_000 + i * 10}),
            );
        }
        events.sort_by_key(|event| event.at);
        assert!(events.len() > 2_000, "{} events", events.len());
        for chunk in events.chunks(300) {
            let changes = chunk.iter().map(|event| Change::Event(Arc::new(event.clone()))).collect();
            database.write(changes).await.expect("written");
        }

        let before = database.report_position().await.unwrap();
        let reached = projector::catch_up(&database, &rules).await.unwrap();
        assert_eq!(reached.seq, database.newest_event().await.unwrap());
        assert!(reached.version >= before.version + 3, "a step per 1,000 events and a tick");
        let stored = |database: Database| async move {
            (
                database.queue_buckets(i64::MIN, i64::MAX, Vec::new()).await.unwrap().1,
                database.agent_buckets(i64::MIN, i64::MAX, Vec::new()).await.unwrap().1,
            )
        };
        let (queues, agents_read) = stored(database.clone()).await;
        let expected = recompute(&events, &rules, Timestamp(reached.projection.ticked_to()));
        let as_read = |buckets: &std::collections::BTreeMap<(i64, String), _>| buckets.clone();
        let expected_queues: std::collections::BTreeMap<(i64, String), _> = expected
            .queues
            .iter()
            .map(|((bucket, id), totals)| ((*bucket, id.as_str().to_owned()), totals.clone()))
            .collect();
        let read_queues: std::collections::BTreeMap<(i64, String), _> =
            queues.iter().map(|(bucket, id, totals)| ((*bucket, id.clone()), totals.clone())).collect();
        assert_eq!(as_read(&read_queues), expected_queues);
        let expected_agents: std::collections::BTreeMap<(i64, String), _> = expected
            .agents
            .iter()
            .filter(|(_, totals)| **totals != Default::default())
            .map(|((bucket, id), totals)| ((*bucket, id.as_str().to_owned()), totals.clone()))
            .collect();
        let read_agents: std::collections::BTreeMap<(i64, String), _> = agents_read
            .iter()
            .filter(|(_, _, totals)| *totals != Default::default())
            .map(|(bucket, id, totals)| ((*bucket, id.clone()), totals.clone()))
            .collect();
        assert_eq!(read_agents, expected_agents);
        assert!(read_agents.keys().any(|(bucket, id)| id == "eve" && *bucket >= bucket_of(start + 6_000_000)), "eve is still logged in");

        // A step from the position as it was before commits nothing.
        let stale = database
            .save_report_step(&before, reached.seq, reached.projection.clone(), Default::default())
            .await
            .unwrap();
        assert_eq!(stale, None);
        assert_eq!(stored(database.clone()).await, (queues.clone(), agents_read.clone()));

        // Rebuilt from the oldest event's bucket: the same buckets.
        assert_eq!(database.reset_reports().await.unwrap(), None, "every event kept");
        assert!(stored(database.clone()).await.0.is_empty());
        let rebuilt = projector::catch_up(&database, &rules).await.unwrap();
        assert_eq!(rebuilt.seq, reached.seq);
        let (queues_again, agents_again) = stored(database.clone()).await;
        assert_eq!(queues_again, queues);
        // Agents still logged in are counted up to the rebuild's own tick.
        let closed = |rows: &[(i64, String, switchboard_engine::reports::totals::AgentTotals)]| {
            rows.iter()
                .filter(|(bucket, _, _)| *bucket < bucket_of(start + 6_000_000))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(closed(&agents_again), closed(&agents_read));
    })
    .await;
}

/// After retention deleted the oldest events, a rebuild starts at the first
/// bucket that began after the oldest kept event: the bucket holding it
/// keeps what it counted of events now gone.
#[actix_rt::test]
async fn a_rebuild_after_retention_keeps_the_buckets_the_kept_events_cannot_make() {
    use switchboard_engine::reports::projection::{bucket_of, ReportRules, BUCKET_MS};
    use switchboard_engine::reports::projector;
    use switchboard_proto::feed::EventType;
    let rules = ReportRules {
        service_level_ms: 20_000,
        short_abandon_ms: 5_000,
    };
    on_both(|database| async move {
        let bucket = bucket_of(Timestamp::now().millis() - 3_600_000);
        let queued = |at_ms: i64| {
            let mut event = DomainEvent::new(
                EventType::ConversationQueued,
                Timestamp(at_ms),
                serde_json::json!({"reason": "created"}),
            );
            event.queue_id = Some(QueueId::new("sales"));
            Change::Event(Arc::new(event))
        };
        database
            .write(vec![
                queued(bucket + 60_000),
                queued(bucket + 300_000),
                queued(bucket + BUCKET_MS + 60_000),
            ])
            .await
            .expect("written");
        projector::catch_up(&database, &rules).await.unwrap();
        let entered = |database: Database| async move {
            database
                .queue_buckets(i64::MIN, i64::MAX, Vec::new())
                .await
                .unwrap()
                .1
                .into_iter()
                .map(|(bucket, _, totals)| (bucket, totals.entered))
                .collect::<Vec<_>>()
        };
        let before = entered(database.clone()).await;
        assert_eq!(before, [(bucket, 2), (bucket + BUCKET_MS, 1)]);
        // Retention takes the first event away.
        database
            .delete_finished_before(Timestamp(bucket + 120_000))
            .await
            .unwrap();
        assert_eq!(
            database.reset_reports().await.unwrap(),
            Some(bucket + BUCKET_MS),
            "from the bucket after the oldest kept event's"
        );
        projector::catch_up(&database, &rules).await.unwrap();
        assert_eq!(entered(database.clone()).await, before);
    })
    .await;
}
