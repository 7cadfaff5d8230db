//! What the device paths move to the host. Every element they read from a device tensor goes
//! through `read_back`, which counts per thread (the paths have no other way to the host:
//! they only call burn tensor ops, whose results stay on the device), so a step must add
//! exactly three numbers per stepped parameter to the count, whatever the parameters' sizes.

use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig};
use schedulefree::learner::Prodigy;
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamWScheduleFree, PresetConfig};

use super::{DeviceOptimizer, host_reads};
use crate::{ModelOptimizer, Placement, TensorOptimizer};

fn preset() -> PresetConfig {
    PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        warmup_steps: 2,
        ..Default::default()
    })
}

fn grads(model: &Linear, device: &Device) -> GradientsParams {
    let input = Tensor::<2>::ones([4, 300], device);
    let loss = model.forward(input).powf_scalar(2.0).mean();
    GradientsParams::from_grads(loss.backward(), model)
}

#[test]
fn a_step_reads_three_numbers_per_parameter() {
    let device = Device::default().autodiff();
    let mut model: Linear = LinearConfig::new(300, 200).init(&device);
    let mut dev = DeviceOptimizer::new(preset()).expect("valid");
    for _ in 0..3 {
        let g = grads(&model, &device);
        let before = host_reads();
        model = dev.step(model, g).expect("step").0;
        assert_eq!(
            host_reads() - before,
            3 * 2,
            "weight and bias: three numbers each"
        );
    }
    let before = host_reads();
    let at_x = dev.eval_module(&model).expect("x");
    assert_eq!(host_reads(), before, "the eval point stays on the device");
    // The counter does see parameter-sized reads: saving reads every slot.
    dev.state().expect("state");
    assert_eq!(host_reads() - before, 2 * (300 * 200 + 200));
    drop(at_x);

    // Prodigy's pre-pass adds its two sums per parameter, read back together.
    let mut model: Linear = LinearConfig::new(300, 200).init(&device);
    let prodigy = PresetConfig::Composed(Composed {
        learner: LearnerConfig::Prodigy(Prodigy::default()),
        conversion: ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: Default::default(),
            decoupling_c: 0.0,
        },
        decay: DecayConfig::standard(AnyDecay::DecoupledAtY),
        schedule: ScheduleConfig::Constant {},
        lr: 1.0,
        weight_decay: 0.0,
    });
    let mut dev = DeviceOptimizer::new(prodigy).expect("valid");
    for _ in 0..3 {
        let g = grads(&model, &device);
        let before = host_reads();
        model = dev.step(model, g).expect("step").0;
        assert_eq!(host_reads() - before, (3 + 2) * 2, "Prodigy");
    }

    // The module-level optimizer placed on the device path moves no more.
    let mut model: Linear = LinearConfig::new(300, 200).init(&device);
    let mut opt = ModelOptimizer::new(preset())
        .expect("valid")
        .with_placement(Placement::Device);
    for _ in 0..3 {
        let g = grads(&model, &device);
        let before = host_reads();
        model = opt.step(model, g).expect("step").0;
        assert!(opt.on_device());
        assert_eq!(host_reads() - before, 3 * 2, "ModelOptimizer on the device");
    }
    // Moving the state to the host path reads it back once, and host steps count nothing
    // (they read through burn's host copies, not `read_back`).
    opt.set_placement(Placement::Host);
    let before = host_reads();
    model = opt
        .step(model.clone(), grads(&model, &device))
        .expect("step")
        .0;
    assert!(!opt.on_device());
    assert_eq!(
        host_reads() - before,
        2 * (300 * 200 + 200),
        "the two slots, once"
    );
    drop(model);

    let mut model: Linear = LinearConfig::new(300, 200).init(&device);
    let mut optim: ModuleOptimizer = TensorOptimizer::new(preset()).expect("valid").into();
    for _ in 0..3 {
        let g = grads(&model, &device);
        let before = host_reads();
        model = optim.step(1e-3, model, g);
        assert_eq!(host_reads() - before, 3 * 2, "per-tensor optimizer");
    }
}
