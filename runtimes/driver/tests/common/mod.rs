//! What the bus tests (Redis, AMQP) share: a bus under test with its
//! command sender and what it reported, waits with deadlines, ports.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{select, Either};
use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::Str;
use socketio_driver::Runtime;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bus under test: its command sender and what it reported.
pub struct TestBus<B> {
    pub bus: B,
    pub commands: async_channel::Sender<BusCommand>,
    pub inputs: async_channel::Receiver<BusInput>,
    pub runtime: Arc<dyn Runtime>,
    /// How long [`TestBus::next`] waits.
    pub wait: Duration,
}

/// What a bus reports to.
pub type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

impl<B> TestBus<B> {
    /// `start` the bus on a command channel, collecting its inputs.
    pub fn start(
        runtime: Arc<dyn Runtime>,
        wait: Duration,
        start: impl FnOnce(async_channel::Receiver<BusCommand>, Inputs) -> B,
    ) -> TestBus<B> {
        let (commands, rx) = async_channel::unbounded();
        let (tx, inputs) = async_channel::unbounded();
        let bus = start(
            rx,
            Arc::new(move |input| {
                let _ = tx.try_send(input);
            }),
        );
        TestBus {
            bus,
            commands,
            inputs,
            runtime,
            wait,
        }
    }

    pub fn send(&self, command: BusCommand) {
        self.commands.try_send(command).unwrap();
    }

    /// The next input, within `wait`.
    pub async fn next(&self) -> BusInput {
        self.next_within(self.wait)
            .await
            .expect("no bus input in time")
    }

    pub async fn next_within(&self, wait: Duration) -> Option<BusInput> {
        let recv = std::pin::pin!(self.inputs.recv());
        match select(recv, self.runtime.sleep_until(Instant::now() + wait)).await {
            Either::Left((input, _)) => Some(input.expect("bus inputs closed")),
            Either::Right(_) => None,
        }
    }

    pub async fn expect(&self, want: BusInput) {
        assert_eq!(self.next().await, want);
    }
}

pub fn message(channel: &str, payload: &[u8]) -> BusInput {
    BusInput::Message {
        channel: Str::from(channel),
        payload: Bytes::copy_from_slice(payload),
    }
}
