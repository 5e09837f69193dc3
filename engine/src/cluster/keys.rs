//! Every Redis key and channel a cluster uses, in one place. All start with
//! the configured prefix, so several clusters can share one Redis.

use switchboard_proto::{ConversationId, QueueId};

use super::hub::Topic;
use super::key::ActorKey;

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A node's heartbeat: the node's leases hold while this key lives.
    pub fn heartbeat(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// Every node that joined and has not been cleaned up after it died.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// The names of the actors a node owns (so survivors can adopt them).
    pub fn owned(&self, node: &str) -> String {
        format!("{}:owned:{node}", self.prefix)
    }

    pub fn owner(&self, key: &ActorKey) -> String {
        format!("{}:owner:{}:{}", self.prefix, key.kind(), key.id())
    }

    pub fn state(&self, key: &ActorKey) -> String {
        format!("{}:state:{}:{}", self.prefix, key.kind(), key.id())
    }

    pub fn log(&self, id: &ConversationId) -> String {
        format!("{}:log:{id}", self.prefix)
    }

    /// The conversations waiting in a queue (sorted set, score = time
    /// queued), kept by the conversations' own writes.
    pub fn waiting(&self, queue: &QueueId) -> String {
        format!("{}:waiting:{queue}", self.prefix)
    }

    pub fn presence(&self) -> String {
        format!("{}:presence", self.prefix)
    }

    /// When each agent last logged out (hash: agent -> unix ms).
    pub fn logouts(&self) -> String {
        format!("{}:logouts", self.prefix)
    }

    /// The event outbox (a stream): every node appends its events here in
    /// the write that yields them; one node at a time moves them into the
    /// database (`events::outbox`).
    pub fn outbox(&self) -> String {
        format!("{}:outbox", self.prefix)
    }

    /// Which node moves the outbox into the database, and under which
    /// epoch (`events::outbox`).
    pub fn outbox_lease(&self) -> String {
        format!("{}:outbox:lease", self.prefix)
    }

    pub fn outbox_epoch(&self) -> String {
        format!("{}:outbox:epoch", self.prefix)
    }

    /// Which node folds events into the report buckets
    /// (`reports::projector`), and its epoch counter.
    pub fn report_lease(&self) -> String {
        format!("{}:reports:lease", self.prefix)
    }

    pub fn report_epoch(&self) -> String {
        format!("{}:reports:epoch", self.prefix)
    }

    /// Which node delivers a webhook.
    pub fn webhook_lease(&self, webhook: &str) -> String {
        format!("{}:webhook:{webhook}:lease", self.prefix)
    }

    /// A node's inbox channel: requests and replies for it.
    pub fn inbox(&self, node: &str) -> String {
        format!("{}:inbox:{node}", self.prefix)
    }

    /// The channel of a session topic: every node with a session on it
    /// subscribes.
    pub fn topic(&self, topic: &Topic) -> String {
        match topic {
            Topic::Agent(id) => format!("{}:topic:agent:{id}", self.prefix),
            Topic::Customer(id) => format!("{}:topic:customer:{id}", self.prefix),
        }
    }

    /// The topic a channel name stands for.
    pub fn topic_of(&self, channel: &str) -> Option<Topic> {
        let rest = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":topic:")?;
        if let Some(id) = rest.strip_prefix("agent:") {
            return Some(Topic::Agent(id.into()));
        }
        rest.strip_prefix("customer:")
            .map(|id| Topic::Customer(id.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::AgentId;

    #[test]
    fn topic_channels_name_their_topic() {
        let keys = Keys::new("sb");
        for topic in [
            Topic::Agent(AgentId::new("alice")),
            Topic::Customer(ConversationId::new("c-1")),
        ] {
            assert_eq!(keys.topic_of(&keys.topic(&topic)), Some(topic));
        }
        assert_eq!(keys.topic_of("sb:inbox:n1"), None);
        assert_eq!(keys.topic_of("other:topic:agent:alice"), None);
    }
}
