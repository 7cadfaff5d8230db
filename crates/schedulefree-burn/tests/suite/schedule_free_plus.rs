//! ScheduleFree+ (`PresetConfig::ScheduleFreePlus`) through burn: the host path
//! (`ModelOptimizer`) and the device-resident path (`DeviceOptimizer`: its `⟨g, z − y⟩`
//! pre-pass as burn tensor ops, taken before the lr) follow each other to rounding with the
//! loss passed; a step without the loss is the core's typed error and changes nothing.

use crate::common::{Mlp, max_rel_diff, mse, same_bits, values};
use burn::optim::GradientsParams;
use burn::tensor::Device;
use schedulefree::{PresetConfig, ScheduleFreePlus, StepError};
use schedulefree_burn::{BurnAdapterError, DeviceOptimizer, ModelOptimizer};

const DIMS: [usize; 4] = [4, 8, 8, 3];

/// Gradients of batch `seed` and the loss value.
fn grads_and_loss(m: &Mlp, seed: usize, device: &Device) -> (GradientsParams, f64) {
    let l = mse(m, seed, device);
    let value = f64::from(l.clone().into_scalar::<f32>());
    (GradientsParams::from_grads(l.backward(), m), value)
}

fn preset() -> PresetConfig {
    PresetConfig::ScheduleFreePlus(ScheduleFreePlus {
        weight_decay: 0.5,
        polyak_beta: 0.5,
        c_warmup: 2,
        sf_beta1_anneal_steps: 8,
        ..Default::default()
    })
}

#[test]
fn host_and_device_paths_agree_with_the_loss_passed() {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let (mut hm, mut dm) = (model.clone(), model);
    let mut host = ModelOptimizer::new(preset()).expect("valid");
    let mut dev = DeviceOptimizer::new(preset()).expect("valid");
    let mut worst = 0.0_f64;
    let mut moved = false;
    for step in 0..12 {
        let (hg, hl) = grads_and_loss(&hm, step, &device);
        let (dg, dl) = grads_and_loss(&dm, step, &device);
        let (h, hi) = host.step_with_loss(hm, hg, hl).expect("host");
        let (d, di) = dev.step_with_loss(dm, dg, dl).expect("device");
        (hm, dm) = (h, d);
        assert_eq!((hi.skipped, hi.group.k), (di.skipped, di.group.k));
        moved |= hi.group.lr_factor > 0.0;
        worst = worst.max(max_rel_diff(&values(&hm), &values(&dm)));
    }
    assert!(moved, "the Polyak step was positive at some step");
    assert!(worst <= 1e-5, "host vs device: {worst:e}");
}

#[test]
fn a_step_without_the_loss_is_refused_on_both_paths() {
    let device = Device::default().autodiff();
    let m = Mlp::new(&device, &DIMS);
    let before = values(&m);
    let mut host = ModelOptimizer::new(preset()).expect("valid");
    let (g, _) = grads_and_loss(&m, 0, &device);
    match host.step(m.clone(), g) {
        Err(BurnAdapterError::Step(StepError::LossRequired { learner })) => {
            assert_eq!(learner, "polyak_l1")
        }
        other => panic!("expected LossRequired, got {:?}", other.map(|(_, i)| i)),
    }
    let mut dev = DeviceOptimizer::new(preset()).expect("valid");
    let (g, _) = grads_and_loss(&m, 0, &device);
    assert!(matches!(
        dev.step(m.clone(), g),
        Err(BurnAdapterError::Step(StepError::LossRequired { .. }))
    ));
    assert!(same_bits(&before, &values(&m)));
    assert_eq!(host.core().step_count(), 0);
    assert_eq!(dev.core().step_count(), 0);
}
