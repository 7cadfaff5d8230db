//! [`ModuleStep`]: what [`TrainLoop`](crate::TrainLoop) needs of an optimizer over a whole
//! module, so that it runs [`ModelOptimizer`] (which picks the host or the device path) and
//! [`DeviceOptimizer`] (the device path alone) alike.

use burn::module::Module;
use burn::optim::GradientsParams;
use schedulefree::StepInfo;

use crate::device::DeviceOptimizer;
use crate::error::BurnAdapterError;
use crate::model_optimizer::ModelOptimizer;

/// An optimizer stepping a whole burn module and giving its eval point `x`:
/// [`ModelOptimizer`] (host path on flex, device path elsewhere) or [`DeviceOptimizer`] (state and
/// update on the parameters' devices, for GPU backends).
pub trait ModuleStep {
    /// One update at `y` with `grads` of `module`; returns the new module and what the step
    /// did.
    ///
    /// # Errors
    /// As [`ModelOptimizer::step`] / [`DeviceOptimizer::step`].
    fn step<M: Module>(
        &mut self,
        module: M,
        grads: GradientsParams,
    ) -> Result<(M, StepInfo), BurnAdapterError>;

    /// A copy of `module` at the eval point `x` (`module` itself is untouched).
    ///
    /// # Errors
    /// As [`ModelOptimizer::eval_module`] / [`DeviceOptimizer::eval_module`].
    fn eval_module<M: Module>(&self, module: &M) -> Result<M, BurnAdapterError>;

    /// Whether `x` differs from `y` (Schedule-Free presets).
    fn has_modes(&self) -> bool;
}

impl ModuleStep for ModelOptimizer {
    fn step<M: Module>(
        &mut self,
        module: M,
        grads: GradientsParams,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        ModelOptimizer::step(self, module, grads)
    }
    fn eval_module<M: Module>(&self, module: &M) -> Result<M, BurnAdapterError> {
        ModelOptimizer::eval_module(self, module)
    }
    fn has_modes(&self) -> bool {
        ModelOptimizer::has_modes(self)
    }
}

impl ModuleStep for DeviceOptimizer {
    fn step<M: Module>(
        &mut self,
        module: M,
        grads: GradientsParams,
    ) -> Result<(M, StepInfo), BurnAdapterError> {
        DeviceOptimizer::step(self, module, grads)
    }
    fn eval_module<M: Module>(&self, module: &M) -> Result<M, BurnAdapterError> {
        DeviceOptimizer::eval_module(self, module)
    }
    fn has_modes(&self) -> bool {
        DeviceOptimizer::has_modes(self)
    }
}
