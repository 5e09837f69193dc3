//! What is counted of a queue or an agent in one 15-minute bucket: sums
//! and counts in milliseconds, so buckets add up exactly into hours and
//! days, and a row's means are computed only when it is read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_proto::report::{AgentReportRow, QueueReportRow};
use switchboard_proto::{AgentId, QueueId};

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Seconds with three decimals from milliseconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The mean of `sum_ms` over `count`, in seconds with three decimals.
fn mean_s(sum_ms: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| seconds((sum_ms as f64 / count as f64).round() as u64))
}

/// A percentage with two decimals.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

/// A queue's bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTotals {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entered: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handled: u64,
    /// Handled within the service level.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handled_in_sl: u64,
    /// Handled with a known wait (all but events erased before their
    /// figures were kept), and the sum of those waits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answered: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abandoned: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub short_abandoned: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rona: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transferred_out: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub overflowed_out: u64,
    /// Owners' wrap-ups with their handle time, and its sum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handles: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handle_ms: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wrap_ups: BTreeMap<String, u64>,
}

impl QueueTotals {
    pub fn add(&mut self, other: &QueueTotals) {
        self.entered += other.entered;
        self.handled += other.handled;
        self.handled_in_sl += other.handled_in_sl;
        self.answered += other.answered;
        self.wait_ms += other.wait_ms;
        self.max_wait_ms = self.max_wait_ms.max(other.max_wait_ms);
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.rona += other.rona;
        self.transferred_out += other.transferred_out;
        self.overflowed_out += other.overflowed_out;
        self.handles += other.handles;
        self.handle_ms += other.handle_ms;
        for (reason, count) in &other.wrap_ups {
            *self.wrap_ups.entry(reason.clone()).or_default() += count;
        }
    }

    /// A wait that ended in the bucket (handled or abandoned).
    pub fn waited(&mut self, wait_ms: u64) {
        self.max_wait_ms = self.max_wait_ms.max(Some(wait_ms));
    }

    pub fn row(&self, queue: QueueId, interval_start: String) -> QueueReportRow {
        let offered_to_sl = (self.handled + self.abandoned).saturating_sub(self.short_abandoned);
        QueueReportRow {
            queue,
            interval_start,
            entered: self.entered,
            handled: self.handled,
            abandoned: self.abandoned,
            short_abandoned: self.short_abandoned,
            rona: self.rona,
            transferred_out: self.transferred_out,
            overflowed_out: self.overflowed_out,
            asa_s: mean_s(self.wait_ms, self.answered),
            max_wait_s: self.max_wait_ms.map(seconds),
            aht_s: mean_s(self.handle_ms, self.handles),
            service_level_pct: percent(self.handled_in_sl, offered_to_sl),
            wrap_ups: self.wrap_ups.clone(),
        }
    }
}

/// An agent's bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTotals {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offered: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accepted: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rona: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handled: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handle_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transferred_out: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conferences_joined: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logged_in_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub available_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_ms: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub idle_by_reason_ms: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rona_ms: u64,
    /// Logged in and holding at least one chat.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub occupied_ms: u64,
}

impl AgentTotals {
    pub fn add(&mut self, other: &AgentTotals) {
        self.offered += other.offered;
        self.accepted += other.accepted;
        self.rona += other.rona;
        self.handled += other.handled;
        self.handle_ms += other.handle_ms;
        self.transferred_out += other.transferred_out;
        self.conferences_joined += other.conferences_joined;
        self.logged_in_ms += other.logged_in_ms;
        self.available_ms += other.available_ms;
        self.idle_ms += other.idle_ms;
        for (reason, ms) in &other.idle_by_reason_ms {
            *self.idle_by_reason_ms.entry(reason.clone()).or_default() += ms;
        }
        self.rona_ms += other.rona_ms;
        self.occupied_ms += other.occupied_ms;
    }

    pub fn row(&self, agent: AgentId, interval_start: String) -> AgentReportRow {
        AgentReportRow {
            agent,
            interval_start,
            offered: self.offered,
            accepted: self.accepted,
            rona: self.rona,
            handled: self.handled,
            transferred_out: self.transferred_out,
            conferences_joined: self.conferences_joined,
            aht_s: mean_s(self.handle_ms, self.handled),
            logged_in_s: seconds(self.logged_in_ms),
            available_s: seconds(self.available_ms),
            idle_s: seconds(self.idle_ms),
            idle_by_reason: self
                .idle_by_reason_ms
                .iter()
                .map(|(reason, ms)| (reason.clone(), seconds(*ms)))
                .collect(),
            rona_s: seconds(self.rona_ms),
            occupancy_pct: percent(self.occupied_ms, self.logged_in_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_leaves_short_abandons_out_of_the_whole() {
        let totals = QueueTotals {
            handled: 3,
            handled_in_sl: 2,
            abandoned: 2,
            short_abandoned: 1,
            ..QueueTotals::default()
        };
        // 2 / (3 + 2 - 1) = 50 %.
        let row = totals.row(QueueId::new("q"), String::new());
        assert_eq!(row.service_level_pct, Some(50.0));
        let nothing = QueueTotals::default().row(QueueId::new("q"), String::new());
        assert_eq!(nothing.service_level_pct, None);
        assert_eq!(nothing.asa_s, None);
        assert_eq!(nothing.max_wait_s, None);
    }

    #[test]
    fn means_are_seconds_with_three_decimals() {
        let totals = QueueTotals {
            handled: 3,
            answered: 3,
            wait_ms: 10_000,
            ..QueueTotals::default()
        };
        assert_eq!(
            totals.row(QueueId::new("q"), String::new()).asa_s,
            Some(3.333)
        );
    }

    #[test]
    fn buckets_add_up_to_what_one_bucket_would_hold() {
        let mut one = QueueTotals {
            handled: 1,
            answered: 1,
            wait_ms: 4_000,
            max_wait_ms: Some(4_000),
            wrap_ups: [("sale".to_string(), 1)].into(),
            ..QueueTotals::default()
        };
        let other = QueueTotals {
            handled: 1,
            answered: 1,
            wait_ms: 2_000,
            max_wait_ms: Some(2_000),
            wrap_ups: [("sale".to_string(), 2), ("info".to_string(), 1)].into(),
            ..QueueTotals::default()
        };
        one.add(&other);
        assert_eq!(one.handled, 2);
        assert_eq!(one.max_wait_ms, Some(4_000));
        assert_eq!(one.wrap_ups["sale"], 3);
        assert_eq!(one.row(QueueId::new("q"), String::new()).asa_s, Some(3.0));
    }
}
