// Generated from the real @socket.io/redis-streams-adapter 0.3.1 (socket.io 4.8.4,
// socket.io-adapter 2.5.9, @msgpack/msgpack 2.8.0, redis 4.7.1) run against
// redis-server 7.0.15: two nodes, clients on both, recovery on; the stream
// read back with XRANGE, pub/sub captured with PSUBSCRIBE, the session key
// read with GET before another node restored it.

/// A golden stream entry: name, id, fields (in order).
pub(super) type GoldenEntry = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Stream entries.
pub(super) const ENTRIES: &[GoldenEntry] = &[
    ("broadcast_all", "1796655858690-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"hello\",\"world\",1,1.5,-3,null,{\"a\":[1]},\"é€😀\"]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}}")]),
    ("broadcast_room", "1796655858992-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},\"opts\":{\"rooms\":[\"room1\"],\"except\":[],\"flags\":{}}}")]),
    ("broadcast_rooms_except", "1796655859299-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{\"rooms\":[\"r1\",\"r2\"],\"except\":[\"r3\"],\"flags\":{}}}")]),
    ("broadcast_volatile", "1796655859599-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"vol\"]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{\"volatile\":true}}}")]),
    ("broadcast_binary", "1796655859901-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "gqZwYWNrZXSCpHR5cGUCpGRhdGGTo2JpbsQDAQIDgaFixAEJpG9wdHODpXJvb21zkaVyb29tMaZleGNlcHSQpWZsYWdzgA==")]),
    ("broadcast_long", "1796655860202-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"long\",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}}")]),
    ("sockets_join", "1796655860506-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "4"), ("data", "{\"opts\":{\"rooms\":[\"room1\"],\"except\":[],\"flags\":{}},\"rooms\":[\"j1\",\"j2\"]}")]),
    ("sockets_leave", "1796655860807-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "5"), ("data", "{\"opts\":{\"rooms\":[],\"except\":[\"room1\"],\"flags\":{}},\"rooms\":[\"j1\"]}")]),
    ("disconnect_sockets", "1796655861108-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "6"), ("data", "{\"opts\":{\"rooms\":[\"nobody\"],\"except\":[],\"flags\":{}},\"close\":true}")]),
    ("socket_emit", "1796655862660-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"direct\",\"x\"]},\"opts\":{\"rooms\":[\"oJD2luWrLZgdwyKNAAAA\"],\"except\":[],\"flags\":{}}}")]),
    ("missed", "1796655863273-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"missed\",1]},\"opts\":{\"rooms\":[\"room1\"],\"except\":[],\"flags\":{}}}")]),
    ("missed_other", "1796655863574-0", &[("uid", "c93b2ac1a32ffce7"), ("nsp", "/"), ("type", "3"), ("data", "{\"packet\":{\"type\":2,\"data\":[\"notmissed\",1]},\"opts\":{\"rooms\":[\"elsewhere\"],\"except\":[],\"flags\":{}}}")]),
];

/// Pub/sub messages: name, channel, hex.
pub(super) const PUBSUB: &[(&str, &str, &str)] = &[
    ("server_side_emit", "socket.io#/#", "84a47479706509a46461746181a67061636b657493a268690181a178a179a3756964b063393362326163316133326666636537a36e7370a12f"),
    ("server_side_emit_ack", "socket.io#/#", "84a47479706509a46461746182a9726571756573744964b037393832383261653231656437383033a67061636b657492a2686902a3756964b063393362326163316133326666636537a36e7370a12f"),
    ("server_side_emit_response", "socket.io#/#c93b2ac1a32ffce7#", "84a4747970650aa46461746182a9726571756573744964b037393832383261653231656437383033a67061636b6574a4706f6e67a3756964b061323934396234643538373033313132a36e7370a12f"),
    ("fetch_request", "socket.io#/#", "84a47479706507a46461746182a46f70747383a5726f6f6d7390a665786365707490a5666c61677380a9726571756573744964b037303431353262333637613933393961a3756964b063393362326163316133326666636537a36e7370a12f"),
    ("fetch_response", "socket.io#/#c93b2ac1a32ffce7#", "84a47479706508a46461746182a9726571756573744964b037303431353262333637613933393961a7736f636b6574739184a26964b455444361306d5f46456641466546546c41414143a968616e647368616b6589a76865616465727386b57365632d776562736f636b65742d76657273696f6ea23133b17365632d776562736f636b65742d6b6579b84956537845532f6e4f6d497a376e316845746e614a513d3daa636f6e6e656374696f6ea755706772616465a775706772616465a9776562736f636b6574b87365632d776562736f636b65742d657874656e73696f6e73d92a7065726d6573736167652d6465666c6174653b20636c69656e745f6d61785f77696e646f775f62697473a4686f7374af3132372e302e302e313a3430373537a474696d65d93e4d6f6e2044656320303720323032362031353a30343a313820474d542b303030302028436f6f7264696e6174656420556e6976657273616c2054696d6529a761646472657373b03a3a666666663a3132372e302e302e31a778646f6d61696ec2a6736563757265c2a6697373756564cf000001a25108c2cea375726cd9252f736f636b65742e696f2f3f45494f3d34267472616e73706f72743d776562736f636b6574a5717565727982a345494fa134a97472616e73706f7274a9776562736f636b6574a46175746880a5726f6f6d7394b455444361306d5f46456641466546546c41414143a5726f6f6d31a26a31a26a32a46461746182a475736572a3626f62a362696ec4020102a3756964b061323934396234643538373033313132a36e7370a12f"),
    ("broadcast_ack_request", "socket.io#/#", "84a47479706503a46461746183a67061636b657482a47479706502a46461746192a361736b07a9726571756573744964b039353734363937316235336339376437a46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8a3756964b063393362326163316133326666636537a36e7370a12f"),
    ("broadcast_client_count", "socket.io#/#c93b2ac1a32ffce7#", "84a4747970650ba46461746182a9726571756573744964b039353734363937316235336339376437ab636c69656e74436f756e7401a3756964b061323934396234643538373033313132a36e7370a12f"),
    ("broadcast_ack", "socket.io#/#c93b2ac1a32ffce7#", "84a4747970650ca46461746182a9726571756573744964b039353734363937316235336339376437a67061636b6574a26132a3756964b061323934396234643538373033313132a36e7370a12f"),
];

/// The uids of the two nodes (A wrote the stream, B answered).
pub(super) const UID_A: &str = "c93b2ac1a32ffce7";
pub(super) const UID_B: &str = "a2949b4d58703112";
/// The session A persisted: key, value, the client's offset then.
pub(super) const SESSION: (&str, &str, &str) = ("sio:session:FvPuH9XhgDGHtzt7AAAB", "hKNzaWS0b0pEMmx1V3JMWmdkd3lLTkFBQUGjcGlktEZ2UHVIOVhoZ0RHSHR6dDdBQUFCpXJvb21zlLRvSkQybHVXckxaZ2R3eUtOQUFBQaVyb29tMaJqMaJqMqRkYXRhgqR1c2Vyo2JvYqNiaW7EAgEC", "1796655862660-0");
/// What B replayed to the restored client.
pub(super) const RESTORED_MISSED: &str = "[[\"missed\",1,\"1796655863273-0\"]]";
pub(super) const RESTORED_SID: &str = "oJD2luWrLZgdwyKNAAAA";
