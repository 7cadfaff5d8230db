//! A conformance check for evaluators of element programs (a tensor library's ops, a fused
//! device kernel): every composition the programs cover, run through the evaluator and
//! through the host reference ([`ElementProgram::apply`]) side by side, compared bit for bit.

use super::ElementProgram;
use crate::composed::{Composed, ConversionConfig, LearnerConfig};
use crate::conversion::AveragingWeights;
use crate::decay::{AnyDecay, DecayConfig};
use crate::element::Element;
use crate::learner::{AdaGradNorm, Adam, BiasCorrection, Cocob, Polyak, Sgd};
use crate::schedule::ScheduleConfig;
use crate::{ExternalParam, GradientSums, PresetConfig, StepInputs};

/// Elements per test parameter.
const N: usize = 37;
/// Steps per composition.
const STEPS: usize = 4;

/// Every learner × conversion × decay policy element programs cover (one configuration
/// each: SGD plain and with Nesterov momentum, Adam with and without momentum and both bias
/// corrections, AdaGrad-Norm, COCOB, Polyak; last iterate, Schedule-Free, Polyak averaging;
/// no decay, L2, decoupled at `y` and at `z`), with a warmup-then-decay schedule and nonzero
/// weight decay. Learners with their own momentum are left out of Schedule-Free, which
/// refuses them. Prodigy is not listed: its update programs are Adam-like, and its pre-pass
/// programs ([`crate::PrepassProgram`]) give sums, which an evaluator reduces in its own
/// order; the core's tests check their terms against the kernel's bit for bit, and the
/// adapters' parity tests their sums end to end.
pub fn covered_compositions() -> Vec<PresetConfig> {
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
            decoupling_c: 0.0,
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
    let mut out = Vec::new();
    for learner in learners {
        for conversion in conversions {
            let momentum = matches!(learner, LearnerConfig::Sgd(s) if s.momentum > 0.0)
                || matches!(learner, LearnerConfig::Adam(a) if a.beta1 > 0.0);
            if momentum && matches!(conversion, ConversionConfig::ScheduleFree { .. }) {
                continue;
            }
            for decay in decays {
                out.push(PresetConfig::Composed(Composed {
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
                }));
            }
        }
    }
    out
}

/// The new value and slots an evaluator computed.
pub type Evaluated<T> = (Vec<T>, Vec<Vec<T>>);

/// Run every [`covered_compositions`] preset for a few steps on one parameter of 37
/// elements in element type `T`, each step's programs (the init program at the first
/// gradient, then the update) through `evaluate(program, value, grad, slots)` and through
/// [`ElementProgram::apply`], and compare the new value and slots bit for bit. `grad` is
/// `None` for init programs (read it as zeros), and `slots` are zeros before the init
/// program. Returns the number of programs checked.
///
/// # Errors
/// A message naming the composition, step and element of the first difference, or a
/// program the host refuses.
pub fn check_evaluator<T: Element>(
    mut evaluate: impl FnMut(&ElementProgram, &[T], Option<&[T]>, &[Vec<T>]) -> Evaluated<T>,
) -> Result<usize, String> {
    let mut checked = 0;
    for preset in covered_compositions() {
        let mut core = preset.build_dyn::<T>().map_err(|e| e.to_string())?;
        core.add_param_to(0, "w", &[N]).map_err(|e| e.to_string())?;
        let n_slots = core.slot_names().len();
        let mut value: Vec<T> = (0..N).map(|i| T::of((i as f64 * 0.37).sin())).collect();
        let mut slots = vec![vec![T::zero(); N]; n_slots];
        let (mut value_e, mut slots_e) = (value.clone(), slots.clone());
        let mut regs = Vec::new();
        for step in 0..STEPS {
            let grad: Vec<T> = (0..N)
                .map(|i| {
                    let wiggle = (((i * 5 + step * 3) as f64) * 0.21).cos() - 0.2;
                    T::of(wiggle) + T::of(0.5) * value[i]
                })
                .collect();
            let sums = GradientSums {
                l1: grad.iter().map(|g| g.f64().abs()).sum(),
                l2_sq: grad.iter().map(|g| g.f64() * g.f64()).sum(),
                finite: true,
            };
            let params = [ExternalParam {
                name: "w",
                grad: Some(sums),
            }];
            let out = core
                .step_programs(&params, StepInputs::with_loss(0.5))
                .map_err(|e| format!("{preset:?}: {e}"))?;
            for pp in &out.programs {
                for (program, g) in [(pp.init.as_ref(), None), (Some(&pp.update), Some(&grad))] {
                    let Some(program) = program else { continue };
                    let mut e = vec![T::zero(); n_slots];
                    for i in 0..N {
                        for (v, s) in e.iter_mut().zip(&slots) {
                            *v = s[i];
                        }
                        let gi = g.map_or(T::zero(), |g| g[i]);
                        program
                            .apply(&mut value[i], gi, &mut e, &mut regs)
                            .map_err(|err| format!("{preset:?}: {err}"))?;
                        for (v, s) in e.iter().zip(&mut slots) {
                            s[i] = *v;
                        }
                    }
                    (value_e, slots_e) =
                        evaluate(program, &value_e, g.map(Vec::as_slice), &slots_e);
                    checked += 1;
                    let what = |part: &str| format!("{preset:?}, step {step}: {part}");
                    same_bits(&value_e, &value, &what("value"))?;
                    if slots_e.len() != slots.len() {
                        return Err(what("slot count"));
                    }
                    for (j, (a, b)) in slots_e.iter().zip(&slots).enumerate() {
                        same_bits(a, b, &what(&format!("slot {j}")))?;
                    }
                }
            }
        }
    }
    Ok(checked)
}

fn same_bits<T: Element>(got: &[T], want: &[T], what: &str) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} elements, expected {}",
            got.len(),
            want.len()
        ));
    }
    match got
        .iter()
        .zip(want)
        .position(|(a, b)| a.f64().to_bits() != b.f64().to_bits())
    {
        Some(i) => Err(format!(
            "{what}: element {i} is {:e}, the host gives {:e}",
            got[i].f64(),
            want[i].f64()
        )),
        None => Ok(()),
    }
}
