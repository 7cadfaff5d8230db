//! Seeded parameter initialisation, independent of burn's global random generator.
//!
//! burn's `Device::seed` may seed a process-wide generator, so two runs in parallel threads
//! would interleave their draws. Every parameter here is drawn instead from the run's own
//! [`ChaCha8Rng`] in a fixed order, which makes initial weights a function of the seed alone.
//!
//! Weights are uniform in `±bound`; layers use burn's default bound for their kind
//! (`1/√fan_in`, as PyTorch's `Linear` and `Conv2d`), embeddings `±√3 · 0.02` (std 0.02, as
//! GPT-2), normalisation layers start at `γ = 1, β = 0`.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard deviation of embedding weights.
pub const EMBEDDING_STD: f64 = 0.02;

/// A seeded source of initial weights for one model.
#[derive(Debug, Clone)]
pub struct Init {
    rng: ChaCha8Rng,
    device: Device,
}

impl Init {
    /// Draws from a ChaCha8 stream seeded with `seed`; tensors are created on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A trainable parameter of `shape` with entries uniform in `[-bound, bound)`.
    pub fn uniform<const D: usize>(&mut self, shape: [usize; D], bound: f64) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let b = bound as f32;
        let values: Vec<f32> = if b > 0.0 {
            (0..n).map(|_| self.rng.random_range(-b..b)).collect()
        } else {
            vec![0.0; n]
        };
        Param::from_data(TensorData::new(values, shape), &self.device)
    }

    /// A `d_in → d_out` affine layer, weight and bias uniform in `±1/√d_in`.
    pub fn linear(&mut self, d_in: usize, d_out: usize) -> Linear {
        let mut layer = LinearConfig::new(d_in, d_out)
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        let bound = 1.0 / (d_in as f64).sqrt();
        layer.weight = self.uniform([d_in, d_out], bound);
        layer.bias = Some(self.uniform([d_out], bound));
        layer
    }

    /// A `k × k` convolution `c_in → c_out` with stride 1 and "same" zero padding (odd `k`),
    /// weight and bias uniform in `±1/√(c_in·k²)`.
    pub fn conv2d_same(&mut self, c_in: usize, c_out: usize, k: usize) -> Conv2d {
        let pad = k / 2;
        let mut layer = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
        layer.weight = self.uniform([c_out, c_in, k, k], bound);
        layer.bias = Some(self.uniform([c_out], bound));
        layer
    }

    /// An `n × d` embedding table with standard deviation [`EMBEDDING_STD`].
    pub fn embedding(&mut self, n: usize, d: usize) -> Embedding {
        let mut layer = EmbeddingConfig::new(n, d)
            .with_initializer(Initializer::Zeros)
            .init(&self.device);
        layer.weight = self.uniform([n, d], 3f64.sqrt() * EMBEDDING_STD);
        layer
    }
}
