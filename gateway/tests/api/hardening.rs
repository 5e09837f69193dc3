//! Hardening: what an operator is protected from without asking (known
//! secrets refused, ...). Each test fails on a node without the fix.

use serde_json::{json, Value};
use std::process::Command;
use switchboard_gateway::app::StartOptions;
use switchboard_gateway::settings::DEMO_TOKEN_SECRET;
use switchboard_proto::codec::Codec;

use crate::support::{one_worker, Client, DataDir, Node, CONFIG, DATABASE_URL};

const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Runs `switchboard check-config` on `config` written to a file of its own.
fn check_config(name: &str, config: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("sb-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config).expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env_remove("SWITCHBOARD__AUTH__TOKEN_SECRET")
        .output()
        .expect("switchboard runs");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn known_secrets_are_refused_by_check_config() {
    for (name, secret) in [
        ("demo", DEMO_TOKEN_SECRET),
        ("placeholder", "change-me-change-me-change-me-change-me"),
    ] {
        let output = check_config(name, &CONFIG.replace(TEST_SECRET, secret));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {stderr}");
        assert!(stderr.contains("auth.token_secret"), "{name}: {stderr}");
        assert!(stderr.contains("gen-secret"), "{name}: {stderr}");
    }

    // `gen-secret` makes one the same check accepts.
    let generated = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("gen-secret")
        .output()
        .expect("switchboard runs");
    assert!(generated.status.success());
    let secret = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
    assert_eq!(secret.len(), 64, "{secret}");
    let output = check_config("generated", &CONFIG.replace(TEST_SECRET, &secret));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Posts `body` to `path` with `X-Forwarded-For: forwarded_for`.
async fn post_forwarded(node: &Node, path: &str, body: &Value, forwarded_for: &str) -> u16 {
    node.http
        .post(format!("{}{path}", node.base))
        .insert_header(("X-Forwarded-For", forwarded_for))
        .send_json(body)
        .await
        .expect("node answers")
        .status()
        .as_u16()
}

/// A client that is not a configured proxy cannot dodge the per-address
/// limit by sending a new `X-Forwarded-For` each time.
#[actix_rt::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let node = Node::start(&[("SWITCHBOARD__LIMITS__CHATS_PER_MINUTE_PER_ADDRESS", "2")]).await;
    let chat = json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi"});
    let mut statuses = Vec::new();
    for n in 1..=3 {
        statuses
            .push(post_forwarded(&node, "/api/v1/chats", &chat, &format!("198.51.100.{n}")).await);
    }
    assert_eq!(statuses, [201, 201, 429]);
    assert_eq!(node.queue("sales").await["waiting"], 2);
}

/// Behind a configured proxy (here: loopback), each forwarded client has its
/// own allowance, and one account has one allowance across all of them.
#[actix_rt::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client_and_accounts_are_throttled() {
    let config = CONFIG.replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    );
    let node = Node::start_on(
        &config,
        &[
            ("SWITCHBOARD__LIMITS__CHATS_PER_MINUTE_PER_ADDRESS", "1"),
            ("SWITCHBOARD__LIMITS__LOGINS_PER_MINUTE_PER_ACCOUNT", "3"),
        ],
    )
    .await;
    let chat = json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi"});
    for n in 1..=3 {
        let status =
            post_forwarded(&node, "/api/v1/chats", &chat, &format!("198.51.100.{n}")).await;
        assert_eq!(status, 201, "client {n} has its own allowance");
    }
    let again = post_forwarded(&node, "/api/v1/chats", &chat, "198.51.100.1").await;
    assert_eq!(again, 429, "client 1 used its one chat");

    // Guessing bob's password from many addresses: three tries, then the
    // account is throttled for everyone, the right password included; other
    // accounts are not.
    let wrong = json!({"username": "bob", "password": "wrong"});
    for n in 1..=3 {
        let status = post_forwarded(
            &node,
            "/api/v1/agent/login",
            &wrong,
            &format!("203.0.113.{n}"),
        )
        .await;
        assert_eq!(status, 401);
    }
    let right = json!({"username": "bob", "password": "pw-bob"});
    let (status, body) = node.post("/api/v1/agent/login", &right).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("account"),
        "{body}"
    );
    let carol = json!({"username": "carol", "password": "pw-carol"});
    assert_eq!(node.post("/api/v1/agent/login", &carol).await.0, 200);
}

/// A logout is kept in the database: after the node restarts, a token from
/// before it is still refused, over REST and WebSocket.
#[actix_rt::test]
async fn a_logout_survives_an_embedded_restart() {
    let data = DataDir::new();
    let url = data.sqlite_url();
    let env = [(DATABASE_URL, url.as_str())];
    let node = Node::start_config(CONFIG, DataDir::new(), &env, one_worker()).await;
    let old = node.login("bob").await;
    let mut bob = Client::connect(&node, &old, Codec::Json).await;
    bob.ok(json!({"type": "logout"})).await;
    bob.closed().await;
    node.running.shutdown().await;
    drop(node);

    let node = Node::start_config(CONFIG, DataDir::new(), &env, one_worker()).await;
    let (status, body) = node.get("/api/v1/queues", Some(&old)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        Client::try_connect(&node, &old, Codec::Json).await.is_err(),
        "a token from before the logout opened a WebSocket after the restart"
    );
    let new = node.login("bob").await;
    assert_eq!(node.get("/api/v1/queues", Some(&new)).await.0, 200);
}

/// A node whose tokens last `ttl_s` seconds and whose sessions check their
/// token on every heartbeat (100 ms).
async fn node_with_token_ttl(ttl_s: &str) -> Node {
    Node::start_with(
        &[("SWITCHBOARD__AUTH__TOKEN_TTL_S", ttl_s)],
        StartOptions {
            workers: 1,
            ping_interval: std::time::Duration::from_millis(100),
            client_timeout: std::time::Duration::from_secs(30),
        },
    )
    .await
}

/// An open session ends when its token expires: close code 4001, and the
/// token opens nothing afterwards.
#[actix_rt::test]
async fn a_session_is_closed_when_its_token_expires() {
    let node = node_with_token_ttl("2").await;
    let token = node.login("bob").await;
    let mut bob = Client::connect(&node, &token, Codec::Json).await;
    assert!(bob.hello["token_expires_at"].is_string(), "{}", bob.hello);
    bob.closed().await;
    let (code, reason) = bob.close.clone().expect("a close frame");
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.contains("token expired"), "{reason}");
    assert!(Client::try_connect(&node, &token, Codec::Json)
        .await
        .is_err());
}

/// `refresh_token` hands the session a new token and moves its end: the
/// session outlives the first token, and the new token opens sessions and
/// reads the API. (Token expiry is the subject: the test waits it out.)
#[actix_rt::test]
async fn refresh_token_keeps_a_session_past_its_first_token() {
    let node = node_with_token_ttl("4").await;
    let first = node.login("bob").await;
    let mut bob = Client::connect(&node, &first, Codec::Json).await;
    let first_expiry = expiry(&bob.hello["token_expires_at"]);

    // Two seconds on, the new token ends at least two seconds later.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let ack = bob.ok(json!({"type": "refresh_token"})).await;
    let second = ack["token"].as_str().expect("a new token").to_owned();
    assert_ne!(second, first);
    assert!(expiry(&ack["token_expires_at"]) > first_expiry, "{ack}");

    // Past the first token's end: it is refused, the session goes on.
    let left = first_expiry - switchboard_proto::Timestamp::now().millis();
    let left = std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0));
    tokio::time::sleep(left + std::time::Duration::from_millis(300)).await;
    assert_eq!(node.get("/api/v1/queues", Some(&first)).await.0, 401);
    let ack = bob
        .ok(json!({"type": "set_state", "state": "available"}))
        .await;
    assert_eq!(ack["state"], "available", "{ack}");
    assert_eq!(bob.close, None);
    assert_eq!(node.get("/api/v1/queues", Some(&second)).await.0, 200);
    let again = Client::connect(&node, &second, Codec::Json).await;
    assert!(again.hello["token_expires_at"].is_string());
}

/// A timestamp field, unix ms.
fn expiry(value: &Value) -> i64 {
    switchboard_proto::Timestamp::parse_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .millis()
}
