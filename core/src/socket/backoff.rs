//! Exponential back-off with jitter for reconnection attempts, computed the
//! way socket.io-client 4.8 computes it.
//!
//! The delay before attempt `n` (counting from 0) is `min * 2^n`; with a
//! jitter factor `j`, one uniform draw `r` in `[0, 1)` gives a deviation of
//! `floor(r * j * delay)` milliseconds, subtracted when `floor(r * 10)` is
//! even and added otherwise; the result is then capped at `max`. The cap
//! applies after the jitter, so `max` is a hard upper bound.

use std::time::Duration;

use rand_core::RngCore;

/// Reconnection back-off state: how many attempts were made since the last
/// reset, and the parameters of the delay.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    attempts: u32,
}

impl Backoff {
    /// A back-off starting at `min`, capped at `max`, with a jitter factor
    /// (outside `(0, 1]` means no jitter, as in the reference).
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Backoff {
        // The reference ignores factors outside (0, 1]; NaN fails both tests.
        let jitter = if jitter > 0.0 && jitter <= 1.0 {
            jitter
        } else {
            0.0
        };
        Backoff {
            min,
            max,
            jitter,
            attempts: 0,
        }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Start again from the first attempt (after a successful connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The delay before the next attempt; counts the attempt.
    pub fn next_delay(&mut self, rng: &mut dyn RngCore) -> Duration {
        let exponent = i32::try_from(self.attempts).unwrap_or(i32::MAX);
        self.attempts = self.attempts.saturating_add(1);
        // Milliseconds as f64, like the reference; overflow goes to infinity
        // and is then capped.
        let mut ms = self.min.as_millis() as f64 * 2f64.powi(exponent);
        if self.jitter > 0.0 {
            let draw = unit_interval(rng);
            let deviation = (draw * self.jitter * ms).floor();
            ms = if (draw * 10.0).floor() as u64 % 2 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        let max_ms = self.max.as_millis() as f64;
        let capped = if ms.is_nan() { max_ms } else { ms.min(max_ms) };
        Duration::from_millis(capped.max(0.0) as u64)
    }
}

/// A uniform draw in `[0, 1)` with 53 bits of precision.
fn unit_interval(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn without_jitter_doubles_up_to_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 0.0);
        let delays: Vec<u64> = (0..6)
            .map(|_| b.next_delay(&mut rng).as_millis() as u64)
            .collect();
        assert_eq!(delays, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay(&mut rng), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_the_factor_and_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut saw_below = false;
        let mut saw_above = false;
        for _ in 0..200 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 0.5);
            for n in 0..8u32 {
                let base = 1000f64 * 2f64.powi(n as i32);
                let d = b.next_delay(&mut rng).as_millis() as f64;
                assert!(d <= 5000.0, "attempt {n}: {d}");
                assert!(d >= (base * 0.5).min(5000.0).floor(), "attempt {n}: {d}");
                if n == 0 {
                    assert!(d <= 1500.0);
                    saw_below |= d < 1000.0;
                    saw_above |= d > 1000.0;
                }
            }
        }
        assert!(saw_below && saw_above, "jitter goes both ways");
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 1.0);
        for _ in 0..2000 {
            assert!(b.next_delay(&mut rng) <= Duration::from_secs(5));
        }
    }

    #[test]
    fn out_of_range_jitter_is_ignored() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for j in [-1.0, 0.0, 1.5, f64::NAN] {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), j);
            assert_eq!(b.next_delay(&mut rng), Duration::from_millis(100));
        }
    }
}
