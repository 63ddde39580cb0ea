//! Encoding the packets the server sends itself.

use serde::Serialize;

use super::super::packet::RESERVED_EVENTS;
use super::events::ServerError;
use crate::engine::Message;
use crate::parser::{EncodeError, Encoded, OutPacket, Parser};
use crate::Str;

/// `{"sid": .., "pid": ..}`: the CONNECT reply.
#[derive(Serialize)]
pub(super) struct ConnectReply<'a> {
    pub(super) sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pid: Option<&'a str>,
}

/// `{"message": .., "data": ..}`: the CONNECT_ERROR payload.
#[derive(Serialize)]
pub(super) struct ConnectErrorBody<'a, D: ?Sized> {
    pub(super) message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<&'a D>,
}

/// Encode one packet into the messages that carry it.
pub(super) fn encode_packet<P: Parser, A: Serialize + ?Sized>(
    parser: &P,
    scratch: &mut Encoded,
    packet: &OutPacket<'_, A>,
) -> Result<Vec<Message>, ServerError> {
    parser.encode(packet, scratch)?;
    let data = scratch.data.split().freeze();
    let first = if scratch.binary {
        Message::Binary(data)
    } else {
        Message::Text(Str::try_from(data).map_err(|_| {
            ServerError::Encode(EncodeError::Serialize(
                "parser produced non-UTF-8 text".into(),
            ))
        })?)
    };
    let mut messages = Vec::with_capacity(1 + scratch.attachments.len());
    messages.push(first);
    messages.extend(scratch.attachments.drain(..).map(Message::Binary));
    Ok(messages)
}

pub(super) fn disconnect_packet(nsp: &str) -> OutPacket<'_, ()> {
    OutPacket::Disconnect { nsp }
}

pub(super) fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) => bytes.len(),
    }
}

pub(super) fn check_event_name(event: &str) -> Result<(), ServerError> {
    if RESERVED_EVENTS.contains(&event) {
        Err(ServerError::ReservedEvent)
    } else {
        Ok(())
    }
}

pub(super) fn check_namespace(nsp: &str) -> Result<(), ServerError> {
    if nsp.starts_with('/') {
        Ok(())
    } else {
        Err(ServerError::BadNamespace)
    }
}
