//! Bytes per second of one optimizer step on 64 Mi f32 elements, against a copy roofline.
//!
//! Bytes moved per element and step (f32): Schedule-Free AdamW reads y, g, z, v and writes
//! y, z, v (28 B); Schedule-Free SGD reads y, g, z and writes y, z (20 B); the copy
//! roofline reads and writes one buffer (8 B). Set `SF_BENCH_ELEMS` to change the size.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use schedulefree::{AdamWScheduleFree, Param, SgdScheduleFree};

fn elems() -> usize {
    std::env::var("SF_BENCH_ELEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 << 20)
}

fn inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let y: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32) * 1e-3).collect();
    let g: Vec<f32> = (0..n).map(|i| ((i % 997) as f32) * 1e-3 - 0.5).collect();
    (y, g)
}

fn bench(c: &mut Criterion) {
    let n = elems();
    let mut group = c.benchmark_group("step_64Mi_f32");
    group.sample_size(10);

    let (mut y, g) = inputs(n);
    let mut out = vec![0.0f32; n];
    group.throughput(Throughput::Bytes((8 * n) as u64));
    group.bench_function("copy_roofline", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(&y));
            black_box(&out);
        })
    });
    drop(out);

    let mut opt = AdamWScheduleFree {
        lr: 1e-3,
        weight_decay: 0.01,
        warmup_steps: 100,
        ..Default::default()
    }
    .build::<f32>()
    .expect("valid config");
    opt.add_param("w", &[n]).expect("new name");
    opt.step(&mut [Param::new("w", &mut y, &g)])
        .expect("state allocated on first step");
    group.throughput(Throughput::Bytes((28 * n) as u64));
    group.bench_function("adamw_schedule_free", |b| {
        b.iter(|| {
            opt.step(&mut [Param::new("w", &mut y, black_box(&g))])
                .expect("step")
        })
    });
    drop(opt);

    let mut opt = SgdScheduleFree {
        lr: 1.0,
        weight_decay: 0.01,
        warmup_steps: 100,
        ..Default::default()
    }
    .build::<f32>()
    .expect("valid config");
    opt.add_param("w", &[n]).expect("new name");
    opt.step(&mut [Param::new("w", &mut y, &g)])
        .expect("state allocated on first step");
    group.throughput(Throughput::Bytes((20 * n) as u64));
    group.bench_function("sgd_schedule_free", |b| {
        b.iter(|| {
            opt.step(&mut [Param::new("w", &mut y, black_box(&g))])
                .expect("step")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
