//! The echo examples run against each other in-process: every transport,
//! both namespaces, JSON and MessagePack, and a refused connection.

#[path = "../../../examples/echo_server.rs"]
#[allow(dead_code)]
mod echo_server;

#[path = "../../../examples/echo_client.rs"]
#[allow(dead_code)]
mod echo_client;

use echo_client::{within, ClientOptions, OVERALL};
use echo_server::ServerOptions;
use socketio::{AnyParser, ClientTransports, JsonParser, MsgPackParser, RuntimeKind, Value};

/// Run the whole matrix on one runtime; returns how many scenarios passed.
pub fn echo_matrix(runtime: RuntimeKind) -> usize {
    runtime.block_on(async move {
        let mut passed = 0;
        let parsers: [(&str, AnyParser); 2] = [
            ("json", JsonParser.into()),
            ("msgpack", MsgPackParser.into()),
        ];
        for (parser_name, parser) in parsers {
            let (server, addr) = echo_server::start(&ServerOptions {
                port: 0,
                parser,
                state_recovery: None,
                runtime: runtime.runtime(),
                adapter: None,
                ping_interval: None,
                ping_timeout: None,
                max_payload: None,
            })
            .await
            .expect("server starts");
            let url = format!("http://{addr}");
            let mut cases = Vec::new();
            for transports in [
                ClientTransports::Polling,
                ClientTransports::WebSocket,
                ClientTransports::Upgrade,
            ] {
                for nsp in ["/", "/custom"] {
                    let auth = (nsp == "/custom")
                        .then(|| Value::Object(vec![("token".into(), Value::from("abc"))]));
                    cases.push((transports, nsp, auth, false));
                }
            }
            let reject = Value::Object(vec![("reject".into(), Value::Bool(true))]);
            cases.push((ClientTransports::Polling, "/", Some(reject.clone()), true));
            cases.push((ClientTransports::WebSocket, "/custom", Some(reject), true));
            for (transports, nsp, auth, expect_reject) in cases {
                let options = ClientOptions {
                    url: url.clone(),
                    transports,
                    nsp: nsp.into(),
                    auth,
                    parser,
                    expect_reject,
                    reconnect_check: false,
                    runtime: runtime.runtime(),
                };
                let outcome = within(OVERALL, echo_client::run(&options)).await;
                match outcome {
                    Some(Ok(_)) => passed += 1,
                    other => panic!(
                        "{} {parser_name} {transports:?} {nsp} reject={expect_reject}: {other:?}",
                        runtime.name()
                    ),
                }
            }
            server.shutdown().await;
        }
        passed
    })
}
