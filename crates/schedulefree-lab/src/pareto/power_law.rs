//! Fit `L(t) = L∞ + A·t^(−a)` to a loss curve: the "1/√T check" of the Schedule-Free paper's
//! Pareto experiment (arXiv 2405.15682, Figures 1, 5, 6, 8)
//! (Schedule-Free's anytime rate predicts `a ≈ 1/2` for the suboptimality on convex
//! Lipschitz problems; on deep nets the measured exponent is an empirical fact to report).
//!
//! Method (variable projection): for a fixed `L∞` the model is linear in log-log space,
//! `ln(L(t) − L∞) = ln A − a·ln t`, so ordinary least squares gives `A`, `a` and the residual
//! sum of squares `RSS(L∞)` in closed form. `L∞` is the minimiser of `RSS` over
//! `[0, min L)`, searched on the gap `g = min L − L∞` (log-uniform scan of
//! [`SCAN_POINTS`] gaps between `min L·`[`MIN_GAP`] and `min L`, then golden-section refinement
//! between the best scan point's neighbours). Losses are cross-entropies, hence `L∞ ≥ 0`.
//! [`fit_fixed`] fits the pure power law with a given `L∞` (e.g. 0).

use serde::Serialize;

/// Number of log-uniformly spaced gaps scanned before the golden-section refinement.
pub const SCAN_POINTS: usize = 400;
/// Smallest gap `min L − L∞` searched, relative to `min L`.
pub const MIN_GAP: f64 = 1e-9;
/// Golden-section iterations (each shrinks the bracket by 0.618; 200 reach `f64` resolution).
const GOLDEN_ITERS: usize = 200;

/// Why a curve could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer than `needed` usable points (finite, `t > 0`, loss above `L∞`).
    #[error("power-law fit needs at least {needed} points with t > 0 and a finite loss, got {got}")]
    TooFewPoints {
        /// Points required.
        needed: usize,
        /// Usable points given.
        got: usize,
    },
    /// All usable points share one `t` (the slope is undefined).
    #[error("power-law fit needs at least two distinct steps")]
    DegenerateSteps,
    /// A fixed `L∞` is not below every loss (the logarithm is undefined).
    #[error("L∞ = {l_inf} is not below the smallest loss {min_loss}")]
    FloorTooHigh {
        /// The requested `L∞`.
        l_inf: f64,
        /// The smallest loss of the curve.
        min_loss: f64,
    },
    /// The smallest loss is not positive, so no `L∞ ≥ 0` lies below it.
    #[error("the smallest loss {0} is not positive: no L∞ ≥ 0 lies below it")]
    NonPositiveLoss(f64),
}

/// A fitted power law `L(t) = l_inf + amplitude · t^(−exponent)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PowerLawFit {
    /// The exponent `a` (`> 0` for a decreasing curve).
    pub exponent: f64,
    /// The amplitude `A`.
    pub amplitude: f64,
    /// The asymptote `L∞`.
    pub l_inf: f64,
    /// Coefficient of determination of the log-log regression,
    /// `1 − RSS / Σ(ln(L − L∞) − mean)²` (1 for an exact power law).
    pub r2: f64,
    /// Points used.
    pub points: usize,
    /// Whether the fitted `L∞` lies at an end of the searched range (`0`, or within
    /// [`MIN_GAP`] of the smallest loss): the curve does not pin the asymptote down and the
    /// exponent depends on the range.
    pub at_bound: bool,
}

impl PowerLawFit {
    /// The model's value at `t`.
    pub fn predict(&self, t: f64) -> f64 {
        self.l_inf + self.amplitude * t.powf(-self.exponent)
    }
}

/// Ordinary least squares of `ln(L − l_inf)` on `ln t`: `(exponent, amplitude, rss, tss)`.
fn log_log(points: &[(f64, f64)], l_inf: f64) -> (f64, f64, f64, f64) {
    let n = points.len() as f64;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|&(t, l)| (t.ln(), (l - l_inf).ln()))
        .collect();
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let tss: f64 = xy.iter().map(|p| (p.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let rss: f64 = xy
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    (-slope, intercept.exp(), rss, tss)
}

/// The usable points of `curve` (finite, `t > 0`), checked for count and distinct steps.
fn usable(curve: &[(f64, f64)], needed: usize) -> Result<Vec<(f64, f64)>, FitError> {
    let pts: Vec<(f64, f64)> = curve
        .iter()
        .copied()
        .filter(|&(t, l)| t > 0.0 && t.is_finite() && l.is_finite())
        .collect();
    if pts.len() < needed {
        return Err(FitError::TooFewPoints {
            needed,
            got: pts.len(),
        });
    }
    if pts.iter().all(|p| p.0 == pts[0].0) {
        return Err(FitError::DegenerateSteps);
    }
    Ok(pts)
}

fn make(points: &[(f64, f64)], l_inf: f64, at_bound: bool) -> PowerLawFit {
    let (exponent, amplitude, rss, tss) = log_log(points, l_inf);
    let r2 = if tss > 0.0 { 1.0 - rss / tss } else { 1.0 };
    PowerLawFit {
        exponent,
        amplitude,
        l_inf,
        r2,
        points: points.len(),
        at_bound,
    }
}

/// Fit `L(t) = l_inf + A·t^(−a)` with `l_inf` given (a straight line in log-log space).
/// `curve` holds `(t, L(t))`; points with `t ≤ 0` or a non-finite loss are skipped.
///
/// # Errors
/// Fewer than 2 usable points, a single distinct `t`, or `l_inf` not below every loss.
pub fn fit_fixed(curve: &[(f64, f64)], l_inf: f64) -> Result<PowerLawFit, FitError> {
    let pts = usable(curve, 2)?;
    let min_loss = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if l_inf.is_nan() || l_inf >= min_loss {
        return Err(FitError::FloorTooHigh { l_inf, min_loss });
    }
    Ok(make(&pts, l_inf, false))
}

/// Fit `L(t) = L∞ + A·t^(−a)` with `L∞ ∈ [0, min L)` chosen to minimise the log-log residual
/// (see the module documentation). `curve` holds `(t, L(t))`; points with `t ≤ 0` or a
/// non-finite loss are skipped.
///
/// # Errors
/// Fewer than 4 usable points (3 parameters plus one degree of freedom), a single distinct
/// `t`, or a smallest loss `≤ 0`.
pub fn fit(curve: &[(f64, f64)]) -> Result<PowerLawFit, FitError> {
    let pts = usable(curve, 4)?;
    let min_loss = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if min_loss <= 0.0 {
        return Err(FitError::NonPositiveLoss(min_loss));
    }
    // Search s = ln(gap), gap = min_loss − L∞ ∈ [MIN_GAP·min_loss, min_loss].
    let (s_lo, s_hi) = ((MIN_GAP * min_loss).ln(), min_loss.ln());
    let rss = |s: f64| log_log(&pts, min_loss - s.exp()).2;
    let step = (s_hi - s_lo) / (SCAN_POINTS - 1) as f64;
    let scan: Vec<f64> = (0..SCAN_POINTS)
        .map(|i| rss(s_lo + step * i as f64))
        .collect();
    let best = scan
        .iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v < scan[b] { i } else { b });
    let (mut a, mut b) = (
        s_lo + step * best.saturating_sub(1) as f64,
        s_lo + step * (best + 1).min(SCAN_POINTS - 1) as f64,
    );
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - phi * (b - a), a + phi * (b - a));
    let (mut fc, mut fd) = (rss(c), rss(d));
    for _ in 0..GOLDEN_ITERS {
        if b - a <= f64::EPSILON * s_lo.abs().max(s_hi.abs()) {
            break;
        }
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - phi * (b - a);
            fc = rss(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + phi * (b - a);
            fd = rss(d);
        }
    }
    // Keep the best point evaluated (the bracket ends included, for minima at a bound).
    let mut s = if fc < fd { c } else { d };
    let mut f = fc.min(fd);
    for e in [a, b] {
        let fe = rss(e);
        if fe < f {
            (s, f) = (e, fe);
        }
    }
    let tol = 1e-6 * (s_hi - s_lo);
    let at_bound = s - s_lo <= tol || s_hi - s <= tol;
    let l_inf = (min_loss - s.exp()).max(0.0);
    Ok(make(&pts, l_inf, at_bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(l_inf: f64, amp: f64, a: f64, ts: impl Iterator<Item = u64>) -> Vec<(f64, f64)> {
        ts.map(|t| (t as f64, l_inf + amp * (t as f64).powf(-a)))
            .collect()
    }

    #[test]
    fn recovers_exact_power_laws_with_an_asymptote() {
        for &(l_inf, amp, a) in &[
            (0.3, 2.0, 0.5),
            (0.05, 10.0, 0.8),
            (1.2, 0.7, 0.25),
            (0.0, 3.0, 0.5),
            (2.0, 50.0, 1.5),
        ] {
            let c = curve(l_inf, amp, a, (1..=28).map(|k| 100 + 25 * k));
            let f = fit(&c).expect("fits");
            assert!((f.exponent - a).abs() < 1e-6, "{l_inf} {amp} {a}: {f:?}");
            assert!((f.l_inf - l_inf).abs() < 1e-6, "{f:?}");
            assert!((f.amplitude / amp - 1.0).abs() < 1e-4, "{f:?}");
            assert!(f.r2 > 1.0 - 1e-9, "{f:?}");
            assert_eq!(f.points, 28);
        }
    }

    #[test]
    fn fixed_floor_is_an_exact_line_in_log_log() {
        let c = curve(0.0, 4.0, 0.5, [1, 2, 4, 8, 16].into_iter());
        let f = fit_fixed(&c, 0.0).expect("fits");
        assert!((f.exponent - 0.5).abs() < 1e-12);
        assert!((f.amplitude - 4.0).abs() < 1e-12);
        assert!((f.predict(32.0) - 4.0 / 32f64.sqrt()).abs() < 1e-12);
        assert!(!f.at_bound);
    }

    #[test]
    fn wrong_fixed_floor_bends_the_line() {
        let c = curve(0.5, 1.0, 0.5, (1..=20).map(|k| 10 * k));
        let good = fit_fixed(&c, 0.5).expect("fits");
        let bad = fit_fixed(&c, 0.0).expect("fits");
        assert!(good.r2 > 1.0 - 1e-12 && bad.r2 < good.r2);
        assert!(
            bad.exponent < 0.5,
            "ignoring the floor flattens the curve: {bad:?}"
        );
    }

    #[test]
    fn noisy_curves_fit_approximately() {
        // A deterministic ±1 % wiggle.
        let c: Vec<(f64, f64)> = (1..=40)
            .map(|k| {
                let t = 50.0 * k as f64;
                let wiggle = 1.0 + 0.01 * ((k * 7919) % 13) as f64 / 13.0 - 0.005;
                (t, 0.2 + 3.0 * t.powf(-0.6) * wiggle)
            })
            .collect();
        let f = fit(&c).expect("fits");
        assert!((f.exponent - 0.6).abs() < 0.15, "{f:?}");
        assert!(f.r2 > 0.9, "{f:?}");
    }

    #[test]
    fn a_flat_tail_puts_the_floor_at_the_bound() {
        // Rising losses: no decreasing power law fits; the answer must still be finite.
        let c: Vec<(f64, f64)> = (1..=10)
            .map(|k| (k as f64, 1.0 + 0.01 * k as f64))
            .collect();
        let f = fit(&c).expect("fits");
        assert!(f.exponent.is_finite() && f.l_inf >= 0.0);
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            fit(&[(1.0, 1.0), (2.0, 0.5), (f64::NAN, 0.1)]),
            Err(FitError::TooFewPoints { needed: 4, got: 2 })
        );
        assert_eq!(
            fit(&[(3.0, 1.0), (3.0, 0.5), (3.0, 0.4), (3.0, 0.3)]),
            Err(FitError::DegenerateSteps)
        );
        assert!(matches!(
            fit(&[(1.0, 1.0), (2.0, 0.5), (3.0, 0.0), (4.0, 0.1)]),
            Err(FitError::NonPositiveLoss(_))
        ));
        assert!(matches!(
            fit_fixed(&[(1.0, 1.0), (2.0, 0.5)], 0.5),
            Err(FitError::FloorTooHigh { .. })
        ));
    }
}
