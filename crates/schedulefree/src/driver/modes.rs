//! Train and eval modes: in eval mode every buffer holds the returned point `x`.

use super::Optimizer;
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::learner::Learner;
use crate::param::Param;
use crate::schedule::Schedule;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Switch to eval mode: every buffer then holds the returned point `x` (for evaluation,
    /// checkpoint export or inference). Idempotent. Every parameter that has state must be
    /// passed (so that no buffer is left in the wrong mode). For conversions whose buffer is
    /// always the returned point (last iterate, primal averaging) this only validates the
    /// arguments and the optimizer stays in train mode.
    ///
    /// # Errors
    /// [`StepError::MissingParameter`], [`StepError::UnknownParameter`],
    /// [`StepError::DuplicateParameter`], [`StepError::LengthMismatch`]; nothing changes.
    pub fn eval(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        self.switch_mode(params, false)
    }

    /// Switch back to train mode: buffers hold the gradient point `y` again. Idempotent.
    ///
    /// # Errors
    /// As [`Optimizer::eval`].
    pub fn train(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        self.switch_mode(params, true)
    }

    fn switch_mode(
        &mut self,
        params: &mut [Param<'_, T>],
        to_train: bool,
    ) -> Result<(), StepError> {
        self.resolve(params, false)?;
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.has_state && e.stamp != self.stamp)
        {
            return Err(if e.external {
                StepError::ExternalState(e.name.clone())
            } else {
                StepError::MissingParameter(e.name.clone())
            });
        }
        if !self.conversion.has_modes() {
            // The buffer always holds the returned point: nothing to switch, stay trainable.
            return Ok(());
        }
        let (n_learner, n_slots) = (self.learner.slot_names().len(), self.num_slots());
        {
            for (p, &idx) in params.iter_mut().zip(&self.resolved) {
                let e = &mut self.entries[idx];
                if !e.has_state || self.groups[e.group].train_mode == to_train {
                    continue;
                }
                let value = &mut *p.value;
                let conv = self.conversion.at_step(self.groups[e.group].k);
                e.layout(n_slots).for_each_mut(&mut e.state, |i, st| {
                    let cs = &mut st[n_learner..];
                    if to_train {
                        conv.to_train(&mut value[i], cs)
                    } else {
                        conv.to_eval(&mut value[i], cs)
                    }
                });
            }
        }
        for g in &mut self.groups {
            g.train_mode = to_train;
        }
        Ok(())
    }
}
