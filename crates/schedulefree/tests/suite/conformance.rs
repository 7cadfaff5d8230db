//! Layer 4 of DESIGN.md §5: one registry of every preset (and the composed conversions), each
//! run through the same checks: converges on a quadratic, lr 0 is a no-op, empty tensors are
//! no-ops, resume is bit-exact, the eval/train round trip restores `y`; and the scoped
//! [`EvalGuard`](schedulefree::EvalGuard) shows `x` and restores `y` bit for bit.

use schedulefree::conversion::{AveragingWeights, Conversion, Ema, PolyakAverage, PrimalAverage};
use schedulefree::decay::{Decay, DecoupledAtY, L2};
use schedulefree::learner::{Adam, Learner, RAdam, Sgd};
use schedulefree::presets;
use schedulefree::schedule::{Constant, Cosine, Linear, Schedule};
use schedulefree::{
    AdamW, AdamWScheduleFree, AdamWScheduleFreePaper, AdamWScheduleFreeReference, DynOptimizer,
    Element, GroupConfig, Optimizer, OptimizerState, Param, RAdamScheduleFree, ScheduleFreeWrapper,
    SgdScheduleFree, SgdScheduleFreeReference,
};

type Dyn = Box<dyn DynOptimizer<f64>>;

/// Updates in the convergence check; schedules with a horizon use it.
const STEPS: usize = 1500;

/// One registry row: a name, the lr at which it converges on the test quadratic, and a
/// constructor taking `(lr, weight_decay)`.
struct Row {
    name: &'static str,
    lr: f64,
    make: fn(f64, f64) -> Dyn,
}

fn composed<
    L: Learner + 'static,
    C: Conversion + 'static,
    D: Decay + 'static,
    S: Schedule + 'static,
>(
    learner: L,
    conversion: C,
    decay: D,
    schedule: S,
    lr: f64,
    wd: f64,
) -> Dyn {
    Box::new(
        Optimizer::<f64, _, _, _, _>::new(
            learner,
            conversion,
            decay,
            schedule,
            GroupConfig {
                lr,
                weight_decay: wd,
            },
        )
        .expect("valid"),
    )
}

fn registry() -> Vec<Row> {
    vec![
        Row {
            name: "SgdScheduleFree",
            lr: 0.5,
            make: |lr, wd| {
                Box::new(
                    SgdScheduleFree {
                        lr,
                        weight_decay: wd,
                        warmup_steps: 20,
                        ..Default::default()
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "SgdScheduleFreeReference",
            lr: 0.5,
            make: |lr, wd| {
                Box::new(
                    SgdScheduleFreeReference(SgdScheduleFree {
                        lr,
                        weight_decay: wd,
                        warmup_steps: 20,
                        r: 1.0,
                        ..Default::default()
                    })
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamWScheduleFree",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamWScheduleFree {
                        lr,
                        weight_decay: wd,
                        warmup_steps: 20,
                        ..Default::default()
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamWScheduleFree(inner_momentum 0.9)",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamWScheduleFree {
                        lr,
                        weight_decay: wd,
                        warmup_steps: 20,
                        inner_momentum: 0.9,
                        ..Default::default()
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamWScheduleFreePaper",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamWScheduleFreePaper(AdamWScheduleFree {
                        lr,
                        weight_decay: wd,
                        warmup_steps: 20,
                        ..Default::default()
                    })
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamWScheduleFreeReference",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamWScheduleFreeReference {
                        config: AdamWScheduleFree {
                            lr,
                            weight_decay: wd,
                            warmup_steps: 20,
                            inner_momentum: 0.5,
                            ..Default::default()
                        },
                        decay_at_z: false,
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamWScheduleFreeReference(decay_at_z)",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamWScheduleFreeReference {
                        config: AdamWScheduleFree {
                            lr,
                            weight_decay: wd,
                            warmup_steps: 20,
                            ..Default::default()
                        },
                        decay_at_z: true,
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "RAdamScheduleFree",
            lr: 0.1,
            make: |lr, wd| {
                Box::new(
                    RAdamScheduleFree {
                        lr,
                        weight_decay: wd,
                        ..Default::default()
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "RAdamScheduleFree(no silent phase)",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    RAdamScheduleFree {
                        lr,
                        weight_decay: wd,
                        silent_sgd_phase: false,
                        betas: (0.95, 0.99),
                        ..Default::default()
                    }
                    .build::<f64>()
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "ScheduleFreeWrapper(Adam b1=0)",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    ScheduleFreeWrapper {
                        weight_decay_at_y: wd,
                        ..Default::default()
                    }
                    .wrap::<f64, _>(
                        Adam {
                            beta1: 0.0,
                            ..Default::default()
                        },
                        lr,
                    )
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "ScheduleFreeWrapper(RAdam)",
            lr: 0.1,
            make: |lr, wd| {
                Box::new(
                    ScheduleFreeWrapper {
                        weight_decay_at_y: wd,
                        momentum: 0.95,
                        ..Default::default()
                    }
                    .wrap::<f64, _>(RAdam::default(), lr)
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "ScheduleFreeWrapperReference(Sgd)",
            lr: 0.5,
            make: |lr, wd| {
                Box::new(
                    ScheduleFreeWrapper {
                        weight_decay_at_y: wd,
                        r: 0.5,
                        ..Default::default()
                    }
                    .wrap_reference::<f64, _>(Sgd::plain(), lr)
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "AdamW(cosine)",
            lr: 0.05,
            make: |lr, wd| {
                Box::new(
                    AdamW {
                        lr,
                        weight_decay: wd,
                        ..Default::default()
                    }
                    .build::<f64, _>(Cosine::new(20, STEPS as u64, 0.0).expect("valid"))
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "Sgd(nesterov, linear decay)",
            lr: 0.1,
            make: |lr, wd| {
                Box::new(
                    presets::TorchSgd {
                        lr,
                        weight_decay: wd,
                        momentum: 0.9,
                        nesterov: true,
                        ..Default::default()
                    }
                    .build::<f64, _>(Linear::new(20, STEPS as u64, 0.0).expect("valid"))
                    .expect("valid"),
                )
            },
        },
        Row {
            name: "Sgd + PolyakAverage",
            lr: 0.5,
            make: |lr, wd| {
                composed(
                    Sgd::plain(),
                    PolyakAverage {
                        weights: AveragingWeights {
                            r: 1.0,
                            weight_lr_power: 0.0,
                        },
                    },
                    L2,
                    Constant,
                    lr,
                    wd,
                )
            },
        },
        Row {
            name: "Adam + Ema",
            lr: 0.02,
            make: |lr, wd| {
                composed(
                    Adam {
                        beta1: 0.9,
                        ..Default::default()
                    },
                    Ema { decay: 0.99 },
                    DecoupledAtY,
                    Linear::new(0, STEPS as u64, 0.0).expect("valid"),
                    lr,
                    wd,
                )
            },
        },
        Row {
            name: "Sgd + PrimalAverage",
            lr: 0.5,
            make: |lr, wd| {
                composed(
                    Sgd::plain(),
                    PrimalAverage::default(),
                    DecoupledAtY,
                    Constant,
                    lr,
                    wd,
                )
            },
        },
    ]
}

// ---------------------------------------------------------------------------------------
// The test problem: f(w) = ½ Σ h_i (w_i − t_i)², two tensors.
// ---------------------------------------------------------------------------------------

const H: [f64; 5] = [0.5, 1.0, 2.0, 1.5, 0.8];
const TARGET: [f64; 5] = [1.0, -2.0, 0.5, 3.0, -0.25];

fn grad_of(w: &[f64], offset: usize) -> Vec<f64> {
    w.iter()
        .enumerate()
        .map(|(i, v)| H[offset + i] * (v - TARGET[offset + i]))
        .collect()
}

/// Registers "a" [3] and "b" [2] (+ "empty" [0] if asked).
fn setup(opt: &mut dyn DynOptimizer<f64>, empty: bool) {
    opt.add_param_to(0, "a", &[3]).expect("new");
    if empty {
        opt.add_param_to(0, "empty", &[0]).expect("new");
    }
    opt.add_param_to(0, "b", &[2]).expect("new");
}

fn init() -> (Vec<f64>, Vec<f64>) {
    (vec![0.0, 0.3, -0.1], vec![0.2, 0.0])
}

fn step(
    opt: &mut dyn DynOptimizer<f64>,
    a: &mut [f64],
    b: &mut [f64],
    empty: Option<&mut Vec<f64>>,
) {
    let (ga, gb) = (grad_of(a, 0), grad_of(b, 3));
    let mut params = vec![Param::new("a", a, &ga), Param::new("b", b, &gb)];
    if let Some(e) = empty {
        params.insert(1, Param::new("empty", e, &[]));
    }
    let info = opt.step(&mut params).expect("train mode");
    assert!(info.skipped.is_none());
}

fn eval_point(opt: &dyn DynOptimizer<f64>, name: &str, y: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; y.len()];
    opt.eval_params_into(name, y, &mut out).expect("registered");
    out
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn state_bits(st: &OptimizerState) -> String {
    // Bit patterns of every number, in a canonical order (BTreeMaps), as one comparable string.
    let mut s = format!("{} {:?} {:?}\n", st.method, st.dtype, st.slots);
    for g in &st.groups {
        s += &format!(
            "group {} {:x} {:x} {}\n",
            g.k,
            g.lr_max.to_bits(),
            g.weight_sum.to_bits(),
            g.train_mode
        );
    }
    for (n, p) in &st.params {
        s += &format!("{n} {} {:?} {}\n", p.group, p.shape, p.updates);
        for (slot, v) in &p.buffers {
            s += &format!("  {slot} {:x?}\n", bits(v));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------

#[test]
fn registry_names_are_unique() {
    let rows = registry();
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len());
}

#[test]
fn every_preset_converges_on_a_quadratic() {
    let mut failures = Vec::new();
    for row in registry() {
        let mut opt = (row.make)(row.lr, 0.0);
        setup(&mut *opt, false);
        let (mut a, mut b) = init();
        for _ in 0..STEPS {
            step(&mut *opt, &mut a, &mut b, None);
        }
        let x: Vec<f64> = eval_point(&*opt, "a", &a)
            .into_iter()
            .chain(eval_point(&*opt, "b", &b))
            .collect();
        let err = x
            .iter()
            .zip(TARGET)
            .fold(0.0_f64, |m, (x, t)| m.max((x - t).abs()));
        if err.is_nan() || err > 1e-2 {
            failures.push(format!("{}: x = {x:?}, max error {err:e}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "did not converge:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_preset_with_lr_zero_is_a_no_op() {
    for row in registry() {
        let mut opt = (row.make)(0.0, 0.01);
        setup(&mut *opt, false);
        let (mut a, mut b) = init();
        let (a0, b0) = (bits(&a), bits(&b));
        for _ in 0..30 {
            step(&mut *opt, &mut a, &mut b, None);
            assert_eq!(
                (bits(&a), bits(&b)),
                (a0.clone(), b0.clone()),
                "{}: buffers moved",
                row.name
            );
            assert_eq!(
                bits(&eval_point(&*opt, "a", &a)),
                a0,
                "{}: eval point moved",
                row.name
            );
            assert_eq!(
                bits(&eval_point(&*opt, "b", &b)),
                b0,
                "{}: eval point moved",
                row.name
            );
        }
        let mut params = [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)];
        opt.eval(&mut params).expect("all passed");
        assert_eq!((bits(&a), bits(&b)), (a0, b0), "{}: eval()", row.name);
    }
}

#[test]
fn every_preset_ignores_empty_tensors() {
    for row in registry() {
        let mut with = (row.make)(row.lr, 0.01);
        setup(&mut *with, true);
        let mut without = (row.make)(row.lr, 0.01);
        setup(&mut *without, false);
        let (mut a1, mut b1) = init();
        let (mut a2, mut b2) = init();
        let mut e = Vec::new();
        for _ in 0..15 {
            step(&mut *with, &mut a1, &mut b1, Some(&mut e));
            step(&mut *without, &mut a2, &mut b2, None);
            assert_eq!(
                (bits(&a1), bits(&b1)),
                (bits(&a2), bits(&b2)),
                "{}",
                row.name
            );
        }
        assert!(e.is_empty());
        let mut params = [
            Param::no_grad("a", &mut a1),
            Param::no_grad("empty", &mut e),
            Param::no_grad("b", &mut b1),
        ];
        with.eval(&mut params).expect("eval");
        with.train(&mut params).expect("train");
        // The empty tensor's state (if the method has any) is empty too.
        let st = with.state();
        assert!(
            st.params["empty"].buffers.values().all(Vec::is_empty),
            "{}",
            row.name
        );
        assert_eq!(st.params["empty"].updates, 15, "{}", row.name);
    }
}

#[test]
fn every_preset_resumes_bit_exactly() {
    const N: usize = 16;
    for row in registry() {
        let mut full = (row.make)(row.lr, 0.01);
        setup(&mut *full, true);
        let (mut a, mut b) = init();
        let mut e = Vec::new();
        for _ in 0..N {
            step(&mut *full, &mut a, &mut b, Some(&mut e));
        }

        let mut first = (row.make)(row.lr, 0.01);
        setup(&mut *first, true);
        let (mut a2, mut b2) = init();
        for _ in 0..N / 2 {
            step(&mut *first, &mut a2, &mut b2, Some(&mut e));
        }
        let json = serde_json::to_string(&first.state()).expect("serialize");
        let st: OptimizerState = serde_json::from_str(&json).expect("parse");
        let mut second = (row.make)(row.lr, 0.01);
        // Registered in another order.
        second.add_param_to(0, "b", &[2]).expect("new");
        second.add_param_to(0, "empty", &[0]).expect("new");
        second.add_param_to(0, "a", &[3]).expect("new");
        second.load_state(&st).expect("compatible");
        for _ in N / 2..N {
            step(&mut *second, &mut a2, &mut b2, Some(&mut e));
        }
        assert_eq!((bits(&a), bits(&b)), (bits(&a2), bits(&b2)), "{}", row.name);
        assert_eq!(
            state_bits(&full.state()),
            state_bits(&second.state()),
            "{}",
            row.name
        );
    }
}

#[test]
fn every_preset_round_trips_eval_train() {
    for row in registry() {
        let mut opt = (row.make)(row.lr, 0.01);
        setup(&mut *opt, false);
        let (mut a, mut b) = init();
        for _ in 0..25 {
            step(&mut *opt, &mut a, &mut b, None);
        }
        let (xa, xb) = (eval_point(&*opt, "a", &a), eval_point(&*opt, "b", &b));
        let (ya, yb) = (a.clone(), b.clone());
        let st = state_bits(&opt.state());
        for trip in 0..10 {
            opt.eval(&mut [Param::no_grad("b", &mut b), Param::no_grad("a", &mut a)])
                .expect("all passed");
            if trip == 0 {
                assert_eq!(
                    (bits(&a), bits(&b)),
                    (bits(&xa), bits(&xb)),
                    "{}: eval buffer = x",
                    row.name
                );
                opt.eval(&mut [Param::no_grad("b", &mut b), Param::no_grad("a", &mut a)])
                    .expect("idempotent");
                assert_eq!(
                    (bits(&a), bits(&b)),
                    (bits(&xa), bits(&xb)),
                    "{}: eval twice",
                    row.name
                );
            }
            opt.train(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
                .expect("all passed");
            opt.train(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
                .expect("idempotent");
        }
        for (got, want) in [(&a, &ya), (&b, &yb)] {
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(
                    (g - w).abs() <= 10.0 * 1e-13 * w.abs().max(1.0),
                    "{}: {g} vs {w}",
                    row.name
                );
            }
        }
        // The state (z, moments, counters, mode) comes back bit for bit. Every conversion
        // except the memory-efficient Schedule-Free one switches modes by copying or swapping,
        // so its buffers come back bit for bit too.
        assert_eq!(state_bits(&opt.state()), st, "{}", row.name);
        if !opt.state().method.contains("+schedule_free+") {
            assert_eq!((bits(&a), bits(&b)), (bits(&ya), bits(&yb)), "{}", row.name);
        }
        // Training continues after the round trip.
        step(&mut *opt, &mut a, &mut b, None);
    }
}

// ---------------------------------------------------------------------------------------
// EvalGuard (an inherent method of the concrete optimizer).
// ---------------------------------------------------------------------------------------

fn guard_check<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule>(
    mut opt: Optimizer<T, L, C, D, S>,
    what: &str,
) {
    opt.add_param("a", &[3]).expect("new");
    opt.add_param("b", &[2]).expect("new");
    opt.add_param("frozen", &[2]).expect("new");
    let mut a: Vec<T> = [0.0, 0.3, -0.1].map(T::of).to_vec();
    let mut b: Vec<T> = [0.2, 0.0].map(T::of).to_vec();
    let mut f: Vec<T> = [5.0, 6.0].map(T::of).to_vec();
    for k in 0..12 {
        let ga: Vec<T> = a.iter().map(|v| *v - T::of(1.0 + k as f64 * 0.1)).collect();
        let gb: Vec<T> = b.iter().map(|v| *v + T::of(0.5)).collect();
        opt.step(&mut [
            Param::new("a", &mut a, &ga),
            Param::no_grad("frozen", &mut f),
            Param::new("b", &mut b, &gb),
        ])
        .expect("train");
    }
    let tb = |v: &[T]| -> Vec<u64> { v.iter().map(|x| x.f64().to_bits()).collect() };
    let (ya, yb, yf) = (tb(&a), tb(&b), tb(&f));
    let mut xa = vec![T::zero(); 3];
    let mut xb = vec![T::zero(); 2];
    opt.eval_params_into("a", &a, &mut xa).expect("a");
    opt.eval_params_into("b", &b, &mut xb).expect("b");
    if opt.conversion().has_modes() {
        assert_ne!(tb(&xa), ya, "{what}: x differs from y");
    }
    {
        let mut params = [
            Param::no_grad("a", &mut a),
            Param::no_grad("b", &mut b),
            Param::no_grad("frozen", &mut f),
        ];
        let guard = opt.eval_guard(&mut params).expect("valid params");
        assert_eq!(
            tb(guard[0].value),
            tb(&xa),
            "{what}: inside the guard a holds x"
        );
        assert_eq!(
            tb(guard[1].value),
            tb(&xb),
            "{what}: inside the guard b holds x"
        );
        assert_eq!(tb(guard[2].value), yf, "{what}: no state, not moved");
        // The optimizer is still usable for reading inside the guard.
        assert!(opt.is_train_mode());
    }
    assert_eq!(
        (tb(&a), tb(&b), tb(&f)),
        (ya, yb, yf),
        "{what}: restored bit for bit"
    );
    // Training continues.
    let ga = vec![T::one(); 3];
    opt.step(&mut [Param::new("a", &mut a, &ga)])
        .expect("train mode");
}

#[test]
fn eval_guard_shows_x_and_restores_y() {
    guard_check(
        SgdScheduleFree {
            lr: 0.3,
            weight_decay: 0.1,
            ..Default::default()
        }
        .build::<f64>()
        .expect("valid"),
        "sgd-sf f64",
    );
    guard_check(
        SgdScheduleFree {
            lr: 0.3,
            ..Default::default()
        }
        .build::<f32>()
        .expect("valid"),
        "sgd-sf f32",
    );
    guard_check(
        AdamWScheduleFree {
            lr: 0.1,
            inner_momentum: 0.9,
            ..Default::default()
        }
        .build::<f32>()
        .expect("valid"),
        "adamw-sf f32",
    );
    guard_check(
        AdamWScheduleFree {
            lr: 0.1,
            betas: (0.98, 0.99),
            ..Default::default()
        }
        .build::<f64>()
        .expect("valid"),
        "adamw-sf f64",
    );
    guard_check(
        SgdScheduleFree {
            lr: 0.3,
            ..Default::default()
        }
        .build_reference::<f64>()
        .expect("valid"),
        "sgd-sf reference",
    );
    guard_check(
        RAdamScheduleFree {
            lr: 0.1,
            silent_sgd_phase: false,
            ..Default::default()
        }
        .build::<f64>()
        .expect("valid"),
        "radam-sf",
    );
    let polyak = Optimizer::<f64, _, _, _, _>::new(
        Sgd::plain(),
        PolyakAverage::default(),
        L2,
        Constant,
        GroupConfig {
            lr: 0.3,
            weight_decay: 0.0,
        },
    );
    guard_check(polyak.expect("valid"), "polyak");
    guard_check(
        AdamW::default().build::<f64, _>(Constant).expect("valid"),
        "adamw (no modes)",
    );
}

/// In eval mode the guard leaves the buffers alone (they already hold x).
#[test]
fn eval_guard_in_eval_mode_is_a_no_op() {
    let mut opt = SgdScheduleFree {
        lr: 0.3,
        ..Default::default()
    }
    .build::<f64>()
    .expect("valid");
    opt.add_param("a", &[2]).expect("new");
    let mut a = vec![1.0, 2.0];
    for _ in 0..3 {
        let g = a.clone();
        opt.step(&mut [Param::new("a", &mut a, &g)]).expect("train");
    }
    opt.eval(&mut [Param::no_grad("a", &mut a)]).expect("eval");
    let x = bits(&a);
    {
        let mut params = [Param::no_grad("a", &mut a)];
        let guard = opt.eval_guard(&mut params).expect("ok");
        assert_eq!(bits(guard[0].value), x);
    }
    assert_eq!(bits(&a), x);
}
