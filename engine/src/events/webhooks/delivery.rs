//! Pushing events to webhooks: per webhook, in cursor order, at least once.
//!
//! Every node looks at the list of webhooks (each second, and at once when
//! it changed one) and runs a worker for each webhook whose lease it holds
//! (one node at a time; an embedded node holds them all). A worker posts
//! the events after the webhook's cursor in batches and moves the cursor
//! only on a 2xx answer; anything else (an error status, a redirect, a
//! timeout, a refused or closed connection) is logged and retried after
//! a delay that doubles up to `retry_max`, while later events wait behind.
//! The cursor lives in the database and moves by compare-and-set, so a
//! node that lost the lease mid-delivery never moves it back, and the node
//! that takes over goes on from the last acknowledged event. Events wait
//! in the database, not in memory, however long a receiver is down.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_proto::feed::WebhookBatch;
use switchboard_proto::Timestamp;

use super::{is_private, WebhookConfig, WebhookRow, DELIVERIES_KEPT};
use crate::cluster::lease::Lease;
use crate::cluster::placement::Placement;
use crate::context::EngineContext;
use crate::events::feed::FeedCursor;
use crate::events::DomainEvent;
use crate::storage::{Database, StorageError};

/// A cluster lease on a webhook lapses this long after its holder died.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the list of webhooks is read again, and an idle worker looks
/// for events should a notification be lost.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// `Switchboard-Signature` for a body sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes a key of any length");
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Resolves names for deliveries, dropping private addresses unless they
/// are allowed: a name that resolved to a public address when the webhook
/// was made may not later point inside the network.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| !is_private(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{} resolves to no public address (private targets are not allowed)",
                    name.as_str()
                )
                .into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn client(config: &WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !config.allow_private_targets {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build()
}

/// Starts delivering on this node: every webhook in one process; in a
/// cluster, those whose lease this node takes.
pub(crate) fn start(engine: Arc<EngineContext>, placement: Option<Arc<Placement>>) {
    let config = engine.catalog.config.webhooks.clone();
    let client = match client(&config) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook delivery not started: no HTTP client");
            return;
        }
    };
    actix::spawn(supervise(engine, client, placement));
}

/// Keeps a worker running for each webhook this node holds.
async fn supervise(
    engine: Arc<EngineContext>,
    client: reqwest::Client,
    placement: Option<Arc<Placement>>,
) {
    let mut workers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut changed = engine.webhooks_changed.subscribe();
    loop {
        if engine.is_resigned() {
            return;
        }
        workers.retain(|_, worker| !worker.is_finished());
        match engine.database.webhooks().await {
            Ok(webhooks) => {
                for webhook in webhooks {
                    if workers.contains_key(&webhook.id) {
                        continue;
                    }
                    let mut lease = match &placement {
                        None => Lease::local(),
                        Some(placement) => Lease::shared(
                            placement.connection(),
                            placement.keys().webhook_lease(&webhook.id),
                            format!("{}:epoch", placement.keys().webhook_lease(&webhook.id)),
                            placement.me().to_owned(),
                            LEASE_TTL,
                        ),
                    };
                    if !lease.acquire().await {
                        continue;
                    }
                    tracing::info!(webhook = %webhook.id, "delivering this webhook from this node");
                    let worker = Worker {
                        engine: engine.clone(),
                        client: client.clone(),
                        id: webhook.id.clone(),
                        lease,
                    };
                    workers.insert(webhook.id, actix::spawn(worker.run()));
                }
            }
            Err(error) => tracing::warn!(%error, "webhooks not listed"),
        }
        let _ = tokio::time::timeout(LOOK_EVERY, changed.changed()).await;
    }
}

struct Worker {
    engine: Arc<EngineContext>,
    client: reqwest::Client,
    id: String,
    lease: Lease,
}

/// What one attempt came to.
struct Attempt {
    delivery_id: String,
    at: Timestamp,
    status: Option<u16>,
    delivered: bool,
    error: Option<String>,
    took: Duration,
}

impl Worker {
    async fn run(mut self) {
        let database = self.engine.database.clone();
        let config = self.engine.catalog.config.webhooks.clone();
        let mut events_signal = database.event_signal().subscribe();
        // (cursor, scanned to): a filtered webhook's last read found
        // nothing after its cursor up to there; the next one starts there.
        let mut scanned: Option<(i64, i64)> = None;
        loop {
            if self.engine.is_resigned() || !self.lease.keep().await {
                break;
            }
            let webhook = match database.webhook(&self.id).await {
                Ok(Some(webhook)) => webhook,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(webhook = %self.id, %error, "webhook not read");
                    tokio::time::sleep(LOOK_EVERY).await;
                    continue;
                }
            };
            let now = Timestamp::now();
            if let Some(next) = webhook.next_attempt_ms.filter(|next| *next > now.millis()) {
                let wait = Duration::from_millis(next.abs_diff(now.millis()));
                tokio::time::sleep(wait.min(LEASE_TTL / 3)).await;
                continue;
            }
            let from = match scanned {
                Some((cursor, to)) if cursor == webhook.cursor => to,
                _ => webhook.cursor,
            };
            let events = match database
                .events_after(from, &webhook.types, config.batch_max)
                .await
            {
                Ok(read) => {
                    // Only a read with nothing to deliver moves past: a
                    // batch's events wait until they are acknowledged.
                    scanned = read
                        .events
                        .is_empty()
                        .then_some((webhook.cursor, read.scanned_to));
                    read.events
                }
                Err(error) => {
                    tracing::warn!(webhook = %self.id, %error, "events not read");
                    tokio::time::sleep(LOOK_EVERY).await;
                    continue;
                }
            };
            if events.is_empty() {
                let _ = tokio::time::timeout(LOOK_EVERY, events_signal.changed()).await;
                continue;
            }
            let attempt = self
                .post(&webhook, &events, database.feed_id(), &config)
                .await;
            let oldest = events.first().map(|(_, event)| event.at);
            if let Err(error) = record(&database, &webhook, &events, &attempt, &config).await {
                tracing::warn!(webhook = %self.id, %error, "delivery not recorded");
                tokio::time::sleep(LOOK_EVERY).await;
            }
            if attempt.delivered {
                metrics::counter!("switchboard_webhook_events_delivered_total")
                    .increment(events.len() as u64);
                if let Some(oldest) = oldest {
                    metrics::histogram!("switchboard_webhook_lag_seconds")
                        .record(Timestamp::now().millis_since(oldest) as f64 / 1000.0);
                }
            } else {
                metrics::counter!("switchboard_webhook_failures_total").increment(1);
            }
        }
        self.lease.release().await;
        tracing::info!(webhook = %self.id, "webhook delivery stopped on this node");
    }

    /// One POST of a batch.
    async fn post(
        &self,
        webhook: &WebhookRow,
        events: &[(i64, DomainEvent)],
        feed: &str,
        config: &WebhookConfig,
    ) -> Attempt {
        let delivery_id = uuid::Uuid::now_v7().to_string();
        let at = Timestamp::now();
        let started = Instant::now();
        let failed = |error: String, status: Option<u16>| Attempt {
            delivery_id: delivery_id.clone(),
            at,
            status,
            delivered: false,
            error: Some(error),
            took: started.elapsed(),
        };
        let batch = WebhookBatch {
            webhook_id: webhook.id.clone(),
            events: events
                .iter()
                .map(|(seq, event)| {
                    event.to_wire(
                        FeedCursor {
                            feed: feed.to_owned(),
                            seq: *seq,
                        }
                        .encode(),
                    )
                })
                .collect(),
        };
        let body = match serde_json::to_vec(&batch) {
            Ok(body) => body,
            Err(error) => return failed(format!("batch not encoded: {error}"), None),
        };
        let url = match reqwest::Url::parse(&webhook.url) {
            Ok(url) => url,
            Err(error) => return failed(format!("stored URL unreadable: {error}"), None),
        };
        // A literal address is not resolved, so the resolver cannot refuse it.
        let literal = url
            .host_str()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<std::net::IpAddr>().ok());
        if !config.allow_private_targets && literal.is_some_and(is_private) {
            return failed("the target is a private address".into(), None);
        }
        let t = at.millis() / 1000;
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(
                "switchboard-signature",
                signature(&webhook.secret, t, &body),
            )
            .header("switchboard-delivery", &delivery_id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Attempt {
                delivery_id,
                at,
                status: Some(response.status().as_u16()),
                delivered: true,
                error: None,
                took: started.elapsed(),
            },
            Ok(response) => {
                let status = response.status();
                let why = if status.is_redirection() {
                    format!("answered {status}: redirects are not followed")
                } else {
                    format!("answered {status}")
                };
                failed(why, Some(status.as_u16()))
            }
            Err(error) if error.is_timeout() => failed(
                format!("no answer within {} ms", config.timeout.as_millis()),
                None,
            ),
            Err(error) => failed(error_chain(&error), None),
        }
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The delay before retry number `failures` (1 for the first).
pub fn backoff(config: &WebhookConfig, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    config
        .retry_initial
        .saturating_mul(factor)
        .min(config.retry_max)
}

/// Logs an attempt and moves the webhook on: its cursor past the batch
/// (delivered), or its next attempt later (failed). Both by
/// compare-and-set on the cursor read before the attempt.
async fn record(
    database: &Database,
    webhook: &WebhookRow,
    events: &[(i64, DomainEvent)],
    attempt: &Attempt,
    config: &WebhookConfig,
) -> Result<(), StorageError> {
    let first = events.first().map_or(webhook.cursor, |(seq, _)| *seq);
    let last = events.last().map_or(webhook.cursor, |(seq, _)| *seq);
    let failures = if attempt.delivered {
        0
    } else {
        webhook.failures.saturating_add(1)
    };
    let next_attempt = (!attempt.delivered).then(|| {
        attempt
            .at
            .plus_millis(u64::try_from(backoff(config, failures).as_millis()).unwrap_or(u64::MAX))
            .millis()
    });
    if let Some(error) = &attempt.error {
        tracing::warn!(webhook = %webhook.id, failures, %error, "webhook delivery failed; retrying later");
    }
    let pool = database.pool().clone();
    let id = webhook.id.clone();
    let cursor = webhook.cursor;
    let delivered = attempt.delivered;
    let row = (
        attempt.delivery_id.clone(),
        attempt.at.millis(),
        attempt.status.map(i64::from),
        i64::from(attempt.delivered),
        events.len() as i64,
        i64::try_from(attempt.took.as_millis()).unwrap_or(i64::MAX),
        attempt.error.clone(),
    );
    database
        .run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, delivery_id, at_ms, status, delivered, \
                 events, first_seq, last_seq, duration_ms, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&id)
            .bind(row.0)
            .bind(row.1)
            .bind(row.2)
            .bind(row.3)
            .bind(row.4)
            .bind(first)
            .bind(last)
            .bind(row.5)
            .bind(row.6)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id <= \
                 (SELECT id FROM webhook_deliveries WHERE webhook_id = $1 \
                  ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(&id)
            .bind(DELIVERIES_KEPT)
            .execute(&mut *tx)
            .await?;
            if delivered {
                sqlx::query(
                    "UPDATE webhooks SET cursor = $1, failures = 0, next_attempt_ms = NULL \
                     WHERE id = $2 AND cursor = $3",
                )
                .bind(last)
                .bind(&id)
                .bind(cursor)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE webhooks SET failures = $1, next_attempt_ms = $2 \
                     WHERE id = $3 AND cursor = $4",
                )
                .bind(i64::from(failures))
                .bind(next_attempt)
                .bind(&id)
                .bind(cursor)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_time_and_the_body() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'secret-of-sixteen'
        assert_eq!(
            signature("secret-of-sixteen", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=021c30d810963293d31f137660d219c4456edc51ce58968c7707b00f827b9216"
        );
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_the_limit() {
        let config = WebhookConfig::default();
        assert_eq!(backoff(&config, 1), Duration::from_secs(1));
        assert_eq!(backoff(&config, 2), Duration::from_secs(2));
        assert_eq!(backoff(&config, 5), Duration::from_secs(16));
        assert_eq!(backoff(&config, 40), Duration::from_secs(24 * 3600));
    }
}
