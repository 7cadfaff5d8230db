//! The driver: validation, the scalar phase once per group, then one fused loop per
//! parameter tensor (DESIGN.md §3).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::conversion::{AveragingState, Conversion};
use crate::decay::{Decay, DecayContext, DecayScalars, DecayTerms};
use crate::element::Element;
use crate::error::{ConfigError, ParamError, StepError};
use crate::learner::{Learner, StepIndex};
use crate::param::{Entry, Group, GroupConfig, GroupStepInfo, Param};
use crate::schedule::Schedule;

/// What to do when a gradient contains NaN or ±inf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Skip the whole step atomically: no buffer, counter, `lr_max` or weight-sum change;
    /// reported in [`StepInfo::skipped`].
    #[default]
    Skip,
    /// Refuse the step with [`StepError::NonFiniteGradient`]; nothing changes.
    Error,
}

/// Why a step was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Skipped {
    /// `params[index]` had a non-finite gradient (policy [`NonFinitePolicy::Skip`]).
    NonFiniteGradient {
        /// Index into the slice passed to `step`.
        index: usize,
    },
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepInfo {
    /// `Some` if the step was skipped (then nothing changed and `group` repeats the previous
    /// step's values).
    pub skipped: Option<Skipped>,
    /// Group 0's values; all groups: [`Optimizer::group_info`].
    pub group: GroupStepInfo,
    /// `‖g‖₁` over every gradient passed to the step (all groups), accumulated in `f64`; NaN
    /// for a skipped step. Log it to refine a schedule later (ALGORITHMS.md §8; ℓ1 for
    /// Adam-type learners).
    pub grad_l1: f64,
    /// `‖g‖₂` over every gradient passed to the step (all groups); NaN for a skipped step
    /// (ℓ2 for SGD-type learners).
    pub grad_l2: f64,
}

/// Tensors at least this long are split across threads with rayon.
const PARALLEL_MIN_LEN: usize = 1 << 17;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// A composed optimizer: base learner `L`, online-to-batch conversion `C`, weight-decay
/// policy `D` and lr schedule `S`, over `T` = `f32` or `f64` buffers (DESIGN.md §1).
///
/// One step is: validation (and the non-finite check), the scalar phase once per group in
/// `f64` (scheduled lr `γ_k = lr · schedule(k) · learner.lr_factor(k)`, `lr_max`, the
/// averaging weight `c`, decay coefficients), then one monomorphised loop over each
/// parameter's (value, gradient, interleaved state), chunked across threads for large
/// tensors. After the first step of each parameter, `step` allocates nothing.
///
/// Parameters are owned by the caller and passed by name each call, in any order; state is
/// keyed by name. Use the presets ([`crate::presets`]) for the reference methods.
#[derive(Debug)]
pub struct Optimizer<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> {
    learner: L,
    conversion: C,
    decay: D,
    schedule: S,
    non_finite: NonFinitePolicy,
    groups: Vec<Group>,
    entries: Vec<Entry<T>>,
    index: HashMap<String, usize>,
    stamp: u64,
    resolved: Vec<usize>,
    scratch: Vec<GroupScalars<C::Scalars>>,
    /// Per-chunk gradient sums of the largest tensor (filled in parallel, added in order).
    chunk_sums: Vec<(GradSums, bool)>,
    /// Per-group gradient sums of the current step.
    group_sums: Vec<GradSums>,
    /// Per-entry gradient sums of the current step (zero without a gradient).
    entry_sums: Vec<GradSums>,
    /// Entry indices sorted by name: group sums are added in this order, so the reported norms
    /// do not depend on the order parameters are registered or passed.
    by_name: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct GroupScalars<CS> {
    lr: f64,
    conversion: CS,
    decay: DecayScalars,
    c: f64,
    averaging: AveragingState,
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Compose an optimizer with one parameter group (index 0) configured by `group`.
    ///
    /// # Errors
    /// [`ConfigError`] if any component's hyperparameters, or `group`, are invalid.
    pub fn new(
        learner: L,
        conversion: C,
        decay: D,
        schedule: S,
        group: GroupConfig,
    ) -> Result<Self, ConfigError> {
        learner.validate()?;
        conversion.validate()?;
        group.validate()?;
        Ok(Optimizer {
            learner,
            conversion,
            decay,
            schedule,
            non_finite: NonFinitePolicy::default(),
            groups: vec![Group::new(group)],
            entries: Vec::new(),
            index: HashMap::new(),
            stamp: 0,
            resolved: Vec::new(),
            scratch: Vec::new(),
            chunk_sums: Vec::new(),
            group_sums: vec![GradSums::default()],
            entry_sums: Vec::new(),
            by_name: Vec::new(),
        })
    }

    /// Set the non-finite gradient policy (default [`NonFinitePolicy::Skip`]).
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.non_finite = policy;
        self
    }

    /// Add a parameter group; returns its index.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a negative or non-finite lr or weight decay.
    pub fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError> {
        config.validate()?;
        let mut g = Group::new(config);
        // New groups join in the optimizer's current mode.
        g.train_mode = self.groups[0].train_mode;
        self.groups.push(g);
        self.group_sums.push(GradSums::default());
        Ok(self.groups.len() - 1)
    }

    /// Register parameter `name` with `shape` (row-major; elements = product) in group 0.
    ///
    /// # Errors
    /// [`ParamError::Duplicate`] if the name is taken.
    pub fn add_param(&mut self, name: &str, shape: &[usize]) -> Result<(), ParamError> {
        self.add_param_to(0, name, shape)
    }

    /// Register parameter `name` with `shape` in group `group`.
    ///
    /// # Errors
    /// [`ParamError::Duplicate`] if the name is taken, [`ParamError::NoSuchGroup`],
    /// [`ParamError::ShapeOverflow`].
    pub fn add_param_to(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
    ) -> Result<(), ParamError> {
        if group >= self.groups.len() {
            return Err(ParamError::NoSuchGroup {
                group,
                groups: self.groups.len(),
            });
        }
        if self.index.contains_key(name) {
            return Err(ParamError::Duplicate(name.to_string()));
        }
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| ParamError::ShapeOverflow {
                name: name.to_string(),
                shape: shape.to_vec(),
            })?;
        let at = self
            .by_name
            .partition_point(|&i| self.entries[i].name.as_str() < name);
        self.by_name.insert(at, self.entries.len());
        self.entry_sums.push(GradSums::default());
        self.index.insert(name.to_string(), self.entries.len());
        self.entries.push(Entry {
            name: name.to_string(),
            group,
            shape: shape.to_vec(),
            len,
            updates: 0,
            state: Vec::new(),
            has_state: false,
            stamp: 0,
        });
        self.resolved.reserve(1);
        // Sized here so that `step` never allocates.
        let chunks = len.div_ceil(CHUNK);
        if chunks > self.chunk_sums.len() {
            self.chunk_sums.resize(chunks, (GradSums::default(), true));
        }
        Ok(())
    }

    /// The learner.
    pub fn learner(&self) -> &L {
        &self.learner
    }
    /// The conversion.
    pub fn conversion(&self) -> &C {
        &self.conversion
    }
    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }
    /// Number of parameter groups.
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }
    /// Configuration of group `g`, if it exists.
    pub fn group_config(&self, g: usize) -> Option<GroupConfig> {
        self.groups.get(g).map(|x| x.config)
    }
    /// Change group `g`'s lr / weight decay (e.g. for an external schedule).
    ///
    /// # Errors
    /// [`ConfigError`] for invalid values or a missing group.
    pub fn set_group_config(&mut self, g: usize, config: GroupConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let n = self.groups.len();
        let grp = self.groups.get_mut(g).ok_or(ConfigError::OutOfRange {
            field: "group",
            value: g as f64,
            expected: if n == 1 {
                "group 0"
            } else {
                "an existing group index"
            },
        })?;
        grp.config = config;
        Ok(())
    }
    /// Group `g`'s values from the latest step (k, lr, c, lr_max, weight sum).
    pub fn group_info(&self, g: usize) -> Option<GroupStepInfo> {
        self.groups.get(g).map(|x| x.last)
    }
    /// Completed updates of group 0.
    pub fn step_count(&self) -> u64 {
        self.groups[0].k
    }
    /// Whether the groups are in train mode (buffers hold the gradient point).
    pub fn is_train_mode(&self) -> bool {
        self.groups[0].train_mode
    }
    /// A state buffer (`"z"`, `"exp_avg_sq"`, ...) of a parameter, copied out of the
    /// interleaved layout; `None` for unknown names or before the first gradient.
    pub fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>> {
        let e = &self.entries[*self.index.get(param)?];
        let j = self.slot_names().position(|s| s == slot)?;
        if !e.has_state {
            return None;
        }
        let s = self.num_slots();
        Some((0..e.len).map(|i| e.state[i * s + j]).collect())
    }

    pub(crate) fn slot_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.learner
            .slot_names()
            .iter()
            .chain(self.conversion.slot_names())
            .copied()
    }
    pub(crate) fn num_slots(&self) -> usize {
        self.learner.slot_names().len() + self.conversion.slot_names().len()
    }
    pub(crate) fn method_name(&self) -> String {
        format!(
            "{}+{}+{}",
            self.learner.name(),
            self.conversion.name(),
            self.decay.name()
        )
    }
    pub(crate) fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }
    pub(crate) fn entries_mut(&mut self) -> &mut [Entry<T>] {
        &mut self.entries
    }
    pub(crate) fn groups_ref(&self) -> &[Group] {
        &self.groups
    }
    pub(crate) fn groups_mut(&mut self) -> &mut [Group] {
        &mut self.groups
    }
    pub(crate) fn entry_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Resolve names and check lengths; fills `self.resolved`. Mutates only stamps.
    fn resolve(&mut self, params: &[Param<'_, T>], check_grad: bool) -> Result<(), StepError> {
        self.stamp += 1;
        self.resolved.clear();
        for p in params {
            let idx = *self
                .index
                .get(p.name)
                .ok_or_else(|| StepError::UnknownParameter(p.name.to_string()))?;
            let e = &mut self.entries[idx];
            if e.stamp == self.stamp {
                return Err(StepError::DuplicateParameter(p.name.to_string()));
            }
            e.stamp = self.stamp;
            if p.value.len() != e.len {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what: "value",
                    got: p.value.len(),
                    expected: e.len,
                });
            }
            if let (true, Some(g)) = (check_grad, p.grad)
                && g.len() != e.len
            {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what: "grad",
                    got: g.len(),
                    expected: e.len,
                });
            }
            self.resolved.push(idx);
        }
        Ok(())
    }

    /// One optimizer step on `params` (each with its gradient, or `None`).
    ///
    /// Parameters not passed, or passed without a gradient, are not moved; every group's
    /// counter still advances (as in the reference). The first gradient of a parameter
    /// creates its state (`z = y`, moments 0).
    ///
    /// # Errors
    /// Nothing is modified on error. [`StepError::EvalMode`] if the optimizer is in eval
    /// mode; [`StepError::UnknownParameter`], [`StepError::DuplicateParameter`],
    /// [`StepError::LengthMismatch`]; [`StepError::NonFiniteGradient`] under
    /// [`NonFinitePolicy::Error`]; [`StepError::NonFiniteScalar`] if the scalar phase
    /// overflows (e.g. an lr so large that `lr_max^weight_lr_power` is infinite).
    pub fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError> {
        if let Some(g) = self.groups.iter().position(|g| !g.train_mode) {
            return Err(StepError::EvalMode { group: g });
        }
        self.resolve(params, true)?;
        // Reduction phase: ‖g‖₁ and ‖g‖₂² per group, which also detects non-finite values.
        self.entry_sums.fill(GradSums::default());
        let mut bad = None;
        for (index, (p, &idx)) in params.iter().zip(&self.resolved).enumerate() {
            let Some(g) = p.grad else { continue };
            let (sums, finite) = grad_sums(g, &mut self.chunk_sums);
            if !finite {
                bad = Some(index);
                break;
            }
            self.entry_sums[idx] = sums;
        }
        self.group_sums.fill(GradSums::default());
        for &idx in &self.by_name {
            let (s, acc) = (
                self.entry_sums[idx],
                &mut self.group_sums[self.entries[idx].group],
            );
            acc.l1 += s.l1;
            acc.l2_sq += s.l2_sq;
        }
        if let Some(index) = bad {
            return match self.non_finite {
                NonFinitePolicy::Skip => Ok(StepInfo {
                    skipped: Some(Skipped::NonFiniteGradient { index }),
                    group: self.groups[0].last,
                    grad_l1: f64::NAN,
                    grad_l2: f64::NAN,
                }),
                NonFinitePolicy::Error => {
                    Err(StepError::NonFiniteGradient(params[index].name.to_string()))
                }
            };
        }

        // Scalar phase, once per group, into scratch: committed only if every value is finite.
        self.scratch.clear();
        for (gi, g) in self.groups.iter().enumerate() {
            let k = g.k;
            let lr = g.config.lr * self.schedule.value(k) * self.learner.lr_factor(k);
            let mut averaging = g.averaging;
            let (cs, c) = self.conversion.scalars(&mut averaging, lr, k);
            let decay = self.decay.scalars(DecayContext {
                weight_decay: g.config.weight_decay,
                lr,
                lr_max: averaging.lr_max,
            });
            let checks = [
                ("lr", lr),
                ("c", c),
                ("weight_sum", averaging.weight_sum),
                ("shrink", decay.shrink),
            ];
            if let Some((what, value)) = checks.into_iter().find(|(_, v)| !v.is_finite()) {
                return Err(StepError::NonFiniteScalar {
                    group: gi,
                    what,
                    value,
                });
            }
            self.scratch.push(GroupScalars {
                lr,
                conversion: cs,
                decay,
                c,
                averaging,
            });
        }
        for (g, s) in self.groups.iter_mut().zip(&self.scratch) {
            g.averaging = s.averaging;
            g.last = GroupStepInfo {
                k: g.k + 1,
                lr: s.lr,
                c: s.c,
                lr_max: s.averaging.lr_max,
                weight_sum: s.averaging.weight_sum,
                grad_l1: 0.0,
                grad_l2: 0.0,
            };
        }
        for (g, sums) in self.groups.iter_mut().zip(&self.group_sums) {
            g.last.grad_l1 = sums.l1;
            g.last.grad_l2 = sums.l2_sq.sqrt();
        }

        // Element phase, one fused loop per tensor.
        let n_learner = self.learner.slot_names().len();
        let n_slots = self.num_slots();
        for (p, &idx) in params.iter_mut().zip(&self.resolved) {
            let Some(grad) = p.grad else { continue };
            let e = &mut self.entries[idx];
            let gs = &self.scratch[e.group];
            if !e.has_state {
                e.state = vec![T::zero(); e.len * n_slots];
                if n_slots > 0 {
                    for (v, st) in p.value.iter().zip(e.state.chunks_exact_mut(n_slots)) {
                        self.conversion.init_slots(*v, &mut st[n_learner..]);
                    }
                }
                e.has_state = true;
            }
            let ls = self.learner.scalars(StepIndex {
                group: self.groups[e.group].k,
                param: e.updates,
            });
            let kernel = Kernel {
                learner: &self.learner,
                conversion: &self.conversion,
                ls,
                cs: gs.conversion,
                decay: DecayTerms::of(gs.decay),
                lr: T::of(gs.lr),
                n_learner,
                n_slots,
            };
            kernel.run(p.value, grad, &mut e.state);
            e.updates += 1;
        }
        for g in &mut self.groups {
            g.k += 1;
        }
        let total = self
            .group_sums
            .iter()
            .fold(GradSums::default(), |a, s| GradSums {
                l1: a.l1 + s.l1,
                l2_sq: a.l2_sq + s.l2_sq,
            });
        Ok(StepInfo {
            skipped: None,
            group: self.groups[0].last,
            grad_l1: total.l1,
            grad_l2: total.l2_sq.sqrt(),
        })
    }

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
            return Err(StepError::MissingParameter(e.name.clone()));
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
                for (v, st) in p.value.iter_mut().zip(e.state.chunks_exact_mut(n_slots)) {
                    let cs = &mut st[n_learner..];
                    if to_train {
                        self.conversion.to_train(v, cs)
                    } else {
                        self.conversion.to_eval(v, cs)
                    }
                }
            }
        }
        for g in &mut self.groups {
            g.train_mode = to_train;
        }
        Ok(())
    }

    /// Write the returned point `x` for parameter `name` into `out`, given its buffer
    /// `value` (`y` in train mode), without changing anything. Parameters without state
    /// (never stepped) return `value` unchanged. Formula: [`Conversion::eval_value`].
    ///
    /// # Errors
    /// [`StepError::UnknownParameter`], [`StepError::LengthMismatch`].
    pub fn eval_params_into(
        &self,
        name: &str,
        value: &[T],
        out: &mut [T],
    ) -> Result<(), StepError> {
        let e = &self.entries[self
            .entry_index(name)
            .ok_or_else(|| StepError::UnknownParameter(name.to_string()))?];
        for (what, got) in [("value", value.len()), ("out", out.len())] {
            if got != e.len {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what,
                    got,
                    expected: e.len,
                });
            }
        }
        if !e.has_state || !self.groups[e.group].train_mode || !self.conversion.has_modes() {
            out.copy_from_slice(value);
            return Ok(());
        }
        let (n_learner, n_slots) = (self.learner.slot_names().len(), self.num_slots());
        for ((o, v), st) in out.iter_mut().zip(value).zip(e.state.chunks_exact(n_slots)) {
            *o = self.conversion.eval_value(*v, &st[n_learner..]);
        }
        Ok(())
    }
}

/// Gradient sums of one reduction: `Σ|g|` and `Σg²`, accumulated in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GradSums {
    l1: f64,
    l2_sq: f64,
}

/// `Σ|g|` and `Σg²` of `g` in `f64`, and whether every value is finite, in one pass. The sums
/// are taken per [`CHUNK`] (eight independent lanes, so the compiler vectorises them) and
/// the chunk sums are added in order, so the parallel and serial paths give the same bits.
/// `chunks` must hold `len.div_ceil(CHUNK)` entries.
#[allow(clippy::eq_op)] // `v − v` is the finiteness test, not a mistake
fn grad_sums<T: Element>(g: &[T], chunks: &mut [(GradSums, bool)]) -> (GradSums, bool) {
    fn chunk<T: Element>(c: &[T]) -> (GradSums, bool) {
        // `v − v` is 0 for finite `v` and NaN for ±inf/NaN: a branch-free finiteness check
        // that stays exact even where the f64 sums overflow (huge finite f64 gradients).
        let (mut l1, mut l2, mut nf) = ([0.0_f64; 8], [0.0_f64; 8], [T::zero(); 8]);
        let lanes = c.chunks_exact(8);
        let mut tail = (GradSums::default(), T::zero());
        for &v in lanes.remainder() {
            let w = v.f64();
            tail = (
                GradSums {
                    l1: tail.0.l1 + w.abs(),
                    l2_sq: tail.0.l2_sq + w * w,
                },
                tail.1 + (v - v),
            );
        }
        for l in lanes {
            for (((a, b), n), &v) in l1.iter_mut().zip(l2.iter_mut()).zip(nf.iter_mut()).zip(l) {
                let w = v.f64();
                *a += w.abs();
                *b += w * w;
                *n = *n + (v - v);
            }
        }
        let sums = GradSums {
            l1: l1.iter().fold(tail.0.l1, |s, &a| s + a),
            l2_sq: l2.iter().fold(tail.0.l2_sq, |s, &a| s + a),
        };
        (sums, nf.iter().fold(tail.1, |s, &a| s + a) == T::zero())
    }
    let add = |a: (GradSums, bool), s: &(GradSums, bool)| {
        (
            GradSums {
                l1: a.0.l1 + s.0.l1,
                l2_sq: a.0.l2_sq + s.0.l2_sq,
            },
            a.1 && s.1,
        )
    };
    let start = (GradSums::default(), true);
    if g.len() >= PARALLEL_MIN_LEN {
        let sums = &mut chunks[..g.len().div_ceil(CHUNK)];
        g.par_chunks(CHUNK)
            .zip(sums.par_iter_mut())
            .for_each(|(c, s)| *s = chunk(c));
        sums.iter().fold(start, add)
    } else {
        g.chunks(CHUNK).map(chunk).fold(start, |a, s| add(a, &s))
    }
}

/// Everything the fused loop needs for one tensor.
struct Kernel<'a, T, L: Learner, C: Conversion> {
    learner: &'a L,
    conversion: &'a C,
    ls: L::Scalars,
    cs: C::Scalars,
    decay: DecayTerms<T>,
    lr: T,
    n_learner: usize,
    n_slots: usize,
}

impl<T: Element, L: Learner, C: Conversion> Kernel<'_, T, L, C> {
    #[inline(always)]
    fn element(&self, p: &mut T, g: T, slots: &mut [T]) {
        let (ls, cs) = slots.split_at_mut(self.n_learner);
        let y = *p;
        let g = g + self.decay.l2 * y;
        let d = self.learner.direction(&self.ls, g, ls);
        let d = d + self.decay.at_y * y;
        self.conversion
            .update(&self.cs, self.lr, self.decay.shrink, p, cs, d);
    }

    /// The loop for exactly `N` slots per element: a compile-time chunk width lets the
    /// compiler drop bounds checks and keep the state of one element in registers.
    #[inline(always)]
    fn serial_n<const N: usize>(&self, p: &mut [T], g: &[T], st: &mut [T]) {
        if N == 0 {
            for (p, g) in p.iter_mut().zip(g) {
                self.element(p, *g, &mut []);
            }
        } else {
            for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(N)) {
                self.element(p, *g, s);
            }
        }
    }

    fn serial(&self, p: &mut [T], g: &[T], st: &mut [T]) {
        match self.n_slots {
            0 => self.serial_n::<0>(p, g, st),
            1 => self.serial_n::<1>(p, g, st),
            2 => self.serial_n::<2>(p, g, st),
            3 => self.serial_n::<3>(p, g, st),
            4 => self.serial_n::<4>(p, g, st),
            5 => self.serial_n::<5>(p, g, st),
            n => {
                for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(n)) {
                    self.element(p, *g, s);
                }
            }
        }
    }

    fn run(&self, p: &mut [T], g: &[T], st: &mut [T])
    where
        Self: Sync,
    {
        if p.len() < PARALLEL_MIN_LEN {
            return self.serial(p, g, st);
        }
        if self.n_slots == 0 {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .for_each(|(p, g)| self.serial(p, g, &mut []));
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(st.par_chunks_mut(CHUNK * self.n_slots))
                .for_each(|((p, g), s)| self.serial(p, g, s));
        }
    }
}
