//! A parser of the application's own, set on the server's and the client's
//! builders: events and acknowledgements go through it both ways.
#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use socketio::core::engine::Message;
use socketio::core::parser::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use socketio::core::socket::Packet;
use socketio::extract::Data;
use socketio::{AnyParser, Client, MsgPackParser, RuntimeKind, Server};

/// MessagePack, counting the packets it encodes and decodes.
#[derive(Debug)]
struct Counting {
    encoded: AtomicUsize,
    decoded: AtomicUsize,
}

impl Parser for Counting {
    type Decoder = <MsgPackParser as Parser>::Decoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        self.encoded.fetch_add(1, Ordering::Relaxed);
        MsgPackParser.encode(packet, out)
    }

    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        let packet = MsgPackParser.decode(decoder, message, limits)?;
        self.decoded
            .fetch_add(packet.is_some() as usize, Ordering::Relaxed);
        Ok(packet)
    }
}

static SERVER_SIDE: Counting = Counting {
    encoded: AtomicUsize::new(0),
    decoded: AtomicUsize::new(0),
};
static CLIENT_SIDE: Counting = Counting {
    encoded: AtomicUsize::new(0),
    decoded: AtomicUsize::new(0),
};

#[test]
fn a_custom_parser_from_the_builders_carries_events_and_acks() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder()
            .runtime(RuntimeKind::Tokio)
            .parser(AnyParser::custom(&SERVER_SIDE))
            .build();
        server.ns("/", |ns| {
            ns.on(
                "double",
                |Data((label, n)): Data<(String, u32)>| async move { (label, n * 2) },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Client::builder(&format!("http://{addr}"))
            .runtime(RuntimeKind::Tokio)
            .parser(AnyParser::custom(&CLIENT_SIDE))
            .connect()
            .await
            .expect("connects");
        let answer = client
            .call("double", &("n", 21), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            answer.deserialize::<(String, u32)>().unwrap(),
            ("n".into(), 42)
        );
        // CONNECT and the event one way, the CONNECT reply and the ack back.
        for side in [&SERVER_SIDE, &CLIENT_SIDE] {
            assert!(side.encoded.load(Ordering::Relaxed) >= 2);
            assert!(side.decoded.load(Ordering::Relaxed) >= 2);
        }
        client.disconnect().await;
        server.shutdown().await;
    });
}
