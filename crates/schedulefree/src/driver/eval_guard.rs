//! Scoped evaluation at the returned point `x`: buffers hold `x` while the guard lives and
//! get `y` back bit for bit when it drops.

use std::ops::{Deref, DerefMut};

use super::Optimizer;
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::StepError;
use crate::learner::Learner;
use crate::param::Param;
use crate::schedule::Schedule;

/// Parameters temporarily holding the returned point `x`; on drop every buffer gets its
/// training value `y` back bit for bit (from a copy taken at creation). Dereferences to the
/// parameter slice for evaluation code.
///
/// ```
/// use schedulefree::{AdamWScheduleFree, Param};
/// let mut opt = AdamWScheduleFree { lr: 0.1, ..Default::default() }.build::<f32>()?;
/// opt.add_param("w", &[3])?;
/// let mut w = vec![1.0f32, -2.0, 0.5];
/// for _ in 0..5 {
///     let g = w.clone();
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// let (y, mut x) = (w.clone(), vec![0.0f32; 3]);
/// opt.x_into("w", &w, &mut x)?;
/// {
///     let mut ps = [Param::no_grad("w", &mut w)];
///     let guard = opt.eval_guard(&mut ps)?;
///     assert_eq!(guard[0].value, x.as_slice()); // evaluate here: the buffer holds x
/// }
/// assert_eq!(w, y); // y is back, bit for bit
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct EvalGuard<'p, 'a, T: Copy> {
    params: &'p mut [Param<'a, T>],
    backup: Vec<Option<Vec<T>>>,
}

impl<'a, T: Copy> Deref for EvalGuard<'_, 'a, T> {
    type Target = [Param<'a, T>];
    fn deref(&self) -> &Self::Target {
        self.params
    }
}

impl<T: Copy> DerefMut for EvalGuard<'_, '_, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.params
    }
}

impl<T: Copy> Drop for EvalGuard<'_, '_, T> {
    fn drop(&mut self) {
        for (p, b) in self.params.iter_mut().zip(&self.backup) {
            if let Some(b) = b {
                p.value.copy_from_slice(b);
            }
        }
    }
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Write `x` into every passed buffer until the returned guard is dropped, then restore
    /// `y` exactly. Takes one copy of each stepped parameter (allocates; not for the hot
    /// loop). Parameters without state, and optimizers in eval mode, are left as they are.
    ///
    /// # Errors
    /// [`StepError::UnknownParameter`], [`StepError::LengthMismatch`],
    /// [`StepError::ExternalState`] for a parameter stepped with
    /// [`Optimizer::step_programs`]; nothing changes.
    pub fn eval_guard<'p, 'a>(
        &self,
        params: &'p mut [Param<'a, T>],
    ) -> Result<EvalGuard<'p, 'a, T>, StepError> {
        let mut entries = Vec::with_capacity(params.len());
        for p in params.iter() {
            let idx = self
                .entry_index(p.name)
                .ok_or_else(|| StepError::UnknownParameter(p.name.to_string()))?;
            let e = &self.entries[idx];
            // Checked before any buffer is written, so that an error changes nothing.
            if e.external {
                return Err(StepError::ExternalState(e.name.clone()));
            }
            if p.value.len() != e.len {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what: "value",
                    got: p.value.len(),
                    expected: e.len,
                });
            }
            entries.push(e);
        }
        let mut backup = Vec::with_capacity(params.len());
        for (p, e) in params.iter_mut().zip(entries) {
            if !e.has_state || !self.groups[e.group].train_mode || !self.conversion().has_modes() {
                backup.push(None);
                continue;
            }
            let y = p.value.to_vec();
            self.eval_params_into(p.name, &y, p.value)?;
            backup.push(Some(y));
        }
        Ok(EvalGuard { params, backup })
    }
}
