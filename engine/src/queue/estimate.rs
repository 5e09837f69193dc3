//! A waiting customer's place in the queue and estimated wait, and which of
//! them to tell whom. Pure: the queue actor records each answer and asks
//! this module, passing `now`.
//!
//! The estimate is the queue's recent answer rate scaled to the agents
//! available now: if the last answers came at one a minute while two agents
//! were available and four are available now, the customer third in line
//! waits about a minute and a half. No estimate is made (and the customer is
//! told so in plain words) when no agent is logged in, when none is
//! available, or when too few chats were answered lately to measure a rate:
//! a number then would be a guess.

use std::collections::{HashMap, VecDeque};
use switchboard_proto::model::{NoEstimate, QueueStatus};
use switchboard_proto::{ConversationId, Timestamp};

/// Answers older than this say nothing of the queue now.
pub const WINDOW_MS: i64 = 30 * 60 * 1000;
/// Fewer answers than this in the window: too little history.
pub const MIN_ANSWERS: usize = 3;
/// The newest answers kept; enough for a rate, bounded in memory.
pub const KEPT_ANSWERS: usize = 50;
/// A burst of answers is measured over at least this long, so three
/// answers in one second do not promise a wait of one second.
pub const MIN_SPAN_MS: i64 = 60 * 1000;
/// Estimates are rounded up to this: "about a minute and a half" does not
/// change (and is not sent again) every time a second passes.
pub const ROUND_S: u64 = 30;

/// One answered chat: when, and how many agents were available then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub at: Timestamp,
    pub available_agents: u32,
}

/// The queue's recent answers, oldest first (kept in a cluster snapshot so
/// a new owner estimates at once).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnswerHistory {
    answers: VecDeque<Answer>,
}

impl AnswerHistory {
    pub fn record(&mut self, answer: Answer) {
        if self.answers.len() == KEPT_ANSWERS {
            self.answers.pop_front();
        }
        self.answers.push_back(answer);
    }

    fn within_window(&self, now: Timestamp) -> impl Iterator<Item = &Answer> {
        self.answers
            .iter()
            .filter(move |answer| now.millis() - answer.at.millis() <= WINDOW_MS)
    }
}

/// Agents serving the queue now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staffing {
    /// Logged in, whatever their state.
    pub logged_in: u32,
    /// In state `available` (with or without a free slot).
    pub available: u32,
}

/// The estimated wait in seconds of the customer at `position` (1 is next).
pub fn estimate_wait(
    position: u32,
    history: &AnswerHistory,
    staffing: Staffing,
    now: Timestamp,
) -> Result<u64, NoEstimate> {
    if staffing.logged_in == 0 {
        return Err(NoEstimate::NoAgentsOnline);
    }
    if staffing.available == 0 {
        return Err(NoEstimate::NoAgentAvailable);
    }
    let recent: Vec<&Answer> = history.within_window(now).collect();
    if recent.len() < MIN_ANSWERS {
        return Err(NoEstimate::TooLittleHistory);
    }
    let oldest = recent.iter().map(|answer| answer.at.millis()).min();
    let span_ms = (now.millis() - oldest.unwrap_or(now.millis())).max(MIN_SPAN_MS);
    // rate now = n / span * available now / (mean available then), and the
    // wait is position / rate; in integers, so a rate of exactly one a
    // minute gives exactly a minute.
    let answers = recent.len() as u128;
    let available_then: u128 = recent
        .iter()
        .map(|answer| u128::from(answer.available_agents.max(1)))
        .sum();
    let numerator = u128::from(position.max(1)) * span_ms as u128 * available_then;
    let denominator = 1000 * answers * answers * u128::from(staffing.available);
    let seconds = u64::try_from(numerator.div_ceil(denominator)).unwrap_or(u64::MAX);
    Ok(seconds.div_ceil(ROUND_S).max(1).saturating_mul(ROUND_S))
}

/// The status of the customer at `position`.
pub fn status(
    conversation_id: ConversationId,
    position: u32,
    history: &AnswerHistory,
    staffing: Staffing,
    now: Timestamp,
) -> QueueStatus {
    let estimate = estimate_wait(position, history, staffing, now);
    QueueStatus {
        conversation_id,
        position,
        estimated_wait_s: estimate.ok(),
        no_estimate: estimate.err(),
    }
}

/// What each waiting customer was last told, so a status goes out only
/// when it changed. The queue actor sends at most one round per interval
/// (`[routing] queue_status_interval_ms`), so each customer hears at most
/// once per interval.
#[derive(Debug, Default)]
pub struct Announced {
    told: HashMap<ConversationId, QueueStatus>,
}

impl Announced {
    /// The statuses among `now_waiting` that differ from what their
    /// customers were last told; customers who no longer wait are
    /// forgotten (told again from scratch if they come back).
    pub fn changed(&mut self, now_waiting: Vec<QueueStatus>) -> Vec<QueueStatus> {
        let mut still = HashMap::with_capacity(now_waiting.len());
        let mut changed = Vec::new();
        for status in now_waiting {
            let id = status.conversation_id.clone();
            if self.told.get(&id) != Some(&status) {
                changed.push(status.clone());
            }
            still.insert(id, status);
        }
        self.told = still;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn history(answers: &[(i64, u32)]) -> AnswerHistory {
        let mut history = AnswerHistory::default();
        for &(at, available_agents) in answers {
            history.record(Answer {
                at: Timestamp(at),
                available_agents,
            });
        }
        history
    }

    fn staffed(available: u32) -> Staffing {
        Staffing {
            logged_in: available.max(1),
            available,
        }
    }

    #[test]
    fn the_wait_is_the_position_over_the_recent_answer_rate() {
        // Four answers over the last four minutes, one agent: one a minute.
        let answers = history(&[(0, 1), (MINUTE, 1), (2 * MINUTE, 1), (3 * MINUTE, 1)]);
        let now = Timestamp(4 * MINUTE);
        assert_eq!(estimate_wait(1, &answers, staffed(1), now), Ok(60));
        assert_eq!(estimate_wait(3, &answers, staffed(1), now), Ok(180));
    }

    #[test]
    fn more_agents_available_now_than_then_shortens_the_wait() {
        let answers = history(&[(0, 2), (MINUTE, 2), (2 * MINUTE, 2), (3 * MINUTE, 2)]);
        let now = Timestamp(4 * MINUTE);
        assert_eq!(estimate_wait(3, &answers, staffed(2), now), Ok(180));
        // Four agents instead of two: twice the rate, half the wait.
        assert_eq!(estimate_wait(3, &answers, staffed(4), now), Ok(90));
        // One: twice the wait.
        assert_eq!(estimate_wait(3, &answers, staffed(1), now), Ok(360));
    }

    #[test]
    fn estimates_are_rounded_up_to_half_minutes() {
        // Three answers in the last minute: one every 20 s.
        let answers = history(&[(0, 1), (20_000, 1), (40_000, 1)]);
        let now = Timestamp(MINUTE);
        assert_eq!(estimate_wait(1, &answers, staffed(1), now), Ok(30));
        assert_eq!(estimate_wait(2, &answers, staffed(1), now), Ok(60));
        assert_eq!(estimate_wait(4, &answers, staffed(1), now), Ok(90));
    }

    #[test]
    fn a_burst_of_answers_is_measured_over_a_minute_at_least() {
        let answers = history(&[(0, 1), (100, 1), (200, 1)]);
        // Three answers within a second: three a minute, not three a second.
        assert_eq!(
            estimate_wait(3, &answers, staffed(1), Timestamp(1_000)),
            Ok(60)
        );
    }

    #[test]
    fn no_estimate_without_an_agent_logged_in() {
        let answers = history(&[(0, 1), (MINUTE, 1), (2 * MINUTE, 1)]);
        let nobody = Staffing {
            logged_in: 0,
            available: 0,
        };
        assert_eq!(
            estimate_wait(1, &answers, nobody, Timestamp(3 * MINUTE)),
            Err(NoEstimate::NoAgentsOnline)
        );
    }

    #[test]
    fn no_estimate_when_every_agent_logged_in_is_away() {
        let answers = history(&[(0, 1), (MINUTE, 1), (2 * MINUTE, 1)]);
        let all_idle = Staffing {
            logged_in: 3,
            available: 0,
        };
        assert_eq!(
            estimate_wait(1, &answers, all_idle, Timestamp(3 * MINUTE)),
            Err(NoEstimate::NoAgentAvailable)
        );
    }

    #[test]
    fn no_estimate_from_too_little_or_too_old_history() {
        let two = history(&[(0, 1), (MINUTE, 1)]);
        assert_eq!(
            estimate_wait(1, &two, staffed(1), Timestamp(2 * MINUTE)),
            Err(NoEstimate::TooLittleHistory)
        );
        // Three answers, but an hour ago: they say nothing of now.
        let old = history(&[(0, 1), (MINUTE, 1), (2 * MINUTE, 1)]);
        assert_eq!(
            estimate_wait(1, &old, staffed(1), Timestamp(2 * MINUTE + WINDOW_MS + 1)),
            Err(NoEstimate::TooLittleHistory)
        );
    }

    #[test]
    fn history_keeps_only_the_newest_answers() {
        let mut answers = AnswerHistory::default();
        for n in 0..(KEPT_ANSWERS as i64 + 10) {
            answers.record(Answer {
                at: Timestamp(n),
                available_agents: 1,
            });
        }
        assert_eq!(answers.answers.len(), KEPT_ANSWERS);
        assert_eq!(answers.answers.front().map(|a| a.at), Some(Timestamp(10)));
    }

    fn status_at(id: &str, position: u32) -> QueueStatus {
        QueueStatus {
            conversation_id: ConversationId::new(id),
            position,
            estimated_wait_s: None,
            no_estimate: Some(NoEstimate::TooLittleHistory),
        }
    }

    #[test]
    fn a_status_is_announced_only_when_it_changed() {
        let mut announced = Announced::default();
        let first = vec![status_at("a", 1), status_at("b", 2), status_at("c", 3)];
        assert_eq!(announced.changed(first.clone()), first);
        // Nothing moved: nothing to say.
        assert_eq!(announced.changed(first), []);
        // "a" was answered: "b" and "c" move up.
        let moved = vec![status_at("b", 1), status_at("c", 2)];
        assert_eq!(announced.changed(moved.clone()), moved);
        // "a" comes back (an unanswered transfer): told again.
        let back = vec![status_at("a", 1), status_at("b", 2), status_at("c", 3)];
        assert_eq!(announced.changed(back.clone()), back);
    }

    #[test]
    fn a_status_without_an_estimate_says_why() {
        let nobody = Staffing {
            logged_in: 0,
            available: 0,
        };
        let told = status(
            ConversationId::new("a"),
            2,
            &AnswerHistory::default(),
            nobody,
            Timestamp(0),
        );
        assert_eq!(told.position, 2);
        assert_eq!(told.estimated_wait_s, None);
        assert_eq!(told.no_estimate, Some(NoEstimate::NoAgentsOnline));
    }
}
