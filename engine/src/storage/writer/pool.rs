//! Batches through sqlx: PostgreSQL's writer, where each statement is a
//! round trip to the server, so a batch's messages go in a few multi-row
//! statements. The same functions store a record from any sqlx
//! transaction (`close_interrupted`), on either database.

use sqlx::{Any, AnyPool, Row, Transaction};
use switchboard_proto::model::Message;

use super::{Backend, WriteError, BATCH_TIMEOUT};
use crate::storage::change::{
    latest_per_seq, Change, HighestSeq, MessageRow, Statement, Value, POSTGRES_LOCK_EVENTS,
};
use crate::storage::{Dialect, StorageError};

pub(crate) struct PoolBackend {
    pool: AnyPool,
    dialect: Dialect,
    /// The database's runtime: the pool's sockets live there.
    runtime: tokio::runtime::Handle,
}

impl PoolBackend {
    pub fn new(pool: AnyPool, dialect: Dialect, runtime: tokio::runtime::Handle) -> Self {
        Self {
            pool,
            dialect,
            runtime,
        }
    }
}

impl Backend for PoolBackend {
    fn apply(&mut self, writes: &[&[Change]]) -> Result<(), WriteError> {
        let batch = async {
            let mut tx = self.pool.begin().await?;
            apply_in(&mut tx, self.dialect, writes.iter().copied().flatten()).await?;
            tx.commit().await
        };
        // The timer is made inside `block_on`: it needs the runtime's clock.
        let applied = self
            .runtime
            .block_on(async { tokio::time::timeout(BATCH_TIMEOUT, batch).await });
        match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(WriteError {
                database: is_connection_error(&error),
                error: StorageError::from(error),
            }),
            // A database that stopped answering mid-batch (a lost socket, a
            // lock held elsewhere): the transaction is rolled back, and the
            // node reports itself not ready.
            Err(_) => Err(WriteError {
                database: true,
                error: StorageError::Unavailable(format!(
                    "a batch took more than {} s",
                    BATCH_TIMEOUT.as_secs()
                )),
            }),
        }
    }

    fn indexes_later(&self) -> bool {
        false
    }

    fn index(&mut self) -> Result<bool, WriteError> {
        Ok(false)
    }
}

fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    )
}

/// Applies `changes` in `tx`: each change's statements in order, then the
/// messages together. A conversation's row exists by then: its first write
/// carries its record before its first message.
pub(crate) async fn apply_in<'a>(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    changes: impl Iterator<Item = &'a Change>,
) -> Result<(), sqlx::Error> {
    let mut messages: Vec<&Message> = Vec::new();
    let mut events_locked = false;
    for change in changes {
        match change {
            Change::Message(message) => messages.push(message),
            Change::Event(_) if dialect == Dialect::Postgres && !events_locked => {
                sqlx::query(POSTGRES_LOCK_EVENTS).execute(&mut **tx).await?;
                events_locked = true;
                for statement in change.statements() {
                    execute(tx, &statement).await?;
                }
            }
            other => {
                for statement in other.statements() {
                    execute(tx, &statement).await?;
                }
            }
        }
    }
    insert_messages(tx, dialect, &messages).await
}

/// Binds a statement's values onto a query.
pub(crate) fn bound<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    values: &'q [Value<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Int(int) => query.bind(*int),
            Value::Text(text) => query.bind(text.as_deref()),
            Value::Blob(bytes) => query.bind(*bytes),
        };
    }
    query
}

async fn execute(
    tx: &mut Transaction<'static, Any>,
    statement: &Statement<'_>,
) -> Result<(), sqlx::Error> {
    bound(sqlx::query(statement.sql), &statement.values)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rows per multi-row statement: well under the limits on bound values.
const ROWS_PER_STATEMENT: usize = 100;

/// Stores messages in a few statements: the rows (the last of each `seq`
/// in the batch), then each conversation's message count once.
pub(crate) async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    messages: &[&Message],
) -> Result<(), sqlx::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    let unique = latest_per_seq(messages);
    let mut rows = Vec::with_capacity(unique.len());
    for message in unique {
        rows.push(MessageRow::of(message).map_err(|error| sqlx::Error::Encode(error.into()))?);
    }
    let mut highest = HighestSeq::default();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        for (conversation, seq) in store_chunk(tx, dialect, chunk).await? {
            highest.stored(&conversation, seq);
        }
    }
    for statement in highest.statements() {
        execute(tx, &statement).await?;
    }
    Ok(())
}

/// `($1, $2, ...), ($k, ...)`: `rows` tuples of `width` numbered values.
fn value_tuples(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=width)
                .map(|col| format!("${}", row * width + col))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts (or replaces) one chunk, as [`SQLITE_INSERT_MESSAGE`] does a
/// row; returns (conversation, seq) of each row stored or changed.
///
/// [`SQLITE_INSERT_MESSAGE`]: crate::storage::change::SQLITE_INSERT_MESSAGE
async fn store_chunk(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    chunk: &[MessageRow<'_>],
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    // SQLite indexes a replaced message's words again later;
    // PostgreSQL's generated column follows `words` by itself.
    let reindex = match dialect {
        Dialect::Sqlite => ", indexed = 0",
        Dialect::Postgres => "",
    };
    let sql = format!(
        "INSERT INTO messages (conversation_id, seq, at_ms, message, words) VALUES {} \
         ON CONFLICT (conversation_id, seq) DO UPDATE SET at_ms = excluded.at_ms, \
           message = excluded.message, words = excluded.words{reindex} \
         WHERE messages.message <> excluded.message \
         RETURNING conversation_id, seq",
        value_tuples(chunk.len(), 5)
    );
    let values: Vec<Value<'_>> = chunk.iter().flat_map(MessageRow::values).collect();
    let returned = bound(sqlx::query(&sql), &values)
        .fetch_all(&mut **tx)
        .await?;
    returned
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}
