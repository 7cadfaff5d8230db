//! Running schedules one after another (`PyTorch` `SequentialLR` semantics).

use super::Schedule;

/// `first` for the first `at` updates, then `then` restarted at 0.
///
/// `value(k) = first.value(k)` for `k < at`, else `then.value(k - at)`; `at` counts from the
/// start of this sequence, so `a.then(10, b).then(50, c)` switches to `c` at update 51, like
/// torch's `SequentialLR(milestones=[10, 50])`. Horizon: `at + then.horizon()`.
///
/// Errors and panics: none. Source: `torch.optim.lr_scheduler.SequentialLR` (torch 2.15), checked
/// against its values in the golden file `schedules.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sequence<A, B> {
    first: A,
    at: u64,
    then: B,
}

impl<A: Schedule, B: Schedule> Sequence<A, B> {
    /// Run `first` for `at` updates, then `then` from its step 0.
    #[must_use]
    pub fn new(first: A, at: u64, then: B) -> Self {
        Self { first, at, then }
    }
}

impl<A: Schedule, B: Schedule> Schedule for Sequence<A, B> {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        if k < self.at {
            self.first.value(k)
        } else {
            self.then.value(k - self.at)
        }
    }
    fn horizon(&self) -> Option<u64> {
        self.then.horizon().map(|h| h.saturating_add(self.at))
    }
}

/// Combinators available on every [`Schedule`].
pub trait ScheduleExt: Schedule + Sized {
    /// This schedule for the first `at` updates, then `next` restarted at 0 (see [`Sequence`]).
    fn then<B: Schedule>(self, at: u64, next: B) -> Sequence<Self, B> {
        Sequence::new(self, at, next)
    }
}

impl<S: Schedule> ScheduleExt for S {}
