//! Bytes per second of one optimizer step, against roofline kernels in the same binary, on
//! one thread (a rayon pool of 1) and on all cores (the default pool).
//!
//! `sf_adamw_one_pass` is Schedule-Free AdamW under `NonFinitePolicy::Propagate`: no
//! non-finite check before the update, so each gradient is read once (the default policy
//! reads it twice: 32 B per element in memory traffic for the 28 B counted).
//!
//! Bytes moved per element and step (f32; read + written): the copy roofline 8 B; the fused
//! AdamW roofline reads p, g, m, v and writes p, m, v (28 B); the 20 B roofline reads p, g, z
//! and writes p, z. Schedule-Free AdamW and AdamC move 28 B, Schedule-Free SGD and
//! AdaGrad-Norm 20 B, Schedule-Free Prodigy 52 B (its pre-pass reads 16 B more),
//! ScheduleFree+ 48 B (Adam with its first moment reads p, g, m, v, z and writes p, m, v, z:
//! 36 B; the pre-pass `⟨g, z − y⟩` reads 12 B more; stepped with a loss of 1); the
//! projection of Schedule-Free Adam is counted as 28 B too (it runs on each block while the
//! block is in cache). Every optimizer is reported against the roofline of its own byte count.
//!
//! Sizes: one flat tensor of `SF_BENCH_ELEMS` f32 (default 64 Mi) shaped `[n / 4096, 4096]`
//! (`[n]` if `n` is not a multiple of 4096; the shape matters only to the projection, whose
//! rows it makes), and the model layout of 100 × 704×704 + 100 × 4400 tensors (50 M
//! elements), every second matrix normalized. After criterion's report the bench
//! prints the table of fractions of the roofline (read back from criterion's estimates).

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
use schedulefree::learner::{AdaGradNorm, Adam, Prodigy};
use schedulefree::schedule::{Constant, ScheduleConfig};
use schedulefree::{
    AdamC, AdamWScheduleFree, DynOptimizer, NonFinitePolicy, Param, ParamTags, ScheduleFreePlus,
    SgdScheduleFree,
};

#[path = "step/roofline.rs"]
mod roofline;

/// Elements of the flat tensor.
fn elems() -> usize {
    std::env::var("SF_BENCH_ELEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 << 20)
}

/// Parameter shapes of the model layout.
fn model_shapes() -> Vec<Vec<usize>> {
    let mut v = vec![vec![704, 704]; 100];
    v.extend(std::iter::repeat_n(vec![4400], 100));
    v
}

/// Deterministic, finite, varied values.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i + seed) % 1000) as f32) * 1e-3 - 0.5)
        .collect()
}

/// The optimizers under test: (bench name, bytes per element, builder).
type Build = fn() -> Box<dyn DynOptimizer<f32>>;

fn optimizers() -> Vec<(&'static str, u64, Build)> {
    fn sf() -> ConversionConfig {
        ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: Default::default(),
            decoupling_c: 0.0,
        }
    }
    fn composed(learner: LearnerConfig, normalized: NormalizedPolicy) -> Composed {
        Composed {
            learner,
            conversion: sf(),
            decay: DecayConfig {
                base: AnyDecay::Decoupled,
                normalized,
            },
            schedule: ScheduleConfig::Constant {},
            lr: 1e-3,
            weight_decay: 0.01,
        }
    }
    fn sf_adamw() -> schedulefree::presets::AdamWScheduleFreeOptimizer<f32> {
        let c = AdamWScheduleFree {
            lr: 1e-3,
            weight_decay: 0.01,
            warmup_steps: 100,
            ..Default::default()
        };
        c.build::<f32>().expect("valid config")
    }
    vec![
        ("sf_adamw", 28, || Box::new(sf_adamw())),
        ("sf_adamw_one_pass", 28, || {
            Box::new(sf_adamw().with_non_finite(NonFinitePolicy::Propagate))
        }),
        ("sf_sgd", 20, || {
            let c = SgdScheduleFree {
                lr: 1.0,
                weight_decay: 0.01,
                warmup_steps: 100,
                ..Default::default()
            };
            Box::new(c.build::<f32>().expect("valid config"))
        }),
        ("adamc", 28, || {
            let c = AdamC {
                weight_decay: 0.01,
                ..Default::default()
            };
            Box::new(c.build::<f32, _>(Constant).expect("valid config"))
        }),
        ("sf_adam_projection", 28, || {
            let adam = Adam {
                beta1: 0.0,
                ..Default::default()
            };
            let projected = NormalizedPolicy::Projected(Projection::default());
            composed(LearnerConfig::Adam(adam), projected)
                .build_dyn()
                .expect("valid config")
        }),
        ("sf_adagrad_norm", 20, || {
            composed(
                LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
                NormalizedPolicy::Standard,
            )
            .build_dyn()
            .expect("valid config")
        }),
        ("sf_plus", 48, || {
            let c = ScheduleFreePlus {
                weight_decay: 0.01,
                polyak_beta: 0.9,
                ..Default::default()
            };
            Box::new(c.build::<f32>().expect("valid config"))
        }),
        ("sf_prodigy", 52, || {
            composed(
                LearnerConfig::Prodigy(Prodigy::default()),
                NormalizedPolicy::Standard,
            )
            .build_dyn()
            .expect("valid config")
        }),
    ]
}

/// Tensors of one layout, with their gradients.
struct Tensors {
    shapes: Vec<Vec<usize>>,
    names: Vec<String>,
    values: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
}

impl Tensors {
    fn new(shapes: Vec<Vec<usize>>) -> Self {
        let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        Tensors {
            names: (0..shapes.len()).map(|i| format!("p{i}")).collect(),
            values: lens
                .iter()
                .enumerate()
                .map(|(i, &n)| values(n, i))
                .collect(),
            grads: lens
                .iter()
                .enumerate()
                .map(|(i, &n)| values(n, 7 * i + 3))
                .collect(),
            shapes,
        }
    }
    fn elems(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }
    fn step(&mut self, opt: &mut dyn DynOptimizer<f32>) {
        let mut params: Vec<Param<'_, f32>> = self
            .names
            .iter()
            .zip(&mut self.values)
            .zip(&self.grads)
            .map(|((n, v), g)| Param::new(n, v, black_box(g)))
            .collect();
        if opt.needs_loss() {
            opt.step_with_loss(&mut params, 1.0).expect("finite step");
        } else {
            opt.step(&mut params).expect("finite step");
        }
    }
}

/// Run `f` in `pool` when given (one thread), else on the default pool.
fn within<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn bench_layout(
    group: &mut BenchmarkGroup<'_, WallTime>,
    t: &mut Tensors,
    pool: Option<&rayon::ThreadPool>,
) {
    let n = t.elems();
    let flat = t.values.len() == 1;
    if flat {
        let mut out = vec![0.0f32; n];
        group.throughput(Throughput::Bytes(8 * n as u64));
        group.bench_function("copy_roofline", |b| {
            b.iter(|| within(pool, || roofline::copy(&mut out, black_box(&t.values[0]))))
        });
    }
    // Rooflines over the tensors as laid out (flat: one; model: 200, one after another).
    let mut m: Vec<Vec<f32>> = t.values.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut v: Vec<Vec<f32>> = t.values.iter().map(|v| vec![0.0; v.len()]).collect();
    group.throughput(Throughput::Bytes(28 * n as u64));
    group.bench_function("adamw_roofline", |b| {
        b.iter(|| {
            within(pool, || {
                for (((p, g), m), v) in t.values.iter_mut().zip(&t.grads).zip(&mut m).zip(&mut v) {
                    roofline::adamw(p, black_box(g), m, v);
                }
            })
        })
    });
    group.throughput(Throughput::Bytes(20 * n as u64));
    group.bench_function("roofline_20b", |b| {
        b.iter(|| {
            within(pool, || {
                for ((p, g), z) in t.values.iter_mut().zip(&t.grads).zip(&mut m) {
                    roofline::sgd_sf(p, black_box(g), z);
                }
            })
        })
    });
    drop((m, v));
    for (name, bytes, build) in optimizers() {
        let mut opt = build();
        for (i, (n, s)) in t.names.iter().zip(&t.shapes).enumerate() {
            // Every second tensor is normalized (the rows of the projection, AdamC's
            // correction), as for a network's weight matrices.
            let tags = ParamTags {
                normalized: i % 2 == 0 && s.len() == 2 || flat,
                ..Default::default()
            };
            opt.add_param_tagged(0, n, s, tags).expect("new name");
        }
        t.step(opt.as_mut()); // state allocated on the first step
        group.throughput(Throughput::Bytes(bytes * n as u64));
        group.bench_function(name, |b| b.iter(|| within(pool, || t.step(opt.as_mut()))));
    }
}

fn bench(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool of one thread");
    let n = elems();
    let flat_shape = if n.is_multiple_of(4096) {
        vec![n / 4096, 4096]
    } else {
        vec![n]
    };
    let mut flat = Tensors::new(vec![flat_shape]);
    let mut model = Tensors::new(model_shapes());
    for (threads, pool) in [("1t", Some(&one)), ("all", None)] {
        let mut group = c.benchmark_group(format!("flat_{threads}"));
        group.sample_size(10);
        bench_layout(&mut group, &mut flat, pool);
        group.finish();
        let mut group = c.benchmark_group(format!("model_{threads}"));
        group.sample_size(10);
        bench_layout(&mut group, &mut model, pool);
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    roofline::print_table(&["flat_1t", "flat_all", "model_1t", "model_all"]);
}
