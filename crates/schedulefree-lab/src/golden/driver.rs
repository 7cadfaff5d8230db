//! Building the optimizer of a [`Plan`] through the public presets, behind one object-safe
//! interface so that the replay loop is written once for every method.

use schedulefree::conversion::Conversion;
use schedulefree::decay::Decay;
use schedulefree::learner::{self, Adam, BiasCorrection, Learner};
use schedulefree::schedule::Schedule;
use schedulefree::{
    ConfigError, Element, GroupConfig, GroupStepInfo, Optimizer, Param, ParamError, StepError, StepInfo,
};

use super::method::{Method, Plan, WrapperBase};

/// What the replay needs from an optimizer: the inherent methods of [`Optimizer`] of the
/// same names (see there).
pub(crate) trait Replayable<T: Element> {
    fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError>;
    fn add_param_to(&mut self, group: usize, name: &str, shape: &[usize]) -> Result<(), ParamError>;
    fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError>;
    fn eval(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError>;
    fn train(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError>;
    fn eval_params_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError>;
    fn group_info(&self, g: usize) -> Option<GroupStepInfo>;
    fn group_config(&self, g: usize) -> Option<GroupConfig>;
    fn set_group_config(&mut self, g: usize, config: GroupConfig) -> Result<(), ConfigError>;
    fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>>;
    /// Slot names (learner's, then conversion's).
    fn slots(&self) -> Vec<String>;
    /// Whether train and eval points differ.
    fn has_modes(&self) -> bool;
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Replayable<T> for Optimizer<T, L, C, D, S> {
    fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError> {
        Optimizer::add_group(self, config)
    }
    fn add_param_to(&mut self, group: usize, name: &str, shape: &[usize]) -> Result<(), ParamError> {
        Optimizer::add_param_to(self, group, name, shape)
    }
    fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError> {
        Optimizer::step(self, params)
    }
    fn eval(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        Optimizer::eval(self, params)
    }
    fn train(&mut self, params: &mut [Param<'_, T>]) -> Result<(), StepError> {
        Optimizer::train(self, params)
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
    fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>> {
        Optimizer::state_buffer(self, param, slot)
    }
    fn slots(&self) -> Vec<String> {
        self.state().slots
    }
    fn has_modes(&self) -> bool {
        self.conversion().has_modes()
    }
}

fn boxed<T: Element, O: Replayable<T> + 'static>(o: Result<O, ConfigError>) -> anyhow::Result<Box<dyn Replayable<T>>> {
    Ok(Box::new(o?))
}

/// Build the optimizer of `plan` with the public presets (the code path users call), add
/// groups 1.. and register parameter `p{i}` with `shapes[i]` in its group.
///
/// # Errors
/// Invalid hyperparameters (a [`ConfigError`] from the preset) or group membership.
pub(crate) fn build<T: Element>(
    plan: &Plan,
    members: &[Vec<usize>],
    shapes: &[Vec<usize>],
) -> anyhow::Result<Box<dyn Replayable<T>>> {
    let table = || plan.table.clone().ok_or_else(|| anyhow::anyhow!("torch case without an lr table"));
    let mut opt: Box<dyn Replayable<T>> = match &plan.method {
        Method::SgdScheduleFree(c) => boxed(c.build::<T>())?,
        Method::SgdScheduleFreeReference(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFree(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFreePaper(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFreeReference(c) => boxed(c.build::<T>())?,
        Method::RAdamScheduleFree(c) => boxed(c.build::<T>())?,
        Method::Wrapper { wrapper, reference, base, lr } => match (base, reference) {
            (WrapperBase::Sgd, false) => boxed(wrapper.wrap::<T, _>(learner::Sgd::plain(), *lr))?,
            (WrapperBase::Sgd, true) => boxed(wrapper.wrap_reference::<T, _>(learner::Sgd::plain(), *lr))?,
            (WrapperBase::Adam { beta2, eps }, reference) => {
                let adam = Adam { beta1: 0.0, beta2: *beta2, eps: *eps, bias_correction: BiasCorrection::Denominator };
                if *reference {
                    boxed(wrapper.wrap_reference::<T, _>(adam, *lr))?
                } else {
                    boxed(wrapper.wrap::<T, _>(adam, *lr))?
                }
            }
        },
        Method::TorchAdamW(c) => boxed(c.build::<T, _>(table()?))?,
        Method::TorchSgd(c) => boxed(c.build::<T, _>(table()?))?,
    };
    for g in plan.groups.iter().skip(1) {
        opt.add_group(*g)?;
    }
    anyhow::ensure!(members.len() == plan.groups.len(), "group membership does not match the groups");
    for (g, m) in members.iter().enumerate() {
        for &i in m {
            let shape = shapes.get(i).ok_or_else(|| anyhow::anyhow!("group {g} lists unknown parameter {i}"))?;
            opt.add_param_to(g, &param_name(i), shape)?;
        }
    }
    Ok(opt)
}

/// Registered name of parameter `i`.
pub(crate) fn param_name(i: usize) -> String {
    format!("p{i}")
}
