//! Reading the optimizer without changing it: the returned point `x`, the learner's iterate
//! `z`, any state slot as a borrowed view, and the scalars the next step will use.

use super::Optimizer;
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::kernel::SlotLayout;
use crate::learner::{Learner, Reductions};
use crate::param::Entry;
use crate::schedule::Schedule;

/// A borrowed, read-only view of one state slot (`"z"`, `"exp_avg_sq"`, ...) of one
/// parameter. State is stored in blocks of 16384 elements with the slots of a block one after
/// another (so that the vector kernel reads each slot contiguously and one thread owns a
/// block's memory): the view is a sequence of contiguous runs, not one slice.
/// Element `i` of the view belongs to element `i` of the parameter (row-major, as registered).
#[derive(Debug, Clone, Copy)]
pub struct SlotView<'a, T> {
    name: &'a str,
    state: &'a [T],
    layout: SlotLayout,
    slot: usize,
}

impl<'a, T: Copy> SlotView<'a, T> {
    /// Number of elements (the parameter's length).
    pub fn len(&self) -> usize {
        self.layout.len
    }
    /// Whether the parameter has no elements.
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }
    /// Element `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.layout.len).then(|| self.state[self.layout.index(i, self.slot)])
    }
    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.runs().flatten().copied()
    }
    /// The elements in order as contiguous slices (one per block of 16384 elements).
    pub fn runs(&self) -> impl Iterator<Item = &'a [T]> + 'a {
        self.layout.runs(self.state, self.slot)
    }
    /// Copy the slot into `out` (no allocation).
    ///
    /// # Errors
    /// [`StepError::LengthMismatch`] if `out.len() != self.len()`; `out` is then untouched.
    pub fn copy_to(&self, out: &mut [T]) -> Result<(), StepError> {
        if out.len() != self.len() {
            return Err(StepError::LengthMismatch {
                name: self.name.to_string(),
                what: "out",
                got: out.len(),
                expected: self.len(),
            });
        }
        let mut rest = out;
        for r in self.runs() {
            let (head, tail) = rest.split_at_mut(r.len());
            head.copy_from_slice(r);
            rest = tail;
        }
        Ok(())
    }
}

/// The scalars of the group's next step, known before its gradient
/// ([`Optimizer::next_step`]). Compare [`crate::GroupStepInfo`], which reports the latest
/// step taken.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NextStep {
    /// Completed updates before the step (the schedule is evaluated at this `k`).
    pub k: u64,
    /// Group lr × schedule(`k`): the lr before the learner's own factor.
    pub unfactored_lr: f64,
    /// The learner's lr factor, when it does not depend on the step's gradient or loss
    /// (`None` for AdaGrad-Norm and Polyak steps).
    pub lr_factor: Option<f64>,
    /// The effective lr `γ_k` = `unfactored_lr × lr_factor` the step will use, when known: the
    /// value the step then reports as [`crate::GroupStepInfo::lr`].
    pub lr: Option<f64>,
    /// Averaging weight `c` of the step's iterate, when the lr is known (1 for conversions
    /// that do not average).
    pub c: Option<f64>,
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    fn checked_entry(
        &self,
        name: &str,
        buffers: [(&'static str, usize); 2],
    ) -> Result<&Entry<T>, StepError> {
        let e = &self.entries[self
            .entry_index(name)
            .ok_or_else(|| StepError::UnknownParameter(name.to_string()))?];
        if e.external {
            return Err(StepError::ExternalState(e.name.clone()));
        }
        for (what, got) in buffers {
            if got != e.len {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what,
                    got,
                    expected: e.len,
                });
            }
        }
        Ok(e)
    }

    /// Write the returned point `x` of parameter `name` into `out`, given its current buffer
    /// `value` (`y` in train mode, `x` in eval mode), without changing anything or
    /// allocating. Parameters without state (never stepped) return `value`.
    ///
    /// # Errors
    /// [`StepError::UnknownParameter`], [`StepError::LengthMismatch`],
    /// [`StepError::ExternalState`] for a parameter stepped with [`Optimizer::step_programs`].
    pub fn x_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError> {
        let e = self.checked_entry(name, [("value", value.len()), ("out", out.len())])?;
        if !e.has_state || !self.groups[e.group].train_mode || !self.conversion.has_modes() {
            out.copy_from_slice(value);
            return Ok(());
        }
        let (n_learner, n_slots) = (self.learner.slot_names().len(), self.num_slots());
        let conv = self.conversion.at_step(self.groups[e.group].k);
        e.layout(n_slots).for_each(&e.state, |i, st| {
            out[i] = conv.eval_value(value[i], &st[n_learner..]);
        });
        Ok(())
    }

    /// [`Optimizer::x_into`] under its earlier name (formula: [`Conversion::eval_value`]).
    ///
    /// # Errors
    /// As [`Optimizer::x_into`].
    pub fn eval_params_into(
        &self,
        name: &str,
        value: &[T],
        out: &mut [T],
    ) -> Result<(), StepError> {
        self.x_into(name, value, out)
    }

    /// Write the learner's iterate `z` of parameter `name` into `out`, given its current
    /// buffer `value` (in either mode), without changing anything or allocating. For
    /// Schedule-Free this is the `z` of `y = (1 − β)z + βx`; for last-iterate methods it is
    /// the buffer itself. Parameters without state return `value`.
    ///
    /// # Errors
    /// As [`Optimizer::x_into`].
    pub fn z_into(&self, name: &str, value: &[T], out: &mut [T]) -> Result<(), StepError> {
        let e = self.checked_entry(name, [("value", value.len()), ("out", out.len())])?;
        if !e.has_state {
            out.copy_from_slice(value);
            return Ok(());
        }
        let (n_learner, n_slots) = (self.learner().slot_names().len(), self.num_slots());
        let eval = !self.groups[e.group].train_mode && self.conversion().has_modes();
        if n_slots == 0 {
            out.copy_from_slice(value);
            return Ok(());
        }
        let conv = self.conversion.at_step(self.groups[e.group].k);
        e.layout(n_slots).for_each(&e.state, |i, st| {
            let cs = &st[n_learner..];
            out[i] = if eval {
                conv.iterate_eval(value[i], cs)
            } else {
                conv.iterate(value[i], cs)
            };
        });
        Ok(())
    }

    /// A borrowed view of state slot `slot` (one of [`Optimizer::slot_names`]) of parameter
    /// `name`; no copy. `None` for an unknown name or slot, or before the parameter's first
    /// gradient (no state yet) or for a parameter whose state lives outside
    /// ([`Optimizer::step_programs`]). The slot holds what its name says in train mode; in eval
    /// mode, conversions that swap buffer and slot (Polyak averaging, EMA) hold the
    /// iterate `z` in their `"x"` / `"ema"` slot and the average in the buffer:
    /// [`Optimizer::x_into`] and [`Optimizer::z_into`] read by meaning in both modes.
    pub fn slot(&self, name: &str, slot: &str) -> Option<SlotView<'_, T>> {
        let e = &self.entries[self.entry_index(name)?];
        let offset = self.slot_names().position(|s| s == slot)?;
        (e.has_state && !e.external).then_some(SlotView {
            name: &e.name,
            state: &e.state,
            layout: e.layout(self.num_slots()),
            slot: offset,
        })
    }

    /// Names of the per-element state slots: the learner's (e.g. `"exp_avg_sq"`), then the
    /// conversion's (e.g. `"z"`).
    pub fn slot_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.learner()
            .slot_names()
            .iter()
            .chain(self.conversion().slot_names())
            .copied()
    }

    /// The scalars group `g`'s next step will use, computed now without changing anything:
    /// the scheduled lr, and the learner's lr factor, effective lr and averaging weight when
    /// they do not depend on the step's gradient or loss. ([`Optimizer::group_info`]
    /// reports the latest step taken, so before the first step it holds zeros.) `None` for
    /// a missing group.
    pub fn next_step(&self, g: usize) -> Option<NextStep> {
        let grp = self.groups.get(g)?;
        let k = grp.k;
        let unfactored_lr = grp.config.lr * self.schedule.value(k);
        let known = !self.learner.lr_factor_needs_reductions();
        let (lr_factor, lr) = known.then(|| self.group_lr(grp, &Reductions::NONE)).unzip();
        let c = lr.map(|lr| {
            let mut averaging = grp.averaging;
            self.group_conversion(grp).scalars(&mut averaging, lr, k).1
        });
        Some(NextStep {
            k,
            unfactored_lr,
            lr_factor,
            lr,
            c,
        })
    }
}
