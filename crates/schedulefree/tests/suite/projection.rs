//! Hypersphere projection of normalized parameters (ALGORITHMS.md §10.5, §12.3 item 9): row
//! norms stay at their radii after every step (1e-12 f64, 1e-6 f32), the projection is
//! idempotent, `‖g‖/‖x‖` depends on neither λ nor the schedule, zero rows stay 0 (never NaN),
//! Schedule-Free keeps `z` on the spheres and `x` inside them, a bad axis is a typed error.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection, RadiusInit};
use schedulefree::learner::Sgd;
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{DynOptimizer, Element, Param, ParamError, ParamTags};

fn composed(
    conversion: ConversionConfig,
    projection: Projection,
    lr: f64,
    weight_decay: f64,
    schedule: ScheduleConfig,
) -> Composed {
    Composed {
        learner: LearnerConfig::Sgd(Sgd::plain()),
        conversion,
        decay: DecayConfig {
            base: AnyDecay::Decoupled,
            normalized: NormalizedPolicy::Projected(projection),
        },
        schedule,
        lr,
        weight_decay,
    }
}

fn schedule_free() -> ConversionConfig {
    ConversionConfig::ScheduleFree {
        beta: 0.9,
        weights: AveragingWeights::default(),
        decoupling_c: 0.0,
    }
}

fn linear(total: u64) -> ScheduleConfig {
    ScheduleConfig::Linear {
        warmup: 0,
        total,
        end: 0.0,
    }
}

/// Norms of the rows of `v` (shape `shape`) along `axis`: row `r` holds the elements whose
/// index along `axis` is `r`.
fn row_norms<T: Element>(v: &[T], shape: &[usize], axis: usize) -> Vec<f64> {
    let rows = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut sq = vec![0.0; rows];
    for (i, x) in v.iter().enumerate() {
        sq[(i / inner) % rows] += x.f64() * x.f64();
    }
    sq.into_iter().map(f64::sqrt).collect()
}

fn gaussians(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Random steps on a normalized `shape` parameter under `projection`; after every step each
/// row's norm equals its radius within `tol` (relative). Rows start at different scales.
fn rows_stay_on_spheres<T: Element>(
    shape: &[usize],
    projection: Projection,
    conversion: ConversionConfig,
    tol: f64,
) {
    let n: usize = shape.iter().product();
    let mut opt = composed(conversion, projection, 0.3, 0.1, linear(200))
        .build_dyn::<T>()
        .expect("config");
    opt.add_param_tagged(0, "w", shape, ParamTags::NORMALIZED)
        .expect("axis fits");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut w: Vec<T> = gaussians(&mut rng, n)
        .iter()
        .enumerate()
        .map(|(i, v)| T::of(v * (1 + i % 3) as f64))
        .collect();
    let radius = match projection.radius {
        RadiusInit::Initial => row_norms(&w, shape, projection.axis),
        RadiusInit::Constant(r) => vec![r; shape[projection.axis]],
    };
    for _ in 0..200 {
        let g: Vec<T> = gaussians(&mut rng, n).into_iter().map(T::of).collect();
        opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
        let z = match conversion {
            ConversionConfig::LastIterate => w.clone(),
            _ => opt.state_buffer("w", "z").expect("z"),
        };
        for (got, want) in row_norms(&z, shape, projection.axis).iter().zip(&radius) {
            assert!(rel(*got, *want) <= tol, "row norm {got} vs radius {want}");
        }
    }
}

#[test]
fn row_norms_equal_the_radii_after_every_step() {
    let initial = Projection::default();
    rows_stay_on_spheres::<f64>(&[4, 20], initial, ConversionConfig::LastIterate, 1e-12);
    rows_stay_on_spheres::<f32>(&[4, 20], initial, ConversionConfig::LastIterate, 1e-6);
    rows_stay_on_spheres::<f64>(&[4, 20], initial, schedule_free(), 1e-12);
    rows_stay_on_spheres::<f32>(&[4, 20], initial, schedule_free(), 1e-6);
    // burn's `[in, out]` layout: rows along axis 1; a constant radius; a conv-like 4-D shape.
    let constant = Projection {
        axis: 1,
        radius: RadiusInit::Constant(2.5),
        min_radius: 1e-3,
    };
    rows_stay_on_spheres::<f64>(&[20, 4], constant, ConversionConfig::LastIterate, 1e-12);
    rows_stay_on_spheres::<f32>(&[20, 4], constant, schedule_free(), 1e-6);
    rows_stay_on_spheres::<f64>(&[3, 2, 2, 5], constant, schedule_free(), 1e-12);
}

/// Projecting a projected point moves it by rounding only: a step whose update is 0 (zero
/// gradient; no decay reaches normalized parameters) leaves every element within 2 ulps.
#[test]
fn projection_is_idempotent() {
    let shape = [4, 20];
    let mut opt = composed(
        ConversionConfig::LastIterate,
        Projection::default(),
        0.3,
        0.1,
        ScheduleConfig::Constant {},
    )
    .build_dyn::<f64>()
    .expect("config");
    opt.add_param_tagged(0, "w", &shape, ParamTags::NORMALIZED)
        .expect("new");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut w = gaussians(&mut rng, 80);
    let g = gaussians(&mut rng, 80);
    opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
    let zero = vec![0.0; 80];
    for _ in 0..10 {
        let before = w.clone();
        opt.step(&mut [Param::new("w", &mut w, &zero)])
            .expect("step");
        for (a, b) in w.iter().zip(&before) {
            assert!((a - b).abs() <= 2.0 * f64::EPSILON * b.abs(), "{a} vs {b}");
        }
    }
}

/// Mean `‖g‖/‖x‖` over `steps` steps of scale-invariant gradients (ALGORITHMS.md §12.3 model,
/// one row of 50) under `opt`; also the last iterate's bits.
fn mean_ratio(opt: &mut dyn DynOptimizer<f64>, steps: usize) -> (f64, Vec<u64>) {
    let d = 50;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut x = gaussians(&mut rng, d);
    let mut sum = 0.0;
    for _ in 0..steps {
        let xi: Vec<f64> = gaussians(&mut rng, d)
            .into_iter()
            .map(|v| v / (d as f64).sqrt())
            .collect();
        let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let along = xi.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() / (nx * nx);
        let g: Vec<f64> = xi
            .iter()
            .zip(&x)
            .map(|(v, xi)| (v - along * xi) / nx)
            .collect();
        sum += g.iter().map(|v| v * v).sum::<f64>().sqrt() / nx;
        opt.step(&mut [Param::new("w", &mut x, &g)]).expect("step");
    }
    (sum / steps as f64, x.iter().map(|v| v.to_bits()).collect())
}

/// `‖g‖/‖x‖` under the projection depends on neither λ (the trajectories are identical bit for
/// bit: no decay reaches normalized parameters) nor the schedule (same mean ratio
/// `≈ ‖ξ⊥‖/ρ²`); without the projection it follows `sqrt(2λ/γ)`.
#[test]
fn ratio_is_independent_of_decay_and_schedule() {
    let steps = 5000;
    let run = |wd: f64, schedule: ScheduleConfig, normalized: NormalizedPolicy| {
        let mut c = composed(
            ConversionConfig::LastIterate,
            Projection::default(),
            0.1,
            wd,
            schedule,
        );
        c.decay.normalized = normalized;
        let mut o = c.build_dyn::<f64>().expect("config");
        o.add_param_tagged(0, "w", &[1, 50], ParamTags::NORMALIZED)
            .expect("new");
        mean_ratio(o.as_mut(), steps)
    };
    let proj = NormalizedPolicy::Projected(Projection::default());
    let constant = ScheduleConfig::Constant {};
    let (r_small, bits_small) = run(1e-3, constant.clone(), proj);
    let (r_large, bits_large) = run(0.3, constant.clone(), proj);
    assert_eq!(bits_small, bits_large, "λ reaches a projected parameter");
    assert_eq!(r_small, r_large);
    let (r_decay, _) = run(0.3, linear(steps as u64), proj);
    println!("projected ‖g‖/‖x‖: constant lr {r_small:.4}, linear decay {r_decay:.4}");
    assert!(rel(r_decay, r_small) < 0.01, "{r_decay} vs {r_small}");

    // Control: with ordinary decay the ratio does move with λ.
    let (s_small, _) = run(1e-3, constant.clone(), NormalizedPolicy::Standard);
    let (s_large, _) = run(0.3, constant, NormalizedPolicy::Standard);
    println!("standard decay ‖g‖/‖x‖: λ 1e-3 {s_small:.4}, λ 0.3 {s_large:.4}");
    assert!(s_large > 2.0 * s_small);
}

/// A zero matrix at lr 0 stays exactly 0 (the projection divides by `max(‖z_i‖, tiny)`);
/// with Schedule-Free too, for `x`, `y` and `z`. A later gradient lifts the rows onto the
/// floor radius `min_radius`.
#[test]
fn zero_matrix_with_zero_lr_stays_finite() {
    for conversion in [ConversionConfig::LastIterate, schedule_free()] {
        for lr in [0.0, 0.5] {
            let mut opt = composed(
                conversion,
                Projection::default(),
                lr,
                0.1,
                ScheduleConfig::Constant {},
            )
            .build_dyn::<f32>()
            .expect("config");
            opt.add_param_tagged(0, "w", &[3, 4], ParamTags::NORMALIZED)
                .expect("new");
            let mut w = vec![0.0_f32; 12];
            let zero = vec![0.0_f32; 12];
            for _ in 0..5 {
                opt.step(&mut [Param::new("w", &mut w, &zero)])
                    .expect("step");
                assert!(w.iter().all(|v| *v == 0.0), "{w:?}");
                let mut x = vec![f32::NAN; 12];
                opt.eval_params_into("w", &w, &mut x).expect("x");
                assert!(x.iter().all(|v| *v == 0.0), "{x:?}");
            }
            if lr > 0.0 {
                let g = vec![1.0_f32; 12];
                opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
                let z = opt.state_buffer("w", "z").unwrap_or_else(|| w.clone());
                for r in row_norms(&z, &[3, 4], 0) {
                    assert!(rel(r, 1e-3) < 1e-6, "{r}");
                }
            }
        }
    }
}

/// Schedule-Free: `z` lives on the spheres, the returned `x` (a mean of sphere points) inside
/// them; a row that is 0 with zero gradients stays exactly 0 in `y`, `x` and `z`.
#[test]
fn schedule_free_keeps_z_on_and_x_inside_the_spheres() {
    let shape = [5, 8];
    let mut opt = composed(
        schedule_free(),
        Projection::default(),
        0.5,
        0.1,
        linear(100),
    )
    .build_dyn::<f64>()
    .expect("config");
    opt.add_param_tagged(0, "w", &shape, ParamTags::NORMALIZED)
        .expect("new");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut w = gaussians(&mut rng, 40);
    w[16..24].fill(0.0); // row 2
    let radius = row_norms(&w, &shape, 0);
    let mut x = vec![0.0; 40];
    for _ in 0..100 {
        let mut g = gaussians(&mut rng, 40);
        g[16..24].fill(0.0);
        opt.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
        let z = opt.state_buffer("w", "z").expect("z");
        opt.eval_params_into("w", &w, &mut x).expect("x");
        let (zn, xn) = (row_norms(&z, &shape, 0), row_norms(&x, &shape, 0));
        for r in 0..5 {
            if r == 2 {
                assert_eq!(zn[r], 0.0);
                assert_eq!(xn[r], 0.0);
                continue;
            }
            assert!(
                rel(zn[r], radius[r]) < 1e-12,
                "z row {r}: {} vs {}",
                zn[r],
                radius[r]
            );
            assert!(
                xn[r] <= radius[r] * (1.0 + 1e-12),
                "x row {r}: {} > {}",
                xn[r],
                radius[r]
            );
        }
        assert!(w[16..24].iter().chain(&x[16..24]).all(|v| *v == 0.0));
        assert!(w.iter().chain(&x).chain(&z).all(|v| v.is_finite()));
    }
}

/// A projection axis the shape lacks is refused at registration and on re-tagging.
#[test]
fn bad_projection_axis_is_a_typed_error() {
    let p = Projection {
        axis: 2,
        ..Projection::default()
    };
    let mut opt = composed(
        ConversionConfig::LastIterate,
        p,
        0.1,
        0.0,
        ScheduleConfig::Constant {},
    )
    .build_dyn::<f64>()
    .expect("config");
    let e = opt
        .add_param_tagged(0, "w", &[3, 4], ParamTags::NORMALIZED)
        .expect_err("no axis 2");
    assert_eq!(
        e,
        ParamError::ProjectionAxis {
            name: "w".into(),
            shape: vec![3, 4],
            axis: 2
        }
    );
    assert!(e.to_string().contains("axis 2"), "{e}");
    // Untagged parameters are not projected, so any shape is fine; tagging them later is
    // checked the same way.
    opt.add_param_tagged(0, "w", &[3, 4], ParamTags::default())
        .expect("untagged");
    assert!(matches!(
        opt.set_param_tags("w", ParamTags::NORMALIZED),
        Err(ParamError::ProjectionAxis { axis: 2, .. })
    ));
    assert_eq!(opt.param_tags("w"), Some(ParamTags::default()));
    opt.add_param_tagged(0, "conv", &[2, 3, 4], ParamTags::NORMALIZED)
        .expect("axis 2 exists");
}
