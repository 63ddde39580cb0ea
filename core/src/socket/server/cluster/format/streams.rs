//! `@socket.io/redis-streams-adapter` 0.3 as the seam's operations: the
//! sharded adapter's messages, appended to a Redis stream or published on
//! pub/sub as [`crate::cluster::node::streams`] says. What waits for the
//! stream (local delivery, restores) is the seam's (`cluster/streams.rs`).

use rand_core::RngCore;

use super::super::ops::{Inbound, Outbound};
use super::node::{node_uid, sharded_inbound, sharded_message};
use crate::cluster::node::streams::decode_entry;
use crate::cluster::node::{ShardedData, ShardedMessage, StreamsConfig};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits};
use crate::Str;

pub(in super::super) struct StreamsFormat {
    config: StreamsConfig,
    uid: String,
    /// Names the answers to appends, ranges and takes.
    next_token: u64,
}

impl StreamsFormat {
    pub(in super::super) fn new(
        config: StreamsConfig,
        node_id: Option<Str>,
        rng: &mut dyn RngCore,
    ) -> StreamsFormat {
        StreamsFormat {
            config,
            uid: node_uid(node_id, rng),
            next_token: 0,
        }
    }

    pub(in super::super) fn node_id(&self) -> &str {
        &self.uid
    }

    pub(in super::super) fn config(&self) -> &StreamsConfig {
        &self.config
    }

    pub(in super::super) fn next_token(&mut self) -> u64 {
        self.next_token = self.next_token.wrapping_add(1);
        self.next_token
    }

    /// The namespace's public and private channels, and its stream.
    pub(in super::super) fn subscriptions(
        &self,
        nsp: &Str,
        created: bool,
        out: &mut Vec<BusCommand>,
    ) {
        for command in self.config.subscriptions(nsp, &self.uid) {
            out.push(match (command, created) {
                (BusCommand::Subscribe { channel, kind }, false) => {
                    BusCommand::Unsubscribe { channel, kind }
                }
                (command, _) => command,
            });
        }
        // Other namespaces may share the stream: following it again is a
        // no-op, and it is never unfollowed.
        if created {
            out.push(BusCommand::StreamFollow {
                stream: self.config.stream_for(nsp),
                from: None,
            });
        }
    }

    /// Appends (answered with the command's token) or publishes `op`.
    pub(in super::super) fn encode(&mut self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        let Some((message, response_to)) = sharded_message(&self.uid, op) else {
            return false;
        };
        out.push(match response_to {
            Some(uid) => self.config.publish_response(&uid, &message),
            None => {
                let token = self.next_token();
                self.config.publish(&message, token)
            }
        });
        true
    }

    /// A pub/sub message (requests and responses; always MessagePack).
    pub(in super::super) fn decode(
        &self,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        sharded_inbound(&self.uid, ShardedMessage::decode(payload, limits)?)
    }

    /// A stream entry, and whether its id may be the receivers' offset (a
    /// broadcast of an event without ack id, as the reference decides).
    pub(in super::super) fn decode_entry(
        &self,
        fields: &[(crate::Bytes, crate::Bytes)],
        limits: &BusLimits,
    ) -> Result<Option<(Inbound, bool)>, BusDecodeError> {
        let message = decode_entry(fields, limits)?;
        let offset = matches!(
            &message.data,
            ShardedData::Broadcast { packet, request_id: None, .. } if packet.id.is_none()
        );
        Ok(sharded_inbound(&self.uid, message)?.map(|inbound| (inbound, offset)))
    }

    pub(in super::super) fn count_command(&self, nsp: &Str) -> BusCommand {
        self.config.count_nodes(nsp)
    }
}
