//! Webhooks: where other systems want events pushed. An admin creates,
//! lists and deletes them; [`delivery`] pushes each one's events, in
//! order, at least once, one node at a time.
//!
//! A target must be `http(s)://` and must not be a loopback, private or
//! link-local address (a webhook must not reach into the contact center's
//! own network), unless `[webhooks] allow_private_targets`. The rule is
//! checked when a webhook is created and again, on the resolved
//! addresses, at every delivery (a name may later resolve elsewhere).

pub mod delivery;

use sqlx::Row;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use switchboard_proto::feed::{
    EventType, NewWebhook, WebhookDeliveries, WebhookDelivery, WebhookInfo,
};
use switchboard_proto::{AgentId, Timestamp};

use super::feed::{parse_types, FeedCursor};
use crate::error::EngineError;
use crate::storage::{Database, StorageError};
use crate::Engine;

/// `[webhooks]`.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Allow targets on loopback and private addresses (tests, or a
    /// receiver inside the same network on purpose).
    pub allow_private_targets: bool,
    /// A receiver that has not answered 2xx by then failed.
    pub timeout: Duration,
    /// The first retry's delay; each next one doubles, up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Most events in one delivery.
    pub batch_max: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(24 * 3600),
            batch_max: 500,
        }
    }
}

/// Shortest secret taken.
pub const MIN_SECRET_CHARS: usize = 16;
pub const MAX_URL_CHARS: usize = 2000;
/// Deliveries a log keeps per webhook (older ones go).
pub const DELIVERIES_KEPT: i64 = 1000;

/// An address a webhook may not reach unless private targets are allowed.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// The URL, if it is one a webhook may have (before resolving its host).
pub fn check_url(text: &str) -> Result<reqwest::Url, EngineError> {
    let bad = |why: &str| EngineError::BadRequest(format!("url: {why}"));
    if text.chars().count() > MAX_URL_CHARS {
        return Err(bad(&format!("at most {MAX_URL_CHARS} characters")));
    }
    let url = reqwest::Url::parse(text).map_err(|error| bad(&format!("not a URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(url)
}

/// Resolves the URL's host and refuses private addresses unless allowed.
pub async fn check_target(url: &reqwest::Url, allow_private: bool) -> Result<(), EngineError> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| {
            EngineError::BadRequest(format!("url: {host} does not resolve ({error})"))
        })?
        .collect();
    if addresses.is_empty() {
        return Err(EngineError::BadRequest(format!(
            "url: {host} does not resolve"
        )));
    }
    if !allow_private {
        if let Some(private) = addresses.iter().find(|address| is_private(address.ip())) {
            return Err(EngineError::BadRequest(format!(
                "url: {host} is a loopback or private address ({}); set [webhooks] allow_private_targets to allow it",
                private.ip()
            )));
        }
    }
    Ok(())
}

/// A webhook as stored.
#[derive(Clone, Debug)]
pub(crate) struct WebhookRow {
    pub id: String,
    pub url: String,
    pub types: Vec<EventType>,
    pub secret: String,
    pub created_ms: i64,
    pub created_by: String,
    pub cursor: i64,
    pub failures: u32,
    pub next_attempt_ms: Option<i64>,
}

fn types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn row_of(row: &sqlx::any::AnyRow) -> Result<WebhookRow, StorageError> {
    let types: String = row.try_get("types")?;
    Ok(WebhookRow {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        types: types
            .split_whitespace()
            .filter_map(EventType::parse)
            .collect(),
        secret: row.try_get("secret")?,
        created_ms: row.try_get("created_ms")?,
        created_by: row.try_get("created_by")?,
        cursor: row.try_get("cursor")?,
        failures: u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
        next_attempt_ms: row.try_get("next_attempt_ms")?,
    })
}

const COLUMNS: &str =
    "id, url, types, secret, created_ms, created_by, cursor, failures, next_attempt_ms";

impl Database {
    pub(crate) async fn webhooks(&self) -> Result<Vec<WebhookRow>, StorageError> {
        let pool = self.pool().clone();
        self.run(async move {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM webhooks ORDER BY created_ms, id"
            ))
            .fetch_all(&pool)
            .await?;
            rows.iter().map(row_of).collect()
        })
        .await
    }

    pub(crate) async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>, StorageError> {
        let pool = self.pool().clone();
        let id = id.to_owned();
        self.run(async move {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1"))
                .bind(id)
                .fetch_optional(&pool)
                .await?;
            row.as_ref().map(row_of).transpose()
        })
        .await
    }
}

impl WebhookRow {
    fn info(&self, feed: &str) -> WebhookInfo {
        WebhookInfo {
            id: self.id.clone(),
            url: self.url.clone(),
            types: self.types.clone(),
            created_at: Timestamp(self.created_ms),
            created_by: AgentId::new(self.created_by.as_str()),
            cursor: FeedCursor {
                feed: feed.to_owned(),
                seq: self.cursor,
            }
            .encode(),
            failures: self.failures,
            next_attempt_at: self.next_attempt_ms.map(Timestamp),
        }
    }
}

impl Engine {
    /// `POST /api/v1/admin/webhooks`: checked whole before anything is
    /// stored. Delivery starts after `after`, by default after the newest
    /// event now.
    pub async fn create_webhook(
        &self,
        new: NewWebhook,
        by: &AgentId,
    ) -> Result<WebhookInfo, EngineError> {
        let url = check_url(new.url.trim())?;
        let types = parse_types(Some(&new.types.join(",")))?;
        if new.secret.chars().count() < MIN_SECRET_CHARS {
            return Err(EngineError::BadRequest(format!(
                "secret: at least {MIN_SECRET_CHARS} characters"
            )));
        }
        let config = &self.inner.catalog.config.webhooks;
        check_target(&url, config.allow_private_targets).await?;
        let database = self.database();
        let cursor = match new.after.as_deref() {
            Some(after) => self.event_cursor(Some(after))?.seq,
            None => database.newest_event().await?,
        };
        let row = WebhookRow {
            id: format!("wh-{}", uuid::Uuid::now_v7().simple()),
            url: url.to_string(),
            types,
            secret: new.secret,
            created_ms: Timestamp::now().millis(),
            created_by: by.as_str().to_owned(),
            cursor,
            failures: 0,
            next_attempt_ms: None,
        };
        let stored = row.clone();
        let pool = database.pool().clone();
        database
            .run(async move {
                sqlx::query(
                    "INSERT INTO webhooks (id, url, types, secret, created_ms, created_by, cursor, failures) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
                )
                .bind(stored.id)
                .bind(stored.url)
                .bind(types_text(&stored.types))
                .bind(stored.secret)
                .bind(stored.created_ms)
                .bind(stored.created_by)
                .bind(stored.cursor)
                .execute(&pool)
                .await?;
                Ok(())
            })
            .await?;
        tracing::info!(webhook = %row.id, url = %row.url, by = %by, "webhook created");
        self.inner.webhooks_changed.raise();
        Ok(row.info(database.feed_id()))
    }

    /// `GET /api/v1/admin/webhooks`.
    pub async fn webhooks(&self) -> Result<Vec<WebhookInfo>, EngineError> {
        let database = self.database();
        Ok(database
            .webhooks()
            .await?
            .iter()
            .map(|row| row.info(database.feed_id()))
            .collect())
    }

    /// `DELETE /api/v1/admin/webhooks/{id}`: delivery stops (an attempt in
    /// flight ends first), its log goes.
    pub async fn delete_webhook(&self, id: &str, by: &AgentId) -> Result<(), EngineError> {
        let database = self.database();
        let pool = database.pool().clone();
        let webhook = id.to_owned();
        let found = database
            .run(async move {
                let mut tx = pool.begin().await?;
                let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                    .bind(&webhook)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                    .bind(&webhook)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(gone > 0)
            })
            .await?;
        if !found {
            return Err(EngineError::not_found("webhook", id));
        }
        tracing::info!(webhook = %id, by = %by, "webhook deleted");
        self.inner.webhooks_changed.raise();
        Ok(())
    }

    /// `GET /api/v1/admin/webhooks/{id}/deliveries`: the latest attempts,
    /// newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: Option<usize>,
    ) -> Result<WebhookDeliveries, EngineError> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(EngineError::BadRequest("limit: from 1 to 200".into()));
        }
        let database = self.database();
        if database.webhook(id).await?.is_none() {
            return Err(EngineError::not_found("webhook", id));
        }
        let pool = database.pool().clone();
        let feed = database.feed_id().to_owned();
        let webhook = id.to_owned();
        let items = database
            .run(async move {
                let rows = sqlx::query(
                    "SELECT delivery_id, at_ms, status, delivered, events, first_seq, last_seq, \
                     duration_ms, error FROM webhook_deliveries WHERE webhook_id = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(webhook)
                .bind(limit as i64)
                .fetch_all(&pool)
                .await?;
                let cursor = |seq: i64| {
                    FeedCursor {
                        feed: feed.clone(),
                        seq,
                    }
                    .encode()
                };
                rows.iter()
                    .map(|row| {
                        Ok(WebhookDelivery {
                            delivery_id: row.try_get("delivery_id")?,
                            at: Timestamp(row.try_get("at_ms")?),
                            status: row
                                .try_get::<Option<i64>, _>("status")?
                                .and_then(|status| u16::try_from(status).ok()),
                            delivered: row.try_get::<i64, _>("delivered")? != 0,
                            events: u32::try_from(row.try_get::<i64, _>("events")?)
                                .unwrap_or(u32::MAX),
                            first_cursor: cursor(row.try_get("first_seq")?),
                            last_cursor: cursor(row.try_get("last_seq")?),
                            duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms")?)
                                .unwrap_or(0),
                            error: row.try_get("error")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StorageError>>()
            })
            .await?;
        Ok(WebhookDeliveries { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        assert!(check_url("https://crm.example.com/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "not a url",
            "http://",
            "javascript:alert(1)",
            "https://example.com/x#frag",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
