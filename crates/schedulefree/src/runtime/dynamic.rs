//! Object-safe view of any composed optimizer, for code that picks the method at run time
//! (config files, the lab, framework adapters).

use crate::conversion::{Conversion, GroupAveraging};
use crate::decay::Decay;
use crate::driver::{
    ExternalParam, NextStep, NonFinitePolicy, Optimizer, OptimizerState, ParamDiagnostics,
    PrepassEval, ProgramStep, SlotView, StepInfo, StepInputs,
};
use crate::element::Element;
use crate::error::{ConfigError, ParamError, StateError, StepError};
use crate::learner::Learner;
use crate::param::{GroupConfig, GroupStepInfo, Param, ParamTags};
use crate::program::{ElementProgram, ProgramError};
use crate::schedule::Schedule;

/// The runtime interface of [`Optimizer`]; every method forwards to the inherent one of the
/// same name (see there for semantics and errors).
pub trait DynOptimizer<T: Element>: Send + std::fmt::Debug {
    /// [`Optimizer::add_group`].
    ///
    /// # Errors
    /// As the inherent method.
    fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError>;
    /// [`Optimizer::set_group_averaging`]: group `g`'s own `r`, `weight_lr_power`, `c_warmup`.
    ///
    /// # Errors
    /// As the inherent method.
    fn set_group_averaging(&mut self, g: usize, o: GroupAveraging) -> Result<(), ConfigError>;
    /// [`Optimizer::group_averaging`].
    fn group_averaging(&self, g: usize) -> Option<GroupAveraging>;
    /// [`Optimizer::add_param`]: register `name` with `shape` in group 0.
    ///
    /// # Errors
    /// As the inherent method.
    fn add_param(&mut self, name: &str, shape: &[usize]) -> Result<(), ParamError> {
        self.add_param_to(0, name, shape)
    }
    /// [`Optimizer::add_param_to`].
    ///
    /// # Errors
    /// As the inherent method.
    fn add_param_to(&mut self, group: usize, name: &str, shape: &[usize])
    -> Result<(), ParamError>;
    /// [`Optimizer::add_param_tagged`].
    ///
    /// # Errors
    /// As the inherent method.
    fn add_param_tagged(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError>;
    /// [`Optimizer::set_param_tags`].
    ///
    /// # Errors
    /// As the inherent method.
    fn set_param_tags(&mut self, name: &str, tags: ParamTags) -> Result<(), ParamError>;
    /// [`Optimizer::param_tags`].
    fn param_tags(&self, name: &str) -> Option<ParamTags>;
    /// [`Optimizer::step`].
    ///
    /// # Errors
    /// As the inherent method.
    fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError>;
    /// [`Optimizer::step_with`].
    ///
    /// # Errors
    /// As the inherent method.
    fn step_with(
        &mut self,
        params: &mut [Param<'_, T>],
        inputs: StepInputs<'_>,
    ) -> Result<StepInfo, StepError>;
    /// [`Optimizer::step_with_loss`].
    ///
    /// # Errors
    /// As the inherent method.
    fn step_with_loss(
        &mut self,
        params: &mut [Param<'_, T>],
        loss: f64,
    ) -> Result<StepInfo, StepError> {
        self.step_with(params, StepInputs::with_loss(loss))
    }
    /// [`Optimizer::step_programs`].
    ///
    /// # Errors
    /// As the inherent method.
    fn step_programs(
        &mut self,
        params: &[ExternalParam<'_>],
        inputs: StepInputs<'_>,
    ) -> Result<ProgramStep, StepError>;
    /// [`Optimizer::step_programs_with`].
    ///
    /// # Errors
    /// As the inherent method.
    fn step_programs_with(
        &mut self,
        params: &[ExternalParam<'_>],
        inputs: StepInputs<'_>,
        prepass: Option<&mut PrepassEval<'_>>,
    ) -> Result<ProgramStep, StepError>;
    /// [`Optimizer::needs_prepass`].
    fn needs_prepass(&self) -> bool;
    /// [`Optimizer::programs_cover`].
    ///
    /// # Errors
    /// As the inherent method.
    fn programs_cover(&self, tags: ParamTags) -> Result<(), ProgramError>;
    /// [`Optimizer::eval_program`].
    ///
    /// # Errors
    /// As the inherent method.
    fn eval_program(&self) -> Result<ElementProgram, ProgramError>;
    /// [`Optimizer::mode_program`].
    ///
    /// # Errors
    /// As the inherent method.
    fn mode_program(&self, to_train: bool) -> Result<ElementProgram, ProgramError>;
    /// [`Optimizer::switch_external_mode`].
    ///
    /// # Errors
    /// As the inherent method.
    fn switch_external_mode(&mut self, to_train: bool) -> Result<(), StepError>;
    /// Whether `step` needs the loss ([`crate::learner::Learner::needs_loss`]).
    fn needs_loss(&self) -> bool;
    /// [`Optimizer::set_diagnostics`].
    fn set_diagnostics(&mut self, on: bool);
    /// [`Optimizer::set_non_finite`].
    fn set_non_finite(&mut self, policy: NonFinitePolicy);
    /// [`Optimizer::non_finite`].
    fn non_finite(&self) -> NonFinitePolicy;
    /// [`Optimizer::diagnostics`].
    fn diagnostics(&self) -> Vec<ParamDiagnostics>;
    /// [`Optimizer::train`].
    ///
    /// # Errors
    /// As the inherent method.
    fn train(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError>;
    /// [`Optimizer::eval`].
    ///
    /// # Errors
    /// As the inherent method.
    fn eval(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError>;
    /// [`Optimizer::eval_params_into`].
    ///
    /// # Errors
    /// As the inherent method.
    fn eval_params_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError>;
    /// [`Optimizer::group_info`].
    fn group_info(&self, g: usize) -> Option<GroupStepInfo>;
    /// [`Optimizer::group_config`].
    fn group_config(&self, g: usize) -> Option<GroupConfig>;
    /// [`Optimizer::set_group_config`].
    ///
    /// # Errors
    /// As the inherent method.
    fn set_group_config(&mut self, g: usize, config: GroupConfig) -> Result<(), ConfigError>;
    /// Whether the returned point differs from the training buffer (train/eval matter).
    fn has_modes(&self) -> bool;
    /// [`Optimizer::is_train_mode`].
    fn is_train_mode(&self) -> bool;
    /// [`Optimizer::state`].
    fn state(&self) -> OptimizerState;
    /// [`Optimizer::load_state`].
    ///
    /// # Errors
    /// As the inherent method.
    fn load_state(&mut self, st: &OptimizerState) -> Result<(), StateError>;
    /// [`Optimizer::state_buffer`].
    fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>>;
    /// [`Optimizer::slot`].
    fn slot(&self, name: &str, slot: &str) -> Option<SlotView<'_, T>>;
    /// [`Optimizer::x_into`].
    ///
    /// # Errors
    /// As the inherent method.
    fn x_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError>;
    /// [`Optimizer::z_into`].
    ///
    /// # Errors
    /// As the inherent method.
    fn z_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError>;
    /// [`Optimizer::next_step`].
    fn next_step(&self, g: usize) -> Option<NextStep>;
    /// [`Optimizer::slot_names`], collected: what [`DynOptimizer::slot`] accepts.
    fn slot_names(&self) -> Vec<&'static str>;
    /// [`Optimizer::num_groups`].
    fn num_groups(&self) -> usize;
    /// [`Optimizer::step_count`]: completed updates of group 0.
    fn step_count(&self) -> u64;
    /// The schedule's multiplier of the peak lr for the update after `k` completed updates
    /// ([`Schedule::value`] of [`Optimizer::schedule`]).
    fn schedule_value(&self, k: u64) -> f64;
    /// The schedule's horizon ([`Schedule::horizon`]): updates after which it stops changing.
    fn schedule_horizon(&self) -> Option<u64>;
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> DynOptimizer<T>
    for Optimizer<T, L, C, D, S>
{
    fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError> {
        Optimizer::add_group(self, config)
    }
    fn set_group_averaging(&mut self, g: usize, o: GroupAveraging) -> Result<(), ConfigError> {
        Optimizer::set_group_averaging(self, g, o)
    }
    fn group_averaging(&self, g: usize) -> Option<GroupAveraging> {
        Optimizer::group_averaging(self, g)
    }
    fn add_param_to(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
    ) -> Result<(), ParamError> {
        Optimizer::add_param_to(self, group, name, shape)
    }
    fn add_param_tagged(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError> {
        Optimizer::add_param_tagged(self, group, name, shape, tags)
    }
    fn set_param_tags(&mut self, name: &str, tags: ParamTags) -> Result<(), ParamError> {
        Optimizer::set_param_tags(self, name, tags)
    }
    fn param_tags(&self, name: &str) -> Option<ParamTags> {
        Optimizer::param_tags(self, name)
    }
    fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError> {
        Optimizer::step(self, params)
    }
    fn step_with(
        &mut self,
        params: &mut [Param<'_, T>],
        inputs: StepInputs<'_>,
    ) -> Result<StepInfo, StepError> {
        Optimizer::step_with(self, params, inputs)
    }
    fn step_programs(
        &mut self,
        params: &[ExternalParam<'_>],
        inputs: StepInputs<'_>,
    ) -> Result<ProgramStep, StepError> {
        Optimizer::step_programs(self, params, inputs)
    }
    fn programs_cover(&self, tags: ParamTags) -> Result<(), ProgramError> {
        Optimizer::programs_cover(self, tags)
    }
    fn step_programs_with(
        &mut self,
        params: &[ExternalParam<'_>],
        inputs: StepInputs<'_>,
        prepass: Option<&mut PrepassEval<'_>>,
    ) -> Result<ProgramStep, StepError> {
        Optimizer::step_programs_with(self, params, inputs, prepass)
    }
    fn needs_prepass(&self) -> bool {
        Optimizer::needs_prepass(self)
    }
    fn eval_program(&self) -> Result<ElementProgram, ProgramError> {
        Optimizer::eval_program(self)
    }
    fn mode_program(&self, to_train: bool) -> Result<ElementProgram, ProgramError> {
        Optimizer::mode_program(self, to_train)
    }
    fn switch_external_mode(&mut self, to_train: bool) -> Result<(), StepError> {
        Optimizer::switch_external_mode(self, to_train)
    }
    fn needs_loss(&self) -> bool {
        self.learner().needs_loss()
    }
    fn set_diagnostics(&mut self, on: bool) {
        Optimizer::set_diagnostics(self, on)
    }
    fn set_non_finite(&mut self, policy: NonFinitePolicy) {
        Optimizer::set_non_finite(self, policy)
    }
    fn non_finite(&self) -> NonFinitePolicy {
        Optimizer::non_finite(self)
    }
    fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        Optimizer::diagnostics(self)
    }
    fn train(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        Optimizer::train(self, params)
    }
    fn eval(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        Optimizer::eval(self, params)
    }
    fn eval_params_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError> {
        Optimizer::eval_params_into(self, name, value, out)
    }
    fn group_info(&self, g: usize) -> Option<GroupStepInfo> {
        Optimizer::group_info(self, g)
    }
    fn group_config(&self, g: usize) -> Option<GroupConfig> {
        Optimizer::group_config(self, g)
    }
    fn set_group_config(&mut self, g: usize, config: GroupConfig) -> Result<(), ConfigError> {
        Optimizer::set_group_config(self, g, config)
    }
    fn has_modes(&self) -> bool {
        self.conversion().has_modes()
    }
    fn is_train_mode(&self) -> bool {
        Optimizer::is_train_mode(self)
    }
    fn state(&self) -> OptimizerState {
        Optimizer::state(self)
    }
    fn load_state(&mut self, st: &OptimizerState) -> Result<(), StateError> {
        Optimizer::load_state(self, st)
    }
    fn slot(&self, name: &str, slot: &str) -> Option<SlotView<'_, T>> {
        Optimizer::slot(self, name, slot)
    }
    fn x_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError> {
        Optimizer::x_into(self, name, value, out)
    }
    fn z_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError> {
        Optimizer::z_into(self, name, value, out)
    }
    fn next_step(&self, g: usize) -> Option<NextStep> {
        Optimizer::next_step(self, g)
    }
    fn step_count(&self) -> u64 {
        Optimizer::step_count(self)
    }
    fn slot_names(&self) -> Vec<&'static str> {
        Optimizer::slot_names(self).collect()
    }
    fn num_groups(&self) -> usize {
        Optimizer::num_groups(self)
    }
    fn schedule_value(&self, k: u64) -> f64 {
        self.schedule().value(k)
    }
    fn schedule_horizon(&self) -> Option<u64> {
        self.schedule().horizon()
    }
    fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>> {
        Optimizer::state_buffer(self, param, slot)
    }
}
