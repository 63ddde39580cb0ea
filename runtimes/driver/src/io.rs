//! Loops shared by the server and client drivers: reading a connection and
//! the one timer.

use std::sync::{Arc, Weak};
use std::time::Instant;

use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, ReadHalf};
use socketio_core::engine::ConnId;

use crate::runtime::{BoxStream, Runtime};

/// The inputs the shared loops feed to a driver.
pub(crate) trait Driven: Send + Sync + 'static {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]);
    fn on_eof(this: &Arc<Self>, conn: ConnId);
    /// Reading failed: by default, the same as the end of the stream.
    fn on_read_error(this: &Arc<Self>, conn: ConnId, error: std::io::Error) {
        tracing::debug!(conn = conn.0, %error, "read failed");
        Self::on_eof(this, conn);
    }
    fn next_timeout(this: &Arc<Self>) -> Option<Instant>;
    fn on_timeout(this: &Arc<Self>);
}

/// Bytes read per call.
const READ_BUFFER: usize = 16 * 1024;

/// Read `conn` until the peer ends it, reading fails (both reported as end
/// of stream) or `stop` closes (the writer finished: the core already
/// forgot the connection).
pub(crate) async fn read_loop<D: Driven>(
    driven: Arc<D>,
    conn: ConnId,
    mut reader: ReadHalf<BoxStream>,
    stop: async_channel::Receiver<()>,
) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut stopped = Box::pin(stop.recv());
    loop {
        match select(reader.read(&mut buf), stopped.as_mut()).await {
            Either::Left((Ok(0), _)) => {
                D::on_eof(&driven, conn);
                return;
            }
            Either::Left((Ok(n), _)) => D::on_read(&driven, conn, &buf[..n]),
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
pub(crate) async fn timer_loop<D: Driven>(
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
