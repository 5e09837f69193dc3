//! [`Engine`]: the engine's one entry point for the gateway. It routes each
//! protocol command to the actor that owns the rule, and answers the
//! directory and records. Domain decisions stay in the actors.

use actix::Actor;
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_proto::event::{Ack, CustomerYou, Hello, ServerFrame, You};
use switchboard_proto::model::*;
use switchboard_proto::{
    AgentCommand, AgentId, ConversationId, CustomerCommand, ErrorCode, QueueId, Timestamp,
};

use crate::admission::{Admission, Admit, Work};
use crate::agent::actor as agent;
use crate::agent::availability::{self, Involvement};
use crate::catalog::Catalog;
use crate::cluster::directory::{ActorRef, Directory};
use crate::cluster::hub::{Subscription, Topic};
use crate::cluster::key::ActorKey;
use crate::cluster::node;
use crate::cluster::routed::{self, Routed};
use crate::cluster::store::{MemoryStore, Store};
use crate::config::{ClusterConfig, EngineConfig};
use crate::context::EngineContext;
use crate::conversation::actor::{self as conversation, ConversationActor, Party};
use crate::conversation::state::{Conversation, NewConversation};
use crate::customers::VerifiedIdentity;
use crate::error::EngineError;
use crate::events::DomainEvent;
use crate::queue::actor::{self as queue, QueueActor};
use crate::storage::live::{Recorded, SqlStore};
use crate::storage::Database;

/// A cheap, cloneable handle on a running engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineContext>,
}

/// `?conversation_id=` of `GET /api/v1/agents`: which conversation, and
/// who asks (an agent who took part in it, or a supervisor).
#[derive(Debug, Clone, Copy)]
pub struct TakersOf<'a> {
    pub conversation_id: &'a ConversationId,
    pub viewer: &'a AgentId,
    pub supervisor: bool,
}

/// A new chat, as `POST /api/v1/chats` answers it.
#[derive(Debug, Clone)]
pub struct StartedChat {
    pub conversation_id: ConversationId,
    pub created_at: Timestamp,
}

/// A client session: its `hello`, frames to send right after it, and the
/// live events. Subscribed before the snapshot was taken, so nothing falls
/// between them (a frame may arrive twice; clients de-duplicate by `seq`).
pub struct Session {
    pub hello: Hello,
    pub followups: Vec<ServerFrame>,
    pub events: Subscription,
}

/// The reply to one command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ack: Ack,
    /// `resume`: `message` events to send before the ack.
    pub replay: Vec<Arc<Message>>,
    /// `logout`: the session ends after the ack.
    pub close_session: bool,
}

impl Outcome {
    fn ack(ack: Ack) -> Self {
        Self {
            ack,
            replay: Vec::new(),
            close_session: false,
        }
    }
}

impl Engine {
    /// Starts an embedded engine on `database`: a SQLite file keeps every
    /// actor's state (a restart resumes them all, timers included) and the
    /// record; `memory:` keeps actors in memory and the record in an
    /// in-memory database. Must run inside an actix `System`.
    pub async fn start_embedded(
        config: EngineConfig,
        database: Database,
        workers: usize,
    ) -> Result<Engine, EngineError> {
        let store: Arc<dyn Store> = if database.is_memory() {
            Arc::new(Recorded::new(MemoryStore::default(), database.clone()))
        } else {
            Arc::new(SqlStore::new(database.clone()))
        };
        let inner = Arc::new(EngineContext::new(
            Catalog::new(config),
            Directory::new(workers),
            store,
            database,
            None,
        ));
        crate::events::webhooks::delivery::start(inner.clone(), None);
        crate::reports::projector::start(
            inner.database.clone(),
            crate::reports::projection::ReportRules::of(&inner.catalog.config),
            crate::reports::projector::grace(false),
            crate::cluster::lease::Lease::local(),
        );
        if inner.store.keeps_state() {
            resume(&inner).await?;
        } else {
            for queue in &inner.catalog.config.queues {
                let shared = inner.clone();
                let (id, name) = (queue.id.clone(), queue.name.clone());
                let arbiter = inner.directory.arbiter();
                inner.directory.queue_or_start(&queue.id, || {
                    QueueActor::start_in_arbiter(arbiter, move |_| {
                        QueueActor::new(id, name, shared)
                    })
                });
            }
        }
        Ok(Engine { inner })
    }

    /// Starts a cluster node: joins through Redis (state, logs, placement
    /// and the bus live there), then keeps its heartbeat and adopts the
    /// actors of nodes that die. Actors start on first use, wherever they
    /// are first needed. Records go to `database` (PostgreSQL), each
    /// before its Redis write. Fails if Redis cannot be reached.
    pub async fn start_cluster(
        config: EngineConfig,
        cluster: ClusterConfig,
        database: Database,
        workers: usize,
    ) -> Result<Engine, EngineError> {
        let node_id = config.node_id.to_string();
        let joined = node::join(&cluster, &node_id).await?;
        let directory = Directory::new(workers);
        directory.connect(joined.bus.clone());
        let store = Arc::new(Recorded::new(joined.store, database.clone()));
        let mut context = EngineContext::new(
            Catalog::new(config),
            directory,
            store,
            database,
            Some(joined.bus.clone()),
        );
        for warning in &joined.warnings {
            tracing::warn!("{warning}");
        }
        context.warnings = joined.warnings;
        let inner = Arc::new(context);
        inner.hub.connect(joined.bus.clone());
        joined.bus.attach(inner.clone());
        let placement = joined.bus.placement().clone();
        actix::spawn(node::keep_membership(inner.clone(), joined.bus, node_id));
        actix::spawn(crate::cluster::recovery::keep_recovering(inner.clone()));
        crate::events::outbox::start(inner.clone(), placement.clone());
        crate::events::webhooks::delivery::start(inner.clone(), Some(placement.clone()));
        crate::reports::projector::start(
            inner.database.clone(),
            crate::reports::projection::ReportRules::of(&inner.catalog.config),
            crate::reports::projector::grace(true),
            crate::cluster::lease::Lease::shared(
                placement.connection(),
                placement.keys().report_lease(),
                placement.keys().report_epoch(),
                placement.me().to_owned(),
                crate::reports::projector::LEASE_TTL,
            ),
        );
        Ok(Engine { inner })
    }

    /// What an operator should know about this node's setup (a Redis
    /// without persistence); `/readyz` lists them.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Why this node should take no traffic now, if it should not: its
    /// database does not answer, or in a cluster it lost its lease or the
    /// bus.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if !self.inner.database.is_healthy() {
            return Some("the database does not answer");
        }
        match &self.inner.bus {
            Some(bus) if !(bus.placement().lease_valid() && bus.is_listening()) => {
                Some("not connected to the cluster (Redis unreachable or lease lost)")
            }
            _ => None,
        }
    }

    /// Deletes finished conversations older than `retention_days` now and
    /// then once a day (0: keep for ever). In a cluster every node runs it;
    /// the deletes are idempotent.
    pub fn keep_retention(&self, retention_days: u32) {
        if retention_days == 0 {
            return;
        }
        let database = self.inner.database.clone();
        let engine = Arc::downgrade(&self.inner);
        actix::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
            loop {
                tick.tick().await;
                if engine.upgrade().is_none_or(|engine| engine.is_resigned()) {
                    return;
                }
                let kept_ms = u64::from(retention_days) * 24 * 3600 * 1000;
                let cutoff = Timestamp(Timestamp::now().millis() - kept_ms as i64);
                match database.delete_finished_before(cutoff).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, retention_days, "old records deleted"),
                    Err(error) => tracing::warn!(%error, "retention: old records not deleted"),
                }
            }
        });
    }

    /// The system of record: search, export, transcripts.
    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// Drain: stops renewing this node's heartbeat and hands its actors to
    /// the other nodes (they adopt them at their next scan).
    pub async fn resign(&self) {
        self.inner.resign();
        if let Some(bus) = &self.inner.bus {
            tokio::time::sleep(node::RESIGN_GRACE).await;
            node::retire_all(&self.inner);
            if let Err(error) = bus.placement().resign().await {
                tracing::warn!(%error, "could not give up the heartbeat; others adopt after its TTL");
            }
        }
    }

    /// This node's name in the cluster (its node id in one process).
    pub fn node(&self) -> String {
        match &self.inner.bus {
            Some(bus) => bus.placement().me().to_owned(),
            None => self.inner.catalog.config.node_id.to_string(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Logs the agent in (its actor starts `idle`), or finds it logged in.
    pub async fn login_agent(&self, id: &AgentId) -> Result<AgentProfile, EngineError> {
        let profile = self
            .inner
            .catalog
            .profile(id)
            .ok_or_else(|| EngineError::not_found("agent", id))?;
        let config = self
            .inner
            .catalog
            .agent(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found("agent", id))?;
        let was_in = self.is_logged_in(id).await;
        let name = config.name.clone();
        if self.inner.directory.is_clustered() {
            // Its snapshot is created unless it exists (logged in on another
            // node or tab); the ask below starts its actor on its owner.
            let bytes = routed::encode(&agent::logged_in(config))?;
            let key = ActorKey::Agent(id.clone());
            self.inner.store.create_state(&key, bytes).await?;
        } else {
            self.inner
                .directory
                .agent_or_start(id, || agent::start(&self.inner, config));
        }
        // Answered once the actor has started, and so has listed itself in
        // the directory: a lookup right after the login finds it, idle.
        self.agent(id)?.ask(agent::Snapshot).await?;
        if !was_in {
            let event = DomainEvent::agent_logged_in(id, &name, Timestamp::now());
            self.inner.store.append_events(vec![event]).await?;
        }
        Ok(profile)
    }

    /// Refuses an agent's token issued at or before its last logout
    /// (`issued_at_ms`, unix ms): logging out ends what the tokens handed
    /// out so far can do, on every node, while a new login's token works.
    pub async fn check_agent_token(
        &self,
        id: &AgentId,
        issued_at_ms: u64,
    ) -> Result<(), EngineError> {
        match self.inner.store.logged_out_at(id).await? {
            Some(at) if i64::try_from(issued_at_ms).unwrap_or(i64::MAX) <= at.millis() => {
                Err(EngineError::Unauthorized(
                    "the agent logged out since this token was issued: log in again".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Is the agent logged in (its actor running, here or on another node)?
    pub async fn is_logged_in(&self, id: &AgentId) -> bool {
        if !self.inner.directory.is_clustered() {
            return self.inner.directory.agent(id).is_some();
        }
        match self.inner.store.presence().await {
            Ok(rows) => rows.iter().any(|row| &row.id == id),
            // Unknown: keep the session; its commands will say more.
            Err(_) => true,
        }
    }

    fn agent(&self, id: &AgentId) -> Result<ActorRef<agent::AgentActor>, EngineError> {
        self.inner
            .directory
            .agent(id)
            .ok_or_else(|| EngineError::invalid_state("the agent is not logged in"))
    }

    /// The conversation's actor; a finished one answers `invalid_state`.
    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<ActorRef<ConversationActor>, EngineError> {
        if let Some(actor) = self.inner.directory.conversation(id) {
            return Ok(actor);
        }
        Err(self.finished_or_unknown(id).await)
    }

    /// Why a conversation has no actor: it finished (`invalid_state`), or
    /// it never existed (`not_found`).
    /// A conversation the record lists as live but whose actor is not
    /// running is starting again (after a failed write) or being closed by
    /// recovery: `unavailable`, retry.
    async fn finished_or_unknown(&self, id: &ConversationId) -> EngineError {
        match self.inner.database.record(id).await {
            Ok(Some(record)) if record.state.is_final() => {
                EngineError::invalid_state(format!("the conversation is {}", record.state.as_str()))
            }
            Ok(Some(_)) => EngineError::Unavailable(
                "the conversation is starting again: retry in a moment".into(),
            ),
            Ok(None) => EngineError::not_found("conversation", id),
            Err(error) => EngineError::Unavailable(error.to_string()),
        }
    }

    /// Asks a conversation's actor: a finished conversation answers
    /// `invalid_state`, an unknown one `not_found`, a refused command its error.
    async fn in_conversation<M, T>(&self, id: &ConversationId, message: M) -> Result<T, EngineError>
    where
        M: Routed<Reply = Result<T, EngineError>>,
        ConversationActor: actix::Handler<M>,
        T: Send + 'static,
    {
        let result = self.conversation(id).await?.ask(message).await;
        match result.and_then(|reply| reply) {
            // In a cluster, a conversation with no actor anywhere is asked
            // through the bus and answers `not_found`: say which it is.
            Err(error) if error.code() == ErrorCode::NotFound && self.inner.bus.is_some() => {
                Err(self.finished_or_unknown(id).await)
            }
            // Its actor stopped as it was asked: if the conversation just
            // finished, say so (a customer connecting then still gets its
            // `hello`); if it moved to another node, retry.
            Err(EngineError::ActorGone) => match self.finished_or_unknown(id).await {
                finished @ EngineError::InvalidState(_) => Err(finished),
                _ => Err(EngineError::ActorGone),
            },
            other => other,
        }
    }

    /// A customer opens a chat: message 1 is the first question, and the
    /// conversation waits in its queue.
    pub async fn start_chat(
        &self,
        queue_id: &QueueId,
        customer: Customer,
        identity: Option<VerifiedIdentity>,
        first_message: String,
        attributes: BTreeMap<String, serde_json::Value>,
    ) -> Result<StartedChat, EngineError> {
        let catalog = &self.inner.catalog;
        let queue = catalog
            .queue(queue_id)
            .cloned()
            .ok_or_else(|| EngineError::not_found("queue", queue_id))?;
        let now = Timestamp::now();
        // A refused start stores nothing, a verified customer's profile included.
        Conversation::check_start(&customer, &first_message, catalog.config.max_message_chars)?;
        // Past capacity, new chats are refused before anything is stored.
        if let Admit::Refuse { retry_after_ms } = self.inner.admission.admit(Work::NewChat) {
            return Err(EngineError::Overloaded { retry_after_ms });
        }
        let customer = self.customer_for_chat(customer, identity, now).await?;
        let id = ConversationId::generate();
        let (state, opening) = Conversation::start(
            NewConversation {
                id: id.clone(),
                customer,
                attributes,
                queue,
                first_message,
                max_message_chars: catalog.config.max_message_chars,
                timing: catalog.timing(),
                wrap_up_reasons: catalog.wrap_up_reasons.clone(),
            },
            now,
        )?;
        if let Some(bus) = &self.inner.bus {
            // A new id: this node becomes its owner (unless its lease lapsed).
            let key = ActorKey::Conversation(id.clone());
            let owner = bus.placement().claim_new(&key).await;
            let owner = owner.map_err(EngineError::from)?;
            if owner.as_deref() != Some(bus.placement().me()) {
                return Err(EngineError::Unavailable(
                    "conversation id taken; retry".into(),
                ));
            }
        }
        let shared = self.inner.clone();
        let directory = &self.inner.directory;
        let actor = directory.start_conversation(id.clone(), || {
            ConversationActor::start_in_arbiter(&directory.arbiter_of_caller(), move |_| {
                ConversationActor::new(state, opening, shared)
            })
        });
        {
            // Answered only once its first write (its record, message 1,
            // its place in the queue) is stored: the actor reads this after
            // that write.
            let party = Party::Customer;
            actor.ask(conversation::Summary { party }).await??;
        }
        tracing::debug!(conversation_id = %id, queue_id = %queue_id, "chat started");
        Ok(StartedChat {
            conversation_id: id,
            created_at: now,
        })
    }

    /// The node's admission: `/readyz` reports overload from it, and
    /// the HTTP workers run its lag probe.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    pub async fn open_agent_session(&self, id: &AgentId) -> Result<Session, EngineError> {
        let profile = self.login_agent(id).await?;
        let mut events = self.inner.hub.subscribe(Topic::Agent(id.clone()));
        events.subscribed().await;
        let snapshot = self.agent(id)?.ask(agent::Snapshot).await?;
        let mut conversations = Vec::new();
        for conversation_id in &snapshot.conversations {
            if let Some(actor) = self.inner.directory.conversation(conversation_id) {
                let party = Party::Agent(id.clone());
                // A conversation that finished meanwhile is simply left out.
                match actor.ask(conversation::Summary { party }).await {
                    Ok(Ok(summary)) => conversations.push(summary),
                    Ok(Err(error)) | Err(error) => {
                        tracing::debug!(agent_id = %id, %conversation_id, %error, "left out of hello")
                    }
                }
            }
        }
        let followups = snapshot
            .wrap_ups
            .into_iter()
            .map(ServerFrame::WrapUpRequired)
            .collect();
        Ok(Session {
            hello: Hello {
                server_time: Timestamp::now(),
                you: You::Agent(profile),
                agent_state: Some(snapshot.state),
                conversations,
                offers: snapshot.offers,
                token_expires_at: None,
            },
            followups,
            events,
        })
    }

    pub async fn open_customer_session(&self, id: &ConversationId) -> Result<Session, EngineError> {
        let mut events = self.inner.hub.subscribe(Topic::Customer(id.clone()));
        events.subscribed().await;
        let summary = self
            .in_conversation(
                id,
                conversation::Summary {
                    party: Party::Customer,
                },
            )
            .await;
        let summary = match summary {
            Ok(summary) => summary,
            Err(error) if error.code() != ErrorCode::InvalidState => return Err(error),
            Err(_) => {
                let record = self
                    .inner
                    .database
                    .record(id)
                    .await?
                    .ok_or_else(|| EngineError::not_found("conversation", id))?;
                summary_of(&record)
            }
        };
        // A customer waiting in line hears where it stands at once; the
        // queue sends changes from then on.
        let mut followups = Vec::new();
        if summary.state == ConversationState::Queued {
            let queue_id = QueueId::new(summary.queue.id.as_str());
            if let Some(queue) = self.inner.directory.queue(&queue_id) {
                match queue.ask(queue::StatusOf(id.clone())).await {
                    Ok(Some(status)) => followups.push(ServerFrame::QueueStatus(status)),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(conversation_id = %id, %error, "no queue status in hello")
                    }
                }
            }
        }
        Ok(Session {
            hello: Hello {
                server_time: Timestamp::now(),
                you: You::Customer(CustomerYou {
                    conversation_id: id.clone(),
                    name: summary.customer.name.clone(),
                    email: summary.customer.email.clone(),
                }),
                agent_state: None,
                conversations: vec![summary],
                offers: Vec::new(),
                token_expires_at: None,
            },
            followups,
            events,
        })
    }

    /// One agent command, admitted or shed first (`crate::admission`).
    pub async fn agent_command(
        &self,
        agent_id: &AgentId,
        request_id: String,
        command: AgentCommand,
    ) -> Result<Outcome, EngineError> {
        let work = Work::from(&command);
        self.admitted(work, request_id, |request_id| {
            self.run_agent_command(agent_id, request_id, command)
        })
        .await
    }

    /// Runs `run` if the node admits `work`, and times it: the time
    /// admitted messages take is what tells the node it is past capacity.
    async fn admitted<F: std::future::Future<Output = Result<Outcome, EngineError>>>(
        &self,
        work: Work,
        request_id: String,
        run: impl FnOnce(String) -> F,
    ) -> Result<Outcome, EngineError> {
        let admission = &self.inner.admission;
        match admission.admit(work) {
            Admit::Yes => {}
            // Typing, dropped: nobody is owed it.
            Admit::Drop => return Ok(Outcome::ack(Ack::new(request_id))),
            Admit::Refuse { retry_after_ms } => {
                return Err(EngineError::Overloaded { retry_after_ms })
            }
        }
        let started = std::time::Instant::now();
        let outcome = run(request_id).await;
        // Messages are the measure: one kind of work, the same path each
        // time (an accept or a wrap-up takes longer, and is rarer).
        if work == Work::Message {
            admission.observe_work(started.elapsed());
        }
        outcome
    }

    /// Runs one agent command and returns its reply.
    async fn run_agent_command(
        &self,
        agent_id: &AgentId,
        request_id: String,
        command: AgentCommand,
    ) -> Result<Outcome, EngineError> {
        let mut ack = Ack::new(request_id);
        let party = Party::Agent(agent_id.clone());
        match command {
            AgentCommand::SetState { state, reason } => {
                let now = self
                    .agent(agent_id)?
                    .ask(agent::SetState { state, reason })
                    .await??;
                ack.state = Some(now.state);
                ack.since = Some(now.since);
            }
            AgentCommand::Accept { conversation_id } => {
                let summary = self
                    .agent(agent_id)?
                    .ask(agent::Accept { conversation_id })
                    .await??;
                ack.conversation = Some(summary);
            }
            AgentCommand::Send {
                conversation_id,
                text,
                client_msg_id,
            } => {
                let message = self
                    .in_conversation(
                        &conversation_id,
                        conversation::Say {
                            party,
                            text,
                            client_msg_id,
                        },
                    )
                    .await?;
                fill_message_ack(&mut ack, &message);
            }
            AgentCommand::SendTemplate {
                conversation_id,
                template_id,
                params,
                client_msg_id,
            } => {
                let message = self
                    .in_conversation(
                        &conversation_id,
                        conversation::SayTemplate {
                            agent: agent_id.clone(),
                            template_id,
                            params,
                            client_msg_id,
                        },
                    )
                    .await?;
                fill_message_ack(&mut ack, &message);
                ack.text = Some(message.text.clone());
            }
            AgentCommand::Typing { conversation_id } => {
                self.in_conversation(&conversation_id, conversation::TypingNow { party })
                    .await?;
            }
            AgentCommand::Transfer {
                conversation_id,
                to,
            } => {
                let summary = self
                    .in_conversation(
                        &conversation_id,
                        conversation::Transfer {
                            by: agent_id.clone(),
                            to,
                        },
                    )
                    .await?;
                ack.conversation = Some(summary);
            }
            AgentCommand::Conference {
                conversation_id,
                agent,
            } => {
                let summary = self
                    .in_conversation(
                        &conversation_id,
                        conversation::Invite {
                            by: agent_id.clone(),
                            agent,
                        },
                    )
                    .await?;
                ack.conversation = Some(summary);
            }
            AgentCommand::EndConference { conversation_id } => {
                let summary = self
                    .in_conversation(
                        &conversation_id,
                        conversation::EndConference {
                            by: agent_id.clone(),
                        },
                    )
                    .await?;
                ack.conversation = Some(summary);
            }
            AgentCommand::End { conversation_id } => {
                let summary = self
                    .in_conversation(&conversation_id, conversation::End { by: party })
                    .await?;
                ack.conversation = Some(summary);
            }
            AgentCommand::WrapUp {
                conversation_id,
                reason,
                notes,
            } => {
                let summary = self
                    .in_conversation(
                        &conversation_id,
                        conversation::WrapUp {
                            agent: agent_id.clone(),
                            reason,
                            notes,
                        },
                    )
                    .await?;
                ack.conversation = Some(summary);
            }
            AgentCommand::Resume {
                conversation_id,
                after_seq,
            } => {
                return self.resume(ack, &conversation_id, party, after_seq).await;
            }
            AgentCommand::Logout => {
                self.agent(agent_id)?.ask(agent::Logout).await??;
                return Ok(Outcome {
                    ack,
                    replay: Vec::new(),
                    close_session: true,
                });
            }
            AgentCommand::RefreshToken => return Err(tokens_are_the_gateways()),
        }
        Ok(Outcome::ack(ack))
    }

    /// One customer command, admitted or shed first (`crate::admission`).
    pub async fn customer_command(
        &self,
        conversation_id: &ConversationId,
        request_id: String,
        command: CustomerCommand,
    ) -> Result<Outcome, EngineError> {
        let work = Work::from(&command);
        self.admitted(work, request_id, |request_id| {
            self.run_customer_command(conversation_id, request_id, command)
        })
        .await
    }

    /// Runs one customer command; the conversation is the token's.
    async fn run_customer_command(
        &self,
        conversation_id: &ConversationId,
        request_id: String,
        command: CustomerCommand,
    ) -> Result<Outcome, EngineError> {
        let mut ack = Ack::new(request_id);
        match command {
            CustomerCommand::Send {
                text,
                client_msg_id,
            } => {
                let message = self
                    .in_conversation(
                        conversation_id,
                        conversation::Say {
                            party: Party::Customer,
                            text,
                            client_msg_id,
                        },
                    )
                    .await?;
                fill_message_ack(&mut ack, &message);
            }
            CustomerCommand::Typing => {
                self.in_conversation(
                    conversation_id,
                    conversation::TypingNow {
                        party: Party::Customer,
                    },
                )
                .await?;
            }
            CustomerCommand::End => {
                let summary = self
                    .in_conversation(
                        conversation_id,
                        conversation::End {
                            by: Party::Customer,
                        },
                    )
                    .await?;
                ack.conversation = Some(summary);
            }
            CustomerCommand::Resume { after_seq } => {
                return self
                    .resume(ack, conversation_id, Party::Customer, after_seq)
                    .await;
            }
            CustomerCommand::RefreshToken => return Err(tokens_are_the_gateways()),
        }
        Ok(Outcome::ack(ack))
    }

    /// A conversation's messages after `after_seq`, as `resume` reads
    /// them: a session fills a gap it noticed in the live events.
    pub async fn messages_after(
        &self,
        party: Party,
        conversation_id: &ConversationId,
        after_seq: u64,
    ) -> Result<Vec<Arc<Message>>, EngineError> {
        let ack = Ack::new(String::new());
        let outcome = self.resume(ack, conversation_id, party, after_seq).await?;
        Ok(outcome.replay)
    }

    async fn resume(
        &self,
        mut ack: Ack,
        conversation_id: &ConversationId,
        party: Party,
        after_seq: u64,
    ) -> Result<Outcome, EngineError> {
        let live = match self.inner.directory.conversation(conversation_id) {
            Some(actor) => {
                let resume = conversation::Resume {
                    party: party.clone(),
                    after_seq,
                };
                // A conversation that is just stopping does not answer;
                // its record is kept by then, so read that instead. (In a
                // cluster a finished one answers `not_found`.)
                match actor.ask(resume).await {
                    Ok(Ok(replay)) => Ok(replay),
                    Ok(Err(error)) if error.code() != ErrorCode::NotFound => return Err(error),
                    Ok(Err(error)) | Err(error) => Err(error),
                }
            }
            None => Err(EngineError::not_found("conversation", conversation_id)),
        };
        let replay = match live {
            Ok(replay) => replay,
            Err(unanswered) => {
                // Finished: replay from the kept record. No record and no
                // answer (a node failing over): say so, not `not_found`.
                let record = match self.record_for(conversation_id).await {
                    Err(error)
                        if error.code() == ErrorCode::NotFound
                            && unanswered.code() == ErrorCode::Unavailable =>
                    {
                        return Err(unanswered)
                    }
                    other => other?,
                };
                if let Party::Agent(agent) = &party {
                    check_took_part(&record, agent, false)?;
                }
                record
                    .messages
                    .into_iter()
                    .filter(|message| message.seq > after_seq)
                    .map(Arc::new)
                    .collect()
            }
        };
        ack.replayed = Some(replay.len() as u64);
        Ok(Outcome {
            ack,
            replay,
            close_session: false,
        })
    }

    /// The record as the database has it (a conversation live on another
    /// node is there too, as of its last write).
    async fn record_for(&self, id: &ConversationId) -> Result<ConversationRecord, EngineError> {
        self.inner
            .database
            .record(id)
            .await
            .map_err(EngineError::from)?
            .ok_or_else(|| EngineError::not_found("conversation", id))
    }

    /// `GET /api/v1/conversations/{id}`: for an agent who took part, or a
    /// supervisor.
    pub async fn conversation_record(
        &self,
        id: &ConversationId,
        viewer: &AgentId,
        supervisor: bool,
    ) -> Result<ConversationRecord, EngineError> {
        let live = match self.inner.directory.conversation(id) {
            Some(actor) => actor.ask(conversation::Record).await.ok(),
            None => None,
        };
        let record = match live {
            Some(record) => record,
            None => self.record_for(id).await?,
        };
        if let Err(refused) = check_took_part(&record, viewer, supervisor) {
            // An agent who served this customer reads their earlier chats
            // too (the desktop's history panel).
            let served = match &record.customer.id {
                Some(customer) => {
                    self.database()
                        .agent_served_customer(viewer, customer)
                        .await?
                }
                None => false,
            };
            if !served {
                return Err(refused);
            }
        }
        Ok(record)
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStats>, EngineError> {
        let mut rows = Vec::new();
        for config in &self.inner.catalog.config.queues {
            if let Some(actor) = self.inner.directory.queue(&config.id) {
                rows.push(actor.ask(queue::Snapshot).await?);
            }
        }
        Ok(rows)
    }

    /// `GET /api/v1/queues`.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, EngineError> {
        Ok(self
            .queue_stats()
            .await?
            .into_iter()
            .map(|stats| QueueInfo {
                id: stats.id,
                name: stats.name,
                waiting: stats.waiting,
                longest_wait_s: stats.longest_wait_s,
                available_agents: stats.available_agents,
            })
            .collect())
    }

    /// Every configured agent with its state (`offline` when logged out).
    async fn all_agents(&self) -> Result<Vec<AgentInfo>, EngineError> {
        let present: std::collections::HashMap<AgentId, AgentInfo> = self
            .inner
            .store
            .presence()
            .await
            .map_err(EngineError::from)?
            .into_iter()
            .map(|view| (view.id.clone(), view.info()))
            .collect();
        Ok(self
            .inner
            .catalog
            .agents()
            .map(|config| {
                present.get(&config.id).cloned().unwrap_or(AgentInfo {
                    id: config.id.clone(),
                    name: config.name.clone(),
                    state: AgentState::Offline,
                    active_chats: 0,
                    max_chats: config.max_chats,
                    can_take: None,
                    why_not: None,
                })
            })
            .collect())
    }

    /// `GET /api/v1/agents?state=&q=&conversation_id=`: logged-in agents
    /// (or those in `state`, `offline` included), names matching `q`
    /// case-insensitively; with a conversation, whether each could take it
    /// now and why not ([`availability::can_take`], the rule a transfer or
    /// conference applies when it reserves the agent's slot).
    pub async fn agents(
        &self,
        state: Option<AgentState>,
        query: Option<&str>,
        taking: Option<TakersOf<'_>>,
    ) -> Result<Vec<AgentInfo>, EngineError> {
        let involved: Option<std::collections::HashMap<AgentId, Involvement>> = match taking {
            Some(taking) => Some(
                self.in_conversation(
                    taking.conversation_id,
                    conversation::Involved {
                        viewer: taking.viewer.clone(),
                        supervisor: taking.supervisor,
                    },
                )
                .await?
                .into_iter()
                .collect(),
            ),
            None => None,
        };
        let query = query.map(str::to_lowercase).unwrap_or_default();
        let mut rows: Vec<AgentInfo> = self
            .all_agents()
            .await?
            .into_iter()
            .filter(|info| match state {
                Some(wanted) => info.state == wanted,
                None => info.state != AgentState::Offline,
            })
            .filter(|info| query.is_empty() || info.name.to_lowercase().contains(&query))
            .collect();
        if let Some(involved) = &involved {
            for row in &mut rows {
                let involvement = involved.get(&row.id).copied().unwrap_or(Involvement::None);
                let verdict =
                    availability::can_take(row.state, row.active_chats, row.max_chats, involvement);
                row.can_take = Some(verdict.is_ok());
                row.why_not = verdict.err();
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// `GET /api/v1/stats`.
    pub async fn stats(&self) -> Result<Stats, EngineError> {
        let mut queues = self.queue_stats().await?;
        let mut today = self.queues_today().await;
        for queue in &mut queues {
            if let Some(at) = today.iter().position(|row| row.queue == queue.id) {
                queue.today = Some(today.swap_remove(at));
            }
        }
        let agents = self.all_agents().await?;
        let mut counts = AgentStateCounts::default();
        for agent in &agents {
            match agent.state {
                AgentState::Available => counts.available += 1,
                AgentState::Idle => counts.idle += 1,
                AgentState::Rona => counts.rona += 1,
                AgentState::Offline => counts.offline += 1,
            }
        }
        Ok(Stats {
            generated_at: Timestamp::now(),
            service_level_s: self.inner.catalog.config.service_level.as_secs(),
            queues,
            agents_by_state: counts,
            agents,
        })
    }

    /// Conversations alive on this node (for metrics and the load harness).
    pub fn live_conversations(&self) -> usize {
        self.inner.directory.live_conversations()
    }
}

fn fill_message_ack(ack: &mut Ack, message: &Message) {
    ack.seq = Some(message.seq);
    ack.id = Some(message.id.clone());
    ack.client_msg_id = message.client_msg_id.clone();
}

fn check_took_part(
    record: &ConversationRecord,
    viewer: &AgentId,
    supervisor: bool,
) -> Result<(), EngineError> {
    let took_part = record
        .legs
        .iter()
        .any(|leg| leg.agent.id == viewer.as_str());
    if supervisor || took_part {
        Ok(())
    } else {
        Err(EngineError::Forbidden(
            "only agents who took part, or supervisors, may read this conversation".into(),
        ))
    }
}

fn summary_of(record: &ConversationRecord) -> ConversationSummary {
    ConversationSummary {
        conversation_id: record.conversation_id.clone(),
        state: record.state,
        queue: record.queue.clone(),
        participants: record.participants.clone(),
        owner: record.owner.clone(),
        customer: record.customer.clone(),
        created_at: record.created_at,
        last_seq: record.messages.last().map_or(0, |message| message.seq),
    }
}

/// An embedded node on its database starts where it stopped: queues with
/// who waited in them, logged-in agents, and every live conversation, its
/// timers re-armed from their deadlines (a RONA that fell due while the
/// node was down fires at once).
async fn resume(engine: &Arc<EngineContext>) -> Result<(), EngineError> {
    engine.set_resuming(true);
    let stored = engine.store.stored_actors().await;
    let resumed = match stored {
        Ok(stored) => resume_actors(engine, &stored).await,
        Err(error) => Err(error.into()),
    };
    engine.set_resuming(false);
    for queue in &engine.catalog.config.queues {
        if let Some(addr) = engine.directory.local_queue(&queue.id) {
            addr.do_send(queue::Resumed);
        }
    }
    resumed
}

/// Agents first (queues read their presence), then queues (conversations
/// tell theirs they wait), then conversations. An actor whose snapshot
/// cannot be read is left out with an error in the log; the node starts.
async fn resume_actors(
    engine: &Arc<EngineContext>,
    stored: &[ActorKey],
) -> Result<(), EngineError> {
    let mut agents = 0;
    for key in stored
        .iter()
        .filter(|key| matches!(key, ActorKey::Agent(_)))
    {
        match node::activate(engine, key).await {
            Ok(()) => agents += 1,
            Err(error) => tracing::error!(actor = %key.name(), %error, "agent not resumed"),
        }
    }
    for queue in &engine.catalog.config.queues {
        node::activate(engine, &ActorKey::Queue(queue.id.clone())).await?;
    }
    let mut conversations = 0;
    for key in stored {
        if let ActorKey::Conversation(id) = key {
            match node::activate(engine, key).await {
                Ok(()) => conversations += 1,
                Err(error) => {
                    tracing::error!(conversation_id = %id, %error, "conversation not resumed")
                }
            }
        }
    }
    if agents + conversations > 0 {
        tracing::info!(agents, conversations, "resumed from the database");
    }
    Ok(())
}

/// `refresh_token` is answered where tokens are issued, in the gateway's
/// session; reaching the engine means a gateway forwarded it by mistake.
fn tokens_are_the_gateways() -> EngineError {
    EngineError::Internal("refresh_token is answered by the session, not the engine".into())
}
