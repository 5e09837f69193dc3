//! Messages that may cross nodes. Each actor message implements [`Routed`]
//! (a stable name, serde for it and its reply); each actor kind implements
//! [`Activate`] (find it running here, or rebuild it from its snapshot).
//! [`dispatch`] is where a message from the bus meets its actor.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

use super::key::ActorKey;
use crate::context::EngineContext;
use crate::error::EngineError;

/// An actor message that can travel in a cluster envelope.
pub trait Routed:
    Message<Result = Self::Reply> + Serialize + DeserializeOwned + Send + 'static
{
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// Unique among all routed messages; names the handler on the far side.
    const NAME: &'static str;
}

/// Implements [`Routed`] for messages: `routed!(Type => "kind.name", ...)`.
#[macro_export]
macro_rules! routed {
    ($($message:ty => $name:literal),* $(,)?) => {
        $(impl $crate::cluster::routed::Routed for $message {
            type Reply = <$message as actix::Message>::Result;
            const NAME: &'static str = $name;
        })*
    };
}

/// An actor kind the cluster can place on a node.
pub trait Activate: Actor<Context = Context<Self>> {
    /// The actor running on this node, started from its stored snapshot if
    /// it is not running yet. Called only on the actor's owner.
    fn activate(
        engine: &Arc<EngineContext>,
        key: &ActorKey,
    ) -> BoxFuture<'static, Result<Addr<Self>, EngineError>>;
}

/// The reply half of a delivered ask: await it for the encoded answer.
pub type PendingReply = BoxFuture<'static, Result<Vec<u8>, EngineError>>;

/// Delivers an encoded message to its actor on this node. Returns once the
/// message is in the actor's mailbox (so messages keep their order); the
/// returned future, for asks, yields the encoded reply.
pub async fn dispatch<A, M>(
    engine: Arc<EngineContext>,
    key: ActorKey,
    body: Vec<u8>,
    wants_reply: bool,
) -> Result<Option<PendingReply>, EngineError>
where
    A: Activate + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Routed,
{
    let message: M = rmp_serde::from_slice(&body)
        .map_err(|error| EngineError::Internal(format!("undecodable {}: {error}", M::NAME)))?;
    let addr = A::activate(&engine, &key).await?;
    if !wants_reply {
        addr.do_send(message);
        return Ok(None);
    }
    let request = addr.send(message);
    Ok(Some(Box::pin(async move {
        let reply = request.await?;
        rmp_serde::to_vec_named(&reply)
            .map_err(|error| EngineError::Internal(format!("unencodable reply: {error}")))
    })))
}

/// An actor's stored snapshot, decoded; `None` when it has none.
pub async fn load_snapshot<T: DeserializeOwned>(
    engine: &EngineContext,
    key: &ActorKey,
) -> Result<Option<T>, EngineError> {
    let Some(bytes) = engine.store.load_state(key).await? else {
        return Ok(None);
    };
    rmp_serde::from_slice(&bytes)
        .map(Some)
        .map_err(|error| EngineError::Internal(format!("{} snapshot: {error}", key.name())))
}

/// `key` names an actor of another kind than the one asked to activate.
pub fn wrong_kind(key: &ActorKey, kind: &str) -> EngineError {
    EngineError::Internal(format!("{} is not {kind}", key.name()))
}

/// Encodes a routed message for an envelope.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    rmp_serde::to_vec_named(value)
        .map_err(|error| EngineError::Internal(format!("unencodable message: {error}")))
}

/// Decodes a routed reply.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EngineError> {
    rmp_serde::from_slice(bytes)
        .map_err(|error| EngineError::Internal(format!("undecodable reply: {error}")))
}

/// Stops an actor without a word to anyone: another node owns it now.
/// Local only (never routed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;
