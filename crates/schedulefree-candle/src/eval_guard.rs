//! Scoped evaluation at the returned point `x` over candle vars: the vars hold `x` while the guard lives and return to
//! the training point `y` when it drops, also on early return or panic.

use crate::error::CandleAdapterError;
use crate::optimizer::{Core, ScheduleFreeOptimizer, with_driver};

/// While alive, the optimizer's vars hold the evaluation point `x` (so the model computes
/// validation losses and predictions at `x`); dropping it writes the training point `y`
/// back into every var bit for bit (from a copy taken by
/// [`ScheduleFreeOptimizer::eval_guard`]). It borrows the optimizer mutably, so no step
/// can run at `x` by mistake.
///
/// `Drop` cannot report errors; on the CPU restoring cannot fail, elsewhere call
/// [`EvalGuard::restore`] to see a device error.
#[derive(Debug)]
pub struct EvalGuard<'o> {
    opt: &'o mut ScheduleFreeOptimizer,
    written: Option<Vec<usize>>,
}

impl<'o> EvalGuard<'o> {
    pub(crate) fn new(opt: &'o mut ScheduleFreeOptimizer, written: Vec<usize>) -> Self {
        EvalGuard {
            opt,
            written: Some(written),
        }
    }

    /// The optimizer (read-only while the vars hold `x`).
    pub fn optimizer(&self) -> &ScheduleFreeOptimizer {
        self.opt
    }

    /// Restore `y` now and report a failure to write a var back.
    ///
    /// # Errors
    /// [`CandleAdapterError::Candle`] for the first var that could not be written (every
    /// var is still tried).
    pub fn restore(mut self) -> Result<(), CandleAdapterError> {
        self.restore_now()
    }

    fn restore_now(&mut self) -> Result<(), CandleAdapterError> {
        match self.written.take() {
            Some(w) => with_driver!(&mut self.opt.core, d => d.restore(&w)),
            None => Ok(()),
        }
    }
}

impl Drop for EvalGuard<'_> {
    fn drop(&mut self) {
        // Errors are reported by `restore`; here there is no one to report them to.
        let _ = self.restore_now();
    }
}
