//! Per-feature standardisation with statistics from the training split only.
//!
//! `x' = (x − mean_j) / std_j`, where `mean_j` and the population standard deviation `std_j`
//! (divisor `n`) are computed in `f64` over the *train* rows. A feature that is constant on
//! train (`std_j` zero up to `f64` rounding) gets scale 0, so it becomes exactly 0 in every
//! split (it carries no information the model could have learned from train).

use super::{DataError, Dataset, Split};

/// Fitted per-feature statistics (length `d` each).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Per-feature mean over the train rows.
    pub mean: Vec<f64>,
    /// Per-feature population standard deviation over the train rows.
    pub std: Vec<f64>,
    /// Multiplier applied after centring: `1/std`, or 0 for constant features.
    pub scale: Vec<f64>,
}

impl Standardizer {
    /// Computes mean and standard deviation of every feature of `train` (two passes, `f64`).
    ///
    /// With zero rows every mean is 0 and every feature counts as constant.
    pub fn fit(train: &Split) -> Self {
        let (n, d) = (train.rows(), train.d());
        let mut mean = vec![0.0f64; d];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(train.row(i)) {
                *m += f64::from(v);
            }
        }
        let inv_n = if n > 0 { 1.0 / n as f64 } else { 0.0 };
        mean.iter_mut().for_each(|m| *m *= inv_n);
        let mut var = vec![0.0f64; d];
        for i in 0..n {
            for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(train.row(i)) {
                let dv = f64::from(v) - m;
                *s += dv * dv;
            }
        }
        let std: Vec<f64> = var.iter().map(|s| (s * inv_n).sqrt()).collect();
        let scale = std
            .iter()
            .zip(&mean)
            .map(|(&s, &m)| {
                if s > 4.0 * f64::EPSILON * m.abs() && s > 0.0 {
                    1.0 / s
                } else {
                    0.0
                }
            })
            .collect();
        Self { mean, std, scale }
    }

    /// Feature count `d` the statistics were fitted on.
    pub fn d(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `split` in place.
    ///
    /// # Errors
    /// [`DataError::Shape`] if `split.d()` differs from the fitted `d`.
    pub fn apply(&self, split: &mut Split) -> Result<(), DataError> {
        let d = self.d();
        if split.d() != d {
            return Err(DataError::Shape {
                what: "standardizer d",
                expected: d,
                found: split.d(),
            });
        }
        if d == 0 {
            return Ok(());
        }
        for row in split.x_mut().chunks_exact_mut(d) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = ((f64::from(*v) - m) * s) as f32;
            }
        }
        Ok(())
    }

    /// Fits on `ds.train` and applies to train and (if present) test; returns the statistics.
    ///
    /// # Errors
    /// [`DataError::Shape`] if the test split's `d` differs from train's.
    pub fn fit_apply(ds: &mut Dataset) -> Result<Self, DataError> {
        let st = Self::fit(&ds.train);
        st.apply(&mut ds.train)?;
        if let Some(test) = ds.test.as_mut() {
            st.apply(test)?;
        }
        Ok(st)
    }
}
