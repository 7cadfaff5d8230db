//! What a step takes and reports: optional inputs, the skip policy and the step info.

use crate::param::GroupStepInfo;

/// What to do when a gradient contains NaN or ±inf (a non-finite loss, or a non-finite
/// gradient or loss on another shard, always skips the step: nothing local to refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Skip the whole step atomically: no buffer, step counter, `lr_max` or weight-sum
    /// change; reported in [`StepInfo::skipped`] and counted in every group's
    /// [`GroupStepInfo::skipped_steps`].
    #[default]
    Skip,
    /// Refuse the step with [`crate::StepError::NonFiniteGradient`]; nothing changes (not even
    /// the skipped-steps counter).
    Error,
    /// Check nothing, as `torch.optim` does: a NaN or ±inf gradient propagates into the
    /// parameters and state. In exchange the step reads each gradient once: the gradient
    /// norms of the step info are taken inside the update loop (the same bits as the other
    /// policies report). Learners that need the norms before the update (AdaGrad-Norm,
    /// Polyak: [`crate::learner::Learner::lr_factor_needs_reductions`]) or run a pre-pass
    /// (Prodigy), and steps with an all-reduce hook, still reduce first; nothing is skipped
    /// either way except for a non-finite loss.
    Propagate,
}

/// Why a step was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Skipped {
    /// `params[index]` had a non-finite gradient (policy [`NonFinitePolicy::Skip`]).
    NonFiniteGradient {
        /// Index into the slice passed to `step`.
        index: usize,
    },
    /// Another shard reported a non-finite gradient or loss through the all-reduce hook.
    NonFiniteGradientElsewhere,
    /// The loss passed to the step was NaN or ±inf.
    NonFiniteLoss,
}

/// An all-reduce over shards: sums a vector of partial sums element-wise in place.
pub type AllReduce<'a> = dyn FnMut(&mut [f64]) + Send + 'a;

/// Optional inputs of [`crate::Optimizer::step_with`].
#[derive(Default)]
pub struct StepInputs<'a> {
    /// The loss at the gradient point (required by learners that use it: Polyak). With
    /// sharded data, pass the loss averaged over shards.
    pub loss: Option<f64>,
    /// Sums a vector of partial sums element-wise across shards in place (an all-reduce):
    /// called once with `[non-finite count (gradients or loss), then ‖g‖₁, ‖g‖₂² per group]`
    /// before anything is decided, and once more with the learner's pre-pass sums (per
    /// group) for learners that have one (Prodigy). Learners whose lr reads their pre-pass
    /// (ScheduleFree+'s `⟨g, z − y⟩`) have those sums appended to the first call instead:
    /// one collective call per step. Every shard must call `step_with` with the same
    /// parameter groups, so that the collective calls match.
    pub all_reduce: Option<&'a mut AllReduce<'a>>,
}

impl StepInputs<'_> {
    /// Inputs with the loss at the gradient point and no all-reduce hook.
    pub fn with_loss(loss: f64) -> Self {
        StepInputs {
            loss: Some(loss),
            all_reduce: None,
        }
    }
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
    /// step's values, with `skipped_steps` one higher).
    pub skipped: Option<Skipped>,
    /// Group 0's values; all groups: [`crate::Optimizer::group_info`].
    pub group: GroupStepInfo,
    /// `‖g‖₁` over every gradient passed to the step (all groups), accumulated in `f64`; NaN
    /// for a skipped step. Log it to refine a schedule later ([`crate::schedule::refine`]; ℓ1 for
    /// Adam-type learners).
    pub grad_l1: f64,
    /// `‖g‖₂` over every gradient passed to the step (all groups); NaN for a skipped step
    /// (ℓ2 for SGD-type learners).
    pub grad_l2: f64,
}
