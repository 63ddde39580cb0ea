//! One task per connection, reading and writing (servers and clients).
//!
//! A connection owns no read buffer: it reads into a buffer of the thread
//! polling it, lent only for the length of one `poll_read` and handed to
//! the core at once (the core keeps only partial frames). An idle
//! connection therefore costs its stream, its task and a few words of
//! state. Writes go out from the same task, right after the read that
//! produced them, without waking another task; output made for the
//! connection elsewhere (another connection's read, an application call, a
//! timer) sets its [`ConnSignal`] and wakes it.
//!
//! Flow control: a connection is read only while its core wants it read
//! (its unsent output under the soft bound, its events handled). A paused
//! connection is not polled for reading, so TCP pushes back on the peer;
//! it reads again once its own output drains (each pull says whether it
//! may) or once the driver resumes it through its [`ConnSignal`]. Output
//! is pulled from the core in batches of at most [`WRITE_BATCH`] bytes, so
//! that what waits stays in the core's accounting.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::task::AtomicWaker;
use socketio_core::engine::ConnId;

use crate::runtime::BoxStream;

/// Bytes read per call, from the polling thread's buffer. Also what one
/// read may turn into events before flow control looks again: 16 KiB of
/// tiny acked events are ~600 events (a 64 KiB read made ~2,400, which the
/// core's and the driver's event queues both had to hold: ~2 MB at the
/// peak of a flood).
const READ_BUFFER: usize = 16 * 1024;

/// Read-and-write rounds per poll before the task yields to others.
const ROUND_BUDGET: usize = 16;

/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Bytes pulled from the core at once; the rest waits there, where the
/// core counts it against the connection's output bound.
pub(crate) const WRITE_BATCH: usize = 64 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Poll one read into the polling thread's buffer and hand the bytes to
/// `consume` before returning (the buffer is lent for this call only).
pub(crate) fn read_shared<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    cx: &mut Context<'_>,
    consume: impl FnOnce(&[u8]),
) -> Poll<std::io::Result<usize>> {
    let read = move |buf: &mut [u8]| {
        let result = Pin::new(&mut *reader).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                consume(&buf[..n]);
            }
        }
        result
    };
    READ_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => read(&mut buf),
        // Only if `consume` polled another stream on this thread, which
        // the drivers never do; stay correct anyway.
        Err(_) => read(&mut vec![0; READ_BUFFER]),
    })
}

/// How a driver tells a connection task that the core has output for it,
/// or that it must stop.
#[derive(Default)]
pub(crate) struct ConnSignal {
    waker: AtomicWaker,
    /// The core has output for the connection.
    ready: AtomicBool,
    /// The task is inside its poll and will look at `ready` before
    /// sleeping: no wake-up needed (the common case: output produced by
    /// the connection's own read).
    polling: AtomicBool,
    /// Drop the connection at once.
    stop: AtomicBool,
    /// A paused connection may be read again.
    resume: AtomicBool,
}

impl ConnSignal {
    /// The core has output for the connection.
    pub(crate) fn notify(&self) {
        self.ready.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// A connection paused by flow control may be read again (harmless if
    /// it is not paused).
    pub(crate) fn resume(&self) {
        self.resume.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Drop the connection without writing what is left.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// What one pull of output gave.
pub(crate) struct Pulled {
    /// The core closes the connection once what was pulled is written (or
    /// no longer knows it).
    pub(crate) close: bool,
    /// The core holds more output: pull again once this is written.
    pub(crate) more: bool,
    /// The connection may be read (its core wants input).
    pub(crate) readable: bool,
}

/// What a connection task asks of its driver. Each call locks the core,
/// feeds it and drains its outputs.
pub(crate) trait ConnDriver: Send + Sync + 'static {
    /// Bytes read; returns whether to go on reading (false pauses the
    /// connection until a pull says it is readable or the driver resumes
    /// it through its signal).
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]) -> bool;
    /// The stream ended, or writing failed.
    fn on_eof(this: &Arc<Self>, conn: ConnId);
    /// Reading failed: by default, the same as the end of the stream.
    fn on_read_error(this: &Arc<Self>, conn: ConnId, error: std::io::Error) {
        tracing::debug!(conn = conn.0, %error, "read failed");
        Self::on_eof(this, conn);
    }
    /// Whether `conn` may be read now (asked when a paused connection is
    /// resumed: the resume is a hint).
    fn wants_read(this: &Arc<Self>, conn: ConnId) -> bool;
    /// Move the core's output for `conn` to `out`, at most about
    /// [`WRITE_BATCH`] bytes.
    fn pull(this: &Arc<Self>, conn: ConnId, out: &mut VecDeque<Bytes>) -> Pulled;
    /// [`ConnDriver::pull`], told whether the connection is paused: one
    /// being read may skip working out `readable` (its next read asks).
    fn pull_while(
        this: &Arc<Self>,
        conn: ConnId,
        out: &mut VecDeque<Bytes>,
        _paused: bool,
    ) -> Pulled {
        Self::pull(this, conn, out)
    }
}

/// Drive one connection until it closes. Spawn it as a task.
pub(crate) fn connection<D: ConnDriver>(
    driver: Arc<D>,
    conn: ConnId,
    stream: BoxStream,
    signal: Arc<ConnSignal>,
) -> impl Future<Output = ()> + Send + 'static {
    Connection {
        driver,
        conn,
        stream,
        signal,
        out: VecDeque::new(),
        closing: false,
        unflushed: false,
        paused: false,
    }
}

struct Connection<D> {
    driver: Arc<D>,
    conn: ConnId,
    stream: BoxStream,
    signal: Arc<ConnSignal>,
    /// Pulled from the core, not yet written.
    out: VecDeque<Bytes>,
    /// The core closes the connection once `out` is written.
    closing: bool,
    /// Written since the last flush (TLS streams buffer until flushed).
    unflushed: bool,
    /// Not read: the core does not want input now (flow control).
    paused: bool,
}

/// What one step of a connection did.
enum Step {
    /// Something moved: try again.
    Progress,
    /// Waiting for the stream or the core.
    Blocked,
    /// The connection is over.
    Done,
}

impl<D: ConnDriver> Connection<D> {
    /// Write what is pulled, flush, pull more; close when the core said so.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Step {
        if self.out.is_empty() && !self.closing && self.signal.ready.swap(false, Ordering::SeqCst) {
            socketio_core::memory::shrink_if_empty(&mut self.out);
            let pulled = D::pull_while(&self.driver, self.conn, &mut self.out, self.paused);
            self.closing = pulled.close;
            if pulled.more && !pulled.close {
                self.signal.ready.store(true, Ordering::SeqCst);
            }
            self.paused = !pulled.readable;
        }
        if !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.out.len().min(MAX_SLICES);
            for (slice, bytes) in slices.iter_mut().zip(self.out.iter()) {
                *slice = IoSlice::new(bytes);
            }
            let written = match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count])
            {
                Poll::Pending => return Step::Blocked,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    tracing::debug!(conn = self.conn.0, "write failed");
                    D::on_eof(&self.driver, self.conn);
                    return Step::Done;
                }
                Poll::Ready(Ok(n)) => n,
            };
            self.advance(written);
            self.unflushed = true;
            return Step::Progress;
        }
        if self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Pending => return Step::Blocked,
                Poll::Ready(Err(_)) => {
                    D::on_eof(&self.driver, self.conn);
                    return Step::Done;
                }
                Poll::Ready(Ok(())) => self.unflushed = false,
            }
        }
        if self.closing {
            // The core already forgot the connection.
            return match Pin::new(&mut self.stream).poll_close(cx) {
                Poll::Pending => Step::Blocked,
                Poll::Ready(_) => Step::Done,
            };
        }
        Step::Blocked
    }

    fn advance(&mut self, mut written: usize) {
        while written > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if front.len() > written {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.out.pop_front();
        }
    }

    fn poll_read_side(&mut self, cx: &mut Context<'_>) -> Step {
        if self.paused && self.signal.resume.swap(false, Ordering::SeqCst) {
            self.paused = !D::wants_read(&self.driver, self.conn);
        }
        if self.paused {
            // Not polled: the peer meets TCP's backpressure. The write
            // side, or the driver through `resume`, wakes us.
            return Step::Blocked;
        }
        let (driver, conn) = (&self.driver, self.conn);
        let mut readable = true;
        let result = read_shared(&mut self.stream, cx, |data| {
            readable = D::on_read(driver, conn, data)
        });
        self.paused = !readable;
        match result {
            Poll::Pending => Step::Blocked,
            Poll::Ready(Ok(0)) => {
                D::on_eof(driver, conn);
                Step::Done
            }
            Poll::Ready(Ok(_)) => Step::Progress,
            Poll::Ready(Err(e)) => {
                D::on_read_error(driver, conn, e);
                Step::Done
            }
        }
    }
}

impl<D: ConnDriver> Future for Connection<D> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.signal.polling.store(true, Ordering::SeqCst);
        this.signal.waker.register(cx.waker());
        let mut rounds = 0;
        loop {
            if this.signal.stop.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            let write = this.poll_write_side(cx);
            if let Step::Done = write {
                return Poll::Ready(());
            }
            if rounds == ROUND_BUDGET {
                // Let other connections run; come back at once.
                this.signal.polling.store(false, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            rounds += 1;
            let read = this.poll_read_side(cx);
            match (write, read) {
                (_, Step::Done) => return Poll::Ready(()),
                (Step::Progress, _) | (_, Step::Progress) => {}
                _ => {
                    // Sleep, unless output arrived since the write side
                    // looked (`notify` does not wake us while we poll).
                    this.signal.polling.store(false, Ordering::SeqCst);
                    let more = (this.out.is_empty()
                        && !this.closing
                        && this.signal.ready.load(Ordering::SeqCst))
                        || (this.paused && this.signal.resume.load(Ordering::SeqCst));
                    if !more {
                        return Poll::Pending;
                    }
                    this.signal.polling.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}
