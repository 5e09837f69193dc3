//! What the record answers people: a search over every conversation kept,
//! an export of them, one conversation's transcript. The rule of who sees
//! what lives here: a supervisor sees every conversation; an agent only
//! those it had a leg in.

use switchboard_proto::model::{ConversationPage, ConversationState, Message};
use switchboard_proto::{AgentId, ConversationId, CustomerId, Timestamp};
use tokio::sync::mpsc;

use crate::error::EngineError;
use crate::storage::records::{Cursor, SearchFilter, MAX_SEARCH_WORDS};
use crate::storage::StorageError;
use crate::Engine;

/// Most conversations on one page.
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
/// Longest `q` taken, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A search as asked: the filters of `GET /api/v1/conversations`.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub q: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<AgentId>,
    pub customer: Option<CustomerId>,
    pub state: Option<ConversationState>,
    pub wrap_up: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub agent: AgentId,
    pub supervisor: bool,
}

impl ConversationQuery {
    /// The filter, or why the query is refused (nothing is run then).
    pub(crate) fn filter(self, viewer: &Viewer) -> Result<SearchFilter, EngineError> {
        let words = match &self.q {
            None => Vec::new(),
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(EngineError::BadRequest(format!(
                    "q: at most {MAX_QUERY_CHARS} characters"
                )))
            }
            Some(q) => {
                let words = SearchFilter::words_of(q);
                if words.is_empty() && !q.trim().is_empty() {
                    return Err(EngineError::BadRequest(
                        "q: no word to search for (letters and digits)".into(),
                    ));
                }
                if words.len() > MAX_SEARCH_WORDS {
                    return Err(EngineError::BadRequest(format!(
                        "q: at most {MAX_SEARCH_WORDS} words"
                    )));
                }
                words
            }
        };
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(EngineError::BadRequest("from: after to".into()));
            }
        }
        Ok(SearchFilter {
            words,
            queue: self.queue,
            agent: self.agent,
            customer: self.customer,
            state: self.state,
            wrap_up: self.wrap_up,
            from: self.from,
            to: self.to,
            visible_to: (!viewer.supervisor).then(|| viewer.agent.clone()),
        })
    }
}

impl Engine {
    /// `GET /api/v1/conversations`: one page, newest first.
    pub async fn search_conversations(
        &self,
        query: ConversationQuery,
        limit: Option<usize>,
        cursor: Option<&str>,
        viewer: &Viewer,
    ) -> Result<ConversationPage, EngineError> {
        let filter = query.filter(viewer)?;
        self.search_filtered(filter, limit, cursor).await
    }

    /// One page of `filter`, `limit` and `cursor` checked first.
    pub(crate) async fn search_filtered(
        &self,
        filter: SearchFilter,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<ConversationPage, EngineError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(EngineError::BadRequest(format!(
                "limit: from 1 to {MAX_PAGE}"
            )));
        }
        let after = match cursor {
            None => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                EngineError::BadRequest(
                    "cursor: not one this server gave; start again without it".into(),
                )
            })?),
        };
        Ok(self.database().search(filter, after, limit).await?)
    }

    /// `GET /api/v1/conversations/export`: every row the query selects,
    /// read a page at a time as the receiver takes them.
    pub fn export_conversations(
        &self,
        query: ConversationQuery,
        viewer: &Viewer,
    ) -> Result<
        mpsc::Receiver<Result<switchboard_proto::model::ConversationExportRow, StorageError>>,
        EngineError,
    > {
        let filter = query.filter(viewer)?;
        Ok(self.database().export(filter))
    }

    /// `GET /api/v1/conversations/{id}/transcript`: the thread, for an agent
    /// who took part or a supervisor.
    pub async fn transcript(
        &self,
        id: &ConversationId,
        viewer: &Viewer,
    ) -> Result<Vec<Message>, EngineError> {
        let record = self
            .conversation_record(id, &viewer.agent, viewer.supervisor)
            .await?;
        Ok(record.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Viewer {
        Viewer {
            agent: AgentId::new("bob"),
            supervisor: false,
        }
    }

    #[test]
    fn an_agent_searches_only_conversations_it_had_a_leg_in() {
        let filter = ConversationQuery::default().filter(&agent()).unwrap();
        assert_eq!(filter.visible_to, Some(AgentId::new("bob")));
        let supervisor = Viewer {
            supervisor: true,
            ..agent()
        };
        let filter = ConversationQuery::default().filter(&supervisor).unwrap();
        assert_eq!(filter.visible_to, None);
    }

    #[test]
    fn a_query_with_no_word_or_too_many_is_refused() {
        for q in [
            "'; --",
            &"word ".repeat(MAX_SEARCH_WORDS + 1),
            &"x".repeat(MAX_QUERY_CHARS + 1),
        ] {
            let query = ConversationQuery {
                q: Some(q.to_owned()),
                ..ConversationQuery::default()
            };
            assert!(
                matches!(query.filter(&agent()), Err(EngineError::BadRequest(_))),
                "{q}"
            );
        }
    }
}
