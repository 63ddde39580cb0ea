//! The Node redis-adapter's formats as the seam's operations.

use rand_core::RngCore;

use super::super::ops::{Inbound, Outbound};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits};
use crate::Str;

pub(in super::super) struct NodeFormat {
    prefix: Str,
    sharded: bool,
    uid: String,
}

impl NodeFormat {
    pub(in super::super) fn new(
        prefix: Str,
        sharded: bool,
        node_id: Option<Str>,
        rng: &mut dyn RngCore,
    ) -> NodeFormat {
        let uid = node_id.map_or_else(
            || {
                let mut bytes = [0u8; 6];
                rng.fill_bytes(&mut bytes);
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            },
            |id| id.to_string(),
        );
        NodeFormat {
            prefix,
            sharded,
            uid,
        }
    }

    pub(in super::super) fn node_id(&self) -> &str {
        &self.uid
    }

    pub(in super::super) fn subscriptions(
        &self,
        _nsp: &Str,
        _created: bool,
        _out: &mut Vec<BusCommand>,
    ) {
    }

    pub(in super::super) fn encode(
        &mut self,
        _op: Outbound<'_>,
        _out: &mut Vec<BusCommand>,
    ) -> bool {
        let _ = (&self.prefix, self.sharded);
        false
    }

    pub(in super::super) fn decode(
        &self,
        _channel: &str,
        _payload: &[u8],
        _limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        Ok(None)
    }

    pub(in super::super) fn count_command(&self, _nsp: &Str) -> BusCommand {
        BusCommand::CountSubscribers {
            channel: self.prefix.clone(),
            sharded: self.sharded,
        }
    }
}
