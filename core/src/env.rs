//! What the outside world lends a reconcile: the time and some entropy.
//!
//! The core never reads a clock or seeds a generator itself. The operator fills [`Env`] from the
//! wall clock and the OS; the simulated world from its clock and its seeded stream; `tusk render`
//! from `--seed`. Same `Env`, same plan.

use k8s_openapi::jiff::Timestamp;
use std::cell::Cell;

/// Inputs to one reconcile that do not come from the API.
#[derive(Debug, Clone)]
pub struct Env {
    /// The current time, as the driver sees it.
    pub now: Timestamp,
    /// Fresh entropy for this reconcile (passwords, instance suffixes, jitter).
    pub entropy: [u8; 32],
}

impl Env {
    pub fn new(now: Timestamp, entropy: [u8; 32]) -> Self {
        Self { now, entropy }
    }

    /// Entropy expanded from a small seed, for `tusk render --seed` and tests.
    pub fn from_seed(now: Timestamp, seed: u64) -> Self {
        let mut entropy = [0u8; 32];
        let mut state = seed;
        for chunk in entropy.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        Self { now, entropy }
    }

    /// A deterministic generator over this reconcile's entropy, separated by `purpose` so that,
    /// say, adding a password does not change the instance suffixes drawn elsewhere.
    pub fn rng(&self, purpose: &str) -> Rng {
        let mut state = 0xcbf2_9ce4_8422_2325u64; // FNV-1a offset basis
        for b in self.entropy.iter().chain(purpose.as_bytes()) {
            state ^= u64::from(*b);
            state = state.wrapping_mul(0x0100_0000_01b3);
        }
        Rng {
            state: Cell::new(state),
        }
    }
}

/// SplitMix64 over a seed derived from [`Env::entropy`]. Not cryptographic on its own: the
/// operator's entropy comes from the OS, so the output is as unpredictable as that seed.
#[derive(Debug)]
pub struct Rng {
    state: Cell<u64>,
}

impl Rng {
    pub fn next_u64(&self) -> u64 {
        let mut s = self.state.get();
        let v = splitmix64(&mut s);
        self.state.set(s);
        v
    }

    /// Uniform in `0..bound` (bound > 0), without modulo bias worth caring about for u64.
    pub fn below(&self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below(0)");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A string of `len` characters drawn from `alphabet`.
    pub fn string(&self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let now = Timestamp::UNIX_EPOCH;
        let a = Env::from_seed(now, 7);
        let b = Env::from_seed(now, 7);
        assert_eq!(a.rng("x").next_u64(), b.rng("x").next_u64());
        assert_ne!(a.rng("x").next_u64(), a.rng("y").next_u64());
        assert_ne!(
            Env::from_seed(now, 8).rng("x").next_u64(),
            a.rng("x").next_u64()
        );
    }

    #[test]
    fn below_stays_in_range() {
        let rng = Env::from_seed(Timestamp::UNIX_EPOCH, 1).rng("r");
        for bound in [1u64, 2, 3, 36, 1000] {
            for _ in 0..200 {
                assert!(rng.below(bound) < bound);
            }
        }
    }
}
