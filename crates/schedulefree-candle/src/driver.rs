//! The core optimizer over one element type and the candle `Var`s it drives: each call
//! copies the vars (and gradients) into host buffers, calls the core, and writes back what
//! the core changed. No optimizer math lives here.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use schedulefree::{
    DynOptimizer, OptimizerState, Param, ParamDiagnostics, ParamTags, PresetConfig, StepInfo,
    StepInputs,
};

use crate::error::CandleAdapterError;
use crate::host::{HostElement, read_into, to_host, write_from};

/// One registered var with its reusable host buffers (allocated once, so that a step
/// allocates nothing per element).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Name in the core (state key).
    pub name: String,
    /// The candle variable.
    pub var: Var,
    /// Its values: `y` while training.
    value: Vec<T>,
    /// Its gradient this step; scratch for `x` inside an eval guard.
    grad: Vec<T>,
    /// Whether it got a gradient in the current step.
    has_grad: bool,
}

/// The core optimizer and its vars, sorted by name.
#[derive(Debug)]
pub(crate) struct Driver<T: HostElement> {
    pub opt: Box<dyn DynOptimizer<T>>,
    pub entries: Vec<Entry<T>>,
    /// Whether the core records norm diagnostics (kept across state loads, which rebuild it).
    diagnostics: bool,
}

impl<T: HostElement> Driver<T> {
    /// Build the preset and register `vars` (already sorted and checked) in group 0, each
    /// tagged by `tags`.
    pub fn new(
        config: &PresetConfig,
        vars: Vec<(String, Var)>,
        tags: &dyn Fn(&str) -> ParamTags,
    ) -> Result<Self, CandleAdapterError> {
        let mut opt = config.build_dyn::<T>()?;
        let mut entries = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            opt.add_param_tagged(0, &name, var.dims(), tags(&name))?;
            let n = var.elem_count();
            entries.push(Entry {
                name,
                var,
                value: vec![T::zero(); n],
                grad: vec![T::zero(); n],
                has_grad: false,
            });
        }
        Ok(Driver {
            opt,
            entries,
            diagnostics: false,
        })
    }

    /// Replace the core by a fresh one of `config` with `st` loaded: every var registered with
    /// the tags the state records for it (its current tags if the state has none), group 0's
    /// configuration and the diagnostics switch kept. Nothing changes on error.
    pub fn load_state(
        &mut self,
        config: &PresetConfig,
        st: &OptimizerState,
    ) -> Result<(), CandleAdapterError> {
        refuse_held_outside(st)?;
        let mut opt = config.build_dyn::<T>()?;
        if let Some(g) = self.opt.group_config(0) {
            opt.set_group_config(0, g)?;
        }
        for e in &self.entries {
            let tags = st
                .params
                .get(&e.name)
                .map(|r| r.tags)
                .or_else(|| self.opt.param_tags(&e.name))
                .unwrap_or_default();
            opt.add_param_tagged(0, &e.name, e.var.dims(), tags)?;
        }
        opt.load_state(st)?;
        opt.set_diagnostics(self.diagnostics);
        self.opt = opt;
        Ok(())
    }

    /// Switch the core's norm diagnostics on or off.
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
        self.opt.set_diagnostics(on);
    }

    /// Whether diagnostics are switched on.
    pub fn diagnostics_on(&self) -> bool {
        self.diagnostics
    }

    /// The core's diagnostics of the latest step.
    pub fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        self.opt.diagnostics()
    }

    /// One core step on the vars that have a gradient in `grads`; the others are not moved
    /// and get no state. Writes the new `y` back unless the core skipped the step. `loss` is
    /// the loss at the vars' values (learners that need it: Polyak).
    pub fn step(
        &mut self,
        grads: &GradStore,
        loss: Option<f64>,
    ) -> Result<StepInfo, CandleAdapterError> {
        for e in &mut self.entries {
            e.has_grad = false;
            let Some(g) = grads.get(e.var.as_tensor()) else {
                continue;
            };
            check_gradient(&e.name, g, &e.var)?;
            read_into(g, &mut e.grad)?;
            read_into(e.var.as_tensor(), &mut e.value)?;
            e.has_grad = true;
        }
        let info = {
            let mut params: Vec<Param<'_, T>> = self
                .entries
                .iter_mut()
                .filter(|e| e.has_grad)
                .map(|e| Param::new(&e.name, &mut e.value, &e.grad))
                .collect();
            self.opt.step_with(
                &mut params,
                StepInputs {
                    loss,
                    all_reduce: None,
                },
            )?
        };
        if info.skipped.is_none() {
            for e in self.entries.iter().filter(|e| e.has_grad) {
                write_from(&e.var, &e.value)?;
            }
        }
        Ok(info)
    }

    /// PyTorch-style mode switch of every var (idempotent): `to_train` false writes `x`
    /// into the vars, true writes `y` back (computed by the core from `x` and `z`).
    pub fn switch_mode(&mut self, to_train: bool) -> Result<(), CandleAdapterError> {
        if !self.opt.has_modes() || self.opt.is_train_mode() == to_train {
            return Ok(());
        }
        for e in &mut self.entries {
            read_into(e.var.as_tensor(), &mut e.value)?;
        }
        {
            let mut params: Vec<Param<'_, T>> = self
                .entries
                .iter_mut()
                .map(|e| Param::no_grad(&e.name, &mut e.value))
                .collect();
            if to_train {
                self.opt.train(&mut params)?
            } else {
                self.opt.eval(&mut params)?
            }
        }
        for e in &self.entries {
            write_from(&e.var, &e.value)?;
        }
        Ok(())
    }

    /// Write `x` into every var whose evaluation point differs from its buffer, keeping
    /// the buffer `y` for [`Driver::restore`]; returns the indices written. Nothing is
    /// written when the optimizer is in eval mode or has no modes.
    pub fn enter_eval(&mut self) -> Result<Vec<usize>, CandleAdapterError> {
        let mut written = Vec::new();
        if !self.opt.has_modes() || !self.opt.is_train_mode() {
            return Ok(written);
        }
        for (i, e) in self.entries.iter_mut().enumerate() {
            read_into(e.var.as_tensor(), &mut e.value)?;
            self.opt.eval_params_into(&e.name, &e.value, &mut e.grad)?;
            if e.value
                .iter()
                .zip(&e.grad)
                .any(|(y, x)| y.f64().to_bits() != x.f64().to_bits())
            {
                if let Err(err) = write_from(&e.var, &e.grad) {
                    // Leave no var at x behind on failure.
                    let _ = self.restore(&written);
                    return Err(err);
                }
                written.push(i);
            }
        }
        Ok(written)
    }

    /// Write the saved `y` back into the vars listed by [`Driver::enter_eval`], bit for bit.
    /// Tries every var even after a failure; returns the first error.
    pub fn restore(&self, written: &[usize]) -> Result<(), CandleAdapterError> {
        let mut first = Ok(());
        for &i in written {
            if let Some(e) = self.entries.get(i)
                && let Err(err) = write_from(&e.var, &e.value)
                && first.is_ok()
            {
                first = Err(err);
            }
        }
        first
    }

    /// The returned point `x` of entry `i` as a new tensor on the var's device, from the
    /// var's current value, without changing anything.
    pub fn eval_point(&self, i: usize) -> Result<Tensor, CandleAdapterError> {
        let e = &self.entries[i];
        let value = to_host::<T>(e.var.as_tensor())?;
        let mut x = vec![T::zero(); value.len()];
        self.opt.eval_params_into(&e.name, &value, &mut x)?;
        Ok(Tensor::from_vec(x, e.var.shape(), e.var.device())?)
    }

    /// The core's state snapshot (infallible here; a `Result` as on the device path).
    pub fn state(&self) -> Result<OptimizerState, CandleAdapterError> {
        Ok(self.opt.state())
    }
}

/// Refuse a state whose slots were held outside the optimizer and not filled in (a core's
/// raw `state()` after external steps): neither path could resume it.
///
/// # Errors
/// [`schedulefree::StateError::Param`] naming the first such parameter.
pub(crate) fn refuse_held_outside(st: &OptimizerState) -> Result<(), CandleAdapterError> {
    match st.params.iter().find(|(_, r)| r.external) {
        Some((name, _)) => Err(schedulefree::StateError::Param {
            name: name.clone(),
            what: "the state records no slots (they were held outside the optimizer): save \
                   with `ScheduleFreeOptimizer::state`"
                .into(),
        }
        .into()),
        None => Ok(()),
    }
}

/// Refuse a gradient whose dtype, shape or device differs from its var's.
///
/// # Errors
/// [`CandleAdapterError::Gradient`] naming the var.
pub(crate) fn check_gradient(name: &str, g: &Tensor, var: &Var) -> Result<(), CandleAdapterError> {
    let what = if g.dtype() != var.dtype() || g.dims() != var.dims() {
        format!(
            "{:?} {:?}, the var is {:?} {:?}",
            g.dtype(),
            g.dims(),
            var.dtype(),
            var.dims()
        )
    } else if !g.device().same_device(var.device()) {
        format!(
            "on {:?}, the var on {:?}",
            g.device().location(),
            var.device().location()
        )
    } else {
        return Ok(());
    };
    Err(CandleAdapterError::Gradient {
        name: name.to_string(),
        what,
    })
}
