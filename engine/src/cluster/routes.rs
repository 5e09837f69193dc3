//! The table of routed messages: which actor kind handles each name. One
//! line per actor kind; a message missing here cannot cross nodes.

use futures_util::future::{ready, BoxFuture};
use std::sync::Arc;

use super::key::ActorKey;
use super::routed::{dispatch, PendingReply, Routed};
use crate::agent::actor::{self as agent, AgentActor};
use crate::context::EngineContext;
use crate::conversation::actor::{self as conversation, ConversationActor};
use crate::error::EngineError;
use crate::queue::actor::{self as queue, QueueActor};

type Delivered = BoxFuture<'static, Result<Option<PendingReply>, EngineError>>;

macro_rules! table {
    ($name:ident, $engine:ident, $key:ident, $body:ident, $reply:ident;
     $($actor:ty: [$($message:ty),* $(,)?]),* $(,)?) => {
        $($(
            if $name == <$message as Routed>::NAME {
                return Box::pin(dispatch::<$actor, $message>($engine, $key, $body, $reply));
            }
        )*)*
    };
}

/// Delivers an encoded message named `name` to the actor `key` on this node.
pub fn route(
    engine: Arc<EngineContext>,
    key: ActorKey,
    name: &str,
    body: Vec<u8>,
    wants_reply: bool,
) -> Delivered {
    table!(name, engine, key, body, wants_reply;
        AgentActor: [
            agent::SetState, agent::Reserve, agent::Accept, agent::FromConversation,
            agent::Snapshot, agent::Logout,
        ],
        QueueActor: [
            queue::AgentStatus, queue::FromConversation, queue::Snapshot, queue::StatusOf,
        ],
        ConversationActor: [
            conversation::OfferReserved, conversation::AcceptOffer, conversation::Say,
            conversation::SayTemplate, conversation::TypingNow, conversation::Transfer,
            conversation::Invite, conversation::EndConference, conversation::End,
            conversation::WrapUp, conversation::Resume, conversation::Summary,
            conversation::Record, conversation::Involved,
        ],
    );
    Box::pin(ready(Err(EngineError::Internal(format!(
        "no route for message {name}"
    )))))
}
