//! Running a core [`ElementProgram`] on burn tensors: each node becomes one elementwise
//! tensor op on the parameter's device (burn's fusion backends fuse the chain into one
//! kernel), constants become scalar operands. Registers are dropped after their last use, so
//! backends that update uniquely owned tensors in place can do so.
//!
//! Each op is one IEEE operation per element, as on the host, so a backend that neither
//! fuses products into sums nor approximates division and square root gives the core's bits
//! (burn's flex backend does; the parity tests check it). One documented difference: `max`
//! and `min` run as burn's `clamp_min`/`clamp_max` against a constant and `max_pair`/
//! `min_pair` between tensors, which may return a NaN operand where the host's `maxNum`
//! returns the other one. Only NaN elements differ, which arise only from NaN gradients
//! under `NonFinitePolicy::Propagate` (Cocob's slots can then hold NaN on one path and a
//! number on the other; the value is NaN on both).

use burn::tensor::{DType, Tensor};
use schedulefree::program::{ElementProgram, Op};

/// A register: a constant of the program or a tensor.
// A program has a few dozen registers: boxing the tensor would save little and allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Reg {
    Const(f64),
    T(Tensor<1>),
}

/// The outputs of one program run over a flattened tensor.
pub(crate) struct Outputs {
    /// The new value.
    pub value: Tensor<1>,
    /// The new state slots.
    pub slots: Vec<Tensor<1>>,
    /// The sum over the elements of each of the program's terms (pre-pass programs), one
    /// element each: in `f64` where the device has it (exact products of `f32` factors, as
    /// the host takes them), else in `f32`. A constant factor multiplies the sum (exact for
    /// Prodigy's factor 1).
    pub terms: Vec<Tensor<1>>,
}

/// `program` over every element of `value` (flattened), `grad` and `slots` (same length).
/// Taking the slots by value lets their buffers be reused once read.
pub(crate) fn run(
    program: &ElementProgram,
    value: &Tensor<1>,
    grad: Option<&Tensor<1>>,
    slots: Vec<Tensor<1>>,
) -> Outputs {
    let ops = program.ops();
    // The last node reading each node; outputs live to the end.
    let mut last_use: Vec<usize> = (0..ops.len()).collect();
    for (i, op) in ops.iter().enumerate() {
        for a in op.operands().into_iter().flatten() {
            last_use[a] = i;
        }
    }
    let outputs = program.slots_out().iter().copied();
    let factors = program.terms().iter().flat_map(|&(a, b)| [a, b]);
    for o in outputs.chain([program.value_out()]).chain(factors) {
        last_use[o] = usize::MAX;
    }
    let full = |c: f64| value.full_like(c);
    let tensor = |r: Reg| match r {
        Reg::T(t) => t,
        Reg::Const(c) => full(c),
    };
    let mut slots: Vec<Option<Tensor<1>>> = slots.into_iter().map(Some).collect();
    let mut regs: Vec<Option<Reg>> = Vec::with_capacity(ops.len());
    for (i, &op) in ops.iter().enumerate() {
        // An operand read for the last time is moved out, so the op may own its buffer.
        let [a, b] = op.operands();
        let take_b = b.is_some_and(|b| last_use[b] == i);
        let take_a = a.is_some_and(|a| last_use[a] == i && Some(a) != b);
        let x = a.map(|a| fetch(&mut regs, a, take_a));
        let y = b.map(|b| fetch(&mut regs, b, take_b));
        let out = match (op, x, y) {
            (Op::Value, ..) => Reg::T(value.clone()),
            (Op::Grad, ..) => Reg::T(grad.map_or_else(|| full(0.0), Clone::clone)),
            (Op::Slot(j), ..) => Reg::T(
                slots
                    .get_mut(j)
                    .and_then(Option::take)
                    .unwrap_or_else(|| full(0.0)),
            ),
            (Op::Const(c), ..) => Reg::Const(c),
            (Op::Neg(_), Some(x), _) => Reg::T(tensor(x).neg()),
            (Op::Abs(_), Some(x), _) => Reg::T(tensor(x).abs()),
            (Op::Sqrt(_), Some(x), _) => Reg::T(tensor(x).sqrt()),
            (op, Some(x), Some(y)) => Reg::T(binary(op, x, y, tensor)),
            // Unreachable: every op has its operands.
            _ => Reg::Const(f64::NAN),
        };
        regs.push(Some(out));
    }
    let out = |i: usize| regs[i].clone().map_or_else(|| full(f64::NAN), tensor);
    let wide = value.device().supports_dtype(DType::F64);
    let widen = |t: Tensor<1>| if wide { t.cast(DType::F64) } else { t };
    // A constant factor (Prodigy's `|s|·1`) multiplies the sum, not every element.
    let constant = |o: usize| match program.ops().get(o) {
        Some(Op::Const(c)) => Some(*c),
        _ => None,
    };
    let terms = program
        .terms()
        .iter()
        .map(|&(a, b)| match (constant(a), constant(b)) {
            (_, Some(c)) => widen(out(a)).sum().mul_scalar(c),
            (Some(c), None) => widen(out(b)).sum().mul_scalar(c),
            (None, None) => widen(out(a)).mul(widen(out(b))).sum(),
        })
        .collect();
    Outputs {
        value: out(program.value_out()),
        slots: program.slots_out().iter().map(|&o| out(o)).collect(),
        terms,
    }
}

/// Register `a`, moved out when `take`, else shared.
fn fetch(regs: &mut [Option<Reg>], a: usize, take: bool) -> Reg {
    let r = if take {
        regs[a].take()
    } else {
        regs[a].clone()
    };
    r.unwrap_or(Reg::Const(f64::NAN))
}

/// A binary op; constants become scalar operands.
fn binary(op: Op, x: Reg, y: Reg, tensor: impl Fn(Reg) -> Tensor<1>) -> Tensor<1> {
    use Reg::{Const as C, T};
    match (op, x, y) {
        (Op::Add(..), T(x), C(c)) | (Op::Add(..), C(c), T(x)) => x.add_scalar(c),
        (Op::Sub(..), T(x), C(c)) => x.sub_scalar(c),
        // c − x = (−x) + c exactly: negation is exact and addition commutes.
        (Op::Sub(..), C(c), T(x)) => x.neg().add_scalar(c),
        (Op::Mul(..), T(x), C(c)) | (Op::Mul(..), C(c), T(x)) => x.mul_scalar(c),
        (Op::Div(..), T(x), C(c)) => x.div_scalar(c),
        (Op::Max(..), T(x), C(c)) | (Op::Max(..), C(c), T(x)) => x.clamp_min(c),
        (Op::Min(..), T(x), C(c)) | (Op::Min(..), C(c), T(x)) => x.clamp_max(c),
        (op, x, y) => {
            let (x, y) = (tensor(x), tensor(y));
            match op {
                Op::Add(..) => x.add(y),
                Op::Sub(..) => x.sub(y),
                Op::Mul(..) => x.mul(y),
                Op::Div(..) => x.div(y),
                Op::Max(..) => x.max_pair(y),
                _ => x.min_pair(y),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every program the core's compositions produce runs on burn tensors as on the host
    //! (flex's element ops are exact), whatever mix of constant and tensor operands it has.

    use burn::tensor::{Device, Tensor, TensorData};
    use schedulefree::program::{ElementProgram, Evaluated, check_evaluator};

    use super::run;

    #[test]
    fn every_composition_runs_as_on_the_host() {
        let device = Device::default();
        let t = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
        let host = |x: Tensor<1>| x.try_into_vec_as::<f32>().expect("f32");
        let evaluate = |p: &ElementProgram,
                        value: &[f32],
                        grad: Option<&[f32]>,
                        slots: &[Vec<f32>]|
         -> Evaluated<f32> {
            let o = run(
                p,
                &t(value),
                grad.map(t).as_ref(),
                slots.iter().map(|s| t(s)).collect(),
            );
            (host(o.value), o.slots.into_iter().map(host).collect())
        };
        check_evaluator::<f32>(evaluate).expect("f32");
    }
}

#[cfg(test)]
mod every_op {
    //! Each op with tensor and constant operands in every arrangement, including ones no
    //! current composition produces, against the host evaluation.

    use burn::tensor::{Device, Tensor, TensorData};
    use schedulefree::Dtype;
    use schedulefree::program::{ElementProgram, Op};

    use super::run;

    #[test]
    fn every_op_and_operand_arrangement_gives_the_host_bits() {
        let device = Device::default();
        let x: Vec<f32> = (0..23).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let g: Vec<f32> = (0..23).map(|i| (i as f32 * 1.3).cos() + 0.01).collect();
        let t = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
        let (xt, gt) = (t(&x), t(&g));
        let binary: [fn(usize, usize) -> Op; 6] =
            [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Max, Op::Min];
        let unary: [fn(usize) -> Op; 3] = [Op::Neg, Op::Abs, Op::Sqrt];
        // Nodes: 0 = value, 1 = grad, 2 = the constant 0.75.
        let mut cases: Vec<Op> = Vec::new();
        for op in binary {
            cases.extend([op(0, 1), op(0, 2), op(2, 0)]);
        }
        cases.extend(unary.iter().flat_map(|op| [op(0), op(1)]));
        for case in cases {
            let ops = vec![Op::Value, Op::Grad, Op::Const(0.75), case];
            let p = ElementProgram::from_ops(Dtype::F32, 0, ops, 3, vec![], None).expect("valid");
            let out = run(&p, &xt, Some(&gt), Vec::new()).value;
            let got = out.try_into_vec_as::<f32>().expect("f32");
            for i in 0..x.len() {
                let mut v = x[i];
                p.apply(&mut v, g[i], &mut [], &mut Vec::new())
                    .expect("sizes");
                let same = v.to_bits() == got[i].to_bits() || (v.is_nan() && got[i].is_nan());
                assert!(same, "{case:?} at {i}: host {v}, burn {}", got[i]);
            }
        }
    }
}
