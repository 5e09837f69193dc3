//! Customers: who a new chat is with, a returning customer's history, and
//! erasure. The rules: only a signed identity links chats (a typed name or
//! email never does); an agent may look up a customer it served (a leg in
//! one of their conversations), a supervisor any; nobody is erased while
//! a conversation of theirs is live.

use switchboard_proto::model::{ConversationPage, Customer, CustomerProfile};
use switchboard_proto::{CustomerId, Timestamp};

use crate::error::EngineError;
use crate::events::DomainEvent;
use crate::records::{ConversationQuery, Viewer};
use crate::storage::customers::EraseOutcome;
use crate::storage::records::SearchFilter;
use crate::Engine;

/// A customer's identity as their web site signed it, already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The web site's own id for them (`sub`).
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Engine {
    /// Who a new chat is with: the verified customer (created on their
    /// first chat), or a new anonymous one. What the client said of the
    /// customer's id or verification is replaced, never trusted.
    pub(crate) async fn customer_for_chat(
        &self,
        typed: Customer,
        identity: Option<VerifiedIdentity>,
        now: Timestamp,
    ) -> Result<Customer, EngineError> {
        let Some(identity) = identity else {
            return Ok(Customer {
                id: Some(CustomerId::generate()),
                name: typed.name,
                email: typed.email,
                verified: false,
                previous_conversations: Some(0),
            });
        };
        // The identity's name and email update the profile; what was typed
        // only fills a new profile's gaps, never changes a known one.
        let found = self
            .database()
            .identify_customer(
                &identity.external_id,
                identity.name.as_deref(),
                identity.email.as_deref(),
                (&typed.name, typed.email.as_deref()),
                now,
            )
            .await?;
        Ok(Customer {
            id: Some(found.id),
            name: found.name,
            email: found.email,
            verified: true,
            previous_conversations: Some(found.previous_conversations),
        })
    }

    async fn check_customer_access(
        &self,
        id: &CustomerId,
        viewer: &Viewer,
    ) -> Result<(), EngineError> {
        if viewer.supervisor
            || self
                .database()
                .agent_served_customer(&viewer.agent, id)
                .await?
        {
            Ok(())
        } else {
            Err(EngineError::Forbidden(
                "only agents who served this customer, or supervisors, may look them up".into(),
            ))
        }
    }

    /// `GET /api/v1/customers/{id}`.
    pub async fn customer(
        &self,
        id: &CustomerId,
        viewer: &Viewer,
    ) -> Result<CustomerProfile, EngineError> {
        // Access first: an agent learns nothing of ids it may not see.
        self.check_customer_access(id, viewer).await?;
        self.database()
            .customer(id)
            .await?
            .ok_or_else(|| EngineError::not_found("customer", id))
    }

    /// `GET /api/v1/customers/{id}/conversations`: every conversation of
    /// theirs, whoever handled it (the desktop's history panel).
    pub async fn customer_conversations(
        &self,
        id: &CustomerId,
        limit: Option<usize>,
        cursor: Option<&str>,
        viewer: &Viewer,
    ) -> Result<ConversationPage, EngineError> {
        self.check_customer_access(id, viewer).await?;
        if self.database().customer(id).await?.is_none() {
            return Err(EngineError::not_found("customer", id));
        }
        let everyone = Viewer {
            supervisor: true,
            ..viewer.clone()
        };
        let filter = SearchFilter {
            customer: Some(id.clone()),
            ..ConversationQuery::default().filter(&everyone)?
        };
        self.search_filtered(filter, limit, cursor).await
    }

    /// `DELETE /api/v1/customers/{id}` (admin): returns how many
    /// conversations were erased.
    pub async fn erase_customer(&self, id: &CustomerId) -> Result<u64, EngineError> {
        match self.database().erase_customer(id).await? {
            EraseOutcome::Erased { conversations } => {
                tracing::info!(customer_id = %id, conversations, "customer erased");
                let erased = DomainEvent::customer_erased(id, conversations, Timestamp::now());
                self.inner.store.append_events(vec![erased]).await?;
                Ok(conversations)
            }
            EraseOutcome::Live => Err(EngineError::invalid_state(
                "the customer has a live conversation: end it first",
            )),
            EraseOutcome::Unknown => Err(EngineError::not_found("customer", id)),
        }
    }
}
