//! Generators for the core, seeded from the operating system.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha12Rng;
use rand_core::RngCore;
use socketio_core::endpoint::RngFactory;

/// A ChaCha12 generator seeded from the OS: session and socket ids drawn
/// from it cannot be guessed.
///
/// # Panics
/// If the operating system has no randomness to give, which leaves no safe
/// way to make session ids.
pub fn os_rng() -> Box<dyn RngCore + Send> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random number generator failed");
    Box::new(ChaCha12Rng::from_seed(seed))
}

/// A factory of [`os_rng`] generators, for a client endpoint.
pub fn os_rng_factory() -> RngFactory {
    Box::new(os_rng)
}
