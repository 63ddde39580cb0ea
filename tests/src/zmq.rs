//! A real ZeroMQ broker for the ZeroMQ cluster tests: python-socketio's
//! forwarder (`python/zmq_broker.py`, pyzmq from the interop venv) as a
//! child on free ports, restartable on the same ports, with a raw pusher to
//! inject frames of our own ([`ZmqBroker::push_raw`]).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use socketio_core::cluster::zmtp::{SocketType, ZmtpLimits, ZmtpSocket};

use crate::broker::{relaunch, Guarded};
use crate::cluster::Bus;
use crate::scene::RawBus;
use crate::{free_port, interop_dir, setup, Proc};

/// How long the broker may take to bind.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// `zmq_broker.py` (PULL on the sink port, PUB on the publisher port);
/// killed on drop, and by its watchdog when the test process dies first.
pub struct ZmqBroker {
    sink: u16,
    publisher: u16,
    guarded: Guarded,
}

impl ZmqBroker {
    /// Starts a broker on free ports and waits until both are bound.
    pub fn start() -> Result<ZmqBroker, String> {
        setup()?;
        let mut broker = ZmqBroker {
            sink: free_port(),
            publisher: free_port(),
            guarded: Guarded::default(),
        };
        broker.launch()?;
        Ok(broker)
    }

    fn launch(&mut self) -> Result<(), String> {
        let words: Vec<OsString> = vec![
            interop_dir().join(".venv/bin/python").into(),
            interop_dir().join("python/zmq_broker.py").into(),
        ];
        let args = [
            "--sink".to_string(),
            self.sink.to_string(),
            "--pub".to_string(),
            self.publisher.to_string(),
        ];
        let proc = Proc::spawn(&words, &args, true)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match proc.next_line(deadline) {
                Ok(Some(line)) if line.trim() == "broker ready" => break,
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("zmq_broker.py exited\n{}", proc.output())),
                Err(err) => return Err(format!("zmq_broker.py: {err}\n{}", proc.output())),
            }
        }
        self.guarded.watch(proc, None)
    }

    /// `zmq+tcp://127.0.0.1:SINK+PUB`, python-socketio's form.
    pub fn url(&self) -> String {
        format!("zmq+tcp://127.0.0.1:{}+{}", self.sink, self.publisher)
    }

    /// Kills the broker if it runs and starts it again on the same ports.
    pub fn restart(&mut self) -> Result<(), String> {
        self.guarded.stop();
        let port = self.sink;
        relaunch(
            "zmq broker",
            port,
            Duration::from_secs(10),
            Duration::from_millis(200),
            || self.launch(),
        )
    }

    /// Pushes `frames` to the sink, one message each, as a PUSH peer of our
    /// own (the core's ZMTP codec on a blocking socket), and closes.
    pub fn push_raw(&self, frames: &[&[u8]]) -> Result<(), String> {
        let io = |e: std::io::Error| format!("pushing to the zmq broker: {e}");
        let mut s = TcpStream::connect(("127.0.0.1", self.sink)).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        let mut socket = ZmtpSocket::new(SocketType::Push, None, ZmtpLimits::default());
        for frame in frames {
            socket.send(&[frame]);
        }
        let mut buf = [0u8; 1024];
        loop {
            while let Some(bytes) = socket.poll_transmit() {
                s.write_all(&bytes).map_err(io)?;
            }
            if socket.is_open() {
                break;
            }
            let n = s.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Err("the zmq broker closed the connection".into());
            }
            socket.handle_bytes(&buf[..n]).map_err(|e| e.to_string())?;
        }
        // The broker reads what came before the FIN; a moment for it to
        // forward before anyone looks.
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    }

    /// What the broker printed.
    pub fn output(&self) -> String {
        self.guarded.output()
    }
}

impl Bus for ZmqBroker {
    const NAME: &'static str = "zmq broker";

    fn url(&self) -> String {
        ZmqBroker::url(self)
    }

    fn output(&self) -> String {
        ZmqBroker::output(self)
    }
}

impl RawBus for ZmqBroker {
    /// The raw frame, and, when it is JSON, python's envelope around it on
    /// channel `socketio` (so that it reaches the nodes' message handling).
    fn inject(&self, message: &[u8]) -> Result<(), String> {
        match socketio_core::cluster::python::zmq::wrap("socketio", message) {
            Ok(envelope) => self.push_raw(&[message, &envelope]),
            Err(_) => self.push_raw(&[message]),
        }
    }

    fn restart(&mut self) -> Result<(), String> {
        ZmqBroker::restart(self)
    }
}

impl Drop for ZmqBroker {
    fn drop(&mut self) {
        self.guarded.stop();
    }
}
