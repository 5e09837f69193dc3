//! Read-only lookups over the configuration, built once at start: queue
//! names, agent profiles, reasons and templates.

use std::collections::HashMap;
use std::sync::Arc;
use switchboard_proto::model::{AgentProfile, NamedRef, Reason, TemplateInfo};
use switchboard_proto::{AgentId, IdleReasonId, QueueId, TemplateId, WrapUpReasonId};

use crate::config::{AgentConfig, EngineConfig, TemplateConfig};
use crate::conversation::state::Timing;

pub struct Catalog {
    pub config: EngineConfig,
    queues: HashMap<QueueId, NamedRef>,
    agents: HashMap<AgentId, AgentConfig>,
    /// Agents serving each queue, for the queue's view.
    serving: HashMap<QueueId, Vec<AgentId>>,
    templates: HashMap<TemplateId, TemplateConfig>,
    pub wrap_up_reasons: Arc<Vec<Reason>>,
}

impl Catalog {
    pub fn new(config: EngineConfig) -> Self {
        let queues = config
            .queues
            .iter()
            .map(|queue| {
                (
                    queue.id.clone(),
                    NamedRef::new(queue.id.as_str(), &queue.name),
                )
            })
            .collect();
        let agents = config
            .agents
            .iter()
            .map(|agent| (agent.id.clone(), agent.clone()))
            .collect();
        let mut serving: HashMap<QueueId, Vec<AgentId>> = HashMap::new();
        for agent in &config.agents {
            for queue in &agent.queues {
                serving
                    .entry(queue.clone())
                    .or_default()
                    .push(agent.id.clone());
            }
        }
        let templates = config
            .templates
            .iter()
            .map(|template| (template.id.clone(), template.clone()))
            .collect();
        let wrap_up_reasons = Arc::new(config.wrap_up_reasons.clone());
        Self {
            config,
            queues,
            agents,
            serving,
            templates,
            wrap_up_reasons,
        }
    }

    pub fn queue(&self, id: &QueueId) -> Option<&NamedRef> {
        self.queues.get(id)
    }

    pub fn agent(&self, id: &AgentId) -> Option<&AgentConfig> {
        self.agents.get(id)
    }

    pub fn agents(&self) -> impl Iterator<Item = &AgentConfig> {
        self.config.agents.iter()
    }

    pub fn serving(&self, queue: &QueueId) -> &[AgentId] {
        self.serving.get(queue).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn profile(&self, id: &AgentId) -> Option<AgentProfile> {
        let agent = self.agents.get(id)?;
        Some(AgentProfile {
            id: agent.id.clone(),
            name: agent.name.clone(),
            max_chats: agent.max_chats,
            queues: agent.queues.clone(),
            roles: agent.roles.clone(),
        })
    }

    pub fn template(&self, id: &TemplateId) -> Option<&TemplateConfig> {
        self.templates.get(id)
    }

    pub fn templates(&self) -> Vec<TemplateInfo> {
        self.config
            .templates
            .iter()
            .map(|template| TemplateInfo {
                id: template.id.clone(),
                name: template.name.clone(),
                text: template.text.clone(),
                params: switchboard_proto::template::slots(&template.text),
            })
            .collect()
    }

    pub fn wrap_up_reason(&self, id: &WrapUpReasonId) -> Option<Reason> {
        self.wrap_up_reasons
            .iter()
            .find(|reason| reason.id == id.as_str())
            .cloned()
    }

    pub fn default_wrap_up_reason(&self) -> Reason {
        self.wrap_up_reason(&self.config.default_wrap_up_reason)
            .unwrap_or_else(|| Reason {
                id: self.config.default_wrap_up_reason.0.clone(),
                label: self.config.default_wrap_up_reason.0.clone(),
            })
    }

    /// Reasons whose label or id contains `query`, case-insensitive.
    pub fn search_wrap_up_reasons(&self, query: Option<&str>) -> Vec<Reason> {
        let query = query.map(str::to_lowercase).unwrap_or_default();
        self.wrap_up_reasons
            .iter()
            .filter(|reason| {
                query.is_empty()
                    || reason.label.to_lowercase().contains(&query)
                    || reason.id.to_lowercase().contains(&query)
            })
            .cloned()
            .collect()
    }

    pub fn idle_reasons(&self) -> &[Reason] {
        &self.config.idle_reasons
    }

    pub fn is_idle_reason(&self, id: &IdleReasonId) -> bool {
        self.config
            .idle_reasons
            .iter()
            .any(|reason| reason.id == id.as_str())
    }

    pub fn timing(&self) -> Timing {
        Timing {
            rona_timeout_ms: self.config.routing.rona_timeout.as_millis() as u64,
            auto_wrap_up_ms: self.config.routing.auto_wrap_up.as_millis() as u64,
        }
    }
}
