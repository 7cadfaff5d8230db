//! Linear warmup then linear decay (ALGORITHMS.md §1.2 and §9 "linear decay").

use super::error::{fits, fraction, positive};
use super::wsd::{Cooldown, phases};
use super::{Schedule, ScheduleError};
use serde::{Deserialize, Deserializer, Serialize};

/// Linear warmup over `W` updates, then linear decay from 1 to `end` over the other `T - W`.
///
/// `value(k) = (k+1)/W` for `k < W` (exactly 1 at `k = W-1`), then
/// `end + (1-end)·(1-p)` with `p = (k+1-W)/(T-W)`, so update `T` (`k = T-1`) uses `end`
/// exactly, and `end` for every `k >= T` (1 if `W = T`). Horizon: `T`.
/// With `W = 0`, `end = 0` this is the linear-decay conversion `1 - (k+1)/T` whose last step has
/// zero size (`α_T = 0`).
///
/// Source: arXiv 2310.07831, Corollary 2, as ALGORITHMS.md §1.2 indexes it; §9.
/// Deviations: torch's warmup + `LinearLR` decay reaches `end` one update after the run; use
/// [`TorchLinearLr`](super::TorchLinearLr) to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linear {
    warmup: u64,
    total: u64,
    end: f64,
}

impl Linear {
    /// `total` updates, the first `warmup` of them warming up, decaying to `end` (a fraction of
    /// the peak lr).
    ///
    /// # Errors
    /// [`ScheduleError::ZeroLength`] if `total = 0`; [`ScheduleError::PhaseTooLong`] if
    /// `warmup > total`; [`ScheduleError::InvalidValue`] if `end` is not in `[0, 1]`.
    pub fn new(warmup: u64, total: u64, end: f64) -> Result<Self, ScheduleError> {
        positive("total", total)?;
        fits("warmup", warmup, total)?;
        fraction("end", end)?;
        Ok(Self { warmup, total, end })
    }
}

impl Schedule for Linear {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        phases(
            k,
            self.warmup,
            self.warmup,
            self.total,
            Cooldown::Linear,
            self.end,
        )
    }
    fn horizon(&self) -> Option<u64> {
        Some(self.total)
    }
}

impl<'de> Deserialize<'de> for Linear {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            warmup: u64,
            total: u64,
            #[serde(default)]
            end: f64,
        }
        let r = Raw::deserialize(d)?;
        Self::new(r.warmup, r.total, r.end).map_err(serde::de::Error::custom)
    }
}
