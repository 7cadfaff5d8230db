//! Steps whose element work runs outside the optimizer: parameters and their state live
//! elsewhere (device tensors of burn or candle), the optimizer keeps everything else (the
//! registry, step counters, averaging weights, the learner's group state) and returns, per
//! parameter, the [`ElementProgram`] of this step for the caller to run on its elements.
//!
//! The phases are the host step's (`step.rs`), with the gradient sums reported by the caller
//! instead of read from host buffers: the non-finite check and skip decision, the all-reduce,
//! the scalar phase and its commit are the same code, so both paths take the same scalar
//! decisions.

use super::Optimizer;
use super::step_io::{NonFinitePolicy, StepInfo, StepInputs};
use crate::conversion::Conversion;
use crate::decay::{Decay, DecayTerms};
use crate::element::Element;
use crate::error::StepError;
use crate::kernel::{GradSums, Kernel};
use crate::learner::{Learner, MAX_PREPASS};
use crate::param::ParamTags;
use crate::program::{
    ElementProgram, ProgramError, eval_program, init_program, mode_program, prepass_program,
    update_program,
};
use crate::schedule::Schedule;

/// A parameter of an [`Optimizer::step_programs`] call: its name and, when it has a gradient
/// this step, the sums of that gradient (taken where the gradient lives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExternalParam<'a> {
    /// Registered name.
    pub name: &'a str,
    /// The gradient's sums, or `None` when the parameter has no gradient this step (it is
    /// not moved, as a host parameter passed without a gradient).
    pub grad: Option<GradientSums>,
}

/// Sums of one gradient tensor, in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GradientSums {
    /// `‖g‖₁ = Σ|gᵢ|`.
    pub l1: f64,
    /// `‖g‖₂² = Σgᵢ²`.
    pub l2_sq: f64,
    /// Whether every element is finite (no NaN, no ±inf).
    pub finite: bool,
}

/// What one parameter's elements must do this step.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamProgram {
    /// Index into the slice passed to [`Optimizer::step_programs`].
    pub index: usize,
    /// At the parameter's first gradient: creates its state slots from its value (run it
    /// first, on slots of zeros, then [`ParamProgram::update`]); `None` afterwards.
    pub init: Option<ElementProgram>,
    /// The element update of this step.
    pub update: ElementProgram,
}

/// The pre-pass work of one parameter in [`Optimizer::step_programs_with`]: run `init` (if
/// any) on slots of zeros, then `terms` on the value, the gradient and those slots, and sum
/// each of its [`ElementProgram::terms`] over the tensor. `terms` writes nothing (its value
/// and slot outputs are its inputs); the slots `init` made are the ones
/// [`ParamProgram::init`] makes again for the update.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepassProgram {
    /// Index into the slice passed to [`Optimizer::step_programs_with`].
    pub index: usize,
    /// At the parameter's first gradient: its state at creation (as [`ParamProgram::init`]).
    pub init: Option<ElementProgram>,
    /// The element terms, with this step's scalars folded in.
    pub terms: ElementProgram,
}

/// The caller's pre-pass evaluator: given the [`PrepassProgram`]s of a step, the sums of
/// their terms, `n` per program in order (`n` = the terms of each program), or `None` when
/// it failed (the step is then refused with [`StepError::PrepassFailed`], nothing changed;
/// keep the reason on the caller's side).
pub type PrepassEval<'a> = dyn FnMut(&[PrepassProgram]) -> Option<Vec<f64>> + 'a;

/// The outcome of [`Optimizer::step_programs`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramStep {
    /// As [`Optimizer::step`] reports it (a skipped step has `info.skipped` set and no
    /// programs).
    pub info: StepInfo,
    /// One entry per passed parameter with a gradient, in the order passed.
    pub programs: Vec<ParamProgram>,
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// One step for parameters whose values, gradients and state slots live outside this
    /// optimizer: takes each gradient's sums, takes the step's scalar decisions exactly as
    /// [`Optimizer::step_with`] does (skip on a non-finite gradient or loss, all-reduce, lr,
    /// averaging weight, decay, learner group state), advances the counters, and returns each
    /// stepped parameter's [`ElementProgram`] for the caller to run elementwise: reading the
    /// value `y`, the gradient and the slots (learner's then conversion's, as
    /// [`Optimizer::slot_names`] lists them), writing the new value and slots.
    ///
    /// A parameter stepped here keeps its state outside: host calls that would need its
    /// buffers ([`Optimizer::step`], `train`/`eval`, [`Optimizer::x_into`],
    /// [`Optimizer::z_into`]) refuse it with [`StepError::ExternalState`],
    /// [`Optimizer::slot`] returns `None`, and [`Optimizer::state`] records it with
    /// `external: true` and no buffers (the caller saves its slots; filling them in and
    /// clearing the flag makes a record the host path loads). The eval point comes from
    /// [`Optimizer::eval_program`]. Norm diagnostics are not measured for such parameters.
    ///
    /// # Errors
    /// Nothing is modified on error. As [`Optimizer::step_with`] (no length checks: the
    /// caller owns the buffers), plus [`StepError::HostState`] for a parameter whose state
    /// the host path created, and [`StepError::Program`] for compositions an element program
    /// does not cover: a learner with a pre-pass (Prodigy: use
    /// [`Optimizer::step_programs_with`]), the hypersphere projection of a `normalized`
    /// parameter (a row reduction), or formulas that cannot be recorded.
    pub fn step_programs(
        &mut self,
        params: &[ExternalParam<'_>],
        inputs: StepInputs<'_>,
    ) -> Result<ProgramStep, StepError> {
        self.step_programs_with(params, inputs, None)
    }

    /// [`Optimizer::step_programs`] with a pre-pass evaluator, for learners whose step needs
    /// sums over every element before any element is updated (Prodigy's `⟨g, z₀ − z⟩` and
    /// `‖s‖₁`, ScheduleFree+'s `⟨g, z − y⟩`). After the scalar phase, `prepass` gets one
    /// [`PrepassProgram`] per parameter with a gradient and returns the sums of their terms;
    /// the core adds them per group in name order (all-reduced across shards with the step's
    /// hook) exactly as it adds the host pre-pass's, and goes on with the step. Not called for
    /// learners without a pre-pass, nor when the step is skipped. For learners whose lr reads
    /// the sums ([`Learner::PREPASS_BEFORE_LR`]) it is called before anything is reduced, on
    /// every shard, even one whose own gradient is non-finite (the step is then skipped
    /// everywhere), and its sums travel in the first all-reduce with the gradient norms.
    ///
    /// The host pre-pass sums each tensor's terms in `f64` in a fixed blocked order; an
    /// evaluator that sums in another order (or in `f32`) gives sums that differ by rounding,
    /// and the learner's group state (Prodigy's `d`) with them.
    ///
    /// # Errors
    /// As [`Optimizer::step_programs`] (a pre-pass learner without an evaluator is
    /// [`ProgramError::Unsupported`]), plus [`StepError::PrepassFailed`] when the evaluator
    /// returns `None` and [`StepError::PrepassLength`] when it returns another number of sums.
    /// Nothing is modified on error. With an all-reduce hook, a failing evaluator returns
    /// before its sums are all-reduced (before any all-reduce, for
    /// [`Learner::PREPASS_BEFORE_LR`]): shards must agree to fail together (e.g. all-reduce a
    /// failure flag in the evaluator first), or the others wait in the hook.
    pub fn step_programs_with(
        &mut self,
        params: &[ExternalParam<'_>],
        mut inputs: StepInputs<'_>,
        mut prepass: Option<&mut PrepassEval<'_>>,
    ) -> Result<ProgramStep, StepError> {
        if let Some(g) = self.groups.iter().position(|g| !g.train_mode) {
            return Err(StepError::EvalMode { group: g });
        }
        if self.learner.needs_loss() && inputs.loss.is_none() {
            return Err(StepError::LossRequired {
                learner: self.learner.name(),
            });
        }
        let n_pre = L::PREPASS_LEN;
        if n_pre > 0 && prepass.is_none() {
            return Err(ProgramError::Unsupported {
                what: "a learner with a pre-pass over every element (Prodigy, ScheduleFree+) \
                       without a pre-pass evaluator (step_programs_with)",
            }
            .into());
        }
        self.resolve_external(params)?;
        self.entry_sums.fill(GradSums::default());
        let check = self.non_finite != NonFinitePolicy::Propagate;
        let mut bad = None;
        for (index, (p, &idx)) in params.iter().zip(&self.resolved).enumerate() {
            let Some(g) = p.grad else { continue };
            if check && !g.finite {
                bad = Some(index);
                break;
            }
            self.entry_sums[idx] = GradSums {
                l1: g.l1,
                l2_sq: g.l2_sq,
            };
        }
        if L::PREPASS_BEFORE_LR {
            // The lr reads the pre-pass sums: take them now, all-reduced with the norms. Every
            // shard calls the evaluator (it may hold collectives), even one about to skip.
            self.prepass_sums.fill([0.0; MAX_PREPASS]);
            if let Some(eval) = prepass.as_deref_mut() {
                self.external_prepass(params, eval)?;
            }
        }
        if let Some(why) = self.agree(bad, &mut inputs) {
            let info = self.skip(|i| params[i].name, why)?;
            return Ok(ProgramStep {
                info,
                programs: Vec::new(),
            });
        }
        self.scalar_phase(inputs.loss)?;
        if let Some(eval) = prepass.filter(|_| n_pre > 0 && !L::PREPASS_BEFORE_LR) {
            self.external_prepass(params, eval)?;
            self.reduce_prepass(&mut inputs);
        }
        let groups = self.groups.clone();
        self.commit_scalars()?;
        let programs = match self.programs(params) {
            Ok(p) => p,
            Err(e) => {
                self.groups = groups;
                return Err(e.into());
            }
        };
        for (p, &idx) in params.iter().zip(&self.resolved) {
            if p.grad.is_some() {
                let e = &mut self.entries[idx];
                (e.has_state, e.external) = (true, true);
                e.updates += 1;
            }
        }
        Ok(ProgramStep {
            info: self.finish(),
            programs,
        })
    }

    /// Whether element programs cover a parameter tagged `tags` under this composition, so
    /// that [`Optimizer::step_programs_with`] can step it (with a pre-pass evaluator for
    /// learners that have a pre-pass, [`Optimizer::needs_prepass`]): runtimes that choose
    /// between a host and a device path ask this before placing state. The check the step
    /// itself makes, from the composition alone (nothing is recorded).
    ///
    /// # Errors
    /// [`ProgramError::Unsupported`] for a `normalized` parameter under a decay policy with
    /// the hypersphere projection (a reduction over rows).
    pub fn programs_cover(&self, tags: ParamTags) -> Result<(), ProgramError> {
        if tags.normalized && self.decay.projection().is_some() {
            return Err(ProgramError::Unsupported {
                what: "the hypersphere projection of a `normalized` parameter",
            });
        }
        Ok(())
    }

    /// The program that gives the eval point `x` of an external parameter from its value `y`
    /// and slots (its value output; the slots are left as they are). Parameters without
    /// state yet have `x = y`. With an annealed Schedule-Free `β` the program holds the `β`
    /// of the latest step (group 0's): build it again after each step.
    ///
    /// # Errors
    /// [`ProgramError::Untraceable`] for formulas that cannot be recorded.
    pub fn eval_program(&self) -> Result<ElementProgram, ProgramError> {
        let conv = self.conversion.at_step(self.groups[0].k);
        eval_program::<T, C>(&conv, self.learner.slot_names().len())
    }

    /// The program of an in-place mode switch of one element, for callers that switch
    /// external parameters between `y` and `x` in place as [`Optimizer::eval`] /
    /// [`Optimizer::train`] do for host buffers: `to_train = false` turns a training-mode
    /// element (value `y`) into its eval-mode form (value `x`; conversions that swap buffer
    /// and slot, Polyak averaging and EMA, swap them), `true` turns it back. Run it on every
    /// parameter with state, together. With an annealed Schedule-Free `β` the program holds
    /// the `β` of the latest step (group 0's): build it at the switch, not once.
    ///
    /// # Errors
    /// [`ProgramError::Untraceable`] for formulas that cannot be recorded.
    pub fn mode_program(&self, to_train: bool) -> Result<ElementProgram, ProgramError> {
        let conv = self.conversion.at_step(self.groups[0].k);
        mode_program::<T, C>(&conv, self.learner.slot_names().len(), to_train)
    }

    /// Record a mode switch the caller has made: after running
    /// [`Optimizer::mode_program`]`(to_train)` on every external parameter with state, this
    /// sets the mode of every group, as [`Optimizer::train`] / [`Optimizer::eval`] do after
    /// switching host buffers. In eval mode [`Optimizer::step_programs`] refuses to step.
    /// Idempotent; for conversions without modes (the buffer always holds the returned point)
    /// nothing is recorded and the optimizer stays in train mode, so callers need not run the
    /// program then (check [`crate::DynOptimizer::has_modes`] and
    /// [`Optimizer::is_train_mode`] first).
    ///
    /// # Errors
    /// [`StepError::HostState`] when a parameter's state is in host buffers (switch those with
    /// [`Optimizer::train`] / [`Optimizer::eval`]); nothing changes.
    pub fn switch_external_mode(&mut self, to_train: bool) -> Result<(), StepError> {
        if let Some(e) = self.entries.iter().find(|e| e.has_state && !e.external) {
            return Err(StepError::HostState(e.name.clone()));
        }
        if self.conversion.has_modes() {
            for g in &mut self.groups {
                g.train_mode = to_train;
            }
        }
        Ok(())
    }

    /// Whether the learner's step needs a pre-pass over every element (Prodigy,
    /// ScheduleFree+): external
    /// runtimes then step with [`Optimizer::step_programs_with`] and an evaluator.
    pub fn needs_prepass(&self) -> bool {
        L::PREPASS_LEN > 0
    }

    /// The pre-pass of an external step: programs from this step's (uncommitted) scalars,
    /// the caller's sums, then the per-group sums as the host pre-pass leaves them (before
    /// the all-reduce).
    fn external_prepass(
        &mut self,
        params: &[ExternalParam<'_>],
        eval: &mut PrepassEval<'_>,
    ) -> Result<(), StepError> {
        let n_pre = L::PREPASS_LEN;
        let mut programs = Vec::new();
        let mut owners = Vec::new();
        for (index, (p, &idx)) in params.iter().zip(&self.resolved).enumerate() {
            if p.grad.is_none() {
                continue;
            }
            let e = &self.entries[idx];
            let ls = self.prepass_scalars(e.group, e.updates);
            let init = if e.has_state {
                None
            } else {
                Some(init_program::<T, _, _>(&self.learner, &self.conversion)?)
            };
            programs.push(PrepassProgram {
                index,
                init,
                terms: prepass_program::<T, _, _>(&self.learner, &self.conversion, &ls)?,
            });
            owners.push(idx);
        }
        let sums = eval(&programs).ok_or(StepError::PrepassFailed)?;
        if sums.len() != programs.len() * n_pre {
            return Err(StepError::PrepassLength {
                expected: programs.len() * n_pre,
                got: sums.len(),
            });
        }
        self.entry_prepass.fill([0.0; MAX_PREPASS]);
        for (&idx, s) in owners.iter().zip(sums.chunks_exact(n_pre.max(1))) {
            self.entry_prepass[idx][..n_pre].copy_from_slice(s);
        }
        self.sum_prepass();
        Ok(())
    }

    /// Resolve the names of an external step (as `resolve` does for host calls).
    fn resolve_external(&mut self, params: &[ExternalParam<'_>]) -> Result<(), StepError> {
        self.stamp += 1;
        self.resolved.clear();
        for p in params {
            let idx = self
                .entry_index(p.name)
                .ok_or_else(|| StepError::UnknownParameter(p.name.to_string()))?;
            let e = &mut self.entries[idx];
            if e.stamp == self.stamp {
                return Err(StepError::DuplicateParameter(p.name.to_string()));
            }
            e.stamp = self.stamp;
            if e.has_state && !e.external {
                return Err(StepError::HostState(p.name.to_string()));
            }
            let tags = e.tags;
            if p.grad.is_some() {
                self.programs_cover(tags)?;
            }
            self.resolved.push(idx);
        }
        Ok(())
    }

    /// This step's programs, from the committed scalars (as `update` builds its kernels).
    fn programs(&self, params: &[ExternalParam<'_>]) -> Result<Vec<ParamProgram>, ProgramError> {
        let n_learner = self.learner.slot_names().len();
        let mut out = Vec::with_capacity(params.len());
        for (index, (p, &idx)) in params.iter().zip(&self.resolved).enumerate() {
            if p.grad.is_none() {
                continue;
            }
            let e = &self.entries[idx];
            let gs = &self.scratch[e.group];
            let kernel = Kernel {
                learner: &self.learner,
                conversion: &self.conversion,
                ls: gs.learner_scalars(&self.learner, self.groups[e.group].k, e.updates),
                cs: gs.conversion,
                decay: DecayTerms::of(gs.decay_for(e.tags)),
                lr: T::of(gs.lr),
                n_learner,
            };
            let init = if e.has_state {
                None
            } else {
                Some(init_program::<T, _, _>(&self.learner, &self.conversion)?)
            };
            out.push(ParamProgram {
                index,
                init,
                update: update_program(&kernel)?,
            });
        }
        Ok(out)
    }
}
