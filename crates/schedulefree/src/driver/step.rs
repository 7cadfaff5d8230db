//! One step as a short sequence of phases.

use super::Optimizer;
use super::step_io::{StepInfo, StepInputs};
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::learner::Learner;
use crate::param::Param;
use crate::schedule::Schedule;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
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
    /// - **A zero lr is still a step.** With `lr = 0` (or a schedule at 0: the end of a
    ///   decay to 0, `TorchLinearLr` starting at 0, RAdam's silent SGD phase) the parameters
    ///   do not move, but Adam's second moment `exp_avg_sq` and the counter are updated with
    ///   the gradient.
    /// - **Late first gradients.** A parameter whose first gradient arrives after its group
    ///   has stepped (unfrozen mid-training) starts from zero moments. Learners whose bias
    ///   correction counts the group's updates (the Schedule-Free presets and RAdam, like
    ///   their reference classes) divide its first `exp_avg_sq = (1 − β2)·g²` by
    ///   `1 − β2^(k+1)` ≈ 1 instead of by `1 − β2`, so `z` moves by up to `lr/sqrt(1 − β2)`
    ///   per element (≈ 25 × lr after 1000 steps, → 32 × lr, for `β2 = 0.999`; `y` moves
    ///   `1 − β` of that). Put such parameters in their own group, or build the learner with
    ///   a per-parameter count: `learner::Adam { beta1: 0.0, count: StepCount::Parameter,
    ///   ..Default::default() }` in a [`crate::ScheduleFreeWrapper`] or
    ///   [`crate::composed::Composed`].
    ///
    /// # Errors
    /// Nothing is modified on error. [`StepError::EvalMode`] if the optimizer is in eval
    /// mode; [`StepError::UnknownParameter`], [`StepError::DuplicateParameter`],
    /// [`StepError::LengthMismatch`]; [`StepError::NonFiniteGradient`] under
    /// [`crate::NonFinitePolicy::Error`]; [`StepError::NonFiniteScalar`] if the scalar phase
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
        self.step_with(params, StepInputs::with_loss(loss))
    }

    /// [`Optimizer::step`] with optional inputs: the loss, and an all-reduce hook that sums
    /// the step's global reductions (gradient norms, non-finite count, learner pre-pass sums)
    /// across shards, so that every shard takes the same scalar decisions.
    ///
    /// # Errors
    /// As [`Optimizer::step`].
    ///
    /// The phases, in order: resolve the names; reduce (gradient norms, non-finite check,
    /// all-reduce) and decide whether to skip; the scalar phase per group; the learner's
    /// pre-pass; commit the scalars; the fused update of each parameter; advance the counters.
    /// A learner whose lr reads its pre-pass ([`Learner::PREPASS_BEFORE_LR`], ScheduleFree+)
    /// takes it inside the reduction instead, its sums in the same all-reduce.
    /// Under [`crate::NonFinitePolicy::Propagate`] the reduction is folded into the update
    /// where nothing before the update needs it.
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
        // Nothing below changes state until `commit_scalars`, which runs only once every
        // scalar of the step is known to be finite.
        let one_pass = self.one_pass(&inputs);
        let skip = if one_pass {
            self.reduce_loss_only(&inputs)
        } else {
            self.reduce(params, &mut inputs)?
        };
        if let Some(why) = skip {
            return self.skip(|i| params[i].name, why);
        }
        self.scalar_phase(inputs.loss)?;
        // After the scalar phase: its sums may depend on the lr (Prodigy). Learners whose
        // lr reads them had theirs in `reduce`.
        self.prepass(params, &mut inputs)?;
        self.commit_scalars()?;
        self.update(params, one_pass);
        if one_pass {
            self.sum_groups();
            self.report_group_sums();
        }
        Ok(self.finish())
    }
}
