//! ScheduleLr returns peak · the core schedule's value, including what burn's own schedulers
//! refuse (lr above 1, a start at 0), survives its record, and drives ModuleOptimizer.

use crate::common;

use crate::common::{Mlp, grads, values};
use burn::lr_scheduler::LrScheduler;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use schedulefree::PresetConfig;
use schedulefree::presets::TorchSgd;
use schedulefree::schedule::{Cooldown, ScheduleConfig};
use schedulefree_burn::{BurnAdapterError, ScheduleLr, TensorOptimizer};

fn configs() -> Vec<ScheduleConfig> {
    vec![
        ScheduleConfig::Constant {},
        ScheduleConfig::Linear {
            warmup: 3,
            total: 20,
            end: 0.0,
        },
        ScheduleConfig::Cosine {
            warmup: 0,
            total: 15,
            end: 0.1,
        },
        ScheduleConfig::Wsd {
            warmup: 2,
            total: 20,
            decay: 5,
            shape: Cooldown::Linear,
            end: 0.0,
        },
        ScheduleConfig::InverseSqrt { warmup: 4 },
        ScheduleConfig::TorchLinearLr {
            start_factor: 0.0,
            end_factor: 1.0,
            total_iters: 5,
        },
    ]
}

#[test]
fn values_equal_the_core_schedule() {
    for config in configs() {
        for peak in [0.003, 1.0, 25.0] {
            let core = config.build().expect("valid");
            let mut s = ScheduleLr::new(peak, config.clone()).expect("valid");
            for k in 0..30_u64 {
                assert_eq!(
                    s.step(),
                    peak * core.value(k),
                    "{config:?} peak {peak} k {k}"
                );
            }
            assert_eq!(s.step_count(), 30);
        }
    }
    // A start at 0 and an lr above 1 are fine.
    let mut s = ScheduleLr::new(
        10.0,
        ScheduleConfig::TorchLinearLr {
            start_factor: 0.0,
            end_factor: 1.0,
            total_iters: 2,
        },
    )
    .expect("valid");
    assert_eq!([s.step(), s.step(), s.step()], [0.0, 5.0, 10.0]);
}

#[test]
fn record_restores_the_step() {
    let config = ScheduleConfig::Cosine {
        warmup: 2,
        total: 10,
        end: 0.0,
    };
    let mut a = ScheduleLr::new(3.0, config.clone()).expect("valid");
    for _ in 0..4 {
        a.step();
    }
    let mut b = ScheduleLr::new(3.0, config).expect("valid");
    b.load_record(a.to_record());
    for _ in 0..8 {
        assert_eq!(a.step(), b.step());
    }
}

#[test]
fn invalid_inputs_are_errors() {
    assert!(matches!(
        ScheduleLr::new(-1.0, ScheduleConfig::Constant {}),
        Err(BurnAdapterError::Config(_))
    ));
    assert!(matches!(
        ScheduleLr::new(f64::NAN, ScheduleConfig::Constant {}),
        Err(BurnAdapterError::Config(_))
    ));
    let bad = ScheduleConfig::Linear {
        warmup: 20,
        total: 10,
        end: 0.0,
    };
    assert!(matches!(
        ScheduleLr::new(1.0, bad),
        Err(BurnAdapterError::Config(_))
    ));
}

#[test]
fn drives_module_optimizer_like_the_core_schedule() {
    // Plain SGD with the schedule inside the preset equals plain SGD with a constant preset
    // driven by ScheduleLr.
    let device = Device::default().autodiff();
    let config = ScheduleConfig::Linear {
        warmup: 2,
        total: 6,
        end: 0.0,
    };
    let sgd = TorchSgd {
        lr: 0.3,
        ..Default::default()
    };
    let inside = PresetConfig::Sgd {
        config: sgd,
        schedule: config.clone(),
    };
    let outside = PresetConfig::Sgd {
        config: sgd,
        schedule: ScheduleConfig::Constant {},
    };
    let start = Mlp::new(&device, &[3, 5, 2]);
    let (mut a, mut b) = (start.clone(), start);
    let mut oa: ModuleOptimizer = TensorOptimizer::new(inside).expect("valid").into();
    let mut ob: ModuleOptimizer = TensorOptimizer::new(outside).expect("valid").into();
    let mut sched = ScheduleLr::new(0.3, config).expect("valid");
    for step in 0..6 {
        a = oa.step(0.3, a.clone(), grads(&a, step, &device));
        b = ob.step(sched.step(), b.clone(), grads(&b, step, &device));
        assert!(
            common::max_rel_diff(&values(&a), &values(&b)) < 1e-6,
            "step {step}"
        );
    }
}
