//! Step time on an MLP-sized parameter set (784-256-256-10 Linear layers, 269,322 parameters)
//! and on a flat 50M-parameter model (twelve 4096×1024 matrices, 50,331,648 parameters), with
//! fixed synthetic gradients: our module-level optimizer (`ModelOptimizer`, whose automatic
//! placement is the host path on flex), our per-tensor optimizer inside burn's
//! `ModuleOptimizer`, burn's own AdamW `ModuleOptimizer`, our device-resident optimizer (burn
//! tensor ops), and on the MLP the core alone on host buffers (what the adapters add is the
//! difference).
//!
//! `cargo bench -p schedulefree-burn -- --warm-up-time 1 --measurement-time 3` (append `mlp`
//! or `flat_50m` to run one group).

use std::hint::black_box;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use schedulefree::{AdamWScheduleFree, PresetConfig};
use schedulefree_burn::{DeviceOptimizer, ModelOptimizer, TensorOptimizer};

#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
}

/// A flat model: parameters only, as the optimizer sees a large network.
#[derive(Module, Debug)]
struct Flat {
    blocks: Vec<Param<Tensor<2>>>,
}

/// A model of the benchmark.
trait Model: Module + Sized {
    /// Wait for the model's values (burn's step is lazy on some backends).
    fn touch(&self);
}

impl Model for Mlp {
    fn touch(&self) {
        let _ = black_box(self.layers[2].bias.as_ref().map(|p| p.val().into_data()));
    }
}

impl Model for Flat {
    fn touch(&self) {
        let last = self.blocks.last().map(|p| p.val().slice([0..1, 0..4]));
        let _ = black_box(last.map(Tensor::into_data));
    }
}

fn flat(device: &Device) -> Flat {
    Flat {
        blocks: (0..12)
            .map(|_| {
                Param::from_tensor(Tensor::random(
                    [4096, 1024],
                    Distribution::Uniform(-0.05, 0.05),
                    device,
                ))
            })
            .collect(),
    }
}

/// One fixed gradient per parameter (ids and inner-backend tensors, as burn's backward gives).
struct Grads {
    weights: Vec<(ParamId, Tensor<2>)>,
    biases: Vec<(ParamId, Tensor<1>)>,
}

impl Grads {
    fn of<M: Module>(model: &M) -> Self {
        struct V(Grads, usize);
        impl ModuleVisitor for V {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                let dims = p.lazy_shape().to_vec();
                let n: usize = dims.iter().product();
                let seed = self.1;
                self.1 += 1;
                let v: Vec<f32> = (0..n)
                    .map(|i| ((i * 31 + seed * 7) as f32 * 0.013).sin() * 1e-2)
                    .collect();
                let data = TensorData::new(v, dims);
                match D {
                    2 => self
                        .0
                        .weights
                        .push((p.id, Tensor::from_data(data, &Device::default()))),
                    _ => self
                        .0
                        .biases
                        .push((p.id, Tensor::from_data(data, &Device::default()))),
                }
            }
        }
        let mut v = V(
            Grads {
                weights: Vec::new(),
                biases: Vec::new(),
            },
            0,
        );
        model.visit(&mut v);
        v.0
    }
    fn params(&self) -> GradientsParams {
        let mut g = GradientsParams::new();
        for (id, t) in &self.weights {
            g.register(*id, t.clone());
        }
        for (id, t) in &self.biases {
            g.register(*id, t.clone());
        }
        g
    }
}

fn model(device: &Device) -> Mlp {
    Mlp {
        layers: [784, 256, 256, 10]
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect(),
    }
}

fn preset() -> PresetConfig {
    PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        lr: 1e-3,
        warmup_steps: 10,
        ..Default::default()
    })
}

/// Our optimizers and burn's AdamW on models from `make`; returns the group for more.
fn group<'c, M: Model>(
    c: &'c mut Criterion,
    name: &str,
    make: impl Fn(&Device) -> M,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let device = Device::default().autodiff();
    let mut group = c.benchmark_group(name);
    let large = name.starts_with("flat");
    if large {
        // Steps of a 50M model take a good part of a second on 2 cores.
        group.sample_size(10);
    }

    let mut m = Some(make(&device));
    let grads = Grads::of(m.as_ref().expect("model"));
    let mut optim = ModelOptimizer::new(preset()).expect("valid preset");
    group.bench_function("model_optimizer_adamw_sf", |b| {
        b.iter(|| {
            let next = optim
                .step(m.take().expect("model"), grads.params())
                .expect("step")
                .0;
            m = Some(black_box(next));
        })
    });

    if !large {
        let mut m = Some(make(&device));
        let grads = Grads::of(m.as_ref().expect("model"));
        let mut optim: ModuleOptimizer =
            TensorOptimizer::new(preset()).expect("valid preset").into();
        group.bench_function("tensor_optimizer_adamw_sf_in_module_optimizer", |b| {
            b.iter(|| {
                let next = optim.step(1e-3, m.take().expect("model"), grads.params());
                m = Some(black_box(next));
            })
        });
    }

    let mut m = Some(make(&device));
    let grads = Grads::of(m.as_ref().expect("model"));
    let mut optim: ModuleOptimizer = AdamWConfig::new().init();
    group.bench_function("burn_adamw_module_optimizer", |b| {
        b.iter(|| {
            let next = optim.step(1e-3, m.take().expect("model"), grads.params());
            next.touch();
            m = Some(next);
        })
    });

    let mut m = Some(make(&device));
    let grads = Grads::of(m.as_ref().expect("model"));
    let mut optim = DeviceOptimizer::new(preset()).expect("valid preset");
    group.bench_function("device_optimizer_adamw_sf", |b| {
        b.iter(|| {
            let next = optim
                .step(m.take().expect("model"), grads.params())
                .expect("step")
                .0;
            next.touch();
            m = Some(next);
        })
    });
    group
}

fn bench(c: &mut Criterion) {
    group(c, "flat_50m_step", flat).finish();
    let mut group = group(c, "step_mlp_784_256_256_10", model);

    // The core alone on host buffers of the same sizes.
    let sizes = [
        ("l0.w", 784 * 256),
        ("l0.b", 256),
        ("l1.w", 256 * 256),
        ("l1.b", 256),
        ("l2.w", 256 * 10),
        ("l2.b", 10),
    ];
    let mut core = preset().build_dyn::<f32>().expect("valid preset");
    let mut bufs: Vec<(Vec<f32>, Vec<f32>)> = sizes
        .iter()
        .map(|(_, n)| (vec![0.1; *n], vec![1e-3; *n]))
        .collect();
    for (name, n) in sizes {
        core.add_param_to(0, name, &[n]).expect("new name");
    }
    group.bench_function("core_alone_adamw_sf_host_buffers", |b| {
        b.iter(|| {
            let mut ps: Vec<schedulefree::Param<'_, f32>> = sizes
                .iter()
                .zip(bufs.iter_mut())
                .map(|((n, _), (v, g))| schedulefree::Param::new(n, v, g))
                .collect();
            black_box(core.step(&mut ps).expect("step"));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
