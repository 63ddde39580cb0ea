//! Connection-level tests: RFC 6455 examples, every error path, the close
//! handshake, and chunking independence.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::Str;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const HELLO_MASKED: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

fn small_config() -> WsConfig {
    WsConfig {
        max_frame_size: 1000,
        max_message_size: 2000,
    }
}

fn server() -> WebSocket {
    WebSocket::server(WsConfig::default())
}

fn client() -> WebSocket {
    WebSocket::client(WsConfig::default(), || KEY)
}

/// A frame as a client would send it (masked with `KEY`).
fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, fin, opcode, payload, Some(KEY));
    out.to_vec()
}

/// Raw first bytes with a masking key appended, for hand-made headers.
fn masked_header(first: u8, len: u8) -> Vec<u8> {
    let mut out = vec![first, 0x80 | len];
    out.extend_from_slice(&KEY);
    out
}

/// Feeds the chunks one after the other, polling until `None` after each.
fn feed(ws: &mut WebSocket, chunks: &[&[u8]]) -> Vec<Result<WsMessage, WsError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        ws.receive(chunk);
        while let Some(event) = ws.poll_message() {
            out.push(event);
        }
    }
    out
}

fn transmitted(ws: &mut WebSocket) -> Vec<u8> {
    ws.poll_transmit().map(|b| b.to_vec()).unwrap_or_default()
}

fn text(s: &str) -> Result<WsMessage, WsError> {
    Ok(WsMessage::Text(Str::from(s)))
}

fn binary(b: &[u8]) -> Result<WsMessage, WsError> {
    Ok(WsMessage::Binary(Bytes::copy_from_slice(b)))
}

/// The unmasked close frame a server sends with `code`.
fn server_close(code: u16) -> Vec<u8> {
    let [hi, lo] = code.to_be_bytes();
    vec![0x88, 0x02, hi, lo]
}

// --- RFC 6455 section 5.7 examples -------------------------------------

#[test]
fn rfc_unmasked_hello_to_client() {
    let mut ws = client();
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(feed(&mut ws, &[&wire]), vec![text("Hello")]);
    assert!(ws.poll_transmit().is_none());
}

#[test]
fn rfc_masked_hello_to_server() {
    let mut ws = server();
    assert_eq!(feed(&mut ws, &[&HELLO_MASKED]), vec![text("Hello")]);
}

#[test]
fn client_masks_with_supplied_key() {
    let mut ws = client();
    ws.send_text("Hello").unwrap();
    assert_eq!(transmitted(&mut ws), HELLO_MASKED);
}

#[test]
fn server_sends_unmasked() {
    let mut ws = server();
    ws.send_text("Hello").unwrap();
    assert_eq!(
        transmitted(&mut ws),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

#[test]
fn rfc_fragmented_hello() {
    let mut ws = client();
    let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let last = [0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(feed(&mut ws, &[&first]), vec![]);
    assert_eq!(feed(&mut ws, &[&last]), vec![text("Hello")]);
}

#[test]
fn rfc_ping_answered_with_pong() {
    let mut ws = client();
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(feed(&mut ws, &[&ping]), vec![]);
    // The RFC's masked pong example, masked with the key source's key.
    assert_eq!(
        transmitted(&mut ws),
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );

    let mut ws = server();
    assert_eq!(
        feed(&mut ws, &[&client_frame(true, OpCode::Ping, b"Hello")]),
        vec![]
    );
    assert_eq!(
        transmitted(&mut ws),
        [0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']
    );
}

#[test]
fn rfc_256_and_64k_binary() {
    for len in [256usize, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut sender = server();
        sender.send_binary(&payload).unwrap();
        let wire = transmitted(&mut sender);
        let expected_header: &[u8] = if len == 256 {
            &[0x82, 0x7E, 0x01, 0x00]
        } else {
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0]
        };
        assert_eq!(&wire[..expected_header.len()], expected_header);
        let mut receiver = client();
        assert_eq!(feed(&mut receiver, &[&wire]), vec![binary(&payload)]);
    }
}

#[test]
fn single_frame_message_is_zero_copy() {
    let mut ws = server();
    let input = BytesMut::from(&client_frame(true, OpCode::Binary, &[7; 300])[..]);
    let start = input.as_ptr() as usize;
    ws.receive_bytes(input);
    let Some(Ok(WsMessage::Binary(data))) = ws.poll_message() else {
        panic!("expected a binary message");
    };
    assert_eq!(&data[..], &[7; 300][..]);
    // 2 header bytes, 2 bytes of 16-bit length, 4 bytes of key.
    assert_eq!(data.as_ptr() as usize, start + 8);
}

#[test]
fn fragmented_message_with_interleaved_ping() {
    let mut ws = server();
    let mut wire = client_frame(false, OpCode::Binary, b"ab");
    wire.extend(client_frame(true, OpCode::Ping, b"p1"));
    wire.extend(client_frame(false, OpCode::Continuation, b"cd"));
    wire.extend(client_frame(true, OpCode::Pong, b"ignored"));
    wire.extend(client_frame(true, OpCode::Ping, b"p2"));
    wire.extend(client_frame(true, OpCode::Continuation, b"ef"));
    wire.extend(client_frame(true, OpCode::Text, b"next"));
    assert_eq!(
        feed(&mut ws, &[&wire]),
        vec![binary(b"abcdef"), text("next")]
    );
    assert_eq!(
        transmitted(&mut ws),
        [0x8a, 0x02, b'p', b'1', 0x8a, 0x02, b'p', b'2']
    );
}

#[test]
fn fragmented_text_split_inside_a_character() {
    // "é" is C3 A9: split across two fragments.
    let mut ws = server();
    let mut wire = client_frame(false, OpCode::Text, b"caf\xc3");
    wire.extend(client_frame(true, OpCode::Continuation, b"\xa9!"));
    assert_eq!(feed(&mut ws, &[&wire]), vec![text("café!")]);
}

#[test]
fn empty_messages() {
    let mut ws = server();
    let mut wire = client_frame(true, OpCode::Text, b"");
    wire.extend(client_frame(false, OpCode::Binary, b""));
    wire.extend(client_frame(true, OpCode::Continuation, b""));
    assert_eq!(feed(&mut ws, &[&wire]), vec![text(""), binary(b"")]);
}

// --- error paths ---------------------------------------------------------

/// Feeds `wire` to a fresh server (or client), expects exactly `error`, the
/// close frame with its code, and a dead connection afterwards.
fn assert_fails(mut ws: WebSocket, wire: &[u8], error: WsError) {
    let code = error.close_code();
    let events = feed(&mut ws, &[wire]);
    assert_eq!(events, vec![Err(error)]);
    assert!(ws.is_closed());
    let close = transmitted(&mut ws);
    let mut expected = BytesMut::new();
    let mask = (ws.role() == Role::Client).then_some(KEY);
    encode_frame(
        &mut expected,
        true,
        OpCode::Close,
        &code.0.to_be_bytes(),
        mask,
    );
    assert_eq!(close, expected.to_vec());
    // Nothing more is read or sent.
    ws.receive(&client_frame(true, OpCode::Text, b"late"));
    assert_eq!(ws.poll_message(), None);
    assert_eq!(ws.send_text("x"), Err(LocalError::NotOpen));
    assert_eq!(ws.close(CloseCode::NORMAL, ""), Err(LocalError::NotOpen));
    assert!(ws.poll_transmit().is_none());
}

#[test]
fn unmasked_frame_from_client() {
    assert_fails(
        server(),
        &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
        WsError::UnmaskedFrame,
    );
}

#[test]
fn masked_frame_from_server() {
    assert_fails(client(), &HELLO_MASKED, WsError::MaskedFrame);
}

#[test]
fn reserved_bits() {
    assert_fails(
        server(),
        &masked_header(0xC1, 0),
        WsError::ReservedBits(0b100),
    );
    assert_fails(server(), &masked_header(0x91, 0), WsError::ReservedBits(1));
}

#[test]
fn reserved_opcodes() {
    for op in [0x3u8, 0x7, 0xB, 0xF] {
        assert_fails(
            server(),
            &masked_header(0x80 | op, 0),
            WsError::ReservedOpcode(op),
        );
    }
}

#[test]
fn fragmented_control_frame() {
    assert_fails(
        server(),
        &client_frame(false, OpCode::Ping, b"x"),
        WsError::FragmentedControlFrame,
    );
}

#[test]
fn control_frame_over_125() {
    assert_fails(
        server(),
        &client_frame(true, OpCode::Ping, &[0; 126]),
        WsError::ControlFrameTooLarge,
    );
}

#[test]
fn non_minimal_length() {
    assert_fails(
        server(),
        &[0x82, 0xFE, 0x00, 0x05],
        WsError::NonMinimalLength,
    );
}

#[test]
fn continuation_without_message() {
    assert_fails(
        server(),
        &client_frame(true, OpCode::Continuation, b"x"),
        WsError::UnexpectedContinuation,
    );
}

#[test]
fn new_message_inside_fragmented_one() {
    let mut wire = client_frame(false, OpCode::Text, b"a");
    wire.extend(client_frame(true, OpCode::Binary, b"b"));
    assert_fails(server(), &wire, WsError::ExpectedContinuation);
}

#[test]
fn invalid_utf8_single_frame() {
    assert_fails(
        server(),
        &client_frame(true, OpCode::Text, b"\xff"),
        WsError::InvalidUtf8,
    );
}

#[test]
fn truncated_multibyte_at_message_end() {
    // A single frame ending inside a 3-byte sequence.
    assert_fails(
        server(),
        &client_frame(true, OpCode::Text, b"ok\xe2\x82"),
        WsError::InvalidUtf8,
    );
    // Fragments whose last one leaves the sequence unfinished.
    let mut wire = client_frame(false, OpCode::Text, b"ok\xf0\x9f");
    wire.extend(client_frame(true, OpCode::Continuation, b"\x98"));
    assert_fails(server(), &wire, WsError::InvalidUtf8);
}

#[test]
fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
    let mut ws = server();
    let events = feed(
        &mut ws,
        &[&client_frame(false, OpCode::Text, b"ab\xc0\xafcd")],
    );
    // No final fragment yet, and still the error is reported.
    assert_eq!(events, vec![Err(WsError::InvalidUtf8)]);
    assert_eq!(transmitted(&mut ws), server_close(1007));
}

#[test]
fn frame_too_large_from_header_alone() {
    let mut ws = WebSocket::server(small_config());
    // Header announcing 1001 bytes; none of the payload sent.
    let header = [0x82, 0xFE, 0x03, 0xE9, 0, 0, 0, 0];
    let events = feed(&mut ws, &[&header]);
    assert_eq!(
        events,
        vec![Err(WsError::FrameTooLarge {
            len: 1001,
            max: 1000
        })]
    );
    assert_eq!(transmitted(&mut ws), server_close(1009));
    // The payload that follows is not buffered.
    ws.receive(&[0; 4096]);
    assert!(format!("{ws:?}").contains("inbound_len: 0"));
}

#[test]
fn huge_declared_length_refused_without_allocation() {
    let mut ws = server();
    let header = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let events = feed(&mut ws, &[&header]);
    assert!(matches!(events[..], [Err(WsError::FrameTooLarge { .. })]));
}

#[test]
fn message_too_large_across_fragments_from_header_alone() {
    let mut ws = WebSocket::server(small_config());
    let mut wire = client_frame(false, OpCode::Binary, &[1; 1000]);
    wire.extend(client_frame(false, OpCode::Continuation, &[2; 1000]));
    assert_eq!(feed(&mut ws, &[&wire]), vec![]);
    // The third fragment's header alone, announcing one byte too many.
    let events = feed(&mut ws, &[&masked_header(0x80, 1)]);
    assert_eq!(
        events,
        vec![Err(WsError::MessageTooLarge {
            len: 2001,
            max: 2000
        })]
    );
    assert_eq!(transmitted(&mut ws), server_close(1009));
}

#[test]
fn single_frame_over_message_limit() {
    let config = WsConfig {
        max_frame_size: 100,
        max_message_size: 10,
    };
    assert_fails(
        WebSocket::server(config),
        &masked_header(0x82, 11),
        WsError::MessageTooLarge { len: 11, max: 10 },
    );
}

#[test]
fn bad_close_payloads() {
    assert_fails(
        server(),
        &client_frame(true, OpCode::Close, &[0x03]),
        WsError::InvalidClosePayload,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
        assert_fails(
            server(),
            &client_frame(true, OpCode::Close, &code.to_be_bytes()),
            WsError::InvalidCloseCode(code),
        );
    }
    assert_fails(
        server(),
        &client_frame(true, OpCode::Close, b"\x03\xe8\xff"),
        WsError::InvalidCloseReason,
    );
}

#[test]
fn error_close_codes() {
    assert_eq!(
        WsError::UnmaskedFrame.close_code(),
        CloseCode::PROTOCOL_ERROR
    );
    assert_eq!(
        WsError::InvalidUtf8.close_code(),
        CloseCode::INVALID_PAYLOAD
    );
    assert_eq!(
        WsError::InvalidCloseReason.close_code(),
        CloseCode::INVALID_PAYLOAD
    );
    assert_eq!(
        WsError::MessageTooLarge { len: 2, max: 1 }.close_code(),
        CloseCode::MESSAGE_TOO_BIG
    );
    assert_eq!(WsError::UnexpectedEof.close_code(), CloseCode::ABNORMAL);
}

#[test]
fn error_after_local_close_sends_no_second_close() {
    let mut ws = server();
    ws.close(CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(transmitted(&mut ws), b"\x88\x05\x03\xe9bye");
    let events = feed(&mut ws, &[&[0x81, 0x00]]);
    assert_eq!(events, vec![Err(WsError::UnmaskedFrame)]);
    assert!(ws.is_closed());
    assert!(ws.poll_transmit().is_none());
}

// --- close handshake ------------------------------------------------------

#[test]
fn peer_initiated_close() {
    let mut ws = server();
    let events = feed(
        &mut ws,
        &[&client_frame(true, OpCode::Close, b"\x03\xe8bye")],
    );
    assert_eq!(
        events,
        vec![Ok(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: Str::from("bye"),
        })))]
    );
    assert!(ws.is_closed());
    // The reply echoes the code.
    assert_eq!(transmitted(&mut ws), server_close(1000));
    assert_eq!(ws.send_binary(b"x"), Err(LocalError::NotOpen));
    // End of input after a completed handshake is normal.
    ws.receive_eof();
    assert_eq!(ws.poll_message(), None);
}

#[test]
fn peer_close_without_code() {
    let mut ws = client();
    let events = feed(&mut ws, &[&[0x88, 0x00]]);
    assert_eq!(events, vec![Ok(WsMessage::Close(None))]);
    let mut expected = BytesMut::new();
    encode_frame(&mut expected, true, OpCode::Close, b"", Some(KEY));
    assert_eq!(transmitted(&mut ws), expected.to_vec());
}

#[test]
fn peer_close_mid_message_and_bytes_after_it() {
    let mut ws = server();
    let mut wire = client_frame(false, OpCode::Text, b"unfinished");
    wire.extend(client_frame(true, OpCode::Close, b"\x03\xe9"));
    wire.extend(client_frame(true, OpCode::Text, b"after close"));
    let events = feed(&mut ws, &[&wire]);
    assert_eq!(
        events,
        vec![Ok(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::GOING_AWAY,
            reason: Str::new(),
        })))]
    );
    assert_eq!(transmitted(&mut ws), server_close(1001));
}

#[test]
fn locally_initiated_close() {
    let mut ws = client();
    ws.close(CloseCode::NORMAL, "done").unwrap();
    assert!(ws.is_closing());
    let mut expected = BytesMut::new();
    encode_frame(
        &mut expected,
        true,
        OpCode::Close,
        b"\x03\xe8done",
        Some(KEY),
    );
    assert_eq!(transmitted(&mut ws), expected.to_vec());
    assert_eq!(ws.send_text("no"), Err(LocalError::NotOpen));
    assert_eq!(ws.send_ping(b""), Err(LocalError::NotOpen));
    assert_eq!(ws.close(CloseCode::NORMAL, ""), Err(LocalError::NotOpen));

    // The server still had data in flight, and a ping we must not answer.
    let mut wire = vec![0x81, 0x02, b'h', b'i'];
    wire.extend([0x89, 0x00]);
    wire.extend(server_close(1000));
    let events = feed(&mut ws, &[&wire]);
    assert_eq!(
        events,
        vec![
            text("hi"),
            Ok(WsMessage::Close(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: Str::new(),
            })))
        ]
    );
    assert!(ws.is_closed());
    assert!(ws.poll_transmit().is_none());
}

#[test]
fn close_handshake_between_two_endpoints() {
    let mut client = client();
    let mut server = server();
    client.send_text("4hello").unwrap();
    client.close(CloseCode::NORMAL, "").unwrap();
    let wire = transmitted(&mut client);
    let events = feed(&mut server, &[&wire]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], text("4hello"));
    assert!(server.is_closed());
    let reply = transmitted(&mut server);
    assert_eq!(
        feed(&mut client, &[&reply]),
        vec![Ok(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: Str::new()
        })))]
    );
    assert!(client.is_closed());
}

#[test]
fn eof_without_close_handshake() {
    let mut ws = server();
    let frame = client_frame(true, OpCode::Text, b"last");
    ws.receive(&frame[..frame.len() - 1]);
    ws.receive_eof();
    assert_eq!(ws.poll_message(), Some(Err(WsError::UnexpectedEof)));
    assert_eq!(ws.poll_message(), None);
    assert!(ws.is_closed());
    // No close frame: the transport is gone.
    assert!(ws.poll_transmit().is_none());

    // Complete messages received before the end are still delivered.
    let mut ws = server();
    ws.receive(&frame);
    ws.receive_eof();
    assert_eq!(ws.poll_message(), Some(text("last")));
    assert_eq!(ws.poll_message(), Some(Err(WsError::UnexpectedEof)));
}

#[test]
fn local_misuse() {
    let mut ws = server();
    assert_eq!(
        ws.send_ping(&[0; 126]),
        Err(LocalError::ControlPayloadTooLarge(126))
    );
    assert_eq!(
        ws.send_pong(&[0; 200]),
        Err(LocalError::ControlPayloadTooLarge(200))
    );
    assert_eq!(
        ws.close(CloseCode::NO_STATUS, ""),
        Err(LocalError::InvalidCloseCode(1005))
    );
    assert_eq!(
        ws.close(CloseCode(1006), ""),
        Err(LocalError::InvalidCloseCode(1006))
    );
    assert_eq!(
        ws.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(LocalError::CloseReasonTooLong(124))
    );
    // Nothing was queued and the connection is still open.
    assert!(ws.poll_transmit().is_none());
    assert!(ws.is_open());
    ws.send_ping(&[0; 125]).unwrap();
    ws.send_pong(b"").unwrap();
    assert_eq!(ws.pending_transmit_len(), 2 + 125 + 2);
}

#[test]
fn transmit_order_follows_queue_order() {
    let mut ws = server();
    ws.send_text("a").unwrap();
    // A ping from the peer is answered between our two sends.
    feed(&mut ws, &[&client_frame(true, OpCode::Ping, b"p")]);
    ws.send_binary(b"b").unwrap();
    assert_eq!(
        transmitted(&mut ws),
        [0x81, 0x01, b'a', 0x8a, 0x01, b'p', 0x82, 0x01, b'b']
    );
    assert!(ws.poll_transmit().is_none());
}

// --- chunking independence ----------------------------------------------

#[derive(Debug, Clone)]
enum Sent {
    Text(String),
    Binary(Vec<u8>),
}

/// A message with where to cut it into fragments, and whether to slip a
/// ping after each fragment.
fn sent_strategy() -> impl Strategy<Value = (Sent, Vec<usize>, bool)> {
    let message = prop_oneof![
        ".{0,40}".prop_map(Sent::Text),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Sent::Binary),
    ];
    (
        message,
        proptest::collection::vec(0usize..400, 0..4),
        any::<bool>(),
    )
}

/// Encodes the messages as a client would, fragmented at the given cuts,
/// each key different.
fn encode_messages(messages: &[(Sent, Vec<usize>, bool)]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut counter = 0u32;
    let mut next_key = || {
        counter = counter.wrapping_mul(2_654_435_761).wrapping_add(12345);
        counter.to_be_bytes()
    };
    for (message, cuts, pings) in messages {
        let (opcode, bytes) = match message {
            Sent::Text(s) => (OpCode::Text, s.as_bytes()),
            Sent::Binary(b) => (OpCode::Binary, &b[..]),
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut start = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let fin = i == cuts.len() - 1;
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            encode_frame(&mut out, fin, op, &bytes[start..end], Some(next_key()));
            if *pings {
                encode_frame(
                    &mut out,
                    true,
                    OpCode::Ping,
                    &bytes[..bytes.len().min(3)],
                    Some(next_key()),
                );
            }
            start = end;
        }
    }
    out.to_vec()
}

fn expected_of(messages: &[(Sent, Vec<usize>, bool)]) -> Vec<Result<WsMessage, WsError>> {
    messages
        .iter()
        .map(|(m, _, _)| match m {
            Sent::Text(s) => text(s),
            Sent::Binary(b) => binary(b),
        })
        .collect()
}

/// Feeds `wire` cut at `cuts`, returning the events and everything sent.
fn run_chunked(wire: &[u8], cuts: &[usize]) -> (Vec<Result<WsMessage, WsError>>, Vec<u8>) {
    let mut ws = WebSocket::server(small_config());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(wire.len());
    let mut chunks = Vec::new();
    let mut start = 0;
    for end in cuts {
        chunks.push(&wire[start..end]);
        start = end;
    }
    let events = feed(&mut ws, &chunks);
    let mut sent = Vec::new();
    while let Some(bytes) = ws.poll_transmit() {
        sent.extend_from_slice(&bytes);
    }
    (events, sent)
}

proptest! {
    #[test]
    fn whole_bytewise_and_random_chunks_agree(
        messages in proptest::collection::vec(sent_strategy(), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let wire = encode_messages(&messages);
        let (whole, whole_sent) = run_chunked(&wire, &[]);
        prop_assert_eq!(&whole, &expected_of(&messages));
        let bytewise: Vec<usize> = (0..wire.len()).collect();
        let (by_byte, by_byte_sent) = run_chunked(&wire, &bytewise);
        prop_assert_eq!(&by_byte, &whole);
        prop_assert_eq!(&by_byte_sent, &whole_sent);
        let (random, random_sent) = run_chunked(&wire, &cuts);
        prop_assert_eq!(&random, &whole);
        prop_assert_eq!(&random_sent, &whole_sent);
    }

    /// Arbitrary bytes never panic, and chunking changes neither the events
    /// (errors included) nor the bytes sent back.
    #[test]
    fn garbage_is_chunking_independent(
        prefix in proptest::collection::vec(sent_strategy(), 0..2),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = encode_messages(&prefix);
        wire.extend_from_slice(&garbage);
        let (whole, whole_sent) = run_chunked(&wire, &[]);
        let bytewise: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(&run_chunked(&wire, &bytewise), &(whole.clone(), whole_sent.clone()));
        prop_assert_eq!(&run_chunked(&wire, &cuts), &(whole, whole_sent));
    }

    #[test]
    fn client_server_round_trip(
        messages in proptest::collection::vec(sent_strategy(), 0..6),
        keys in any::<[u8; 4]>(),
    ) {
        let mut key = u32::from_be_bytes(keys);
        let mut client = WebSocket::client(WsConfig::default(), move || {
            key = key.rotate_left(7) ^ 0x9E37_79B9;
            key.to_be_bytes()
        });
        let mut server = server();
        for (message, _, _) in &messages {
            match message {
                Sent::Text(s) => client.send_text(s).unwrap(),
                Sent::Binary(b) => client.send_binary(b).unwrap(),
            }
        }
        let wire = transmitted(&mut client);
        let received = feed(&mut server, &[&wire]);
        prop_assert_eq!(&received, &expected_of(&messages));
        // And back from server to client.
        for event in &received {
            match event {
                Ok(WsMessage::Text(s)) => server.send_text(s).unwrap(),
                Ok(WsMessage::Binary(b)) => server.send_binary(b).unwrap(),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let wire = transmitted(&mut server);
        prop_assert_eq!(feed(&mut client, &[&wire]), expected_of(&messages));
    }
}

// --- permessage-deflate (RFC 7692) -------------------------------------

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;

    fn params() -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        }
    }

    fn config(threshold: usize) -> DeflateConfig {
        DeflateConfig {
            threshold,
            ..DeflateConfig::default()
        }
    }

    fn pair(threshold: usize) -> (WebSocket, WebSocket) {
        let server =
            WebSocket::server(WsConfig::default()).with_deflate(params(), &config(threshold));
        let client = WebSocket::client(WsConfig::default(), || KEY)
            .with_deflate(params(), &config(threshold));
        (server, client)
    }

    #[test]
    fn rfc7692_hello_from_server_and_client() {
        let (mut server, mut client) = pair(0);
        // Section 7.2.3.1: an unmasked compressed "Hello" with RSV1.
        let wire = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(feed(&mut client, &[&wire]), vec![text("Hello")]);
        // Section 7.2.3.2: the second "Hello" refers back to the first.
        let again = [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(feed(&mut client, &[&again]), vec![text("Hello")]);
        // The same masked, to a server, and fragmented (RSV1 on the first
        // frame only).
        let mut out = BytesMut::new();
        encode_frame_rsv1(
            &mut out,
            false,
            true,
            OpCode::Text,
            &[0xf2, 0x48, 0xcd],
            Some(KEY),
        );
        encode_frame(
            &mut out,
            true,
            OpCode::Continuation,
            &[0xc9, 0xc9, 0x07, 0x00],
            Some(KEY),
        );
        let chunks: Vec<&[u8]> = out.chunks(1).collect();
        assert_eq!(feed(&mut server, &chunks), vec![text("Hello")]);
    }

    #[test]
    fn round_trip_both_ways_in_any_chunks() {
        let (mut server, mut client) = pair(16);
        let long = "hello engine.io ".repeat(200);
        let binary: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        for _ in 0..3 {
            server.send_text(&long).unwrap();
            server.send_binary(&binary).unwrap();
            server.send_text("short").unwrap();
            let wire = transmitted(&mut server);
            assert_eq!(wire[0] & 0x40, 0x40, "compressed text has RSV1");
            assert!(wire.len() < long.len(), "{}", wire.len());
            let whole = feed(&mut client, &[&wire]);
            assert_eq!(whole, vec![text(&long), binary_msg(&binary), text("short")]);

            client.send_text(&long).unwrap();
            client.send_binary(&binary).unwrap();
            let wire = transmitted(&mut client);
            let chunks: Vec<&[u8]> = wire.chunks(7).collect();
            assert_eq!(
                feed(&mut server, &chunks),
                vec![text(&long), binary_msg(&binary)]
            );
        }
    }

    fn binary_msg(b: &[u8]) -> Result<WsMessage, WsError> {
        binary(b)
    }

    #[test]
    fn short_messages_and_control_frames_stay_plain() {
        let (mut server, _) = pair(1024);
        server.send_text("2").unwrap();
        server.send_ping(b"ping").unwrap();
        server.close(CloseCode::NORMAL, "bye").unwrap();
        let wire = transmitted(&mut server);
        assert_eq!(&wire[..3], [0x81, 0x01, b'2']);
        assert_eq!(wire[3], 0x89);
    }

    #[test]
    fn compressed_control_or_continuation_is_a_protocol_error() {
        let (mut server, _) = pair(0);
        let mut ping = client_frame(true, OpCode::Ping, b"");
        ping[0] |= 0x40;
        assert_eq!(
            feed(&mut server, &[&ping]),
            vec![Err(WsError::ReservedBits(4))]
        );
        assert_eq!(transmitted(&mut server), server_close(1002));

        let (mut server, _) = pair(0);
        let mut wire = client_frame(false, OpCode::Text, b"a");
        let mut cont = client_frame(true, OpCode::Continuation, b"b");
        cont[0] |= 0x40;
        wire.extend(cont);
        assert_eq!(
            feed(&mut server, &[&wire]),
            vec![Err(WsError::ReservedBits(4))]
        );
    }

    #[test]
    fn zip_bomb_is_refused_at_the_inflated_size() {
        let limits = WsConfig {
            max_frame_size: 100_000,
            max_message_size: 100_000,
        };
        let mut server = WebSocket::server(limits).with_deflate(params(), &config(0));
        let mut bomb_maker =
            WebSocket::client(WsConfig::default(), || KEY).with_deflate(params(), &config(0));
        bomb_maker.send_binary(&vec![0u8; 50_000_000]).unwrap();
        let wire = transmitted(&mut bomb_maker);
        assert!(wire.len() < 100_000, "{}", wire.len());
        let events = feed(&mut server, &[&wire]);
        assert!(
            matches!(
                &events[..],
                [Err(WsError::MessageTooLarge { max: 100_000, .. })]
            ),
            "{events:?}"
        );
        assert_eq!(transmitted(&mut server), server_close(1009));
        assert!(server.is_closed());

        // Fragmented: the limit counts the inflated fragments together.
        let mut server = WebSocket::server(limits).with_deflate(params(), &config(0));
        let mut frames = BytesMut::new();
        let compressed = {
            let mut c = WebSocket::server(WsConfig::default()).with_deflate(params(), &config(0));
            c.send_binary(&vec![1u8; 150_000]).unwrap();
            let wire = transmitted(&mut c);
            // Strip the unmasked header (2 + 2 or 8 bytes) to get the payload.
            let header = match wire[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            wire[header..].to_vec()
        };
        let half = compressed.len() / 2;
        encode_frame_rsv1(
            &mut frames,
            false,
            true,
            OpCode::Binary,
            &compressed[..half],
            Some(KEY),
        );
        encode_frame(
            &mut frames,
            true,
            OpCode::Continuation,
            &compressed[half..],
            Some(KEY),
        );
        let events = feed(&mut server, &[&frames]);
        assert!(
            matches!(&events[..], [Err(WsError::MessageTooLarge { .. })]),
            "{events:?}"
        );
    }

    #[test]
    fn bad_compressed_data_closes_with_1007() {
        let (mut server, _) = pair(0);
        let mut wire = client_frame(true, OpCode::Binary, &[0xff, 0xff, 0xff]);
        wire[0] |= 0x40;
        assert_eq!(
            feed(&mut server, &[&wire]),
            vec![Err(WsError::InvalidCompressedData)]
        );
        assert_eq!(transmitted(&mut server), server_close(1007));
    }

    #[test]
    fn compressed_text_must_inflate_to_utf8() {
        let (mut server, mut client) = pair(0);
        // Compress invalid UTF-8 as if it were text.
        server.send_binary(&[0xff, 0xfe, 0xfd]).unwrap();
        let mut wire = transmitted(&mut server);
        wire[0] = (wire[0] & 0xf0) | 0x1;
        assert_eq!(feed(&mut client, &[&wire]), vec![Err(WsError::InvalidUtf8)]);
    }

    #[test]
    fn without_negotiation_rsv1_is_refused() {
        let mut server = server();
        assert!(server.deflate_params().is_none());
        let mut wire = client_frame(true, OpCode::Text, b"x");
        wire[0] |= 0x40;
        assert_eq!(
            feed(&mut server, &[&wire]),
            vec![Err(WsError::ReservedBits(4))]
        );
    }

    proptest! {
        #[test]
        fn round_trip_any_messages_any_params(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>().prop_map(|b| b % 5), 0..2000), 1..5),
            server_reset: bool,
            client_reset: bool,
            server_bits in 8u8..=15,
            client_bits in 8u8..=15,
            chunk in 1usize..64,
        ) {
            let params = DeflateParams {
                server_no_context_takeover: server_reset,
                client_no_context_takeover: client_reset,
                server_max_window_bits: Some(server_bits),
                client_max_window_bits: Some(client_bits),
            };
            let mut server = WebSocket::server(WsConfig::default()).with_deflate(params, &config(0));
            let mut client =
                WebSocket::client(WsConfig::default(), || KEY).with_deflate(params, &config(0));
            for message in &messages {
                server.send_binary(message).unwrap();
                client.send_binary(message).unwrap();
            }
            let expected: Vec<_> = messages.iter().map(|m| binary(m)).collect();
            let wire = transmitted(&mut server);
            let chunks: Vec<&[u8]> = wire.chunks(chunk).collect();
            prop_assert_eq!(feed(&mut client, &chunks), expected.clone());
            let wire = transmitted(&mut client);
            let chunks: Vec<&[u8]> = wire.chunks(chunk).collect();
            prop_assert_eq!(feed(&mut server, &chunks), expected);
        }
    }
}
