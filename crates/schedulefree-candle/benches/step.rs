//! Step time of our optimizer against `candle_nn::AdamW` on the vars of a 784-256-256-10 MLP
//! (269 322 f32 parameters) and of a flat 50M-parameter model (twelve 4096×1024 matrices,
//! 50 331 648 parameters), with fixed synthetic gradients, on the host path (the CPU
//! default) and the device path (the default for GPU vars, forced here on the CPU).
//! `cargo bench -p schedulefree-candle --bench step` (`-- mlp` or `-- flat_50m` for one).
#![allow(missing_docs, clippy::unwrap_used)]

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use criterion::{Criterion, criterion_group, criterion_main};
use schedulefree::{AdamWScheduleFree, PresetConfig, SgdScheduleFree};
use schedulefree_candle::{Placement, ScheduleFreeOptimizer};

const MLP: [&[usize]; 6] = [&[256, 784], &[256], &[256, 256], &[256], &[10, 256], &[10]];
const FLAT_50M: [&[usize]; 12] = [&[4096, 1024]; 12];

/// Fresh vars of `shapes` and a gradient for each.
fn vars_and_grads(shapes: &[&[usize]]) -> (Vec<Var>, GradStore) {
    let dev = Device::Cpu;
    let mut grads = GradStore::default();
    let vars: Vec<Var> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n: usize = s.iter().product();
            let w: Vec<f32> = (0..n)
                .map(|j| ((i * 7919 + j) as f32 * 0.618).sin() * 0.05)
                .collect();
            let g: Vec<f32> = (0..n)
                .map(|j| ((i * 104_729 + j) as f32 * 0.377).cos() * 1e-3)
                .collect();
            let var = Var::from_tensor(&Tensor::from_vec(w, *s, &dev).unwrap()).unwrap();
            grads.insert(var.as_tensor(), Tensor::from_vec(g, *s, &dev).unwrap());
            var
        })
        .collect();
    assert!(vars.iter().all(|v| v.dtype() == DType::F32));
    (vars, grads)
}

fn ours() -> [(&'static str, PresetConfig); 3] {
    [
        (
            "ours: AdamWScheduleFree",
            PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
                weight_decay: 0.01,
                ..Default::default()
            }),
        ),
        (
            "ours: SgdScheduleFree",
            PresetConfig::SgdScheduleFree(SgdScheduleFree {
                lr: 0.1,
                ..Default::default()
            }),
        ),
        (
            "ours: AdamW (last iterate)",
            serde_json::from_str(
                r#"{"method": "adamw", "config": {"lr": 0.001, "weight_decay": 0.01}}"#,
            )
            .unwrap(),
        ),
    ]
}

/// candle-nn's AdamW and `methods` of ours on both paths, over vars of `shapes`.
fn group(c: &mut Criterion, name: &str, shapes: &[&[usize]], methods: usize) {
    let mut group = c.benchmark_group(name);
    if shapes.len() > 6 {
        // Steps of a 50M model take about a second on 2 cores.
        group.sample_size(10);
    }
    {
        let (vars, grads) = vars_and_grads(shapes);
        let mut opt = AdamW::new(
            vars,
            ParamsAdamW {
                lr: 1e-3,
                weight_decay: 0.01,
                ..Default::default()
            },
        )
        .unwrap();
        group.bench_function("candle_nn::AdamW", |b| b.iter(|| opt.step(&grads).unwrap()));
    }
    for (name, config) in ours().into_iter().take(methods) {
        for placement in [Placement::Host, Placement::Device] {
            let (vars, grads) = vars_and_grads(shapes);
            let mut opt = ScheduleFreeOptimizer::new(vars, config.clone()).unwrap();
            opt.set_placement(placement).unwrap();
            let name = format!("{name} ({placement:?} path)");
            group.bench_function(&name, |b| b.iter(|| opt.step(&grads).unwrap()));
        }
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    group(c, "mlp_784_256_256_10_step", &MLP, 3);
    group(c, "flat_50m_step", &FLAT_50M, 1);
}

criterion_group!(benches, bench);
criterion_main!(benches);
