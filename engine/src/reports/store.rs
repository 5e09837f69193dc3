//! Report buckets and the projection's position in the database (both
//! dialects, the same SQL). A step of the projection is one transaction:
//! the position moves only if no other node moved it meanwhile (its
//! version), and the step's buckets are added to what is stored.

use super::projection::{bucket_of, Buckets, Projection, BUCKET_MS};
use super::totals::{AgentTotals, QueueTotals};
use crate::storage::{Database, Dialect, StorageError};
use serde::de::DeserializeOwned;
use sqlx::Row;
use std::collections::BTreeMap;
use switchboard_proto::{AgentId, QueueId};

/// Where the projection stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    /// The last event folded in.
    pub seq: i64,
    pub projection: Projection,
    /// Moved on by every save.
    pub version: i64,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {error}"))
}

fn json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StorageError> {
    serde_json::from_str(text).map_err(|error| corrupt(what, error))
}

fn text<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|error| corrupt("report totals", error))
}

/// The two bucket tables, by what they are of.
const QUEUES: (&str, &str) = ("report_queue_buckets", "queue_id");
const AGENTS: (&str, &str) = ("report_agent_buckets", "agent_id");

/// Adds `buckets` to the stored ones of `table` within one transaction.
async fn add_buckets<K, T>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    (table, column): (&str, &str),
    buckets: &BTreeMap<(i64, K), T>,
    key: impl Fn(&K) -> &str,
    add: impl Fn(&mut T, &T),
) -> Result<(), StorageError>
where
    T: Default + Clone + serde::Serialize + DeserializeOwned,
{
    // Only the buckets this step touched are read (inside the write
    // transaction), never a range: a late event or a rebuild spreads a
    // step over many buckets, and SQLite's writer waits meanwhile.
    let select = format!("SELECT totals FROM {table} WHERE bucket_ms = $1 AND {column} = $2");
    let upsert = format!(
        "INSERT INTO {table} (bucket_ms, {column}, totals) VALUES ($1, $2, $3) \
         ON CONFLICT (bucket_ms, {column}) DO UPDATE SET totals = excluded.totals"
    );
    for ((bucket, id), totals) in buckets {
        let id = key(id);
        let stored: Option<String> = sqlx::query_scalar(&select)
            .bind(*bucket)
            .bind(id.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
        let mut sum: T = match stored {
            Some(stored) => json("report totals", &stored)?,
            None => T::default(),
        };
        add(&mut sum, totals);
        sqlx::query(&upsert)
            .bind(*bucket)
            .bind(id.to_owned())
            .bind(text(&sum)?)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Stored buckets of `table` in `[from, to)`, of `only` when not empty,
/// with the position they were read at (one snapshot: a step committed in
/// between is in both or in neither). Decoded off the database's thread.
async fn read_buckets<T: DeserializeOwned + Send + 'static>(
    pool: &sqlx::AnyPool,
    dialect: Dialect,
    (table, column): (&str, &str),
    from: i64,
    to: i64,
    only: &[String],
) -> Result<(Position, Vec<(i64, String, T)>), StorageError> {
    let mut tx = pool.begin().await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
    }
    let position = read_position(&mut tx).await?;
    let mut sql = format!(
        "SELECT bucket_ms, {column}, totals FROM {table} WHERE bucket_ms >= $1 AND bucket_ms < $2"
    );
    if !only.is_empty() {
        let places: Vec<String> = (0..only.len()).map(|i| format!("${}", i + 3)).collect();
        sql.push_str(&format!(" AND {column} IN ({})", places.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY bucket_ms, {column}"));
    let mut query = sqlx::query(&sql).bind(from).bind(to);
    for id in only {
        query = query.bind(id.clone());
    }
    let rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let mut raw = Vec::with_capacity(rows.len());
    for row in &rows {
        raw.push((
            row.try_get::<i64, _>(0)?,
            row.try_get::<String, _>(1)?,
            row.try_get::<String, _>(2)?,
        ));
    }
    drop(rows);
    let decoded = tokio::task::spawn_blocking(move || {
        raw.into_iter()
            .map(|(bucket, id, totals)| Ok((bucket, id, json("report totals", &totals)?)))
            .collect::<Result<Vec<_>, StorageError>>()
    })
    .await
    .map_err(|error| StorageError::Unavailable(error.to_string()))??;
    Ok((position, decoded))
}

async fn read_position(
    executor: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<Position, StorageError> {
    let row = sqlx::query("SELECT seq, state, version FROM report_projection WHERE id = 1")
        .fetch_one(&mut **executor)
        .await?;
    let state: String = row.try_get(1)?;
    Ok(Position {
        seq: row.try_get(0)?,
        projection: json("report projection", &state)?,
        version: row.try_get(2)?,
    })
}

impl Database {
    /// Where the projection stands now.
    pub async fn report_position(&self) -> Result<Position, StorageError> {
        let pool = self.pool().clone();
        self.run(async move {
            let mut tx = pool.begin().await?;
            let position = read_position(&mut tx).await?;
            tx.commit().await?;
            Ok(position)
        })
        .await
    }

    /// Saves a step from `from` (as loaded) to `to`: `Ok(None)` when
    /// another node saved a step since `from` was loaded (nothing is
    /// written; load again), else the new position.
    pub async fn save_report_step(
        &self,
        from: &Position,
        to_seq: i64,
        projection: Projection,
        buckets: Buckets,
    ) -> Result<Option<Position>, StorageError> {
        let pool = self.pool().clone();
        let version = from.version;
        let state = text(&projection)?;
        self.run(async move {
            let mut tx = pool.begin().await?;
            // First, so a competing step waits here (PostgreSQL locks the
            // row; SQLite has one writer) and then finds the version moved.
            let moved = sqlx::query(
                "UPDATE report_projection SET seq = $1, state = $2, version = version + 1 \
                 WHERE id = 1 AND version = $3",
            )
            .bind(to_seq)
            .bind(state)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            add_buckets(
                &mut tx,
                QUEUES,
                &buckets.queues,
                QueueId::as_str,
                QueueTotals::add,
            )
            .await?;
            add_buckets(
                &mut tx,
                AGENTS,
                &buckets.agents,
                AgentId::as_str,
                AgentTotals::add,
            )
            .await?;
            tx.commit().await?;
            Ok(Some(Position {
                seq: to_seq,
                projection,
                version: version + 1,
            }))
        })
        .await
    }

    /// Starts the projection over for `rebuild-reports`: when every event
    /// ever written is still kept, from the start; else (retention deleted
    /// the oldest) from the first bucket that began after the oldest kept
    /// event, since the bucket holding it may have counted events that are
    /// gone. Buckets before that stay as they are. Returns where the
    /// rebuild starts (unix ms; `None`: from the start).
    pub async fn reset_reports(&self) -> Result<Option<i64>, StorageError> {
        let oldest = self
            .events_after(0, &[], 1)
            .await?
            .events
            .into_iter()
            .next();
        let from = match oldest {
            Some((seq, event)) if seq > 1 => Some(bucket_of(event.at.millis()) + BUCKET_MS),
            _ => None,
        };
        let pool = self.pool().clone();
        self.run(async move {
            let mut tx = pool.begin().await?;
            let (from_bucket, seq) = match from {
                None => (i64::MIN, 0),
                Some(from) => {
                    let seq: Option<i64> =
                        sqlx::query_scalar("SELECT MAX(seq) FROM events WHERE at_ms < $1")
                            .bind(from)
                            .fetch_one(&mut *tx)
                            .await?;
                    (from, seq.unwrap_or(0))
                }
            };
            for (table, _) in [QUEUES, AGENTS] {
                sqlx::query(&format!("DELETE FROM {table} WHERE bucket_ms >= $1"))
                    .bind(from_bucket)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE report_projection SET seq = $1, state = '{}', version = version + 1 \
                 WHERE id = 1",
            )
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(from)
        })
        .await
    }

    /// Stored queue buckets in `[from, to)`, of `only` when not empty, and
    /// the position they were read at.
    pub async fn queue_buckets(
        &self,
        from: i64,
        to: i64,
        only: Vec<String>,
    ) -> Result<(Position, Vec<(i64, String, QueueTotals)>), StorageError> {
        let (pool, dialect) = (self.pool().clone(), self.dialect());
        self.run(async move { read_buckets(&pool, dialect, QUEUES, from, to, &only).await })
            .await
    }

    /// Stored agent buckets in `[from, to)`, of `only` when not empty, and
    /// the position they were read at.
    pub async fn agent_buckets(
        &self,
        from: i64,
        to: i64,
        only: Vec<String>,
    ) -> Result<(Position, Vec<(i64, String, AgentTotals)>), StorageError> {
        let (pool, dialect) = (self.pool().clone(), self.dialect());
        self.run(async move { read_buckets(&pool, dialect, AGENTS, from, to, &only).await })
            .await
    }
}
