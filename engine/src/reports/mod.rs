//! Reports (part 2, section 4): what queues and agents did, by interval.
//!
//! Reports are projections of the event stream, never recomputed from all
//! events on a request: a projector on every node folds each event once
//! into 15-minute buckets per queue and per agent, stored in the database
//! with the feed position they reached; a report sums the buckets of its
//! range into 15-minute, hourly or daily intervals of its time zone. A
//! bucket that has ended never changes (erasure keeps what reports count),
//! and `switchboard rebuild-reports` computes them all again from the
//! events.
//!
//! Code map:
//! - [`totals`]: what a bucket holds (sums and counts) and its row.
//! - [`projection`]: the pure fold: an event in, buckets out; agents'
//!   state time split at bucket ends.
//! - [`projector`]: the task that follows the stream and saves each step.
//! - [`store`]: buckets and the projection's position in the database.
//! - [`query`]: a request's parameters checked, buckets summed into rows.
//! - [`recompute`]: the same buckets from a whole list of events at once:
//!   the reference the projection is tested against.

#[cfg(test)]
mod projection_tests;

pub mod projection;
pub mod projector;
pub mod query;
pub mod recompute;
pub mod store;
pub mod totals;

use crate::engine::Engine;
use crate::error::EngineError;
use projection::Buckets;
use query::{ReportRange, ReportRequest};
use switchboard_proto::report::{AgentReport, Interval, QueueReport, QueueReportRow};
use switchboard_proto::{QueueId, Timestamp};

impl Engine {
    /// `GET /api/v1/reports/queues`.
    pub async fn queue_report(&self, request: ReportRequest) -> Result<QueueReport, EngineError> {
        let range = query::range(&request, Timestamp::now())?;
        let catalog = &self.inner.catalog;
        let only = query::subjects("queue", request.only.as_deref(), |id| {
            catalog.queue(&QueueId::new(id)).is_some()
        })?;
        query::check_size(&range, &only, catalog.config.queues.len(), "queue")?;
        let (position, buckets) = self
            .database()
            .queue_buckets(range.from_ms, range.to_ms, only)
            .await
            .map_err(EngineError::from)?;
        Ok(QueueReport {
            rows: query::queue_rows(&range, buckets),
            as_of: position.projection.as_of(),
        })
    }

    /// `GET /api/v1/reports/agents`: the stored buckets, and the time of
    /// agents logged in now up to this moment.
    pub async fn agent_report(&self, request: ReportRequest) -> Result<AgentReport, EngineError> {
        let now = Timestamp::now();
        let range = query::range(&request, now)?;
        let catalog = &self.inner.catalog;
        let only = query::subjects("agent", request.only.as_deref(), |id| {
            catalog
                .agent(&switchboard_proto::AgentId::new(id))
                .is_some()
        })?;
        query::check_size(&range, &only, catalog.agents().count(), "agent")?;
        let (position, stored) = self
            .database()
            .agent_buckets(range.from_ms, range.to_ms, only.clone())
            .await
            .map_err(EngineError::from)?;
        let mut live = Buckets::default();
        position.projection.clone().advance(now, &mut live);
        let rows = query::agent_rows(
            &range,
            stored
                .into_iter()
                .chain(query::live_agent_time(&live, &only)),
        );
        Ok(AgentReport {
            rows,
            as_of: position.projection.as_of(),
        })
    }

    /// Today's row of each queue (`[stats] time_zone`), as the daily
    /// report has it: what `/api/v1/stats` shows as `today`. Empty (and
    /// logged) when the database cannot be read: the live figures still
    /// answer.
    pub(crate) async fn queues_today(&self) -> Vec<QueueReportRow> {
        let tz = self.inner.catalog.config.time_zone;
        let from = query::interval_start(Timestamp::now().millis(), Interval::Day, tz);
        let range = ReportRange {
            from_ms: from,
            to_ms: query::interval_end(from, Interval::Day, tz),
            interval: Interval::Day,
            tz,
        };
        match self
            .database()
            .queue_buckets(range.from_ms, range.to_ms, Vec::new())
            .await
        {
            Ok((_, buckets)) => query::queue_rows(&range, buckets),
            Err(error) => {
                tracing::warn!(%error, "stats: today's report rows not read");
                Vec::new()
            }
        }
    }
}
