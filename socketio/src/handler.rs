//! Type-erased handlers and the per-socket job queue.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Default of [`JobQueue`]'s bound: handler jobs one socket may have
/// waiting (queued in ordered mode, suspended in concurrent mode). High
/// enough for a burst of 10,000 calls whose handlers all wait, low enough
/// that one socket cannot hold memory without end.
pub(crate) const DEFAULT_MAX_PENDING_HANDLERS: usize = 16_384;

/// A job was refused: the queue already holds its bound of waiting jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull {
    /// The bound.
    pub(crate) limit: usize,
    /// Whether jobs run concurrently (the bound counts suspended jobs) or
    /// in order (it counts queued jobs).
    pub(crate) concurrent: bool,
}

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.concurrent {
            "handlers waiting concurrently"
        } else {
            "handlers queued in order"
        };
        write!(f, "{} {what} (max_pending_handlers)", self.limit)
    }
}

/// Runs a socket's handler jobs: each at once (concurrent, the default:
/// python-socketio's `async_handlers=True`), or one after another in
/// arrival order (ordered).
///
/// A job first runs in the caller's task, up to its first wait: most
/// handlers (emit, join, ack) finish there, without a task, a wake-up or
/// an allocation. So in both modes jobs *start* in arrival order, and a
/// job that never waits finishes before the next one starts. A job that
/// waits moves to a task spawned for it. Concurrent: later jobs run
/// meanwhile (and may finish first). Ordered: later jobs queue behind it
/// and the task runs them in turn, ending once the queue is empty (an idle
/// socket holds no task).
///
/// Both modes are bounded by `limit`: suspended jobs (concurrent) or queued
/// jobs (ordered); [`JobQueue::try_push`] refuses a job beyond it.
#[derive(Clone)]
pub(crate) struct JobQueue {
    mode: Mode,
    limit: usize,
}

#[derive(Clone)]
enum Mode {
    /// How many jobs are suspended in tasks of their own.
    Concurrent(Arc<AtomicUsize>),
    Ordered(Arc<Mutex<Serial>>),
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

/// Counts a suspended concurrent job for as long as its task holds it
/// (dropped on completion, panic, or the runtime dropping the task).
struct Suspended(Arc<AtomicUsize>);

impl Drop for Suspended {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl JobQueue {
    /// A queue running jobs concurrently or in order, holding at most
    /// `limit` waiting jobs (at least 1).
    pub(crate) fn new(concurrent: bool, limit: usize) -> JobQueue {
        let mode = if concurrent {
            Mode::Concurrent(Arc::default())
        } else {
            Mode::Ordered(Arc::default())
        };
        JobQueue {
            mode,
            limit: limit.max(1),
        }
    }

    /// An ordered queue without a practical bound, for jobs that must run
    /// whatever the load (connect and disconnect handlers: one each per
    /// socket).
    pub(crate) fn ordered() -> JobQueue {
        JobQueue::new(false, usize::MAX)
    }

    /// Whether jobs run concurrently.
    pub(crate) fn is_concurrent(&self) -> bool {
        matches!(self.mode, Mode::Concurrent(_))
    }

    /// Jobs waiting now: suspended (concurrent) or queued (ordered); the
    /// quantity the bound applies to.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        match &self.mode {
            Mode::Concurrent(suspended) => suspended.load(Ordering::Acquire),
            Mode::Ordered(serial) => lock(serial).jobs.len(),
        }
    }

    /// Run or queue `job`, unless the queue holds its bound of waiting
    /// jobs: then `job` is dropped without running and the caller decides
    /// what happens to the socket.
    pub(crate) fn try_push(&self, runtime: &dyn Runtime, job: Job) -> Result<(), QueueFull> {
        self.push_within(runtime, job, self.limit)
    }

    /// Run or queue a job that must not be refused (one per socket, such
    /// as its disconnect handler): past the bound it is still taken.
    pub(crate) fn push(&self, runtime: &dyn Runtime, job: Job) {
        let _ = self.push_within(runtime, job, usize::MAX);
    }

    fn push_within(&self, runtime: &dyn Runtime, job: Job, limit: usize) -> Result<(), QueueFull> {
        let full = QueueFull {
            limit,
            concurrent: self.is_concurrent(),
        };
        let serial = match &self.mode {
            Mode::Concurrent(suspended) => {
                // Jobs of one queue are pushed one at a time (by the
                // event dispatcher), so check-then-add does not race;
                // tasks ending only lower the count.
                if suspended.load(Ordering::Acquire) >= limit {
                    return Err(full);
                }
                if let Some(job) = poll_once(job) {
                    suspended.fetch_add(1, Ordering::AcqRel);
                    let counted = Suspended(suspended.clone());
                    runtime.spawn(Box::pin(async move {
                        let _counted = counted;
                        run_guarded(job).await;
                    }));
                }
                return Ok(());
            }
            Mode::Ordered(serial) => serial,
        };
        {
            let mut queue = lock(serial);
            if queue.busy {
                if queue.jobs.len() >= limit {
                    return Err(full);
                }
                queue.jobs.push_back(job);
                return Ok(());
            }
            queue.busy = true;
        }
        // A job that waits goes straight to the task, not into the queue,
        // which holds only jobs that have not started (what the bound counts).
        let waiting = poll_once(job);
        {
            let mut queue = lock(serial);
            if waiting.is_none() && queue.jobs.is_empty() {
                queue.busy = false;
                return Ok(());
            }
        }
        let serial = serial.clone();
        runtime.spawn(Box::pin(async move {
            if let Some(job) = waiting {
                run_guarded(job).await;
            }
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_channel::oneshot;

    fn runtime() -> Arc<dyn Runtime> {
        Arc::new(socketio_tokio::TokioRuntime::current_or_global())
    }

    /// A job that records `n` when it starts, then waits for `release`.
    fn waiting_job(log: &Arc<Mutex<Vec<u32>>>, n: u32, release: oneshot::Receiver<()>) -> Job {
        let log = log.clone();
        boxed(async move {
            log.lock().unwrap().push(n);
            let _ = release.await;
            log.lock().unwrap().push(n + 100);
        })
    }

    /// Wait until `done`, failing with `stalled` after 5 s.
    async fn wait_until(runtime: &dyn Runtime, stalled: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{stalled}");
            let tick = std::time::Instant::now() + std::time::Duration::from_millis(1);
            runtime.sleep_until(tick).await;
        }
    }

    fn instant_job(log: &Arc<Mutex<Vec<u32>>>, n: u32) -> Job {
        let log = log.clone();
        boxed(async move { log.lock().unwrap().push(n) })
    }

    #[test]
    fn concurrent_jobs_start_in_order_and_waiting_ones_are_bounded() {
        socketio_tokio::TokioRuntime::block_on(async {
            let runtime = runtime();
            let queue = JobQueue::new(true, 2);
            let log = Arc::new(Mutex::new(Vec::new()));
            let (release_1, wait_1) = oneshot::channel();
            let (release_2, wait_2) = oneshot::channel();
            queue
                .try_push(&*runtime, waiting_job(&log, 1, wait_1))
                .unwrap();
            queue.try_push(&*runtime, instant_job(&log, 2)).unwrap();
            queue
                .try_push(&*runtime, waiting_job(&log, 3, wait_2))
                .unwrap();
            // Jobs that finish inline are never counted: 1 and 3 wait.
            assert_eq!(queue.waiting(), 2);
            let refused = queue.try_push(&*runtime, instant_job(&log, 4));
            assert_eq!(
                refused,
                Err(QueueFull {
                    limit: 2,
                    concurrent: true
                })
            );
            assert_eq!(*log.lock().unwrap(), [1, 2, 3], "4 must not run");
            // A job that must run is taken even at the bound.
            queue.push(&*runtime, instant_job(&log, 5));
            release_2.send(()).unwrap();
            release_1.send(()).unwrap();
            wait_until(&*runtime, "jobs never ended", || queue.waiting() == 0).await;
            let log = log.lock().unwrap().clone();
            assert_eq!(&log[..4], [1, 2, 3, 5]);
            assert!(log[4..].contains(&101) && log[4..].contains(&103));
        });
    }

    #[test]
    fn ordered_jobs_run_one_after_another_and_queued_ones_are_bounded() {
        socketio_tokio::TokioRuntime::block_on(async {
            let runtime = runtime();
            let queue = JobQueue::new(false, 2);
            let log = Arc::new(Mutex::new(Vec::new()));
            let (release, wait) = oneshot::channel();
            queue
                .try_push(&*runtime, waiting_job(&log, 1, wait))
                .unwrap();
            queue.try_push(&*runtime, instant_job(&log, 2)).unwrap();
            queue.try_push(&*runtime, instant_job(&log, 3)).unwrap();
            assert_eq!(queue.waiting(), 2);
            assert!(queue.try_push(&*runtime, instant_job(&log, 4)).is_err());
            assert_eq!(*log.lock().unwrap(), [1]);
            release.send(()).unwrap();
            wait_until(&*runtime, "queue stalled", || {
                log.lock().unwrap().len() == 4
            })
            .await;
            assert_eq!(*log.lock().unwrap(), [1, 101, 2, 3]);
            assert_eq!(queue.waiting(), 0);
        });
    }
}
