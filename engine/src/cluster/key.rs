//! Names of actors across a cluster: which kind, which id. The same name
//! keys an actor's owner, its snapshot and (for conversations) its log.

use serde::{Deserialize, Serialize};
use switchboard_proto::{AgentId, ConversationId, QueueId};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActorKey {
    Agent(AgentId),
    Queue(QueueId),
    Conversation(ConversationId),
}

impl ActorKey {
    pub fn kind(&self) -> &'static str {
        match self {
            ActorKey::Agent(_) => "agent",
            ActorKey::Queue(_) => "queue",
            ActorKey::Conversation(_) => "conv",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            ActorKey::Agent(id) => id.as_str(),
            ActorKey::Queue(id) => id.as_str(),
            ActorKey::Conversation(id) => id.as_str(),
        }
    }

    /// `kind:id`, as listed in a node's set of owned actors.
    pub fn name(&self) -> String {
        format!("{}:{}", self.kind(), self.id())
    }

    /// The inverse of [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        let (kind, id) = name.split_once(':')?;
        match kind {
            "agent" => Some(ActorKey::Agent(AgentId::new(id))),
            "queue" => Some(ActorKey::Queue(QueueId::new(id))),
            "conv" => Some(ActorKey::Conversation(ConversationId::new(id))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for key in [
            ActorKey::Agent(AgentId::new("alice")),
            ActorKey::Queue(QueueId::new("sales")),
            ActorKey::Conversation(ConversationId::new("c-1:odd")),
        ] {
            assert_eq!(ActorKey::parse(&key.name()), Some(key));
        }
        assert_eq!(ActorKey::parse("planet:mars"), None);
        assert_eq!(ActorKey::parse("agent"), None);
    }
}
