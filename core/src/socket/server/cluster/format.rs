//! The formats on the bus, behind one interface the seam uses.

use rand_core::RngCore;

use super::ops::{Inbound, Outbound};
use super::ClusterFormat;
use crate::cluster::{BusCommand, BusDecodeError, BusLimits};
use crate::Str;

mod node;
mod python;
mod streams;

pub(super) use streams::StreamsFormat;

/// One node's side of a format.
pub(super) enum Format {
    Python(python::PythonFormat),
    Node(node::NodeFormat),
    Streams(StreamsFormat),
}

impl Format {
    pub(super) fn new(
        format: &ClusterFormat,
        node_id: Option<Str>,
        rng: &mut dyn RngCore,
    ) -> Format {
        match format {
            ClusterFormat::Python { channel } => {
                Format::Python(python::PythonFormat::new(channel.clone(), node_id, rng))
            }
            ClusterFormat::Node { prefix, sharded } => Format::Node(node::NodeFormat::new(
                prefix.clone(),
                *sharded,
                node_id,
                rng,
            )),
            ClusterFormat::Streams(config) => {
                Format::Streams(StreamsFormat::new(config.clone(), node_id, rng))
            }
        }
    }

    /// The streams format, when it is this one.
    pub(super) fn streams(&mut self) -> Option<&mut StreamsFormat> {
        match self {
            Format::Streams(f) => Some(f),
            _ => None,
        }
    }

    /// This node's id on the bus.
    pub(super) fn node_id(&self) -> &str {
        match self {
            Format::Python(f) => f.node_id(),
            Format::Node(f) => f.node_id(),
            Format::Streams(f) => f.node_id(),
        }
    }

    /// The channels to listen on for namespace `nsp` (`created`), or to
    /// stop listening on.
    pub(super) fn subscriptions(&self, nsp: &Str, created: bool, out: &mut Vec<BusCommand>) {
        match self {
            Format::Python(f) => f.subscriptions(nsp, created, out),
            Format::Node(f) => f.subscriptions(nsp, created, out),
            Format::Streams(f) => f.subscriptions(nsp, created, out),
        }
    }

    /// Publish `op`; false when the format cannot express it.
    pub(super) fn encode(&mut self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        match self {
            Format::Python(f) => f.encode(op, out),
            Format::Node(f) => f.encode(op, out),
            Format::Streams(f) => f.encode(op, out),
        }
    }

    /// A message from the bus; `None` for this node's own messages and
    /// those not meant for it.
    pub(super) fn decode(
        &self,
        channel: &str,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        match self {
            Format::Python(f) => f.decode(channel, payload, limits),
            Format::Node(f) => f.decode(channel, payload, limits),
            Format::Streams(f) => f.decode(payload, limits),
        }
    }

    /// How to count the nodes that will answer a request on `nsp`.
    pub(super) fn count_command(&self, nsp: &Str) -> Option<BusCommand> {
        match self {
            Format::Python(_) => None,
            Format::Node(f) => Some(f.count_command(nsp)),
            Format::Streams(f) => Some(f.count_command(nsp)),
        }
    }

    /// Whether rooms have bus channels of their own (and whether a
    /// socket's own room does): then the node listens on the channels of
    /// its rooms.
    pub(super) fn room_channels(&self) -> Option<bool> {
        match self {
            Format::Python(_) | Format::Streams(_) => None,
            Format::Node(f) => f.room_channels(),
        }
    }

    /// Listen on (or stop listening on) a room's channel.
    pub(super) fn room_subscription(
        &self,
        nsp: &Str,
        room: &Str,
        created: bool,
        out: &mut Vec<BusCommand>,
    ) {
        if let Format::Node(f) = self {
            f.room_subscription(nsp, room, created, out);
        }
    }

    /// Whether acknowledgements are asked of one socket only (python's
    /// callbacks name one sid).
    pub(super) fn acks_from_one_socket(&self) -> bool {
        matches!(self, Format::Python(_))
    }
}
