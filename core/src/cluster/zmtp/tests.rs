use super::*;

fn limits() -> ZmtpLimits {
    ZmtpLimits {
        max_message_bytes: 1000,
        max_parts: 4,
        max_command_bytes: 300,
    }
}

/// Feed `bytes` to `to` in pieces of `chunk`; the events it then has.
fn feed(to: &mut ZmtpSocket, bytes: &[u8], chunk: usize) -> Result<Vec<ZmtpEvent>, ZmtpError> {
    for piece in bytes.chunks(chunk.max(1)) {
        to.handle_bytes(piece)?;
        assert!(
            to.buffered() <= 9 + limits().max_message_bytes as usize,
            "buffers more than one frame"
        );
    }
    let mut events = Vec::new();
    while let Some(e) = to.poll_event() {
        events.push(e);
    }
    Ok(events)
}

fn out(s: &mut ZmtpSocket) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(b) = s.poll_transmit() {
        all.extend_from_slice(&b);
    }
    all
}

/// Both sides' bytes to the other until quiet; the events of each.
fn exchange(
    a: &mut ZmtpSocket,
    b: &mut ZmtpSocket,
    chunk: usize,
) -> (Vec<ZmtpEvent>, Vec<ZmtpEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let (to_b, to_a) = (out(a), out(b));
        if to_a.is_empty() && to_b.is_empty() {
            return (ea, eb);
        }
        eb.extend(feed(b, &to_b, chunk).unwrap());
        ea.extend(feed(a, &to_a, chunk).unwrap());
    }
}

fn ready(peer: SocketType) -> ZmtpEvent {
    ZmtpEvent::Ready {
        peer,
        minor: 1,
        metadata: vec![("Socket-Type".into(), Bytes::from(peer.name()))],
    }
}

fn greeting(major: u8, minor: u8, mechanism: &[u8]) -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, major, minor];
    let mut m = [0u8; 20];
    m[..mechanism.len()].copy_from_slice(mechanism);
    g.extend_from_slice(&m);
    g.extend_from_slice(&[0; 32]);
    g
}

fn command(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    put_command(&mut b, name, data);
    b.to_vec()
}

fn ready_command(socket_type: &str) -> Vec<u8> {
    let mut props = BytesMut::new();
    put_property(&mut props, "Socket-Type", socket_type.as_bytes());
    command("READY", &props)
}

#[test]
fn greeting_and_ready_bytes() {
    let mut push = ZmtpSocket::new(SocketType::Push, Some(b"me"), ZmtpLimits::default());
    let bytes = out(&mut push);
    assert_eq!(bytes.len(), 64 + 2 + 6 + 12 + 4 + 4 + 9 + 4 + 2);
    assert_eq!(&bytes[..12], &[0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1]);
    assert_eq!(&bytes[12..32], b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    assert!(bytes[32..64].iter().all(|&b| b == 0));
    assert_eq!(
        &bytes[64..],
        b"\x04\x29\x05READY\x0bSocket-Type\0\0\0\x04PUSH\x08Identity\0\0\0\x02me"
    );
}

#[test]
fn push_to_pull_whole_and_byte_by_byte() {
    for chunk in [1, 3, 64, 100_000] {
        let mut push = ZmtpSocket::new(SocketType::Push, None, limits());
        let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
        push.send(&[b"early"]);
        let (ep, el) = exchange(&mut push, &mut pull, chunk);
        assert_eq!(ep, vec![ready(SocketType::Pull)]);
        assert_eq!(
            el,
            vec![
                ready(SocketType::Push),
                ZmtpEvent::Message(vec![Bytes::from_static(b"early")])
            ]
        );
        assert!(push.is_open() && pull.is_open());
        assert_eq!(
            (push.peer(), push.minor()),
            (Some(SocketType::Pull), Some(1))
        );
        // Short, long (over 255 bytes) and empty frames, multipart.
        let long = vec![9u8; 700];
        push.send(&[b"a", &long, b""]);
        push.send(&[]);
        let (ep, el) = exchange(&mut push, &mut pull, chunk);
        assert!(ep.is_empty());
        assert_eq!(
            el,
            vec![
                ZmtpEvent::Message(vec![
                    Bytes::from_static(b"a"),
                    Bytes::from(long),
                    Bytes::new()
                ]),
                ZmtpEvent::Message(vec![Bytes::new()]),
            ]
        );
    }
}

#[test]
fn nothing_but_the_handshake_before_the_peer_is_ready() {
    let mut push = ZmtpSocket::new(SocketType::Push, None, limits());
    push.send(&[b"early"]);
    push.subscribe(b"");
    let handshake = out(&mut push);
    assert_eq!(handshake.len(), 64 + 2 + 26, "greeting and READY only");
    // The greeting alone releases nothing.
    assert!(feed(&mut push, &greeting(3, 1, b"NULL"), 64)
        .unwrap()
        .is_empty());
    assert!(out(&mut push).is_empty());
    assert!(!push.ping(1, b""));
    feed(&mut push, &ready_command("PULL"), 1).unwrap();
    let mut then = command("SUBSCRIBE", b"");
    then.extend_from_slice(b"\x00\x05early");
    assert_eq!(out(&mut push), then);
}

#[test]
fn subscriptions_in_both_forms() {
    // ZMTP 3.1: commands, queued until the peer's greeting is in.
    let mut sub = ZmtpSocket::new(SocketType::Sub, None, limits());
    let mut publ = ZmtpSocket::new(SocketType::Pub, None, limits());
    sub.subscribe(b"");
    sub.subscribe(b"news");
    let (es, ep) = exchange(&mut sub, &mut publ, 5);
    assert_eq!(es, vec![ready(SocketType::Pub)]);
    assert_eq!(
        ep,
        vec![
            ready(SocketType::Sub),
            ZmtpEvent::Subscribe(Bytes::new()),
            ZmtpEvent::Subscribe(Bytes::from_static(b"news")),
        ]
    );
    sub.cancel(b"news");
    publ.send(&[b"{\"type\": \"message\"}"]);
    let (es, ep) = exchange(&mut sub, &mut publ, 5);
    assert_eq!(ep, vec![ZmtpEvent::Cancel(Bytes::from_static(b"news"))]);
    assert_eq!(
        es,
        vec![ZmtpEvent::Message(vec![Bytes::from_static(
            b"{\"type\": \"message\"}"
        )])]
    );

    // A ZMTP 3.0 publisher: subscriptions are messages `\x01topic`, and
    // there is no PING.
    let mut sub = ZmtpSocket::new(SocketType::Sub, None, limits());
    sub.subscribe(b"t");
    out(&mut sub);
    let mut from_pub = greeting(3, 0, b"NULL");
    from_pub.extend(ready_command("XPUB"));
    let events = feed(&mut sub, &from_pub, 1).unwrap();
    assert_eq!(
        events,
        vec![ZmtpEvent::Ready {
            peer: SocketType::XPub,
            minor: 0,
            metadata: vec![("Socket-Type".into(), Bytes::from_static(b"XPUB"))],
        }]
    );
    assert_eq!(out(&mut sub), b"\x00\x02\x01t");
    sub.cancel(b"");
    assert_eq!(out(&mut sub), b"\x00\x01\x00");
    assert!(!sub.ping(10, b"x"));
}

#[test]
fn ping_pong_and_unknown_commands() {
    let mut push = ZmtpSocket::new(SocketType::Push, None, limits());
    assert!(!push.ping(10, b"early"), "no PING before the greeting");
    let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
    exchange(&mut push, &mut pull, 7);
    assert!(push.ping(30, &[7; 40]));
    let (ep, el) = exchange(&mut push, &mut pull, 7);
    assert!(el.is_empty());
    // The context is cut to 16 bytes.
    assert_eq!(ep, vec![ZmtpEvent::Pong(Bytes::from(vec![7u8; 16]))]);
    // A command of some later version is ignored.
    let events = feed(&mut push, &command("X-NEWS", b"whatever"), 2).unwrap();
    assert!(events.is_empty());
}

#[test]
fn oversized_messages_are_skipped_not_held() {
    for chunk in [1, 2, 10, 5000] {
        let mut push = ZmtpSocket::new(SocketType::Push, None, limits());
        let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
        exchange(&mut push, &mut pull, chunk);
        // One frame over the limit, then a message whose frames add up
        // over it, then one with too many frames; then a good one.
        push.send(&[&[1u8; 1001][..]]);
        push.send(&[&[2u8; 600][..], &[3u8; 600][..], b"tail"]);
        push.send(&[b"1", b"2", b"3", b"4", b"5"]);
        push.send(&[&[4u8; 1000][..]]);
        let (_, events) = exchange(&mut push, &mut pull, chunk);
        assert_eq!(
            events,
            vec![
                ZmtpEvent::Oversized {
                    bytes: 1001,
                    parts: 1
                },
                ZmtpEvent::Oversized {
                    bytes: 1204,
                    parts: 3
                },
                ZmtpEvent::Oversized { bytes: 5, parts: 5 },
                ZmtpEvent::Message(vec![Bytes::from(vec![4u8; 1000])]),
            ],
            "chunk {chunk}"
        );
    }
    // A frame claiming 2^64-1 bytes is skipped, not allocated.
    let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
    let mut bytes = greeting(3, 1, b"NULL");
    bytes.extend(ready_command("PUSH"));
    bytes.extend([0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    bytes.extend([0u8; 5000]);
    assert_eq!(
        feed(&mut pull, &bytes, 4096).unwrap(),
        vec![ready(SocketType::Push)]
    );
    assert_eq!(pull.buffered(), 0);
}

fn refused(bytes: &[u8]) -> ZmtpError {
    let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
    let whole = feed(&mut pull, bytes, bytes.len()).unwrap_err();
    // The error stays.
    assert_eq!(pull.handle_bytes(b"more").unwrap_err(), whole);
    let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
    assert_eq!(
        feed(&mut pull, bytes, 1).unwrap_err(),
        whole,
        "byte by byte"
    );
    whole
}

fn after_greeting(rest: &[u8]) -> Vec<u8> {
    let mut b = greeting(3, 1, b"NULL");
    b.extend_from_slice(rest);
    b
}

#[test]
fn hostile_peers_get_typed_errors() {
    assert_eq!(
        refused(b"-ERR this is Redis\r\n0123456789012345678901234567890123456789012345"),
        ZmtpError::BadSignature
    );
    let mut v1 = greeting(3, 1, b"NULL");
    v1[9] = 0x7e;
    assert_eq!(refused(&v1), ZmtpError::BadSignature);
    assert_eq!(
        refused(&greeting(2, 0, b"NULL")),
        ZmtpError::UnsupportedVersion { major: 2, minor: 0 }
    );
    assert_eq!(
        refused(&greeting(3, 1, b"CURVE")),
        ZmtpError::Mechanism("CURVE".into())
    );
    assert_eq!(
        refused(&greeting(3, 1, b"NULL\0X")),
        ZmtpError::Mechanism("NULL".into())
    );
    assert_eq!(
        refused(&after_greeting(&[0x80, 0])),
        ZmtpError::BadFlags(0x80)
    );
    assert_eq!(
        refused(&after_greeting(b"\x00\x01x")),
        ZmtpError::NotReady("a message".into())
    );
    assert_eq!(
        refused(&after_greeting(&command("PING", b"\0\0"))),
        ZmtpError::NotReady("command PING".into())
    );
    assert_eq!(
        refused(&after_greeting(&command("ERROR", b"\x07go away"))),
        ZmtpError::Peer("go away".into())
    );
    assert_eq!(
        refused(&after_greeting(&ready_command("SUB"))),
        ZmtpError::IncompatiblePeer {
            ours: SocketType::Pull,
            peer: SocketType::Sub
        }
    );
    assert!(matches!(
        refused(&after_greeting(&ready_command("CLIENT"))),
        ZmtpError::BadMetadata(_)
    ));
    assert!(matches!(
        refused(&after_greeting(&command("READY", b""))),
        ZmtpError::BadMetadata(_)
    ));
    assert!(matches!(
        refused(&after_greeting(&command(
            "READY",
            b"\x0bSocket-Type\0\0\0\x09PUSH"
        ))),
        ZmtpError::BadMetadata(_)
    ));
    assert!(matches!(
        refused(&after_greeting(&command("READY", b"\0"))),
        ZmtpError::BadMetadata(_)
    ));
    assert_eq!(
        refused(&after_greeting(&[0x06, 0, 0, 0, 0, 0, 0, 1, 0x2d])),
        ZmtpError::CommandTooLarge {
            size: 301,
            limit: 300
        }
    );
    assert_eq!(
        refused(&after_greeting(&[0x04, 0])),
        ZmtpError::Malformed("empty command")
    );
    assert_eq!(
        refused(&after_greeting(&[0x04, 2, 5, b'R'])),
        ZmtpError::Malformed("bad command name")
    );
    assert_eq!(
        refused(&after_greeting(&[0x05, 1, 0])),
        ZmtpError::Malformed("a command with the MORE flag")
    );
    let mut twice = ready_command("PUSH");
    twice.extend(ready_command("PUSH"));
    assert_eq!(
        refused(&after_greeting(&twice)),
        ZmtpError::Malformed("a second READY")
    );
    let mut ping = ready_command("PUSH");
    ping.extend(command("PING", b"\0"));
    assert_eq!(
        refused(&after_greeting(&ping)),
        ZmtpError::Malformed("PING without a TTL")
    );
}

#[test]
fn later_versions_talk_down() {
    let mut pull = ZmtpSocket::new(SocketType::Pull, None, limits());
    let mut bytes = greeting(4, 7, b"NULL");
    bytes.extend(ready_command("PUSH"));
    assert_eq!(
        feed(&mut pull, &bytes, 3).unwrap(),
        vec![ready(SocketType::Push)]
    );
    assert_eq!(pull.minor(), Some(1));
}

#[test]
fn socket_type_table() {
    for t in SocketType::ALL {
        assert_eq!(SocketType::from_name(t.name().as_bytes()), Some(t));
        for u in SocketType::ALL {
            assert_eq!(t.accepts(u), u.accepts(t), "{t:?} {u:?} symmetric");
        }
    }
    assert!(SocketType::Push.accepts(SocketType::Pull));
    assert!(SocketType::Sub.accepts(SocketType::XPub));
    assert!(!SocketType::Sub.accepts(SocketType::Push));
    assert_eq!(SocketType::from_name(b"push"), None);
}
