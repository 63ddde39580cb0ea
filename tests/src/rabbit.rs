//! A real RabbitMQ for the AMQP cluster tests: `rabbitmq-server` (Debian's
//! package, installed with apt-get when missing) as a child on free ports,
//! restartable on the same port, with a raw publisher to inject messages
//! of our own ([`RabbitServer::publish_raw`]).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use socketio_core::cluster::amqp::{
    encode_method, encode_protocol_header, encode_publish, AmqpDecoder, AmqpLimits, ClientMethod,
    CloseReason, Incoming, Method, Properties,
};

use crate::broker::{apt_install, relaunch, scratch_dir, Guarded};
use crate::cluster::Bus;
use crate::{free_port, Proc};

/// The broker's start script; `/usr/sbin/rabbitmq-server` would switch
/// user.
const RABBIT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// How long the broker may take to accept AMQP (it takes about 5 s).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes sure `rabbitmq-server` is installed (apt-get, behind `flock`, once
/// per process).
pub fn ensure_rabbitmq_server() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            apt_install("rabbitmq-server", &format!("test -x {RABBIT}"), || {
                std::path::Path::new(RABBIT).exists()
            })
        })
        .clone()
}

/// A `rabbitmq-server` in a session (process group) of its own, on
/// 127.0.0.1, in a directory of its own; the group is killed (and the
/// directory removed) on drop. A watchdog shell holding a pipe from this
/// process kills the group when the test process dies first.
pub struct RabbitServer {
    port: u16,
    dist_port: u16,
    dir: PathBuf,
    /// The broker's process group and its watchdog.
    guarded: Guarded,
}

impl RabbitServer {
    /// Starts a broker on free ports and waits until it speaks AMQP.
    pub fn start() -> Result<RabbitServer, String> {
        ensure_rabbitmq_server()?;
        let dir = scratch_dir("rabbit");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("plugins"), "[].\n"))
            .map_err(|err| format!("cannot prepare {}: {err}", dir.display()))?;
        let mut server = RabbitServer {
            port: free_port(),
            dist_port: free_port(),
            dir,
            guarded: Guarded::default(),
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir.to_string_lossy();
        // `setsid` in the background execs in place: `$!` is the new
        // session's (and process group's) id.
        let script = format!(
            "export HOME='{d}' RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT={p} \
             RABBITMQ_DIST_PORT={dp} RABBITMQ_NODENAME=rmq{p}@localhost \
             RABBITMQ_MNESIA_BASE='{d}/mnesia' RABBITMQ_LOG_BASE='{d}/log' \
             RABBITMQ_ENABLED_PLUGINS_FILE='{d}/plugins'; \
             setsid {RABBIT} </dev/null & echo \"pgid $!\"; wait",
            p = self.port,
            dp = self.dist_port,
        );
        let words: Vec<OsString> = vec!["sh".into(), "-c".into()];
        let proc = Proc::spawn(&words, &[script], false)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pgid = loop {
            match proc.next_line(deadline) {
                Ok(Some(line)) => {
                    if let Some(id) = line.strip_prefix("pgid ") {
                        break id
                            .trim()
                            .parse::<u32>()
                            .map_err(|_| format!("bad `{line}`"))?;
                    }
                }
                Ok(None) => return Err(format!("rabbitmq-server exited\n{}", proc.output())),
                Err(err) => return Err(format!("no pgid: {err}\n{}", proc.output())),
            }
        };
        self.guarded.watch(proc, Some(pgid))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self.speaks_amqp() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(200));
        }
        let output = self.output();
        self.stop();
        Err(format!(
            "rabbitmq-server did not accept AMQP on port {} within {READY_TIMEOUT:?}\n{output}",
            self.port
        ))
    }

    fn speaks_amqp(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        s.write_all(b"AMQP\x00\x00\x09\x01").is_ok()
            && s.read(&mut buf).is_ok_and(|n| n > 0 && buf[0] == 1)
    }

    fn stop(&mut self) {
        self.guarded.stop();
    }

    /// `amqp://guest:guest@127.0.0.1:PORT//` (kombu's spelling of vhost
    /// `/`; every spelling works with every client).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}//", self.port)
    }

    /// Kills the broker (an outage); [`RabbitServer::restart`] brings it
    /// back on the same port.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Kills the broker if it runs and starts it again on the same ports
    /// (non-durable exchanges and queues are gone).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let port = self.port;
        relaunch(
            "rabbit",
            port,
            Duration::from_secs(10),
            Duration::from_millis(300),
            || self.launch(),
        )
    }

    /// Publishes `payload` on the fanout exchange `exchange` (which must
    /// exist), as a client of our own, and waits for the broker to close
    /// the connection politely (so the message was routed).
    pub fn publish_raw(&self, exchange: &str, payload: &[u8]) -> Result<(), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|err| format!("connect to rabbit: {err}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut decoder = AmqpDecoder::new(AmqpLimits::default());
        let mut out = bytes::BytesMut::new();
        let mut next = |s: &mut TcpStream| -> Result<Method, String> {
            let mut buf = [0u8; 4096];
            loop {
                match decoder.next().map_err(|e| e.to_string())? {
                    Some(Incoming::Method { method, .. }) => return Ok(method),
                    Some(_) => continue,
                    None => {}
                }
                let n = s.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("rabbit closed the connection".into());
                }
                decoder.feed(&buf[..n]);
            }
        };
        encode_protocol_header(&mut out);
        s.write_all(&out.split()).map_err(|e| e.to_string())?;
        next(&mut s)?; // start
        encode_method(
            &mut out,
            0,
            &ClientMethod::ConnectionStartOk {
                client_properties: &Vec::new(),
                mechanism: "PLAIN",
                response: b"\0guest\0guest",
                locale: "en_US",
            },
        );
        s.write_all(&out.split()).map_err(|e| e.to_string())?;
        let Method::ConnectionTune { frame_max, .. } = next(&mut s)? else {
            return Err("no connection.tune".into());
        };
        let frame_max = if frame_max == 0 { 131072 } else { frame_max };
        encode_method(
            &mut out,
            0,
            &ClientMethod::ConnectionTuneOk {
                channel_max: 1,
                frame_max,
                heartbeat: 0,
            },
        );
        encode_method(&mut out, 0, &ClientMethod::ConnectionOpen { vhost: "/" });
        encode_method(&mut out, 1, &ClientMethod::ChannelOpen);
        encode_publish(
            &mut out,
            1,
            exchange,
            "",
            &Properties::default(),
            payload,
            frame_max,
        );
        encode_method(
            &mut out,
            0,
            &ClientMethod::ConnectionClose(&CloseReason {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            }),
        );
        s.write_all(&out.split()).map_err(|e| e.to_string())?;
        loop {
            match next(&mut s)? {
                Method::ConnectionCloseOk => return Ok(()),
                Method::ConnectionClose(reason) | Method::ChannelClose(reason) => {
                    return Err(format!("rabbit refused the publish: {reason}"))
                }
                _ => {}
            }
        }
    }

    /// What the broker's processes printed.
    pub fn output(&self) -> String {
        self.guarded.output()
    }
}

impl Bus for RabbitServer {
    const NAME: &'static str = "rabbit";

    fn url(&self) -> String {
        RabbitServer::url(self)
    }

    fn output(&self) -> String {
        RabbitServer::output(self)
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
