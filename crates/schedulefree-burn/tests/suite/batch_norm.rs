//! Batch-norm recalibration at x: running statistics become the plain mean over the batches of
//! the per-batch statistics computed at x; the training module's statistics are untouched.

use crate::common::matrix;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use schedulefree::{AdamWScheduleFree, PresetConfig};
use schedulefree_burn::{BurnAdapterError, ModelOptimizer, recalibrate_batch_norm};

#[derive(Module, Debug)]
struct Net {
    lin: Linear,
    bn: BatchNorm,
    head: Linear,
}

impl Net {
    fn new(device: &Device, momentum: f64) -> Self {
        Net {
            lin: LinearConfig::new(4, 3).init(device),
            bn: BatchNormConfig::new(3).with_momentum(momentum).init(device),
            head: LinearConfig::new(3, 2).init(device),
        }
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.bn.forward(self.lin.forward(x)))
    }
}

fn host(t: Tensor<1>) -> Vec<f64> {
    t.inner()
        .try_into_vec_as::<f32>()
        .expect("readable")
        .into_iter()
        .map(f64::from)
        .collect()
}

fn trained(device: &Device, momentum: f64) -> (Net, ModelOptimizer) {
    let mut net = Net::new(device, momentum);
    let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        lr: 0.05,
        warmup_steps: 2,
        ..Default::default()
    });
    let mut optim = ModelOptimizer::new(preset).expect("valid");
    for step in 0..6 {
        let loss = (net.forward(matrix(8, 4, step, device)) - matrix(8, 2, step + 50, device))
            .powf_scalar(2.0)
            .mean();
        let g = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(net, g).expect("step").0;
    }
    (net, optim)
}

#[test]
fn running_stats_are_the_mean_over_batches_at_x() {
    let device = Device::default().autodiff();
    for momentum in [0.1, 0.35] {
        let (net, optim) = trained(&device, momentum);
        assert!(
            optim.param_shapes().keys().all(|p| !p.contains("running")),
            "running stats are not optimized"
        );
        assert!(optim.param_shapes().contains_key("bn.gamma"));
        let y_mean_before = host(net.bn.running_mean.value_sync());

        let at_x = optim.eval_module(&net).expect("x");
        let batches: Vec<Tensor<2>> = (0..5).map(|i| matrix(8, 4, 100 + i, &device)).collect();
        let recal =
            recalibrate_batch_norm(at_x.clone(), batches.clone(), |m: &Net, b| m.forward(b))
                .expect("recalibrate");

        // Expected: per-batch statistics of the BN input at x, averaged.
        let (mut mean, mut var) = (vec![0.0; 3], vec![0.0; 3]);
        for b in &batches {
            let h = at_x.valid().lin.forward(b.clone().inner());
            let m = h.clone().mean_dim(0);
            let v = (h - m.clone()).powf_scalar(2.0).mean_dim(0);
            for (acc, x) in mean.iter_mut().zip(host(m.reshape([3]))) {
                *acc += x / 5.0;
            }
            for (acc, x) in var.iter_mut().zip(host(v.reshape([3]))) {
                *acc += x / 5.0;
            }
        }
        let got_mean = host(recal.bn.running_mean.value());
        let got_var = host(recal.bn.running_var.value());
        for i in 0..3 {
            assert!(
                (got_mean[i] - mean[i]).abs() <= 1e-5 * (1.0 + mean[i].abs()),
                "momentum {momentum}: mean {got_mean:?} vs {mean:?}"
            );
            assert!(
                (got_var[i] - var[i]).abs() <= 1e-5 * (1.0 + var[i].abs()),
                "momentum {momentum}: var {got_var:?} vs {var:?}"
            );
        }
        assert_eq!(recal.bn.momentum, momentum, "momentum unchanged");
        assert_eq!(
            host(net.bn.running_mean.value_sync()),
            y_mean_before,
            "the training module's stats are untouched"
        );
        // A validation module comes back as one, with the same statistics.
        let from_valid =
            recalibrate_batch_norm(at_x.valid(), batches.clone(), |m: &Net, b| m.forward(b))
                .expect("recalibrate");
        assert!(!from_valid.lin.weight.val().is_autodiff());
        assert!(
            recal.lin.weight.val().is_autodiff(),
            "a training-state module stays one"
        );
        let again = host(from_valid.bn.running_mean.value());
        assert!(
            again
                .iter()
                .zip(&got_mean)
                .all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs())),
            "{again:?} vs {got_mean:?}"
        );
        // The recalibrated module validates.
        let out = recal.valid().forward(matrix(2, 4, 7, &Device::default()));
        assert_eq!(out.dims(), [2, 2]);
    }
}

#[derive(Module, Debug)]
struct Noisy {
    drop: Dropout,
    bn: BatchNorm,
}

#[test]
fn refusals_are_errors() {
    let device = Device::default().autodiff();
    let net = Net::new(&device, 0.1);
    let none: Vec<Tensor<2>> = Vec::new();
    assert!(matches!(
        recalibrate_batch_norm(net, none, |m: &Net, b| m.forward(b)),
        Err(BurnAdapterError::BatchNorm(_))
    ));

    let noisy = Noisy {
        drop: DropoutConfig::new(0.5).init(),
        bn: BatchNormConfig::new(3).init(&device),
    };
    let batches = vec![matrix(64, 3, 1, &device)];
    let r = recalibrate_batch_norm(noisy, batches, |m: &Noisy, b| {
        m.bn.forward(m.drop.forward(b))
    });
    assert!(
        matches!(r, Err(BurnAdapterError::BatchNorm(ref s)) if s.contains("deterministic")),
        "{r:?}"
    );

    // No batch norm: returned unchanged.
    let plain = LinearConfig::new(2, 2).init(&device);
    let same = recalibrate_batch_norm(
        plain.clone(),
        vec![matrix(2, 2, 0, &device)],
        |m: &Linear, b| m.forward(b),
    )
    .expect("ok");
    assert_eq!(
        same.weight.val().into_data(),
        plain.weight.val().into_data()
    );
}
