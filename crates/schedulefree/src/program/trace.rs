//! Recording the element formulas: [`Trace`] is an [`Element`] whose arithmetic appends to a
//! tape instead of computing, so the generic formulas of the learners, conversions and decay
//! terms (the same code the fused kernel runs) write down their own program.
//!
//! Constants fold as they meet: an operation on two constants computes in the element type
//! `E` (so a folded constant has the bits the kernel would compute), and only operations
//! that touch an input are recorded. Comparisons and tests are answered for constants (the
//! formulas branch only on their scalars, never on element values); anything the program
//! cannot express (a comparison of inputs, a transcendental function of one) marks the
//! recording as untraceable rather than guessing.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::num::FpCategory;
use std::ops::{Add, Div, Mul, Neg, Rem, Sub};

use num_traits::{Float, Num, NumCast, One, ToPrimitive, Zero};

use super::{Op, ProgramError};
use crate::element::{Dtype, Element};

/// A traced element: a constant of `E`, or the index of a recorded node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trace<E> {
    Const(E),
    Node(usize),
}

struct Tape {
    ops: Vec<Op>,
    /// The first operation the program cannot express.
    untraceable: Option<&'static str>,
}

thread_local! {
    static TAPE: RefCell<Option<Tape>> = const { RefCell::new(None) };
}

/// Run `f` with a fresh tape and return what it recorded (`f` makes its inputs with
/// [`Trace::input`] and turns its outputs into nodes with [`Trace::node`]).
///
/// # Errors
/// [`ProgramError::Untraceable`] if `f` did something a program cannot express.
pub(crate) fn record<R>(f: impl FnOnce() -> R) -> Result<(Vec<Op>, R), ProgramError> {
    let fresh = Tape {
        ops: Vec::new(),
        untraceable: None,
    };
    if TAPE.with_borrow(Option::is_some) {
        return Err(ProgramError::Untraceable {
            what: "a recording inside a recording",
        });
    }
    TAPE.set(Some(fresh));
    // Reset the tape even if `f` unwinds, so the thread can record again.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            TAPE.set(None);
        }
    }
    let _reset = Reset;
    let out = f();
    let tape = TAPE.take().unwrap_or(Tape {
        ops: Vec::new(),
        untraceable: Some("a lost tape"),
    });
    match tape.untraceable {
        Some(what) => Err(ProgramError::Untraceable { what }),
        None => Ok((tape.ops, out)),
    }
}

/// Append `op`; its node index. Outside a recording (not reachable: nodes exist only inside
/// one) nothing is recorded.
fn push(op: Op) -> usize {
    TAPE.with_borrow_mut(|t| match t {
        Some(t) => {
            t.ops.push(op);
            t.ops.len() - 1
        }
        None => 0,
    })
}

fn untraceable(what: &'static str) {
    TAPE.with_borrow_mut(|t| {
        if let Some(t) = t
            && t.untraceable.is_none()
        {
            t.untraceable = Some(what);
        }
    });
}

impl<E: Element> Trace<E> {
    /// A new input node.
    pub(crate) fn input(op: Op) -> Self {
        Trace::Node(push(op))
    }

    /// The node holding this value (a constant gets one).
    pub(crate) fn node(self) -> usize {
        match self {
            Trace::Node(i) => i,
            Trace::Const(c) => push(Op::Const(c.f64())),
        }
    }

    fn constant(self, what: &'static str) -> Option<E> {
        match self {
            Trace::Const(c) => Some(c),
            Trace::Node(_) => {
                untraceable(what);
                None
            }
        }
    }

    fn unary(
        self,
        fold: impl FnOnce(E) -> E,
        op: Option<fn(usize) -> Op>,
        what: &'static str,
    ) -> Self {
        match (self, op) {
            (Trace::Const(a), _) => Trace::Const(fold(a)),
            (Trace::Node(a), Some(op)) => Trace::Node(push(op(a))),
            (Trace::Node(_), None) => {
                untraceable(what);
                Trace::Const(E::nan())
            }
        }
    }

    fn binary(
        self,
        rhs: Self,
        fold: impl FnOnce(E, E) -> E,
        op: Option<fn(usize, usize) -> Op>,
        what: &'static str,
    ) -> Self {
        match (self, rhs, op) {
            (Trace::Const(a), Trace::Const(b), _) => Trace::Const(fold(a, b)),
            (_, _, Some(op)) => {
                let a = self.node();
                Trace::Node(push(op(a, rhs.node())))
            }
            (_, _, None) => {
                untraceable(what);
                Trace::Const(E::nan())
            }
        }
    }

    fn test(self, f: impl FnOnce(E) -> bool, what: &'static str) -> bool {
        self.constant(what).is_some_and(f)
    }
}

impl<E: Element> Default for Trace<E> {
    fn default() -> Self {
        Trace::Const(E::zero())
    }
}

impl<E: Element> PartialEq for Trace<E> {
    fn eq(&self, other: &Self) -> bool {
        match (
            self.constant("a comparison"),
            other.constant("a comparison"),
        ) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl<E: Element> PartialOrd for Trace<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (
            self.constant("a comparison"),
            other.constant("a comparison"),
        ) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        }
    }
}

macro_rules! binary_op {
    ($tr:ident, $f:ident, $op:expr) => {
        impl<E: Element> $tr for Trace<E> {
            type Output = Self;
            fn $f(self, rhs: Self) -> Self {
                self.binary(rhs, |a, b| a.$f(b), $op, stringify!($f))
            }
        }
    };
}

binary_op!(Add, add, Some(Op::Add));
binary_op!(Sub, sub, Some(Op::Sub));
binary_op!(Mul, mul, Some(Op::Mul));
binary_op!(Div, div, Some(Op::Div));
binary_op!(Rem, rem, None);

impl<E: Element> Neg for Trace<E> {
    type Output = Self;
    fn neg(self) -> Self {
        self.unary(|a| -a, Some(Op::Neg), "neg")
    }
}

impl<E: Element> Zero for Trace<E> {
    fn zero() -> Self {
        Trace::Const(E::zero())
    }
    fn is_zero(&self) -> bool {
        self.test(|a| a.is_zero(), "is_zero")
    }
}

impl<E: Element> One for Trace<E> {
    fn one() -> Self {
        Trace::Const(E::one())
    }
}

impl<E: Element> Num for Trace<E> {
    type FromStrRadixErr = E::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        E::from_str_radix(s, radix).map(Trace::Const)
    }
}

impl<E: Element> ToPrimitive for Trace<E> {
    fn to_i64(&self) -> Option<i64> {
        self.constant("to_i64").and_then(|a| a.to_i64())
    }
    fn to_u64(&self) -> Option<u64> {
        self.constant("to_u64").and_then(|a| a.to_u64())
    }
    fn to_f64(&self) -> Option<f64> {
        self.constant("to_f64").and_then(|a| a.to_f64())
    }
}

impl<E: Element> NumCast for Trace<E> {
    fn from<N: ToPrimitive>(n: N) -> Option<Self> {
        <E as NumCast>::from(n).map(Trace::Const)
    }
}

/// Methods the program records.
macro_rules! recorded_unary {
    ($($f:ident => $op:expr),*) => {$(
        fn $f(self) -> Self {
            self.unary(|a| a.$f(), Some($op), stringify!($f))
        }
    )*};
}

/// Methods computed on constants only.
macro_rules! folded_unary {
    ($($f:ident),*) => {$(
        fn $f(self) -> Self {
            self.unary(|a| a.$f(), None, stringify!($f))
        }
    )*};
}

macro_rules! folded_binary {
    ($($f:ident),*) => {$(
        fn $f(self, other: Self) -> Self {
            self.binary(other, |a, b| a.$f(b), None, stringify!($f))
        }
    )*};
}

macro_rules! tests {
    ($($f:ident),*) => {$(
        fn $f(self) -> bool {
            self.test(|a| a.$f(), stringify!($f))
        }
    )*};
}

macro_rules! constants {
    ($($f:ident),*) => {$(
        fn $f() -> Self {
            Trace::Const(E::$f())
        }
    )*};
}

impl<E: Element> Float for Trace<E> {
    constants!(
        nan,
        infinity,
        neg_infinity,
        neg_zero,
        min_value,
        min_positive_value,
        max_value,
        epsilon
    );
    tests!(
        is_nan,
        is_infinite,
        is_finite,
        is_normal,
        is_sign_positive,
        is_sign_negative
    );
    recorded_unary!(abs => Op::Abs, sqrt => Op::Sqrt);
    folded_unary!(
        floor, ceil, round, trunc, fract, signum, recip, exp, exp2, ln, log2, log10, cbrt, sin,
        cos, tan, asin, acos, atan, exp_m1, ln_1p, sinh, cosh, tanh, asinh, acosh, atanh
    );
    folded_binary!(powf, log, abs_sub, hypot, atan2);
    // The defaults would compute these from other operations: fold with the type's own.
    folded_unary!(to_degrees, to_radians);

    fn max(self, other: Self) -> Self {
        self.binary(other, E::max, Some(Op::Max), "max")
    }
    fn min(self, other: Self) -> Self {
        self.binary(other, E::min, Some(Op::Min), "min")
    }
    fn classify(self) -> FpCategory {
        self.constant("classify")
            .map_or(FpCategory::Nan, |a| a.classify())
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        // A fused multiply-add rounds once: not a product then a sum.
        match (self, a, b) {
            (Trace::Const(s), Trace::Const(a), Trace::Const(b)) => Trace::Const(s.mul_add(a, b)),
            _ => {
                untraceable("mul_add");
                Trace::Const(E::nan())
            }
        }
    }
    fn powi(self, n: i32) -> Self {
        self.unary(|a| a.powi(n), None, "powi")
    }
    fn sin_cos(self) -> (Self, Self) {
        (self.sin(), self.cos())
    }
    fn integer_decode(self) -> (u64, i16, i8) {
        self.constant("integer_decode")
            .map_or((0, 0, 0), |a| a.integer_decode())
    }
}

impl<E: Element> crate::element::sealed::Sealed for Trace<E> {}

impl<E: Element> Element for Trace<E> {
    const DTYPE: Dtype = E::DTYPE;
    fn of(v: f64) -> Self {
        Trace::Const(E::of(v))
    }
    fn f64(self) -> f64 {
        self.constant("f64").map_or(f64::NAN, |a| a.f64())
    }
}
