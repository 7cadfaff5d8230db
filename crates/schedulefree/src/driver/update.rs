//! The update phase: one fused loop per parameter tensor ([`crate::kernel::Kernel`]),
//! creating state at a parameter's first gradient, then the hypersphere projection and the
//! opt-in diagnostics.

use super::Optimizer;
use super::diagnostics::EntryDiag;
use crate::conversion::Conversion;
use crate::decay::{BlockProjection, Decay, DecayTerms, init_radius, project_rows};
use crate::element::Element;
use crate::kernel::{After, GradSums, Kernel};
use crate::learner::Learner;
use crate::param::Param;
use crate::schedule::Schedule;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Update every passed parameter that has a gradient with the committed scalars; with
    /// `take_sums`, fill the entry gradient sums on the way (one-pass steps).
    pub(super) fn update(&mut self, params: &mut [Param<'_, T>], take_sums: bool) {
        if take_sums {
            self.entry_sums.fill(GradSums::default());
        }
        let n_learner = self.learner.slot_names().len();
        let n_slots = self.num_slots();
        let projection = self.decay.projection();
        for (p, &idx) in params.iter_mut().zip(&self.resolved) {
            let Some(grad) = p.grad else { continue };
            let e = &mut self.entries[idx];
            let gs = &self.scratch[e.group];
            if !e.has_state {
                e.state = vec![T::zero(); e.len * n_slots];
                if n_slots > 0 {
                    let value = &*p.value;
                    e.layout(n_slots).for_each_mut(&mut e.state, |i, st| {
                        let (ls, cs) = st.split_at_mut(n_learner);
                        self.conversion.init_slots(value[i], cs);
                        self.learner.init_slots(value[i], ls);
                    });
                }
                e.has_state = true;
            }
            let project = projection.filter(|_| e.tags.normalized);
            if let Some(proj) = project
                && e.radius.is_empty()
            {
                let layout = proj.layout(&e.shape).expect("axis checked at registration");
                let mut z = Vec::with_capacity(e.len);
                e.layout(n_slots).for_each(&e.state, |i, st| {
                    z.push(self.conversion.iterate(p.value[i], &st[n_learner..]));
                });
                e.radius = init_radius(&proj, layout, &z);
                e.row_scratch = vec![0.0; layout.0];
            }
            let ls = gs.learner_scalars(&self.learner, self.groups[e.group].k, e.updates);
            let decay = gs.decay_for(e.tags);
            let kernel = Kernel {
                learner: &self.learner,
                conversion: &self.conversion,
                ls,
                cs: gs.conversion,
                decay: DecayTerms::of(decay),
                lr: T::of(gs.lr),
                n_learner,
            };
            let want = (self.diagnostics, take_sums);
            let weight_sq = if self.diagnostics {
                p.value.iter().map(|v| v.f64() * v.f64()).sum::<f64>()
            } else {
                0.0
            };
            // Tensors whose rows are contiguous are projected block by block in cache.
            let rows =
                project.map(|proj| proj.layout(&e.shape).expect("axis checked at registration"));
            let in_blocks = rows
                .filter(|(r, inner)| r * inner == e.len)
                .map(|(_, inner)| BlockProjection {
                    conversion: &self.conversion,
                    sc: &gs.conversion,
                    inner,
                    radius: &e.radius,
                    n_learner,
                });
            let after = in_blocks
                .as_ref()
                .map(|bp| move |start: usize, p: &mut [T], st: &mut [T]| bp.block(start, p, st));
            let sums = kernel.run(
                p.value,
                grad,
                &mut e.state,
                &mut self.chunk_sums,
                want,
                after.as_ref().map(|f| f as &After<'_, T>),
            );
            if take_sums {
                self.entry_sums[idx] = sums.grad;
            }
            if self.diagnostics {
                self.diag[idx] = EntryDiag {
                    step: self.groups[e.group].k + 1,
                    grad_sq: self.entry_sums[idx].l2_sq,
                    weight_sq,
                    update_sq: sums.u_sq,
                    lr: gs.lr,
                    kappa: decay.kappa(gs.lr),
                };
            }
            let layout = e.layout(n_slots);
            if let Some(bp) = &in_blocks {
                let edges = self.chunk_sums.iter().map(|c| c.after);
                bp.edges(p.value, &mut e.state, layout, edges, &mut e.row_scratch);
            } else if let Some(rows) = rows {
                project_rows(
                    &self.conversion,
                    &gs.conversion,
                    rows,
                    &e.radius,
                    p.value,
                    &mut e.state,
                    (n_learner, layout),
                    &mut e.row_scratch,
                );
            }
            e.updates += 1;
        }
    }
}
