//! Closed forms of `PyTorch`'s `LinearLR` and `CosineAnnealingLR`, to reproduce torch runs.
//!
//! torch evaluates both recursively; the closed forms here agree with it to a few ulps (golden
//! file `schedules.json`, torch 2.15). Chain them with [`ScheduleExt::then`](super::ScheduleExt)
//! to reproduce `SequentialLR`, e.g. warmup + cosine:
//! `TorchLinearLr::new(0.1, 1.0, 10)?.then(10, TorchCosineAnnealing::new(90, 0.0)?)`.

use super::error::{fraction, positive};
use super::{Schedule, ScheduleError};
use serde::{Deserialize, Deserializer, Serialize};

/// `torch.optim.lr_scheduler.LinearLR(start_factor, end_factor, total_iters)` with base lr 1.
///
/// `value(t) = s + (e - s)·t/T` for `t < T`, exactly `e` from `t = T` (update `T+1`) on.
/// Horizon: `T`.
///
/// Source: torch 2.15 `LinearLR` (closed form `_get_closed_form_lr`).
/// Deviations: torch requires `start_factor > 0` only because its recursive form divides by it;
/// 0 is accepted here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorchLinearLr {
    start_factor: f64,
    end_factor: f64,
    total_iters: u64,
}

impl TorchLinearLr {
    /// Interpolate from `start_factor` to `end_factor` (fractions of the peak lr) over
    /// `total_iters` updates.
    ///
    /// # Errors
    /// [`ScheduleError::ZeroLength`] if `total_iters = 0`; [`ScheduleError::InvalidValue`] if a
    /// factor is not in `[0, 1]`.
    pub fn new(
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    ) -> Result<Self, ScheduleError> {
        fraction("start_factor", start_factor)?;
        fraction("end_factor", end_factor)?;
        positive("total_iters", total_iters)?;
        Ok(Self {
            start_factor,
            end_factor,
            total_iters,
        })
    }
}

impl Schedule for TorchLinearLr {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        let (s, e, n) = (self.start_factor, self.end_factor, self.total_iters);
        if k >= n {
            return e;
        }
        // The Python closed form's operation order; `((e-s)·k)/n` can overshoot by an ulp, so
        // keep the value between its endpoints (it would otherwise reach -6e-17 for e = 0).
        (s + (e - s) * k as f64 / n as f64).clamp(s.min(e), s.max(e))
    }
    fn horizon(&self) -> Option<u64> {
        Some(self.total_iters)
    }
}

impl<'de> Deserialize<'de> for TorchLinearLr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start_factor: f64,
            end_factor: f64,
            total_iters: u64,
        }
        let r = Raw::deserialize(d)?;
        Self::new(r.start_factor, r.end_factor, r.total_iters).map_err(serde::de::Error::custom)
    }
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR(T_max, eta_min)` with base lr 1.
///
/// `value(t) = m + (1 - m)·(1 + cos(π·min(t, T_max)/T_max))/2` with `m = eta_min / base_lr`:
/// 1 at the first update, `m` from `t = T_max` on. Horizon: `T_max`.
///
/// Source: torch 2.15 `CosineAnnealingLR` (closed form in its docs).
/// Deviations: past `T_max` torch follows the cosine back up; we clamp at `m`, as every
/// schedule here does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorchCosineAnnealing {
    t_max: u64,
    eta_min_factor: f64,
}

impl TorchCosineAnnealing {
    /// Half a cosine from 1 to `eta_min_factor` (torch's `eta_min` divided by the base lr) over
    /// `t_max` updates.
    ///
    /// # Errors
    /// [`ScheduleError::ZeroLength`] if `t_max = 0`; [`ScheduleError::InvalidValue`] if
    /// `eta_min_factor` is not in `[0, 1]`.
    pub fn new(t_max: u64, eta_min_factor: f64) -> Result<Self, ScheduleError> {
        positive("t_max", t_max)?;
        fraction("eta_min_factor", eta_min_factor)?;
        Ok(Self {
            t_max,
            eta_min_factor,
        })
    }
}

impl Schedule for TorchCosineAnnealing {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        let (m, n) = (self.eta_min_factor, self.t_max);
        // Same operation order as the Python closed form.
        let c = (std::f64::consts::PI * k.min(n) as f64 / n as f64).cos();
        m + (1.0 - m) * (1.0 + c) / 2.0
    }
    fn horizon(&self) -> Option<u64> {
        Some(self.t_max)
    }
}

impl<'de> Deserialize<'de> for TorchCosineAnnealing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            t_max: u64,
            eta_min_factor: f64,
        }
        let r = Raw::deserialize(d)?;
        Self::new(r.t_max, r.eta_min_factor).map_err(serde::de::Error::custom)
    }
}
