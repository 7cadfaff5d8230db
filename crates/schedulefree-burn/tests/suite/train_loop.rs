//! The training loop validates at x by default and at y when told; the per-tensor optimizer
//! reports refused steps instead of panicking.

use std::collections::BTreeMap;

use crate::common::{Mlp, grads, max_rel_diff, mse, presets, same_bits, values};
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use schedulefree_burn::{DeviceOptimizer, ModelOptimizer, TensorOptimizer, TrainLoop};

#[test]
fn validation_runs_at_x_unless_turned_off() {
    let device = Device::default().autodiff();
    let preset = presets().remove(0);
    for at_x in [true, false] {
        let mut optim = ModelOptimizer::new(preset.clone()).expect("valid");
        let model = Mlp::new(&device, &[4, 8, 3]);
        let (model, reports) = TrainLoop::new(3)
            .validate_at_x(at_x)
            .run(
                &mut optim,
                model,
                |epoch| (0..4).map(move |i| epoch * 4 + i),
                |m: &Mlp, seed| mse(m, seed, &device),
                |m: &Mlp| {
                    assert!(
                        !m.layers[0].weight.val().is_autodiff(),
                        "validation module has no autodiff"
                    );
                    values(m)
                },
            )
            .expect("training");
        assert_eq!(reports.len(), 3);
        assert!(
            reports
                .iter()
                .all(|r| r.steps == 4 && r.train_loss.is_finite() && r.validated_at_x == at_x)
        );
        let last: &BTreeMap<String, Vec<f32>> = &reports[2].validation;
        let want = if at_x {
            values(&optim.eval_module(&model).expect("x"))
        } else {
            values(&model)
        };
        assert!(
            same_bits(last, &want),
            "validated at the wrong point (at_x = {at_x})"
        );
        assert!(
            max_rel_diff(
                &values(&optim.eval_module(&model).expect("x")),
                &values(&model)
            ) > 0.0
        );
        assert!(
            reports[2].train_loss < reports[0].train_loss,
            "loss goes down: {reports:?}"
        );
    }
}

#[test]
fn the_loop_runs_the_device_optimizer_as_the_host_one() {
    let device = Device::default().autodiff();
    let preset = presets().remove(0);
    let start = Mlp::new(&device, &[4, 8, 3]);
    let batches = |epoch: usize| (0..4).map(move |i| epoch * 4 + i);
    let loss = |m: &Mlp, seed| mse(m, seed, &device);
    let mut host = ModelOptimizer::new(preset.clone()).expect("valid");
    let (host_model, host_reports) = TrainLoop::new(3)
        .run(&mut host, start.clone(), batches, loss, values)
        .expect("host training");
    let mut dev = DeviceOptimizer::new(preset).expect("valid");
    let (dev_model, dev_reports) = TrainLoop::new(3)
        .run(&mut dev, start, batches, loss, values)
        .expect("device training");
    // flex's element ops are exact: the same bits at y and, validated, at x.
    assert!(same_bits(&values(&host_model), &values(&dev_model)));
    assert_eq!(host_reports.len(), 3);
    for (h, d) in host_reports.iter().zip(&dev_reports) {
        assert!(h.validated_at_x && d.validated_at_x);
        assert!(same_bits(&h.validation, &d.validation), "epoch {}", h.epoch);
        assert_eq!(h.train_loss.to_bits(), d.train_loss.to_bits());
    }
}

#[test]
fn tensor_optimizer_records_refused_steps() {
    let device = Device::default().autodiff();
    let topt = TensorOptimizer::new(presets().remove(0)).expect("valid");
    let mut optim: ModuleOptimizer = topt.clone().into();
    let model = Mlp::new(&device, &[4, 8, 3]);
    let before = values(&model);
    let model = optim.step(-1.0, model.clone(), grads(&model, 0, &device));
    assert!(
        same_bits(&values(&model), &before),
        "a refused step leaves the tensors unchanged"
    );
    let err = topt.take_error().expect("the refusal is recorded");
    assert!(err.to_string().contains("lr"), "{err}");
    assert!(topt.take_error().is_none(), "taken once");
    let moved = optim.step(0.01, model.clone(), grads(&model, 1, &device));
    assert!(max_rel_diff(&values(&moved), &before) > 0.0);
    assert!(topt.take_error().is_none());
}
