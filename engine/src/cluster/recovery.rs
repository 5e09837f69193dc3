//! After Redis lost its data (a flush, a restart without persistence), the
//! record still lists conversations as live whose state no node can load
//! again. Each node looks for them now and then and closes them in the
//! record with a system message that says what happened: a conversation is
//! never silently gone. Idempotent: nodes racing close each one once.

use std::sync::Arc;
use std::time::Duration;
use switchboard_proto::Timestamp;

use super::key::ActorKey;
use crate::context::EngineContext;

/// What the customer and the agents read in the closed conversation.
pub const INTERRUPTED: &str =
    "This conversation was interrupted by a system failure and has been closed. Please start a new chat.";

/// How often a node looks.
const EVERY: Duration = Duration::from_secs(5);

/// A conversation younger than this is left alone: its first write reaches
/// the record a moment before Redis.
const GRACE: Duration = Duration::from_secs(10);

/// Closes, in the record, each live conversation whose snapshot is gone.
/// Returns how many it closed.
pub async fn close_lost_conversations(engine: &EngineContext) -> usize {
    let cutoff = Timestamp(Timestamp::now().millis() - GRACE.as_millis() as i64);
    let candidates = match engine.database.live_conversations_before(cutoff).await {
        Ok(candidates) => candidates,
        Err(error) => {
            tracing::warn!(%error, "recovery: live conversations not listed");
            return 0;
        }
    };
    let mut closed = 0;
    for id in candidates {
        if engine.directory.local_conversation(&id).is_some() {
            continue;
        }
        let key = ActorKey::Conversation(id.clone());
        match engine.store.load_state(&key).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            // Redis does not answer: nothing can be told now.
            Err(_) => return closed,
        }
        match engine
            .database
            .close_interrupted(&id, INTERRUPTED, Timestamp::now())
            .await
        {
            Ok(true) => {
                tracing::warn!(conversation_id = %id, "live state lost; closed in the record");
                metrics::counter!("switchboard_conversations_interrupted_total").increment(1);
                closed += 1;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(conversation_id = %id, %error, "recovery: not closed"),
        }
    }
    closed
}

/// Runs [`close_lost_conversations`] every few seconds until the node resigns.
pub async fn keep_recovering(engine: Arc<EngineContext>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if engine.is_resigned() {
            return;
        }
        if engine.lease_valid() {
            close_lost_conversations(&engine).await;
        }
    }
}
