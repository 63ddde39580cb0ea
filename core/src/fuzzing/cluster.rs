//! The cluster codecs: the message bus formats of python-socketio and the
//! Node adapters, RESP, AMQP, ZMTP, Kafka.

use bytes::Bytes;

use crate::Str;

/// A python-socketio pub/sub message: what decodes must encode, and the
/// encoding must decode to the same message and encode to the same bytes.
pub fn python_bus(data: &[u8]) {
    use crate::cluster::python::{decode, encode};
    use crate::cluster::BusLimits;
    let limits = BusLimits::default();
    let Ok(message) = decode(data, &limits) else {
        return;
    };
    let encoded = encode(&message).expect("a decoded message must encode");
    // The encoding may be longer (ASCII escapes) and up to two levels
    // deeper (scalar `data` becomes a list; a lone placeholder template
    // gets its argument list back) than the input.
    let relaxed = BusLimits {
        max_message_bytes: usize::MAX,
        max_depth: limits.max_depth + 2,
        ..limits
    };
    let again = decode(&encoded, &relaxed).expect("an encoded message must decode");
    assert_eq!(again, message);
    assert_eq!(encode(&again).expect("re-encode"), encoded);
}

/// The RESP decoder: fed the whole input at once and then byte by byte,
/// it must yield the same values and stop at the same error; recognising
/// pub/sub replies must not panic.
pub fn resp_decoder(data: &[u8]) {
    use crate::cluster::resp::{PubSubReply, RespDecoder, RespLimits};
    // Small limits, so that the fuzzer reaches them.
    let limits = RespLimits {
        max_bulk_len: 1024,
        max_elements: 64,
        max_depth: 4,
        max_line_len: 64,
        max_reply_bytes: 4096,
    };
    let run = |chunk: usize| {
        let mut decoder = RespDecoder::new(limits);
        let mut values = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            decoder.feed(piece);
            loop {
                match decoder.next() {
                    Ok(Some(v)) => {
                        let _ = PubSubReply::from_value(&v);
                        // Debug text: NaN doubles are not equal to themselves.
                        values.push(format!("{v:?}"));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(decoder.next(), Err(e.clone()), "an error must stay");
                        return (values, Some(e));
                    }
                }
            }
        }
        (values, None)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The Node adapters' bus messages: every decoder of
/// [`crate::cluster::node`] gets the input; whatever decodes must encode,
/// decode again, and reach a fixed point (the first encoding may differ
/// from the input: key order, number forms, NaN in JSON).
pub fn node_bus(data: &[u8]) {
    use crate::cluster::node::{
        ClassicBroadcast, ClassicChannels, ClassicRequest, ClassicResponse, ShardedMessage,
    };
    use crate::cluster::BusLimits;

    fn stable<T: PartialEq + std::fmt::Debug>(
        decoded: Option<T>,
        encode: impl Fn(&T) -> Bytes,
        decode: impl Fn(&[u8]) -> Option<T>,
    ) {
        let Some(first) = decoded else { return };
        // The first encoding may still change a value: a NaN becomes JSON
        // `null`, which then counts as absent. From the second on, bytes
        // and values must be fixed points.
        let bytes = encode(&first);
        let second = decode(&bytes).expect("an encoded message must decode");
        let bytes = encode(&second);
        let third = decode(&bytes).expect("an encoded message must decode");
        assert_eq!(bytes, encode(&third), "encoding is not stable");
        // NaN is unequal to itself; the bytes above cover it.
        if !format!("{third:?}").contains("NaN") {
            assert_eq!(second, third, "decoding is not stable");
        }
    }

    let limits = BusLimits {
        max_message_bytes: 1 << 20,
        ..BusLimits::default()
    };
    stable(
        ClassicBroadcast::decode(data, &limits).ok(),
        ClassicBroadcast::encode,
        |b| ClassicBroadcast::decode(b, &limits).ok(),
    );
    stable(
        ClassicRequest::decode(data, &limits).ok(),
        ClassicRequest::encode,
        |b| ClassicRequest::decode(b, &limits).ok(),
    );
    stable(
        ClassicResponse::decode(data, &limits).ok(),
        ClassicResponse::encode,
        |b| ClassicResponse::decode(b, &limits).ok(),
    );
    stable(
        ShardedMessage::decode(data, &limits).ok(),
        ShardedMessage::encode,
        |b| ShardedMessage::decode(b, &limits).ok(),
    );
    if let Ok(channel) = std::str::from_utf8(data) {
        let _ = ClassicChannels::default().classify("/", channel);
    }
}

/// The AMQP 0-9-1 decoder ([`crate::cluster::amqp`]): any bytes, fed whole,
/// byte by byte and in chunks, give the same items and error; an error
/// stays; small limits so that the fuzzer reaches them.
pub fn amqp_frame(data: &[u8]) {
    use crate::cluster::amqp::{AmqpDecoder, AmqpLimits};
    let limits = AmqpLimits {
        max_frame_size: 4096,
        max_message_bytes: 512,
        max_table_depth: 4,
    };
    let run = |chunk: usize| {
        let mut decoder = AmqpDecoder::new(limits);
        let mut items = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            decoder.feed(piece);
            assert!(
                decoder.buffered() <= limits.max_frame_size as usize + chunk.max(1),
                "the decoder buffers more than one frame"
            );
            loop {
                match decoder.next() {
                    // Debug text: NaN floats are not equal to themselves.
                    Ok(Some(item)) => items.push(format!("{item:?}")),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(decoder.next(), Err(e.clone()), "an error must stay");
                        return (items, Some(e));
                    }
                }
            }
        }
        (items, None)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The streams adapter's formats ([`crate::cluster::node::streams`]): the
/// input is read three ways. As a stream entry (records separated by
/// `0xFF`, alternately field and value): whatever decodes must encode,
/// decode again and reach a fixed point. As a session value and as an
/// offset: the same. And a restore is fed the entry as a range answer: it
/// must end or ask for more, never panic.
pub fn node_streams(data: &[u8]) {
    use crate::cluster::node::streams::{
        decode_entry, encode_entry, RestoreStep, SessionRestore, StreamId, StreamsConfig,
        StreamsSession,
    };
    use crate::cluster::{BusLimits, StreamEntry};

    let limits = BusLimits {
        max_message_bytes: 1 << 20,
        ..BusLimits::default()
    };
    let records: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let fields: Vec<(Bytes, Bytes)> = records
        .chunks(2)
        .map(|pair| {
            (
                Bytes::copy_from_slice(pair[0]),
                Bytes::copy_from_slice(pair.get(1).copied().unwrap_or_default()),
            )
        })
        .collect();
    for only_plaintext in [false, true] {
        if let Ok(first) = decode_entry(&fields, &limits) {
            // The first encoding may change a value (NaN, key order,
            // binary as JSON with `only_plaintext`); then a fixed point.
            let bytes = encode_entry(&first, only_plaintext);
            let second = decode_entry(&bytes, &limits).expect("an encoded entry must decode");
            let bytes = encode_entry(&second, only_plaintext);
            let third = decode_entry(&bytes, &limits).expect("an encoded entry must decode");
            assert_eq!(
                bytes,
                encode_entry(&third, only_plaintext),
                "entry encoding not stable"
            );
            let _ = second.encode_msgpack();
        }
    }
    if let Ok(session) = StreamsSession::decode(data, &limits) {
        let bytes = session.encode();
        let second =
            StreamsSession::decode(&bytes, &limits).expect("an encoded session must decode");
        assert_eq!(bytes, second.encode(), "session encoding not stable");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<StreamId>() {
            assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
            if let Some(next) = id.next() {
                assert!(next > id);
            }
        }
    }
    // A restore from the start of time whose session is the whole input
    // and whose ranges answer with the entry.
    let config = StreamsConfig {
        read_count: 1,
        ..StreamsConfig::default()
    };
    let Ok((mut restore, _)) = SessionRestore::start(&config, "/", "p", "0-0", 1, 2, limits, 8)
    else {
        panic!("a valid offset must start a restore");
    };
    let origin = StreamEntry {
        id: Str::from_static("0-0"),
        fields: Vec::new(),
    };
    let mut step = restore.on_range(2, Some(std::slice::from_ref(&origin)), None);
    if step == RestoreStep::Wait {
        step = restore.on_key_taken(1, Some(data));
    }
    let entry = StreamEntry {
        id: Str::from_static("1-0"),
        fields,
    };
    let mut rounds = 0;
    while let RestoreStep::Send(_) = step {
        rounds += 1;
        assert!(rounds <= 200, "a restore must end");
        step = restore.on_range(2, Some(std::slice::from_ref(&entry)), None);
    }
}

/// The ZMTP peer ([`crate::cluster::zmtp`]): the input is what a publisher
/// sends a SUB socket. Whole, byte by byte and in chunks it gives the same
/// events and error; an error stays; the socket never buffers more than a
/// frame within the (small) limits. Every message is also read as a
/// python-socketio ZeroMQ envelope, whose payload must then decode or fail
/// cleanly.
pub fn zmtp_peer(data: &[u8]) {
    use crate::cluster::python::zmq::{unwrap, Unwrapped};
    use crate::cluster::zmtp::{SocketType, ZmtpEvent, ZmtpLimits, ZmtpSocket};
    use crate::cluster::BusLimits;
    let limits = ZmtpLimits {
        max_message_bytes: 512,
        max_parts: 4,
        max_command_bytes: 256,
    };
    let bus = BusLimits::default();
    let run = |chunk: usize| {
        let mut socket = ZmtpSocket::new(SocketType::Sub, Some(b"fuzz"), limits);
        socket.subscribe(b"");
        let mut events = Vec::new();
        let mut error = None;
        for piece in data.chunks(chunk.max(1)) {
            let result = socket.handle_bytes(piece);
            assert!(
                socket.buffered() <= 9 + limits.max_message_bytes as usize,
                "the socket buffers more than one frame"
            );
            while let Some(event) = socket.poll_event() {
                if let ZmtpEvent::Message(parts) = &event {
                    assert!(parts.len() <= limits.max_parts);
                    if let Ok(Unwrapped::Message { payload, .. }) = unwrap(&parts[0], &bus) {
                        let _ = crate::cluster::python::decode(&payload, &bus);
                    }
                }
                events.push(event);
            }
            while socket.poll_transmit().is_some() {}
            if let Err(e) = result {
                assert_eq!(
                    socket.handle_bytes(b"x"),
                    Err(e.clone()),
                    "an error must stay"
                );
                error = Some(e);
                break;
            }
        }
        (events, error)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The Kafka codec: the input is cut into response frames (whole and byte
/// by byte, which must agree) and each is read as the response to the
/// request named by the first byte; every record set (a fetch's, or the
/// input itself) is read as record batches, and the values read must
/// survive a round trip through [`crate::cluster::kafka::encode_record_batch`].
pub fn kafka_codec(data: &[u8]) {
    use crate::cluster::kafka::{
        decode_record_batches, decode_response, encode_record_batch, ApiKey, Batch, FrameDecoder,
        KafkaLimits, Response,
    };
    use bytes::{Bytes, BytesMut};
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let api = ApiKey::ALL[usize::from(selector) % ApiKey::ALL.len()];
    // Small limits, so that the fuzzer reaches them.
    let limits = KafkaLimits {
        max_frame_bytes: 4096,
        max_array_len: 64,
        max_string_len: 64,
    };
    let records = |set: &Bytes| {
        let Ok(batches) = decode_record_batches(set, &limits) else {
            return;
        };
        for batch in batches {
            if let Batch::Records { records, .. } = batch {
                let values: Vec<&[u8]> = records
                    .iter()
                    .map(|r| r.value.as_deref().unwrap_or_default())
                    .collect();
                let mut out = BytesMut::new();
                encode_record_batch(&mut out, 0, &values).expect("small values encode");
                let again = decode_record_batches(&out.freeze(), &limits).expect("own batch");
                let [Batch::Records { records: back, .. }] = &again[..] else {
                    panic!("own batch read as {again:?}");
                };
                let back: Vec<&[u8]> = back
                    .iter()
                    .map(|r| r.value.as_deref().unwrap_or_default())
                    .collect();
                assert_eq!(values, back, "record values do not round-trip");
            }
        }
    };
    let run = |chunk: usize| {
        let mut decoder = FrameDecoder::new(limits);
        let mut frames = Vec::new();
        for piece in rest.chunks(chunk.max(1)) {
            decoder.feed(piece);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => frames.push(Ok(frame)),
                    Ok(None) => break,
                    Err(e) => {
                        frames.push(Err(e));
                        return frames;
                    }
                }
            }
        }
        frames
    };
    let frames = run(rest.len());
    assert_eq!(frames, run(1), "whole and byte-by-byte feeding disagree");
    for frame in frames.into_iter().flatten() {
        if let Ok((_, Response::Fetch(fetch))) = decode_response(api, &frame, &limits) {
            for (_, p) in &fetch.partitions {
                records(&p.records);
            }
        }
    }
    records(&Bytes::copy_from_slice(rest));
}
