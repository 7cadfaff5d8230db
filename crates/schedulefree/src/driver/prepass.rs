//! The learner's optional pre-pass (Prodigy's `⟨g, z₀ − z⟩` and `‖s‖₁`, ScheduleFree+'s
//! `⟨g, z − y⟩`): global sums over every element before any element is updated, summed per
//! group in name order and all-reduced across shards (with the gradient norms, in one call,
//! for learners whose lr reads them: [`Learner::PREPASS_BEFORE_LR`]).

use super::Optimizer;
use super::step_io::StepInputs;
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::kernel::Prepass;
use crate::learner::{Learner, MAX_PREPASS, StepIndex};
use crate::param::Param;
use crate::schedule::Schedule;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Fill `self.prepass_sums` after the scalar phase (no-op for learners without a
    /// pre-pass, or whose pre-pass ran before it).
    pub(super) fn prepass(
        &mut self,
        params: &mut [Param<'_, T>],
        inputs: &mut StepInputs<'_>,
    ) -> Result<(), StepError> {
        // Constants, so learners without a pre-pass compile none.
        if const { L::PREPASS_LEN == 0 || L::PREPASS_BEFORE_LR } {
            return Ok(());
        }
        self.local_prepass(params);
        self.reduce_prepass(inputs);
        Ok(())
    }

    /// The learner scalars a pre-pass sees for a parameter of group `group` with `updates`
    /// updates: this step's, or computed with `lr = 0` when the pre-pass runs before the
    /// scalar phase ([`Learner::PREPASS_BEFORE_LR`]).
    pub(super) fn prepass_scalars(&self, group: usize, updates: u64) -> L::Scalars {
        let g = &self.groups[group];
        if L::PREPASS_BEFORE_LR {
            let index = StepIndex {
                group: g.k,
                param: updates,
            };
            self.learner.scalars(index, 0.0, &g.learner_state)
        } else {
            self.scratch[group].learner_scalars(&self.learner, g.k, updates)
        }
    }

    /// This shard's pre-pass sums, per entry and per group (no all-reduce).
    pub(super) fn local_prepass(&mut self, params: &mut [Param<'_, T>]) {
        if const { L::PREPASS_LEN == 0 } {
            return;
        }
        let n_learner = self.learner.slot_names().len();
        let n_slots = self.num_slots();
        // Parameters without a gradient this step add nothing (not last step's sums).
        self.entry_prepass.fill([0.0; MAX_PREPASS]);
        for (p, &idx) in params.iter_mut().zip(&self.resolved) {
            let Some(grad) = p.grad else { continue };
            let ls = self.prepass_scalars(self.entries[idx].group, self.entries[idx].updates);
            let e = &mut self.entries[idx];
            let pass = Prepass {
                learner: &self.learner,
                conversion: &self.conversion,
                ls,
                n_learner,
            };
            self.entry_prepass[idx] = if e.has_state || n_slots == 0 {
                pass.run(p.value, grad, &mut e.state, &mut self.chunk_prepass)
            } else {
                // No state yet (it is created only once the step is committed): the slots at
                // their initial values, built block by block in a buffer of the same layout.
                // Allocates on a parameter's first step only.
                let mut st = vec![T::zero(); e.len * n_slots];
                e.layout(n_slots).for_each_mut(&mut st, |i, s| {
                    let (ls, cs) = s.split_at_mut(n_learner);
                    self.conversion.init_slots(p.value[i], cs);
                    self.learner.init_slots(p.value[i], ls);
                });
                pass.run(p.value, grad, &mut st, &mut self.chunk_prepass)
            };
        }
        self.sum_prepass();
    }

    /// `self.prepass_sums` from the per-parameter sums in `self.entry_prepass` (of the
    /// parameters in `self.resolved` with a gradient): per group in name order.
    pub(super) fn sum_prepass(&mut self) {
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
    }

    /// All-reduce `self.prepass_sums` across shards with `inputs`' hook (if any).
    pub(super) fn reduce_prepass(&mut self, inputs: &mut StepInputs<'_>) {
        let n_pre = L::PREPASS_LEN;
        if let Some(hook) = inputs.all_reduce.as_mut() {
            let buf = &mut self.reduce_buf;
            buf.clear();
            for s in &self.prepass_sums {
                buf.extend_from_slice(&s[..n_pre]);
            }
            hook(buf);
            for (s, v) in self.prepass_sums.iter_mut().zip(buf.chunks_exact(n_pre)) {
                s[..n_pre].copy_from_slice(v);
            }
        }
    }
}
