//! Server statistics: connection rates aggregated per second, and the
//! periodic `server_stats` message.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use super::protocol::{now_ms, AggregatedEvent, NamespaceDetails, ServerStats};
use crate::{Server, Transport};

/// Entries kept between two `server_stats`; beyond, counts are dropped
/// (only reachable with an interval of hours).
const MAX_ENTRIES: usize = 1024;

/// Counts of what happened, per second and kind, until taken.
#[derive(Default)]
pub(crate) struct EventBuffer {
    entries: Mutex<Vec<AggregatedEvent>>,
}

impl EventBuffer {
    /// Count one `kind` now.
    pub(crate) fn push(&self, kind: &'static str) {
        let timestamp = now_ms() / 1000 * 1000;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Entries arrive in time order: the one to add to is near the end.
        if let Some(entry) = entries
            .iter_mut()
            .rev()
            .take_while(|e| e.timestamp == timestamp)
            .find(|e| e.kind == kind)
        {
            entry.count += 1;
        } else if entries.len() < MAX_ENTRIES {
            entries.push(AggregatedEvent {
                timestamp,
                kind,
                count: 1,
            });
        }
    }

    /// Everything counted since the last call.
    pub(crate) fn take(&self) -> Vec<AggregatedEvent> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The statistics of `server` now.
pub(crate) fn server_stats(
    server: &Server,
    server_id: Option<&str>,
    started: Instant,
    aggregated_events: Vec<AggregatedEvent>,
) -> ServerStats {
    let sockets = server.socket_refs();
    let sessions: HashSet<&str> = sockets.iter().map(|s| s.eio()).collect();
    let (clients_count, polling_clients_count) = server.with_endpoint(|ep| {
        let polling = sessions
            .iter()
            .filter(|eio| ep.engine().transport(eio) == Some(Transport::Polling))
            .count();
        (ep.engine().session_count(), polling)
    });
    let mut names = server.namespace_names();
    names.extend(sockets.iter().map(|s| s.ns().to_owned()));
    names.sort();
    names.dedup();
    let namespaces = names
        .into_iter()
        .map(|name| NamespaceDetails {
            sockets_count: server.of(&name).sockets().len(),
            name,
        })
        .collect();
    ServerStats {
        server_id: server_id
            .map(str::to_owned)
            .or_else(|| server.node_id())
            .unwrap_or_else(hostname),
        hostname: hostname(),
        pid: std::process::id(),
        uptime: started.elapsed().as_secs_f64(),
        clients_count,
        polling_clients_count,
        aggregated_events,
        namespaces,
    }
}

/// The machine's name (std has no call for it: the kernel's, then the
/// shell's variable).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_second_and_kind_until_taken() {
        let buffer = EventBuffer::default();
        buffer.push("rawConnection");
        buffer.push("rawConnection");
        buffer.push("rawDisconnection");
        let taken = buffer.take();
        let total = |kind| {
            taken
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.count)
                .sum::<u64>()
        };
        assert_eq!(total("rawConnection"), 2);
        assert_eq!(total("rawDisconnection"), 1);
        assert!(taken.iter().all(|e| e.timestamp % 1000 == 0));
        assert!(buffer.take().is_empty());
    }
}
