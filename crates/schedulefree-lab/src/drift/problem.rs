//! The two problems of `sflab drift`, each giving a stochastic gradient at `f64` parameters.

use std::path::Path;

use anyhow::Context;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::data::Split;
use crate::data::registry;
use crate::data::shuffle::{EpochOrder, rng_from_seed};
use crate::data::standardize::Standardizer;
use crate::model::{LogReg, Scratch};

/// Dimension of the quadratic.
const QUAD_DIM: usize = 64;
/// Half-width of the quadratic's uniform gradient noise (standard deviation `0.1/√3`).
const QUAD_NOISE: f64 = 0.1;
/// Minibatch size of the logistic regression.
const BATCH: usize = 16;

/// A problem: where to start and the gradient at a point.
pub enum Problem {
    /// `f(θ) = ½ Σ aᵢ(θᵢ − θ*ᵢ)²` plus uniform noise on the gradient.
    Quadratic {
        /// Curvatures `aᵢ`, log-spaced in `[1e-3, 1]`.
        a: Vec<f64>,
        /// Minimiser `θ*`, uniform in `[-1, 1]`.
        opt: Vec<f64>,
        /// Noise stream.
        rng: ChaCha8Rng,
    },
    /// Softmax regression on one dataset's train split.
    LogReg {
        /// Dataset name.
        name: String,
        /// The standardised train split.
        train: Split,
        /// The model.
        model: LogReg,
        /// Minibatch order.
        order: EpochOrder,
        /// Position in the current epoch.
        pos: usize,
        /// Model scratch.
        scratch: Scratch<f64>,
        /// Every train row (the full loss).
        all: Vec<usize>,
    },
}

impl Problem {
    /// The quadratic, seeded.
    pub fn quadratic() -> Self {
        let mut rng = rng_from_seed(7);
        let a = (0..QUAD_DIM)
            .map(|i| 10f64.powf(-3.0 * i as f64 / (QUAD_DIM - 1) as f64))
            .collect();
        let opt = (0..QUAD_DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
        Problem::Quadratic { a, opt, rng }
    }

    /// Softmax regression on `dataset` (standardised with train-split statistics).
    ///
    /// # Errors
    /// Unknown dataset, unreadable files, an empty train split.
    pub fn logreg(dataset: &str, data_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut data = registry::load_named(dataset, data_dir)
            .with_context(|| format!("loading dataset {dataset:?}"))?;
        anyhow::ensure!(
            data.train.rows() > 0,
            "dataset {dataset:?} has an empty train split"
        );
        Standardizer::fit_apply(&mut data)?;
        let model = LogReg::new(data.d, data.classes)?;
        Ok(Problem::LogReg {
            name: format!("logreg_{dataset}"),
            order: EpochOrder::new(data.train.rows(), 0),
            pos: usize::MAX,
            scratch: Scratch::new(&model),
            all: (0..data.train.rows()).collect(),
            model,
            train: data.train,
        })
    }

    /// Report name.
    pub fn name(&self) -> &str {
        match self {
            Problem::Quadratic { .. } => "quadratic",
            Problem::LogReg { name, .. } => name,
        }
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        match self {
            Problem::Quadratic { a, .. } => a.len(),
            Problem::LogReg { model, .. } => model.num_params(),
        }
    }

    /// Starting point: zeros.
    pub fn init(&self) -> Vec<f64> {
        vec![0.0; self.dim()]
    }

    /// The full objective at `theta`, in `f64`: the quadratic without noise, or the mean
    /// cross-entropy over the whole train split.
    ///
    /// # Errors
    /// Model errors (shape mismatches: caller bugs).
    pub fn loss(&mut self, theta: &[f64]) -> anyhow::Result<f64> {
        Ok(match self {
            Problem::Quadratic { a, opt, .. } => {
                0.5 * theta
                    .iter()
                    .zip(a.iter())
                    .zip(opt.iter())
                    .map(|((t, a), o)| a * (t - o) * (t - o))
                    .sum::<f64>()
            }
            Problem::LogReg {
                train,
                model,
                scratch,
                all,
                ..
            } => model.loss(theta, train, all, scratch)?,
        })
    }

    /// A stochastic gradient at `theta`, written into `g`.
    ///
    /// # Errors
    /// Model errors (shape mismatches: caller bugs).
    pub fn grad(&mut self, theta: &[f64], g: &mut [f64]) -> anyhow::Result<()> {
        match self {
            Problem::Quadratic { a, opt, rng } => {
                for (((g, t), a), o) in g.iter_mut().zip(theta).zip(a.iter()).zip(opt.iter()) {
                    *g = a * (t - o) + rng.random_range(-QUAD_NOISE..QUAD_NOISE);
                }
            }
            Problem::LogReg {
                train,
                model,
                order,
                pos,
                scratch,
                ..
            } => {
                if *pos >= order.current().len() {
                    order.next_epoch();
                    *pos = 0;
                }
                let end = (*pos + BATCH).min(order.current().len());
                model.loss_grad(theta, train, &order.current()[*pos..end], g, scratch)?;
                *pos = end;
            }
        }
        Ok(())
    }
}
