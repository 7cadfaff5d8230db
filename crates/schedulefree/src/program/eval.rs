//! Running an [`ElementProgram`] on host elements: the reference any other evaluator (a
//! tensor library's) is tested against.

use super::{ElementProgram, Op, ProgramError};
use crate::element::Element;

impl ElementProgram {
    /// Run the program on one element: `value` and `slots` are updated in place; returns the
    /// learner's direction (0 for programs without one). `regs` is scratch space (reused
    /// across calls to avoid allocating).
    ///
    /// # Errors
    /// [`ProgramError::Dtype`] if `T` is not [`ElementProgram::dtype`];
    /// [`ProgramError::Slots`] if `slots.len()` is not [`ElementProgram::n_slots`]. Nothing
    /// is changed on error.
    pub fn apply<T: Element>(
        &self,
        value: &mut T,
        grad: T,
        slots: &mut [T],
        regs: &mut Vec<T>,
    ) -> Result<T, ProgramError> {
        if T::DTYPE != self.dtype {
            return Err(ProgramError::Dtype {
                program: self.dtype,
                found: T::DTYPE,
            });
        }
        if slots.len() != self.n_slots {
            return Err(ProgramError::Slots {
                expected: self.n_slots,
                found: slots.len(),
            });
        }
        regs.clear();
        for &op in &self.ops {
            let r = |a: usize| regs[a];
            let v = match op {
                Op::Value => *value,
                Op::Grad => grad,
                Op::Slot(j) => slots[j],
                Op::Const(c) => T::of(c),
                Op::Neg(a) => -r(a),
                Op::Abs(a) => r(a).abs(),
                Op::Sqrt(a) => r(a).sqrt(),
                Op::Add(a, b) => r(a) + r(b),
                Op::Sub(a, b) => r(a) - r(b),
                Op::Mul(a, b) => r(a) * r(b),
                Op::Div(a, b) => r(a) / r(b),
                Op::Max(a, b) => r(a).max(r(b)),
                Op::Min(a, b) => r(a).min(r(b)),
            };
            regs.push(v);
        }
        *value = regs[self.value_out];
        for (s, &o) in slots.iter_mut().zip(&self.slots_out) {
            *s = regs[o];
        }
        Ok(self.direction.map_or(T::zero(), |d| regs[d]))
    }

    /// The element's [`ElementProgram::terms`] (`a·b` in `f64`) from the `regs` an
    /// [`ElementProgram::apply`] call of this program left.
    ///
    /// # Errors
    /// [`ProgramError::Malformed`] if `regs` does not hold one value per node.
    pub fn term_values<T: Element>(&self, regs: &[T]) -> Result<Vec<f64>, ProgramError> {
        if regs.len() != self.ops.len() {
            return Err(ProgramError::Malformed {
                node: regs.len(),
                what: "registers given for another number of nodes",
            });
        }
        Ok(self
            .terms
            .iter()
            .map(|&(a, b)| regs[a].f64() * regs[b].f64())
            .collect())
    }
}
