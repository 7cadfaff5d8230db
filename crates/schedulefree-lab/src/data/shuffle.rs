//! Deterministic seeded shuffling for minibatch order.
//!
//! Everything is driven by [`ChaCha8Rng`] seeded with [`SeedableRng::seed_from_u64`], so the
//! same seed gives the same permutations on every platform and thread count.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 generator seeded from `seed`.
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A uniformly random permutation of `0..n`, determined by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    v.shuffle(&mut rng_from_seed(seed));
    v
}

/// Row order for successive epochs: each call to [`EpochOrder::next_epoch`] reshuffles the
/// permutation in place (a fresh uniform permutation) using one seeded stream.
///
/// Take minibatches with `order.next_epoch().chunks(batch)`; the last chunk is shorter when
/// `batch` does not divide `n`.
#[derive(Debug, Clone)]
pub struct EpochOrder {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    epochs: u64,
}

impl EpochOrder {
    /// Order over `n` rows driven by `seed`; no shuffle happens until the first
    /// [`EpochOrder::next_epoch`].
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            rng: rng_from_seed(seed),
            order: (0..n).collect(),
            epochs: 0,
        }
    }

    /// Reshuffles and returns the row order of the next epoch (a permutation of `0..n`).
    pub fn next_epoch(&mut self) -> &[usize] {
        self.order.shuffle(&mut self.rng);
        self.epochs += 1;
        &self.order
    }

    /// The current order (identity before the first [`EpochOrder::next_epoch`]).
    pub fn current(&self) -> &[usize] {
        &self.order
    }

    /// Number of epochs started so far.
    pub fn epochs(&self) -> u64 {
        self.epochs
    }
}
