//! Building the optimizer of a [`Plan`] through the public presets, behind the core's object-safe
//! [`DynOptimizer`] so that the replay loop is written once for every method.

use schedulefree::learner::{self, Adam, BiasCorrection, StepCount};
use schedulefree::{ConfigError, DynOptimizer, Element, ParamTags, PresetConfig};

use super::method::{Method, Plan, WrapperBase};

fn boxed<T: Element, O: DynOptimizer<T> + 'static>(
    o: Result<O, ConfigError>,
) -> anyhow::Result<Box<dyn DynOptimizer<T>>> {
    Ok(Box::new(o?))
}

/// Build the optimizer of `plan` with the public presets (the code path users call), add
/// groups 1.. and register parameter `p{i}` with `shapes[i]` in its group (tagged
/// `normalized` when the plan says so for that group).
///
/// # Errors
/// Invalid hyperparameters (a [`ConfigError`] from the preset) or group membership.
pub(crate) fn build<T: Element>(
    plan: &Plan,
    members: &[Vec<usize>],
    shapes: &[Vec<usize>],
) -> anyhow::Result<Box<dyn DynOptimizer<T>>> {
    let table = || {
        plan.table
            .clone()
            .ok_or_else(|| anyhow::anyhow!("torch case without an lr table"))
    };
    let mut opt: Box<dyn DynOptimizer<T>> = match &plan.method {
        Method::SgdScheduleFree(c) => boxed(c.build::<T>())?,
        Method::SgdScheduleFreeReference(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFree(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFreePaper(c) => boxed(c.build::<T>())?,
        Method::AdamWScheduleFreeReference(c) => boxed(c.build::<T>())?,
        Method::RAdamScheduleFree(c) => boxed(c.build::<T>())?,
        Method::Wrapper {
            wrapper,
            reference,
            base,
            lr,
        } => match (base, reference) {
            (WrapperBase::Sgd, false) => boxed(wrapper.wrap::<T, _>(learner::Sgd::plain(), *lr))?,
            (WrapperBase::Sgd, true) => {
                boxed(wrapper.wrap_reference::<T, _>(learner::Sgd::plain(), *lr))?
            }
            (WrapperBase::Adam { beta2, eps }, reference) => {
                // torch Adam counts bias corrections per parameter (`state["step"]`).
                let adam = Adam {
                    beta1: 0.0,
                    beta2: *beta2,
                    eps: *eps,
                    bias_correction: BiasCorrection::Denominator,
                    count: StepCount::Parameter,
                };
                if *reference {
                    boxed(wrapper.wrap_reference::<T, _>(adam, *lr))?
                } else {
                    boxed(wrapper.wrap::<T, _>(adam, *lr))?
                }
            }
        },
        Method::TorchAdamW(c) => boxed(c.build::<T, _>(table()?))?,
        Method::TorchSgd(c) => boxed(c.build::<T, _>(table()?))?,
        Method::AdamC(c) => boxed(c.build::<T, _>(table()?))?,
        // Built in the core (no kernels instantiated here).
        Method::ScheduleFreePlus(c) => PresetConfig::ScheduleFreePlus(*c).build_dyn::<T>()?,
    };
    for g in plan.groups.iter().skip(1) {
        opt.add_group(*g)?;
    }
    for (g, o) in plan.averaging.iter().enumerate() {
        opt.set_group_averaging(g, *o)?;
    }
    anyhow::ensure!(
        members.len() == plan.groups.len(),
        "group membership does not match the groups"
    );
    anyhow::ensure!(
        plan.normalized.len() == plan.groups.len(),
        "normalized flags do not match the groups"
    );
    for (g, m) in members.iter().enumerate() {
        let tags = if plan.normalized[g] {
            ParamTags::NORMALIZED
        } else {
            ParamTags::default()
        };
        for &i in m {
            let shape = shapes
                .get(i)
                .ok_or_else(|| anyhow::anyhow!("group {g} lists unknown parameter {i}"))?;
            opt.add_param_tagged(g, &param_name(i), shape, tags)?;
        }
    }
    Ok(opt)
}

/// Registered name of parameter `i`.
pub(crate) fn param_name(i: usize) -> String {
    format!("p{i}")
}
