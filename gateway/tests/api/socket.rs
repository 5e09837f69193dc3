//! The WebSocket itself, below the protocol's commands: the upgrade, what
//! a refused upgrade answers, frames that arrive with the handshake, frame
//! limits, and the heartbeat ("the server pings every session; one that
//! stops answering is closed"). Raw sockets, so each byte on the wire is
//! the test's own.

use crate::support::{Node, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use switchboard_gateway::app::StartOptions;
use switchboard_proto::codec::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// An upgrade request for `path`, with `extra` header lines.
fn upgrade_request(node: &Node, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        node.running.addr
    )
}

/// A client frame (masked, as RFC 6455 requires of clients), final.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4]),
    );
    frame
}

/// Reads until the end of the HTTP response head; returns the head and
/// whatever came after it.
async fn read_head(socket: &mut TcpStream) -> (String, Vec<u8>) {
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = read.windows(4).position(|window| window == b"\r\n\r\n") {
            let rest = read.split_off(end + 4);
            return (String::from_utf8_lossy(&read).into_owned(), rest);
        }
        let n = tokio::time::timeout(WAIT, socket.read(&mut chunk))
            .await
            .expect("response head within the wait")
            .expect("read");
        assert!(n > 0, "closed before the response head: {read:?}");
        read.extend_from_slice(&chunk[..n]);
    }
}

/// Upgrades `socket` (connected to `node`) to a WebSocket for `token`:
/// returns it with whatever the server sent behind its `101`.
async fn upgrade(node: &Node, mut socket: TcpStream, token: &str) -> (TcpStream, Vec<u8>) {
    let request = upgrade_request(node, &format!("/api/v1/ws?token={token}"), "");
    socket.write_all(request.as_bytes()).await.expect("write");
    let (head, rest) = read_head(&mut socket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (socket, rest)
}

/// A connection to `node`.
async fn connect(node: &Node) -> TcpStream {
    TcpStream::connect(node.running.addr)
        .await
        .expect("connect")
}

/// Everything the server sends until it closes the connection (bounded).
async fn read_to_end(socket: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut read))
        .await
        .expect("the server closes the connection within the wait")
        .expect("read");
    read
}

/// Server frames (unmasked) as (opcode, payload).
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                usize::try_from(u64::from_be_bytes(
                    bytes[2..10].try_into().expect("8 bytes"),
                ))
                .expect("length"),
                10,
            ),
            len => (usize::from(len), 2),
        };
        frames.push((opcode, bytes[header..header + len].to_vec()));
        bytes = &bytes[header + len..];
    }
    frames
}

/// A client WebSocket over `socket`, after its `101`.
async fn client(socket: TcpStream, rest: Vec<u8>) -> WebSocketStream<TcpStream> {
    WebSocketStream::from_partially_read(socket, rest, Role::Client, None).await
}

/// The next text frame, as JSON (pings are answered by the reading).
async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within the wait")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON frame");
        }
    }
}

#[actix_rt::test]
async fn frames_sent_with_the_handshake_are_read() {
    let node = Node::start(&[]).await;
    let token = node.token_for("bob");
    let mut socket = connect(&node).await;
    // The handshake and a first command in one write: the command reaches
    // the server before its `101` is written.
    let mut bytes = upgrade_request(&node, &format!("/api/v1/ws?token={token}"), "").into_bytes();
    bytes.extend(client_frame(
        0x1,
        br#"{"type":"set_state","state":"available","request_id":"early"}"#,
    ));
    socket.write_all(&bytes).await.expect("write");
    let (head, rest) = read_head(&mut socket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut ws = client(socket, rest).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["request_id"], "early", "{ack}");
    assert_eq!(node.agent_ids("state=available").await, ["bob"]);
}

#[actix_rt::test]
async fn refused_upgrades_get_an_error_body_and_the_connection_closes() {
    let node = Node::start(&[]).await;
    let token = node.token_for("bob");
    let cases = [
        (
            "no token".to_owned(),
            upgrade_request(&node, "/api/v1/ws", ""),
            "401",
            Some("unauthorized"),
        ),
        (
            "unknown subprotocol".to_owned(),
            upgrade_request(
                &node,
                &format!("/api/v1/ws?token={token}"),
                "Sec-WebSocket-Protocol: chat.v9\r\n",
            ),
            "400",
            Some("bad_request"),
        ),
        (
            "no Sec-WebSocket-Key".to_owned(),
            upgrade_request(&node, &format!("/api/v1/ws?token={token}"), "")
                .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
            Some("bad_request"),
        ),
        (
            "an upgrade elsewhere gets that route's answer".to_owned(),
            upgrade_request(&node, "/healthz", ""),
            "200",
            None,
        ),
    ];
    for (what, request, status, code) in cases {
        let mut socket = connect(&node).await;
        socket.write_all(request.as_bytes()).await.expect("write");
        let answer = read_to_end(&mut socket).await;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{what}: {head}"
        );
        if let Some(code) = code {
            let body: Value = serde_json::from_str(body).expect("JSON error body");
            assert_eq!(body["error"]["code"], code, "{what}: {body}");
        }
    }
    // Refused before the engine session opens (opening it logs bob in).
    assert!(node
        .agent_ids("state=offline")
        .await
        .contains(&"bob".to_owned()));
}

#[actix_rt::test]
async fn oversize_frame_closes_the_socket_as_too_big() {
    let node = Node::start(&[]).await;
    let token = node.token_for("bob");
    let (socket, rest) = upgrade(&node, connect(&node).await, &token).await;
    let mut ws = client(socket, rest).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let padding = "x".repeat(70 * 1024);
    let command = format!(r#"{{"type":"set_state","state":"available","note":"{padding}"}}"#);
    ws.send(Message::text(command)).await.expect("send");
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close within the wait")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|frame| frame.code), Some(CloseCode::Size));
    assert_eq!(
        node.agent_ids("state=available").await,
        Vec::<String>::new()
    );
}

#[actix_rt::test]
async fn session_that_stops_answering_pings_is_closed() {
    let options = StartOptions {
        workers: 1,
        ping_interval: Duration::from_millis(100),
        client_timeout: Duration::from_millis(400),
    };
    let node = Node::start_with(&[], options).await;
    let token = node.token_for("bob");

    // A client that reads and answers pings stays open for many timeouts.
    let (socket, rest) = upgrade(&node, connect(&node).await, &token).await;
    let mut alive = client(socket, rest).await;
    assert_eq!(next_json(&mut alive).await["type"], "hello");
    let mut pings = 0;
    while pings < 10 {
        match tokio::time::timeout(WAIT, alive.next())
            .await
            .expect("a ping within the wait")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(_)) => {}
            other => panic!("the answering session ended: {other:?}"),
        }
    }
    alive
        .send(Message::text(
            r#"{"type":"set_state","state":"available","request_id":"r"}"#,
        ))
        .await
        .expect("send");
    assert_eq!(next_json(&mut alive).await["type"], "ack");
    drop(alive);

    // A client that never answers is pinged, then closed with a policy close.
    let (mut silent, rest) = upgrade(&node, connect(&node).await, &token).await;
    let mut wire = rest;
    wire.extend(read_to_end(&mut silent).await);
    let frames = server_frames(&wire);
    let opcodes: Vec<u8> = frames.iter().map(|(opcode, _)| *opcode).collect();
    assert_eq!(opcodes.first(), Some(&0x1), "hello first: {opcodes:?}");
    assert!(opcodes.contains(&0x9), "pinged: {opcodes:?}");
    let (last, reason) = frames.last().expect("frames");
    assert_eq!(*last, 0x8, "a close last: {opcodes:?}");
    assert_eq!(reason[..2], 1008u16.to_be_bytes(), "policy close");
}

#[actix_rt::test]
async fn client_that_stops_reading_is_dropped_after_the_client_timeout() {
    // Pings far apart: only a stalled write can end the session here.
    let options = StartOptions {
        workers: 1,
        ping_interval: Duration::from_secs(60),
        client_timeout: Duration::from_millis(500),
    };
    let node = Node::start_with(
        &[("SWITCHBOARD__LIMITS__MAX_MESSAGE_CHARS", "4000")],
        options,
    )
    .await;
    let mut carol = node.available_agent("carol", Codec::Json).await;
    let (id, token) = node.start_chat("support", "Ada", "Hello").await;
    carol.accept(&id).await;

    // The customer's socket reads its `101` and nothing after; its small
    // receive buffer fills after a few frames.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let connected = socket.connect(node.running.addr).await.expect("connect");
    let (mut customer, _) = upgrade(&node, connected, &token).await;

    // Carol writes (4 MB at most) until the server drops the customer's
    // socket; once it has, the customer's writes fail (the server reset the
    // connection).
    let text = "x".repeat(4000);
    let started = std::time::Instant::now();
    let mut dropped = false;
    for n in 0..1000 {
        carol.say(&id, &text, &format!("m{n}")).await;
        if customer.write_all(&client_frame(0x9, b"")).await.is_err() {
            dropped = true;
            break;
        }
    }
    // A reset is only seen by writing: probe (bounded) until it comes.
    while !dropped && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        dropped = customer.write_all(&client_frame(0x9, b"")).await.is_err();
    }
    assert!(
        dropped,
        "a client that never reads was kept for {:?}",
        started.elapsed()
    );
    // Carol's own session is unharmed.
    carol.say(&id, "still here", "last").await;
}
