//! Who can take a given chat now, and why not. Pure: one rule for an
//! agent's own reservation (a transfer, a conference or a queue's offer
//! asks for a slot) and for the transfer and conference dialogs
//! (`GET /api/v1/agents?conversation_id=`), so the dialog marks exactly
//! those a transfer would refuse.

use switchboard_proto::model::{AgentState, CannotTake};

/// What an agent has to do with the conversation in question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Involvement {
    /// Nothing: it may be handed the chat.
    None,
    /// Owner or conference guest, or offered the chat right now.
    Present,
    /// Left it (transfer, conference ended, chat ended) and has not
    /// wrapped it up: one agent never holds one conversation twice.
    OwesWrapUp,
}

/// The rule. The conversation's own reasons come first: they hold however
/// the agent's state changes, so they are the useful thing to show.
pub fn can_take(
    state: AgentState,
    load: u32,
    max_chats: u32,
    involvement: Involvement,
) -> Result<(), CannotTake> {
    match involvement {
        Involvement::Present => return Err(CannotTake::AlreadyInConversation),
        Involvement::OwesWrapUp => return Err(CannotTake::OwesWrapUp),
        Involvement::None => {}
    }
    if state != AgentState::Available {
        return Err(CannotTake::NotAvailable);
    }
    if load >= max_chats {
        return Err(CannotTake::NoFreeSlot);
    }
    Ok(())
}

/// The sentence a transfer or conference refused for `why` answers with
/// (the dialog says the same of each agent it marks).
pub fn refusal_sentence(name: &str, why: CannotTake) -> String {
    let reason = match why {
        CannotTake::AlreadyInConversation => "already in this chat",
        CannotTake::OwesWrapUp => "owes a wrap-up from this chat",
        CannotTake::NotAvailable => "not available",
        CannotTake::NoFreeSlot => "no free slot",
    };
    format!("{name} cannot take this chat now: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_available_agent_with_a_free_slot_and_no_part_in_the_chat_can_take_it() {
        assert_eq!(
            can_take(AgentState::Available, 1, 2, Involvement::None),
            Ok(())
        );
    }

    #[test]
    fn an_agent_not_available_cannot_take_it_whatever_its_slots() {
        for state in [AgentState::Idle, AgentState::Rona, AgentState::Offline] {
            assert_eq!(
                can_take(state, 0, 3, Involvement::None),
                Err(CannotTake::NotAvailable)
            );
        }
    }

    #[test]
    fn an_available_agent_without_a_free_slot_cannot_take_it() {
        assert_eq!(
            can_take(AgentState::Available, 3, 3, Involvement::None),
            Err(CannotTake::NoFreeSlot)
        );
    }

    #[test]
    fn an_agent_already_in_the_conversation_cannot_take_it_again() {
        assert_eq!(
            can_take(AgentState::Available, 1, 3, Involvement::Present),
            Err(CannotTake::AlreadyInConversation)
        );
    }

    #[test]
    fn an_agent_owing_a_wrap_up_from_the_chat_cannot_take_it_even_when_free() {
        assert_eq!(
            can_take(AgentState::Available, 1, 3, Involvement::OwesWrapUp),
            Err(CannotTake::OwesWrapUp)
        );
    }

    #[test]
    fn the_conversations_own_reason_is_named_before_state_or_slots() {
        // Idle, full, and owing the wrap-up: the wrap-up is what lasts.
        assert_eq!(
            can_take(AgentState::Idle, 1, 1, Involvement::OwesWrapUp),
            Err(CannotTake::OwesWrapUp)
        );
        assert_eq!(
            can_take(AgentState::Rona, 2, 2, Involvement::Present),
            Err(CannotTake::AlreadyInConversation)
        );
        // Not available is named before a full slot.
        assert_eq!(
            can_take(AgentState::Idle, 2, 2, Involvement::None),
            Err(CannotTake::NotAvailable)
        );
    }
}
