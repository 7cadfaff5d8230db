//! Running a core [`ElementProgram`] on candle tensors: each node becomes one elementwise
//! tensor op on the var's device, as candle-nn's own AdamW is written.
//!
//! Each op is one IEEE operation per element, as on the host, so candle's CPU backend gives
//! the core's bits (the parity tests check it):
//! - `x ± c` runs as `affine(1, ±c)` and `c − x` as `affine(−1, c)`: the product by ±1 is
//!   exact, so one rounding remains, also where a kernel fuses the affine into an FMA;
//! - `x · c` runs as `affine(c, −0)`: adding `−0` leaves every result unchanged, including
//!   the sign of a zero product (`+0` would turn `−0` into `+0`);
//! - `x / c`, `c / x`, `max` and `min` with a constant take it as a 0-d tensor, broadcast.
//!
//! One documented difference: candle's `maximum`/`minimum` return the first operand when
//! either is NaN, where the host's `maxNum` returns the number. Only NaN elements differ,
//! which arise only from NaN gradients under `NonFinitePolicy::Propagate`.

use candle_core::{DType, Result, Tensor, WithDType};
use schedulefree::program::{ElementProgram, Op};

use crate::host::HostElement;

/// A register: a constant of the program or a tensor.
#[derive(Clone)]
enum Reg {
    Const(f64),
    T(Tensor),
}

/// The outputs of one program run.
pub(crate) struct Outputs {
    /// The new value; `None` when the program returns the value unchanged (the var then
    /// needs no write, and must not be set from a tensor sharing its storage).
    pub value: Option<Tensor>,
    /// The new state slots, none of them sharing storage with the value.
    pub slots: Vec<Tensor>,
    /// The sum over the elements of each of the program's terms (pre-pass programs), 0-d:
    /// in `f64` where the device has it (exact products of `f32` factors, as the host takes
    /// them), in `T` on Metal. A constant factor multiplies the sum (exact for Prodigy's
    /// factor 1).
    pub terms: Vec<Tensor>,
}

/// The dtype term sums are taken in on `t`'s device.
fn sum_dtype<T: HostElement>(t: &Tensor) -> DType {
    if t.device().is_metal() {
        T::CANDLE_DTYPE
    } else {
        DType::F64
    }
}

/// `program` over every element of `value`, `grad` and `slots` (same shape; element type
/// `T`). `value` and `grad` should be detached from candle's graph, so that nothing the
/// optimizer keeps records operations for backprop.
pub(crate) fn run<T: HostElement>(
    program: &ElementProgram,
    value: &Tensor,
    grad: Option<&Tensor>,
    slots: &[Tensor],
) -> Result<Outputs> {
    if value.elem_count() == 0 {
        // candle returns empty operands themselves from ops: nothing to compute, and the
        // value must not be written from a tensor sharing its storage.
        return Ok(Outputs {
            value: None,
            slots: program
                .slots_out()
                .iter()
                .map(|_| value.zeros_like())
                .collect::<Result<_>>()?,
            terms: program
                .terms()
                .iter()
                .map(|_| Tensor::zeros((), sum_dtype::<T>(value), value.device()))
                .collect::<Result<_>>()?,
        });
    }
    let ops = program.ops();
    // The last node reading each node, so registers are freed as early as possible.
    let mut last_use: Vec<usize> = (0..ops.len()).collect();
    for (i, op) in ops.iter().enumerate() {
        for a in op.operands().into_iter().flatten() {
            last_use[a] = i;
        }
    }
    let factors = program.terms().iter().flat_map(|&(a, b)| [a, b]);
    for o in program
        .slots_out()
        .iter()
        .copied()
        .chain([program.value_out()])
        .chain(factors)
    {
        last_use[o] = usize::MAX;
    }
    let scalar = |c: f64| Tensor::new(<T as WithDType>::from_f64(c), value.device());
    let full = |c: f64| scalar(c)?.broadcast_as(value.shape())?.contiguous();
    let tensor = |r: Reg| match r {
        Reg::T(t) => Ok(t),
        Reg::Const(c) => full(c),
    };
    let mut regs: Vec<Option<Reg>> = Vec::with_capacity(ops.len());
    for (i, &op) in ops.iter().enumerate() {
        let [a, b] = op.operands();
        let x = a.and_then(|a| regs[a].clone());
        let y = b.and_then(|b| regs[b].clone());
        let out = match (op, x, y) {
            (Op::Value, ..) => Reg::T(value.clone()),
            (Op::Grad, ..) => Reg::T(match grad {
                Some(g) => g.clone(),
                None => value.zeros_like()?,
            }),
            (Op::Slot(j), ..) => Reg::T(match slots.get(j) {
                Some(s) => s.clone(),
                None => value.zeros_like()?,
            }),
            (Op::Const(c), ..) => Reg::Const(c),
            (Op::Neg(_), Some(x), _) => Reg::T(tensor(x)?.neg()?),
            (Op::Abs(_), Some(x), _) => Reg::T(tensor(x)?.abs()?),
            (Op::Sqrt(_), Some(x), _) => Reg::T(tensor(x)?.sqrt()?),
            (op, Some(x), Some(y)) => Reg::T(binary(op, x, y, &scalar, &tensor)?),
            _ => candle_core::bail!("malformed element program: node {i} lacks an operand"),
        };
        regs.push(Some(out));
        for r in op.operands().into_iter().flatten() {
            if last_use[r] == i {
                regs[r] = None;
            }
        }
    }
    let is_value = |o: usize| matches!(ops.get(o), Some(Op::Value));
    let out = |o: usize| match regs.get(o).cloned().flatten() {
        // The var is overwritten in place after the step: slots must not share its storage.
        Some(Reg::T(t)) if is_value(o) => t.copy(),
        Some(r) => tensor(r),
        None => full(f64::NAN),
    };
    let value_out = program.value_out();
    let wide = sum_dtype::<T>(value);
    // A constant factor (Prodigy's `|s|·1`) multiplies the sum, not every element.
    let constant = |o: usize| match ops.get(o) {
        Some(Op::Const(c)) => Some(*c),
        _ => None,
    };
    let sum = |o: usize| out(o)?.to_dtype(wide)?.sum_all();
    let terms = program
        .terms()
        .iter()
        .map(|&(a, b)| match (constant(a), constant(b)) {
            (_, Some(c)) => sum(a)?.affine(c, 0.0),
            (Some(c), None) => sum(b)?.affine(c, 0.0),
            (None, None) => out(a)?
                .to_dtype(wide)?
                .mul(&out(b)?.to_dtype(wide)?)?
                .sum_all(),
        })
        .collect::<Result<_>>()?;
    Ok(Outputs {
        terms,
        value: if is_value(value_out) {
            None
        } else {
            Some(out(value_out)?)
        },
        slots: program
            .slots_out()
            .iter()
            .map(|&o| out(o))
            .collect::<Result<_>>()?,
    })
}

/// A binary op; constants become affine coefficients or 0-d tensors.
fn binary(
    op: Op,
    x: Reg,
    y: Reg,
    scalar: &impl Fn(f64) -> Result<Tensor>,
    tensor: &impl Fn(Reg) -> Result<Tensor>,
) -> Result<Tensor> {
    use Reg::{Const as C, T};
    match (op, x, y) {
        (Op::Add(..), T(x), C(c)) | (Op::Add(..), C(c), T(x)) => x.affine(1.0, c),
        // x − c = x + (−c) exactly.
        (Op::Sub(..), T(x), C(c)) => x.affine(1.0, -c),
        // c − x = (−1)·x + c: the product is exact.
        (Op::Sub(..), C(c), T(x)) => x.affine(-1.0, c),
        (Op::Mul(..), T(x), C(c)) | (Op::Mul(..), C(c), T(x)) => x.affine(c, -0.0),
        (Op::Div(..), T(x), C(c)) => x.broadcast_div(&scalar(c)?),
        (Op::Div(..), C(c), T(x)) => scalar(c)?.broadcast_div(&x),
        (Op::Max(..), T(x), C(c)) | (Op::Max(..), C(c), T(x)) => x.broadcast_maximum(&scalar(c)?),
        (Op::Min(..), T(x), C(c)) | (Op::Min(..), C(c), T(x)) => x.broadcast_minimum(&scalar(c)?),
        (op, x, y) => {
            let (x, y) = (tensor(x)?, tensor(y)?);
            match op {
                Op::Add(..) => x.add(&y),
                Op::Sub(..) => x.sub(&y),
                Op::Mul(..) => x.mul(&y),
                Op::Div(..) => x.div(&y),
                Op::Max(..) => x.maximum(&y),
                Op::Min(..) => x.minimum(&y),
                _ => candle_core::bail!("not a binary op: {op:?}"),
            }
        }
    }
}
