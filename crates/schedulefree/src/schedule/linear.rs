//! Linear warmup then linear decay (arXiv 2310.07831, Theorem 1 and Corollary 2).

use super::warmup_decay::warmup_decay_schedule;
use super::wsd::Cooldown;

warmup_decay_schedule!(
    /// Linear warmup over `W` updates, then linear decay from 1 to `end` over the other `T - W`.
    ///
    /// `value(k) = (k+1)/W` for `k < W` (exactly 1 at `k = W-1`), then
    /// `end + (1-end)·(1-p)` with `p = (k+1-W)/(T-W)`, so update `T` (`k = T-1`) uses `end`
    /// exactly, and `end` for every `k >= T` (1 if `W = T`). Horizon: `T`.
    /// With `W = 0`, `end = 0` this is the linear-decay conversion `1 - (k+1)/T` whose last step has
    /// zero size (`α_T = 0`).
    ///
    /// Source: arXiv 2310.07831, Corollary 2, with the last-iterate indexing of the module docs.
    /// Deviations: torch's warmup + `LinearLR` decay reaches `end` one update after the run; use
    /// [`TorchLinearLr`](super::TorchLinearLr) to reproduce it.
    Linear,
    Cooldown::Linear
);
