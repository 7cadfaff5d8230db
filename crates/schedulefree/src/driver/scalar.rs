//! The scalar phase: once per group, in `f64`, the scheduled lr (with the learner's factor),
//! the averaging weight `c`, the decay coefficients and the learner's group state; written to
//! scratch and committed only when every value is finite, so a failed step changes nothing.

use super::Optimizer;
use super::step_io::StepInfo;
use crate::conversion::{AveragingState, Conversion};
use crate::decay::{Decay, DecayContext, DecayScalars};
use crate::element::Element;
use crate::error::StepError;
use crate::kernel::GradSums;
use crate::learner::{GroupState, Learner, MAX_PREPASS, Reductions, StepIndex};
use crate::param::{Group, GroupStepInfo, ParamTags};
use crate::schedule::Schedule;

/// One group's scalars for the step being taken, in `f64`.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupScalars<CS> {
    pub(super) lr: f64,
    pub(super) lr_factor: f64,
    pub(super) conversion: CS,
    /// Decay of ordinary and of `normalized` parameters (`no_decay` ones get none).
    pub(super) decay: [DecayScalars; 2],
    pub(super) c: f64,
    pub(super) averaging: AveragingState,
    pub(super) learner_state: GroupState,
    pub(super) reductions: Reductions,
}

impl<CS> GroupScalars<CS> {
    /// `learner`'s per-tensor scalars this step, for a parameter of this group that has had
    /// `updates` updates, the group `k`.
    pub(super) fn learner_scalars<L: Learner>(
        &self,
        learner: &L,
        k: u64,
        updates: u64,
    ) -> L::Scalars {
        let index = StepIndex {
            group: k,
            param: updates,
        };
        learner.scalars(index, self.lr, &self.learner_state)
    }

    pub(super) fn decay_for(&self, tags: ParamTags) -> DecayScalars {
        if tags.no_decay {
            DecayScalars::NONE
        } else {
            self.decay[tags.normalized as usize]
        }
    }
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// The learner's lr factor and the effective lr `γ_k = lr · schedule(k) · factor` of
    /// group `g`'s next update, given the step's reductions.
    pub(super) fn group_lr(&self, g: &Group, red: &Reductions) -> (f64, f64) {
        let factor = self.learner.lr_factor(g.k, &g.learner_state, red);
        (factor, g.config.lr * self.schedule.value(g.k) * factor)
    }

    /// Per-group scalars into `self.scratch` from the step's reductions and `loss`.
    pub(super) fn scalar_phase(&mut self, loss: Option<f64>) -> Result<(), StepError> {
        let total_l2_sq = self.group_sums.iter().map(|s| s.l2_sq).sum::<f64>();
        let total_l1 = self.group_sums.iter().map(|s| s.l1).sum::<f64>();
        // Over every group, in group order (the per-group sums are in name order).
        let mut prepass = [0.0; MAX_PREPASS];
        if L::PREPASS_BEFORE_LR {
            for s in &self.prepass_sums {
                for (a, v) in prepass.iter_mut().zip(s) {
                    *a += v;
                }
            }
        }
        self.scratch.clear();
        for (gi, g) in self.groups.iter().enumerate() {
            let k = g.k;
            let reductions = Reductions {
                group_l1: self.group_sums[gi].l1,
                group_l2_sq: self.group_sums[gi].l2_sq,
                total_l2_sq,
                total_l1,
                loss,
                prepass,
                correction_scale: self.conversion.correction_scale(k),
            };
            let (lr_factor, lr) = self.group_lr(g, &reductions);
            let mut averaging = g.averaging;
            let (cs, c) = self.group_conversion(g).scalars(&mut averaging, lr, k);
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
        Ok(())
    }

    /// Advance each group's learner state with the step's reductions and pre-pass sums, check
    /// it, then commit the averaging state and the step info of every group.
    pub(super) fn commit_scalars(&mut self) -> Result<(), StepError> {
        let n_pre = L::PREPASS_LEN;
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
        Ok(())
    }

    /// Put the group sums taken during a one-pass update into the groups' step info.
    pub(super) fn report_group_sums(&mut self) {
        for (g, s) in self.groups.iter_mut().zip(&self.group_sums) {
            g.last.grad_l1 = s.l1;
            g.last.grad_l2 = s.l2_sq.sqrt();
        }
    }

    /// After the update: advance every group's counter and learner state; the step's info.
    pub(super) fn finish(&mut self) -> StepInfo {
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
        StepInfo {
            skipped: None,
            group: self.groups[0].last,
            grad_l1: total.l1,
            grad_l2: total.l2_sq.sqrt(),
        }
    }
}
