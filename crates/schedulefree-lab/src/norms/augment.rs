//! Training batches with random translations, so that a small model cannot memorise the
//! 8000 training images over a run of many epochs (its gradients would then vanish and hide
//! the norm dynamics). Evaluation uses the untouched test split.

use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::data::shuffle::{EpochOrder, rng_from_seed};
use crate::train::batches::{Batch, Batches, ImageBatches};
use crate::train::data::{ImageData, ImageSplit};

/// Stream offset of the seed for the translations.
const SHIFT_STREAM: u64 = 0xA5A5_0D15_0000_0001;

/// Each epoch a fresh seeded permutation of the training images, cut into full batches;
/// every image moved by a random `(dx, dy)` in `[−max_shift, max_shift]²` (uncovered pixels
/// are background, 0). `max_shift = 0` gives the images unchanged.
#[derive(Debug, Clone)]
pub struct ShiftedBatches {
    inner: ImageBatches,
    data: Arc<ImageData>,
    order: EpochOrder,
    pos: usize,
    batch: usize,
    max_shift: usize,
    rng: ChaCha8Rng,
}

impl ShiftedBatches {
    /// Batches of `batch` images (at most the training rows), order and shifts from `seed`.
    pub fn new(data: Arc<ImageData>, batch: usize, seed: u64, max_shift: usize) -> Self {
        let n = data.train.rows();
        let mut order = EpochOrder::new(n, seed);
        order.next_epoch();
        Self {
            inner: ImageBatches::new(Arc::clone(&data), batch, seed),
            data,
            order,
            pos: 0,
            batch: batch.min(n).max(1),
            max_shift,
            rng: rng_from_seed(seed ^ SHIFT_STREAM),
        }
    }

    fn next_rows(&mut self) -> Vec<usize> {
        if self.pos + self.batch > self.order.current().len() {
            self.order.next_epoch();
            self.pos = 0;
        }
        let rows = self.order.current()[self.pos..self.pos + self.batch].to_vec();
        self.pos += self.batch;
        rows
    }
}

/// `image` (`side × side`, row-major) moved by `(dx, dy)` pixels, background 0.
pub fn shift(image: &[u8], side: usize, dx: i64, dy: i64) -> Vec<u8> {
    let s = side as i64;
    let mut out = vec![0u8; image.len()];
    for y in 0..s {
        let sy = y - dy;
        if !(0..s).contains(&sy) {
            continue;
        }
        for x in 0..s {
            let sx = x - dx;
            if (0..s).contains(&sx) {
                out[(y * s + x) as usize] = image[(sy * s + sx) as usize];
            }
        }
    }
    out
}

impl Batches<Tensor<4>> for ShiftedBatches {
    fn next_train(&mut self, device: &Device) -> Batch<Tensor<4>> {
        let rows = self.next_rows();
        let train = &self.data.train;
        let p = train.side * train.side;
        let m = self.max_shift as i64;
        let mut pixels = Vec::with_capacity(rows.len() * p);
        for &r in &rows {
            let (dx, dy) = (self.rng.random_range(-m..=m), self.rng.random_range(-m..=m));
            pixels.extend(shift(&train.pixels[r * p..(r + 1) * p], train.side, dx, dy));
        }
        // A split of just this batch, so that standardisation is the one of `ImageSplit`.
        let batch = ImageSplit {
            pixels,
            labels: rows.iter().map(|&r| train.labels[r]).collect(),
            side: train.side,
            mean: train.mean,
            std: train.std,
        };
        let all: Vec<usize> = (0..rows.len()).collect();
        batch.batch(&all, device)
    }

    fn next_recalibration(&mut self, device: &Device) -> Tensor<4> {
        self.inner.next_recalibration(device)
    }

    fn eval_set(&self, cap: Option<usize>, device: &Device) -> Vec<Batch<Tensor<4>>> {
        self.inner.eval_set(cap, device)
    }
}
