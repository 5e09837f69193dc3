//! Who gets the next offer. Pure: the queue actor keeps a view of the agents
//! serving it and asks this module to rank them.
//!
//! Rule: only agents that are `available` with a free slot are eligible; the
//! best is the one with the fewest occupied slots, then the one available
//! longest, then the lowest id (so the choice is deterministic).

use switchboard_proto::model::{AgentState, RoutingCandidate, RoutingDecision, RoutingExclusion};
use switchboard_proto::{AgentId, QueueId, Timestamp};

pub const RULE: &str = "available with a free slot; fewest active chats, then longest available";

/// Candidates and exclusions a decision records: enough to explain it,
/// bounded so that a queue with thousands of agents routes in linear time.
pub const RECORDED_CANDIDATES: usize = 5;
pub const RECORDED_EXCLUSIONS: usize = 10;

/// The queue's view of one agent, as last reported by the agent (plus
/// reservations this queue has in flight, counted in `load`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub state: AgentState,
    pub load: u32,
    pub max_chats: u32,
    pub available_since: Timestamp,
}

impl AgentView {
    /// The agent's row in the directory and stats.
    pub fn info(&self) -> switchboard_proto::model::AgentInfo {
        switchboard_proto::model::AgentInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            active_chats: self.load,
            max_chats: self.max_chats,
            can_take: None,
            why_not: None,
        }
    }

    /// Available with a free slot: could be offered a chat now (what the
    /// queue listing's `available_agents` counts).
    pub fn is_eligible(&self) -> bool {
        self.exclusion().is_none()
    }

    fn exclusion(&self) -> Option<&'static str> {
        if self.state != AgentState::Available {
            return Some(self.state.as_str());
        }
        if self.load >= self.max_chats {
            return Some("no_free_slot");
        }
        None
    }
}

/// Ranks the agents; `None` when nobody is eligible. Linear in the number
/// of agents: only the best few are sorted and recorded.
/// `holds` names agents that already hold this conversation (they left it
/// and owe its wrap-up): they are skipped for it.
pub fn decide<'a>(
    queue: &QueueId,
    agents: impl IntoIterator<Item = &'a AgentView>,
    holds: impl Fn(&AgentId) -> bool,
) -> Option<RoutingDecision> {
    let mut eligible: Vec<&AgentView> = Vec::new();
    let mut excluded: Vec<RoutingExclusion> = Vec::new();
    let mut excluded_count = 0u32;
    for agent in agents {
        let exclusion = if holds(&agent.id) {
            Some("holds_this_conversation")
        } else {
            agent.exclusion()
        };
        match exclusion {
            None => eligible.push(agent),
            Some(why) => {
                excluded_count += 1;
                if excluded.len() < RECORDED_EXCLUSIONS {
                    excluded.push(RoutingExclusion {
                        agent: agent.id.clone(),
                        why: why.to_owned(),
                    });
                }
            }
        }
    }
    let rank = |a: &&AgentView, b: &&AgentView| {
        a.load
            .cmp(&b.load)
            .then(a.available_since.cmp(&b.available_since))
            .then(a.id.cmp(&b.id))
    };
    let eligible_count = eligible.len() as u32;
    if eligible.len() > RECORDED_CANDIDATES {
        eligible.select_nth_unstable_by(RECORDED_CANDIDATES - 1, rank);
        eligible.truncate(RECORDED_CANDIDATES);
    }
    eligible.sort_by(rank);
    let chosen = eligible.first()?.id.clone();
    excluded.sort_by(|a, b| a.agent.cmp(&b.agent));
    let candidates = eligible
        .iter()
        .enumerate()
        .map(|(index, agent)| RoutingCandidate {
            rank: index as u32 + 1,
            agent: agent.id.clone(),
            active_chats: agent.load,
            max_chats: agent.max_chats,
            available_since: agent.available_since,
        })
        .collect();
    Some(RoutingDecision {
        queue: queue.clone(),
        rule: RULE.to_owned(),
        chosen,
        eligible: eligible_count,
        candidates,
        excluded_count,
        excluded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, state: AgentState, load: u32, since: i64) -> AgentView {
        AgentView {
            id: AgentId::new(id),
            name: id.to_owned(),
            state,
            load,
            max_chats: 2,
            available_since: Timestamp(since),
        }
    }

    #[test]
    fn best_agent_has_fewest_active_chats_then_longest_available() {
        let agents = [
            view("a", AgentState::Available, 1, 0),
            view("b", AgentState::Available, 0, 50),
            view("c", AgentState::Available, 0, 10),
        ];
        let decision = decide(&QueueId::new("q"), &agents, |_| false).unwrap();
        assert_eq!(decision.chosen, AgentId::new("c"));
        let order: Vec<_> = decision
            .candidates
            .iter()
            .map(|c| c.agent.as_str())
            .collect();
        assert_eq!(order, ["c", "b", "a"]);
    }

    #[test]
    fn only_available_agents_with_a_free_slot_are_eligible() {
        let agents = [
            view("idle", AgentState::Idle, 0, 0),
            view("rona", AgentState::Rona, 0, 0),
            view("full", AgentState::Available, 2, 0),
        ];
        assert_eq!(decide(&QueueId::new("q"), &agents, |_| false), None);
        let with_one = [
            view("idle", AgentState::Idle, 0, 0),
            view("ok", AgentState::Available, 1, 0),
        ];
        let decision = decide(&QueueId::new("q"), &with_one, |_| false).unwrap();
        assert_eq!(decision.chosen, AgentId::new("ok"));
        assert_eq!(decision.excluded[0].why, "idle");
    }

    #[test]
    fn an_agent_holding_the_conversation_is_skipped_for_it() {
        let agents = [
            view("alice", AgentState::Available, 0, 0),
            view("bob", AgentState::Available, 1, 0),
        ];
        let decision = decide(&QueueId::new("q"), &agents, |id| id.as_str() == "alice").unwrap();
        assert_eq!(decision.chosen, AgentId::new("bob"));
        assert_eq!(decision.excluded[0].why, "holds_this_conversation");
    }

    #[test]
    fn decision_records_the_best_few_of_many_agents() {
        let agents: Vec<AgentView> = (0..50)
            .map(|n| {
                view(
                    &format!("a{n:02}"),
                    AgentState::Available,
                    (n % 2) as u32,
                    100 - n,
                )
            })
            .chain((0..20).map(|n| view(&format!("i{n:02}"), AgentState::Idle, 0, 0)))
            .collect();
        let decision = decide(&QueueId::new("q"), &agents, |_| false).unwrap();
        assert_eq!(decision.eligible, 50);
        assert_eq!(decision.candidates.len(), RECORDED_CANDIDATES);
        assert_eq!(decision.excluded_count, 20);
        assert_eq!(decision.excluded.len(), RECORDED_EXCLUSIONS);
        // Load 0 first (even n), then longest available (largest n first).
        let order: Vec<_> = decision
            .candidates
            .iter()
            .map(|c| c.agent.as_str())
            .collect();
        assert_eq!(order, ["a48", "a46", "a44", "a42", "a40"]);
        assert_eq!(decision.chosen, AgentId::new("a48"));
    }
}
