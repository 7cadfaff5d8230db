//! The behaviours that `Optimizer::step`'s docs warn about, each shown as it happens:
//! an empty step still advances the counters, a zero-lr step still updates Adam's second
//! moment, and a late first gradient under group-counted bias correction takes a large step.

use schedulefree::schedule::ScheduleError;
use schedulefree::schedule::{Constant, StepDecay};
use schedulefree::{AdamW, AdamWScheduleFree, Param};

#[test]
fn an_empty_step_advances_the_counter_and_the_schedule() {
    let mut opt = AdamWScheduleFree {
        lr: 1.0,
        warmup_steps: 10,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[1]).expect("new");
    for _ in 0..4 {
        opt.step(&mut []).expect("empty step is a step");
    }
    assert_eq!(opt.step_count(), 4);
    // The next step is the 5th of the warmup: lr 5/10, as if 4 updates had been taken.
    let mut w = vec![0.0];
    let info = opt
        .step(&mut [Param::new("w", &mut w, &[1.0])])
        .expect("step");
    assert_eq!(info.group.k, 5);
    assert!((info.group.lr - 0.5).abs() < 1e-15, "{}", info.group.lr);
}

#[test]
fn a_zero_lr_step_moves_nothing_but_updates_the_second_moment() {
    let mut opt = AdamWScheduleFree {
        lr: 0.0,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("w", &[2]).expect("new");
    let mut w = vec![1.0, 2.0];
    opt.step(&mut [Param::new("w", &mut w, &[3.0, -4.0])])
        .expect("step");
    assert_eq!(w, [1.0, 2.0], "lr 0: the buffer does not move");
    let v = opt.state_buffer("w", "exp_avg_sq").expect("state");
    // v = (1 − β2)·g² with β2 = 0.999.
    assert!((v[0] - 0.001 * 9.0).abs() < 1e-15 && (v[1] - 0.001 * 16.0).abs() < 1e-15);
}

#[test]
fn a_late_first_gradient_takes_a_large_step_under_group_counted_bias_correction() {
    // AdamWScheduleFree counts bias correction by the group's k (as the reference does).
    let mut opt = AdamWScheduleFree {
        lr: 0.01,
        warmup_steps: 0,
        ..Default::default()
    }
    .build::<f64>()
    .expect("config");
    opt.add_param("a", &[1]).expect("new");
    opt.add_param("late", &[1]).expect("new");
    let (mut a, mut late) = (vec![0.0], vec![0.0]);
    for _ in 0..1000 {
        opt.step(&mut [
            Param::new("a", &mut a, &[1.0]),
            Param::no_grad("late", &mut late),
        ])
        .expect("step");
    }
    let z0 = late[0];
    opt.step(&mut [
        Param::new("a", &mut a, &[1.0]),
        Param::new("late", &mut late, &[1.0]),
    ])
    .expect("step");
    let z = opt.state_buffer("late", "z").expect("state")[0];
    // |Δz| = lr · g/sqrt(v/(1 − β2^1001)) ≈ lr/sqrt(0.001/0.632) ≈ 25 × lr, not lr.
    let moved = (z - z0).abs();
    assert!(
        moved > 20.0 * 0.01,
        "first step of a late parameter: {moved}"
    );

    // Torch-style AdamW counts per parameter: the same late start takes an lr-sized step.
    let mut torch = AdamW {
        lr: 0.01,
        ..Default::default()
    }
    .build::<f64, _>(Constant)
    .expect("config");
    torch.add_param("a", &[1]).expect("new");
    torch.add_param("late", &[1]).expect("new");
    let (mut a, mut late) = (vec![0.0], vec![0.0]);
    for _ in 0..1000 {
        torch
            .step(&mut [
                Param::new("a", &mut a, &[1.0]),
                Param::no_grad("late", &mut late),
            ])
            .expect("step");
    }
    torch
        .step(&mut [
            Param::new("a", &mut a, &[1.0]),
            Param::new("late", &mut late, &[1.0]),
        ])
        .expect("step");
    assert!((late[0].abs() - 0.01).abs() < 1e-6, "{}", late[0]);
}

#[test]
fn gradient_accumulation_is_one_step_per_update() {
    // Four micro-batches averaged into one buffer and one `step` equal one step on the mean
    // gradient; stepping per micro-batch would count four updates.
    let build = || {
        let mut o = AdamWScheduleFree {
            lr: 0.1,
            warmup_steps: 2,
            ..Default::default()
        }
        .build::<f64>()
        .expect("config");
        o.add_param("w", &[2]).expect("new");
        o
    };
    let micro = [[1.0, 2.0], [3.0, -2.0], [-1.0, 0.5], [1.0, 0.5]];
    let (mut accumulated, mut direct) = (build(), build());
    let (mut w1, mut w2) = (vec![0.0; 2], vec![0.0; 2]);
    let mut acc = [0.0; 2];
    for g in micro {
        for (a, v) in acc.iter_mut().zip(g) {
            *a += v / micro.len() as f64;
        }
    }
    accumulated
        .step(&mut [Param::new("w", &mut w1, &acc)])
        .expect("step");
    direct
        .step(&mut [Param::new("w", &mut w2, &[1.0, 0.25])])
        .expect("step");
    assert_eq!(w1, w2);
    assert_eq!(accumulated.step_count(), 1);
}

#[test]
fn a_step_decay_milestone_inside_the_warmup_names_the_milestone() {
    let err = StepDecay::new(0, vec![0], 0.1).expect_err("milestone 0");
    assert_eq!(
        err,
        ScheduleError::MilestoneInWarmup {
            milestone: 0,
            warmup: 0
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("milestone 0") && !msg.contains("phase"),
        "{msg}"
    );
    assert_eq!(
        StepDecay::new(10, vec![9, 20], 0.5).expect_err("inside the warmup"),
        ScheduleError::MilestoneInWarmup {
            milestone: 9,
            warmup: 10
        }
    );
    // A milestone at the end of the warmup scales the first update after it.
    use schedulefree::schedule::Schedule;
    let s = StepDecay::new(10, vec![10], 0.5).expect("valid");
    assert!((s.value(9) - 1.0).abs() < 1e-15 && s.value(10) == 0.5);
    assert!(StepDecay::new(0, vec![1], 0.5).is_ok());
}
