//! A scripted morning through the real node: chats handled, a RONA, a
//! short and a long abandon, transfers to a queue and to an agent, a
//! conference, an automatic wrap-up, idle reasons, and agents logging in
//! and out across interval boundaries. Every column of the 15-minute rows
//! is checked against figures worked out by hand (times within the few
//! seconds the test itself takes between steps); then the hourly and daily
//! rows, CSV, and a rebuild from the events.

use crate::support::{Client, Node};
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;
use switchboard_proto::Timestamp;

/// 2030-01-15T09:00:00Z plus `minutes:seconds`.
fn at(minutes: u32, seconds: u32) -> Timestamp {
    let nine = Timestamp::parse_rfc3339("2030-01-15T09:00:00Z").expect("time");
    nine.plus_millis(u64::from(minutes * 60 + seconds) * 1000)
}

/// The process's clock jumps forward to `to`, as if the time passed.
fn jump(to: Timestamp) {
    assert!(Timestamp::now() <= to, "the script runs forward");
    switchboard_proto::time::shift_clock_to(to);
}

/// Within the seconds the test spends between two jumps.
fn about(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual}"));
    assert!(
        (actual - expected).abs() <= 3.0,
        "{what}: {actual}, by hand {expected}"
    );
}

async fn wait_for_state(agent: &mut Client, state: &str) {
    agent
        .event_where("agent_state", |frame| frame["state"] == state)
        .await;
}

/// The report at `path` once every event up to `until` is counted.
async fn report(node: &Node, path: &str, until: Timestamp) -> Value {
    node.supervised_until(path, |body| {
        Timestamp::parse_rfc3339(body["as_of"].as_str().unwrap_or(""))
            .is_ok_and(|as_of| as_of >= until)
    })
    .await
}

fn row<'a>(rows: &'a Value, key: &str, id: &str, start: &str) -> &'a Value {
    rows["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row[key] == id && row["interval_start"] == start)
        .unwrap_or_else(|| panic!("no {key} {id} at {start}: {rows}"))
}

#[actix_rt::test]
async fn a_scripted_morning_reports_every_column_as_worked_out_by_hand() {
    let codec = Codec::Json;
    jump(at(0, 0));
    let node = Node::start(&[
        ("SWITCHBOARD__ROUTING__RONA_TIMEOUT_MS", "1000"),
        ("SWITCHBOARD__ROUTING__AUTO_WRAP_UP_MS", "1500"),
        ("SWITCHBOARD__AUTH__TOKEN_TTL_S", "86400"),
    ])
    .await;
    // 09:00 Alice and Bob log in (idle, no reason); 09:01 Alice is available.
    let mut alice = node.agent("alice", codec).await;
    let mut bob = node.agent("bob", codec).await;
    jump(at(1, 0));
    alice
        .ok(json!({"type": "set_state", "state": "available"}))
        .await;

    // C1: 09:02 in Sales, Alice accepts after 10 s, ends at 09:05 and
    // wraps up (resolved) at 09:06: handle 230 s.
    jump(at(2, 0));
    let (c1, _ann) = node.customer("sales", "Ann", "Hi", codec).await;
    alice
        .event_where("offer", |offer| offer["conversation_id"] == c1)
        .await;
    jump(at(2, 10));
    alice
        .ok(json!({"type": "accept", "conversation_id": c1}))
        .await;
    jump(at(5, 0));
    alice
        .ok(json!({"type": "end", "conversation_id": c1}))
        .await;
    jump(at(6, 0));
    alice
        .ok(json!({"type": "wrap_up", "conversation_id": c1, "reason": "resolved"}))
        .await;

    // C2: 09:07 in Sales; Alice lets it ring (RONA a second later); Bob,
    // available at 09:08, accepts at 09:08:30 (waited 90 s: a RONA return
    // is no new wait) and transfers it to Support at 09:10; his wrap-up
    // comes automatically (no_response), 1.5 s later.
    jump(at(7, 0));
    let (c2, _ben) = node.customer("sales", "Ben", "Hello", codec).await;
    alice
        .event_where("offer", |offer| offer["conversation_id"] == c2)
        .await;
    wait_for_state(&mut alice, "rona").await;
    jump(at(8, 0));
    bob.ok(json!({"type": "set_state", "state": "available"}))
        .await;
    bob.event_where("offer", |offer| offer["conversation_id"] == c2)
        .await;
    jump(at(8, 30));
    bob.ok(json!({"type": "accept", "conversation_id": c2}))
        .await;
    jump(at(10, 0));
    bob.ok(json!({"type": "transfer", "conversation_id": c2, "to": {"queue": "support"}}))
        .await;
    node.supervised_until(
        "/api/v1/events?types=wrap_up.submitted&limit=1000",
        |page| {
            page["events"].as_array().is_some_and(|events| {
                events
                    .iter()
                    .any(|event| event["data"]["automatic"] == true)
            })
        },
    )
    .await;

    // Carol logs in at 09:11, available at once; accepts C2 at 09:11:30
    // (90 s in Support); transfers it to Alice (available again at 09:12),
    // who accepts at 09:12:30; Carol wraps up (follow_up) at 09:13.
    jump(at(11, 0));
    let mut carol = node.available_agent("carol", codec).await;
    carol
        .event_where("offer", |offer| offer["conversation_id"] == c2)
        .await;
    jump(at(11, 30));
    carol
        .ok(json!({"type": "accept", "conversation_id": c2}))
        .await;
    jump(at(12, 0));
    alice
        .ok(json!({"type": "set_state", "state": "available"}))
        .await;
    carol
        .ok(json!({"type": "transfer", "conversation_id": c2, "to": {"agent": "alice"}}))
        .await;
    alice
        .event_where("offer", |offer| offer["conversation_id"] == c2)
        .await;
    jump(at(12, 30));
    alice
        .ok(json!({"type": "accept", "conversation_id": c2}))
        .await;
    jump(at(13, 0));
    carol
        .ok(json!({"type": "wrap_up", "conversation_id": c2, "reason": "follow_up"}))
        .await;

    // 09:13:30 Alice invites Bob, he joins at 09:14, she ends the conference at 09:14:30,
    // he wraps up (resolved) at 09:14:40; she ends the chat at 09:14:50 and
    // wraps up (resolved) at 09:16, in the next interval: handle 210 s.
    jump(at(13, 30));
    alice
        .ok(json!({"type": "conference", "conversation_id": c2, "agent": "bob"}))
        .await;
    bob.event_where("offer", |offer| offer["conversation_id"] == c2)
        .await;
    jump(at(14, 0));
    bob.ok(json!({"type": "accept", "conversation_id": c2}))
        .await;
    jump(at(14, 30));
    alice
        .ok(json!({"type": "end_conference", "conversation_id": c2}))
        .await;
    jump(at(14, 40));
    bob.ok(json!({"type": "wrap_up", "conversation_id": c2, "reason": "resolved"}))
        .await;
    jump(at(14, 50));
    alice
        .ok(json!({"type": "end", "conversation_id": c2}))
        .await;
    jump(at(16, 0));
    alice
        .ok(json!({"type": "wrap_up", "conversation_id": c2, "reason": "resolved"}))
        .await;

    // 09:16:10 everyone steps away: Alice to lunch, Bob on a break, Carol
    // idle without a reason. C3 gives up after 2 s (short), C4 after 30 s.
    jump(at(16, 10));
    alice
        .ok(json!({"type": "set_state", "state": "idle", "reason": "lunch"}))
        .await;
    bob.ok(json!({"type": "set_state", "state": "idle", "reason": "break"}))
        .await;
    carol
        .ok(json!({"type": "set_state", "state": "idle"}))
        .await;
    jump(at(17, 0));
    let (_c3, mut cy) = node.customer("sales", "Cy", "Anyone?", codec).await;
    jump(at(17, 2));
    cy.ok(json!({"type": "end"})).await;
    jump(at(18, 0));
    let (_c4, mut di) = node.customer("sales", "Di", "Hello?", codec).await;
    jump(at(18, 30));
    di.ok(json!({"type": "end"})).await;

    // Bob logs out at 09:20, Carol at 09:25, Alice at 09:31.
    jump(at(20, 0));
    bob.ok(json!({"type": "logout"})).await;
    jump(at(25, 0));
    carol.ok(json!({"type": "logout"})).await;
    jump(at(31, 0));
    alice.ok(json!({"type": "logout"})).await;

    let range = "from=2030-01-15T09:00:00Z&to=2030-01-15T10:00:00Z";
    let queues = report(
        &node,
        &format!("/api/v1/reports/queues?{range}&interval=15m"),
        at(31, 0),
    )
    .await;
    let sales = row(&queues, "queue", "sales", "2030-01-15T09:00:00Z");
    assert_eq!(sales["entered"], 2, "{sales}");
    assert_eq!(sales["handled"], 2, "{sales}");
    assert_eq!(sales["rona"], 1, "{sales}");
    assert_eq!(sales["transferred_out"], 1, "{sales}");
    assert_eq!(
        (&sales["abandoned"], &sales["short_abandoned"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(sales["overflowed_out"], 0);
    about(&sales["asa_s"], 50.0, "sales asa (10 s and 90 s)");
    about(&sales["max_wait_s"], 90.0, "sales max wait");
    // Alice 230 s, Bob's automatic wrap-up 91.5 s after his accept.
    about(&sales["aht_s"], (230.0 + 91.5) / 2.0, "sales aht");
    assert_eq!(sales["service_level_pct"], 50.0, "1 of 2 within 20 s");
    assert_eq!(sales["wrap_ups"], json!({"resolved": 1, "no_response": 1}));

    let support = row(&queues, "queue", "support", "2030-01-15T09:00:00Z");
    assert_eq!(
        (support["entered"].clone(), support["handled"].clone()),
        (json!(1), json!(1))
    );
    about(&support["asa_s"], 90.0, "support asa");
    assert_eq!(support["service_level_pct"], 0.0, "{support}");
    assert_eq!(
        support["transferred_out"], 0,
        "a transfer to an agent stays in the queue"
    );
    about(
        &support["aht_s"],
        90.0,
        "Carol's leg; Bob's guest wrap-up is no handle",
    );
    assert_eq!(support["wrap_ups"], json!({"follow_up": 1, "resolved": 1}));

    let later = row(&queues, "queue", "support", "2030-01-15T09:15:00Z");
    assert_eq!(later["entered"], 0);
    about(&later["aht_s"], 210.0, "Alice's leg, wrapped up at 09:16");
    assert_eq!(later["wrap_ups"], json!({"resolved": 1}));
    let abandons = row(&queues, "queue", "sales", "2030-01-15T09:15:00Z");
    assert_eq!(abandons["entered"], 2);
    assert_eq!(
        (&abandons["abandoned"], &abandons["short_abandoned"]),
        (&json!(2), &json!(1))
    );
    about(&abandons["max_wait_s"], 30.0, "the long abandon");
    assert_eq!(abandons["asa_s"], Value::Null);
    assert_eq!(abandons["service_level_pct"], 0.0, "0 of 2 - 1");

    let agents = report(
        &node,
        &format!("/api/v1/reports/agents?{range}&interval=15m"),
        at(31, 0),
    )
    .await;
    let nine = "2030-01-15T09:00:00Z";
    let quarter_past = "2030-01-15T09:15:00Z";
    let alice_9 = row(&agents, "agent", "alice", nine);
    assert_eq!(
        [
            &alice_9["offered"],
            &alice_9["accepted"],
            &alice_9["rona"],
            &alice_9["handled"]
        ],
        [&json!(3), &json!(2), &json!(1), &json!(1)],
        "{alice_9}"
    );
    about(&alice_9["logged_in_s"], 900.0, "alice logged in");
    about(&alice_9["idle_s"], 60.0, "alice idle after login");
    about(
        &alice_9["idle_by_reason"]["none"],
        60.0,
        "alice idle without reason",
    );
    about(&alice_9["rona_s"], 299.0, "alice in RONA 09:07:01-09:12");
    about(&alice_9["available_s"], 541.0, "alice available");
    about(&alice_9["aht_s"], 230.0, "alice aht");
    // Holding C1 230 s and C2 from 09:12:30: 380 of 900 s.
    about(&alice_9["occupancy_pct"], 380.0 / 9.0, "alice occupancy");
    let alice_15 = row(&agents, "agent", "alice", quarter_past);
    about(&alice_15["logged_in_s"], 900.0, "alice logged in");
    about(&alice_15["available_s"], 70.0, "alice available");
    about(
        &alice_15["idle_by_reason"]["lunch"],
        830.0,
        "alice at lunch",
    );
    about(&alice_15["aht_s"], 210.0, "alice's second chat");
    about(
        &alice_15["occupancy_pct"],
        60.0 / 9.0,
        "alice holds C2 until 09:16",
    );
    about(
        &row(&agents, "agent", "alice", "2030-01-15T09:30:00Z")["logged_in_s"],
        60.0,
        "alice until 09:31",
    );

    let bob_9 = row(&agents, "agent", "bob", nine);
    assert_eq!(
        [
            &bob_9["offered"],
            &bob_9["accepted"],
            &bob_9["handled"],
            &bob_9["transferred_out"],
            &bob_9["conferences_joined"],
            &bob_9["rona"]
        ],
        [
            &json!(2),
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(0)
        ],
        "{bob_9}"
    );
    about(
        &bob_9["idle_by_reason"]["none"],
        480.0,
        "bob idle until 09:08",
    );
    about(&bob_9["available_s"], 420.0, "bob available");
    about(&bob_9["aht_s"], 91.5, "bob's automatic wrap-up");
    about(
        &bob_9["occupancy_pct"],
        (91.5 + 40.0) / 9.0,
        "C2, then the conference",
    );
    let bob_15 = row(&agents, "agent", "bob", quarter_past);
    about(&bob_15["logged_in_s"], 300.0, "bob logs out at 09:20");
    about(&bob_15["idle_by_reason"]["break"], 230.0, "bob's break");
    assert!(agents["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["agent"] != "bob" || row["interval_start"] != "2030-01-15T09:30:00Z"));

    let carol_9 = row(&agents, "agent", "carol", nine);
    about(&carol_9["logged_in_s"], 240.0, "carol from 09:11");
    about(&carol_9["available_s"], 240.0, "carol available");
    assert_eq!(
        [
            &carol_9["offered"],
            &carol_9["accepted"],
            &carol_9["handled"],
            &carol_9["transferred_out"]
        ],
        [&json!(1), &json!(1), &json!(1), &json!(1)]
    );
    about(&carol_9["occupancy_pct"], 90.0 / 2.4, "carol 90 of 240 s");
    let carol_15 = row(&agents, "agent", "carol", quarter_past);
    about(&carol_15["logged_in_s"], 600.0, "carol until 09:25");
    about(&carol_15["idle_by_reason"]["none"], 530.0, "carol idle");

    // The same rows, recomputed from the raw event stream.
    agrees_with_the_raw_events(&node, &queues, &agents).await;

    // Live and historical agree: today's figures in /api/v1/stats are
    // today's daily row.
    let stats = node.supervised("/api/v1/stats").await;
    let today = node.supervised("/api/v1/reports/queues?interval=1d").await;
    for queue in stats["queues"].as_array().expect("queues") {
        let id = queue["id"].as_str().expect("id");
        let daily = row(&today, "queue", id, "2030-01-15T00:00:00Z");
        assert_eq!(queue["today"], *daily, "{id}");
    }
    assert_eq!(stats["queues"][0]["today"]["service_level_pct"], 33.33);

    // Rebuilt from the events by the command, the same rows.
    let rebuilt = rebuild(&node).await;
    assert!(rebuilt.contains("reports rebuilt"), "{rebuilt}");
    let again = report(
        &node,
        &format!("/api/v1/reports/queues?{range}&interval=15m"),
        at(31, 0),
    )
    .await;
    assert_eq!(again["rows"], queues["rows"]);
    let again = report(
        &node,
        &format!("/api/v1/reports/agents?{range}&interval=15m"),
        at(31, 0),
    )
    .await;
    assert_eq!(again["rows"], agents["rows"]);

    // The hour is the sum of its quarters; the day in Rome starts at 23:00Z.
    let hourly = node
        .supervised(&format!(
            "/api/v1/reports/queues?{range}&interval=1h&queue=sales"
        ))
        .await;
    let hour = row(&hourly, "queue", "sales", "2030-01-15T09:00:00Z");
    assert_eq!(
        (
            hour["entered"].clone(),
            hour["handled"].clone(),
            hour["abandoned"].clone()
        ),
        (json!(4), json!(2), json!(2))
    );
    assert_eq!(hour["service_level_pct"], 33.33, "1 of 2 + 2 - 1");
    assert_eq!(hourly["rows"].as_array().unwrap().len(), 1, "only sales");
    let daily = node
        .supervised("/api/v1/reports/queues?from=2030-01-15&interval=1d&tz=Europe/Rome")
        .await;
    let day = row(&daily, "queue", "sales", "2030-01-15T00:00:00+01:00");
    assert_eq!(day["entered"], 4);

    // CSV: a header, then the same rows.
    let token = node.token_for("sam");
    let (status, csv) = node
        .get_text_as(
            &format!("/api/v1/reports/queues?{range}&interval=1h&format=csv"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("queue,interval_start,entered,handled,abandoned,short_abandoned,rona"),
        "{csv}"
    );
    assert!(
        lines[0].ends_with("wrap_up:follow_up,wrap_up:no_response,wrap_up:resolved"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("sales,2030-01-15T09:00:00Z,4,2,2,1,1,1,0,")),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
}

/// `switchboard rebuild-reports` on the node's database, as an operator
/// runs it beside the node.
async fn rebuild(node: &Node) -> String {
    let dir = std::env::temp_dir().join(format!("sb-rebuild-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("switchboard.toml");
    std::fs::write(&config, crate::support::CONFIG).expect("config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("rebuild-reports")
        .arg("--config")
        .arg(&config)
        .env(crate::support::DATABASE_URL, node.database_url())
        .output()
        .await
        .expect("rebuild-reports runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every event of the node, read through `GET /api/v1/events`.
async fn all_events(node: &Node) -> Vec<switchboard_engine::events::DomainEvent> {
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let page = node
            .supervised(&format!("/api/v1/events?limit=1000{after}"))
            .await;
        let read = page["events"].as_array().expect("events").clone();
        if read.is_empty() {
            return events;
        }
        for event in read {
            let text = |key: &str| event[key].as_str().map(str::to_owned);
            let mut domain = switchboard_engine::events::DomainEvent::new(
                serde_json::from_value(event["type"].clone()).expect("type"),
                Timestamp::parse_rfc3339(event["at"].as_str().expect("at")).expect("at"),
                event["data"].clone(),
            );
            domain.agent_id = text("agent_id").map(switchboard_proto::AgentId::new);
            domain.queue_id = text("queue_id").map(switchboard_proto::QueueId::new);
            events.push(domain);
        }
        after = format!("&after={}", page["next_cursor"].as_str().expect("cursor"));
    }
}

/// The report's rows against the same rows recomputed from the raw events.
async fn agrees_with_the_raw_events(node: &Node, queues: &Value, agents: &Value) {
    use switchboard_engine::reports::projection::ReportRules;
    use switchboard_engine::reports::query::shown;
    let events = all_events(node).await;
    let rules = ReportRules {
        service_level_ms: 20_000,
        short_abandon_ms: 5_000,
    };
    let buckets = switchboard_engine::reports::recompute::recompute(&events, &rules, at(31, 0));
    let utc = chrono_tz::Tz::UTC;
    let queue_rows: Vec<Value> = buckets
        .queues
        .iter()
        .map(|((bucket, id), totals)| json!(totals.row(id.clone(), shown(*bucket, utc))))
        .collect();
    let agent_rows: Vec<Value> = buckets
        .agents
        .iter()
        .filter(|(_, totals)| **totals != Default::default())
        .map(|((bucket, id), totals)| json!(totals.row(id.clone(), shown(*bucket, utc))))
        .collect();
    assert_eq!(queues["rows"], json!(queue_rows));
    assert_eq!(agents["rows"], json!(agent_rows));
}
