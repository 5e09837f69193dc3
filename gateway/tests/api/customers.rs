//! Customers: a signed identity links a returning customer's chats (and
//! nothing else does), who may look a customer up, and erasure.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard_proto::codec::Codec;

use crate::support::{config_with_admin, Client, Node};

const CODEC: Codec = Codec::Json;
const SECRET: &str = "widget-identity-secret-0123456789abcdef";
const IDENTITY_ENV: (&str, &str) = ("SWITCHBOARD__WIDGET__IDENTITY_SECRET", SECRET);

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An identity as a web site signs it.
fn identity(claims: Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("identity signs")
}

pub(crate) fn signed(sub: &str) -> String {
    identity(
        json!({"sub": sub, "name": "Ada Lovelace", "email": "ada@example.com", "exp": now_s() + 600}),
        SECRET,
    )
}

/// Sam is also an admin here.
pub(crate) async fn node_with_identities() -> Node {
    Node::start_on(&config_with_admin(), &[IDENTITY_ENV]).await
}

async fn start(node: &Node, body: Value) -> (u16, Value) {
    node.post("/api/v1/chats", &body).await
}

/// A chat of the customer `identity` signs, accepted by `agent`.
pub(crate) async fn identified_chat(
    node: &Node,
    agent: &mut Client,
    token: &str,
    text: &str,
) -> (String, Value) {
    let (status, body) = start(
        node,
        json!({"queue": "sales", "customer": {"name": "typed name"}, "message": text, "identity": token}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["conversation_id"].as_str().expect("id").to_owned();
    let offer = agent
        .event_where("offer", |offer| offer["conversation_id"] == id.as_str())
        .await;
    agent
        .ok(json!({"type": "accept", "conversation_id": id}))
        .await;
    (id, offer)
}

/// Ends and wraps up `id`, and waits until its record is closed.
pub(crate) async fn close(node: &Node, agent: &mut Client, id: &str) {
    agent
        .ok(json!({"type": "end", "conversation_id": id}))
        .await;
    agent
        .ok(json!({"type": "wrap_up", "conversation_id": id, "reason": "resolved"}))
        .await;
    node.recorded_closed(id).await;
}

#[actix_rt::test]
async fn a_signed_identity_links_a_returning_customers_chats() {
    let node = node_with_identities().await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let token = signed("shop-42");
    let (first, offer) = identified_chat(&node, &mut bob, &token, "My parcel is late").await;
    let customer = offer["customer"].clone();
    let customer_id = customer["id"].as_str().expect("customer id").to_owned();
    assert!(customer_id.starts_with("cu-"), "{customer}");
    assert_eq!(customer["verified"], true);
    assert_eq!(customer["previous_conversations"], 0);
    // The identity's name wins over what was typed.
    assert_eq!(customer["name"], "Ada Lovelace");
    close(&node, &mut bob, &first).await;

    let (second, offer) = identified_chat(&node, &mut bob, &token, "Still late").await;
    assert_eq!(offer["customer"]["id"], customer_id.as_str());
    assert_eq!(offer["customer"]["previous_conversations"], 1);
    let record = node.record(&second).await;
    assert_eq!(record["customer"]["id"], customer_id.as_str());
    assert_eq!(record["customer"]["verified"], true);

    let profile = node
        .supervised(&format!("/api/v1/customers/{customer_id}"))
        .await;
    assert_eq!(profile["external_id"], "shop-42");
    assert_eq!(profile["verified"], true);
    assert_eq!(profile["conversations"], 2);
    assert_eq!(profile["email"], "ada@example.com");
    let page = node
        .supervised(&format!("/api/v1/customers/{customer_id}/conversations"))
        .await;
    let listed: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["conversation_id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, [second.as_str(), first.as_str()]);
    let page = node
        .supervised(&format!(
            "/api/v1/conversations?customer={customer_id}&state=closed"
        ))
        .await;
    assert_eq!(page["items"][0]["conversation_id"], first.as_str());
}

#[actix_rt::test]
async fn a_typed_name_or_email_never_links_chats() {
    let node = node_with_identities().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = start(
            &node,
            json!({"queue": "sales", "message": "Hi",
                   "customer": {"name": "Ada", "email": "ada@example.com",
                                "id": "cu-someone-else", "verified": true}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let record = node
            .record(body["conversation_id"].as_str().expect("id"))
            .await;
        assert_eq!(record["customer"]["verified"], false, "{record}");
        let id = record["customer"]["id"]
            .as_str()
            .expect("customer id")
            .to_owned();
        assert_ne!(
            id, "cu-someone-else",
            "a client's customer id is never taken"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
}

#[actix_rt::test]
async fn a_forged_expired_or_unsigned_identity_is_refused_and_creates_nothing() {
    let node = node_with_identities().await;
    let before = node.supervised("/api/v1/conversations").await;
    let unsigned = {
        use base64::Engine as _;
        let b64 = |value: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"sub": "shop-42", "exp": now_s() + 600}))
        )
    };
    for (what, token) in [
        (
            "forged",
            identity(
                json!({"sub": "shop-42", "exp": now_s() + 600}),
                "another-secret-another-secret-0123",
            ),
        ),
        (
            "expired",
            identity(json!({"sub": "shop-42", "exp": now_s() - 60}), SECRET),
        ),
        ("without exp", identity(json!({"sub": "shop-42"}), SECRET)),
        ("alg none", unsigned),
        ("not a JWT", "hello".to_owned()),
    ] {
        let (status, body) = start(
            &node,
            json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi", "identity": token}),
        )
        .await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    }
    assert_eq!(node.supervised("/api/v1/conversations").await, before);

    // A node with no identity secret takes no identity at all.
    let plain = Node::start(&[]).await;
    let (status, body) = start(
        &plain,
        json!({"queue": "sales", "customer": {"name": "Ada"}, "message": "Hi", "identity": signed("shop-42")}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
}

#[actix_rt::test]
async fn a_customer_is_looked_up_by_supervisors_and_agents_who_served_them() {
    let node = node_with_identities().await;
    let token = signed("shop-7");
    let mut alice = node.available_agent("alice", CODEC).await;
    let (by_alice, offer) = identified_chat(&node, &mut alice, &token, "First visit").await;
    let customer_id = offer["customer"]["id"].as_str().expect("id").to_owned();
    close(&node, &mut alice, &by_alice).await;
    alice
        .ok(json!({"type": "set_state", "state": "idle", "reason": "break"}))
        .await;
    let mut bob = node.available_agent("bob", CODEC).await;
    let (by_bob, _offer) = identified_chat(&node, &mut bob, &token, "Second visit").await;

    let profile = format!("/api/v1/customers/{customer_id}");
    let (status, _) = node.get(&profile, Some(&node.token_for("bob"))).await;
    assert_eq!(status, 200, "bob serves them now");
    let (status, body) = node.get(&profile, Some(&node.token_for("carol"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = node
        .get(
            &format!("{profile}/conversations"),
            Some(&node.token_for("carol")),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // Bob reads the earlier chat Alice had with them (read-only history).
    let (status, body) = node
        .get(
            &format!("/api/v1/conversations/{by_alice}/transcript"),
            Some(&node.token_for("bob")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["text"], "First visit");
    let (status, body) = node
        .get("/api/v1/customers/cu-nobody", Some(&node.token_for("sam")))
        .await;
    assert_eq!(status, 404, "{body}");
    close(&node, &mut bob, &by_bob).await;
}

#[actix_rt::test]
async fn erasing_a_customer_leaves_no_name_email_or_text_and_keeps_the_counts() {
    let node = node_with_identities().await;
    let token = signed("shop-99");
    let mut bob = node.available_agent("bob", CODEC).await;
    let (first, offer) = identified_chat(&node, &mut bob, &token, "Zanzibar parcel").await;
    let customer_id = offer["customer"]["id"].as_str().expect("id").to_owned();
    close(&node, &mut bob, &first).await;
    let (live, _offer) = identified_chat(&node, &mut bob, &token, "Zanzibar again").await;
    let admin = node.token_for("sam");
    let erase = format!("/api/v1/customers/{customer_id}");

    // Live: refused, nothing changed.
    let (status, body) = node.delete(&erase, &admin).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "invalid_state");
    assert_eq!(node.supervised(&erase).await["conversations"], 2);
    // Only an admin erases.
    let (status, _) = node.delete(&erase, &node.token_for("bob")).await;
    assert_eq!(status, 403);

    close(&node, &mut bob, &live).await;
    let (status, body) = node.delete(&erase, &admin).await;
    assert_eq!(status, 204, "{body}");

    let (status, _) = node.get(&erase, Some(&admin)).await;
    assert_eq!(status, 404);
    for id in [&first, &live] {
        let record = node.record(id).await;
        assert_eq!(record["erased"], true, "{record}");
        assert_eq!(record["state"], "closed");
        assert_eq!(record["messages"], json!([]));
        let text = record.to_string();
        for trace in ["Ada", "ada@example.com", "Zanzibar", "shop-99"] {
            assert!(!text.contains(trace), "{trace} remains: {text}");
        }
    }
    let page = node.supervised("/api/v1/conversations?q=zanzibar").await;
    assert_eq!(page["items"], json!([]));
    // The conversations still count, nameless.
    let page = node.supervised("/api/v1/conversations?queue=sales").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["items"][0]["customer"]["name"], "");
    let (status, _) = node.delete(&erase, &admin).await;
    assert_eq!(status, 404, "erased once");
}
