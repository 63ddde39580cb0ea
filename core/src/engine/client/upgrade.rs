//! The upgrade from polling to WebSocket: a probe connection, `2probe` /
//! `3probe`, polling paused, `5`, and the switch.

use super::links::{LinkState, Role};
use super::{Client, ClientAction, ClientEvent, State};
use crate::engine::server::ConnId;

/// The WebSocket being probed, and how far it got.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) conn: ConnId,
    pub(super) stage: ProbeStage,
}

/// How far the WebSocket probe of an upgrade got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeStage {
    /// Connecting or waiting for the 101.
    Handshaking,
    /// `2probe` sent, waiting for `3probe`.
    AwaitingPong,
    /// `3probe` received: waiting for the polling requests in flight to
    /// return before sending `5` and switching.
    Pausing,
}

impl Client {
    /// Starts probing: the open packet offered `websocket` to a polling
    /// session that may upgrade.
    pub(super) fn start_probe(&mut self) {
        let conn = self.open_link(Role::Probe);
        if let State::Polling { probe, .. } = &mut self.state {
            *probe = Some(Probe {
                conn,
                stage: ProbeStage::Handshaking,
            });
        }
    }

    fn probe_mut(&mut self) -> Option<&mut Probe> {
        match &mut self.state {
            State::Polling { probe, .. } => probe.as_mut(),
            _ => None,
        }
    }

    /// The probe's WebSocket is open: `2probe`.
    pub(super) fn send_probe(&mut self) {
        let Some(probe) = self.probe_mut() else {
            return;
        };
        probe.stage = ProbeStage::AwaitingPong;
        let conn = probe.conn;
        let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return;
        };
        let _ = ws.send_text("2probe");
        if let Some(bytes) = ws.poll_transmit() {
            self.actions.push_back(ClientAction::Data(conn, bytes));
        }
    }

    /// `3probe` came: no new polling request from now on.
    pub(super) fn pause_polling(&mut self) {
        if let Some(probe) = self.probe_mut() {
            probe.stage = ProbeStage::Pausing;
        }
    }

    /// The probe failed: closes it; polling carries on.
    pub(super) fn abandon_probe(&mut self) {
        if let Some(conn) = self.probe_mut().map(|probe| probe.conn) {
            // Clears the probe from the state too.
            self.drop_link(conn);
        }
    }

    /// `Polling { probe: Pausing }` -> `WebSocket`, once no polling request
    /// is in flight: `5` on the probe, which carries the session from now
    /// on; the polling connections close.
    pub(super) fn complete_upgrade(&mut self) {
        let ready = match &self.state {
            State::Polling {
                polling,
                probe: Some(probe),
                ..
            } => {
                polling.is_idle()
                    && matches!(
                        self.links.get(&probe.conn).map(|l| &l.state),
                        Some(LinkState::Ws(_))
                    )
            }
            _ => false,
        };
        if !ready {
            return;
        }
        let State::Polling {
            open,
            polling,
            probe: Some(probe),
        } = self.take_state()
        else {
            return;
        };
        if let Some(link) = self.links.get_mut(&probe.conn) {
            link.role = Role::WebSocket;
            if let LinkState::Ws(ws) = &mut link.state {
                let _ = ws.send_text("5");
            }
        }
        self.state = State::WebSocket {
            open,
            conn: probe.conn,
        };
        for conn in polling.conns() {
            self.drop_link(conn);
        }
        self.events.push_back(ClientEvent::Upgraded);
        self.flush_ws();
    }
}
