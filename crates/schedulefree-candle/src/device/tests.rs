//! The device path's pieces against the host: element programs run on candle tensors give
//! the host evaluation's bits (candle's CPU element ops are exact), and a step reads three
//! numbers per var back to the host. Every element the path reads from a tensor goes through
//! `read_back`, which counts per thread; everything else is candle tensor ops, whose results
//! stay on the var's device.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig};
use schedulefree::learner::{AdaGradNorm, Adam, BiasCorrection, Cocob, Polyak, Sgd};
use schedulefree::program::{ElementProgram, Op};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{
    AdamWScheduleFree, Dtype, ExternalParam, GradientSums, PresetConfig, StepInputs,
};

use super::host_reads;
use super::program::run;
use crate::{Placement, ScheduleFreeOptimizer};

const N: usize = 37;

fn tensor(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).expect("cpu")
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.to_vec1().expect("f32");
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(learner: LearnerConfig, conversion: ConversionConfig, decay: AnyDecay) {
    let preset = PresetConfig::Composed(Composed {
        learner,
        conversion,
        decay: DecayConfig::standard(decay),
        schedule: ScheduleConfig::Linear {
            warmup: 2,
            total: 6,
            end: 0.1,
        },
        lr: 0.1,
        weight_decay: 0.1,
    });
    let mut core = preset.build_dyn::<f32>().expect("valid");
    core.add_param_to(0, "w", &[N]).expect("new");
    let mut value: Vec<f32> = (0..N).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut slots = vec![vec![0.0f32; N]; core.slot_names().len()];
    let mut value_t = tensor(&value);
    let mut slots_t: Vec<Tensor> = Vec::new();
    let mut regs = Vec::new();
    for step in 0..4 {
        let grad: Vec<f32> = (0..N)
            .map(|i| ((i * 5 + step * 3) as f32 * 0.21).cos() - 0.2 + 0.5 * value[i])
            .collect();
        let sums = GradientSums {
            l1: grad.iter().map(|g| f64::from(g.abs())).sum(),
            l2_sq: grad.iter().map(|g| f64::from(g * g)).sum(),
            finite: true,
        };
        let params = [ExternalParam {
            name: "w",
            grad: Some(sums),
        }];
        let out = core
            .step_programs(&params, StepInputs::with_loss(0.5))
            .expect("covered");
        let grad_t = tensor(&grad);
        for pp in &out.programs {
            for program in pp.init.iter().chain([&pp.update]) {
                let mut e = vec![0.0f32; slots.len()];
                for i in 0..N {
                    for (v, s) in e.iter_mut().zip(&slots) {
                        *v = s[i];
                    }
                    program
                        .apply(&mut value[i], grad[i], &mut e, &mut regs)
                        .expect("sizes");
                    for (v, s) in e.iter().zip(&mut slots) {
                        s[i] = *v;
                    }
                }
                let o = run::<f32>(program, &value_t, Some(&grad_t), &slots_t).expect("runs");
                if let Some(v) = o.value {
                    value_t = v;
                }
                slots_t = o.slots;
            }
        }
        let what = format!("{learner:?} + {conversion:?} + {decay:?}, step {step}");
        let host = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&value_t), host(&value), "value: {what}");
        for (t, s) in slots_t.iter().zip(&slots) {
            assert_eq!(bits(t), host(s), "slot: {what}");
        }
    }
}

#[test]
fn every_composition_runs_as_on_the_host() {
    let learners = [
        LearnerConfig::Sgd(Sgd::default()),
        LearnerConfig::Sgd(Sgd {
            momentum: 0.9,
            nesterov: true,
            ..Sgd::default()
        }),
        LearnerConfig::Adam(Adam::default()),
        LearnerConfig::Adam(Adam {
            beta1: 0.0,
            bias_correction: BiasCorrection::EpsBeforeCorrection,
            ..Adam::default()
        }),
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
        LearnerConfig::Cocob(Cocob::default()),
        LearnerConfig::Polyak(Polyak::default()),
    ];
    let conversions = [
        ConversionConfig::LastIterate,
        ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: AveragingWeights::default(),
        },
        ConversionConfig::PolyakAverage {
            weights: AveragingWeights::UNIFORM,
        },
    ];
    let decays = [
        AnyDecay::None,
        AnyDecay::L2,
        AnyDecay::DecoupledAtY,
        AnyDecay::Decoupled,
    ];
    for l in learners {
        for c in conversions {
            for d in decays {
                // Learners with their own momentum refuse a Schedule-Free conversion.
                let momentum = matches!(l, LearnerConfig::Sgd(s) if s.momentum > 0.0)
                    || matches!(l, LearnerConfig::Adam(a) if a.beta1 > 0.0);
                if momentum && matches!(c, ConversionConfig::ScheduleFree { .. }) {
                    continue;
                }
                check(l, c, d);
            }
        }
    }
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
}
