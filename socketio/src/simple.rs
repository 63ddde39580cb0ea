//! python-socketio's `SimpleClient`: one namespace, events pulled with
//! [`SimpleClient::receive`] instead of pushed to handlers.
//!
//! Events wait for `receive` in a queue bounded by
//! [`ClientBuilder::max_received_events`]: an application that stops
//! receiving while the server keeps sending is disconnected (logged)
//! instead of holding events without end, as python's would.
//!
//! Reconnection is hidden, as in python's: a connection that drops and
//! comes back does not end [`SimpleClient::receive`]; it ends once the
//! client is disconnected for good (by the application, by the server, or
//! because reconnection gave up). Dropping every handle on a
//! `SimpleClient` disconnects it.

use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use serde::Serialize;
use socketio_core::engine::Transport;
use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;
use socketio_core::Str;

use crate::client::{Client, ClientAck, ClientBuilder, ClientSocket};
use crate::error::{Error, Result};

/// A client that receives events by asking for them. Made by
/// [`ClientBuilder::connect_simple`].
#[derive(Clone)]
pub struct SimpleClient {
    client: Client,
    socket: ClientSocket,
    events: async_channel::Receiver<(String, Args)>,
}

impl std::fmt::Debug for SimpleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleClient")
            .field("nsp", &self.socket.ns())
            .finish()
    }
}

pub(crate) async fn connect(builder: ClientBuilder) -> Result<SimpleClient> {
    let bound = builder.received_events_bound().max(1);
    let (tx, events) = async_channel::bounded(bound);
    let nsp = builder.first_namespace();
    let on_disconnect_tx = tx.clone();
    let on_done_tx = tx.clone();
    let builder = builder
        .on_any(
            move |socket: ClientSocket, name: Str, args: Args, _ack: Option<ClientAck>| {
                // Queued without waiting, so the handler finishes inline and
                // events keep their arrival order.
                if let Err(async_channel::TrySendError::Full(_)) =
                    tx.try_send((name.to_string(), args))
                {
                    // Events still in flight must not slip in once receive
                    // makes room: the queue ends here, what it holds is kept.
                    tx.close();
                    let why = format!("{bound} events not received (max_received_events)");
                    socket.client().close_for_good(&why);
                }
                async {}
            },
        )
        .on_disconnect(move |_s: ClientSocket, reason: DisconnectReason| {
            // A lost connection is reconnected underneath: only a
            // disconnection meant by either side ends the queue here
            // (reconnection giving up ends it below).
            let meant = matches!(
                reason,
                DisconnectReason::ClientDisconnect | DisconnectReason::ServerDisconnect
            );
            if meant {
                on_disconnect_tx.close();
            }
            async {}
        });
    let client = builder.connect().await?;
    let done = client.done();
    client.runtime().spawn(Box::pin(async move {
        done.await;
        on_done_tx.close();
    }));
    let socket = client.socket(nsp.as_deref().unwrap_or("/"));
    Ok(SimpleClient {
        client,
        socket,
        events,
    })
}

impl SimpleClient {
    /// The socket id while connected.
    pub fn sid(&self) -> Option<String> {
        self.socket.sid()
    }

    /// The transport in use.
    pub fn transport(&self) -> Option<Transport> {
        self.client.transport()
    }

    /// Whether the namespace is connected now (false while reconnecting).
    pub fn connected(&self) -> bool {
        self.sid().is_some()
    }

    /// Send a `message` event.
    pub fn send<A: Serialize + ?Sized>(&self, data: &A) -> Result<()> {
        self.socket.send(data)
    }

    /// Emit an event.
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.socket.emit(event, args)
    }

    /// Emit and wait for the acknowledgement.
    pub async fn call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<Args> {
        self.socket.call(event, args, timeout).await
    }

    /// The next event (name and arguments), waiting at most `timeout`
    /// (forever with `None`), across reconnections. Events received before
    /// the client was disconnected for good are still handed out; then
    /// [`Error::Disconnected`].
    pub async fn receive(&self, timeout: Option<Duration>) -> Result<(String, Args)> {
        let next = Box::pin(self.events.recv());
        match timeout {
            None => next.await.map_err(|_| Error::Disconnected),
            Some(limit) => {
                let timer = self.client.runtime().sleep_until(Instant::now() + limit);
                match select(next, timer).await {
                    Either::Left((event, _)) => event.map_err(|_| Error::Disconnected),
                    Either::Right(_) => Err(Error::Timeout),
                }
            }
        }
    }

    /// Disconnect for good.
    pub async fn disconnect(&self) {
        self.client.disconnect().await;
        self.events.close();
    }

    /// The full client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
