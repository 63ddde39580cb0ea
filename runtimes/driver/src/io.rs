//! Loops shared by the server and client drivers: reading a connection and
//! the one timer.

use std::sync::{Arc, Weak};
use std::time::Instant;

use futures_util::future::{poll_fn, select, Either};
use futures_util::io::ReadHalf;
use socketio_core::engine::ConnId;

use crate::conn::read_shared;
use crate::runtime::{BoxStream, Runtime};

/// The inputs a client connection's reader feeds to its driver.
pub(crate) trait Driven: Timed {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]);
    fn on_eof(this: &Arc<Self>, conn: ConnId);
    /// Reading failed: by default, the same as the end of the stream.
    fn on_read_error(this: &Arc<Self>, conn: ConnId, error: std::io::Error) {
        tracing::debug!(conn = conn.0, %error, "read failed");
        Self::on_eof(this, conn);
    }
}

/// A driver with the one timer.
pub(crate) trait Timed: Send + Sync + 'static {
    fn next_timeout(this: &Arc<Self>) -> Option<Instant>;
    fn on_timeout(this: &Arc<Self>);
}

/// Read `conn` until the peer ends it, reading fails (both reported as end
/// of stream) or `stop` closes (the writer finished: the core already
/// forgot the connection).
pub(crate) async fn read_loop<D: Driven>(
    driven: Arc<D>,
    conn: ConnId,
    mut reader: ReadHalf<BoxStream>,
    stop: async_channel::Receiver<()>,
) {
    let mut stopped = Box::pin(stop.recv());
    loop {
        // Bytes are handed to the core inside the poll that read them: the
        // buffer is the polling thread's, not the connection's.
        let read =
            poll_fn(|cx| read_shared(&mut reader, cx, |data| D::on_read(&driven, conn, data)));
        match select(read, stopped.as_mut()).await {
            Either::Left((Ok(0), _)) => {
                D::on_eof(&driven, conn);
                return;
            }
            Either::Left((Ok(_), _)) => {}
            Either::Left((Err(e), _)) => {
                D::on_read_error(&driven, conn, e);
                return;
            }
            Either::Right(_) => return,
        }
    }
}

/// The one timer: sleeps until the core's next deadline, re-armed through
/// `wake` whenever the deadline changes; ends once the driver is gone.
pub(crate) async fn timer_loop<D: Timed>(
    driven: Weak<D>,
    runtime: Arc<dyn Runtime>,
    wake: async_channel::Receiver<()>,
) {
    loop {
        let deadline = match driven.upgrade() {
            Some(d) => D::next_timeout(&d),
            None => return,
        };
        match deadline {
            None => {
                if wake.recv().await.is_err() {
                    return;
                }
            }
            Some(at) => {
                let woken = Box::pin(wake.recv());
                match select(runtime.sleep_until(at), woken).await {
                    Either::Left(_) => {
                        if Instant::now() >= at {
                            match driven.upgrade() {
                                Some(d) => D::on_timeout(&d),
                                None => return,
                            }
                        }
                    }
                    Either::Right((Ok(()), _)) => {}
                    Either::Right((Err(_), _)) => return,
                }
            }
        }
    }
}
