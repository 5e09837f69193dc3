//! A webhook receiver on a loopback port, as an integrator would run one:
//! plain HTTP/1.1 over a real socket, which checks each delivery's
//! `Switchboard-Signature` like `docs/webhook-receiver.py` does. Each
//! request is answered as the test scripts it: a status, a redirect, no
//! answer at all (hang), or a dropped connection.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// 302 to another place (never followed).
    Redirect,
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and closes the connection without a word.
    Close,
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The answer it got.
    pub answer: Answer,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a delivery is JSON")
    }

    /// Checks `Switchboard-Signature` as a receiver must: the HMAC-SHA256
    /// of `<t>.<raw body>` with the secret, compared in constant time.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(header) = self.headers.get("switchboard-signature") else {
            return false;
        };
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = Some(value),
                Some(("v1", value)) => v1 = Some(value),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        let Ok(expected) = hex::decode(v1) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&expected).is_ok()
    }

    /// The events it carried, in order.
    pub fn events(&self) -> Vec<Value> {
        self.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

pub struct Receiver {
    pub port: u16,
    script: Arc<Mutex<VecDeque<Answer>>>,
    pub deliveries: mpsc::UnboundedReceiver<Delivery>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free loopback port; answers 200 unless scripted.
    pub async fn start() -> Receiver {
        Receiver::on_port(0).await
    }

    /// Listens on `port` (a receiver that comes back where it was).
    pub async fn on_port(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("receiver binds");
        let port = listener.local_addr().expect("bound").port();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let (sent, deliveries) = mpsc::unbounded_channel();
        let answers = script.clone();
        let task = tokio::task::spawn_local(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let answers = answers.clone();
                let sent = sent.clone();
                tokio::task::spawn_local(serve(socket, answers, sent));
            }
        });
        Receiver {
            port,
            script,
            deliveries,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next requests get these answers, in order (then 200 again).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().expect("script lock").extend(answers);
    }

    /// The next delivery (bounded wait).
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(Duration::from_secs(20), self.deliveries.recv())
            .await
            .expect("a delivery within 20 s")
            .expect("the receiver runs")
    }

    /// Stops listening (connections refused from now on).
    pub fn stop(self) -> u16 {
        self.task.abort();
        self.port
    }
}

async fn serve(
    mut socket: TcpStream,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    sent: mpsc::UnboundedSender<Delivery>,
) {
    loop {
        let Some((headers, body)) = read_request(&mut socket).await else {
            return;
        };
        let answer = answers
            .lock()
            .expect("script lock")
            .pop_front()
            .unwrap_or(Answer::Status(200));
        let _ = sent.send(Delivery {
            headers,
            body,
            answer: answer.clone(),
        });
        let reply = match answer {
            Answer::Status(status) => {
                format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Redirect => {
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
            Answer::Hang => {
                // Keeps the socket open, says nothing, until the client gives up.
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
                return;
            }
            Answer::Close => return,
        };
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request: its headers (lower-case names) and body, or `None` once
/// the client closed the connection.
async fn read_request(socket: &mut TcpStream) -> Option<(HashMap<String, String>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Some((headers, body))
}
