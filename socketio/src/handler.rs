//! Type-erased handlers and the per-socket job queue.

use std::future::Future;

use futures_channel::mpsc;
use futures_util::StreamExt;
use socketio_driver::{BoxFuture, Runtime};

/// A handler invocation waiting its turn.
pub(crate) type Job = BoxFuture<'static, ()>;

/// Box a handler's future.
pub(crate) fn boxed<F: Future<Output = ()> + Send + 'static>(f: F) -> Job {
    Box::pin(f)
}

/// A queue that runs jobs one after another, in arrival order (the
/// default: a socket's handlers never overlap), or each at once in its own
/// task (`async_handlers`).
#[derive(Clone)]
pub(crate) struct JobQueue {
    tx: Option<mpsc::UnboundedSender<Job>>,
}

impl JobQueue {
    pub(crate) fn new(runtime: &dyn Runtime, concurrent: bool) -> JobQueue {
        if concurrent {
            return JobQueue { tx: None };
        }
        let (tx, mut rx) = mpsc::unbounded::<Job>();
        runtime.spawn(Box::pin(async move {
            while let Some(job) = rx.next().await {
                job.await;
            }
        }));
        JobQueue { tx: Some(tx) }
    }

    pub(crate) fn push(&self, runtime: &dyn Runtime, job: Job) {
        match &self.tx {
            Some(tx) => {
                if let Err(e) = tx.unbounded_send(job) {
                    // Closed: the socket is gone; run it anyway so a
                    // disconnect handler is never lost.
                    runtime.spawn(e.into_inner());
                }
            }
            None => runtime.spawn(job),
        }
    }
}
