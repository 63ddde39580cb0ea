//! Type-erased handlers and the per-socket job queue.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::panic::{catch_unwind, AssertUnwindSafe};

use futures_util::task::noop_waker_ref;
use futures_util::FutureExt;
use socketio_driver::{BoxFuture, Runtime};

/// A handler invocation waiting its turn.
pub(crate) type Job = BoxFuture<'static, ()>;

/// Box a handler's future.
pub(crate) fn boxed<F: Future<Output = ()> + Send + 'static>(f: F) -> Job {
    Box::pin(f)
}

/// A queue that runs jobs one after another, in arrival order (the
/// default: a socket's handlers never overlap), or each at once
/// (`async_handlers`).
///
/// A job first runs in the caller's task, up to its first wait: most
/// handlers (emit, join, ack) finish there, without a task or a wake-up.
/// A job that waits moves to a task spawned for it, and jobs arriving
/// meanwhile queue behind it; that task ends once the queue is empty, so
/// an idle socket holds no task.
#[derive(Clone)]
pub(crate) struct JobQueue {
    /// `None`: jobs run concurrently.
    serial: Option<Arc<Mutex<Serial>>>,
}

#[derive(Default)]
struct Serial {
    jobs: VecDeque<Job>,
    /// A job is running (inline or in the queue's task): new jobs wait.
    busy: bool,
}

fn lock(serial: &Mutex<Serial>) -> std::sync::MutexGuard<'_, Serial> {
    serial.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `job` up to its first wait; `None` when it finished.
fn poll_once(mut job: Job) -> Option<Job> {
    // A waker that does nothing is enough: a job that is not finished is
    // polled again, with a real waker, by the task it moves to (futures
    // register their waker on every poll).
    let mut cx = Context::from_waker(noop_waker_ref());
    // A panicking handler ends its job, as it would end a task: it must
    // not unwind into the connection or dispatcher running it.
    match catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => None,
        Ok(Poll::Pending) => Some(job),
        Err(_) => {
            tracing::error!("a handler panicked");
            None
        }
    }
}

/// Run `job` to its end; a panic ends it as it would end a task, logged.
async fn run_guarded(job: Job) {
    if AssertUnwindSafe(job).catch_unwind().await.is_err() {
        tracing::error!("a handler panicked");
    }
}

impl JobQueue {
    pub(crate) fn new(concurrent: bool) -> JobQueue {
        JobQueue {
            serial: (!concurrent).then(Arc::default),
        }
    }

    pub(crate) fn push(&self, runtime: &dyn Runtime, job: Job) {
        let Some(serial) = &self.serial else {
            if let Some(job) = poll_once(job) {
                runtime.spawn(Box::pin(run_guarded(job)));
            }
            return;
        };
        {
            let mut queue = lock(serial);
            if queue.busy {
                queue.jobs.push_back(job);
                return;
            }
            queue.busy = true;
        }
        let waiting = poll_once(job);
        let mut queue = lock(serial);
        if let Some(job) = waiting {
            queue.jobs.push_front(job);
        } else if queue.jobs.is_empty() {
            queue.busy = false;
            return;
        }
        drop(queue);
        let serial = serial.clone();
        runtime.spawn(Box::pin(async move {
            loop {
                let job = {
                    let mut queue = lock(&serial);
                    match queue.jobs.pop_front() {
                        Some(job) => job,
                        None => {
                            queue.busy = false;
                            return;
                        }
                    }
                };
                run_guarded(job).await;
            }
        }));
    }
}
