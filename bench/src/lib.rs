//! Helpers for benchmarks that compare variants measured in the same run.
//!
//! These machines are shared and noisy: sequential runs of one variant and
//! then another drift by up to 50%. [`Interleaved`] runs every variant once
//! per round, round after round, and reports each variant's median, so a
//! slow patch of time hits all variants alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A set of variants measured in interleaved rounds.
pub struct Interleaved<'a> {
    variants: Vec<(String, Box<dyn FnMut() + 'a>)>,
    rounds: usize,
    batch_time: Duration,
}

/// Median nanoseconds per operation for one variant.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The variant's name.
    pub name: String,
    /// Median over rounds of nanoseconds per operation.
    pub median_ns: f64,
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
        // Calibrate: how many iterations fill one batch, per variant.
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
            .map(|((name, _), mut s)| {
                s.sort_by(|a, b| a.partial_cmp(b).unwrap());
                Measured {
                    name: name.clone(),
                    median_ns: s[s.len() / 2],
                }
            })
            .collect()
    }
}

/// Keep a value alive and opaque to the optimizer.
pub fn keep<T>(value: T) -> T {
    black_box(value)
}
