//! Warmup–stable–decay (Hu et al., MiniCPM, arXiv 2404.06395), and the phase logic shared with
//! [`Linear`](super::Linear) and [`Cosine`](super::Cosine).

use super::error::{fits, fraction, positive};
use super::warmup::warmup_factor;
use super::{Schedule, ScheduleError};
use serde::{Deserialize, Deserializer, Serialize};

/// Shape of a decay from 1 to 0 as a function of its progress `p` in `[0, 1]`.
///
/// Every shape is 1 at `p = 0` (so a decay continues the stable phase without a jump in the
/// limit of many steps) and exactly 0 at `p = 1`. Source: arXiv 2404.06395 (the cooldown shapes of `pytorch_optimizer`'s `wsd.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cooldown {
    /// `1 - p`.
    Linear,
    /// `1 - sqrt(p)` (`pytorch_optimizer`'s WSD default).
    OneMinusSqrt,
    /// `1 - p²`.
    OneMinusSquare,
    /// Half a cosine, `(1 + cos(πp))/2`.
    Cosine,
}

impl Cooldown {
    /// The shape after `done` of `len` cooldown updates (`p = done/len`); in `[0, 1]`, exactly
    /// 0 at `done = len`.
    #[inline]
    pub(crate) fn factor(self, done: u64, len: u64) -> f64 {
        // Written in the remaining fraction r = 1 - p, computed from integers, so values near
        // the end keep full precision and hit 0 exactly.
        let r = (len - done) as f64 / len as f64;
        let p = done as f64 / len as f64;
        match self {
            Self::Linear => r,
            Self::OneMinusSqrt => r / (1.0 + p.sqrt()),
            // (1-p)(1+p), accurate near p = 1; the min guards a last-ulp overshoot near p = 0.
            Self::OneMinusSquare => (r * (1.0 + p)).min(1.0),
            // sin²(πr/2) = (1 + cos(πp))/2.
            Self::Cosine => {
                let s = (std::f64::consts::FRAC_PI_2 * r).sin();
                s * s
            }
        }
    }
}

/// Warmup on `[0, W)`, 1 on `[W, S)`, `shape` from 1 to `end` on `[S, T)`; `k` clamps to `T-1`.
///
/// The decay progress after update `k` is `p = (k+1-S)/(T-S)`, so update `T` (`k = T-1`) uses
/// `end` exactly (the last-iterate indexing of the module docs). Callers guarantee `1 <= T` and `W <= S <= T`.
#[inline]
pub(crate) fn phases(
    k: u64,
    warmup: u64,
    decay_start: u64,
    total: u64,
    shape: Cooldown,
    end: f64,
) -> f64 {
    let k = k.min(total - 1);
    if let Some(f) = warmup_factor(k, warmup) {
        return f;
    }
    if k < decay_start {
        return 1.0;
    }
    end + (1.0 - end) * shape.factor(k + 1 - decay_start, total - decay_start)
}

/// Warmup–stable–decay: linear warmup over `W` updates, 1 until the last `D` updates, then a
/// [`Cooldown`] from 1 to `end` over those `D` updates.
///
/// With `S = T - D` (first cooldown update, 0-based) and `p = (k+1-S)/D`:
/// `value(k) = (k+1)/W` for `k < W`; `1` for `W <= k < S`; `end + (1-end)·shape(p)` for
/// `S <= k < T`, reaching `end` exactly at `k = T-1`; `end` for `k >= T` (1 if `D = 0`).
/// Horizon: `T`. A cooldown starting at `p = 1/D` drops by `(1-end)(1-shape(1/D))` at its first
/// update (`(1-end)/D` for `Linear`); no shape starts below 1.
///
/// Source: arXiv 2404.06395; `pytorch_optimizer` `lr_scheduler/wsd.py`.
/// Deviations: `pytorch_optimizer` warms up with `k/W` and measures `p` from `k - S`; we use
/// `(k+1)/W` and `(k+1-S)`, so the first update moves and the last one uses `end`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wsd {
    warmup: u64,
    total: u64,
    decay: u64,
    shape: Cooldown,
    end: f64,
}

impl Wsd {
    /// `total` updates: `warmup` of warmup, the last `decay` of cooldown to `end` (a fraction of
    /// the peak lr), the rest at the peak.
    ///
    /// # Errors
    /// [`ScheduleError::ZeroLength`] if `total = 0`; [`ScheduleError::PhaseTooLong`] if
    /// `warmup > total` or `warmup + decay > total`; [`ScheduleError::InvalidValue`] if `end` is
    /// not in `[0, 1]`.
    pub fn new(
        warmup: u64,
        total: u64,
        decay: u64,
        shape: Cooldown,
        end: f64,
    ) -> Result<Self, ScheduleError> {
        positive("total", total)?;
        fits("warmup", warmup, total)?;
        fits("warmup + decay", warmup.saturating_add(decay), total)?;
        fraction("end", end)?;
        Ok(Self {
            warmup,
            total,
            decay,
            shape,
            end,
        })
    }
}

impl Schedule for Wsd {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        phases(
            k,
            self.warmup,
            self.total - self.decay,
            self.total,
            self.shape,
            self.end,
        )
    }
    fn horizon(&self) -> Option<u64> {
        Some(self.total)
    }
}

impl<'de> Deserialize<'de> for Wsd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            warmup: u64,
            total: u64,
            decay: u64,
            shape: Cooldown,
            #[serde(default)]
            end: f64,
        }
        let r = Raw::deserialize(d)?;
        Self::new(r.warmup, r.total, r.decay, r.shape, r.end).map_err(serde::de::Error::custom)
    }
}
