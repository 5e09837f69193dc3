//! The database as an operator meets its faults: unreachable at start (the
//! node exits, naming the URL without its password), a schema newer than
//! the node (refused), and lost while the node runs (`/readyz` fails,
//! commands answer `unavailable`, nothing acknowledged is lost, and it
//! recovers on its own when the database comes back).

use serde_json::json;
use std::time::{Duration, Instant};

use crate::client::{record, Party};
use crate::harness::{
    bounded, free_port, psql, readyz, NodeOptions, NodeProcess, PgDatabase, Slot, POLL,
};

const WAIT: Duration = Duration::from_secs(15);

fn on(database_url: String) -> NodeOptions {
    NodeOptions {
        database_url: Some(database_url),
        env: vec![(
            "SWITCHBOARD__STORAGE__ACQUIRE_TIMEOUT_MS".into(),
            "1000".into(),
        )],
        ..NodeOptions::default()
    }
}

#[actix_rt::test]
async fn a_node_whose_database_is_unreachable_exits_naming_it_without_its_password() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(60), async {
        let url = format!(
            "postgres://sb:hunter2-secret@127.0.0.1:{}/switchboard",
            free_port()
        );
        let (status, stderr) = NodeProcess::refused("nodb", None, on(url)).await;
        assert!(!status.success(), "{stderr}");
        let shown = "postgres://sb:***@127.0.0.1:";
        assert!(stderr.contains("storage.database_url"), "{stderr}");
        assert!(stderr.contains(shown), "the URL is named: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password is not: {stderr}");
    })
    .await;
}

#[actix_rt::test]
async fn a_node_refuses_a_database_whose_schema_is_newer_than_its_own() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(60), async {
        let database = PgDatabase::create();
        let mut node = NodeProcess::start("first", None, on(database.url())).await;
        node.kill9();
        database.query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990001, 'from a newer switchboard', true, '\\x00', 0)",
        );
        let (status, stderr) = NodeProcess::refused("second", None, on(database.url())).await;
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains("schema version 99990001, newer than this node understands"),
            "{stderr}"
        );
        // Nothing was changed: the newer version is still the newest.
        assert_eq!(
            database.query("SELECT max(version) FROM _sqlx_migrations"),
            "99990001"
        );
    })
    .await;
}

/// Closes the database to new connections and ends the node's.
fn cut(database: &PgDatabase) {
    let name = &database.name;
    psql(
        "postgres",
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    )
    .expect("ALTER DATABASE");
    psql(
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    )
    .expect("terminate backends");
}

fn heal(database: &PgDatabase) {
    let name = &database.name;
    psql(
        "postgres",
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    )
    .expect("ALTER DATABASE");
}

async fn readyz_until(port: u16, status: u16) {
    let start = Instant::now();
    while readyz(port).await != Some(status) {
        assert!(start.elapsed() < WAIT, "/readyz never answered {status}");
        tokio::time::sleep(POLL).await;
    }
}

#[actix_rt::test]
async fn a_database_lost_at_run_time_fails_readyz_answers_unavailable_and_recovers() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(120), async {
        let database = PgDatabase::create();
        let node = NodeProcess::start("solo", None, on(database.url())).await;
        let nodes = vec![node.url()];
        let mut bob = Party::available_agent(&nodes, 0, "bob").await;
        let mut ada = Party::customer(&nodes, 0, "sales", "Ada", "Hello").await;
        let id = ada.conversation().to_owned();
        bob.accept(&id).await;
        let before = bob.say(&id, "Acknowledged before the outage").await;
        ada.wait_seq(&id, before, WAIT).await;

        cut(&database);
        readyz_until(node.port, 503).await;
        // Once, not retried: the harness's `request` would retry it.
        let refused = ada
            .request_once(
                json!({"type": "send", "text": "lost?", "client_msg_id": "during"}),
                WAIT,
            )
            .await
            .expect("a reply");
        assert_eq!(refused["code"], "unavailable", "{refused}");

        heal(&database);
        readyz_until(node.port, 200).await;
        // The conversation is back from the database: the customer's retry
        // is stored once, and the agent's earlier line is still there.
        let start = Instant::now();
        loop {
            let reply = ada
                .request(json!({"type": "send", "text": "after", "client_msg_id": "after"}))
                .await;
            if reply["type"] == "ack" {
                break;
            }
            assert!(start.elapsed() < WAIT, "send never recovered: {reply}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, body) = record(&node.url(), &id).await;
        assert_eq!(status, 200, "{body}");
        let texts: Vec<&str> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|message| message["text"].as_str())
            .collect();
        assert!(texts.contains(&"Acknowledged before the outage"), "{body}");
        assert_eq!(
            texts.iter().filter(|text| **text == "after").count(),
            1,
            "{body}"
        );
        assert!(
            !texts.contains(&"lost?"),
            "a refused send was not stored: {body}"
        );
    })
    .await;
}
