//! Choosing the async runtime, and runtime-neutral helpers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
pub use socketio_driver::Runtime;

#[cfg(not(any(feature = "tokio", feature = "async-std", feature = "smol")))]
compile_error!("enable at least one runtime feature of `socketio`: tokio, async-std or smol");

/// The async runtimes this build supports (one per enabled feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeKind {
    /// tokio (feature `tokio`, the default).
    #[cfg(feature = "tokio")]
    Tokio,
    /// async-std (feature `async-std`). async-std is discontinued upstream;
    /// the adapter is kept tiny.
    #[cfg(feature = "async-std")]
    AsyncStd,
    /// smol (feature `smol`).
    #[cfg(feature = "smol")]
    Smol,
}

impl Default for RuntimeKind {
    /// tokio if enabled, else async-std, else smol.
    fn default() -> Self {
        #[cfg(feature = "tokio")]
        return RuntimeKind::Tokio;
        #[cfg(all(not(feature = "tokio"), feature = "async-std"))]
        return RuntimeKind::AsyncStd;
        #[cfg(all(not(feature = "tokio"), not(feature = "async-std")))]
        return RuntimeKind::Smol;
    }
}

impl RuntimeKind {
    /// The runtime named `tokio`, `async-std` or `smol`, if this build has
    /// it.
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        match name {
            #[cfg(feature = "tokio")]
            "tokio" => Some(RuntimeKind::Tokio),
            #[cfg(feature = "async-std")]
            "async-std" | "async_std" => Some(RuntimeKind::AsyncStd),
            #[cfg(feature = "smol")]
            "smol" => Some(RuntimeKind::Smol),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeKind::Tokio => "tokio",
            #[cfg(feature = "async-std")]
            RuntimeKind::AsyncStd => "async-std",
            #[cfg(feature = "smol")]
            RuntimeKind::Smol => "smol",
        }
    }

    /// A handle on the runtime. For tokio: the runtime of the calling
    /// context, or a process-wide one started on first use.
    pub fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeKind::Tokio => Arc::new(socketio_tokio::TokioRuntime::current_or_global()),
            #[cfg(feature = "async-std")]
            RuntimeKind::AsyncStd => Arc::new(socketio_async_std::AsyncStdRuntime),
            #[cfg(feature = "smol")]
            RuntimeKind::Smol => Arc::new(socketio_smol::SmolRuntime),
        }
    }

    /// Run `future` to completion on this runtime, blocking the calling
    /// thread (for `main`). [`spawn`] and [`sleep`] use this runtime from
    /// then on.
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeKind::Tokio => socketio_tokio::TokioRuntime::block_on(async move {
                set_current(Arc::new(socketio_tokio::TokioRuntime::current()));
                future.await
            }),
            #[cfg(feature = "async-std")]
            RuntimeKind::AsyncStd => {
                set_current(self.runtime());
                socketio_async_std::AsyncStdRuntime::block_on(future)
            }
            #[cfg(feature = "smol")]
            RuntimeKind::Smol => {
                set_current(self.runtime());
                socketio_smol::SmolRuntime::block_on(future)
            }
        }
    }
}

static CURRENT: RwLock<Option<Arc<dyn Runtime>>> = RwLock::new(None);

/// Make `runtime` the one [`spawn`] and [`sleep`] use.
pub fn set_current(runtime: Arc<dyn Runtime>) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(runtime);
}

/// The runtime [`spawn`] and [`sleep`] use: the tokio runtime of the
/// calling context if there is one, else the last one given to
/// [`set_current`], [`RuntimeKind::block_on`] or a server or client
/// builder, else the default kind's.
pub fn current() -> Arc<dyn Runtime> {
    // Inside a tokio runtime, that runtime: tasks and timers then live as
    // long as it does.
    #[cfg(feature = "tokio")]
    if let Some(runtime) = socketio_tokio::TokioRuntime::try_current() {
        return Arc::new(runtime);
    }
    if let Some(runtime) = &*CURRENT.read().unwrap_or_else(|e| e.into_inner()) {
        return runtime.clone();
    }
    let runtime = RuntimeKind::default().runtime();
    set_current(runtime.clone());
    runtime
}

/// Run a task in the background (python-socketio's
/// `start_background_task`). Awaiting the handle gives its output;
/// dropping it detaches the task.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    current().spawn(Box::pin(async move {
        let _ = tx.send(future.await);
    }));
    JoinHandle { rx }
}

/// Wait for `duration` (python-socketio's `sleep`), on the current
/// runtime's timer.
pub async fn sleep(duration: Duration) {
    current().sleep_until(Instant::now() + duration).await
}

/// The output of a task started with [`spawn`].
#[derive(Debug)]
pub struct JoinHandle<T> {
    rx: oneshot::Receiver<T>,
}

impl<T> Future for JoinHandle<T> {
    /// `None` if the task panicked or its runtime stopped.
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}
