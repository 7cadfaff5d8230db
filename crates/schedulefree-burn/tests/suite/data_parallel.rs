//! Data parallel training on two replicas equals single-device training on the combined batch.
//!
//! burn's flex backend has a single device (`FlexDevice` is a unit struct), and this build has
//! no other CPU backend, so the two "devices" are two replicas forked onto the flex device,
//! each run on its own thread, with their gradients combined by burn's `MultiGradientsParams`
//! exactly as burn-train's multi-device strategy does (`ModuleOptimizer::step_multi`; our
//! `ModelOptimizer::step_multi`). With two GPUs the same code runs with two real devices.

use crate::common::{Mlp, matrix, max_rel_diff, values};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use schedulefree::{AdamWScheduleFree, PresetConfig, SgdScheduleFree};
use schedulefree_burn::{ModelOptimizer, TensorOptimizer};

const ROWS: usize = 8;
const DOUT: usize = 3;

/// Sum of squared errors on rows `range` of batch `step`, divided by the whole batch's element
/// count, so that the replicas' gradients sum to the gradient of the whole batch's mean.
fn partial_loss(
    model: &Mlp,
    step: usize,
    rows: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<1> {
    let x = matrix(ROWS, 4, step, device).slice([rows.clone(), 0..4]);
    let t = matrix(ROWS, DOUT, step + 1000, device).slice([rows, 0..DOUT]);
    (model.forward(x) - t)
        .powf_scalar(2.0)
        .sum()
        .div_scalar((ROWS * DOUT) as f64)
}

fn replica_grads(model: &Mlp, step: usize, device: &Device) -> MultiGradientsParams {
    let halves = [0..ROWS / 2, ROWS / 2..ROWS];
    let grads: Vec<(GradientsParams, Device)> = std::thread::scope(|s| {
        let handles: Vec<_> = halves
            .iter()
            .map(|rows| {
                let replica = model.clone().fork(device);
                let device = device.clone();
                let rows = rows.clone();
                s.spawn(move || {
                    let g = GradientsParams::from_grads(
                        partial_loss(&replica, step, rows, &device).backward(),
                        &replica,
                    );
                    (g, device)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("replica thread"))
            .collect()
    });
    MultiGradientsParams { grads }
}

fn full_grads(model: &Mlp, step: usize, device: &Device) -> GradientsParams {
    GradientsParams::from_grads(partial_loss(model, step, 0..ROWS, device).backward(), model)
}

fn presets() -> Vec<PresetConfig> {
    vec![
        PresetConfig::SgdScheduleFree(SgdScheduleFree {
            lr: 0.5,
            warmup_steps: 2,
            ..Default::default()
        }),
        PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
            lr: 0.01,
            warmup_steps: 2,
            ..Default::default()
        }),
    ]
}

#[test]
fn two_replicas_equal_one_device_on_the_combined_batch() {
    let device = Device::default().autodiff();
    for preset in presets() {
        let start = Mlp::new(&device, &[4, 8, DOUT]);
        let initial = values(&start);
        // Module-level optimizer.
        let (mut single, mut multi) = (start.clone(), start.clone());
        let mut o1 = ModelOptimizer::new(preset.clone()).expect("valid");
        let mut o2 = ModelOptimizer::new(preset.clone()).expect("valid");
        // Per-tensor optimizer in burn's ModuleOptimizer.
        let (mut single_t, mut multi_t) = (start.clone(), start);
        let mut t1: ModuleOptimizer = TensorOptimizer::new(preset.clone()).expect("valid").into();
        let mut t2: ModuleOptimizer = TensorOptimizer::new(preset.clone()).expect("valid").into();
        for step in 0..6 {
            single = o1
                .step(single.clone(), full_grads(&single, step, &device))
                .expect("step")
                .0;
            multi = o2
                .step_multi(multi.clone(), replica_grads(&multi, step, &device))
                .expect("step")
                .0;
            single_t = t1.step(
                preset.lr(),
                single_t.clone(),
                full_grads(&single_t, step, &device),
            );
            multi_t = t2.step_multi(
                preset.lr(),
                multi_t.clone(),
                replica_grads(&multi_t, step, &device),
            );
            // Only the summation order of the gradient differs.
            let d = max_rel_diff(&values(&multi), &values(&single));
            assert!(
                d < 1e-4,
                "{} step {step}: module-level differs by {d:e}",
                preset.name()
            );
            let d = max_rel_diff(&values(&multi_t), &values(&single_t));
            assert!(
                d < 1e-4,
                "{} step {step}: per-tensor differs by {d:e}",
                preset.name()
            );
            let dx = max_rel_diff(
                &values(&o2.eval_module(&multi).expect("x")),
                &values(&o1.eval_module(&single).expect("x")),
            );
            assert!(
                dx < 1e-4,
                "{} step {step}: x differs by {dx:e}",
                preset.name()
            );
        }
        assert!(
            max_rel_diff(&values(&single), &initial) > 1e-3,
            "training moved the parameters"
        );
    }
}
