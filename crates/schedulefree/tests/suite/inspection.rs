//! Reading the optimizer without changing it: `x_into`, `z_into`, `slot`, `next_step`,
//! the skipped-steps counter, and the same through `DynOptimizer`.

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::DecayConfig;
use schedulefree::learner::{AdaGradNorm, Adam, Polyak};
use schedulefree::schedule::{Linear, ScheduleConfig};
use schedulefree::{
    AdamWScheduleFree, GroupConfig, Param, PresetConfig, SgdScheduleFree, TorchSgd,
};

fn grad(w: &[f64], step: usize) -> Vec<f64> {
    w.iter()
        .enumerate()
        .map(|(i, v)| v - (i as f64 + 1.0) + 0.1 * ((step * 7 + i) % 5) as f64)
        .collect()
}

#[test]
fn x_z_and_slot_views_agree_with_the_copying_accessors_in_both_modes() {
    let mut opt = AdamWScheduleFree {
        lr: 0.05,
        warmup_steps: 3,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[4]).expect("new");
    let mut w = vec![0.5; 4];
    // Before the first gradient there is no state: x = z = the buffer, no slot view.
    let (mut x, mut z) = (vec![0.0; 4], vec![0.0; 4]);
    opt.z_into("w", &w, &mut z).expect("known");
    assert_eq!(z, w);
    assert!(opt.slot("w", "z").is_none());
    for s in 0..10 {
        let g = grad(&w, s);
        opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    }
    let names: Vec<_> = opt.slot_names().collect();
    assert_eq!(names, ["exp_avg_sq", "z"]);
    for slot in &names {
        let view = opt.slot("w", slot).expect("state exists");
        let copied = opt.state_buffer("w", slot).expect("state exists");
        assert_eq!(view.iter().collect::<Vec<_>>(), copied);
        assert_eq!(view.len(), 4);
        assert_eq!(view.get(4), None);
        let mut out = vec![0.0; 4];
        view.copy_to(&mut out).expect("same length");
        assert_eq!(out, copied);
    }
    let mut short = vec![9.0; 3];
    assert!(
        opt.slot("w", "z")
            .expect("state")
            .copy_to(&mut short)
            .is_err(),
        "a wrong length is a typed error"
    );
    assert_eq!(short, [9.0; 3], "and nothing is written");
    assert!(opt.slot("w", "exp_avg").is_none(), "no such slot");
    assert!(opt.slot("nope", "z").is_none());

    opt.z_into("w", &w, &mut z).expect("known");
    assert_eq!(z, opt.state_buffer("w", "z").expect("z"));
    opt.x_into("w", &w, &mut x).expect("known");
    // y = (1 − β)z + βx with β = 0.9, so x = (y − 0.1 z)/0.9.
    for i in 0..4 {
        assert!((x[i] - (w[i] - 0.1 * z[i]) / 0.9).abs() < 1e-12);
    }
    // In eval mode the buffer is x; both readers still give the same x and z.
    opt.eval(&mut [Param::no_grad("w", &mut w)]).expect("eval");
    let (mut x_eval, mut z_eval) = (vec![0.0; 4], vec![0.0; 4]);
    opt.x_into("w", &w, &mut x_eval).expect("known");
    opt.z_into("w", &w, &mut z_eval).expect("known");
    assert_eq!(z_eval, z);
    for i in 0..4 {
        assert!((x_eval[i] - x[i]).abs() < 1e-12);
    }
    // Typed errors, nothing written.
    let mut short = vec![7.0; 3];
    assert!(opt.z_into("w", &w, &mut short).is_err());
    assert!(opt.x_into("missing", &w, &mut x).is_err());
    assert_eq!(short, [7.0; 3]);
}

#[test]
fn z_of_an_averaging_conversion_is_the_iterate_in_both_modes() {
    // Polyak averaging swaps buffer and average in eval mode: z must follow.
    let cfg = Composed {
        learner: LearnerConfig::Adam(Adam {
            beta1: 0.0,
            ..Default::default()
        }),
        conversion: ConversionConfig::PolyakAverage {
            weights: AveragingWeights::UNIFORM,
        },
        decay: DecayConfig::default(),
        schedule: ScheduleConfig::Constant {},
        lr: 0.1,
        weight_decay: 0.0,
    };
    let mut opt = cfg.build_dyn::<f64>().expect("config");
    opt.add_param("w", &[3]).expect("new");
    let mut w = vec![0.0; 3];
    for s in 0..5 {
        let g = grad(&w, s);
        opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    }
    let (mut z, mut x) = (vec![0.0; 3], vec![0.0; 3]);
    opt.z_into("w", &w, &mut z).expect("known");
    opt.x_into("w", &w, &mut x).expect("known");
    assert_eq!(z, w, "last-iterate buffer is the iterate in train mode");
    assert_ne!(x, w);
    opt.eval(&mut [Param::no_grad("w", &mut w)]).expect("eval");
    assert_eq!(w, x);
    let mut z_eval = vec![0.0; 3];
    opt.z_into("w", &w, &mut z_eval).expect("known");
    assert_eq!(z_eval, z);
}

#[test]
fn next_step_predicts_the_lr_and_c_the_step_then_reports() {
    let mut opt = SgdScheduleFree {
        lr: 0.5,
        warmup_steps: 4,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[2]).expect("new");
    assert_eq!(
        opt.group_info(0).expect("group").lr,
        0.0,
        "nothing taken yet"
    );
    let mut w = vec![1.0, -1.0];
    for s in 0..8 {
        let next = opt.next_step(0).expect("group 0");
        assert_eq!(next.k, s as u64);
        assert_eq!(next.lr_factor, Some(1.0));
        let g = grad(&w, s);
        let info = opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
        assert_eq!(next.lr, Some(info.group.lr));
        assert_eq!(next.unfactored_lr, info.group.lr);
        assert_eq!(next.c, Some(info.group.c));
    }
    assert!(opt.next_step(1).is_none());

    // Through `DynOptimizer`: the schedule, the step count and the next step.
    let preset = PresetConfig::Sgd {
        config: TorchSgd {
            lr: 0.2,
            ..Default::default()
        },
        schedule: ScheduleConfig::Linear {
            warmup: 2,
            total: 10,
            end: 0.0,
        },
    };
    let mut dynopt = preset.build_dyn::<f64>().expect("config");
    dynopt.add_param("w", &[2]).expect("new");
    let sched = Linear::new(2, 10, 0.0).expect("valid");
    use schedulefree::schedule::Schedule;
    for k in 0..12 {
        assert_eq!(dynopt.schedule_value(k), sched.value(k));
    }
    assert_eq!(dynopt.schedule_horizon(), Some(10));
    assert_eq!(dynopt.num_groups(), 1);
    assert_eq!(
        dynopt.slot_names(),
        Vec::<&str>::new(),
        "torch SGD without momentum"
    );
    let mut w = vec![0.0; 2];
    for s in 0..3 {
        assert_eq!(dynopt.step_count(), s);
        let next = dynopt.next_step(0).expect("group");
        let g = grad(&w, s as usize);
        let info = dynopt
            .step(&mut [Param::new("w", &mut w, &g)])
            .expect("step");
        assert_eq!(next.lr, Some(info.group.lr));
    }
    assert_eq!(dynopt.step_count(), 3);
}

#[test]
fn next_step_leaves_gradient_dependent_lrs_unknown() {
    for learner in [
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
        LearnerConfig::Polyak(Polyak::default()),
    ] {
        let cfg = Composed {
            learner,
            conversion: ConversionConfig::ScheduleFree {
                beta: 0.9,
                weights: AveragingWeights::default(),
                decoupling_c: 0.0,
            },
            decay: DecayConfig::default(),
            schedule: ScheduleConfig::Constant {},
            lr: 1.0,
            weight_decay: 0.0,
        };
        let mut opt = cfg.build_dyn::<f64>().expect("config");
        opt.add_param("w", &[2]).expect("new");
        let next = opt.next_step(0).expect("group");
        assert_eq!(next.unfactored_lr, 1.0);
        assert_eq!((next.lr_factor, next.lr, next.c), (None, None, None));
    }
}

#[test]
fn skipped_steps_are_counted_in_every_group_and_survive_a_resume() {
    let build = || {
        let mut o = AdamWScheduleFree::default().build::<f32>().expect("config");
        o.add_group(GroupConfig {
            lr: 0.01,
            weight_decay: 0.0,
        })
        .expect("group");
        o.add_param("a", &[2]).expect("new");
        o.add_param_to(1, "b", &[2]).expect("new");
        o
    };
    let mut opt = build();
    let (mut a, mut b) = (vec![0.0_f32; 2], vec![0.0_f32; 2]);
    let good = [0.5_f32, -0.5];
    let bad = [f32::NAN, 0.0];
    for (i, ga) in [good, bad, good, bad, bad].iter().enumerate() {
        let info = opt
            .step(&mut [Param::new("a", &mut a, ga), Param::new("b", &mut b, &good)])
            .expect("skip policy");
        assert_eq!(info.skipped.is_some(), ga[0].is_nan(), "step {i}");
    }
    for g in 0..2 {
        let info = opt.group_info(g).expect("group");
        assert_eq!(info.skipped_steps, 3, "group {g}");
        assert_eq!(info.k, 2, "skips do not advance k");
    }
    let saved = opt.state();
    let mut resumed = build();
    resumed.load_state(&saved).expect("same config");
    assert_eq!(resumed.group_info(1).expect("group").skipped_steps, 3);
    let info = resumed
        .step(&mut [
            Param::new("a", &mut a, &good),
            Param::new("b", &mut b, &good),
        ])
        .expect("step");
    assert_eq!(info.group.skipped_steps, 3, "a taken step keeps the count");
}
