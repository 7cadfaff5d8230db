//! Element programs: the per-element formulas of one composed optimizer at one step, written
//! down as a short straight-line program over the element's inputs, for runtimes that keep
//! the parameters somewhere the host kernel cannot reach (a GPU tensor library).
//!
//! The program is not a second copy of the maths: it is recorded by running the same generic
//! code the fused kernel runs (learner, conversion, decay terms) on a tracing element type,
//! with this step's scalars (lr, averaging weight `c`, bias corrections, decay coefficients)
//! folded in as constants of the element type. Replayed on the host in the same element type
//! it gives the kernel's bits (a test checks every learner × conversion); a tensor library
//! that evaluates each [`Op`] as one IEEE operation per element gives them too, up to its own
//! fusing of products and sums.
//!
//! ```
//! use schedulefree::program::ElementProgram;
//! # fn show(p: &ElementProgram) {
//! for (i, op) in p.ops().iter().enumerate() {
//!     println!("%{i} = {op:?}");
//! }
//! println!("value' = %{}, slots' = {:?}", p.value_out(), p.slots_out());
//! # }
//! ```

mod conformance;
mod eval;
mod kernel;
pub(crate) mod trace;

pub use conformance::{Evaluated, check_evaluator, covered_compositions};
pub(crate) use kernel::{
    eval_program, init_program, mode_program, prepass_program, update_program,
};

use crate::element::Dtype;

/// One node of an [`ElementProgram`]: an input, a constant, or an IEEE operation on earlier
/// nodes (operands are node indices, always smaller than the node's own).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Op {
    /// The parameter buffer's value (`y` for Schedule-Free in train mode).
    Value,
    /// The gradient at the value.
    Grad,
    /// State slot `j` (learner slots first, then the conversion's, as
    /// [`crate::Optimizer::slot_names`] lists them).
    Slot(usize),
    /// A constant, exactly representable in the program's element type (rounded to it once,
    /// as the kernel rounds its `f64` scalars).
    Const(f64),
    /// `−a`.
    Neg(usize),
    /// `|a|`.
    Abs(usize),
    /// `√a`, correctly rounded.
    Sqrt(usize),
    /// `a + b`.
    Add(usize, usize),
    /// `a − b`.
    Sub(usize, usize),
    /// `a · b`.
    Mul(usize, usize),
    /// `a / b`, correctly rounded (not a product with a reciprocal).
    Div(usize, usize),
    /// IEEE `maxNum`: the larger, or the other operand when one is NaN (Rust's `max`).
    Max(usize, usize),
    /// IEEE `minNum` (Rust's `min`).
    Min(usize, usize),
}

/// Why a program could not be recorded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramError {
    /// The formulas did something a straight-line program cannot express, e.g. compared two
    /// element values or took a transcendental function of one.
    #[error(
        "the element update cannot be written as a program: it uses {what} of an element value"
    )]
    Untraceable {
        /// The operation.
        what: &'static str,
    },
    /// The step needs more than an element program: a pass over every element before the
    /// update, or a reduction over rows after it.
    #[error("element programs do not cover {what}")]
    Unsupported {
        /// What is not covered.
        what: &'static str,
    },
    /// A program built with [`ElementProgram::from_ops`] reads a node that is not before it,
    /// or an input or output out of range.
    #[error("malformed program: node {node} {what}")]
    Malformed {
        /// The offending node (or output) index.
        node: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A host evaluation in another element type than the program's constants were rounded to.
    #[error("the program was recorded for {program:?} elements, not {found:?}")]
    Dtype {
        /// The program's element type.
        program: Dtype,
        /// The type it was run in.
        found: Dtype,
    },
    /// A host evaluation got the wrong number of state slots.
    #[error("the program reads {expected} state slots, {found} were given")]
    Slots {
        /// Slots the program has.
        expected: usize,
        /// Slots passed.
        found: usize,
    },
}

/// The per-element work of one parameter tensor at one step: reads [`Op::Value`],
/// [`Op::Grad`] and the state slots, and gives the new value, the new slots and the learner's
/// direction `d` (whose squares the step's diagnostics sum).
///
/// Apply it elementwise: every element of a tensor runs the same program. Nodes are in
/// evaluation order; only nodes some output needs are kept.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ElementProgram {
    dtype: Dtype,
    n_slots: usize,
    ops: Vec<Op>,
    value_out: usize,
    slots_out: Vec<usize>,
    direction: Option<usize>,
    terms: Vec<(usize, usize)>,
}

impl ElementProgram {
    /// Keep the nodes the outputs need, renumbered in order.
    fn new(
        dtype: Dtype,
        n_slots: usize,
        ops: &[Op],
        value_out: usize,
        slots_out: &[usize],
        direction: Option<usize>,
    ) -> Self {
        Self::with_terms(dtype, n_slots, ops, (value_out, slots_out, direction), &[])
    }

    /// [`ElementProgram::new`] with per-element terms to be summed.
    fn with_terms(
        dtype: Dtype,
        n_slots: usize,
        ops: &[Op],
        (value_out, slots_out, direction): (usize, &[usize], Option<usize>),
        terms: &[(usize, usize)],
    ) -> Self {
        let mut live = vec![false; ops.len()];
        let roots = slots_out
            .iter()
            .copied()
            .chain([value_out])
            .chain(direction)
            .chain(terms.iter().flat_map(|&(a, b)| [a, b]));
        for r in roots {
            live[r] = true;
        }
        for i in (0..ops.len()).rev() {
            if live[i] {
                for a in ops[i].operands().into_iter().flatten() {
                    live[a] = true;
                }
            }
        }
        let mut index = vec![usize::MAX; ops.len()];
        let mut kept = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if live[i] {
                index[i] = kept.len();
                kept.push(renumber(*op, &index));
            }
        }
        ElementProgram {
            dtype,
            n_slots,
            ops: kept,
            value_out: index[value_out],
            slots_out: slots_out.iter().map(|&s| index[s]).collect(),
            direction: direction.map(|d| index[d]),
            terms: terms.iter().map(|&(a, b)| (index[a], index[b])).collect(),
        }
    }

    /// A program from its parts, checked: every operand precedes its node, slot inputs are
    /// below `n_slots`, constants are representable in `dtype`, `slots_out` has `n_slots`
    /// entries and every output names a node. (Recorded programs come from
    /// [`crate::Optimizer::step_programs`]; this is for tests and tools of other evaluators.)
    ///
    /// # Errors
    /// [`ProgramError::Malformed`] naming the first offending node.
    pub fn from_ops(
        dtype: Dtype,
        n_slots: usize,
        ops: Vec<Op>,
        value_out: usize,
        slots_out: Vec<usize>,
        direction: Option<usize>,
    ) -> Result<Self, ProgramError> {
        let bad = |node, what| Err(ProgramError::Malformed { node, what });
        for (i, op) in ops.iter().enumerate() {
            if op.operands().into_iter().flatten().any(|a| a >= i) {
                return bad(i, "reads a node that is not before it");
            }
            match *op {
                Op::Slot(j) if j >= n_slots => return bad(i, "reads a slot out of range"),
                Op::Const(c)
                    if dtype == Dtype::F32
                        && f64::from(c as f32).to_bits() != c.to_bits()
                        && !c.is_nan() =>
                {
                    return bad(i, "is a constant not representable in f32");
                }
                _ => {}
            }
        }
        if slots_out.len() != n_slots {
            return bad(slots_out.len(), "slot outputs for another number of slots");
        }
        let mut outputs = slots_out
            .iter()
            .copied()
            .chain([value_out])
            .chain(direction);
        if let Some(o) = outputs.find(|&o| o >= ops.len()) {
            return bad(o, "is an output past the last node");
        }
        Ok(ElementProgram {
            dtype,
            n_slots,
            ops,
            value_out,
            slots_out,
            direction,
            terms: Vec::new(),
        })
    }

    /// The element type the constants are rounded to and the operations run in.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Number of state slots read and written.
    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    /// The nodes, in evaluation order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The node holding the new parameter value.
    pub fn value_out(&self) -> usize {
        self.value_out
    }

    /// The nodes holding the new state slots (`n_slots` of them; a slot the program leaves
    /// unchanged is its own [`Op::Slot`] node).
    pub fn slots_out(&self) -> &[usize] {
        &self.slots_out
    }

    /// The node holding the learner's direction `d`, for update programs.
    pub fn direction(&self) -> Option<usize> {
        self.direction
    }

    /// For pre-pass programs ([`crate::PrepassProgram`]): the per-element terms to sum over
    /// the tensor, each the product `a·b` of two nodes taken in `f64` (exact for `f32`
    /// nodes: widen both, then multiply). Empty for other programs.
    pub fn terms(&self) -> &[(usize, usize)] {
        &self.terms
    }
}

impl Op {
    /// The nodes this one reads (inputs and constants read none).
    pub fn operands(self) -> [Option<usize>; 2] {
        match self {
            Op::Value | Op::Grad | Op::Slot(_) | Op::Const(_) => [None, None],
            Op::Neg(a) | Op::Abs(a) | Op::Sqrt(a) => [Some(a), None],
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Div(a, b)
            | Op::Max(a, b)
            | Op::Min(a, b) => [Some(a), Some(b)],
        }
    }
}

fn renumber(op: Op, index: &[usize]) -> Op {
    let i = |a: usize| index[a];
    match op {
        Op::Value | Op::Grad | Op::Slot(_) | Op::Const(_) => op,
        Op::Neg(a) => Op::Neg(i(a)),
        Op::Abs(a) => Op::Abs(i(a)),
        Op::Sqrt(a) => Op::Sqrt(i(a)),
        Op::Add(a, b) => Op::Add(i(a), i(b)),
        Op::Sub(a, b) => Op::Sub(i(a), i(b)),
        Op::Mul(a, b) => Op::Mul(i(a), i(b)),
        Op::Div(a, b) => Op::Div(i(a), i(b)),
        Op::Max(a, b) => Op::Max(i(a), i(b)),
        Op::Min(a, b) => Op::Min(i(a), i(b)),
    }
}

#[cfg(test)]
mod tests;
