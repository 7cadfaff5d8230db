//! The driver: validation, the scalar phase once per group, then one fused loop per
//! parameter tensor (DESIGN.md §3).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::conversion::{AveragingState, Conversion};
use crate::decay::{Decay, DecayContext, DecayScalars, DecayTerms, init_radius, project_rows};
use crate::diagnostics::EntryDiag;
use crate::element::Element;
use crate::error::{ConfigError, ParamError, StepError};
use crate::learner::{GroupState, Learner, MAX_PREPASS, Reductions, StepIndex};
use crate::param::{Entry, Group, GroupConfig, GroupStepInfo, Param, ParamTags};
use crate::schedule::Schedule;

/// What to do when a gradient contains NaN or ±inf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Skip the whole step atomically: no buffer, step counter, `lr_max` or weight-sum
    /// change; reported in [`StepInfo::skipped`] and counted in every group's
    /// [`GroupStepInfo::skipped_steps`].
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
    /// Another shard reported a non-finite gradient through the all-reduce hook.
    NonFiniteGradientElsewhere,
    /// The loss passed to the step was NaN or ±inf.
    NonFiniteLoss,
}

/// An all-reduce over shards: sums a vector of partial sums element-wise in place.
pub type AllReduce<'a> = dyn FnMut(&mut [f64]) + Send + 'a;

/// Optional inputs of [`Optimizer::step_with`].
#[derive(Default)]
pub struct StepInputs<'a> {
    /// The loss at the gradient point (required by learners that use it: Polyak). With
    /// sharded data, pass the loss averaged over shards.
    pub loss: Option<f64>,
    /// Sums a vector of partial sums element-wise across shards in place (an all-reduce):
    /// called once with `[non-finite count, then ‖g‖₁, ‖g‖₂² per group]` before anything is
    /// decided, and once more with the learner's pre-pass sums (per group) for learners that
    /// have one (Prodigy). Every shard must call `step_with` with the same parameter groups,
    /// so that the collective calls match.
    pub all_reduce: Option<&'a mut AllReduce<'a>>,
}

impl std::fmt::Debug for StepInputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepInputs")
            .field("loss", &self.loss)
            .field("all_reduce", &self.all_reduce.is_some())
            .finish()
    }
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
    /// Buffer of the all-reduce hook (sized with the groups).
    reduce_buf: Vec<f64>,
    /// Per-group pre-pass sums of the current step.
    prepass_sums: Vec<[f64; MAX_PREPASS]>,
    /// Per-entry pre-pass sums of the current step, added into `prepass_sums` in name order
    /// (like `entry_sums`), so the result does not depend on the order parameters are passed.
    entry_prepass: Vec<[f64; MAX_PREPASS]>,
    /// Whether per-parameter norms are measured ([`Optimizer::set_diagnostics`]).
    diagnostics: bool,
    /// Per-entry norms of the latest step (when `diagnostics`).
    pub(crate) diag: Vec<EntryDiag>,
}

#[derive(Debug, Clone, Copy)]
struct GroupScalars<CS> {
    lr: f64,
    lr_factor: f64,
    conversion: CS,
    /// Decay of ordinary and of `normalized` parameters (`no_decay` ones get none).
    decay: [DecayScalars; 2],
    c: f64,
    averaging: AveragingState,
    learner_state: GroupState,
    reductions: Reductions,
}

impl<CS> GroupScalars<CS> {
    pub(crate) fn decay_for(&self, tags: ParamTags) -> DecayScalars {
        if tags.no_decay {
            DecayScalars::NONE
        } else {
            self.decay[tags.normalized as usize]
        }
    }
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
        decay.validate()?;
        group.validate()?;
        let mut ls = GroupState::default();
        learner.init_group_state(&mut ls);
        Ok(Optimizer {
            learner,
            conversion,
            decay,
            schedule,
            non_finite: NonFinitePolicy::default(),
            groups: vec![Group::new(group, ls)],
            entries: Vec::new(),
            index: HashMap::new(),
            stamp: 0,
            resolved: Vec::new(),
            scratch: Vec::new(),
            chunk_sums: Vec::new(),
            group_sums: vec![GradSums::default()],
            entry_sums: Vec::new(),
            by_name: Vec::new(),
            reduce_buf: vec![0.0; 3],
            prepass_sums: vec![[0.0; MAX_PREPASS]],
            entry_prepass: Vec::new(),
            diagnostics: false,
            diag: Vec::new(),
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
        let mut ls = GroupState::default();
        self.learner.init_group_state(&mut ls);
        let mut g = Group::new(config, ls);
        // New groups join in the optimizer's current mode.
        g.train_mode = self.groups[0].train_mode;
        self.groups.push(g);
        self.group_sums.push(GradSums::default());
        self.reduce_buf.resize(1 + 2 * self.groups.len(), 0.0);
        self.prepass_sums.push([0.0; MAX_PREPASS]);
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
        self.add_param_tagged(group, name, shape, ParamTags::default())
    }

    /// Register parameter `name` with `shape` in group `group`, with decay-policy tags
    /// (`normalized`: feeds a normalization layer; `no_decay`).
    ///
    /// # Errors
    /// As [`Optimizer::add_param_to`], and [`ParamError::ProjectionAxis`] if the decay policy
    /// projects normalized parameters along an axis `shape` lacks.
    pub fn add_param_tagged(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError> {
        self.check_projection(name, shape, tags)?;
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
        self.entry_prepass.push([0.0; MAX_PREPASS]);
        self.index.insert(name.to_string(), self.entries.len());
        self.entries.push(Entry {
            name: name.to_string(),
            group,
            shape: shape.to_vec(),
            len,
            updates: 0,
            state: Vec::new(),
            has_state: false,
            tags,
            radius: Vec::new(),
            row_scratch: Vec::new(),
            stamp: 0,
        });
        self.diag.push(EntryDiag::default());
        self.resolved.reserve(1);
        // Sized here so that `step` never allocates.
        let chunks = len.div_ceil(CHUNK);
        if chunks > self.chunk_sums.len() {
            self.chunk_sums.resize(chunks, (GradSums::default(), true));
        }
        Ok(())
    }

    fn check_projection(
        &self,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError> {
        match self.decay.projection() {
            Some(p) if tags.normalized && p.layout(shape).is_none() => {
                Err(ParamError::ProjectionAxis {
                    name: name.to_string(),
                    shape: shape.to_vec(),
                    axis: p.axis,
                })
            }
            _ => Ok(()),
        }
    }

    /// Change the tags of a registered parameter (takes effect at the next step; a parameter
    /// newly tagged `normalized` under a projection gets its radii from its iterate then).
    ///
    /// # Errors
    /// [`ParamError::Unknown`] for an unregistered name, [`ParamError::ProjectionAxis`].
    pub fn set_param_tags(&mut self, name: &str, tags: ParamTags) -> Result<(), ParamError> {
        let idx = self
            .entry_index(name)
            .ok_or_else(|| ParamError::Unknown(name.to_string()))?;
        self.check_projection(name, &self.entries[idx].shape.clone(), tags)?;
        let e = &mut self.entries[idx];
        if !tags.normalized {
            e.radius.clear();
        }
        e.tags = tags;
        Ok(())
    }

    /// The tags of a registered parameter.
    pub fn param_tags(&self, name: &str) -> Option<ParamTags> {
        self.entry_index(name).map(|i| self.entries[i].tags)
    }

    /// Measure per-parameter norms in every step (off by default): `‖g‖`, the norm of the
    /// buffer at the gradient point and of the learner's direction, read back with
    /// [`Optimizer::diagnostics`]. Costs one extra read of each parameter and a few flops
    /// per element.
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
    }

    /// Whether diagnostics are measured.
    pub fn diagnostics_enabled(&self) -> bool {
        self.diagnostics
    }

    /// The learner.
    pub fn learner(&self) -> &L {
        &self.learner
    }
    /// The conversion.
    pub fn conversion(&self) -> &C {
        &self.conversion
    }
    /// The weight-decay policy.
    pub fn decay(&self) -> &D {
        &self.decay
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
    /// Group `g`'s values from the latest step taken (k, lr, c, lr_max, weight sum, skipped
    /// steps so far): before the first step, zeros. For what the next step will use, see
    /// [`Optimizer::next_step`].
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
    /// interleaved layout into a new `Vec`; `None` for unknown names or before the first
    /// gradient. Without allocating: [`Optimizer::slot`], [`Optimizer::z_into`],
    /// [`Optimizer::x_into`].
    pub fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>> {
        let e = &self.entries[*self.index.get(param)?];
        let j = self.slot_names().position(|s| s == slot)?;
        if !e.has_state {
            return None;
        }
        let s = self.num_slots();
        Some((0..e.len).map(|i| e.state[i * s + j]).collect())
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
    /// Three consequences worth knowing:
    /// - **One call is one update.** `step(&mut [])` (or a call where no parameter has a
    ///   gradient) still advances every group's step counter, the schedule and the averaging
    ///   weights. With gradient accumulation, sum (or average) the micro-batch gradients in
    ///   your own buffer and call `step` once per optimizer update, as in the crate-level
    ///   example.
    /// - **A zero lr is still a step.** With `lr = 0` (or a schedule at 0, e.g. the first
    ///   warmup step) the parameters do not move, but Adam's second moment `exp_avg_sq` and
    ///   the counter are updated with the gradient.
    /// - **Late first gradients.** A parameter whose first gradient arrives after its group
    ///   has stepped (unfrozen mid-training) starts from zero moments. Learners whose bias
    ///   correction counts the group's updates (the Schedule-Free presets, like their
    ///   reference classes: `StepCount::Group`) then take its first step with an almost
    ///   vanished correction `1 − β2^(k+1)`, i.e. a step of about `lr/sqrt(1 − β2)` per
    ///   element (≈ 32 × lr for `β2 = 0.999`). Put such parameters in their own group or use
    ///   `Adam { count: StepCount::Parameter, .. }` (torch-style, per-parameter count).
    ///
    /// # Errors
    /// Nothing is modified on error. [`StepError::EvalMode`] if the optimizer is in eval
    /// mode; [`StepError::UnknownParameter`], [`StepError::DuplicateParameter`],
    /// [`StepError::LengthMismatch`]; [`StepError::NonFiniteGradient`] under
    /// [`NonFinitePolicy::Error`]; [`StepError::NonFiniteScalar`] if the scalar phase
    /// overflows (e.g. an lr so large that `lr_max^weight_lr_power` is infinite);
    /// [`StepError::LossRequired`] for learners that need the loss ([`Optimizer::step_with_loss`]).
    pub fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<StepInfo, StepError> {
        self.step_with(params, StepInputs::default())
    }

    /// [`Optimizer::step`] with the loss at the gradient point (Polyak step sizes use it;
    /// other learners ignore it).
    ///
    /// # Errors
    /// As [`Optimizer::step`].
    pub fn step_with_loss(
        &mut self,
        params: &mut [Param<'_, T>],
        loss: f64,
    ) -> Result<StepInfo, StepError> {
        self.step_with(
            params,
            StepInputs {
                loss: Some(loss),
                all_reduce: None,
            },
        )
    }

    /// [`Optimizer::step`] with optional inputs: the loss, and an all-reduce hook that sums
    /// the step's global reductions (gradient norms, non-finite count, learner pre-pass sums)
    /// across shards, so that every shard takes the same scalar decisions.
    ///
    /// # Errors
    /// As [`Optimizer::step`], and [`StepError::AllReduceLength`] if the hook resizes its
    /// vector.
    pub fn step_with(
        &mut self,
        params: &mut [Param<'_, T>],
        mut inputs: StepInputs<'_>,
    ) -> Result<StepInfo, StepError> {
        if let Some(g) = self.groups.iter().position(|g| !g.train_mode) {
            return Err(StepError::EvalMode { group: g });
        }
        if self.learner.needs_loss() && inputs.loss.is_none() {
            return Err(StepError::LossRequired {
                learner: self.learner.name(),
            });
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
        let mut elsewhere = false;
        if let Some(reduce) = inputs.all_reduce.as_mut() {
            let buf = &mut self.reduce_buf;
            buf[0] = bad.is_some() as u8 as f64;
            for (i, s) in self.group_sums.iter().enumerate() {
                buf[1 + 2 * i] = s.l1;
                buf[2 + 2 * i] = s.l2_sq;
            }
            let expected = buf.len();
            reduce(buf);
            if buf.len() != expected {
                return Err(StepError::AllReduceLength {
                    expected,
                    got: buf.len(),
                });
            }
            elsewhere = bad.is_none() && buf[0] != 0.0;
            for (i, s) in self.group_sums.iter_mut().enumerate() {
                s.l1 = buf[1 + 2 * i];
                s.l2_sq = buf[2 + 2 * i];
            }
        }
        let skip = match (bad, elsewhere, inputs.loss) {
            (Some(index), ..) => Some(Skipped::NonFiniteGradient { index }),
            (None, true, _) => Some(Skipped::NonFiniteGradientElsewhere),
            (None, false, Some(l)) if !l.is_finite() => Some(Skipped::NonFiniteLoss),
            _ => None,
        };
        if let Some(why) = skip {
            return match (self.non_finite, bad) {
                (NonFinitePolicy::Error, Some(index)) => {
                    Err(StepError::NonFiniteGradient(params[index].name.to_string()))
                }
                _ => Ok(StepInfo {
                    group: {
                        for g in &mut self.groups {
                            g.last.skipped_steps += 1;
                        }
                        self.groups[0].last
                    },
                    skipped: Some(why),
                    grad_l1: f64::NAN,
                    grad_l2: f64::NAN,
                }),
            };
        }
        let total_l2_sq = self.group_sums.iter().map(|s| s.l2_sq).sum::<f64>();

        // Scalar phase, once per group, into scratch: committed only if every value is finite.
        self.scratch.clear();
        for (gi, g) in self.groups.iter().enumerate() {
            let k = g.k;
            let reductions = Reductions {
                group_l1: self.group_sums[gi].l1,
                group_l2_sq: self.group_sums[gi].l2_sq,
                total_l2_sq,
                loss: inputs.loss,
            };
            let lr_factor = self.learner.lr_factor(k, &g.learner_state, &reductions);
            let lr = g.config.lr * self.schedule.value(k) * lr_factor;
            let mut averaging = g.averaging;
            let (cs, c) = self.conversion.scalars(&mut averaging, lr, k);
            let ctx = |normalized| DecayContext {
                weight_decay: g.config.weight_decay,
                lr,
                lr_max: averaging.lr_max,
                normalized,
            };
            let decay = [
                self.decay.scalars(ctx(false)),
                self.decay.scalars(ctx(true)),
            ];
            let checks = [
                ("lr", lr),
                ("c", c),
                ("weight_sum", averaging.weight_sum),
                ("shrink", decay[0].shrink),
                ("shrink", decay[1].shrink),
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
                lr_factor,
                conversion: cs,
                decay,
                c,
                averaging,
                learner_state: g.learner_state,
                reductions,
            });
        }

        // Learner pre-pass (Prodigy): global sums over (g, z, slots) before any update.
        let n_learner = self.learner.slot_names().len();
        let n_slots = self.num_slots();
        let n_pre = self.learner.prepass_len();
        if n_pre > 0 {
            self.entry_prepass.fill([0.0; MAX_PREPASS]);
            for (p, &idx) in params.iter().zip(&self.resolved) {
                let Some(grad) = p.grad else { continue };
                let e = &self.entries[idx];
                let gs = &self.scratch[e.group];
                let ls = self.learner.scalars(
                    StepIndex {
                        group: self.groups[e.group].k,
                        param: e.updates,
                    },
                    gs.lr,
                    &gs.learner_state,
                );
                let acc = &mut self.entry_prepass[idx];
                if e.has_state && n_slots > 0 {
                    for ((v, gv), st) in p.value.iter().zip(grad).zip(e.state.chunks_exact(n_slots))
                    {
                        let z = self.conversion.iterate(*v, &st[n_learner..]);
                        self.learner.prepass(&ls, *gv, z, &st[..n_learner], acc);
                    }
                } else {
                    // No state yet (it is created only once the step is committed), or no
                    // slots at all: the iterate is the value and the slots are their initial
                    // values. Allocates only when the learner has slots, on the first step.
                    let mut st = vec![T::zero(); n_learner];
                    for (v, gv) in p.value.iter().zip(grad) {
                        st.fill(T::zero());
                        self.learner.init_slots(*v, &mut st);
                        self.learner.prepass(&ls, *gv, *v, &st, acc);
                    }
                }
            }
            self.prepass_sums.fill([0.0; MAX_PREPASS]);
            for &idx in &self.by_name {
                let (s, acc) = (
                    &self.entry_prepass[idx],
                    &mut self.prepass_sums[self.entries[idx].group],
                );
                for (a, v) in acc.iter_mut().zip(s) {
                    *a += v;
                }
            }
            if let Some(reduce) = inputs.all_reduce.as_mut() {
                let buf = &mut self.reduce_buf;
                buf.clear();
                for s in &self.prepass_sums {
                    buf.extend_from_slice(&s[..n_pre]);
                }
                let expected = buf.len();
                reduce(buf);
                if buf.len() != expected {
                    return Err(StepError::AllReduceLength {
                        expected,
                        got: buf.len(),
                    });
                }
                for (gi, s) in self.prepass_sums.iter_mut().enumerate() {
                    s[..n_pre].copy_from_slice(&buf[gi * n_pre..(gi + 1) * n_pre]);
                }
                buf.resize(1 + 2 * self.groups.len(), 0.0);
            }
        }
        for (gi, s) in self.scratch.iter_mut().enumerate() {
            self.learner.update_group_state(
                self.groups[gi].k,
                s.lr,
                &mut s.learner_state,
                &s.reductions,
                &self.prepass_sums[gi][..n_pre],
            );
            if let Some(&value) = s.learner_state.iter().find(|v| !v.is_finite()) {
                return Err(StepError::NonFiniteScalar {
                    group: gi,
                    what: "learner_state",
                    value,
                });
            }
        }
        for (g, s) in self.groups.iter_mut().zip(&self.scratch) {
            g.averaging = s.averaging;
            g.last = GroupStepInfo {
                k: g.k + 1,
                lr: s.lr,
                c: s.c,
                lr_max: s.averaging.lr_max,
                weight_sum: s.averaging.weight_sum,
                grad_l1: s.reductions.group_l1,
                grad_l2: s.reductions.group_l2_sq.sqrt(),
                lr_factor: s.lr_factor,
                skipped_steps: g.last.skipped_steps,
            };
        }

        // Element phase, one fused loop per tensor.
        let projection = self.decay.projection();
        for (p, &idx) in params.iter_mut().zip(&self.resolved) {
            let Some(grad) = p.grad else { continue };
            let e = &mut self.entries[idx];
            let gs = &self.scratch[e.group];
            if !e.has_state {
                e.state = vec![T::zero(); e.len * n_slots];
                if n_slots > 0 {
                    for (v, st) in p.value.iter().zip(e.state.chunks_exact_mut(n_slots)) {
                        let (ls, cs) = st.split_at_mut(n_learner);
                        self.conversion.init_slots(*v, cs);
                        self.learner.init_slots(*v, ls);
                    }
                }
                e.has_state = true;
            }
            let project = projection.filter(|_| e.tags.normalized);
            if let Some(proj) = project
                && e.radius.is_empty()
            {
                let layout = proj.layout(&e.shape).expect("axis checked at registration");
                let z: Vec<T> = p
                    .value
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let st = &e.state[i * n_slots..(i + 1) * n_slots];
                        self.conversion.iterate(*v, &st[n_learner..])
                    })
                    .collect();
                e.radius = init_radius(&proj, layout, &z);
                e.row_scratch = vec![0.0; layout.0];
            }
            let ls = self.learner.scalars(
                StepIndex {
                    group: self.groups[e.group].k,
                    param: e.updates,
                },
                gs.lr,
                &gs.learner_state,
            );
            let decay = gs.decay_for(e.tags);
            let kernel = Kernel {
                learner: &self.learner,
                conversion: &self.conversion,
                ls,
                cs: gs.conversion,
                decay: DecayTerms::of(decay),
                lr: T::of(gs.lr),
                n_learner,
                n_slots,
            };
            if self.diagnostics {
                let weight_sq = p.value.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
                let update_sq =
                    kernel.run::<true>(p.value, grad, &mut e.state, &mut self.chunk_sums);
                self.diag[idx] = EntryDiag {
                    step: self.groups[e.group].k + 1,
                    grad_sq: self.entry_sums[idx].l2_sq,
                    weight_sq,
                    update_sq,
                    lr: gs.lr,
                    kappa: decay.kappa(gs.lr),
                };
            } else {
                kernel.run::<false>(p.value, grad, &mut e.state, &mut self.chunk_sums);
            }
            if let Some(proj) = project {
                let layout = proj.layout(&e.shape).expect("axis checked at registration");
                project_rows(
                    &self.conversion,
                    &gs.conversion,
                    layout,
                    &e.radius,
                    p.value,
                    &mut e.state,
                    (n_learner, n_slots),
                    &mut e.row_scratch,
                );
            }
            e.updates += 1;
        }
        for (g, s) in self.groups.iter_mut().zip(&self.scratch) {
            g.k += 1;
            g.learner_state = s.learner_state;
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
    /// One element's update; returns the learner's direction (before any decay term).
    #[inline(always)]
    fn element(&self, p: &mut T, g: T, slots: &mut [T]) -> T {
        let (ls, cs) = slots.split_at_mut(self.n_learner);
        let y = *p;
        let z = self.conversion.iterate(y, cs);
        let g = g + self.decay.l2 * y;
        let u = self.learner.direction(&self.ls, g, z, ls);
        let d = u + self.decay.at_y * y;
        self.conversion
            .update(&self.cs, self.lr, self.decay.shrink, p, cs, d);
        u
    }

    /// The loop for exactly `N` slots per element: a compile-time chunk width lets the
    /// compiler drop bounds checks and keep the state of one element in registers. With
    /// `DIAG` it also returns `Σu²` of the directions (in `f64`), else 0.
    #[inline(always)]
    fn serial_n<const N: usize, const DIAG: bool>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
    ) -> f64 {
        let mut acc = 0.0;
        let mut add = |u: T| {
            if DIAG {
                acc += u.f64() * u.f64();
            }
        };
        if N == 0 {
            for (p, g) in p.iter_mut().zip(g) {
                add(self.element(p, *g, &mut []));
            }
        } else {
            for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(N)) {
                add(self.element(p, *g, s));
            }
        }
        acc
    }

    fn serial<const DIAG: bool>(&self, p: &mut [T], g: &[T], st: &mut [T]) -> f64 {
        match self.n_slots {
            0 => self.serial_n::<0, DIAG>(p, g, st),
            1 => self.serial_n::<1, DIAG>(p, g, st),
            2 => self.serial_n::<2, DIAG>(p, g, st),
            3 => self.serial_n::<3, DIAG>(p, g, st),
            4 => self.serial_n::<4, DIAG>(p, g, st),
            5 => self.serial_n::<5, DIAG>(p, g, st),
            6 => self.serial_n::<6, DIAG>(p, g, st),
            n => {
                let mut acc = 0.0;
                for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(n)) {
                    let u = self.element(p, *g, s);
                    if DIAG {
                        acc += u.f64() * u.f64();
                    }
                }
                acc
            }
        }
    }

    /// Run over one tensor; returns `Σu²` with `DIAG` (per-chunk sums added in order, so the
    /// parallel and serial paths agree), else 0. `chunks` holds `len.div_ceil(CHUNK)` entries.
    fn run<const DIAG: bool>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [(GradSums, bool)],
    ) -> f64
    where
        Self: Sync,
    {
        if p.len() < PARALLEL_MIN_LEN {
            if self.n_slots == 0 {
                return p
                    .chunks_mut(CHUNK)
                    .zip(g.chunks(CHUNK))
                    .map(|(p, g)| self.serial::<DIAG>(p, g, &mut []))
                    .sum();
            }
            return p
                .chunks_mut(CHUNK)
                .zip(g.chunks(CHUNK))
                .zip(st.chunks_mut(CHUNK * self.n_slots))
                .map(|((p, g), s)| self.serial::<DIAG>(p, g, s))
                .sum();
        }
        let chunks = &mut chunks[..p.len().div_ceil(CHUNK)];
        if self.n_slots == 0 {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(chunks.par_iter_mut())
                .for_each(|((p, g), c)| c.0.l2_sq = self.serial::<DIAG>(p, g, &mut []));
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(st.par_chunks_mut(CHUNK * self.n_slots))
                .zip(chunks.par_iter_mut())
                .for_each(|(((p, g), s), c)| c.0.l2_sq = self.serial::<DIAG>(p, g, s));
        }
        chunks.iter().map(|c| c.0.l2_sq).sum()
    }
}
