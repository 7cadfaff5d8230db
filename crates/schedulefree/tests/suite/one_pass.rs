//! `NonFinitePolicy::Propagate` reads each gradient once: the gradient norms are taken inside
//! the update loop. On finite gradients it must give exactly what the checking policies give
//! (parameters, state, step info, group info, diagnostics), for every kind of composition,
//! with tensors long enough to split across threads; it must not skip a non-finite gradient
//! (that is the point of the policy) but still skips a non-finite loss.

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
use schedulefree::learner::{AdaGradNorm, Adam, Cocob, Polyak, Prodigy, Sgd};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{DynOptimizer, NonFinitePolicy, Param, ParamTags, Skipped, StepInfo};

/// Names, shapes, tags: one tensor above the parallel threshold (2^17), a matrix split into
/// rows, a bias without decay.
const PARAMS: [(&str, &[usize], ParamTags); 3] = [
    (
        "long",
        &[140_000],
        ParamTags {
            normalized: false,
            no_decay: false,
        },
    ),
    ("matrix", &[6, 7], ParamTags::NORMALIZED),
    ("bias", &[7], ParamTags::NO_DECAY),
];

fn learners() -> Vec<LearnerConfig> {
    vec![
        LearnerConfig::Sgd(Sgd::default()),
        LearnerConfig::Sgd(Sgd {
            momentum: 0.9,
            ..Sgd::default()
        }),
        LearnerConfig::Adam(Adam {
            beta1: 0.0,
            ..Adam::default()
        }),
        LearnerConfig::Adam(Adam::default()),
        LearnerConfig::Cocob(Cocob::default()),
        LearnerConfig::Prodigy(Prodigy::default()),
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
        LearnerConfig::Polyak(Polyak::default()),
    ]
}

fn config(learner: LearnerConfig, projected: bool) -> Composed {
    Composed {
        learner,
        conversion: ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: AveragingWeights::default(),
            decoupling_c: 0.0,
        },
        decay: DecayConfig {
            base: AnyDecay::Decoupled,
            normalized: if projected {
                NormalizedPolicy::Projected(Projection::default())
            } else {
                NormalizedPolicy::Standard
            },
        },
        schedule: ScheduleConfig::Linear {
            warmup: 2,
            total: 20,
            end: 0.0,
        },
        lr: 1e-2,
        weight_decay: 0.1,
    }
}

fn build(c: &Composed, policy: NonFinitePolicy) -> Box<dyn DynOptimizer<f32>> {
    let mut o = c.build_dyn::<f32>().expect("valid config");
    o.set_non_finite(policy);
    o.set_diagnostics(true);
    for (n, s, t) in PARAMS {
        o.add_param_tagged(0, n, s, t).expect("new name");
    }
    o
}

fn grads(step: usize) -> Vec<Vec<f32>> {
    PARAMS
        .iter()
        .enumerate()
        .map(|(i, (_, s, _))| {
            (0..s.iter().product::<usize>())
                .map(|e| ((e * 31 + i * 7 + step * 13) % 101) as f32 / 50.0 - 1.0)
                .collect()
        })
        .collect()
}

fn step(o: &mut dyn DynOptimizer<f32>, v: &mut [Vec<f32>], g: &[Vec<f32>], loss: f64) -> StepInfo {
    let mut params: Vec<Param<'_, f32>> = PARAMS
        .iter()
        .zip(v.iter_mut())
        .zip(g)
        .map(|(((n, _, _), v), g)| Param::new(n, v, g))
        .collect();
    o.step_with_loss(&mut params, loss).expect("step")
}

fn bits(v: &[Vec<f32>]) -> Vec<u32> {
    v.iter().flatten().map(|x| x.to_bits()).collect()
}

#[test]
fn one_pass_gives_the_same_bits_as_checking_first() {
    for learner in learners() {
        for projected in [false, true] {
            let c = config(learner, projected);
            let mut checked = build(&c, NonFinitePolicy::Skip);
            let mut one_pass = build(&c, NonFinitePolicy::Propagate);
            let init = grads(99);
            let (mut a, mut b) = (init.clone(), init);
            for k in 0..5 {
                let g = grads(k);
                let (ia, ib) = (
                    step(checked.as_mut(), &mut a, &g, 0.5),
                    step(one_pass.as_mut(), &mut b, &g, 0.5),
                );
                let what = format!("{c:?}, step {k}");
                assert_eq!(bits(&a), bits(&b), "parameters: {what}");
                assert_eq!(
                    (ia.grad_l1.to_bits(), ia.grad_l2.to_bits()),
                    (ib.grad_l1.to_bits(), ib.grad_l2.to_bits()),
                    "step info norms: {what}"
                );
                assert_eq!(ia, ib, "step info: {what}");
                assert_eq!(checked.group_info(0), one_pass.group_info(0), "{what}");
                assert_eq!(checked.diagnostics(), one_pass.diagnostics(), "{what}");
            }
            assert_eq!(checked.state().params, one_pass.state().params);
        }
    }
}

#[test]
fn propagate_does_not_skip_a_non_finite_gradient_but_skips_a_non_finite_loss() {
    let c = config(
        LearnerConfig::Adam(Adam {
            beta1: 0.0,
            ..Adam::default()
        }),
        false,
    );
    let mut o = build(&c, NonFinitePolicy::Propagate);
    let mut v = grads(99);
    let mut g = grads(0);
    g[1][3] = f32::NAN;
    let info = step(o.as_mut(), &mut v, &g, 0.5);
    assert_eq!(info.skipped, None);
    assert!(info.grad_l2.is_nan(), "the norm reports the NaN");
    assert!(v[1][3].is_nan(), "the NaN reached the parameter");
    assert!(
        v[0].iter().all(|x| x.is_finite()),
        "elementwise: other tensors unharmed"
    );
    assert_eq!(o.step_count(), 1);
    assert_eq!(o.group_info(0).expect("group 0").skipped_steps, 0);

    let before = v.clone();
    let info = step(o.as_mut(), &mut v, &grads(1), f64::INFINITY);
    assert_eq!(info.skipped, Some(Skipped::NonFiniteLoss));
    assert_eq!(bits(&before), bits(&v));
    assert_eq!(o.step_count(), 1);
}
