//! `step_programs`: an optimizer whose parameters and state live outside it (here: plain
//! host arrays standing in for device tensors, each element run through the returned
//! [`ElementProgram`]) follows the host step of the same preset: bit for bit where the step's
//! scalars do not read the gradient sums, and to rounding of those `f64` sums (which the
//! caller takes in its own order) where they do. Skips, errors, the eval point and resume
//! behave as on the host.

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy};
use schedulefree::learner::{AdaGradNorm, Cocob, Polyak, Prodigy};
use schedulefree::program::{ElementProgram, ProgramError};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{
    AdamWScheduleFree, DynOptimizer, ExternalParam, GradientSums, Param, ParamTags, PrepassEval,
    PrepassProgram, PresetConfig, RAdamScheduleFree, SgdScheduleFree, Skipped, StepError,
    StepInputs,
};

const SHAPES: [(&str, &[usize]); 3] = [("a.weight", &[7, 5]), ("a.bias", &[7]), ("b", &[33])];
const STEPS: usize = 25;

/// One parameter held outside the optimizer: value, gradient and slots.
#[derive(Clone)]
struct Held {
    value: Vec<f32>,
    grad: Vec<f32>,
    slots: Vec<Vec<f32>>,
}

fn start(n_slots: usize) -> Vec<Held> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(k, (_, shape))| {
            let n = shape.iter().product();
            Held {
                value: (0..n)
                    .map(|i| ((i * 7 + k) % 11) as f32 * 0.1 - 0.5)
                    .collect(),
                grad: vec![0.0; n],
                slots: vec![Vec::new(); n_slots],
            }
        })
        .collect()
}

/// Gradient of a quadratic with a step-dependent wiggle; NaN at `nan_at` in parameter 1.
fn fill_grads(held: &mut [Held], step: usize, nan_at: Option<usize>) {
    for (k, h) in held.iter_mut().enumerate() {
        for (i, (g, v)) in h.grad.iter_mut().zip(&h.value).enumerate() {
            let target = ((i + k) % 5) as f32 * 0.3 - 0.6;
            *g = (v - target) * (1.0 + k as f32) + ((i * 13 + step * 7) % 9) as f32 * 0.01;
        }
        if nan_at == Some(step) && k == 1 {
            h.grad[3] = f32::NAN;
        }
    }
}

/// Every parameter of [`SHAPES`] with its gradient's sums.
fn with_grads(held: &[Held]) -> Vec<ExternalParam<'_>> {
    SHAPES
        .iter()
        .zip(held)
        .map(|((name, _), h)| ExternalParam {
            name,
            grad: Some(sums(&h.grad)),
        })
        .collect()
}

fn sums(g: &[f32]) -> GradientSums {
    GradientSums {
        l1: g.iter().map(|v| f64::from(v.abs())).sum(),
        l2_sq: g.iter().map(|v| f64::from(*v) * f64::from(*v)).sum(),
        finite: g.iter().all(|v| v.is_finite()),
    }
}

/// Run `program` over every element of `h` (state slots created empty are zero-filled).
fn run(program: &ElementProgram, h: &mut Held) {
    let n = h.value.len();
    for s in &mut h.slots {
        s.resize(n, 0.0);
    }
    let mut e = vec![0.0f32; h.slots.len()];
    let mut regs = Vec::new();
    for i in 0..n {
        for (v, s) in e.iter_mut().zip(&h.slots) {
            *v = s[i];
        }
        program
            .apply(&mut h.value[i], h.grad[i], &mut e, &mut regs)
            .expect("sizes match");
        for (v, s) in e.iter().zip(&mut h.slots) {
            s[i] = *v;
        }
    }
}

/// The sums over `h`'s elements of `program`'s terms, which must leave `h` unchanged.
fn term_sums(program: &ElementProgram, h: &mut Held) -> Vec<f64> {
    let before = (h.value.clone(), h.slots.clone());
    let n = h.value.len();
    let mut e = vec![0.0f32; h.slots.len()];
    let mut regs = Vec::new();
    let mut total = vec![0.0f64; program.terms().len()];
    for i in 0..n {
        for (v, s) in e.iter_mut().zip(&h.slots) {
            *v = s.get(i).copied().unwrap_or(0.0);
        }
        program
            .apply(&mut h.value[i], h.grad[i], &mut e, &mut regs)
            .expect("sizes match");
        let t = program.term_values(&regs).expect("regs of this program");
        for (a, v) in total.iter_mut().zip(t) {
            *a += v;
        }
    }
    assert_eq!(
        (h.value.clone(), h.slots.clone()),
        before,
        "a pre-pass writes nothing"
    );
    total
}

fn build(preset: &PresetConfig) -> Box<dyn DynOptimizer<f32>> {
    let mut o = preset.build_dyn::<f32>().expect("valid preset");
    for (name, shape) in SHAPES {
        o.add_param_to(0, name, shape).expect("new name");
    }
    o
}

/// One external step of `held`; `b` (index 2) gets no gradient on even steps.
fn external_step(
    o: &mut dyn DynOptimizer<f32>,
    held: &mut [Held],
    step: usize,
    loss: Option<f64>,
) -> Result<schedulefree::StepInfo, StepError> {
    let params: Vec<ExternalParam<'_>> = SHAPES
        .iter()
        .zip(held.iter())
        .enumerate()
        .map(|(k, ((name, _), h))| ExternalParam {
            name,
            grad: (k != 2 || step % 2 == 1).then(|| sums(&h.grad)),
        })
        .collect();
    let inputs = StepInputs {
        loss,
        all_reduce: None,
    };
    // The pre-pass evaluator (Prodigy): the terms summed element by element in f64.
    let mut prepass = |programs: &[PrepassProgram]| {
        let mut out = Vec::new();
        for p in programs {
            let mut h = held[p.index].clone();
            if let Some(init) = &p.init {
                run(init, &mut h);
            }
            out.extend(term_sums(&p.terms, &mut h));
        }
        Some(out)
    };
    let eval = o
        .needs_prepass()
        .then_some(&mut prepass as &mut PrepassEval<'_>);
    let out = o.step_programs_with(&params, inputs, eval)?;
    for p in &out.programs {
        let h = &mut held[p.index];
        if let Some(init) = &p.init {
            run(init, h);
        }
        run(&p.update, h);
    }
    Ok(out.info)
}

fn host_step(
    o: &mut dyn DynOptimizer<f32>,
    held: &mut [Held],
    step: usize,
    loss: Option<f64>,
) -> schedulefree::StepInfo {
    let mut params: Vec<Param<'_, f32>> = SHAPES
        .iter()
        .zip(held.iter_mut())
        .enumerate()
        .map(|(k, ((name, _), h))| {
            if k != 2 || step % 2 == 1 {
                Param::new(name, &mut h.value, &h.grad)
            } else {
                Param::no_grad(name, &mut h.value)
            }
        })
        .collect();
    let inputs = StepInputs {
        loss,
        all_reduce: None,
    };
    o.step_with(&mut params, inputs).expect("host step")
}

/// Largest relative difference, `|a − b| / max(|a|, |b|, 1e-3)`.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1e-3))
        .fold(0.0, f32::max)
}

/// Host and external runs of `preset` side by side; returns the largest relative difference
/// of values, slots and eval points.
fn compare(preset: &PresetConfig, nan_at: Option<usize>) -> f32 {
    let mut host = build(preset);
    let mut ext = build(preset);
    let slot_names = host.slot_names();
    let mut h_held = start(slot_names.len());
    let mut e_held = start(slot_names.len());
    let loss = host.needs_loss().then_some(0.7);
    let mut worst = 0.0f32;
    for step in 0..STEPS {
        fill_grads(&mut h_held, step, nan_at);
        fill_grads(&mut e_held, step, nan_at);
        let hi = host_step(host.as_mut(), &mut h_held, step, loss);
        let ei = external_step(ext.as_mut(), &mut e_held, step, loss).expect("external step");
        assert_eq!(hi.skipped, ei.skipped, "step {step}");
        assert_eq!(hi.group.k, ei.group.k);
        // The same scalars, to rounding of the caller's gradient sums.
        let (a, b) = (hi.group.lr, ei.group.lr);
        assert!(
            (a - b).abs() <= 1e-12 * a.abs(),
            "lr {a} vs {b} at step {step}"
        );
        for (k, (name, _)) in SHAPES.iter().enumerate() {
            worst = worst.max(rel(&h_held[k].value, &e_held[k].value));
            for (j, slot) in slot_names.iter().enumerate() {
                if let Some(view) = host.slot(name, slot) {
                    let host_slot: Vec<f32> = view.iter().collect();
                    worst = worst.max(rel(&host_slot, &e_held[k].slots[j]));
                }
            }
        }
    }
    // The eval point x from the eval program.
    let eval = ext.eval_program().expect("traceable");
    for (k, (name, _)) in SHAPES.iter().enumerate() {
        let mut x = vec![0.0f32; h_held[k].value.len()];
        host.x_into(name, &h_held[k].value, &mut x)
            .expect("host param");
        let mut h = e_held[k].clone();
        run(&eval, &mut h);
        worst = worst.max(rel(&x, &h.value));
    }
    worst
}

fn composed(learner: LearnerConfig) -> PresetConfig {
    PresetConfig::Composed(Composed {
        learner,
        conversion: ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: Default::default(),
            decoupling_c: 0.0,
        },
        decay: DecayConfig::standard(AnyDecay::DecoupledAtY),
        schedule: ScheduleConfig::Linear {
            warmup: 3,
            total: STEPS as u64,
            end: 0.0,
        },
        lr: 0.05,
        weight_decay: 0.01,
    })
}

#[test]
fn presets_follow_the_host_step_bit_for_bit() {
    let presets = [
        PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
            warmup_steps: 5,
            weight_decay: 0.1,
            ..Default::default()
        }),
        PresetConfig::AdamWScheduleFreePaper(AdamWScheduleFree {
            warmup_steps: 5,
            ..Default::default()
        }),
        PresetConfig::SgdScheduleFree(SgdScheduleFree {
            lr: 0.1,
            warmup_steps: 3,
            ..Default::default()
        }),
        PresetConfig::SgdScheduleFreeReference(SgdScheduleFree::default()),
        PresetConfig::RAdamScheduleFree(RAdamScheduleFree::default()),
        PresetConfig::AdamW {
            config: Default::default(),
            schedule: ScheduleConfig::Cosine {
                warmup: 2,
                total: STEPS as u64,
                end: 0.0,
            },
        },
        PresetConfig::AdamC {
            config: Default::default(),
            schedule: ScheduleConfig::Constant {},
        },
        composed(LearnerConfig::Cocob(Cocob::default())),
    ];
    for preset in &presets {
        assert_eq!(compare(preset, None), 0.0, "{preset:?}");
        assert_eq!(
            compare(preset, Some(6)),
            0.0,
            "{preset:?} with a NaN gradient"
        );
    }
}

#[test]
fn learners_reading_gradient_norms_follow_to_rounding() {
    for learner in [
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
        LearnerConfig::Polyak(Polyak::default()),
    ] {
        let preset = composed(learner);
        assert!(compare(&preset, None) <= 1e-6, "{preset:?}");
    }
}

/// Prodigy's pre-pass through `step_programs_with`: the caller's sums (element order, not the
/// host's blocked order) move `d` by rounding only, and a parameter without a gradient adds
/// nothing to the sums (parameter `b` skips every other step).
#[test]
fn a_pre_pass_learner_follows_the_host_step_to_rounding() {
    // Prodigy's customary lr of 1: `d` then grows from `d0` within the run.
    let prodigy = |d_coef: f64| {
        let mut p = composed(LearnerConfig::Prodigy(Prodigy {
            d0: 1e-3,
            d_coef,
            ..Default::default()
        }));
        if let PresetConfig::Composed(c) = &mut p {
            c.lr = 1.0;
        }
        p
    };
    for d_coef in [1.0, 0.0] {
        let worst = compare(&prodigy(d_coef), None);
        assert!(worst <= 1e-5, "d_coef {d_coef}: {worst:e}");
    }
    // And `d` did grow (the comparison is not of two runs that stand still).
    let mut o = build(&prodigy(1.0));
    let mut held = start(o.slot_names().len());
    for step in 0..STEPS {
        fill_grads(&mut held, step, None);
        external_step(o.as_mut(), &mut held, step, None).expect("step");
    }
    // lr_factor = d·sqrt(1 − β2^t)/(1 − β1^t) at the last step, t = STEPS.
    let t = STEPS as i32;
    let bc = (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
    let d = o.group_info(0).expect("group").lr_factor / bc;
    assert!(d > 10.0 * 1e-3, "d = {d}");
}

#[test]
fn a_failing_or_short_pre_pass_changes_nothing() {
    let preset = composed(LearnerConfig::Prodigy(Prodigy::default()));
    let mut o = build(&preset);
    let mut held = start(o.slot_names().len());
    fill_grads(&mut held, 1, None);
    let params = with_grads(&held);
    let state = o.state();
    let mut failing = |_: &[PrepassProgram]| None;
    let e = o.step_programs_with(&params, StepInputs::default(), Some(&mut failing));
    assert_eq!(e, Err(StepError::PrepassFailed));
    let mut short = |p: &[PrepassProgram]| Some(vec![1.0; p.len()]);
    let e = o.step_programs_with(&params, StepInputs::default(), Some(&mut short));
    assert_eq!(
        e,
        Err(StepError::PrepassLength {
            expected: 6,
            got: 3
        })
    );
    assert_eq!(o.state(), state);
    assert_eq!(o.step_count(), 0);
}

#[test]
fn a_non_finite_gradient_skips_the_step_and_moves_nothing() {
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default());
    let mut o = build(&preset);
    let mut held = start(o.slot_names().len());
    fill_grads(&mut held, 0, None);
    external_step(o.as_mut(), &mut held, 0, None).expect("step");
    let before = held.iter().map(|h| h.value.clone()).collect::<Vec<_>>();
    fill_grads(&mut held, 1, Some(1));
    let info = external_step(o.as_mut(), &mut held, 1, None).expect("skipped, not refused");
    assert_eq!(info.skipped, Some(Skipped::NonFiniteGradient { index: 1 }));
    assert_eq!(o.step_count(), 1);
    assert_eq!(
        held.iter().map(|h| h.value.clone()).collect::<Vec<_>>(),
        before
    );
}

#[test]
fn host_and_external_parameters_refuse_each_others_calls() {
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default());
    let mut o = build(&preset);
    let mut held = start(o.slot_names().len());
    fill_grads(&mut held, 1, None);
    external_step(o.as_mut(), &mut held, 1, None).expect("step");
    let h = &mut held[0];
    let e = o.step(&mut [Param::new("a.weight", &mut h.value, &h.grad)]);
    assert_eq!(e, Err(StepError::ExternalState("a.weight".into())));
    let mut out = vec![0.0; h.value.len()];
    assert!(matches!(
        o.x_into("a.weight", &h.value, &mut out),
        Err(StepError::ExternalState(_))
    ));
    assert!(o.slot("a.weight", "z").is_none());
    let e = o.eval(&mut [Param::no_grad("a.weight", &mut h.value)]);
    assert!(matches!(e, Err(StepError::ExternalState(_))));
    assert!(o.is_train_mode());

    // The other way round: a parameter the host path gave state.
    let mut o = build(&preset);
    let mut held = start(o.slot_names().len());
    fill_grads(&mut held, 1, None);
    host_step(o.as_mut(), &mut held, 1, None);
    let e = external_step(o.as_mut(), &mut held, 1, None);
    assert_eq!(e, Err(StepError::HostState("a.weight".into())));
    assert_eq!(o.step_count(), 1);
}

#[test]
fn compositions_without_a_program_are_refused_before_anything_moves() {
    // A pre-pass learner needs an evaluator.
    let mut o = build(&composed(LearnerConfig::Prodigy(Prodigy::default())));
    assert_eq!(o.programs_cover(ParamTags::default()), Ok(()));
    assert!(o.needs_prepass());
    let mut held = start(o.slot_names().len());
    fill_grads(&mut held, 1, None);
    let params = with_grads(&held);
    let e = o.step_programs(&params, StepInputs::default());
    assert!(matches!(
        e,
        Err(StepError::Program(ProgramError::Unsupported { .. }))
    ));
    assert_eq!(o.step_count(), 0);

    let mut projected = composed(LearnerConfig::Adam(Default::default()));
    if let PresetConfig::Composed(c) = &mut projected {
        c.decay = DecayConfig {
            base: AnyDecay::DecoupledAtY,
            normalized: NormalizedPolicy::Projected(Default::default()),
        };
    }
    let mut o = projected.build_dyn::<f32>().expect("valid");
    // Only `normalized` parameters are projected: the others are covered.
    assert_eq!(o.programs_cover(ParamTags::default()), Ok(()));
    assert!(o.programs_cover(ParamTags::NORMALIZED).is_err());
    o.add_param_tagged(0, "w", &[4, 3], ParamTags::NORMALIZED)
        .expect("new");
    let g = [0.1f32; 12];
    let e = o.step_programs(
        &[ExternalParam {
            name: "w",
            grad: Some(sums(&g)),
        }],
        StepInputs::default(),
    );
    assert!(matches!(
        e,
        Err(StepError::Program(ProgramError::Unsupported { .. }))
    ));
    assert_eq!(o.step_count(), 0);
}

#[test]
fn saved_external_state_resumes_exactly() {
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        warmup_steps: 4,
        ..Default::default()
    });
    let mut straight = build(&preset);
    let mut held = start(straight.slot_names().len());
    let mut resumed = None;
    let mut resumed_held = Vec::new();
    for step in 0..12 {
        if step == 6 {
            let st = straight.state();
            let rec = &st.params["a.weight"];
            assert!(rec.external && rec.has_state && rec.buffers.is_empty());
            let json = serde_json::to_string(&st).expect("serializes");
            let mut fresh = build(&preset);
            fresh
                .load_state(&serde_json::from_str(&json).expect("parses"))
                .expect("loads");
            resumed = Some(fresh);
            resumed_held = held.clone();
        }
        fill_grads(&mut held, step, None);
        external_step(straight.as_mut(), &mut held, step, None).expect("step");
        if let Some(r) = resumed.as_mut() {
            fill_grads(&mut resumed_held, step, None);
            external_step(r.as_mut(), &mut resumed_held, step, None).expect("step");
        }
    }
    for (a, b) in held.iter().zip(&resumed_held) {
        assert_eq!(a.value, b.value);
        assert_eq!(a.slots, b.slots);
    }
}

#[test]
fn mixing_host_and_external_parameters_in_eval_calls_changes_nothing() {
    let mut o = AdamWScheduleFree::default().build::<f32>().expect("valid");
    o.add_param("w", &[4]).expect("new");
    o.add_param("b", &[3]).expect("new");
    let (mut w, gw) = (vec![0.5f32, -0.25, 1.0, 2.0], vec![0.1f32, 0.2, -0.3, 0.4]);
    // `w` on the host, `b` outside.
    o.step(&mut [Param::new("w", &mut w, &gw)])
        .expect("host step");
    let mut b = Held {
        value: vec![0.1, 0.2, 0.3],
        grad: vec![1.0, -1.0, 0.5],
        slots: vec![Vec::new(); 2],
    };
    let ext = [ExternalParam {
        name: "b",
        grad: Some(sums(&b.grad)),
    }];
    let out = o
        .step_programs(&ext, StepInputs::default())
        .expect("external step");
    for p in &out.programs {
        run(p.init.as_ref().expect("first gradient"), &mut b);
        run(&p.update, &mut b);
    }
    let before = w.clone();
    let mut params = [
        Param::no_grad("w", &mut w),
        Param::no_grad("b", &mut b.value),
    ];
    let e = o.eval_guard(&mut params).map(|_| ());
    assert_eq!(e, Err(StepError::ExternalState("b".into())));
    assert_eq!(w, before, "the host buffer still holds y");
}

/// Switch every held parameter with `o`'s mode program, then record the switch.
fn external_switch(o: &mut dyn DynOptimizer<f32>, held: &mut [Held], to_train: bool) {
    let program = o.mode_program(to_train).expect("traceable");
    for h in held.iter_mut().filter(|h| !h.slots[0].is_empty()) {
        run(&program, h);
    }
    o.switch_external_mode(to_train).expect("all external");
}

fn host_switch(o: &mut dyn DynOptimizer<f32>, held: &mut [Held], to_train: bool) {
    let mut params: Vec<Param<'_, f32>> = SHAPES
        .iter()
        .zip(held.iter_mut())
        .map(|((name, _), h)| Param::no_grad(name, &mut h.value))
        .collect();
    if to_train {
        o.train(&mut params).expect("host train");
    } else {
        o.eval(&mut params).expect("host eval");
    }
}

#[test]
fn external_mode_switches_follow_the_host_and_resume_in_eval_mode() {
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default());
    let (mut host, mut ext) = (build(&preset), build(&preset));
    let mut h_held = start(host.slot_names().len());
    let mut e_held = start(ext.slot_names().len());
    for step in 0..4 {
        fill_grads(&mut h_held, step, None);
        fill_grads(&mut e_held, step, None);
        host_step(host.as_mut(), &mut h_held, step, None);
        external_step(ext.as_mut(), &mut e_held, step, None).expect("step");
    }
    host_switch(host.as_mut(), &mut h_held, false);
    external_switch(ext.as_mut(), &mut e_held, false);
    assert!(!ext.is_train_mode());
    let values = |h: &[Held]| h.iter().map(|h| h.value.clone()).collect::<Vec<_>>();
    assert_eq!(values(&e_held), values(&h_held), "x in eval mode");
    fill_grads(&mut e_held, 9, None);
    let e = external_step(ext.as_mut(), &mut e_held, 9, None);
    assert_eq!(e.err(), Some(StepError::EvalMode { group: 0 }));

    // Saved in eval mode, resumed, switched back: y as the host path has it.
    let st = ext.state();
    assert!(!st.groups[0].train_mode && st.params["a.weight"].external);
    let mut resumed = build(&preset);
    resumed
        .load_state(&st)
        .expect("external state loads in eval mode");
    assert!(!resumed.is_train_mode());
    host_switch(host.as_mut(), &mut h_held, true);
    external_switch(resumed.as_mut(), &mut e_held, true);
    assert_eq!(values(&e_held), values(&h_held), "y back in train mode");
    fill_grads(&mut h_held, 5, None);
    fill_grads(&mut e_held, 5, None);
    host_step(host.as_mut(), &mut h_held, 5, None);
    external_step(resumed.as_mut(), &mut e_held, 5, None).expect("trains again");
    assert_eq!(
        values(&e_held),
        values(&h_held),
        "the step after the round trip"
    );

    // Host state cannot be switched this way.
    let e = host.switch_external_mode(false);
    assert_eq!(e, Err(StepError::HostState("a.weight".into())));
    assert!(host.is_train_mode());
}
