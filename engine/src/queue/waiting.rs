//! The waiting list of one queue: ordered by priority, then by time queued.
//! A conversation coming back after RONA goes to the head. A conversation
//! taken for an offer still waits (and counts) until the reservation
//! settles: offered, or back in line.

use std::collections::{BTreeMap, HashMap};
use switchboard_proto::{ConversationId, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Position {
    Head,
    Tail,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub conversation_id: ConversationId,
    pub priority: i32,
    /// When it entered this queue (kept across RONA, for wait times).
    pub queued_since: Timestamp,
}

/// Sort key: higher priority first, then order of arrival. Head insertions
/// take ever-smaller order numbers, tail insertions ever-larger ones.
type Key = (std::cmp::Reverse<i32>, i64);

#[derive(Debug, Default)]
pub struct WaitingList {
    entries: BTreeMap<Key, Waiting>,
    keys: HashMap<ConversationId, Key>,
    next_tail: i64,
    next_head: i64,
    /// Taken by `reserve`: an agent's slot is being reserved for it.
    reserving: HashMap<ConversationId, Waiting>,
}

impl WaitingList {
    /// Adds (or moves) a conversation. One conversation is never listed twice.
    pub fn insert(&mut self, waiting: Waiting, position: Position) {
        self.remove(&waiting.conversation_id);
        let order = match position {
            Position::Tail => {
                self.next_tail += 1;
                self.next_tail
            }
            Position::Head => {
                self.next_head -= 1;
                self.next_head
            }
        };
        let key = (std::cmp::Reverse(waiting.priority), order);
        self.keys.insert(waiting.conversation_id.clone(), key);
        self.entries.insert(key, waiting);
    }

    /// Takes a conversation out of the queue (it left, or moved), whether
    /// in line or being reserved for.
    pub fn remove(&mut self, conversation_id: &ConversationId) -> Option<Waiting> {
        let reserving = self.reserving.remove(conversation_id);
        let key = self.keys.remove(conversation_id);
        key.and_then(|key| self.entries.remove(&key)).or(reserving)
    }

    #[cfg(test)]
    fn pop_first(&mut self) -> Option<Waiting> {
        let (_, waiting) = self.entries.pop_first()?;
        self.keys.remove(&waiting.conversation_id);
        Some(waiting)
    }

    /// Conversations in line, first to be offered first.
    pub fn ready(&self) -> impl Iterator<Item = &Waiting> {
        self.entries.values()
    }

    /// Takes a conversation out of line to reserve an agent for it. It
    /// still counts as waiting until [`settle`](Self::settle).
    pub fn reserve(&mut self, conversation_id: &ConversationId) -> Option<Waiting> {
        let key = self.keys.remove(conversation_id)?;
        let waiting = self.entries.remove(&key)?;
        self.reserving
            .insert(waiting.conversation_id.clone(), waiting.clone());
        Some(waiting)
    }

    /// The reservation for this conversation is over. `None` when it left
    /// the queue (or re-entered it) meanwhile: the reservation is then
    /// stale and must be handed back.
    pub fn settle(&mut self, conversation_id: &ConversationId) -> Option<Waiting> {
        self.reserving.remove(conversation_id)
    }

    /// Every waiting conversation, those being reserved for included.
    pub fn len(&self) -> usize {
        self.entries.len() + self.reserving.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is any conversation in line, ready to be offered?
    pub fn has_ready(&self) -> bool {
        !self.entries.is_empty()
    }

    pub fn oldest_since(&self) -> Option<Timestamp> {
        self.entries
            .values()
            .chain(self.reserving.values())
            .map(|waiting| waiting.queued_since)
            .min()
    }

    /// Every waiting conversation in order, those being reserved for first
    /// (a new owner offers them again): what a cluster snapshot keeps.
    pub fn in_order(&self) -> Vec<Waiting> {
        let mut reserving: Vec<Waiting> = self.reserving.values().cloned().collect();
        reserving.sort_by_key(|waiting| waiting.queued_since);
        reserving.extend(self.entries.values().cloned());
        reserving
    }

    /// The list a snapshot's [`in_order`](Self::in_order) describes.
    pub fn from_order(waiting: Vec<Waiting>) -> Self {
        let mut list = Self::default();
        for entry in waiting {
            list.insert(entry, Position::Tail);
        }
        list
    }

    pub fn position_of(&self, conversation_id: &ConversationId) -> Option<usize> {
        let key = self.keys.get(conversation_id)?;
        Some(self.entries.range(..key).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(id: &str, priority: i32, since: i64) -> Waiting {
        Waiting {
            conversation_id: ConversationId::new(id),
            priority,
            queued_since: Timestamp(since),
        }
    }

    fn drain(list: &mut WaitingList) -> Vec<String> {
        std::iter::from_fn(|| list.pop_first())
            .map(|w| w.conversation_id.0)
            .collect()
    }

    #[test]
    fn queue_orders_by_priority_then_time_queued() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        list.insert(waiting("b", 5, 2), Position::Tail);
        list.insert(waiting("c", 0, 3), Position::Tail);
        assert_eq!(drain(&mut list), ["b", "a", "c"]);
    }

    #[test]
    fn rona_returns_conversation_to_the_head_of_its_queue() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        list.insert(waiting("b", 0, 2), Position::Tail);
        list.insert(waiting("back", 0, 0), Position::Head);
        assert_eq!(list.position_of(&ConversationId::new("back")), Some(0));
        assert_eq!(drain(&mut list), ["back", "a", "b"]);
    }

    #[test]
    fn a_conversation_being_offered_still_counts_as_waiting() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        list.insert(waiting("b", 0, 2), Position::Tail);
        let first = list.ready().next().unwrap().conversation_id.clone();
        let taken = list.reserve(&first).unwrap();
        assert_eq!(taken.conversation_id, ConversationId::new("a"));
        assert_eq!(list.len(), 2);
        assert_eq!(list.oldest_since(), Some(Timestamp(1)));
        // Refused: back at the head.
        assert!(list.settle(&taken.conversation_id).is_some());
        list.insert(taken, Position::Head);
        assert_eq!(drain(&mut list), ["a", "b"]);
    }

    #[test]
    fn a_conversation_that_leaves_while_being_offered_settles_to_nothing() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        let taken = list.reserve(&ConversationId::new("a")).unwrap();
        assert!(list.remove(&taken.conversation_id).is_some());
        assert!(list.is_empty());
        assert_eq!(list.settle(&taken.conversation_id), None);
        // Re-entering while reserved also makes the reservation stale.
        list.insert(waiting("b", 0, 2), Position::Tail);
        let taken = list.reserve(&ConversationId::new("b")).unwrap();
        list.insert(waiting("b", 0, 3), Position::Head);
        assert_eq!(list.settle(&taken.conversation_id), None);
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn a_new_owner_rebuilds_the_queue_in_the_same_order() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        list.insert(waiting("b", 0, 2), Position::Tail);
        list.insert(waiting("c", 0, 3), Position::Tail);
        // "b" is being reserved for when the owner dies: offered first.
        list.reserve(&ConversationId::new("b")).unwrap();
        let mut rebuilt = WaitingList::from_order(list.in_order());
        assert_eq!(rebuilt.len(), 3);
        assert_eq!(drain(&mut rebuilt), ["b", "a", "c"]);
    }

    #[test]
    fn a_conversation_is_never_listed_twice() {
        let mut list = WaitingList::default();
        list.insert(waiting("a", 0, 1), Position::Tail);
        list.insert(waiting("a", 0, 1), Position::Head);
        assert_eq!(list.len(), 1);
        assert_eq!(list.oldest_since(), Some(Timestamp(1)));
    }
}
