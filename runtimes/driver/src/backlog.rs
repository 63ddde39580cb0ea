//! Decoded but unhandled events, bounded like unsent output: while more
//! than [`MAX_PENDING_EVENTS`] of a server's events wait for the
//! application, the connection whose read would add more is paused, and
//! it is resumed once the application has caught up to
//! [`RESUME_PENDING_EVENTS`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::Stream;

use crate::conn::ConnSignal;

/// Events waiting for the application beyond which reading pauses.
pub(crate) const MAX_PENDING_EVENTS: usize = 1024;

/// Events waiting for the application at which paused reads resume.
pub(crate) const RESUME_PENDING_EVENTS: usize = MAX_PENDING_EVENTS / 2;

/// The count of events handed out and not yet taken by the application,
/// and the connections paused for it.
#[derive(Default)]
pub(crate) struct Backlog {
    count: AtomicUsize,
    /// `starved` is not empty.
    has_starved: AtomicBool,
    starved: Mutex<Vec<Arc<ConnSignal>>>,
}

impl Backlog {
    /// `n` events were handed out.
    pub(crate) fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    /// The application took `n` events.
    pub(crate) fn remove(&self, n: usize) {
        let left = self.count.fetch_sub(n, Ordering::SeqCst).saturating_sub(n);
        // Paired with `admit`: one of the two sees the other's write.
        if left <= RESUME_PENDING_EVENTS && self.has_starved.load(Ordering::SeqCst) {
            self.resume_all();
        }
    }

    /// Whether the events waiting are within the bound (then any
    /// connection may read; [`Backlog::admit`] says the same, with more
    /// work).
    pub(crate) fn within_bound(&self) -> bool {
        self.count.load(Ordering::SeqCst) <= MAX_PENDING_EVENTS
    }

    /// Whether a connection may read more now; when not, it is resumed
    /// through `signal` once the application has caught up.
    pub(crate) fn admit(&self, signal: &Arc<ConnSignal>) -> bool {
        if self.within_bound() {
            return true;
        }
        {
            let mut starved = self.starved.lock().unwrap_or_else(|e| e.into_inner());
            starved.push(signal.clone());
            self.has_starved.store(true, Ordering::SeqCst);
        }
        // The application may have caught up before it could see us.
        if self.count.load(Ordering::SeqCst) <= RESUME_PENDING_EVENTS {
            self.resume_all();
        }
        false
    }

    fn resume_all(&self) {
        let starved = {
            let mut starved = self.starved.lock().unwrap_or_else(|e| e.into_inner());
            self.has_starved.store(false, Ordering::SeqCst);
            std::mem::take(&mut *starved)
        };
        for signal in starved {
            signal.resume();
        }
    }
}

/// The application events of a driver, in order: a stream (use
/// `futures_util::StreamExt::next`). Taking events from it is what lets
/// connections paused for an event backlog read again.
pub struct EventReceiver<E> {
    rx: mpsc::UnboundedReceiver<E>,
    backlog: Arc<Backlog>,
}

impl<E> EventReceiver<E> {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<E>, backlog: Arc<Backlog>) -> Self {
        EventReceiver { rx, backlog }
    }
}

impl<E> Stream for EventReceiver<E> {
    type Item = E;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E>> {
        let next = Pin::new(&mut self.rx).poll_next(cx);
        if let Poll::Ready(Some(_)) = &next {
            self.backlog.remove(1);
        }
        next
    }
}

impl<E> std::fmt::Debug for EventReceiver<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver")
            .field("pending", &self.backlog.count.load(Ordering::Relaxed))
            .finish()
    }
}
