//! Layer 1 of DESIGN.md §5: the fused optimizers equal the plain `f64` oracle written from the
//! papers (`schedulefree::reference`), ALGORITHMS.md §12.1 item 1.
//!
//! Random shapes (several tensors, lengths 0..50), random hyperparameters (lr, β, weight
//! decay, warmup, `r`, `weight_lr_power`, SGD and Adam learners) and random gradients; the
//! memory-efficient presets (`SgdScheduleFree`, `AdamWScheduleFree`) and the reference forms
//! (`x, y, z` stored) must give the oracle's `y` (buffer), `x` (`eval_params_into`) and `z`
//! (`state_buffer`): within 1e-12 relative in `f64`, 1e-5 relative in `f32`.
//!
//! "Relative" is relative to the size of the iterates (`max |x|, |y|, |z|` of the oracle): the
//! fused form computes `y` by cancellation of terms of that size. The eval transform
//! `x = y + (1 − 1/β)(z − y)` amplifies an error in `y` by `1/β`, so `x` gets `tol/β`.

use proptest::prelude::*;
use schedulefree::reference::{OracleConfig, OracleLearner, ScheduleFreeOracle};
use schedulefree::{
    AdamWScheduleFree, AdamWScheduleFreeReference, DynOptimizer, Element, Param, SgdScheduleFree,
    SgdScheduleFreeReference,
};

use crate::split_mix::SplitMix;

/// Which fused optimizer is compared with the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `SgdScheduleFree` / `AdamWScheduleFree` (2 buffers, `x` implicit).
    Efficient,
    /// `SgdScheduleFreeReference` / `AdamWScheduleFreeReference` (`x, y, z` stored).
    Reference,
}

/// A random problem: hyperparameters, tensors and gradients.
#[derive(Debug, Clone)]
struct Case {
    cfg: OracleConfig,
    /// Initial values of each tensor.
    init: Vec<Vec<f64>>,
    /// `grads[step][tensor]`.
    grads: Vec<Vec<Vec<f64>>>,
}

fn build<T: Element>(form: Form, cfg: &OracleConfig) -> Box<dyn DynOptimizer<T>> {
    let sgd = SgdScheduleFree {
        lr: cfg.lr,
        momentum: cfg.beta,
        weight_decay: cfg.weight_decay,
        warmup_steps: cfg.warmup_steps,
        r: cfg.r,
        weight_lr_power: cfg.weight_lr_power,
        decoupling_c: 0.0,
    };
    let adam = |beta2, eps| AdamWScheduleFree {
        lr: cfg.lr,
        betas: (cfg.beta, beta2),
        eps,
        weight_decay: cfg.weight_decay,
        warmup_steps: cfg.warmup_steps,
        r: cfg.r,
        weight_lr_power: cfg.weight_lr_power,
        inner_momentum: 0.0,
        decoupling_c: 0.0,
    };
    match (form, cfg.learner) {
        (Form::Efficient, OracleLearner::Sgd) => Box::new(sgd.build::<T>().expect("valid")),
        (Form::Reference, OracleLearner::Sgd) => {
            Box::new(SgdScheduleFreeReference(sgd).build::<T>().expect("valid"))
        }
        (Form::Efficient, OracleLearner::Adam { beta2, eps }) => {
            Box::new(adam(beta2, eps).build::<T>().expect("valid"))
        }
        (Form::Reference, OracleLearner::Adam { beta2, eps }) => Box::new(
            AdamWScheduleFreeReference {
                config: adam(beta2, eps),
                decay_at_z: false,
            }
            .build::<T>()
            .expect("valid"),
        ),
    }
}

fn name(i: usize) -> String {
    format!("t{i}")
}

/// Largest absolute value among the oracle's iterates (the scale errors are relative to).
fn scale(o: &ScheduleFreeOracle) -> f64 {
    o.x.iter()
        .chain(&o.y)
        .chain(&o.z)
        .fold(1e-300_f64, |m, v| m.max(v.abs()))
}

fn assert_close(what: &str, step: usize, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what} step {step} elem {i}: fused {g:e}, oracle {w:e}, |diff| {:e} > tol {tol:e}",
            (g - w).abs()
        );
    }
}

/// Run `case` through the fused optimizer over `T` and the oracle side by side; compare
/// `y`, `x`, `z` (all tensors concatenated) and the averaging weight after every step.
fn run<T: Element>(form: Form, case: &Case, rel: f64) {
    let cfg = case.cfg;
    let mut opt = build::<T>(form, &cfg);
    // Inputs rounded to T once; the oracle sees exactly the same numbers.
    let round = |v: &[f64]| -> Vec<T> { v.iter().map(|&a| T::of(a)).collect() };
    let mut bufs: Vec<Vec<T>> = case.init.iter().map(|v| round(v)).collect();
    for (i, b) in bufs.iter().enumerate() {
        opt.add_param_to(0, &name(i), &[b.len()]).expect("new name");
    }
    let flat = |bs: &[Vec<T>]| -> Vec<f64> { bs.iter().flatten().map(|v| v.f64()).collect() };
    let mut oracle = ScheduleFreeOracle::new(cfg, &flat(&bufs));
    let names: Vec<String> = (0..bufs.len()).map(name).collect();

    for (step, grads) in case.grads.iter().enumerate() {
        let grads: Vec<Vec<T>> = grads.iter().map(|g| round(g)).collect();
        let c_oracle = oracle.step(&flat(&grads));
        let mut params: Vec<Param<'_, T>> = bufs
            .iter_mut()
            .zip(&grads)
            .zip(&names)
            .map(|((b, g), n)| Param::new(n, b, g))
            .collect();
        let info = opt.step(&mut params).expect("train mode");
        assert!(info.skipped.is_none());
        drop(params);
        let c = info.group.c;
        assert!(
            (c - c_oracle).abs() <= 1e-14 * c_oracle.abs().max(1e-300),
            "c: {c} vs {c_oracle}"
        );

        let tol = rel * scale(&oracle);
        let y = flat(&bufs);
        let mut x = Vec::new();
        let mut z = Vec::new();
        for (b, n) in bufs.iter().zip(&names) {
            let mut out = vec![T::zero(); b.len()];
            opt.eval_params_into(n, b, &mut out).expect("registered");
            x.extend(out.iter().map(|v| v.f64()));
            let zb = opt.state_buffer(n, "z").expect("stepped parameter has z");
            z.extend(zb.iter().map(|v| v.f64()));
        }
        assert_close("y", step, &y, &oracle.y, tol);
        assert_close("z", step, &z, &oracle.z, tol);
        assert_close("x", step, &x, &oracle.x, tol / cfg.beta);
    }
}

fn learner() -> impl Strategy<Value = OracleLearner> {
    prop_oneof![
        Just(OracleLearner::Sgd),
        (
            prop_oneof![0.5..0.99_f64, Just(0.999), Just(0.9999)],
            prop_oneof![Just(1e-8), 1e-6..1e-2_f64]
        )
            .prop_map(|(beta2, eps)| OracleLearner::Adam { beta2, eps }),
    ]
}

fn config() -> impl Strategy<Value = OracleConfig> {
    (
        prop_oneof![1e-3..1.0_f64, Just(1.0)],
        prop_oneof![0.05..1.0_f64, 1e-3..0.05_f64, Just(0.9), Just(1.0)],
        prop_oneof![Just(0.0), 0.0..0.5_f64],
        0u64..6,
        prop_oneof![Just(0.0), 0.0..2.0_f64],
        prop_oneof![Just(2.0), Just(0.0), 0.0..3.0_f64],
        learner(),
    )
        .prop_map(
            |(lr, beta, weight_decay, warmup_steps, r, weight_lr_power, learner)| OracleConfig {
                lr,
                beta,
                weight_decay,
                warmup_steps,
                r,
                weight_lr_power,
                learner,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        config(),
        prop::collection::vec(0usize..50, 1..4),
        1usize..16,
        any::<u64>(),
    )
        .prop_map(|(cfg, lens, steps, seed)| {
            let mut rng = SplitMix(seed);
            let init = lens
                .iter()
                .map(|&n| (0..n).map(|_| rng.sym(1.0)).collect())
                .collect();
            let grads = (0..steps)
                .map(|_| {
                    lens.iter()
                        .map(|&n| (0..n).map(|_| rng.sym(2.0)).collect())
                        .collect()
                })
                .collect();
            Case { cfg, init, grads }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn efficient_f64_equals_oracle(case in case()) {
        run::<f64>(Form::Efficient, &case, 1e-12);
    }

    #[test]
    fn reference_form_f64_equals_oracle(case in case()) {
        run::<f64>(Form::Reference, &case, 1e-12);
    }

    #[test]
    fn efficient_f32_close_to_f64_oracle(case in case()) {
        run::<f32>(Form::Efficient, &case, 1e-5);
    }

    #[test]
    fn reference_form_f32_close_to_f64_oracle(case in case()) {
        run::<f32>(Form::Reference, &case, 1e-5);
    }
}

/// A fixed, longer run with every feature on (warmup, decay, `r`, Adam), so that a regression
/// shows up even if proptest's sample misses it.
#[test]
fn long_run_all_features_f64() {
    for learner in [
        OracleLearner::Sgd,
        OracleLearner::Adam {
            beta2: 0.999,
            eps: 1e-8,
        },
    ] {
        let cfg = OracleConfig {
            lr: 0.3,
            beta: 0.9,
            weight_decay: 0.1,
            warmup_steps: 5,
            r: 0.75,
            weight_lr_power: 2.0,
            learner,
        };
        let mut rng = SplitMix(7);
        let lens = [3usize, 0, 17];
        let init = lens
            .iter()
            .map(|&n| (0..n).map(|_| rng.sym(1.0)).collect())
            .collect();
        let grads = (0..200)
            .map(|_| {
                lens.iter()
                    .map(|&n| (0..n).map(|_| rng.sym(1.0)).collect())
                    .collect()
            })
            .collect();
        let case = Case { cfg, init, grads };
        run::<f64>(Form::Efficient, &case, 1e-12);
        run::<f64>(Form::Reference, &case, 1e-12);
        run::<f32>(Form::Efficient, &case, 1e-5);
    }
}

/// The test harness itself can fail: a wrong oracle configuration is caught.
#[test]
fn harness_detects_a_wrong_beta() {
    let cfg = OracleConfig {
        lr: 0.5,
        beta: 0.9,
        weight_decay: 0.0,
        warmup_steps: 0,
        r: 0.0,
        weight_lr_power: 2.0,
        learner: OracleLearner::Sgd,
    };
    let mut opt = build::<f64>(Form::Efficient, &OracleConfig { beta: 0.8, ..cfg });
    opt.add_param_to(0, "t0", &[1]).expect("new");
    let mut y = vec![1.0];
    let mut o = ScheduleFreeOracle::new(cfg, &y);
    for _ in 0..3 {
        let g = vec![1.0];
        o.step(&g);
        opt.step(&mut [Param::new("t0", &mut y, &g)])
            .expect("train");
    }
    assert!(
        (y[0] - o.y[0]).abs() > 1e-6,
        "different β must give a different y"
    );
}
