//! The write-only emitter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use socketio_core::cluster::BusCommand;
use socketio_core::parser::JsonParser;
use socketio_core::socket::{self, Broadcast, ClusterFormat};
use socketio_core::Str;
use socketio_driver::{os_rng, Runtime};

use super::{Adapter, Bus, BUS_QUEUE};
use crate::error::Result;

/// A write-only member of a cluster: emits to the clients of every node
/// without serving any (python's `RedisManager(write_only=True)`, Node's
/// `@socket.io/redis-emitter`).
///
/// ```no_run
/// # async fn run() -> socketio::Result<()> {
/// let emitter = socketio::Emitter::new(&socketio::RedisAdapter::node("redis://127.0.0.1")?);
/// emitter.of("/").to("room").emit("news", &("hello",))?;
/// emitter.flush(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
pub struct Emitter {
    inner: Arc<EmitterInner>,
}

struct EmitterInner {
    core: Mutex<socket::Server<JsonParser>>,
    commands: async_channel::Sender<BusCommand>,
    bus: Arc<dyn Bus>,
}

impl Drop for EmitterInner {
    fn drop(&mut self) {
        self.bus.stop();
    }
}

impl Emitter {
    /// An emitter on this adapter's bus, on the current runtime.
    pub fn new(adapter: &dyn Adapter) -> Emitter {
        Emitter::with_runtime(adapter, crate::runtime::current())
    }

    /// An emitter on this adapter's bus, on `runtime`.
    pub fn with_runtime(adapter: &dyn Adapter, runtime: Arc<dyn Runtime>) -> Emitter {
        let mut cluster = adapter.cluster_config();
        cluster.write_only = true;
        if matches!(
            cluster.format,
            ClusterFormat::Node { .. } | ClusterFormat::Streams(_)
        ) {
            // What @socket.io/redis-emitter calls itself (any uid that is
            // no node's works for the streams adapter).
            cluster.node_id = Some(Str::from_static("emitter"));
        }
        let mut core = socket::Server::new(socket::ServerConfig::default(), JsonParser, os_rng());
        core.enable_cluster(cluster);
        let (tx, rx) = async_channel::bounded(BUS_QUEUE);
        let bus = adapter.start(runtime, rx, Arc::new(|_| {}));
        let emitter = Emitter {
            inner: Arc::new(EmitterInner {
                core: Mutex::new(core),
                commands: tx,
                bus,
            }),
        };
        emitter.drain(&mut emitter.lock());
        emitter
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, socket::Server<JsonParser>> {
        self.inner.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drain(&self, core: &mut socket::Server<JsonParser>) {
        while let Some(command) = core.poll_bus() {
            if self.inner.commands.try_send(command).is_err() {
                tracing::warn!("emitter: bus queue full, message dropped");
            }
        }
    }

    /// The sockets of namespace `nsp` on every node.
    pub fn of(&self, nsp: &str) -> EmitOperator<'_> {
        EmitOperator {
            emitter: self,
            target: Broadcast::namespace(nsp),
        }
    }

    /// The sockets of `/` in `room`.
    pub fn to(&self, room: &str) -> EmitOperator<'_> {
        self.of("/").to(room)
    }

    /// Emit to every socket of `/`.
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.of("/").emit(event, args)
    }

    /// Wait until the broker took everything emitted so far (or `timeout`).
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.bus.flush(Instant::now() + timeout).await
    }
}

/// Selects the sockets an [`Emitter`] reaches.
pub struct EmitOperator<'a> {
    emitter: &'a Emitter,
    target: Broadcast,
}

impl EmitOperator<'_> {
    /// Only members of `room` (several calls: members of any).
    pub fn to(mut self, room: &str) -> Self {
        self.target = self.target.to(room);
        self
    }

    /// Leave out members of `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.target = self.target.except(room);
        self
    }

    /// Emit `event` with `args` (a tuple spreads into several arguments).
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        let mut core = self.emitter.lock();
        core.broadcast(Instant::now(), &self.target, event, args)?;
        self.emitter.drain(&mut core);
        Ok(())
    }

    /// The selected sockets join `room`, wherever they are.
    pub fn sockets_join(&self, room: &str) -> Result<()> {
        let mut core = self.emitter.lock();
        core.sockets_join(&self.target, &[Str::from(room)])?;
        self.emitter.drain(&mut core);
        Ok(())
    }

    /// The selected sockets leave `room`, wherever they are.
    pub fn sockets_leave(&self, room: &str) -> Result<()> {
        let mut core = self.emitter.lock();
        core.sockets_leave(&self.target, &[Str::from(room)])?;
        self.emitter.drain(&mut core);
        Ok(())
    }

    /// Disconnect the selected sockets, wherever they are.
    pub fn disconnect_sockets(&self, close: bool) -> Result<()> {
        let mut core = self.emitter.lock();
        core.disconnect_sockets(Instant::now(), &self.target, close)?;
        self.emitter.drain(&mut core);
        Ok(())
    }
}
