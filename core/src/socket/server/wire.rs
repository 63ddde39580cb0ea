//! The server's side of the wire: encoding the packets it sends itself,
//! and logging the packets it refuses.

use serde::Serialize;

use super::super::packet::RESERVED_EVENTS;
use super::events::ServerError;
use crate::engine::Message;
use crate::parser::{DecodeError, EncodeError, Encoded, OutPacket, Parser};
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

/// Log a client's packet that failed to decode (the session is then closed
/// as a parse error). A limit reached is an operator's concern, so it is a
/// warning with the figures; other invalid input is logged for debugging.
pub(super) fn log_invalid_packet(eio: &str, err: &DecodeError) {
    match err {
        DecodeError::TooManyAttachmentBytes {
            pending,
            incoming,
            limit,
        } => tracing::warn!(
            %eio,
            pending,
            incoming,
            limit,
            "binary attachments over max_pending_attachment_bytes: closing the session"
        ),
        _ => tracing::debug!(%eio, %err, "invalid packet"),
    }
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
