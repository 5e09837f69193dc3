//! Draining a node: readiness turns red, new sessions are refused, and every
//! open session is told to reconnect (elsewhere) and closed.

use crate::both_codecs;
use crate::support::{Client, Node};
use switchboard_proto::codec::Codec;

both_codecs!(draining_node_tells_sessions_to_reconnect_and_refuses_new_ones);

async fn draining_node_tells_sessions_to_reconnect_and_refuses_new_ones(codec: Codec) {
    let node = Node::start(&[]).await;
    let mut bob = node.agent("bob", codec).await;
    let (_id, mut customer) = node.customer("sales", "Ada", "Hello", codec).await;
    assert_eq!(node.get("/readyz", None).await.0, 200);

    node.running.state.start_drain();

    for client in [&mut bob, &mut customer] {
        let frames = client.closed().await;
        let reconnect = frames
            .iter()
            .find(|frame| frame["type"] == "reconnect")
            .unwrap_or_else(|| panic!("no reconnect frame before the close: {frames:?}"));
        assert!(reconnect["after_ms"].as_u64().is_some_and(|ms| ms > 0));
    }
    let (status, body) = node.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
    let token = node.token_for("bob");
    assert!(Client::try_connect(&node, &token, codec).await.is_err());
}
