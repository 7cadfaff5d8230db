//! ALGORITHMS.md §12.4: properties of the magnitude-based learners (Prodigy, COCOB,
//! AdaGrad-Norm) and their composition with every online-to-batch conversion.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::{AveragingWeights, LastIterate};
use schedulefree::decay::{DecayConfig, NoDecay};
use schedulefree::learner::{AdaGradNorm, Adam, BiasCorrection, Cocob, Polyak, Prodigy, StepCount};
use schedulefree::schedule::{Constant, ScheduleConfig};
use schedulefree::{DynOptimizer, GroupConfig, Optimizer, Param};

const A: [f64; 3] = [1.0, -2.0, 0.5];

fn build(
    learner: LearnerConfig,
    conversion: ConversionConfig,
    lr: f64,
) -> Box<dyn DynOptimizer<f64>> {
    let mut o = Composed {
        learner,
        conversion,
        decay: DecayConfig::default(),
        schedule: ScheduleConfig::Constant {},
        lr,
        weight_decay: 0.0,
    }
    .build_dyn::<f64>()
    .expect("config");
    o.add_param_to(0, "w", &[3]).expect("new");
    o
}

fn last_iterate(learner: LearnerConfig, lr: f64) -> Box<dyn DynOptimizer<f64>> {
    build(learner, ConversionConfig::LastIterate, lr)
}

/// A group-state value (`"d"`, `"b_sq"`) of group 0, read from the saved state.
fn group_state(o: &dyn DynOptimizer<f64>, name: &str) -> f64 {
    o.state().groups[0].learner_state[name]
}

fn quad(w: &[f64]) -> (f64, Vec<f64>) {
    let g: Vec<f64> = w.iter().zip(A).map(|(w, a)| w - a).collect();
    (0.5 * g.iter().map(|v| v * v).sum::<f64>(), g)
}

/// Steps whose gradients are drawn at random (3 values each).
fn gradients() -> impl Strategy<Value = Vec<Vec<f64>>> {
    prop::collection::vec(prop::collection::vec(-50.0..50.0_f64, 3), 1..25)
}

proptest! {
    /// Prodigy's distance estimate never decreases and never falls below `d0`.
    #[test]
    fn prodigy_d_is_non_decreasing_and_at_least_d0(
        grads in gradients(),
        d0 in 1e-8..1e-2_f64,
        d_coef in 0.0..2.0_f64,
        lr in 0.01..2.0_f64,
    ) {
        let mut o = last_iterate(LearnerConfig::Prodigy(Prodigy { d0, d_coef, ..Default::default() }), lr);
        let mut w = vec![0.5, -0.25, 2.0];
        let mut last = group_state(o.as_ref(), "d");
        prop_assert_eq!(last, d0);
        for g in &grads {
            o.step(&mut [Param::new("w", &mut w, g)]).expect("step");
            let d = group_state(o.as_ref(), "d");
            prop_assert!(d >= last && d >= d0, "d {} after {}, d0 {}", d, last, d0);
            last = d;
        }
    }

    /// AdaGrad-Norm: `b` never decreases, so the effective step `η/b` never increases and is
    /// at most `η/b₀`.
    #[test]
    fn adagrad_norm_b_non_decreasing_and_step_bounded(
        grads in gradients(),
        b0 in 1e-3..10.0_f64,
        lr in 0.01..5.0_f64,
    ) {
        let mut o = last_iterate(LearnerConfig::AdaGradNorm(AdaGradNorm { b0 }), lr);
        let mut w = vec![0.0; 3];
        let mut last_b_sq = group_state(o.as_ref(), "b_sq");
        prop_assert_eq!(last_b_sq, b0 * b0);
        let mut last_step = f64::INFINITY;
        for g in &grads {
            let info = o.step(&mut [Param::new("w", &mut w, g)]).expect("step");
            let b_sq = group_state(o.as_ref(), "b_sq");
            prop_assert!(b_sq >= last_b_sq);
            prop_assert!(info.group.lr <= lr / b0 * (1.0 + 1e-15), "step {} > η/b0 {}", info.group.lr, lr / b0);
            prop_assert!(info.group.lr <= last_step);
            prop_assert_eq!(info.group.lr, lr * info.group.lr_factor);
            last_b_sq = b_sq;
            last_step = info.group.lr;
        }
    }

    /// COCOB's first move is `−sign(g)/α` per coordinate (α ≥ 2), from any start.
    #[test]
    fn cocob_first_move_is_minus_sign_over_alpha(
        g in prop::collection::vec(prop_oneof![-1e3..-1e-3_f64, 1e-3..1e3_f64], 3),
        w1 in prop::collection::vec(-5.0..5.0_f64, 3),
        alpha in 2.0..1000.0_f64,
    ) {
        let mut o = last_iterate(LearnerConfig::Cocob(Cocob { alpha, eps: 1e-8 }), 1.0);
        let mut w = w1.clone();
        o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
        for i in 0..3 {
            let want = -g[i].signum() / alpha;
            // Rounding only: of the bet, of `w1 + bet·(L + R)` and of `z − (z − w⋆)`.
            let tol = 4.0 * f64::EPSILON * (w1[i].abs() + want.abs());
            prop_assert!(((w[i] - w1[i]) - want).abs() <= tol, "moved {} vs {}", w[i] - w1[i], want);
        }
    }
}

/// Gaussian gradients of a fixed seed.
fn gaussian_steps(seed: u64, steps: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..steps)
        .map(|_| (0..3).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect())
        .collect()
}

fn cocob_run(scale: f64) -> Vec<f64> {
    let mut o = last_iterate(LearnerConfig::Cocob(Cocob::default()), 1.0);
    let mut w = vec![0.3, -0.1, 0.0];
    for g in gaussian_steps(5, 100) {
        let g: Vec<f64> = g.iter().map(|v| v * scale).collect();
        o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    }
    w
}

/// Multiplying every gradient by `c > 0` leaves COCOB's iterates unchanged: bit for bit for a
/// power of two (every statistic scales exactly), to rounding otherwise (the `ε` floor of `L`
/// never binds here: every `|g| ≫ 1e-8`).
#[test]
fn cocob_is_invariant_to_gradient_rescaling() {
    let base = cocob_run(1.0);
    assert_eq!(cocob_run(4.0), base);
    assert_eq!(cocob_run(1.0 / 1024.0), base);
    for c in [3.7, 0.013, 250.0] {
        for (a, b) in cocob_run(c).iter().zip(&base) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "c {c}: {a} vs {b}"
            );
        }
    }
    assert!(base.iter().any(|v| v.abs() > 0.01), "COCOB moved: {base:?}");
}

/// With `d_coef = 0` the estimate stays at `d0` and Prodigy is Adam with lr `d0·lr`: the two
/// differ only in where `ε` sits (`d·ε` before vs `ε` after the bias correction), negligible
/// with `ε = 1e-20`.
#[test]
fn prodigy_without_adaptation_is_adam_with_lr_d0() {
    let (d0, lr, eps) = (0.01, 0.7, 1e-20);
    let mut p = last_iterate(
        LearnerConfig::Prodigy(Prodigy {
            betas: (0.9, 0.999),
            beta3: None,
            eps,
            d0,
            d_coef: 0.0,
        }),
        lr,
    );
    let mut a = Optimizer::<f64, _, _, _, _>::new(
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            bias_correction: BiasCorrection::Denominator,
            count: StepCount::Group,
        },
        LastIterate,
        NoDecay,
        Constant,
        GroupConfig {
            lr: d0 * lr,
            weight_decay: 0.0,
        },
    )
    .expect("config");
    a.add_param("w", &[3]).expect("new");
    let (mut wp, mut wa) = (vec![0.2, 0.4, -1.0], vec![0.2, 0.4, -1.0]);
    let mut worst = 0.0_f64;
    for _ in 0..200 {
        let (_, gp) = quad(&wp);
        let (_, ga) = quad(&wa);
        p.step(&mut [Param::new("w", &mut wp, &gp)]).expect("step");
        a.step(&mut [Param::new("w", &mut wa, &ga)]).expect("step");
        for (x, y) in wp.iter().zip(&wa) {
            worst = worst.max((x - y).abs() / y.abs().max(1e-300));
        }
    }
    assert_eq!(group_state(p.as_ref(), "d"), d0);
    assert!(
        worst <= 1e-12,
        "Prodigy(d_coef = 0) vs Adam(lr d0): {worst:e}"
    );
    assert!(
        quad(&wa).0 < 0.5 * quad(&[0.2, 0.4, -1.0]).0,
        "Adam made progress: {wa:?}"
    );
}

fn conversions() -> [ConversionConfig; 3] {
    [
        ConversionConfig::LastIterate,
        ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: AveragingWeights::default(),
            decoupling_c: 0.0,
        },
        ConversionConfig::PolyakAverage {
            weights: AveragingWeights::UNIFORM,
        },
    ]
}

fn new_learners() -> [LearnerConfig; 4] {
    [
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
        LearnerConfig::Cocob(Cocob::default()),
        LearnerConfig::Polyak(Polyak::default()),
        LearnerConfig::Prodigy(Prodigy::default()),
    ]
}

/// Every new learner under last iterate, Schedule-Free and Polyak averaging: 50 steps on the
/// quadratic lower the loss at the returned point, and `eval`/`train` round trips hold.
#[test]
fn new_learners_compose_with_every_conversion() {
    for learner in new_learners() {
        for conversion in conversions() {
            let what = format!("{} + {conversion:?}", learner.name());
            let mut o = build(learner, conversion, 1.0);
            let mut w = vec![0.0; 3];
            let (f0, _) = quad(&w);
            for _ in 0..50 {
                let (f, g) = quad(&w);
                let info = if o.needs_loss() {
                    o.step_with_loss(&mut [Param::new("w", &mut w, &g)], f)
                } else {
                    o.step(&mut [Param::new("w", &mut w, &g)])
                }
                .expect("step");
                assert!(
                    info.skipped.is_none() && info.group.lr.is_finite(),
                    "{what}"
                );
            }
            let y = w.clone();
            let mut x = vec![0.0; 3];
            o.eval_params_into("w", &w, &mut x).expect("x");
            let (f_end, _) = quad(&x);
            assert!(f_end < f0, "{what}: loss {f0} → {f_end}");

            // train → eval: the buffer holds x; eval → train: back to y; twice = once.
            o.eval(&mut [Param::no_grad("w", &mut w)]).expect("eval");
            assert_eq!(w, x, "{what}: eval buffer");
            o.eval(&mut [Param::no_grad("w", &mut w)])
                .expect("eval twice");
            assert_eq!(w, x, "{what}: eval is idempotent");
            o.train(&mut [Param::no_grad("w", &mut w)]).expect("train");
            for (a, b) in w.iter().zip(&y) {
                assert!(
                    (a - b).abs() <= 1e-13 * b.abs().max(1.0),
                    "{what}: y {a} vs {b}"
                );
            }
            assert_eq!(
                o.has_modes(),
                !matches!(conversion, ConversionConfig::LastIterate)
            );
            // Training continues after the round trip.
            let (f, g) = quad(&w);
            let r = if o.needs_loss() {
                o.step_with_loss(&mut [Param::new("w", &mut w, &g)], f)
            } else {
                o.step(&mut [Param::new("w", &mut w, &g)])
            };
            assert!(r.is_ok(), "{what}: {r:?}");
        }
    }
}

/// Prodigy's pre-pass sums (`⟨g, z₀ − z⟩`, `‖s‖₁`) are reduced per tensor and added in name
/// order, so the trajectory does not depend on the order the parameters are passed in (three
/// tensors: a sum of two terms would commute anyway).
#[test]
fn prodigy_does_not_depend_on_the_order_parameters_are_passed() {
    let run = |reversed: bool| {
        let mut o = build(
            LearnerConfig::Prodigy(Prodigy {
                d0: 1e-3,
                ..Default::default()
            }),
            ConversionConfig::LastIterate,
            1.0,
        );
        o.add_param_to(0, "v", &[4]).expect("new");
        o.add_param_to(0, "u", &[2]).expect("new");
        let mut w = vec![0.3, -0.7, 1.1];
        let mut v = vec![0.9, 0.2, -0.4, 0.05];
        let mut u = vec![-1.3, 0.6];
        for t in 0..20 {
            let (_, gw) = quad(&w);
            let pull = |x: &[f64], s: f64| -> Vec<f64> {
                x.iter()
                    .enumerate()
                    .map(|(i, x)| x - (i + t) as f64 * s)
                    .collect()
            };
            let (gv, gu) = (pull(&v, 0.1), pull(&u, -0.07));
            let mut params = [
                Param::new("w", &mut w, &gw),
                Param::new("v", &mut v, &gv),
                Param::new("u", &mut u, &gu),
            ];
            if reversed {
                params.reverse();
            }
            o.step(&mut params).expect("step");
        }
        let bits: Vec<u64> = w.iter().chain(&v).chain(&u).map(|x| x.to_bits()).collect();
        (
            bits,
            group_state(o.as_ref(), "d").to_bits(),
            group_state(o.as_ref(), "r").to_bits(),
        )
    };
    let (a, b) = (run(false), run(true));
    assert_eq!(a, b);
    assert!(f64::from_bits(a.1) > 1e-3, "d adapted");
}
