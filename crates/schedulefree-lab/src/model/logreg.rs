//! Multinomial logistic regression (softmax regression).
//!
//! # Parameters
//!
//! One flat vector `θ` of length `C·d + C` (see [`LogReg::num_params`]):
//! `θ[0 .. C·d]` is the weight matrix `W` (`C × d`, row-major: `W[c][j] = θ[c·d + j]`) and
//! `θ[C·d .. C·d + C]` is the bias `b`. Gradients use the same layout.
//!
//! # Loss
//!
//! Logits `z_c = b_c + Σ_j W[c][j]·x_j`; per-row loss `ℓ = −ln softmax(z)_y
//! = ln Σ_c exp(z_c − m) − (z_y − m)` with `m = max_c z_c` (stable for any logits); the
//! minibatch loss is the mean over the batch, accumulated in `f64`. Arithmetic inside a row
//! (dot products, softmax, gradient) is in the parameter type `T`, except the loss itself,
//! which is evaluated in `f64` as `ln_1p(Σ_{c≠argmax} exp(z_c − m)) − (z_y − m)` so that the
//! tiny loss of a confidently classified row stays positive instead of rounding to 0.

use rayon::prelude::*;
use thiserror::Error;

use super::Scalar;
use crate::data::Split;

/// Rows per rayon task in [`LogReg::evaluate`]; partial sums are combined in chunk order, so
/// results do not depend on the number of threads.
const EVAL_CHUNK: usize = 512;

/// Smallest normal `f32`: below it a `T` exponential has lost relative precision (or
/// underflowed), and the loss recomputes that term in `f64`.
const TINY_EXP: f64 = f32::MIN_POSITIVE as f64;

/// Errors from model evaluation (all are caller bugs: wrong sizes or bad labels).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// A buffer or the data has the wrong size.
    #[error("shape mismatch: {what}: expected {expected}, found {found}")]
    Shape {
        /// What was checked (`params`, `grad`, `data d`, `scratch`).
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// A label is not below the model's class count.
    #[error("row {row}: label {label} is not below the class count {classes}")]
    LabelOutOfRange {
        /// Row index in the split.
        row: usize,
        /// The label.
        label: u32,
        /// Model class count.
        classes: usize,
    },
    /// A batch index is not a row of the split.
    #[error("batch index {row} out of range for {rows} rows")]
    RowOutOfRange {
        /// Offending index.
        row: usize,
        /// Rows in the split.
        rows: usize,
    },
    /// The batch (or the split, for evaluation) has no rows.
    #[error("empty batch")]
    Empty,
    /// A model needs at least one class.
    #[error("a model needs at least one class")]
    NoClasses,
}

/// Shape of a multinomial logistic-regression model: `d` features, `C` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogReg {
    d: usize,
    classes: usize,
}

/// Per-call working memory for [`LogReg::loss_grad`] and [`LogReg::loss`] (length `C`), so
/// that those calls do not allocate.
#[derive(Debug, Clone)]
pub struct Scratch<T> {
    logits: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    /// Scratch space for `model`.
    pub fn new(model: &LogReg) -> Self {
        Self {
            logits: vec![T::ZERO; model.classes],
        }
    }
}

/// Result of [`LogReg::evaluate`] over a whole split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy loss (nats per row).
    pub loss: f64,
    /// Fraction of rows whose arg-max logit (first maximum on ties) equals the label, in `[0, 1]`.
    pub accuracy: f64,
    /// Number of correctly classified rows.
    pub correct: usize,
    /// Number of rows evaluated.
    pub rows: usize,
}

impl LogReg {
    /// Model with `d` features and `classes` classes.
    ///
    /// # Errors
    /// [`ModelError::NoClasses`] if `classes == 0`.
    pub fn new(d: usize, classes: usize) -> Result<Self, ModelError> {
        if classes == 0 {
            return Err(ModelError::NoClasses);
        }
        Ok(Self { d, classes })
    }

    /// Feature count `d`.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Class count `C`.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Length of the parameter vector, `C·d + C`.
    pub fn num_params(&self) -> usize {
        self.classes * self.d + self.classes
    }

    /// All-zero parameters (`W = 0`, `b = 0`; the loss is then `ln C` on any data).
    pub fn zeros<T: Scalar>(&self) -> Vec<T> {
        vec![T::ZERO; self.num_params()]
    }

    /// The weight block `W` (`C·d` values, row-major) of a parameter vector.
    ///
    /// # Panics
    /// If `params.len() < C·d`.
    pub fn weights<'a, T>(&self, params: &'a [T]) -> &'a [T] {
        &params[..self.classes * self.d]
    }

    /// The bias block `b` (`C` values) of a parameter vector.
    ///
    /// # Panics
    /// If `params.len() < C·d + C`.
    pub fn bias<'a, T>(&self, params: &'a [T]) -> &'a [T] {
        &params[self.classes * self.d..self.num_params()]
    }

    fn check(&self, what: &'static str, expected: usize, found: usize) -> Result<(), ModelError> {
        if expected == found {
            Ok(())
        } else {
            Err(ModelError::Shape {
                what,
                expected,
                found,
            })
        }
    }

    fn check_common<T>(
        &self,
        params: &[T],
        data: &Split,
        scratch: &Scratch<T>,
    ) -> Result<(), ModelError> {
        self.check("params", self.num_params(), params.len())?;
        self.check("data d", self.d, data.d())?;
        self.check("scratch", self.classes, scratch.logits.len())
    }

    /// Writes the logits of `x` (length `d`) into `out` (length `C`).
    fn logits_into<T: Scalar>(&self, params: &[T], x: &[f32], out: &mut [T]) {
        let d = self.d;
        let (w, b) = params.split_at(self.classes * d);
        for (c, (o, &bc)) in out.iter_mut().zip(b).enumerate() {
            *o = bc + dot(&w[c * d..(c + 1) * d], x);
        }
    }

    /// Turns logits into probabilities in place (in `T`) and returns the row loss `−ln p_y`.
    ///
    /// The loss is evaluated in `f64` as `ln_1p(Σ_{j≠k} exp(z_j − m)) − (z_y − m)`, with `k`
    /// the (first) arg-max and `m = z_k`: computing `ln Σ_c exp(z_c − m)` in `T` rounds the
    /// sum `1 + tiny` to 1, so a confidently classified row would have a loss of exactly 0.
    /// The terms reuse the `T` exponentials (corrected for the rounding of `z_j − m` in `T`);
    /// terms below `f32`'s normal range are recomputed in `f64`.
    fn softmax_xent<T: Scalar>(z: &mut [T], y: usize) -> f64 {
        let k = argmax(z);
        let m = z[k];
        let m64 = m.to_f64();
        let shifted_y = z[y].to_f64() - m64;
        let mut rest = 0.0f64;
        let mut s = T::ZERO;
        for (j, v) in z.iter_mut().enumerate() {
            let exact = v.to_f64() - m64;
            let shifted = *v - m;
            *v = shifted.exp();
            s += *v;
            if j != k {
                // exp(exact) from the `T` exp of the rounded difference, corrected to first
                // order; entries below f32's normal range are recomputed in f64.
                let e = v.to_f64();
                rest += if e >= TINY_EXP {
                    e * (1.0 + (exact - shifted.to_f64()))
                } else {
                    exact.exp()
                };
            }
        }
        let inv = T::ONE / s;
        for v in z.iter_mut() {
            *v = *v * inv;
        }
        rest.ln_1p() - shifted_y
    }

    fn label(&self, data: &Split, row: usize) -> Result<usize, ModelError> {
        let label = *data.y().get(row).ok_or(ModelError::RowOutOfRange {
            row,
            rows: data.rows(),
        })?;
        if (label as usize) < self.classes {
            Ok(label as usize)
        } else {
            Err(ModelError::LabelOutOfRange {
                row,
                label,
                classes: self.classes,
            })
        }
    }

    /// Mean cross-entropy over rows `batch` of `data`, and its gradient with respect to the
    /// parameters, written into `grad` (overwritten, same layout as `params`).
    ///
    /// Does not allocate. `batch` holds row indices into `data` (repeats allowed).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `params`/`grad` are not [`LogReg::num_params`] long, `data`
    /// has another `d` or `scratch` was made for another model; [`ModelError::Empty`] for an
    /// empty batch; [`ModelError::RowOutOfRange`] / [`ModelError::LabelOutOfRange`] for bad
    /// rows (then `grad` holds partial sums).
    pub fn loss_grad<T: Scalar>(
        &self,
        params: &[T],
        data: &Split,
        batch: &[usize],
        grad: &mut [T],
        scratch: &mut Scratch<T>,
    ) -> Result<f64, ModelError> {
        self.check_common(params, data, scratch)?;
        self.check("grad", self.num_params(), grad.len())?;
        if batch.is_empty() {
            return Err(ModelError::Empty);
        }
        grad.fill(T::ZERO);
        let d = self.d;
        let inv_n = T::from_f64(1.0 / batch.len() as f64);
        let (gw, gb) = grad.split_at_mut(self.classes * d);
        let mut total = 0.0f64;
        for &row in batch {
            let y = self.label(data, row)?;
            let x = data.row(row);
            let z = &mut scratch.logits;
            self.logits_into(params, x, z);
            total += Self::softmax_xent(z, y);
            z[y] = z[y] - T::ONE;
            for (c, &p) in z.iter().enumerate() {
                let coef = p * inv_n;
                gb[c] += coef;
                for (g, &xj) in gw[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *g += coef * T::from_f32(xj);
                }
            }
        }
        Ok(total / batch.len() as f64)
    }

    /// Mean cross-entropy over rows `batch` of `data` (no gradient, no allocation).
    ///
    /// # Errors
    /// As [`LogReg::loss_grad`] (without the `grad` check).
    pub fn loss<T: Scalar>(
        &self,
        params: &[T],
        data: &Split,
        batch: &[usize],
        scratch: &mut Scratch<T>,
    ) -> Result<f64, ModelError> {
        self.check_common(params, data, scratch)?;
        if batch.is_empty() {
            return Err(ModelError::Empty);
        }
        let mut total = 0.0f64;
        for &row in batch {
            let y = self.label(data, row)?;
            self.logits_into(params, data.row(row), &mut scratch.logits);
            total += Self::softmax_xent(&mut scratch.logits, y);
        }
        Ok(total / batch.len() as f64)
    }

    /// Predicted class of one feature row `x` (arg-max logit, first maximum on ties).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `params`, `x` or `scratch` have the wrong length.
    pub fn predict<T: Scalar>(
        &self,
        params: &[T],
        x: &[f32],
        scratch: &mut Scratch<T>,
    ) -> Result<u32, ModelError> {
        self.check("params", self.num_params(), params.len())?;
        self.check("x", self.d, x.len())?;
        self.check("scratch", self.classes, scratch.logits.len())?;
        self.logits_into(params, x, &mut scratch.logits);
        Ok(argmax(&scratch.logits) as u32)
    }

    /// Mean loss and accuracy over every row of `data`, computed in parallel with rayon
    /// (deterministic: per-chunk `f64` sums are added in row order).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `params` or `data.d()` do not match, [`ModelError::Empty`] for
    /// a split without rows, [`ModelError::LabelOutOfRange`] for a label `≥ C`.
    pub fn evaluate<T: Scalar>(
        &self,
        params: &[T],
        data: &Split,
    ) -> Result<Evaluation, ModelError> {
        self.check("params", self.num_params(), params.len())?;
        self.check("data d", self.d, data.d())?;
        let rows = data.rows();
        if rows == 0 {
            return Err(ModelError::Empty);
        }
        let starts: Vec<usize> = (0..rows).step_by(EVAL_CHUNK).collect();
        let parts: Vec<Result<(f64, usize), ModelError>> = starts
            .par_iter()
            .map(|&start| {
                let mut z = vec![T::ZERO; self.classes];
                let (mut loss, mut correct) = (0.0f64, 0usize);
                for row in start..(start + EVAL_CHUNK).min(rows) {
                    let y = self.label(data, row)?;
                    self.logits_into(params, data.row(row), &mut z);
                    if argmax(&z) == y {
                        correct += 1;
                    }
                    loss += Self::softmax_xent(&mut z, y);
                }
                Ok((loss, correct))
            })
            .collect();
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for part in parts {
            let (l, c) = part?;
            loss += l;
            correct += c;
        }
        Ok(Evaluation {
            loss: loss / rows as f64,
            accuracy: correct as f64 / rows as f64,
            correct,
            rows,
        })
    }
}

fn argmax<T: Scalar>(z: &[T]) -> usize {
    let mut best = 0;
    for (c, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = c;
        }
    }
    best
}

/// `Σ w_j x_j` with eight independent accumulators, so the compiler can vectorise the sum
/// (a single running sum is a serial dependency chain).
fn dot<T: Scalar>(w: &[T], x: &[f32]) -> T {
    const LANES: usize = 8;
    let mut acc = [T::ZERO; LANES];
    let (wc, xc) = (w.chunks_exact(LANES), x.chunks_exact(LANES));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (wl, xl) in wc.zip(xc) {
        for l in 0..LANES {
            acc[l] += wl[l] * T::from_f32(xl[l]);
        }
    }
    let mut tail = T::ZERO;
    for (&wj, &xj) in wr.iter().zip(xr) {
        tail += wj * T::from_f32(xj);
    }
    acc.iter().fold(tail, |s, &a| s + a)
}
