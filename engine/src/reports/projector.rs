//! The task that keeps the report buckets up with the event stream: it
//! reads the events reports count after its position, folds them in, and
//! saves the step; at each bucket's end (plus [`GRACE`]) it counts the
//! logged-in agents' time up to it, so an ended bucket is complete.
//!
//! Every node runs one; in a cluster, the node holding a lease in Redis
//! steps and the others wait for it to lapse. Correctness does not rest on
//! the lease: a step commits only from the position it was computed from
//! (the stored version), so when two nodes step at once (a lease changing
//! hands) one commits and the other loads the new position and goes on
//! from there: each event is counted once.

use super::projection::{bucket_of, Buckets, Projection, ReportRules, BUCKET_MS};
use super::store::Position;
use crate::cluster::lease::Lease;
use crate::storage::{Database, StorageError};
use std::time::Duration;
use switchboard_proto::feed::EventType;
use switchboard_proto::Timestamp;

/// Events folded per step, at most.
const BATCH: usize = 1000;
/// How long after a bucket's end its agents' time is counted and it
/// closes: an event that happened before the end but was committed after
/// it still counts in it. On one node that is a write in flight; in a
/// cluster, an event waits in the Redis outbox until the copier moves it,
/// and a new copier takes over within its lease's 6 s.
pub fn grace(clustered: bool) -> Duration {
    if clustered {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(2)
    }
}
/// The longest wait for new events before looking again (a notice from
/// another node can be lost).
const NAP: Duration = Duration::from_secs(1);
/// The shortest time between two steps that caught up: under load, events
/// are folded a quarter of a second's worth at a time (one transaction),
/// not one transaction per commit of the writer.
const PACE: Duration = Duration::from_millis(250);

/// The event types reports count; the others (messages above all) are
/// never read.
pub const COUNTED: [EventType; 13] = [
    EventType::ConversationQueued,
    EventType::ConversationOffered,
    EventType::ConversationRona,
    EventType::ConversationAccepted,
    EventType::ConversationTransferred,
    EventType::ConversationOverflowed,
    EventType::ConferenceRequested,
    EventType::ConferenceStarted,
    EventType::ConversationAbandoned,
    EventType::WrapUpSubmitted,
    EventType::AgentLoggedIn,
    EventType::AgentStateChanged,
    EventType::AgentLoggedOut,
];

/// The end of the newest bucket that can close now.
fn closable(now: Timestamp, grace: Duration) -> i64 {
    bucket_of(now.millis() - grace.as_millis() as i64)
}

/// One step from `position`: the next events (at most [`BATCH`]), and the
/// agents' time up to the newest closable bucket end once caught up.
/// `None` when there is nothing to do; else the position reached, the
/// projection, the buckets to add, and whether more events wait.
pub async fn step(
    database: &Database,
    position: &Position,
    rules: &ReportRules,
    now: Timestamp,
    grace: Duration,
) -> Result<Option<Step>, StorageError> {
    let read = database.events_after(position.seq, &COUNTED, BATCH).await?;
    let mut projection = position.projection.clone();
    let mut buckets = Buckets::default();
    for (_, event) in &read.events {
        projection.apply(event, rules, &mut buckets);
    }
    let end = closable(now, grace);
    let behind = read.events.len() >= BATCH;
    let ticked = projection.ticked_to() < end && !behind;
    if ticked {
        projection.tick(Timestamp(end), &mut buckets);
    }
    if read.scanned_to == position.seq && !ticked {
        return Ok(None);
    }
    Ok(Some(Step {
        seq: read.scanned_to,
        save: ticked || !read.events.is_empty(),
        projection,
        buckets,
        behind,
    }))
}

/// What [`step`] computed, to be saved.
pub struct Step {
    pub seq: i64,
    /// Something was counted: else only the position moved (past events
    /// reports do not count), kept in memory until the next save.
    pub save: bool,
    pub projection: Projection,
    pub buckets: Buckets,
    /// More events wait after `seq`.
    pub behind: bool,
}

/// One step from `from`, saved. `None` when there was nothing to do; else
/// the position now stored and whether more events wait (also when
/// another node stepped first: this one goes on from where that left it).
async fn step_and_save(
    database: &Database,
    from: &Position,
    rules: &ReportRules,
    grace: Duration,
) -> Result<Option<(Position, bool)>, StorageError> {
    let Some(step) = step(database, from, rules, Timestamp::now(), grace).await? else {
        return Ok(None);
    };
    let behind = step.behind;
    if !step.save {
        let moved = Position {
            seq: step.seq,
            ..from.clone()
        };
        return Ok(Some((moved, behind)));
    }
    match database
        .save_report_step(from, step.seq, step.projection, step.buckets)
        .await?
    {
        Some(saved) => Ok(Some((saved, behind))),
        None => Ok(Some((database.report_position().await?, true))),
    }
}

/// Folds every event not yet folded, to the head of the stream; returns
/// the position reached. What `switchboard rebuild-reports` runs, and
/// what a test awaits.
pub async fn catch_up(database: &Database, rules: &ReportRules) -> Result<Position, StorageError> {
    let mut position = database.report_position().await?;
    let grace = grace(true);
    while let Some((reached, _)) = step_and_save(database, &position, rules, grace).await? {
        position = reached;
    }
    Ok(position)
}

/// The projector's lease lapses this long after its node died.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// Runs the projection on this node while it holds `lease`, for as long as
/// the node lives.
pub(crate) fn start(database: Database, rules: ReportRules, grace: Duration, mut lease: Lease) {
    actix::spawn(async move {
        let mut signal = database.event_signal().subscribe();
        let mut failures = 0u32;
        let mut position: Option<Position> = None;
        loop {
            if !lease.keep().await {
                // Another node steps; where it got is read when this one
                // takes over.
                position = None;
                tokio::time::sleep(LEASE_TTL / 3).await;
                continue;
            }
            let stepped = async {
                let from = match position.take() {
                    Some(from) => from,
                    None => database.report_position().await?,
                };
                Ok::<_, StorageError>(
                    match step_and_save(&database, &from, &rules, grace).await? {
                        Some((reached, behind)) => (reached, Some(behind)),
                        None => (from, None),
                    },
                )
            }
            .await;
            match stepped {
                Ok((reached, stepped)) => {
                    failures = 0;
                    position = Some(reached);
                    match stepped {
                        Some(true) => continue,
                        Some(false) => {
                            tokio::time::sleep(PACE).await;
                            continue;
                        }
                        None => {}
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(%error, "reports: a projection step failed; retrying");
                    }
                    tokio::time::sleep(NAP.min(Duration::from_millis(100) * failures)).await;
                    continue;
                }
            }
            // Nothing new: wait for a commit, or the next bucket's end.
            let now = Timestamp::now().millis();
            let next_end = bucket_of(now) + BUCKET_MS + grace.as_millis() as i64;
            let until_end = Duration::from_millis((next_end - now).max(1) as u64);
            let _ = tokio::time::timeout(until_end.min(NAP), signal.changed()).await;
        }
    });
}
