//! The device path's pieces against the host: element programs run on candle tensors give
//! the host evaluation's bits (candle's CPU element ops are exact), and a step reads three
//! numbers per var back to the host. Every element the path reads from a tensor goes through
//! `read_back`, which counts per thread; everything else is candle tensor ops, whose results
//! stay on the var's device.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig};
use schedulefree::learner::Prodigy;
use schedulefree::program::{ElementProgram, Evaluated, Op, check_evaluator};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamWScheduleFree, Dtype, PresetConfig};

use super::host_reads;
use super::program::run;
use crate::{Placement, ScheduleFreeOptimizer};

fn tensor(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).expect("cpu")
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.to_vec1().expect("f32");
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_composition_runs_as_on_the_host() {
    fn evaluate<T: crate::host::HostElement>(
        p: &ElementProgram,
        value: &[T],
        grad: Option<&[T]>,
        slots: &[Vec<T>],
    ) -> Evaluated<T> {
        let t = |v: &[T]| Tensor::from_slice(v, v.len(), &Device::Cpu).expect("cpu");
        let slots_t: Vec<Tensor> = slots.iter().map(|s| t(s)).collect();
        let o = run::<T>(p, &t(value), grad.map(t).as_ref(), &slots_t).expect("runs");
        let host = |x: &Tensor| x.to_vec1::<T>().expect("dtype");
        let v = o.value.as_ref().map_or_else(|| value.to_vec(), host);
        (v, o.slots.iter().map(host).collect())
    }
    check_evaluator::<f32>(evaluate).expect("f32");
    check_evaluator::<f64>(evaluate).expect("f64");
}

#[test]
fn every_op_and_operand_arrangement_gives_the_host_bits() {
    // Signed zeros included: `x · c` must keep the sign of a zero product.
    let mut x: Vec<f32> = (0..23).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
    x.extend([0.0, -0.0, 1e-30, -1e-30]);
    let g: Vec<f32> = (0..x.len())
        .map(|i| (i as f32 * 1.3).cos() + 0.01)
        .collect();
    let (xt, gt) = (tensor(&x), tensor(&g));
    let binary: [fn(usize, usize) -> Op; 6] =
        [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Max, Op::Min];
    let unary: [fn(usize) -> Op; 3] = [Op::Neg, Op::Abs, Op::Sqrt];
    // Nodes: 0 = value, 1 = grad, 2 = the constant 0.75, 3 = the constant -1e-20.
    let mut cases: Vec<Op> = Vec::new();
    for op in binary {
        cases.extend([op(0, 1), op(0, 2), op(2, 0), op(0, 3), op(3, 0)]);
    }
    cases.extend(unary.iter().flat_map(|op| [op(0), op(1)]));
    for case in cases {
        let ops = vec![
            Op::Value,
            Op::Grad,
            Op::Const(0.75),
            Op::Const(f64::from(-1e-20f32)),
            case,
        ];
        let p = ElementProgram::from_ops(Dtype::F32, 0, ops, 4, vec![], None).expect("valid");
        let out = run::<f32>(&p, &xt, Some(&gt), &[]).expect("runs");
        let got: Vec<f32> = out.value.expect("a new value").to_vec1().expect("f32");
        for i in 0..x.len() {
            let mut v = x[i];
            p.apply(&mut v, g[i], &mut [], &mut Vec::new())
                .expect("sizes");
            let same = v.to_bits() == got[i].to_bits() || (v.is_nan() && got[i].is_nan());
            assert!(same, "{case:?} at {i}: host {v:e}, candle {:e}", got[i]);
        }
    }
}

#[test]
fn a_program_returning_the_value_asks_for_no_write_and_slots_get_copies() {
    // z ← y (an init program's shape): the slot must not share the var's storage.
    let p =
        ElementProgram::from_ops(Dtype::F32, 1, vec![Op::Value], 0, vec![0], None).expect("valid");
    let var = Var::from_slice(&[1.0f32, 2.0], 2, &Device::Cpu).expect("cpu");
    let o = run::<f32>(&p, &var.as_tensor().detach(), None, &[]).expect("runs");
    assert!(o.value.is_none());
    var.set(&tensor(&[5.0, 6.0])).expect("set");
    assert_eq!(bits(&o.slots[0]), [1.0f32.to_bits(), 2.0f32.to_bits()]);
}

#[test]
fn a_step_reads_three_numbers_per_var() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = candle_nn::linear(300, 200, vb.pp("fc")).expect("linear");
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        warmup_steps: 2,
        ..Default::default()
    });
    let mut opt = ScheduleFreeOptimizer::from_varmap(&varmap, preset).expect("valid");
    opt.set_placement(Placement::Device).expect("covered");
    let input = Tensor::ones((4, 300), DType::F32, &Device::Cpu).expect("cpu");
    let loss = |m: &Linear| {
        m.forward(&input)
            .and_then(|o| o.sqr()?.mean_all())
            .expect("loss")
    };
    for _ in 0..3 {
        let grads = loss(&model).backward().expect("backward");
        let before = host_reads();
        opt.try_step(&grads).expect("step");
        assert_eq!(
            host_reads() - before,
            3 * 2,
            "weight and bias: three numbers each"
        );
    }
    let before = host_reads();
    drop(opt.eval_guard().expect("x"));
    opt.eval_point().expect("x");
    opt.eval().expect("eval");
    opt.train().expect("train");
    assert_eq!(
        host_reads(),
        before,
        "eval points and mode switches stay on the device"
    );
    // The counter does see parameter-sized reads: a state snapshot reads every slot.
    opt.state().expect("state");
    assert_eq!(host_reads() - before, 2 * (300 * 200 + 200));

    // Prodigy's pre-pass adds its two sums per var, read back together.
    let prodigy = PresetConfig::Composed(Composed {
        learner: LearnerConfig::Prodigy(Prodigy::default()),
        conversion: ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: Default::default(),
            decoupling_c: 0.0,
        },
        decay: DecayConfig::standard(AnyDecay::DecoupledAtY),
        schedule: ScheduleConfig::Constant {},
        lr: 1.0,
        weight_decay: 0.0,
    });
    let mut opt = ScheduleFreeOptimizer::from_varmap(&varmap, prodigy).expect("valid");
    opt.set_placement(Placement::Device).expect("covered");
    for _ in 0..3 {
        let grads = loss(&model).backward().expect("backward");
        let before = host_reads();
        opt.try_step(&grads).expect("step");
        assert_eq!(host_reads() - before, (3 + 2) * 2, "Prodigy");
    }
}
