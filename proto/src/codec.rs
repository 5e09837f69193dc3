//! Framing for both ends of a WebSocket. `switchboard.v1.json` carries one
//! JSON object per text frame; `switchboard.v1.msgpack` carries the same
//! objects as MessagePack maps with named fields in binary frames.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub const JSON_SUBPROTOCOL: &str = "switchboard.v1.json";
pub const MSGPACK_SUBPROTOCOL: &str = "switchboard.v1.msgpack";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Json,
    MsgPack,
}

/// One encoded frame: JSON goes in a text frame, MessagePack in a binary one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    Text(String),
    Binary(Vec<u8>),
}

impl Encoded {
    /// The frame's payload, whichever kind.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Encoded::Text(text) => text.into_bytes(),
            Encoded::Binary(bytes) => bytes,
        }
    }
}

/// A frame that could not be read. `request_id` is set when one could be
/// read, so the `bad_request` reply can name the command it answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub request_id: Option<String>,
    pub message: String,
}

impl DecodeError {
    fn new(request_id: Option<String>, message: impl Into<String>) -> Self {
        Self {
            request_id,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("msgpack: {0}")]
    MsgPack(#[from] rmp_serde::encode::Error),
}

impl Codec {
    /// Both subprotocols, preferred first (JSON is the default).
    pub const ALL: [Codec; 2] = [Codec::Json, Codec::MsgPack];

    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::Json => JSON_SUBPROTOCOL,
            Codec::MsgPack => MSGPACK_SUBPROTOCOL,
        }
    }

    pub fn from_subprotocol(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.subprotocol() == name.trim())
    }

    pub fn encode<T: Serialize>(self, value: &T) -> Result<Encoded, EncodeError> {
        match self {
            Codec::Json => Ok(Encoded::Text(serde_json::to_string(value)?)),
            Codec::MsgPack => Ok(Encoded::Binary(rmp_serde::to_vec_named(value)?)),
        }
    }

    /// Reads a frame into a generic value (either codec).
    pub fn decode_value(self, bytes: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Codec::Json => serde_json::from_slice(bytes)
                .map_err(|error| DecodeError::new(None, format!("malformed JSON: {error}"))),
            Codec::MsgPack => rmp_serde::from_slice(bytes)
                .map_err(|error| DecodeError::new(None, format!("malformed MessagePack: {error}"))),
        }
    }

    /// Reads any frame into `T` (clients read server frames with this),
    /// straight from the bytes: no intermediate `Value`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, DecodeError> {
        match self {
            Codec::Json => serde_json::from_slice(bytes)
                .map_err(|error| DecodeError::new(None, error.to_string())),
            Codec::MsgPack => rmp_serde::from_slice(bytes)
                .map_err(|error| DecodeError::new(None, error.to_string())),
        }
    }

    /// Reads one client command: `{"type", "request_id", ...fields}`.
    pub fn decode_command<C: DeserializeOwned>(
        self,
        bytes: &[u8],
    ) -> Result<(String, C), DecodeError> {
        // A well-formed command is read straight from the bytes; anything
        // else is read again through a `Value`, which names what is wrong
        // (and the request, when it can).
        match self.decode_well_formed_command(bytes) {
            Some(decoded) => Ok(decoded),
            None => self.decode_command_via_value(bytes),
        }
    }

    fn decode_command_via_value<C: DeserializeOwned>(
        self,
        bytes: &[u8],
    ) -> Result<(String, C), DecodeError> {
        let value = self.decode_value(bytes)?;
        let Value::Object(map) = value else {
            return Err(DecodeError::new(None, "a command must be an object"));
        };
        let request_id = match map.get("request_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => {
                return Err(DecodeError::new(
                    None,
                    "request_id must be a non-empty string",
                ))
            }
            None => return Err(DecodeError::new(None, "missing field `request_id`")),
        };
        if !map.contains_key("type") {
            return Err(DecodeError::new(Some(request_id), "missing field `type`"));
        }
        match serde_json::from_value::<C>(Value::Object(map)) {
            Ok(command) => Ok((request_id, command)),
            Err(error) => Err(DecodeError::new(Some(request_id), error.to_string())),
        }
    }

    /// A JSON command and its `request_id` without an intermediate `Value`
    /// (two passes over the bytes, the first allocating nothing); `None`
    /// when either does not read, or the frame is not a JSON object.
    ///
    /// Only JSON, and only objects: read straight into the types, serde
    /// also takes a sequence for a struct (`["logout"]` would be a logout)
    /// and, in MessagePack, byte strings for strings and integer keys for
    /// fields, all of which the `Value` path refuses.
    fn decode_well_formed_command<C: DeserializeOwned>(self, bytes: &[u8]) -> Option<(String, C)> {
        #[derive(Deserialize)]
        struct RequestId<'a> {
            #[serde(borrow)]
            request_id: Cow<'a, str>,
        }
        if self != Codec::Json || bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let id = serde_json::from_slice::<RequestId>(bytes).ok()?;
        let command = serde_json::from_slice::<C>(bytes).ok()?;
        (!id.request_id.is_empty()).then(|| (id.request_id.into_owned(), command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{AgentCommand, CustomerCommand, TransferTarget};
    use crate::event::{Ack, ServerFrame};
    use crate::ids::*;
    use serde_json::json;

    fn bytes(codec: Codec, value: &Value) -> Vec<u8> {
        codec.encode(value).unwrap().into_bytes()
    }

    #[test]
    fn commands_decode_the_same_in_both_codecs() {
        let frame = json!({"type": "transfer", "request_id": "r1",
            "conversation_id": "c-1", "to": {"agent": "bob"}});
        for codec in Codec::ALL {
            let (request_id, command): (String, AgentCommand) =
                codec.decode_command(&bytes(codec, &frame)).unwrap();
            assert_eq!(request_id, "r1");
            assert_eq!(
                command,
                AgentCommand::Transfer {
                    conversation_id: ConversationId::new("c-1"),
                    to: TransferTarget::Agent(AgentId::new("bob")),
                }
            );
        }
    }

    #[test]
    fn well_formed_commands_read_the_same_without_a_value() {
        let frames = [
            json!({"type": "send", "request_id": "r1", "conversation_id": "c-1",
                "text": "caf\u{e9} \"quoted\"", "client_msg_id": "m-1"}),
            json!({"type": "set_state", "request_id": "r\\2", "state": "idle", "reason": "lunch"}),
            json!({"request_id": "r3", "type": "resume", "conversation_id": "c-1", "after_seq": 7}),
            json!({"type": "transfer", "request_id": "r4", "conversation_id": "c-1",
                "to": {"queue": "sales"}, "unknown": [1, 2]}),
        ];
        for frame in &frames {
            let bytes = bytes(Codec::Json, frame);
            let direct = Codec::Json.decode_well_formed_command::<AgentCommand>(&bytes);
            let via_value = Codec::Json
                .decode_command_via_value::<AgentCommand>(&bytes)
                .ok();
            assert!(direct.is_some(), "{frame}");
            assert_eq!(direct, via_value, "{frame}");
        }
    }

    #[test]
    fn a_command_that_is_not_an_object_is_refused() {
        // Serde reads a sequence into a struct: `["logout"]` must not log out.
        for frame in [json!(["logout"]), json!(["end"]), json!(["typing"])] {
            for codec in Codec::ALL {
                let bytes = bytes(codec, &frame);
                let agent = codec.decode_command::<AgentCommand>(&bytes);
                let customer = codec.decode_command::<CustomerCommand>(&bytes);
                for error in [agent.err(), customer.err()] {
                    let error = error.expect("refused");
                    assert_eq!(
                        error.message, "a command must be an object",
                        "{codec:?} {frame}"
                    );
                    assert_eq!(error.request_id, None);
                }
            }
        }
    }

    #[test]
    fn unknown_type_is_an_error_naming_the_request() {
        let frame = json!({"type": "dance", "request_id": "r9"});
        let error = Codec::Json
            .decode_command::<CustomerCommand>(&bytes(Codec::Json, &frame))
            .unwrap_err();
        assert_eq!(error.request_id.as_deref(), Some("r9"));
        assert!(
            error.message.contains("unknown variant"),
            "{}",
            error.message
        );
    }

    #[test]
    fn missing_field_is_an_error_naming_the_field() {
        let frame = json!({"type": "send", "request_id": "r2", "text": "hi"});
        let error = Codec::MsgPack
            .decode_command::<CustomerCommand>(&bytes(Codec::MsgPack, &frame))
            .unwrap_err();
        assert_eq!(error.request_id.as_deref(), Some("r2"));
        assert!(error.message.contains("client_msg_id"), "{}", error.message);
    }

    #[test]
    fn malformed_frame_is_an_error_without_request_id() {
        let error = Codec::Json
            .decode_command::<CustomerCommand>(b"{not json")
            .unwrap_err();
        assert_eq!(error.request_id, None);
        assert!(error.message.starts_with("malformed JSON"));
    }

    #[test]
    fn server_frames_round_trip_in_both_codecs() {
        let mut ack = Ack::new("r3");
        ack.seq = Some(7);
        ack.id = Some(MessageId::new("c-1-7"));
        let frame = ServerFrame::Ack(ack);
        for codec in Codec::ALL {
            let encoded = codec.encode(&frame).unwrap().into_bytes();
            let back: ServerFrame = codec.decode(&encoded).unwrap();
            assert_eq!(back, frame);
            let value = codec.decode_value(&encoded).unwrap();
            assert_eq!(value["type"], "ack");
            assert_eq!(value["seq"], 7);
        }
    }
}
