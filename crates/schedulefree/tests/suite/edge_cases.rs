//! Edge cases with exact values (ALGORITHMS.md §2.6, §12.1 items 4, 10, 14; DESIGN.md §4):
//! hand-computed trajectories, warmup weights, zero learning rates, non-finite gradients,
//! parameters without gradients, empty tensors, long zero-lr runs and convergence.

use schedulefree::conversion::{AveragingWeights, ScheduleFree};
use schedulefree::decay::DecoupledAtY;
use schedulefree::learner::{Adam, Sgd};
use schedulefree::schedule::Tabulated;
use schedulefree::{
    AdamWScheduleFree, DynOptimizer, Element, GroupConfig, NonFinitePolicy, Optimizer, Param,
    ScheduleFreeWrapper, SgdScheduleFree, Skipped, StepError,
};

fn bits<T: Element>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.f64().to_bits()).collect()
}

fn x_of<T: Element>(opt: &dyn DynOptimizer<T>, name: &str, y: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    opt.eval_params_into(name, y, &mut out).expect("registered");
    out
}

/// Gradients that look random but are reproducible.
fn grad(step: usize, n: usize, salt: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((step * 7 + i * 13) as f64 * 0.37 + salt).sin())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Hand-computed values.
// ---------------------------------------------------------------------------------------

/// SF-SGD on `f(x) = ½x²` from `x = 1`, lr 0.5, β 0.9. Step 1: `g = 1`, `z = 0.5`, `c = 1`,
/// `x = y = 0.5`. Step 2: `g = 0.5`, `z = 0.25`, `c = ½`, `x = 0.375`,
/// `y = 0.9·0.375 + 0.1·0.25 = 0.3625`.
#[test]
fn sf_sgd_two_steps_on_a_parabola() {
    for reference in [false, true] {
        let cfg = SgdScheduleFree {
            lr: 0.5,
            momentum: 0.9,
            ..Default::default()
        };
        let mut opt: Box<dyn DynOptimizer<f64>> = if reference {
            Box::new(cfg.build_reference::<f64>().expect("valid"))
        } else {
            Box::new(cfg.build::<f64>().expect("valid"))
        };
        opt.add_param_to(0, "x", &[1]).expect("new");
        let mut y = vec![1.0];
        let mut cs = Vec::new();
        for _ in 0..2 {
            let g = y.clone();
            cs.push(
                opt.step(&mut [Param::new("x", &mut y, &g)])
                    .expect("train")
                    .group
                    .c,
            );
        }
        let x = x_of(&*opt, "x", &y);
        let z = opt.state_buffer("x", "z").expect("z");
        assert_eq!(cs, [1.0, 0.5]);
        assert!((y[0] - 0.3625).abs() < 1e-15, "y = {y:?}");
        assert!((x[0] - 0.375).abs() < 1e-15, "x = {x:?}");
        assert!((z[0] - 0.25).abs() < 1e-15, "z = {z:?}");
    }
}

/// lr 1, warmup 4, `r = 0`, `p = 2`: `lr_k = (k+1)/4` then 1, `w = lr_max²`, so
/// `c = 1, 4/5, 9/14, 16/30, 16/46`.
#[test]
fn warmup_four_averaging_weights() {
    let mut opt = SgdScheduleFree {
        lr: 1.0,
        warmup_steps: 4,
        ..Default::default()
    }
    .build::<f64>()
    .expect("valid");
    opt.add_param("w", &[2]).expect("new");
    let mut y = vec![1.0, 2.0];
    let want: [f64; 5] = [1.0, 0.8, 9.0 / 14.0, 16.0 / 30.0, 16.0 / 46.0];
    assert!(
        (want[2] - 0.642_857_142_857).abs() < 1e-12 && (want[4] - 0.347_826_086_956).abs() < 1e-12
    );
    for (k, w) in want.iter().enumerate() {
        let g = y.clone();
        let info = opt
            .step(&mut [Param::new("w", &mut y, &g)])
            .expect("train")
            .group;
        assert!(
            (info.c - w).abs() < 1e-12,
            "k = {k}: c = {}, want {w}",
            info.c
        );
        assert_eq!(info.lr, ((k + 1) as f64 / 4.0).min(1.0));
    }
}

// ---------------------------------------------------------------------------------------
// Zero learning rates.
// ---------------------------------------------------------------------------------------

fn tabulated_sf<L: schedulefree::learner::Learner + 'static>(
    learner: L,
    table: Vec<f64>,
    wd: f64,
) -> Box<dyn DynOptimizer<f64>> {
    Box::new(
        Optimizer::<f64, _, _, _, _>::new(
            learner,
            ScheduleFree {
                beta: 0.9,
                weights: AveragingWeights::default(),
                decoupling_c: 0.0,
                anneal: None,
                c_warmup: 0,
            },
            DecoupledAtY,
            Tabulated::new(table).expect("valid"),
            GroupConfig {
                lr: 1.0,
                weight_decay: wd,
            },
        )
        .expect("valid"),
    )
}

/// lr sequence 0, 0.5, 0.5: `c = 0, 1, 0.5` (the 0/0 guard), no NaN, and the zero-lr step
/// leaves `y`, `z`, `x` bit-identical.
#[test]
fn zero_lr_step_is_an_exact_no_op() {
    let adam = Adam {
        beta1: 0.0,
        ..Default::default()
    };
    for mut opt in [
        tabulated_sf(Sgd::plain(), vec![0.0, 0.5, 0.5], 0.1),
        tabulated_sf(adam, vec![0.0, 0.5, 0.5], 0.1),
    ] {
        opt.add_param_to(0, "w", &[3]).expect("new");
        let mut y = vec![0.3, -0.7, 1.9];
        let y0 = y.clone();
        let g = vec![1.0, -2.0, 0.5];
        let info = opt
            .step(&mut [Param::new("w", &mut y, &g)])
            .expect("train")
            .group;
        assert_eq!(
            (info.c, info.lr, info.lr_max, info.weight_sum),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(bits(&y), bits(&y0), "y");
        assert_eq!(
            bits(&opt.state_buffer("w", "z").expect("z created")),
            bits(&y0),
            "z"
        );
        assert_eq!(bits(&x_of(&*opt, "w", &y)), bits(&y0), "x");
        let mut cs = vec![info.c];
        for _ in 0..2 {
            let g: Vec<f64> = y.iter().map(|v| v + 0.1).collect();
            cs.push(
                opt.step(&mut [Param::new("w", &mut y, &g)])
                    .expect("train")
                    .group
                    .c,
            );
        }
        assert_eq!(cs, [0.0, 1.0, 0.5]);
        assert!(y.iter().chain(&x_of(&*opt, "w", &y)).all(|v| v.is_finite()));
        assert_ne!(bits(&y), bits(&y0), "the non-zero steps move");
    }
}

/// optax's test: lr 0 for 25 000 steps leaves the eval parameters at the initial point, with
/// no NaN (ALGORITHMS.md §12.1 item 10).
#[test]
fn zero_lr_for_25000_steps() {
    let mut opt = SgdScheduleFree {
        lr: 0.0,
        weight_decay: 0.1,
        ..Default::default()
    }
    .build::<f64>()
    .expect("valid");
    opt.add_param("w", &[3]).expect("new");
    let init = vec![1.0, -2.0, 3.5];
    let mut y = init.clone();
    let mut g = vec![0.0; 3];
    for k in 0..25_000 {
        for (gi, yi) in g.iter_mut().zip(&y) {
            *gi = 2.0 * yi + (k as f64).sin();
        }
        let c = opt
            .step(&mut [Param::new("w", &mut y, &g)])
            .expect("train")
            .group
            .c;
        assert_eq!(c, 0.0);
    }
    opt.eval(&mut [Param::no_grad("w", &mut y)])
        .expect("all passed");
    assert_eq!(bits(&y), bits(&init));
    assert_eq!(opt.step_count(), 25_000);
}

// ---------------------------------------------------------------------------------------
// Non-finite gradients.
// ---------------------------------------------------------------------------------------

type SfAdam = schedulefree::presets::AdamWScheduleFreeOptimizer<f64>;

fn sf_adam(policy: NonFinitePolicy) -> SfAdam {
    let mut o = AdamWScheduleFree {
        lr: 0.05,
        warmup_steps: 2,
        weight_decay: 0.01,
        inner_momentum: 0.9,
        r: 0.5,
        ..Default::default()
    }
    .build::<f64>()
    .expect("valid")
    .with_non_finite(policy);
    o.add_param("a", &[4]).expect("new");
    o.add_param("b", &[3]).expect("new");
    o
}

/// A NaN or ±inf gradient at step 3 skips the step atomically; the next finite step equals
/// the uninterrupted step 3 bit for bit.
#[test]
fn non_finite_gradient_skips_the_step_atomically() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut clean = sf_adam(NonFinitePolicy::Skip);
        let mut hit = sf_adam(NonFinitePolicy::Skip);
        let (mut a1, mut b1) = (vec![0.1, 0.2, 0.3, 0.4], vec![-1.0, 0.0, 1.0]);
        let (mut a2, mut b2) = (a1.clone(), b1.clone());
        for step in 0..6 {
            let (ga, gb) = (grad(step, 4, 0.0), grad(step, 3, 1.0));
            if step == 2 {
                let before = (hit.state(), hit.group_info(0), a2.clone(), b2.clone());
                let mut gb_bad = gb.clone();
                gb_bad[1] = bad;
                let info = hit
                    .step(&mut [
                        Param::new("a", &mut a2, &ga),
                        Param::new("b", &mut b2, &gb_bad),
                    ])
                    .expect("Skip policy reports, does not fail");
                assert_eq!(info.skipped, Some(Skipped::NonFiniteGradient { index: 1 }));
                // Only the skipped-steps counter moves.
                let mut expected_info = before.1.expect("group 0");
                expected_info.skipped_steps += 1;
                assert_eq!(
                    info.group, expected_info,
                    "info repeats the previous step's values"
                );
                let mut expected_state = before.0.clone();
                for g in &mut expected_state.groups {
                    g.last.skipped_steps += 1;
                }
                assert_eq!(
                    hit.state(),
                    expected_state,
                    "k, lr_max, weight sum and all buffers unchanged"
                );
                assert_eq!(hit.group_info(0), Some(expected_info));
                assert_eq!(
                    (bits(&a2), bits(&b2)),
                    (bits(&before.2), bits(&before.3)),
                    "y unchanged"
                );
            }
            let i1 = clean
                .step(&mut [Param::new("a", &mut a1, &ga), Param::new("b", &mut b1, &gb)])
                .expect("train");
            let i2 = hit
                .step(&mut [Param::new("a", &mut a2, &ga), Param::new("b", &mut b2, &gb)])
                .expect("train");
            let skipped = u64::from(step >= 2);
            assert_eq!(i2.group.skipped_steps, skipped);
            assert_eq!(
                i1,
                schedulefree::StepInfo {
                    group: schedulefree::GroupStepInfo {
                        skipped_steps: 0,
                        ..i2.group
                    },
                    ..i2
                }
            );
            assert_eq!(
                (bits(&a1), bits(&b1)),
                (bits(&a2), bits(&b2)),
                "bad = {bad}, step {step}"
            );
            let mut hit_state = hit.state();
            for g in &mut hit_state.groups {
                assert_eq!(g.last.skipped_steps, skipped);
                g.last.skipped_steps = 0;
            }
            assert_eq!(clean.state(), hit_state);
        }
    }
}

#[test]
fn non_finite_gradient_error_policy_changes_nothing() {
    let mut opt = sf_adam(NonFinitePolicy::Error);
    let (mut a, mut b) = (vec![0.1, 0.2, 0.3, 0.4], vec![-1.0, 0.0, 1.0]);
    for step in 0..2 {
        let (ga, gb) = (grad(step, 4, 0.0), grad(step, 3, 1.0));
        opt.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
            .expect("train");
    }
    let before = (opt.state(), opt.group_info(0), a.clone(), b.clone());
    let mut ga = grad(2, 4, 0.0);
    ga[3] = f64::INFINITY;
    let gb = grad(2, 3, 1.0);
    let err = opt
        .step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
        .expect_err("strict");
    assert_eq!(err, StepError::NonFiniteGradient("a".into()));
    assert!(err.to_string().contains("`a`"), "{err}");
    assert_eq!((opt.state(), opt.group_info(0), a, b), before);
}

// ---------------------------------------------------------------------------------------
// Parameters: identical twins, frozen parameters, empty tensors.
// ---------------------------------------------------------------------------------------

#[test]
fn identical_parameters_get_identical_updates() {
    let mut opt = sf_adam(NonFinitePolicy::Skip);
    opt.add_param("a2", &[2, 2]).expect("new");
    let mut a = vec![0.5, -0.25, 2.0, 0.0];
    let mut a2 = a.clone();
    let mut b = vec![1.0; 3];
    for step in 0..20 {
        let ga = grad(step, 4, 0.3);
        let gb = grad(step, 3, 0.7);
        opt.step(&mut [
            Param::new("a", &mut a, &ga),
            Param::new("b", &mut b, &gb),
            Param::new("a2", &mut a2, &ga),
        ])
        .expect("train");
        assert_eq!(bits(&a), bits(&a2));
    }
    for slot in ["z", "exp_avg", "exp_avg_sq"] {
        assert_eq!(
            opt.state_buffer("a", slot),
            opt.state_buffer("a2", slot),
            "{slot}"
        );
    }
    assert_eq!(bits(&x_of(&opt, "a", &a)), bits(&x_of(&opt, "a2", &a2)));
}

/// Parameters without a gradient get no state and never move — passed without gradient, or
/// not passed at all — while the others step; mode switches leave them alone too.
#[test]
fn parameters_without_gradient_get_no_state_and_never_move() {
    let mut opt = sf_adam(NonFinitePolicy::Skip);
    opt.add_param("frozen", &[2]).expect("new");
    let (mut a, mut b) = (vec![0.1, 0.2, 0.3, 0.4], vec![-1.0, 0.0, 1.0]);
    let mut frozen = vec![3.0, -4.0];
    let f0 = bits(&frozen);
    for step in 0..10 {
        let ga = grad(step, 4, 0.0);
        let gb = grad(step, 3, 1.0);
        if step % 2 == 0 {
            opt.step(&mut [
                Param::new("a", &mut a, &ga),
                Param::no_grad("frozen", &mut frozen),
                Param::new("b", &mut b, &gb),
            ])
        } else {
            opt.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
        }
        .expect("train");
        assert_eq!(bits(&frozen), f0);
        assert_eq!(opt.state_buffer("frozen", "z"), None);
        assert_eq!(opt.state_buffer("frozen", "exp_avg_sq"), None);
        assert!(opt.state_buffer("a", "z").is_some());
    }
    assert!(opt.state().params["frozen"].buffers.is_empty());
    assert_eq!(opt.step_count(), 10, "the counter advances regardless");
    assert_eq!(bits(&x_of(&opt, "frozen", &frozen)), f0);
    // Without state, a frozen parameter need not be passed to the mode switches; if passed it
    // is not moved.
    opt.eval(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
        .expect("frozen may be omitted");
    opt.train(&mut [
        Param::no_grad("a", &mut a),
        Param::no_grad("frozen", &mut frozen),
        Param::no_grad("b", &mut b),
    ])
    .expect("train");
    assert_eq!(bits(&frozen), f0);
    // b untouched by a step in which it gets no gradient.
    let b_before = bits(&b);
    let z_before = opt.state_buffer("b", "z");
    let ga = grad(99, 4, 0.0);
    opt.step(&mut [Param::new("a", &mut a, &ga), Param::no_grad("b", &mut b)])
        .expect("train");
    assert_eq!((bits(&b), opt.state_buffer("b", "z")), (b_before, z_before));
}

/// Empty tensors (shape `[0]`, `[3, 0]`) are no-ops and do not disturb the others.
#[test]
fn empty_tensors_are_no_ops() {
    let mut with = sf_adam(NonFinitePolicy::Skip);
    with.add_param("e", &[0]).expect("new");
    with.add_param("e2", &[3, 0]).expect("new");
    let mut without = sf_adam(NonFinitePolicy::Skip);
    let (mut a1, mut b1) = (vec![0.1, 0.2, 0.3, 0.4], vec![-1.0, 0.0, 1.0]);
    let (mut a2, mut b2) = (a1.clone(), b1.clone());
    let (mut e, mut e2): (Vec<f64>, Vec<f64>) = (vec![], vec![]);
    for step in 0..5 {
        let (ga, gb) = (grad(step, 4, 0.0), grad(step, 3, 1.0));
        let info = with
            .step(&mut [
                Param::new("e", &mut e, &[]),
                Param::new("a", &mut a1, &ga),
                Param::new("e2", &mut e2, &[]),
                Param::new("b", &mut b1, &gb),
            ])
            .expect("train");
        let info2 = without
            .step(&mut [Param::new("a", &mut a2, &ga), Param::new("b", &mut b2, &gb)])
            .expect("train");
        assert_eq!(info, info2);
        assert_eq!((bits(&a1), bits(&b1)), (bits(&a2), bits(&b2)));
        assert_eq!(with.state_buffer("e", "z"), Some(vec![]));
    }
    let mut out: Vec<f64> = vec![];
    with.eval_params_into("e", &e, &mut out)
        .expect("empty is fine");
    with.eval(&mut [
        Param::no_grad("a", &mut a1),
        Param::no_grad("b", &mut b1),
        Param::no_grad("e", &mut e),
        Param::no_grad("e2", &mut e2),
    ])
    .expect("eval");
    with.train(&mut [
        Param::no_grad("a", &mut a1),
        Param::no_grad("b", &mut b1),
        Param::no_grad("e", &mut e),
        Param::no_grad("e2", &mut e2),
    ])
    .expect("train");
    let st = with.state();
    assert!(st.params["e"].buffers.values().all(Vec::is_empty));
    let json = serde_json::to_string(&st).expect("serialize");
    let mut fresh = sf_adam(NonFinitePolicy::Skip);
    fresh.add_param("e", &[0]).expect("new");
    fresh.add_param("e2", &[3, 0]).expect("new");
    fresh
        .load_state(&serde_json::from_str(&json).expect("parse"))
        .expect("load");
    assert_eq!(fresh.state(), st);
}

// ---------------------------------------------------------------------------------------
// Convergence (optax's protocol, ALGORITHMS.md §12.1 item 14): lr warmup 0 → 1e-2 over 5000
// updates, then constant; 25 000 updates; within 3e-2 of the minimiser. Measured: a few ms
// per run in the debug profile, so the full protocol is kept.
// ---------------------------------------------------------------------------------------

fn parabola(w: &[f64], g: &mut [f64]) {
    // f(w) = Σ (w − (1, −1, 1))²
    for ((g, w), a) in g.iter_mut().zip(w).zip([1.0, -1.0, 1.0]) {
        *g = 2.0 * (w - a);
    }
}

fn rosenbrock(w: &[f64], g: &mut [f64]) {
    // f(x, y) = (1 − x)² + 100 (y − x²)²
    let (x, y) = (w[0], w[1]);
    g[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
    g[1] = 200.0 * (y - x * x);
}

type Objective = fn(&[f64], &mut [f64]);

fn converge(mut opt: Box<dyn DynOptimizer<f64>>, init: &[f64], grad: Objective) -> Vec<f64> {
    opt.add_param_to(0, "w", &[init.len()]).expect("new");
    let mut y = init.to_vec();
    let mut g = vec![0.0; y.len()];
    for _ in 0..25_000 {
        grad(&y, &mut g);
        opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train");
    }
    x_of(&*opt, "w", &y)
}

#[test]
fn converges_on_parabola_and_rosenbrock() {
    let (lr, warmup) = (1e-2, 5000);
    type Make = fn(f64, u64) -> Box<dyn DynOptimizer<f64>>;
    let methods: [(&str, Make); 4] = [
        ("sf-sgd", |lr, w| {
            Box::new(
                SgdScheduleFree {
                    lr,
                    warmup_steps: w,
                    ..Default::default()
                }
                .build::<f64>()
                .expect("valid"),
            )
        }),
        ("sf-adam", |lr, w| {
            Box::new(
                AdamWScheduleFree {
                    lr,
                    warmup_steps: w,
                    ..Default::default()
                }
                .build::<f64>()
                .expect("valid"),
            )
        }),
        ("sf-adamw", |lr, w| {
            Box::new(
                AdamWScheduleFree {
                    lr,
                    warmup_steps: w,
                    weight_decay: 1e-4,
                    ..Default::default()
                }
                .build::<f64>()
                .expect("valid"),
            )
        }),
        // optax's generic wrapper around Adam without momentum (warmup through the group lr is
        // not available in the wrapper; it uses the constant lr).
        ("wrapper(adam b1=0)", |lr, _| {
            Box::new(
                ScheduleFreeWrapper::default()
                    .wrap::<f64, _>(
                        Adam {
                            beta1: 0.0,
                            ..Default::default()
                        },
                        lr,
                    )
                    .expect("valid"),
            )
        }),
    ];
    let problems: [(&str, &[f64], &[f64], Objective); 2] = [
        ("parabola", &[-1.0, 10.0, 1.0], &[1.0, -1.0, 1.0], parabola),
        ("rosenbrock", &[0.0, 0.0], &[1.0, 1.0], rosenbrock),
    ];
    for (method, make) in methods {
        for (problem, init, target, grad) in problems {
            let x = converge(make(lr, warmup), init, grad);
            let err = x
                .iter()
                .zip(target)
                .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= 3e-2,
                "{method} on {problem}: x = {x:?}, max error {err}"
            );
        }
    }
}

/// A parameter whose first gradient arrives at group step k: Schedule-Free AdamW (like its
/// reference class) uses the group's k in the bias correction, torch-style AdamW the
/// parameter's own count.
#[test]
fn late_parameters_use_the_reference_step_counter() {
    let (lr, b2, eps, late) = (0.1, 0.999, 1e-8, 5u64);
    let mut sf = schedulefree::AdamWScheduleFree {
        lr,
        betas: (0.9, b2),
        eps,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    let mut tw = schedulefree::presets::AdamW {
        lr,
        betas: (0.0, b2),
        eps,
        weight_decay: 0.0,
    }
    .build::<f64, _>(schedulefree::schedule::Constant)
    .expect("config");
    for name in ["a", "b"] {
        sf.add_param(name, &[1]).expect("name");
        tw.add_param(name, &[1]).expect("name");
    }
    let (mut a1, mut b1, mut a2, mut b2v) = (vec![1.0], vec![1.0], vec![1.0], vec![1.0]);
    let g = vec![0.5];
    for _ in 0..late {
        sf.step(&mut [Param::new("a", &mut a1, &g), Param::no_grad("b", &mut b1)])
            .expect("step");
        tw.step(&mut [Param::new("a", &mut a2, &g), Param::no_grad("b", &mut b2v)])
            .expect("step");
    }
    sf.step(&mut [Param::new("a", &mut a1, &g), Param::new("b", &mut b1, &g)])
        .expect("step");
    tw.step(&mut [Param::new("a", &mut a2, &g), Param::new("b", &mut b2v, &g)])
        .expect("step");
    let v = (1.0 - b2) * 0.25;
    let step = |t: u64| lr * 0.5 / ((v / (1.0 - b2.powf(t as f64))).sqrt() + eps);
    let z = sf.state_buffer("b", "z").expect("state")[0];
    assert!(
        (z - (1.0 - step(late + 1))).abs() < 1e-14,
        "SF z = {z}, expected group-count step"
    );
    assert!(
        (b2v[0] - (1.0 - step(1))).abs() < 1e-14,
        "AdamW p = {}, expected per-parameter step",
        b2v[0]
    );
}

/// The non-finite check sees a bad value wherever it sits: in the 8-lane body, in the tail,
/// and in the parallel path for long tensors.
#[test]
fn non_finite_values_are_found_anywhere_in_long_gradients() {
    for &(len, at) in &[
        (1000usize, 0usize),
        (1000, 517),
        (1003, 1002),
        (200_000, 199_999),
        (200_000, 70_001),
    ] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut opt = schedulefree::SgdScheduleFree::default()
                .build::<f32>()
                .expect("config");
            opt.add_param("w", &[len]).expect("name");
            let mut w = vec![1.0f32; len];
            let mut g = vec![0.5f32; len];
            g[at] = bad;
            let info = opt
                .step(&mut [Param::new("w", &mut w, &g)])
                .expect("skip, not error");
            assert!(
                info.skipped.is_some(),
                "len {len}, {bad} at {at} not detected"
            );
            assert!(w.iter().all(|&v| v == 1.0));
        }
    }
}
