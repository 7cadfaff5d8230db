//! Minibatch streams of a run: seeded training order, a fixed evaluation set, and a separate
//! stream of training batches for BatchNorm recalibration (so recalibrating does not change
//! which batches training sees).

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::config::CONTEXT;
use super::data::{ImageData, TextData};
use crate::data::shuffle::{EpochOrder, rng_from_seed};

/// Rows per evaluation forward pass.
pub const EVAL_CHUNK: usize = 500;

/// Stream offsets of the seed, so that the three streams of a run are independent.
const RECALIBRATION_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// One batch: model input and integer targets.
pub type Batch<I> = (I, Tensor<1, Int>);

/// The batches a training loop needs, for model input type `I`.
pub trait Batches<I> {
    /// The next training batch, on `device`.
    fn next_train(&mut self, device: &Device) -> Batch<I>;
    /// The next input of the recalibration stream (training data, own order), on `device`.
    fn next_recalibration(&mut self, device: &Device) -> I;
    /// The evaluation set, in chunks, on `device`; `cap` limits it to `cap` rows (chosen evenly
    /// spaced so class-sorted files stay balanced).
    fn eval_set(&self, cap: Option<usize>, device: &Device) -> Vec<Batch<I>>;
}

/// `n` indices evenly spaced over `0..len` (all of them when `n >= len`).
fn evenly_spaced(len: usize, n: usize) -> Vec<usize> {
    if n >= len {
        return (0..len).collect();
    }
    (0..n).map(|i| i * len / n).collect()
}

/// Images: each epoch is a fresh seeded permutation of the training rows; batches are
/// consecutive full chunks of it (a last partial chunk is dropped).
#[derive(Debug, Clone)]
pub struct ImageBatches {
    data: Arc<ImageData>,
    batch: usize,
    train: Cursor,
    recalibration: Cursor,
}

#[derive(Debug, Clone)]
struct Cursor {
    order: EpochOrder,
    pos: usize,
}

impl Cursor {
    fn new(n: usize, seed: u64) -> Self {
        let mut order = EpochOrder::new(n, seed);
        order.next_epoch();
        Self { order, pos: 0 }
    }

    fn next(&mut self, batch: usize) -> Vec<usize> {
        if self.pos + batch > self.order.current().len() {
            self.order.next_epoch();
            self.pos = 0;
        }
        let rows = self.order.current()[self.pos..self.pos + batch].to_vec();
        self.pos += batch;
        rows
    }
}

impl ImageBatches {
    /// Batches of `batch` rows (at most the training rows) over `data`, order from `seed`.
    pub fn new(data: Arc<ImageData>, batch: usize, seed: u64) -> Self {
        let n = data.train.rows();
        let batch = batch.min(n).max(1);
        Self {
            train: Cursor::new(n, seed),
            recalibration: Cursor::new(n, seed ^ RECALIBRATION_STREAM),
            data,
            batch,
        }
    }
}

impl Batches<Tensor<4>> for ImageBatches {
    fn next_train(&mut self, device: &Device) -> Batch<Tensor<4>> {
        let rows = self.train.next(self.batch);
        self.data.train.batch(&rows, device)
    }

    fn next_recalibration(&mut self, device: &Device) -> Tensor<4> {
        let rows = self.recalibration.next(self.batch);
        self.data.train.batch(&rows, device).0
    }

    fn eval_set(&self, cap: Option<usize>, device: &Device) -> Vec<Batch<Tensor<4>>> {
        let test = &self.data.test;
        let rows = evenly_spaced(test.rows(), cap.unwrap_or(usize::MAX));
        rows.chunks(EVAL_CHUNK)
            .map(|c| test.batch(c, device))
            .collect()
    }
}

/// Text: each training sequence starts at a uniformly random position of the training
/// tokens (seeded); evaluation uses non-overlapping windows of the validation tokens.
#[derive(Debug, Clone)]
pub struct TextBatches {
    data: Arc<TextData>,
    batch: usize,
    rng: ChaCha8Rng,
}

impl TextBatches {
    /// Batches of `batch` sequences of [`CONTEXT`] tokens over `data`, positions from `seed`.
    pub fn new(data: Arc<TextData>, batch: usize, seed: u64) -> Self {
        Self {
            data,
            batch: batch.max(1),
            rng: rng_from_seed(seed),
        }
    }
}

impl Batches<Tensor<2, Int>> for TextBatches {
    fn next_train(&mut self, device: &Device) -> Batch<Tensor<2, Int>> {
        let tokens = &self.data.corpus.train;
        // The corpus guarantees at least CONTEXT + 1 tokens per split.
        let starts: Vec<usize> = (0..self.batch)
            .map(|_| self.rng.random_range(0..tokens.len() - CONTEXT))
            .collect();
        TextData::batch(tokens, &starts, device)
    }

    fn next_recalibration(&mut self, device: &Device) -> Tensor<2, Int> {
        // The transformer has no BatchNorm; never called by the training loop.
        self.next_train(device).0
    }

    fn eval_set(&self, cap: Option<usize>, device: &Device) -> Vec<Batch<Tensor<2, Int>>> {
        let tokens = &self.data.corpus.valid;
        let windows = (tokens.len() - 1) / CONTEXT;
        let starts: Vec<usize> = evenly_spaced(windows, cap.unwrap_or(usize::MAX))
            .into_iter()
            .map(|w| w * CONTEXT)
            .collect();
        let per_chunk = (EVAL_CHUNK / 8).max(1);
        starts
            .chunks(per_chunk)
            .map(|c| TextData::batch(tokens, c, device))
            .collect()
    }
}
