//! The reduction phase: per-parameter `‖g‖₁`, `‖g‖₂²` and the non-finite check, summed per
//! group in name order (so the result does not depend on the order parameters are passed),
//! all-reduced across shards, and the decision to skip the step.

use super::Optimizer;
use super::step_io::{NonFinitePolicy, Skipped, StepInfo, StepInputs};
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::kernel::{GradSums, grad_sums};
use crate::learner::{Learner, MAX_PREPASS};
use crate::param::Param;
use crate::schedule::Schedule;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Fill the entry and group gradient sums (and the pre-pass sums of learners whose lr
    /// reads them); `Some(why)` if the step must be skipped (a non-finite gradient here or on
    /// another shard, or a non-finite loss).
    pub(super) fn reduce(
        &mut self,
        params: &mut [Param<'_, T>],
        inputs: &mut StepInputs<'_>,
    ) -> Result<Option<Skipped>, StepError> {
        self.entry_sums.fill(GradSums::default());
        let mut bad = None;
        let check = self.non_finite != NonFinitePolicy::Propagate;
        for (index, (p, &idx)) in params.iter().zip(&self.resolved).enumerate() {
            let Some(g) = p.grad else { continue };
            let (sums, finite) = grad_sums(g, &mut self.chunk_sums);
            if check && !finite {
                bad = Some(index);
                break;
            }
            self.entry_sums[idx] = sums;
        }
        if L::PREPASS_BEFORE_LR {
            if bad.is_none() {
                self.local_prepass(params);
            } else {
                self.prepass_sums.fill([0.0; MAX_PREPASS]);
            }
        }
        Ok(self.agree(bad, inputs))
    }

    /// From the entry sums and the index of a local non-finite gradient (if any): the group
    /// sums, all-reduced across shards with `inputs`' hook (with the pre-pass sums of
    /// learners whose lr reads them, in the same call), and whether to skip the step.
    pub(super) fn agree(
        &mut self,
        bad: Option<usize>,
        inputs: &mut StepInputs<'_>,
    ) -> Option<Skipped> {
        self.sum_groups();
        // A non-finite loss counts like a non-finite gradient in the all-reduce, so shards that
        // pass their local losses still take the same decision.
        let loss_bad = inputs.loss.is_some_and(|l| !l.is_finite());
        let mut elsewhere = false;
        if let Some(hook) = inputs.all_reduce.as_mut() {
            // Layout: [non-finite count (gradients or loss), then ‖g‖₁, ‖g‖₂² per group, then
            // (PREPASS_BEFORE_LR) the pre-pass sums per group].
            let n_pre = if L::PREPASS_BEFORE_LR {
                L::PREPASS_LEN
            } else {
                0
            };
            let buf = &mut self.reduce_buf;
            buf.clear();
            buf.push(f64::from(u8::from(bad.is_some() || loss_bad)));
            for s in &self.group_sums {
                buf.extend_from_slice(&[s.l1, s.l2_sq]);
            }
            for s in self.prepass_sums.iter().filter(|_| n_pre > 0) {
                buf.extend_from_slice(&s[..n_pre]);
            }
            hook(buf);
            elsewhere = bad.is_none() && !loss_bad && buf[0] != 0.0;
            let (norms, pre) = buf[1..].split_at(2 * self.group_sums.len());
            for (s, v) in self.group_sums.iter_mut().zip(norms.chunks_exact(2)) {
                (s.l1, s.l2_sq) = (v[0], v[1]);
            }
            if n_pre > 0 {
                for (s, v) in self.prepass_sums.iter_mut().zip(pre.chunks_exact(n_pre)) {
                    s[..n_pre].copy_from_slice(v);
                }
            }
        }
        match (bad, loss_bad, elsewhere) {
            (Some(index), ..) => Some(Skipped::NonFiniteGradient { index }),
            (None, true, _) => Some(Skipped::NonFiniteLoss),
            (None, false, true) => Some(Skipped::NonFiniteGradientElsewhere),
            (None, false, false) => None,
        }
    }

    /// Whether this step can take the gradient sums inside the update loop instead of in a
    /// pass of their own: nothing to check ([`NonFinitePolicy::Propagate`]), nothing before
    /// the update that reads the sums, and no shards to agree with.
    pub(super) fn one_pass(&self, inputs: &StepInputs<'_>) -> bool {
        self.non_finite == NonFinitePolicy::Propagate
            && inputs.all_reduce.is_none()
            && !self.learner.lr_factor_needs_reductions()
            && L::PREPASS_LEN == 0
    }

    /// The reduction phase of a one-pass step: only the loss is checked; the sums are NaN
    /// until the update has taken them (so a learner that read them early would fail the
    /// scalar checks instead of using zeros).
    pub(super) fn reduce_loss_only(&mut self, inputs: &StepInputs<'_>) -> Option<Skipped> {
        self.entry_sums.fill(GradSums {
            l1: f64::NAN,
            l2_sq: f64::NAN,
        });
        self.sum_groups();
        inputs
            .loss
            .is_some_and(|l| !l.is_finite())
            .then_some(Skipped::NonFiniteLoss)
    }

    /// Per-group sums of the entry sums, in name order (so the result does not depend on the
    /// order parameters are passed).
    pub(super) fn sum_groups(&mut self) {
        self.group_sums.fill(GradSums::default());
        for &idx in &self.by_name {
            let (s, acc) = (
                self.entry_sums[idx],
                &mut self.group_sums[self.entries[idx].group],
            );
            acc.l1 += s.l1;
            acc.l2_sq += s.l2_sq;
        }
    }

    /// Skip the step (or refuse it under [`NonFinitePolicy::Error`] for a local non-finite
    /// gradient, `name(index)` of the passed parameters): only the skipped-steps counters
    /// change.
    pub(super) fn skip<'n>(
        &mut self,
        name: impl Fn(usize) -> &'n str,
        why: Skipped,
    ) -> Result<StepInfo, StepError> {
        if let (NonFinitePolicy::Error, Skipped::NonFiniteGradient { index }) =
            (self.non_finite, why)
        {
            return Err(StepError::NonFiniteGradient(name(index).to_string()));
        }
        for g in &mut self.groups {
            g.last.skipped_steps += 1;
        }
        Ok(StepInfo {
            skipped: Some(why),
            group: self.groups[0].last,
            grad_l1: f64::NAN,
            grad_l2: f64::NAN,
        })
    }
}
