//! The device-resident path: the optimizer state lives as candle tensors on each var's
//! device and the element update runs there as candle tensor ops; the core takes the step's
//! scalar decisions and hands back one element program per var
//! ([`schedulefree::Optimizer::step_programs_with`]). A step reads three numbers per var
//! back to the host (the gradient's `‖g‖₁`, `‖g‖₂²` and whether it is finite), and
//! Prodigy's two more (its pre-pass sums, a second read); nothing parameter-sized.

mod program;
#[cfg(test)]
mod tests;

use std::cell::Cell;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use schedulefree::{
    DynOptimizer, ExternalParam, GradientSums, OptimizerState, ParamDiagnostics, ParamTags,
    PrepassEval, PrepassProgram, PresetConfig, StepError, StepInfo, StepInputs,
};

use crate::driver::{check_gradient, refuse_held_outside};
use crate::error::CandleAdapterError;
use crate::host::HostElement;

/// One registered var and its state on the var's device.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Name in the core (state key).
    pub name: String,
    /// The candle variable.
    pub var: Var,
    /// The state slots in the core's slot order, shaped as the var; `None` before its first
    /// gradient.
    slots: Option<Vec<Tensor>>,
    /// The training point `y` while an eval guard holds `x` in the var.
    saved_y: Option<Tensor>,
}

/// The core optimizer (scalars and counters only) and its vars, sorted by name.
#[derive(Debug)]
pub(crate) struct DeviceDriver<T: HostElement> {
    pub opt: Box<dyn DynOptimizer<T>>,
    pub entries: Vec<Entry>,
    diagnostics: bool,
}

/// Build `config`'s core with `vars` registered in group 0, each with the tags `tags_of`
/// gives it.
fn build_core<T: HostElement>(
    config: &PresetConfig,
    vars: &[(String, Var)],
    tags_of: impl Fn(&str) -> ParamTags,
) -> Result<Box<dyn DynOptimizer<T>>, CandleAdapterError> {
    let mut opt = config.build_dyn::<T>()?;
    for (name, var) in vars {
        opt.add_param_tagged(0, name, var.dims(), tags_of(name))?;
    }
    Ok(opt)
}

/// Whether element programs cover `config` over `vars` tagged by `rules`: a trial step of a
/// throwaway core (the hypersphere projection of a `normalized` var is not covered).
///
/// # Errors
/// [`CandleAdapterError::Step`] with [`StepError::Program`] when they do not; the
/// configuration and registration errors of the constructors.
pub(crate) fn check_covered<T: HostElement>(
    config: &PresetConfig,
    vars: &[(String, Var)],
    tags: &dyn Fn(&str) -> ParamTags,
) -> Result<(), CandleAdapterError> {
    let mut opt = build_core::<T>(config, vars, tags)?;
    let sums = GradientSums {
        l1: 1.0,
        l2_sq: 1.0,
        finite: true,
    };
    let params: Vec<ExternalParam<'_>> = vars
        .iter()
        .map(|(name, _)| ExternalParam {
            name,
            grad: Some(sums),
        })
        .collect();
    // A pre-pass learner is covered: its evaluator is `prepass_sums`.
    let mut zeros =
        |p: &[PrepassProgram]| Some(vec![0.0; p.iter().map(|p| p.terms.terms().len()).sum()]);
    opt.step_programs_with(&params, StepInputs::with_loss(1.0), Some(&mut zeros))?;
    Ok(())
}

impl<T: HostElement> DeviceDriver<T> {
    /// Build the preset and register `vars` (already sorted and checked) in group 0, each
    /// tagged by `tags`.
    pub fn new(
        config: &PresetConfig,
        vars: Vec<(String, Var)>,
        tags: &dyn Fn(&str) -> ParamTags,
    ) -> Result<Self, CandleAdapterError> {
        let opt = build_core::<T>(config, &vars, tags)?;
        Ok(DeviceDriver {
            opt,
            entries: vars
                .into_iter()
                .map(|(name, var)| Entry {
                    name,
                    var,
                    slots: None,
                    saved_y: None,
                })
                .collect(),
            diagnostics: false,
        })
    }

    /// Replace the core by a fresh one of `config` with `st` loaded (tags from the state,
    /// group 0's configuration and the diagnostics switch kept) and upload its slots to the
    /// vars' devices. Nothing changes on error.
    pub fn load_state(
        &mut self,
        config: &PresetConfig,
        st: &OptimizerState,
    ) -> Result<(), CandleAdapterError> {
        let vars: Vec<(String, Var)> = self
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.var.clone()))
            .collect();
        let tags_of = |name: &str| {
            st.params
                .get(name)
                .map(|r| r.tags)
                .or_else(|| self.opt.param_tags(name))
                .unwrap_or_default()
        };
        let group = self.opt.group_config(0);
        refuse_held_outside(st)?;
        // The core checks every buffer (names, lengths, values) on a host load first.
        let mut check = build_core::<T>(config, &vars, tags_of)?;
        check.load_state(st)?;
        let names = check.slot_names();
        let mut external = st.clone();
        let mut slots = Vec::with_capacity(vars.len());
        for (name, var) in &vars {
            let Some(rec) = external.params.get_mut(name) else {
                slots.push(None);
                continue;
            };
            if !rec.has_state {
                slots.push(None);
                continue;
            }
            let mut buffers = std::mem::take(&mut rec.buffers);
            let s = names
                .iter()
                .map(|n| {
                    // Exact: the core accepted them as values of `T`.
                    let b: Vec<T> = buffers
                        .remove(*n)
                        .unwrap_or_default()
                        .into_iter()
                        .map(<T as candle_core::WithDType>::from_f64)
                        .collect();
                    Tensor::from_vec(b, var.shape(), var.device())
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            slots.push(Some(s));
            rec.external = true;
        }
        let mut opt = build_core::<T>(config, &vars, tags_of)?;
        if let Some(g) = group {
            opt.set_group_config(0, g)?;
        }
        opt.load_state(&external)?;
        opt.set_diagnostics(self.diagnostics);
        self.opt = opt;
        for (e, s) in self.entries.iter_mut().zip(slots) {
            (e.slots, e.saved_y) = (s, None);
        }
        Ok(())
    }

    /// Switch the core's norm diagnostics on or off (they are not measured on this path:
    /// [`DeviceDriver::diagnostics`] stays empty).
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
        self.opt.set_diagnostics(on);
    }

    /// Whether diagnostics are switched on.
    pub fn diagnostics_on(&self) -> bool {
        self.diagnostics
    }

    /// The core's diagnostics of the latest step (none for vars stepped on this path).
    pub fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        self.opt.diagnostics()
    }

    /// One step on the vars that have a gradient in `grads`: their sums are reduced on each
    /// device and read back at once, the core decides the step, and each var's element
    /// program runs on its device. The others are not moved and get no state.
    pub fn step(
        &mut self,
        grads: &GradStore,
        loss: Option<f64>,
    ) -> Result<StepInfo, CandleAdapterError> {
        let mut stepped: Vec<(usize, Tensor)> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(g) = grads.get(e.var.as_tensor()) else {
                continue;
            };
            check_gradient(&e.name, g, &e.var)?;
            stepped.push((i, g.detach()));
        }
        let sums = gradient_sums::<T>(stepped.iter().map(|(_, g)| g))?;
        let params: Vec<ExternalParam<'_>> = stepped
            .iter()
            .zip(&sums)
            .map(|((i, _), s)| ExternalParam {
                name: &self.entries[*i].name,
                grad: Some(*s),
            })
            .collect();
        // The pre-pass (Prodigy): each program's term sums on its var's device, read back
        // together.
        let entries = &self.entries;
        let mut failure = None;
        let mut prepass =
            |programs: &[PrepassProgram]| match prepass_sums::<T>(programs, entries, &stepped) {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            };
        let eval = self
            .opt
            .needs_prepass()
            .then_some(&mut prepass as &mut PrepassEval<'_>);
        let inputs = StepInputs {
            loss,
            all_reduce: None,
        };
        let out = self.opt.step_programs_with(&params, inputs, eval);
        if let Some(e) = failure {
            return Err(e);
        }
        let out = out?;
        for pp in &out.programs {
            let (i, grad) = &stepped[pp.index];
            let e = &mut self.entries[*i];
            let value = e.var.as_tensor().detach();
            // Kept until replaced: a device error mid-step leaves the var's old state whole.
            let slots = match (&pp.init, &e.slots) {
                (Some(init), _) => program::run::<T>(init, &value, None, &[])?.slots,
                (None, Some(s)) => s.clone(),
                // Only after a device error interrupted this var's first step.
                (None, None) => return Err(lost_state(&e.name)),
            };
            let o = program::run::<T>(&pp.update, &value, Some(grad), &slots)?;
            if let Some(v) = &o.value {
                e.var.set(v)?;
            }
            e.slots = Some(o.slots);
        }
        Ok(out.info)
    }

    /// PyTorch-style mode switch of every var with state (idempotent), in place on the
    /// devices by the core's mode program. All new values are computed before any var is
    /// written.
    pub fn switch_mode(&mut self, to_train: bool) -> Result<(), CandleAdapterError> {
        if !self.opt.has_modes() || self.opt.is_train_mode() == to_train {
            return Ok(());
        }
        let mode = self.opt.mode_program(to_train).map_err(StepError::from)?;
        let mut outs = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            outs.push(match &e.slots {
                Some(s) => Some(program::run::<T>(
                    &mode,
                    &e.var.as_tensor().detach(),
                    None,
                    s,
                )?),
                None => None,
            });
        }
        for (e, o) in self.entries.iter_mut().zip(outs) {
            if let Some(o) = o {
                if let Some(v) = &o.value {
                    e.var.set(v)?;
                }
                e.slots = Some(o.slots);
            }
        }
        // Cannot fail here: every parameter with state is held on this path.
        self.opt.switch_external_mode(to_train)?;
        Ok(())
    }

    /// Write `x` into every var with state, keeping a device copy of `y` for
    /// [`DeviceDriver::restore`]; returns the indices written. Nothing is written when the
    /// optimizer is in eval mode or has no modes.
    pub fn enter_eval(&mut self) -> Result<Vec<usize>, CandleAdapterError> {
        let mut written = Vec::new();
        if !self.opt.has_modes() || !self.opt.is_train_mode() {
            return Ok(written);
        }
        let eval = self.opt.eval_program().map_err(StepError::from)?;
        let mut points = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let x = match &e.slots {
                Some(s) => program::run::<T>(&eval, &e.var.as_tensor().detach(), None, s)?.value,
                None => None,
            };
            let y = x
                .as_ref()
                .map(|_| e.var.as_tensor().detach().copy())
                .transpose()?;
            points.push(x.zip(y));
        }
        for (i, (e, p)) in self.entries.iter_mut().zip(points).enumerate() {
            if let Some((x, y)) = p {
                if let Err(err) = e.var.set(&x) {
                    // Leave no var at x behind on failure.
                    let _ = self.restore(&written);
                    return Err(err.into());
                }
                e.saved_y = Some(y);
                written.push(i);
            }
        }
        Ok(written)
    }

    /// Write the saved `y` back into the vars listed by [`DeviceDriver::enter_eval`], bit
    /// for bit. Tries every var even after a failure; returns the first error.
    pub fn restore(&mut self, written: &[usize]) -> Result<(), CandleAdapterError> {
        let mut first = Ok(());
        for &i in written {
            let Some(e) = self.entries.get_mut(i) else {
                continue;
            };
            if let Some(y) = &e.saved_y {
                match e.var.set(y) {
                    Ok(()) => e.saved_y = None,
                    // Kept: a later restore may still succeed.
                    Err(err) if first.is_ok() => first = Err(err.into()),
                    Err(_) => {}
                }
            }
        }
        first
    }

    /// The returned point `x` of entry `i` as a new tensor on the var's device, without
    /// changing anything.
    pub fn eval_point(&self, i: usize) -> Result<Tensor, CandleAdapterError> {
        let e = &self.entries[i];
        let value = e.var.as_tensor().detach();
        let x = match &e.slots {
            // In eval mode the var already holds x.
            Some(s) if self.opt.has_modes() && self.opt.is_train_mode() => {
                let eval = self.opt.eval_program().map_err(StepError::from)?;
                program::run::<T>(&eval, &value, None, s)?.value
            }
            _ => None,
        };
        Ok(match x {
            Some(x) => x,
            None => value.copy()?,
        })
    }

    /// The core's state with every var's slots read back into it: the host path's format
    /// (a full copy of the state; not for every step).
    pub fn state(&self) -> Result<OptimizerState, CandleAdapterError> {
        let mut st = self.opt.state();
        let names = self.opt.slot_names();
        for e in &self.entries {
            let (Some(rec), Some(slots)) = (st.params.get_mut(&e.name), &e.slots) else {
                continue;
            };
            rec.buffers = names
                .iter()
                .zip(slots)
                .map(|(n, s)| {
                    let v = read_back::<T>(s)?;
                    Ok((n.to_string(), v.into_iter().map(|x| x.f64()).collect()))
                })
                .collect::<Result<_, CandleAdapterError>>()?;
            rec.external = false;
        }
        Ok(st)
    }
}

thread_local! {
    static HOST_READS: Cell<usize> = const { Cell::new(0) };
}

/// `t`'s elements on the host, row-major. Every read of element data by a step, an eval
/// point, a mode switch or a state snapshot of this path goes through here and is counted
/// (per thread), so a test can check what a step moves to the host: three numbers per var,
/// nothing parameter-sized. (Checkpoints read the vars through their own file writer.)
pub(crate) fn read_back<T: HostElement>(t: &Tensor) -> Result<Vec<T>, CandleAdapterError> {
    let v = t.flatten_all()?.to_vec1::<T>()?;
    HOST_READS.with(|c| c.set(c.get() + v.len()));
    Ok(v)
}

/// The term sums of the pre-pass `programs` over the stepped vars (`(entry, gradient)`),
/// read back in one transfer.
fn prepass_sums<T: HostElement>(
    programs: &[PrepassProgram],
    entries: &[Entry],
    stepped: &[(usize, Tensor)],
) -> Result<Vec<f64>, CandleAdapterError> {
    let mut sums = Vec::new();
    let mut device = None;
    for pp in programs {
        let (i, grad) = &stepped[pp.index];
        let e = &entries[*i];
        let value = e.var.as_tensor().detach();
        let slots = match (&pp.init, &e.slots) {
            (Some(init), _) => program::run::<T>(init, &value, None, &[])?.slots,
            (None, Some(s)) => s.clone(),
            (None, None) => return Err(lost_state(&e.name)),
        };
        let target = device.get_or_insert_with(|| value.device().clone());
        // Metal has no f64: the sums are then in T.
        let dtype = if target.is_metal() {
            T::CANDLE_DTYPE
        } else {
            candle_core::DType::F64
        };
        for t in program::run::<T>(&pp.terms, &value, Some(grad), &slots)?.terms {
            // Moved first: the var's own device may lack the target's dtype.
            sums.push(t.to_device(target)?.to_dtype(dtype)?);
        }
    }
    let Some(target) = device else {
        return Ok(Vec::new());
    };
    let all = Tensor::stack(&sums, 0)?;
    if target.is_metal() {
        Ok(read_back::<T>(&all)?.into_iter().map(T::f64).collect())
    } else {
        read_back::<f64>(&all)
    }
}

/// A var whose first step a device error interrupted has no state to step from.
fn lost_state(name: &str) -> CandleAdapterError {
    candle_core::Error::Msg(format!(
        "`{name}`: its state was lost by an interrupted step; reload a saved state"
    ))
    .into()
}

/// Elements [`read_back`] has read on this thread so far.
#[cfg(test)]
pub(crate) fn host_reads() -> usize {
    HOST_READS.with(Cell::get)
}

/// `‖g‖₁`, `‖g‖₂²` and finiteness of each gradient, reduced on its device in `T` and read
/// back in one transfer (sums on other devices move to the first one's device: three
/// numbers per var). `g − g` sums to zero exactly when every element is finite.
fn gradient_sums<'a, T: HostElement>(
    grads: impl Iterator<Item = &'a Tensor>,
) -> Result<Vec<GradientSums>, CandleAdapterError> {
    let mut parts = Vec::new();
    let mut device = None;
    for g in grads {
        let target = device.get_or_insert_with(|| g.device().clone());
        let l1 = g.abs()?.sum_all()?;
        let l2 = g.sqr()?.sum_all()?;
        let bad = g.sub(g)?.sum_all()?;
        parts.push(Tensor::stack(&[l1, l2, bad], 0)?.to_device(target)?);
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let host = read_back::<T>(&Tensor::cat(&parts, 0)?)?;
    Ok(host
        .chunks_exact(3)
        .map(|s| GradientSums {
            l1: s[0].f64(),
            l2_sq: s[1].f64(),
            finite: s[2].f64() == 0.0,
        })
        .collect())
}
