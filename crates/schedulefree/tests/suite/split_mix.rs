//! A small deterministic generator for test gradients (proptest draws the seed): SplitMix64,
//! mapped to `[0, 1)` with 53 bits.

pub struct SplitMix(pub u64);

impl SplitMix {
    /// Uniform in `[0, 1)`.
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[-a, a)`.
    pub fn sym(&mut self, a: f64) -> f64 {
        a * (2.0 * self.next() - 1.0)
    }

    /// `n` values uniform in `[-a, a)`.
    pub fn vec(&mut self, n: usize, a: f64) -> Vec<f64> {
        (0..n).map(|_| self.sym(a)).collect()
    }
}
