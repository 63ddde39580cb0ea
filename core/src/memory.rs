//! Memory given back after a burst: queues and buffers that grew past a
//! small size are replaced once empty, so no session or connection keeps
//! its peak capacity for the rest of its life. Public so that drivers
//! keep their own queues by the same rule.

use std::collections::VecDeque;

/// Queues that grew beyond this many entries are given back once empty.
pub const KEEP_QUEUE_CAPACITY: usize = 64;

/// Byte buffers that grew beyond this many bytes are given back once empty.
pub const KEEP_BUFFER_CAPACITY: usize = 64 * 1024;

/// Replaces an empty queue whose capacity grew beyond
/// [`KEEP_QUEUE_CAPACITY`] with a fresh one (its memory is given back).
pub fn shrink_if_empty<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > KEEP_QUEUE_CAPACITY {
        *queue = VecDeque::new();
    }
}
