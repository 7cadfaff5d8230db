//! Schedule refinement from an observed gradient-norm sequence (Defazio, Cutkosky, Mehta,
//! Mishchenko, arXiv 2310.07831, §3).
//!
//! Theory: with the weighted last-iterate conversion (§1.2) and the weights that minimise its
//! bound, `w_t = ‖g_t‖⁻²` (ℓ2, SGD-type learners) or `w_t = ‖g_t‖₁⁻¹` (ℓ1, Adam-type), the
//! step of update `t` is `η_t ∝ w_t · Σ_{p>t} w_p`. Constant norms give linear decay; large
//! early norms give a warmup; norms rising at the end give an earlier anneal.

use super::{ScheduleError, Tabulated};

/// Which norm the log holds, and so the weight power (ℓ2 for SGD-type, ℓ1 for Adam-type learners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefineNorm {
    /// ℓ2 norms, `w_t = ‖g_t‖⁻²` (SGD and other non-adaptive learners).
    #[default]
    L2,
    /// ℓ1 norms, `w_t = ‖g_t‖₁⁻¹` (Adam-type, per-coordinate learners).
    L1,
}

impl RefineNorm {
    fn weight(self, norm: f64) -> f64 {
        match self {
            Self::L2 => 1.0 / (norm * norm),
            Self::L1 => 1.0 / norm,
        }
    }
}

/// Settings of [`refine`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Refine {
    /// Which norm the input holds.
    pub norm: RefineNorm,
    /// Median-filter window as a fraction `τ ∈ [0, 1]` of the (cleaned) log length `N`:
    /// width `2·⌊τ·N/2⌋ + 1` (odd; 1 = no smoothing). Default 0.1, as the authors' code.
    pub smoothing: f64,
    /// Length of the output schedule (`None`: the input length). The smoothed norms are
    /// linearly resampled to this horizon before the weights are formed.
    pub steps: Option<usize>,
}

impl Default for Refine {
    fn default() -> Self {
        Refine {
            norm: RefineNorm::L2,
            smoothing: 0.1,
            steps: None,
        }
    }
}

/// Refine a schedule from per-update gradient norms `norms` (entry `k`: the norm of the
/// gradient used by update `k + 1` of a previous run with the same horizon).
///
/// Steps:
/// 1. Values that are not finite and `> 0` (NaN, ±inf, zero, negative: logging artefacts or
///    steps that carried no information) are replaced by linear interpolation between the
///    nearest valid neighbours (nearest valid value at the ends). If no value is valid, all
///    norms are taken equal, which gives linear decay.
/// 2. A running median of odd width `2·⌊τ·N/2⌋ + 1` removes isolated spikes (e.g. a warmup
///    spike); the start is padded with the first value, the end by reflection, so a trend at
///    the end is continued rather than flattened.
/// 3. The norms are resampled linearly to `steps` points.
/// 4. `w_t` from [`RefineNorm`], `η_t = w_t Σ_{p>t} w_p`, normalised to peak 1.
///
/// The result is finite, non-negative, has maximum 1 and ends at 0 (for a length-1 horizon
/// it is `[0]`: the only update of a one-update run is the returned point's `α_T = 0`).
///
/// ```
/// use schedulefree::schedule::{refine, Refine, Schedule};
/// let s = refine(&[2.0; 5], &Refine::default())?;
/// assert_eq!(s.values(), &[1.0, 0.75, 0.5, 0.25, 0.0]); // constant norms: linear decay
/// # Ok::<(), schedulefree::schedule::ScheduleError>(())
/// ```
///
/// # Errors
/// [`ScheduleError::ZeroLength`] for an empty `norms` or `steps = Some(0)`;
/// [`ScheduleError::InvalidValue`] for a smoothing outside `[0, 1]`.
pub fn refine(norms: &[f64], config: &Refine) -> Result<Tabulated, ScheduleError> {
    if norms.is_empty() {
        return Err(ScheduleError::ZeroLength { field: "norms" });
    }
    if !(0.0..=1.0).contains(&config.smoothing) {
        return Err(ScheduleError::InvalidValue {
            field: "smoothing",
            value: config.smoothing,
            expected: "0 <= smoothing <= 1",
        });
    }
    let steps = config.steps.unwrap_or(norms.len());
    if steps == 0 {
        return Err(ScheduleError::ZeroLength { field: "steps" });
    }
    let cleaned = fill_invalid(norms);
    let half = (config.smoothing * cleaned.len() as f64 / 2.0).floor() as usize;
    let smoothed = median_filter(&cleaned, half);
    let resampled = resample(&smoothed, steps);
    Tabulated::new(schedule_from_norms(&resampled, config.norm))
}

/// `η_t = w_t Σ_{p>t} w_p` normalised to peak 1, for valid (finite, positive) norms.
fn schedule_from_norms(norms: &[f64], norm: RefineNorm) -> Vec<f64> {
    // The schedule is invariant to a common factor of the norms. Dividing by the smallest one
    // puts every weight in (0, 1] (no overflow for any f64 input) and makes equal norms give
    // weights of exactly 1, so constant norms give linear decay exactly.
    let min = norms.iter().copied().fold(f64::INFINITY, f64::min);
    let w: Vec<f64> = norms.iter().map(|&g| norm.weight(g / min)).collect();
    let mut eta = vec![0.0; w.len()];
    let mut suffix = 0.0;
    for t in (0..w.len()).rev() {
        eta[t] = w[t] * suffix;
        suffix += w[t];
    }
    let max = eta.iter().copied().fold(0.0_f64, f64::max);
    if !(max > 0.0 && max.is_finite()) {
        // Only a one-update horizon (η = [0]) or weights underflowing to 0 across more than
        // 150 orders of magnitude get here: linear decay, never NaN.
        let n = eta.len();
        return (0..n)
            .map(|t| (n - 1 - t) as f64 / (n - 1).max(1) as f64)
            .collect();
    }
    eta.iter().map(|v| v / max).collect()
}

/// Replace entries that are not finite and positive by interpolation between valid
/// neighbours; all-invalid input becomes all ones.
fn fill_invalid(norms: &[f64]) -> Vec<f64> {
    let valid = |v: f64| v.is_finite() && v > 0.0;
    let idx: Vec<usize> = (0..norms.len()).filter(|&i| valid(norms[i])).collect();
    let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
        return vec![1.0; norms.len()];
    };
    let mut out = norms.to_vec();
    out[..first].fill(norms[first]);
    out[last + 1..].fill(norms[last]);
    for pair in idx.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (i, v) in out.iter_mut().enumerate().take(b).skip(a + 1) {
            let f = (i - a) as f64 / (b - a) as f64;
            *v = norms[a] + f * (norms[b] - norms[a]);
        }
    }
    out
}

/// Running median with window `2·half + 1`: nearest-value padding at the start, reflection
/// (without repeating the edge) at the end. Output length = input length.
pub(crate) fn median_filter(x: &[f64], half: usize) -> Vec<f64> {
    if half == 0 || x.len() < 2 {
        return x.to_vec();
    }
    let n = x.len() as isize;
    let at = |i: isize| -> f64 {
        if i < 0 {
            return x[0];
        }
        // Reflect about the last element, repeatedly if the window is longer than the input.
        let period = 2 * (n - 1);
        let mut j = i % period;
        if j >= n {
            j = period - j;
        }
        x[j as usize]
    };
    let mut window = Vec::with_capacity(2 * half + 1);
    (0..n)
        .map(|i| {
            window.clear();
            window.extend((i - half as isize..=i + half as isize).map(at));
            window.sort_by(f64::total_cmp);
            window[half]
        })
        .collect()
}

/// Linear resampling of `x` (length `N ≥ 1`) to `m ≥ 1` points over the same relative span.
fn resample(x: &[f64], m: usize) -> Vec<f64> {
    if m == x.len() {
        return x.to_vec();
    }
    if x.len() == 1 || m == 1 {
        return vec![x[0]; m];
    }
    let span = (x.len() - 1) as f64;
    (0..m)
        .map(|i| {
            let pos = i as f64 * span / (m - 1) as f64;
            let lo = (pos.floor() as usize).min(x.len() - 2);
            let f = pos - lo as f64;
            x[lo] + f * (x[lo + 1] - x[lo])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn constant_norms_give_linear_decay_exactly() {
        let s = refine(&[3.0; 5], &Refine::default()).expect("valid");
        assert_eq!(s.values(), &[1.0, 0.75, 0.5, 0.25, 0.0]);
    }

    #[test]
    fn rising_norms_anneal_early() {
        let s = refine(
            &[1.0, 1.0, 1.5, 2.0, 2.0],
            &Refine {
                smoothing: 0.0,
                ..Default::default()
            },
        )
        .expect("valid");
        let expected = [
            1.0,
            0.485_714_285_714,
            0.114_285_714_286,
            0.032_142_857_143,
            0.0,
        ];
        assert!(close(s.values(), &expected, 1e-9), "{:?}", s.values());
    }

    #[test]
    fn golden_values_of_algorithms_12_2() {
        let g = [4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let no_smoothing = Refine {
            smoothing: 0.0,
            ..Default::default()
        };
        let sgd = refine(&g, &no_smoothing).expect("valid");
        let sgd_expected = [
            0.076_678_240_741,
            0.134_259_259_259,
            0.291_666_666_667,
            1.0,
            0.833_333_333_333,
            0.666_666_666_667,
            0.5,
            0.333_333_333_333,
            0.166_666_666_667,
            0.0,
        ];
        assert!(
            close(sgd.values(), &sgd_expected, 1e-11),
            "{:?}",
            sgd.values()
        );
        let adam = refine(
            &g,
            &Refine {
                norm: RefineNorm::L1,
                ..no_smoothing
            },
        )
        .expect("valid");
        let adam_head = [0.326_388_888_889, 0.416_666_666_667, 0.583_333_333_333, 1.0];
        assert!(
            close(&adam.values()[..4], &adam_head, 1e-11),
            "{:?}",
            adam.values()
        );
    }

    #[test]
    fn median_filter_removes_spikes_and_keeps_monotone_runs() {
        let spiky = [1.0, 1.0, 9.0, 1.0, 1.0, 1.0];
        assert_eq!(median_filter(&spiky, 1), vec![1.0; 6]);
        let mono: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(median_filter(&mono, 2)[2..18], mono[2..18]);
        assert_eq!(median_filter(&[5.0; 7], 3), vec![5.0; 7]);
        assert_eq!(median_filter(&[1.0, 2.0], 10).len(), 2);
    }

    #[test]
    fn invalid_entries_are_filled_and_all_invalid_gives_linear_decay() {
        let s = refine(&[f64::NAN, 0.0, -1.0, f64::INFINITY], &Refine::default()).expect("valid");
        assert_eq!(s.values(), &[1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0]);
        let t = refine(
            &[1.0, f64::NAN, 1.0, 1.0, 0.0],
            &Refine {
                smoothing: 0.0,
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(t.values(), &[1.0, 0.75, 0.5, 0.25, 0.0]);
    }

    #[test]
    fn resampling_keeps_the_shape() {
        let s = refine(
            &[2.0; 10],
            &Refine {
                steps: Some(101),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(s.values().len(), 101);
        assert_eq!(s.values()[0], 1.0);
        assert_eq!(s.values()[100], 0.0);
        assert!((s.values()[50] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(refine(&[], &Refine::default()).is_err());
        assert!(
            refine(
                &[1.0],
                &Refine {
                    steps: Some(0),
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert!(
            refine(
                &[1.0],
                &Refine {
                    smoothing: 1.5,
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert_eq!(
            refine(&[1.0], &Refine::default()).expect("valid").values(),
            &[0.0]
        );
    }
}
