//! The messages the admin UI (`@socket.io/admin-ui` 0.5) reads, as
//! serializable types, and how a socket is described to it.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use socketio_core::http::query_pairs;

use crate::server::SocketRef;

/// The features the UI enables (its `Feature` names).
pub(crate) mod feature {
    pub(crate) const EMIT: &str = "EMIT";
    pub(crate) const JOIN: &str = "JOIN";
    pub(crate) const LEAVE: &str = "LEAVE";
    pub(crate) const DISCONNECT: &str = "DISCONNECT";
    pub(crate) const MJOIN: &str = "MJOIN";
    pub(crate) const MLEAVE: &str = "MLEAVE";
    pub(crate) const MDISCONNECT: &str = "MDISCONNECT";
    pub(crate) const AGGREGATED_EVENTS: &str = "AGGREGATED_EVENTS";
    pub(crate) const ALL_EVENTS: &str = "ALL_EVENTS";
}

/// `config`: sent to each admin client once connected.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Config {
    pub(crate) supported_features: Vec<&'static str>,
}

/// One entry of `aggregatedEvents`: how many of `type` happened in the
/// second starting at `timestamp` (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AggregatedEvent {
    pub(crate) timestamp: u64,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) count: u64,
}

/// A namespace and how many sockets it has here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamespaceDetails {
    pub(crate) name: String,
    pub(crate) sockets_count: usize,
}

/// `server_stats`: sent to every admin client periodically.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerStats {
    pub(crate) server_id: String,
    pub(crate) hostname: String,
    pub(crate) pid: u32,
    /// Seconds since the instrumentation started.
    pub(crate) uptime: f64,
    pub(crate) clients_count: usize,
    pub(crate) polling_clients_count: usize,
    pub(crate) aggregated_events: Vec<AggregatedEvent>,
    pub(crate) namespaces: Vec<NamespaceDetails>,
}

/// The request that opened a socket's session, as the UI shows it. The
/// client's auth object is left out, as both references do: it may hold
/// secrets.
#[derive(Debug, Serialize)]
pub(crate) struct Handshake {
    address: String,
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, serde_json::Value>,
    /// When the socket connected, in milliseconds since the epoch (0 when
    /// it connected before the instrumentation).
    issued: u64,
    /// The same, as an ISO 8601 date (empty when unknown).
    time: String,
    url: String,
    secure: bool,
    xdomain: bool,
}

/// A socket as the UI lists it (`all_sockets`, `socket_connected`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SerializedSocket {
    id: String,
    client_id: String,
    transport: &'static str,
    nsp: String,
    /// Typed socket values cannot be shown: always empty, as in
    /// python-socketio.
    data: BTreeMap<String, String>,
    handshake: Handshake,
    rooms: Vec<String>,
}

/// `socket_updated`: a socket moved to another transport.
#[derive(Debug, Serialize)]
pub(crate) struct SocketUpdated<'a> {
    pub(crate) id: &'a str,
    pub(crate) nsp: &'a str,
    pub(crate) transport: &'static str,
}

/// Describe `socket` (connected at `connected_ms`, 0 if unknown); `None`
/// once it is gone or while its connection is still being answered.
pub(crate) fn serialize_socket(socket: &SocketRef, connected_ms: u64) -> Option<SerializedSocket> {
    let id = socket.id();
    let eio = socket.eio();
    let (rooms, transport) = socket.server().with_endpoint(|ep| {
        if !ep.socket().is_connected(id).unwrap_or(false) {
            return None;
        }
        let rooms = ep.socket().rooms(id).ok()?;
        let transport = ep.engine().transport(eio)?;
        Some((rooms, transport))
    })?;
    Some(SerializedSocket {
        id: id.to_owned(),
        client_id: eio.to_owned(),
        transport: transport.as_str(),
        nsp: socket.ns().to_owned(),
        data: BTreeMap::new(),
        handshake: handshake(socket, connected_ms),
        rooms: rooms.into_iter().map(|r| r.to_string()).collect(),
    })
}

fn handshake(socket: &SocketRef, connected_ms: u64) -> Handshake {
    let Some(request) = socket.request() else {
        return Handshake {
            address: String::new(),
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            issued: connected_ms,
            time: iso_time(connected_ms),
            url: String::new(),
            secure: false,
            xdomain: false,
        };
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers().iter() {
        let value = String::from_utf8_lossy(value);
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let url = request.uri().to_owned();
    let mut query: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    if let Some((_, q)) = url.split_once('?') {
        for (name, value) in query_pairs(q) {
            let value = serde_json::Value::from(value.into_owned());
            match query.entry(name.into_owned()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                // Repeated names become a list, as Node's querystring does.
                std::collections::btree_map::Entry::Occupied(mut slot) => match slot.get_mut() {
                    serde_json::Value::Array(items) => items.push(value),
                    first => *first = serde_json::Value::Array(vec![first.take(), value]),
                },
            }
        }
    }
    // Behind a proxy, the client's address is the one it forwarded.
    let address = request
        .header("cf-connecting-ip")
        .or_else(|| request.header("x-forwarded-for"))
        .map(str::to_owned)
        .or_else(|| request.remote_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default();
    Handshake {
        address,
        secure: request
            .header("x-forwarded-proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https")),
        xdomain: headers.contains_key("origin"),
        headers,
        query,
        issued: connected_ms,
        time: iso_time(connected_ms),
        url,
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `ms` as the UI's dates are written (`2024-05-01T12:30:00.250Z`, what
/// JavaScript's `Date` serializes to); empty for 0 (unknown).
pub(crate) fn iso_time(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days as i64);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_javascript_writes_them() {
        assert_eq!(iso_time(0), "");
        assert_eq!(iso_time(1), "1970-01-01T00:00:00.001Z");
        // 2000-02-29 (a leap day of a century year), 23:59:59.999.
        assert_eq!(iso_time(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(iso_time(1_714_566_600_250), "2024-05-01T12:30:00.250Z");
        assert_eq!(iso_time(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }
}
