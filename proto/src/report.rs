//! Reports (part 2, section 4): what a queue and an agent did per interval.
//! Counts land in the interval in which their event happened; state time
//! is split at interval boundaries. Times are seconds with three decimals;
//! a mean or a percentage of nothing is `null`.

use crate::ids::{AgentId, QueueId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The widths a report can be cut into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Interval {
    #[serde(rename = "15m")]
    Quarter,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "15m" => Some(Self::Quarter),
            "1h" => Some(Self::Hour),
            "1d" => Some(Self::Day),
            _ => None,
        }
    }
}

/// `GET /api/v1/reports/queues`: one row per queue per interval with
/// activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueReportRow {
    pub queue: QueueId,
    /// RFC 3339 with the report time zone's offset.
    pub interval_start: String,
    /// Created in the queue, or moved into it by a transfer or an overflow
    /// (a RONA return is not a new entry).
    pub entered: u64,
    /// First accepted in this queue.
    pub handled: u64,
    pub abandoned: u64,
    /// Abandoned within `[stats] short_abandon_s` of entering.
    pub short_abandoned: u64,
    pub rona: u64,
    pub transferred_out: u64,
    pub overflowed_out: u64,
    /// Mean wait of the handled: entered the queue -> accepted.
    pub asa_s: Option<f64>,
    /// Longest wait of a chat handled or abandoned in the interval.
    pub max_wait_s: Option<f64>,
    /// Mean handle time: accepted -> the owner's wrap-up submitted.
    pub aht_s: Option<f64>,
    /// Handled within `service_level_s` / (handled + abandoned -
    /// short_abandoned) x 100.
    pub service_level_pct: Option<f64>,
    /// Wrap-ups submitted, by reason id.
    pub wrap_ups: BTreeMap<String, u64>,
}

/// `GET /api/v1/reports/agents`: one row per agent per interval with
/// activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentReportRow {
    pub agent: AgentId,
    pub interval_start: String,
    /// Offers of a chat or of a conference seat.
    pub offered: u64,
    pub accepted: u64,
    pub rona: u64,
    /// Chats it owned whose wrap-up it submitted.
    pub handled: u64,
    pub transferred_out: u64,
    pub conferences_joined: u64,
    /// Mean handle time of `handled`: accepted -> its wrap-up.
    pub aht_s: Option<f64>,
    pub logged_in_s: f64,
    pub available_s: f64,
    pub idle_s: f64,
    /// Idle time by reason id (`none`: idle without a reason, as after a
    /// login).
    pub idle_by_reason: BTreeMap<String, f64>,
    pub rona_s: f64,
    /// Time holding at least one chat (accepted, its wrap-up not yet
    /// submitted) / logged-in time x 100.
    pub occupancy_pct: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueReport {
    pub rows: Vec<QueueReportRow>,
    /// Every event up to this time is counted (the report trails the live
    /// events by well under a second).
    pub as_of: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentReport {
    pub rows: Vec<AgentReportRow>,
    /// As in [`QueueReport`]; agents logged in now have their time counted
    /// up to the moment of the answer.
    pub as_of: Timestamp,
}
