//! Linear warmup then cosine decay (Loshchilov & Hutter, arXiv 1608.03983, without restarts).

use super::warmup_decay::warmup_decay_schedule;
use super::wsd::Cooldown;

warmup_decay_schedule!(
    /// Linear warmup over `W` updates, then half a cosine from 1 to the floor `end` over the other
    /// `T - W`.
    ///
    /// `value(k) = (k+1)/W` for `k < W` (exactly 1 at `k = W-1`), then
    /// `end + (1-end)·(1 + cos(πp))/2` with `p = (k+1-W)/(T-W)`, so update `T` (`k = T-1`) uses
    /// `end` exactly, and `end` for every `k >= T` (1 if `W = T`). Horizon: `T`.
    ///
    /// Source: arXiv 1608.03983, with the last-iterate indexing shared by [`Linear`](super::Linear).
    /// Deviations: torch's `CosineAnnealingLR(T_max = T-W)` reaches the floor one update after the
    /// run and rises again past it; use [`TorchCosineAnnealing`](super::TorchCosineAnnealing) to
    /// reproduce it.
    Cosine,
    Cooldown::Cosine
);
