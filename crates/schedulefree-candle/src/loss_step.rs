//! Steps that pass the loss value to the core, for learners whose step size uses it (the
//! Polyak learner: SPS, Loizou et al., arXiv 2002.10542). `candle_nn::Optimizer::backward_step` has no loss
//! argument, so these are inherent methods.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use schedulefree::StepInfo;

use crate::error::CandleAdapterError;
use crate::optimizer::ScheduleFreeOptimizer;

impl ScheduleFreeOptimizer {
    /// [`ScheduleFreeOptimizer::try_step`] with `loss`, the loss at the vars' current values
    /// on the batch that produced `grads` (the Polyak learner needs it; other learners ignore
    /// it). A non-finite loss skips the step ([`StepInfo::skipped`]).
    ///
    /// # Errors
    /// As [`ScheduleFreeOptimizer::try_step`]. Nothing changes on error.
    pub fn try_step_with_loss(
        &mut self,
        grads: &GradStore,
        loss: f64,
    ) -> Result<StepInfo, CandleAdapterError> {
        self.step_inner(grads, Some(loss))
    }

    /// `loss.backward()` and one step with the loss's value: what
    /// `candle_nn::Optimizer::backward_step` does, plus the loss the Polyak learner needs
    /// (optax's `update(grads, state, params, value=loss)`). `loss` must have one element
    /// (any dtype; read as `f64`).
    ///
    /// # Errors
    /// [`CandleAdapterError::LossShape`] if `loss` has more or fewer than one element;
    /// [`CandleAdapterError::Candle`] if the backward pass or reading the value fails; as
    /// [`ScheduleFreeOptimizer::try_step`]. The vars do not change on error.
    pub fn backward_step_with_loss(
        &mut self,
        loss: &Tensor,
    ) -> Result<StepInfo, CandleAdapterError> {
        if loss.elem_count() != 1 {
            return Err(CandleAdapterError::LossShape {
                shape: loss.dims().to_vec(),
            });
        }
        let value = loss.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0];
        let grads = loss.backward()?;
        self.try_step_with_loss(&grads, value)
    }
}
