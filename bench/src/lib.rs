//! Helpers for benchmarks that compare variants measured in the same run.
//!
//! These machines are shared and noisy: sequential runs of one variant and
//! then another drift by up to 50%. [`Interleaved`] runs every variant once
//! per round, round after round, and reports each variant's median, so a
//! slow patch of time hits all variants alike.
//!
//! [`CountingAlloc`], installed as the global allocator of a benchmark
//! binary, lets [`Interleaved`] also report allocation calls and allocated
//! bytes per operation.
//!
//! [`wire`] is the hand-written raw Engine.IO WebSocket client of the load
//! generators (`loadgen`, `abuse`, `soak`); [`process`] runs a server under
//! test as a child process and samples its memory; [`flags`] reads the
//! binaries' command lines.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A set of variants measured in interleaved rounds.
pub struct Interleaved<'a> {
    variants: Vec<(String, Box<dyn FnMut() + 'a>)>,
    rounds: usize,
    batch_time: Duration,
}

/// Median nanoseconds per operation for one variant, and its allocations.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The variant's name.
    pub name: String,
    /// Median over rounds of nanoseconds per operation.
    pub median_ns: f64,
    /// Allocation calls (alloc, alloc_zeroed, realloc) per operation;
    /// `None` when [`CountingAlloc`] is not the global allocator.
    pub allocs_per_op: Option<f64>,
    /// Bytes requested from the allocator per operation (a realloc counts
    /// its new size); `None` when [`CountingAlloc`] is not installed.
    pub bytes_per_op: Option<f64>,
}

impl<'a> Interleaved<'a> {
    /// An empty set: `rounds` rounds (at least 11 for a stable median), each
    /// variant running for about `batch_time` per round.
    pub fn new(rounds: usize, batch_time: Duration) -> Self {
        Interleaved {
            variants: Vec::new(),
            rounds,
            batch_time,
        }
    }

    /// Add a variant: `op` performs one operation.
    pub fn add(&mut self, name: impl Into<String>, op: impl FnMut() + 'a) -> &mut Self {
        self.variants.push((name.into(), Box::new(op)));
        self
    }

    /// Run all rounds and return the medians, in the order added.
    pub fn run(mut self) -> Vec<Measured> {
        // Calibrate: how many iterations fill one batch, per variant. This
        // also warms caches and lazily built state before counting.
        let mut iters = Vec::new();
        for (_, op) in &mut self.variants {
            let mut n = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..n {
                    op();
                }
                if start.elapsed() >= self.batch_time / 4 || n >= 1 << 30 {
                    let per = start.elapsed().as_secs_f64() / n as f64;
                    iters.push(((self.batch_time.as_secs_f64() / per.max(1e-9)) as u64).max(1));
                    break;
                }
                n *= 2;
            }
        }
        // Allocations are deterministic: one short counted pass, outside the
        // timed rounds so that counting cannot skew the medians' spread.
        let counting = CountingAlloc::is_installed();
        let mut allocs = Vec::new();
        for (i, (_, op)) in self.variants.iter_mut().enumerate() {
            if !counting {
                allocs.push(None);
                continue;
            }
            let n = iters[i].clamp(1, 1000);
            CountingAlloc::start();
            let before = CountingAlloc::snapshot();
            for _ in 0..n {
                op();
            }
            let after = CountingAlloc::snapshot();
            CountingAlloc::stop();
            allocs.push(Some((
                (after.calls - before.calls) as f64 / n as f64,
                (after.bytes - before.bytes) as f64 / n as f64,
            )));
        }
        let mut samples = vec![Vec::new(); self.variants.len()];
        for _ in 0..self.rounds {
            for (i, (_, op)) in self.variants.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..iters[i] {
                    op();
                }
                samples[i].push(start.elapsed().as_nanos() as f64 / iters[i] as f64);
            }
        }
        self.variants
            .iter()
            .zip(samples)
            .zip(allocs)
            .map(|(((name, _), mut s), alloc)| {
                s.sort_by(f64::total_cmp);
                Measured {
                    name: name.clone(),
                    median_ns: s[s.len() / 2],
                    allocs_per_op: alloc.map(|a| a.0),
                    bytes_per_op: alloc.map(|a| a.1),
                }
            })
            .collect()
    }
}

/// Keep a value alive and opaque to the optimizer.
pub fn keep<T>(value: T) -> T {
    black_box(value)
}

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOC_CALLS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting allocation calls and bytes requested.
///
/// Install it in a benchmark binary with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
/// It counts only between [`CountingAlloc::start`] and
/// [`CountingAlloc::stop`], so timed code pays one relaxed load per
/// allocation and no atomic addition.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

/// Totals counted by [`CountingAlloc`] since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocCount {
    /// Allocation calls: alloc, alloc_zeroed and realloc.
    pub calls: u64,
    /// Bytes requested (a realloc counts its new size).
    pub bytes: u64,
}

impl CountingAlloc {
    /// Start counting.
    pub fn start() {
        COUNTING.store(true, Ordering::Relaxed);
    }

    /// Stop counting; the totals stay.
    pub fn stop() {
        COUNTING.store(false, Ordering::Relaxed);
    }

    /// The totals so far.
    pub fn snapshot() -> AllocCount {
        AllocCount {
            calls: ALLOC_CALLS.load(Ordering::Relaxed),
            bytes: ALLOC_BYTES.load(Ordering::Relaxed),
        }
    }

    /// Whether this is the process's global allocator (its counter moves
    /// when something is allocated).
    pub fn is_installed() -> bool {
        let was_counting = COUNTING.swap(true, Ordering::Relaxed);
        let before = Self::snapshot().calls;
        keep(Box::new(keep(0u64)));
        let moved = Self::snapshot().calls != before;
        COUNTING.store(was_counting, Ordering::Relaxed);
        moved
    }

    fn count(bytes: usize) {
        if !COUNTING.load(Ordering::Relaxed) {
            return;
        }
        ALLOC_CALLS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

pub mod flags;
pub mod process;
pub mod wire;
