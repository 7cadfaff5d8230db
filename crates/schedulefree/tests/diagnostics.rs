//! Norm diagnostics (ALGORITHMS.md §10.2–10.4): the values measured, independence of the
//! parameter registration and passing order, per-group combination, nothing when off; and
//! `step` allocates nothing in steady state (DESIGN.md §3) with a group-state learner
//! (Prodigy), a corrected and a projected decay policy, diagnostics on or off.
//!
//! A counting global allocator observes heap allocations of the calling thread only (a
//! thread-local counter), so tests running in parallel do not disturb each other; the
//! tensors here are far below the size at which `step` uses other threads.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
use schedulefree::learner::{Adam, Prodigy, Sgd};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{DynOptimizer, GroupConfig, Param, ParamDiagnostics, ParamTags};

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: never panic inside the allocator (e.g. while the thread shuts down).
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(Cell::get)
}

fn composed(
    learner: LearnerConfig,
    conversion: ConversionConfig,
    normalized: NormalizedPolicy,
) -> Composed {
    Composed {
        learner,
        conversion,
        decay: DecayConfig {
            base: AnyDecay::Decoupled,
            normalized,
        },
        schedule: ScheduleConfig::Linear {
            warmup: 5,
            total: 100,
            end: 0.0,
        },
        lr: 0.1,
        weight_decay: 0.05,
    }
}

const SHAPES: [(&str, [usize; 2], ParamTags); 3] = [
    ("a.weight", [4, 6], ParamTags::NORMALIZED),
    ("b.bias", [1, 6], ParamTags::NO_DECAY),
    ("c.weight", [3, 5], ParamTags::NORMALIZED),
];

fn values(i: usize, n: usize, t: usize) -> Vec<f64> {
    (0..n)
        .map(|j| (((i + 1) * (j + 2) + t) as f64 * 0.37).sin())
        .collect()
}

/// Steps on [`SHAPES`] registered in `register` order and passed in `pass` order; the
/// diagnostics of every step.
fn run(register: &[usize], pass: &[usize], steps: usize) -> Vec<Vec<ParamDiagnostics>> {
    let c = composed(
        LearnerConfig::Sgd(Sgd::plain()),
        ConversionConfig::LastIterate,
        NormalizedPolicy::Corrected { peak_lr: None },
    );
    let mut o = c.build_dyn::<f64>().expect("config");
    for &i in register {
        let (n, s, t) = SHAPES[i];
        o.add_param_tagged(0, n, &s, t).expect("new");
    }
    o.set_diagnostics(true);
    let mut w: Vec<Vec<f64>> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, (_, s, _))| values(i, s[0] * s[1], 0))
        .collect();
    let mut out = Vec::new();
    for t in 0..steps {
        let g: Vec<Vec<f64>> = SHAPES
            .iter()
            .enumerate()
            .map(|(i, (_, s, _))| values(i + 7, s[0] * s[1], t))
            .collect();
        let mut slots: Vec<Option<&mut Vec<f64>>> = w.iter_mut().map(Some).collect();
        let mut params: Vec<Param<'_, f64>> = pass
            .iter()
            .map(|&i| Param::new(SHAPES[i].0, slots[i].take().expect("once"), &g[i]))
            .collect();
        o.step(&mut params).expect("step");
        out.push(o.diagnostics());
    }
    out
}

#[test]
fn norms_do_not_depend_on_registration_or_passing_order() {
    let a = run(&[0, 1, 2], &[0, 1, 2], 10);
    let b = run(&[2, 0, 1], &[1, 2, 0], 10);
    assert_eq!(a, b);
    let names: Vec<&str> = a[0].iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a.weight", "b.bias", "c.weight"], "name order");
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// What each field measures, for SGD (`u = g`) under corrected decay, and the per-group
/// combination against the step info's group norm.
#[test]
fn measured_values_and_per_group_combination() {
    let c = composed(
        LearnerConfig::Sgd(Sgd::plain()),
        ConversionConfig::LastIterate,
        NormalizedPolicy::Corrected { peak_lr: Some(0.1) },
    );
    let mut o = c.build_dyn::<f64>().expect("config");
    let g1 = o
        .add_group(GroupConfig {
            lr: 0.2,
            weight_decay: 0.01,
        })
        .expect("group");
    o.add_param_tagged(0, "w0", &[2, 3], ParamTags::NORMALIZED)
        .expect("new");
    o.add_param_tagged(0, "v0", &[4], ParamTags::default())
        .expect("new");
    o.add_param_tagged(g1, "w1", &[3, 3], ParamTags::NORMALIZED)
        .expect("new");
    o.add_param_tagged(g1, "frozen", &[2], ParamTags::default())
        .expect("new");
    o.set_diagnostics(true);
    let mut w = [
        values(0, 6, 0),
        values(1, 4, 0),
        values(2, 9, 0),
        values(3, 2, 0),
    ];
    for t in 0..8 {
        let g = [values(4, 6, t), values(5, 4, t), values(6, 9, t)];
        let before = w.clone();
        let [w0, v0, w1, fr] = &mut w;
        let info = o
            .step(&mut [
                Param::new("w0", w0, &g[0]),
                Param::new("v0", v0, &g[1]),
                Param::new("w1", w1, &g[2]),
                Param::no_grad("frozen", fr),
            ])
            .expect("step");
        let d = o.diagnostics();
        // A parameter without a gradient in the step has no diagnostics.
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["v0", "w0", "w1"]);
        for (i, name) in ["w0", "v0", "w1"].iter().enumerate() {
            let x = d.iter().find(|d| d.name == *name).expect("measured");
            let gi = o.group_info(x.group).expect("group");
            assert!(rel(x.grad_norm, norm(&g[i])) < 1e-15);
            assert!(rel(x.weight_norm, norm(&before[i])) < 1e-15);
            assert!(
                rel(x.update_norm, x.grad_norm) < 1e-15,
                "SGD direction = gradient"
            );
            assert_eq!(x.lr, gi.lr);
            assert_eq!(x.step, t as u64 + 1);
            // Corrected: κ = λ·γ_t²/γ_max on normalized, λ·γ_t on the others.
            let wd = o.group_config(x.group).expect("group").weight_decay;
            let kappa = if x.tags.normalized {
                wd * x.lr * x.lr / 0.1
            } else {
                wd * x.lr
            };
            assert!(
                (x.kappa - kappa).abs() < 1e-15,
                "{name}: κ {} vs {kappa}",
                x.kappa
            );
            assert!(rel(x.ratio(), x.grad_norm / x.weight_norm) < 1e-15);
            assert!(rel(x.angular_step(), x.lr * x.grad_norm / x.weight_norm) < 1e-15);
            assert!(
                rel(
                    x.predicted_ratio(),
                    (2.0 * x.kappa - x.kappa * x.kappa).sqrt() / x.lr
                ) < 1e-15
            );
        }
        // Per group: root-sum-of-squares of the members equals the group's gradient norm.
        for g in 0..2 {
            let members: Vec<ParamDiagnostics> =
                d.iter().filter(|d| d.group == g).cloned().collect();
            let all = ParamDiagnostics::combine(&members).expect("non-empty");
            let gi = o.group_info(g).expect("group");
            assert!(
                rel(all.grad_norm, gi.grad_l2) < 1e-14,
                "group {g}: {} vs {}",
                all.grad_norm,
                gi.grad_l2
            );
            let wn = members
                .iter()
                .map(|m| m.weight_norm * m.weight_norm)
                .sum::<f64>()
                .sqrt();
            assert_eq!(all.weight_norm, wn);
            assert_eq!(
                (all.lr, all.kappa, all.group),
                (members[0].lr, members[0].kappa, g)
            );
        }
        assert!(rel(info.grad_l2, norm(&g.concat())) < 1e-14);
    }
    assert!(ParamDiagnostics::combine(&[]).is_none());
}

#[test]
fn diagnostics_off_give_nothing() {
    let c = composed(
        LearnerConfig::Adam(Adam::default()),
        ConversionConfig::LastIterate,
        NormalizedPolicy::Standard,
    );
    let mut o = c.build_dyn::<f32>().expect("config");
    o.add_param_tagged(0, "w", &[3], ParamTags::NORMALIZED)
        .expect("new");
    let (mut w, g) = (vec![1.0_f32, 2.0, 3.0], vec![0.5_f32, -0.5, 0.25]);
    o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    assert!(o.diagnostics().is_empty(), "off by default");
    o.set_diagnostics(true);
    assert!(o.diagnostics().is_empty(), "nothing measured yet");
    o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    assert_eq!(o.diagnostics().len(), 1);
    o.set_diagnostics(false);
    assert!(o.diagnostics().is_empty(), "off again");
    o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    assert!(o.diagnostics().is_empty());
}

/// Allocations made by steps 2..50 (the first creates the state).
fn steady_state_allocations(c: &Composed, diagnostics: bool) -> usize {
    let mut o = c.build_dyn::<f32>().expect("config");
    o.add_param_tagged(0, "w", &[8, 40], ParamTags::NORMALIZED)
        .expect("new");
    o.add_param_tagged(0, "b", &[40], ParamTags::NO_DECAY)
        .expect("new");
    let g1 = o
        .add_group(GroupConfig {
            lr: 0.05,
            weight_decay: 0.0,
        })
        .expect("group");
    o.add_param_tagged(g1, "v", &[7], ParamTags::default())
        .expect("new");
    o.set_diagnostics(diagnostics);
    let mut w: Vec<f32> = (0..320).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    let mut b = vec![0.1_f32; 40];
    let mut v = vec![-0.3_f32; 7];
    let gw: Vec<f32> = (0..320).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
    let (gb, gv) = (vec![0.02_f32; 40], vec![-0.05_f32; 7]);
    let mut step = |o: &mut Box<dyn DynOptimizer<f32>>| {
        let mut p = [
            Param::new("w", &mut w, &gw),
            Param::new("b", &mut b, &gb),
            Param::new("v", &mut v, &gv),
        ];
        o.step(&mut p).expect("step");
    };
    step(&mut o);
    let before = allocations();
    for _ in 1..50 {
        step(&mut o);
    }
    allocations() - before
}

#[test]
fn steady_state_steps_do_not_allocate_with_new_learners_and_policies() {
    let sf = ConversionConfig::ScheduleFree {
        beta: 0.9,
        weights: AveragingWeights::default(),
        decoupling_c: 0.0,
    };
    let cases = [
        (
            "prodigy",
            composed(
                LearnerConfig::Prodigy(Prodigy::default()),
                ConversionConfig::LastIterate,
                NormalizedPolicy::Standard,
            ),
        ),
        (
            "prodigy+sf",
            composed(
                LearnerConfig::Prodigy(Prodigy::default()),
                sf,
                NormalizedPolicy::Standard,
            ),
        ),
        (
            "adam+corrected",
            composed(
                LearnerConfig::Adam(Adam::default()),
                ConversionConfig::LastIterate,
                NormalizedPolicy::Corrected { peak_lr: None },
            ),
        ),
        (
            "adam+projected",
            composed(
                LearnerConfig::Adam(Adam::default()),
                ConversionConfig::LastIterate,
                NormalizedPolicy::Projected(Projection::default()),
            ),
        ),
        (
            "sgd+sf+projected",
            composed(
                LearnerConfig::Sgd(Sgd::plain()),
                sf,
                NormalizedPolicy::Projected(Projection::default()),
            ),
        ),
    ];
    for (name, c) in &cases {
        for diagnostics in [false, true] {
            let n = steady_state_allocations(c, diagnostics);
            assert_eq!(
                n, 0,
                "{name} (diagnostics {diagnostics}): step allocated {n} times"
            );
        }
    }
    // Control: the counter sees this thread's allocations, so the assertion above can fail.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert!(allocations() > before && v.len() == 10);
}
