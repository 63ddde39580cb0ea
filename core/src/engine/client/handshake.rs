//! The open handshake and what it decides: the session's parameters, the
//! ping deadline, whether to probe for an upgrade; and the requests'
//! target, which names the session once it has an id.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Client, ClientEvent, FirstTransport, Open, State, Timer};
use crate::engine::config::{ClientTransports, Transport};
use crate::engine::packet::Handshake;
use crate::http::{Method, Request};

/// The characters of the cache buster (`t=`), URL-safe.
const CACHE_BUSTER_ALPHABET: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// How long the server may stay silent: `pingInterval + pingTimeout`.
fn ping_wait(handshake: &Handshake) -> Duration {
    Duration::from_millis(handshake.ping_interval)
        .saturating_add(Duration::from_millis(handshake.ping_timeout))
}

impl Client {
    /// `Handshaking` -> `Polling` or `WebSocket`: the open packet came.
    pub(super) fn opened(&mut self, now: Instant, handshake: Box<Handshake>) {
        let first = match self.take_state() {
            State::Handshaking(first) => first,
            other => {
                self.state = other;
                return;
            }
        };
        self.timers.stop(&Timer::Connect);
        self.arm_ping(now, ping_wait(&handshake));
        self.events
            .push_back(ClientEvent::Opened(handshake.clone()));
        let open = Open {
            handshake,
            pong_due: false,
        };
        match first {
            FirstTransport::Polling(polling) => {
                let probe = self.config.transports == ClientTransports::Upgrade
                    && open.handshake.upgrades.iter().any(|t| &**t == "websocket");
                self.state = State::Polling {
                    open,
                    polling,
                    probe: None,
                };
                if probe {
                    self.start_probe();
                }
            }
            FirstTransport::WebSocket(conn) => self.state = State::WebSocket { open, conn },
        }
    }

    /// A ping: the pong is owed, and the next ping is due within
    /// `pingInterval + pingTimeout`.
    pub(super) fn pinged(&mut self, now: Instant) {
        let Some(open) = self.open_mut() else {
            return;
        };
        open.pong_due = true;
        let wait = ping_wait(&open.handshake);
        self.arm_ping(now, wait);
    }

    fn arm_ping(&mut self, now: Instant, wait: Duration) {
        match now.checked_add(wait) {
            Some(at) => self.timers.set(Timer::Ping, at),
            None => {
                self.timers.stop(&Timer::Ping);
            }
        }
    }

    /// The request target and headers for a request on `transport`.
    pub(super) fn request(&self, method: Method, transport: Transport, body: Bytes) -> Request {
        let mut target = String::with_capacity(self.config.path.len() + 64);
        target.push_str(&self.config.path);
        target.push_str("?EIO=4&transport=");
        target.push_str(transport.as_str());
        for (name, value) in &self.config.query {
            target.push('&');
            target.push_str(name);
            target.push('=');
            target.push_str(value);
        }
        if let Some(handshake) = self.handshake() {
            target.push_str("&sid=");
            // The server generated it; escape anything that would break the
            // request line rather than trust it.
            for byte in handshake.sid.bytes() {
                if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                    target.push(char::from(byte));
                } else {
                    target.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        if transport == Transport::Polling {
            // Defeats caches between us and the server, as the reference
            // client's timestamp does.
            let mut random = [0u8; 8];
            self.rng.fill(&mut random);
            target.push_str("&t=");
            target.extend(
                random
                    .iter()
                    .map(|b| char::from(CACHE_BUSTER_ALPHABET[usize::from(b & 63)])),
            );
        }
        let mut request =
            Request::new(method, target).with_header("Host", self.config.host.clone());
        for (name, value) in &self.config.headers {
            request.headers.append(name.clone(), value.clone());
        }
        if request.method == Method::Post {
            request = request
                .with_header("Content-Type", "text/plain;charset=UTF-8")
                .with_body(body);
        }
        request
    }
}
