//! Return the learner's last iterate (arXiv 2310.07831, Theorem 1): optimal only together with a
//! decaying schedule such as linear decay.

use super::{AveragingState, Conversion};
use crate::element::Element;
use crate::error::ConfigError;

/// Last iterate: the buffer is `z`, gradients are taken at `z` and `z` is returned:
/// `z ← s·z − γ·d`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastIterate;

impl Conversion for LastIterate {
    type Scalars = ();
    const SLOTS: usize = 0;

    fn name(&self) -> &'static str {
        "last_iterate"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &[]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, _k: u64) -> ((), f64) {
        avg.lr_max = avg.lr_max.max(lr);
        ((), 1.0)
    }
    fn init_slots<T: Element>(&self, _p: T, _slots: &mut [T]) {}
    #[inline(always)]
    fn update<T: Element>(&self, _sc: &(), lr: T, shrink: T, p: &mut T, _slots: &mut [T], d: T) {
        *p = *p * shrink - lr * d;
    }
    #[inline(always)]
    fn iterate<T: Element>(&self, p: T, _slots: &[T]) -> T {
        p
    }
    #[inline(always)]
    fn set_iterate<T: Element>(&self, _sc: &(), p: &mut T, _slots: &mut [T], z_new: T) {
        *p = z_new;
    }
    fn has_modes(&self) -> bool {
        false
    }
}
