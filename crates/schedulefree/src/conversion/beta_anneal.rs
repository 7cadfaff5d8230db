//! Log-space annealing of the Schedule-Free interpolation `β` (ScheduleFree+, arXiv
//! 2605.19095; `sf_beta1_anneal_steps` / `sf_beta1_max` of schedulefree's
//! `AdamCScheduleFreePlusPaper`, commit 43e5c2d).

use crate::error::{ConfigError, check};

/// `β` moves from the conversion's `beta` to `beta_max` over `steps` updates, linearly in
/// `ln(1 − β)`: `β_k = 1 − exp((1 − q)·ln(1 − β) + q·ln(1 − β_max))`, `q = min(k/steps, 1)`
/// after `k` completed updates; `steps = 0` keeps `β` constant. `1 − β` is the weight of the
/// newest iterate `z` in the gradient point, so raising `β` late in training leans on the
/// average (the reference suggests `0.9 → 0.965`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaAnneal {
    /// Final interpolation `β_max ∈ (0, 1)` (`sf_beta1_max`, default 0.965).
    pub beta_max: f64,
    /// Annealing length in updates (`sf_beta1_anneal_steps`); 0: no annealing.
    pub steps: u64,
}

impl Default for BetaAnneal {
    fn default() -> Self {
        BetaAnneal {
            beta_max: 0.965,
            steps: 0,
        }
    }
}

impl BetaAnneal {
    /// `β_k` after `k` completed updates, from the start value `beta`.
    pub fn beta_at(&self, beta: f64, k: u64) -> f64 {
        if self.steps == 0 {
            return beta;
        }
        let q = (k as f64 / self.steps as f64).min(1.0);
        // The reference's order of operations.
        1.0 - ((1.0 - beta).ln() * (1.0 - q) + (1.0 - self.beta_max).ln() * q).exp()
    }

    /// Check `beta` (the start) and `beta_max` in `(0, 1)`: `ln(1 − β)` needs `β < 1`.
    pub(crate) fn validate(&self, beta: f64) -> Result<(), ConfigError> {
        let open = |v: f64| v > 0.0 && v < 1.0;
        check(
            "beta",
            beta,
            open(beta),
            "0 < beta < 1 when beta is annealed",
        )?;
        check(
            "beta_max",
            self.beta_max,
            open(self.beta_max),
            "0 < beta_max < 1",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anneals_in_log_space_and_stops_at_the_end() {
        let a = BetaAnneal {
            beta_max: 0.965,
            steps: 20,
        };
        assert_eq!(a.beta_at(0.9, 0), 1.0 - (0.1_f64.ln()).exp());
        assert!((a.beta_at(0.9, 0) - 0.9).abs() < 1e-15);
        let mid = a.beta_at(0.9, 10);
        assert!(
            (mid - (1.0 - (0.1_f64 * 0.035).sqrt())).abs() < 1e-15,
            "{mid}"
        );
        assert_eq!(a.beta_at(0.9, 20), a.beta_at(0.9, 1000));
        assert!((a.beta_at(0.9, 20) - 0.965).abs() < 1e-15);
        let off = BetaAnneal { steps: 0, ..a };
        assert_eq!(off.beta_at(0.9, 7), 0.9);
        assert!(a.validate(0.9).is_ok());
        for (beta, max) in [(1.0, 0.965), (0.0, 0.965), (0.9, 1.0), (0.9, f64::NAN)] {
            let e = BetaAnneal { beta_max: max, ..a }.validate(beta);
            assert!(e.is_err(), "{beta} {max}");
        }
    }
}
