//! Layer 3 of DESIGN.md §5: the identities of the theory (ALGORITHMS.md §1.3, §1.4, §2.6,
//! §12.1, §12.2) as property tests over the composed optimizers.

use proptest::prelude::*;
use schedulefree::conversion::{
    AveragingWeights, PolyakAverage, PrimalAverage, ScheduleFree, ScheduleFreeReference,
};
use schedulefree::decay::{AnyDecay, DecoupledAtY, L2};
use schedulefree::learner::{Adam, Sgd};
use schedulefree::schedule::{Constant, Linear, Schedule, Tabulated, Warmup};
use schedulefree::{DynOptimizer, Element, GroupConfig, Optimizer, Param, SgdScheduleFree, lerp};

use crate::split_mix::SplitMix;

fn max_abs(vs: &[&[f64]]) -> f64 {
    vs.iter()
        .flat_map(|v| v.iter())
        .fold(1e-300_f64, |m, v| m.max(v.abs()))
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g:e} vs {w:e} (|diff| {:e} > {tol:e})",
            (g - w).abs()
        );
    }
}

fn bits<T: Element>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.f64().to_bits()).collect()
}

fn x_of<T: Element>(opt: &dyn DynOptimizer<T>, name: &str, y: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    opt.eval_params_into(name, y, &mut out).expect("registered");
    out
}

fn group(lr: f64, weight_decay: f64) -> GroupConfig {
    GroupConfig { lr, weight_decay }
}

// ---------------------------------------------------------------------------------------
// §12.1 item 6: β = 1 is primal averaging; β = 0 (reference form) is Polyak averaging of SGD.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Schedule-Free with β = 1 equals the `PrimalAverage` conversion (gradients at `x`), and
    /// its eval transform is the identity.
    #[test]
    fn beta_one_is_primal_averaging(
        lr in 1e-3..1.0_f64, wd in prop_oneof![Just(0.0), 0.0..0.3_f64], warmup in 0u64..5,
        r in 0.0..2.0_f64, p in 0.0..3.0_f64, n in 1usize..20, steps in 1usize..30, seed in any::<u64>(),
    ) {
        let weights = AveragingWeights { r, weight_lr_power: p };
        let mut sf = SgdScheduleFree { lr, momentum: 1.0, weight_decay: wd, warmup_steps: warmup, r, weight_lr_power: p, decoupling_c: 0.0 }
            .build::<f64>().expect("valid");
        let mut pa = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(), PrimalAverage { weights }, DecoupledAtY, Warmup::new(warmup, Constant), group(lr, wd),
        ).expect("valid");
        sf.add_param("w", &[n]).expect("new");
        pa.add_param("w", &[n]).expect("new");
        let mut rng = SplitMix(seed);
        let mut y = rng.vec(n, 1.0);
        let mut x = y.clone();
        for _ in 0..steps {
            // Gradient of ½‖w‖² plus noise: each method gets it at its own buffer.
            let noise = rng.vec(n, 1.0);
            let gy: Vec<f64> = y.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let gx: Vec<f64> = x.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let a = sf.step(&mut [Param::new("w", &mut y, &gy)]).expect("train");
            let b = pa.step(&mut [Param::new("w", &mut x, &gx)]).expect("train");
            prop_assert_eq!(a.group.c.to_bits(), b.group.c.to_bits());
            let tol = 1e-12 * max_abs(&[&y, &x]);
            assert_close("y = x", &y, &x, tol);
            let z_sf = sf.state_buffer("w", "z").expect("z");
            let z_pa = pa.state_buffer("w", "z").expect("z");
            assert_close("z", &z_sf, &z_pa, 1e-12 * max_abs(&[&z_sf, &z_pa]));
            // β = 1: the eval weight 1 − 1/β is 0, so x = y bit for bit.
            prop_assert_eq!(bits(&x_of(&sf, "w", &y)), bits(&y));
        }
    }

    /// The reference form with β = 0 has `y = z` exactly, `z` is plain SGD (same lr schedule,
    /// same decay at `y`) bit for bit, and `x` is the Polyak average of it.
    #[test]
    fn beta_zero_is_sgd_with_polyak_average(
        lr in 1e-3..0.5_f64, wd in prop_oneof![Just(0.0), 0.0..0.3_f64], warmup in 0u64..5,
        r in 0.0..2.0_f64, p in 0.0..3.0_f64, n in 1usize..20, steps in 1usize..30, seed in any::<u64>(),
    ) {
        let weights = AveragingWeights { r, weight_lr_power: p };
        let sched = || Warmup::new(warmup, Constant);
        let mut sf = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(), ScheduleFreeReference { beta: 0.0, weights, decoupling_c: 0.0 }, DecoupledAtY, sched(), group(lr, wd),
        ).expect("β = 0 is valid for the reference form");
        // torch-style SGD: L2 decay `g + λy` is the same direction as decay at y.
        let mut sgd = schedulefree::presets::TorchSgd { lr, weight_decay: wd, ..Default::default() }
            .build::<f64, _>(sched()).expect("valid");
        let mut pr = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(), PolyakAverage { weights }, L2, sched(), group(lr, wd),
        ).expect("valid");
        for o in [&mut sf as &mut dyn DynOptimizer<f64>, &mut sgd, &mut pr] {
            o.add_param_to(0, "w", &[n]).expect("new");
        }
        let mut rng = SplitMix(seed);
        let init = rng.vec(n, 1.0);
        let (mut a, mut b, mut c) = (init.clone(), init.clone(), init);
        for _ in 0..steps {
            let noise = rng.vec(n, 1.0);
            let g: Vec<f64> = a.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let ia = sf.step(&mut [Param::new("w", &mut a, &g)]).expect("train");
            sgd.step(&mut [Param::new("w", &mut b, &g)]).expect("train");
            let ic = pr.step(&mut [Param::new("w", &mut c, &g)]).expect("train");
            prop_assert_eq!(ia.group.c.to_bits(), ic.group.c.to_bits());
            let z = sf.state_buffer("w", "z").expect("z");
            prop_assert_eq!(bits(&z), bits(&a), "y = z");
            prop_assert_eq!(bits(&a), bits(&b), "z = plain SGD");
            prop_assert_eq!(bits(&a), bits(&c), "Polyak's buffer = plain SGD");
            let x_sf = x_of(&sf, "w", &a);
            let x_pr = x_of(&pr, "w", &c);
            assert_close("x = Polyak average", &x_sf, &x_pr, 1e-12 * max_abs(&[&x_sf, &a]));
        }
    }
}

// ---------------------------------------------------------------------------------------
// §12.1 item 1 beyond the oracle: efficient ≡ reference form with Adam's inner momentum and
// with decay at z (`AdamWScheduleFreeReference(decay_at_z)`), where the efficient update has
// the extra `(1 − β(1 − c))(s − 1)·z` term, and with the decoupled averaging weight.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn efficient_equals_reference_with_momentum_and_decay_at_z(
        lr in 1e-3..0.5_f64, beta in 0.1..=1.0_f64, wd in 0.0..0.5_f64, warmup in 0u64..6, r in 0.0..1.5_f64,
        mu in prop_oneof![Just(0.0), 0.0..0.95_f64], at_z in any::<bool>(),
        n in 1usize..12, steps in 1usize..25, seed in any::<u64>(),
        dc in prop_oneof![Just(0.0), 0.0..60.0_f64],
    ) {
        let weights = AveragingWeights { r, weight_lr_power: 2.0 };
        let decay = if at_z { AnyDecay::Decoupled } else { AnyDecay::DecoupledAtY };
        let adam = Adam { beta1: mu, ..Default::default() };
        let sched = || Warmup::new(warmup, Constant);
        let mut eff = Optimizer::<f64, _, _, _, _>::new(
            adam, ScheduleFree { beta, weights, decoupling_c: dc, anneal: None, c_warmup: 0 }, decay, sched(), group(lr, wd),
        ).expect("valid");
        let mut refr = Optimizer::<f64, _, _, _, _>::new(
            adam, ScheduleFreeReference { beta, weights, decoupling_c: dc }, decay, sched(), group(lr, wd),
        ).expect("valid");
        eff.add_param("w", &[n]).expect("new");
        refr.add_param("w", &[n]).expect("new");
        let mut rng = SplitMix(seed);
        let mut y1 = rng.vec(n, 1.0);
        let mut y2 = y1.clone();
        for _ in 0..steps {
            let g = rng.vec(n, 1.0);
            eff.step(&mut [Param::new("w", &mut y1, &g)]).expect("train");
            refr.step(&mut [Param::new("w", &mut y2, &g)]).expect("train");
            let (z1, z2) = (eff.state_buffer("w", "z").expect("z"), refr.state_buffer("w", "z").expect("z"));
            let scale = max_abs(&[&y2, &z2]);
            assert_close("y", &y1, &y2, 1e-12 * scale);
            assert_close("z", &z1, &z2, 1e-12 * scale);
            assert_close("x", &x_of(&eff, "w", &y1), &x_of(&refr, "w", &y2), 1e-12 * scale / beta);
            if mu != 0.0 {
                let (m1, m2) = (eff.state_buffer("w", "exp_avg").expect("m"), refr.state_buffer("w", "exp_avg").expect("m"));
                assert_close("exp_avg", &m1, &m2, 1e-12 * max_abs(&[&m2]));
            } else {
                prop_assert!(eff.state_buffer("w", "exp_avg").is_none(), "no first moment without inner momentum");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// §12.1 item 5: the averaging recursion is the explicit weighted mean of z^(1..K).
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn average_is_explicit_weighted_mean(
        lr in 1e-3..1.0_f64, beta in 0.1..=1.0_f64, wd in prop_oneof![Just(0.0), 0.0..0.3_f64],
        warmup in 0u64..8, r in prop_oneof![Just(0.0), 0.0..2.0_f64], p in prop_oneof![Just(2.0), 0.0..3.0_f64],
        n in 1usize..10, steps in 1usize..25, seed in any::<u64>(), reference in any::<bool>(),
    ) {
        let cfg = SgdScheduleFree { lr, momentum: beta, weight_decay: wd, warmup_steps: warmup, r, weight_lr_power: p, decoupling_c: 0.0 };
        let mut opt: Box<dyn DynOptimizer<f64>> = if reference {
            Box::new(cfg.build_reference::<f64>().expect("valid"))
        } else {
            Box::new(cfg.build::<f64>().expect("valid"))
        };
        opt.add_param_to(0, "w", &[n]).expect("new");
        let mut rng = SplitMix(seed);
        let mut y = rng.vec(n, 1.0);
        let mut num = vec![0.0; n];
        let mut den = 0.0;
        let mut lr_max = f64::NEG_INFINITY;
        for j in 1..=steps {
            let g: Vec<f64> = y.iter().map(|v| v + rng.sym(1.0)).collect();
            let info = opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train");
            // lr_max_j: the running max of the scheduled lr, computed here independently.
            let lr_j = lr * if (j as u64) <= warmup { j as f64 / warmup as f64 } else { 1.0 };
            lr_max = lr_max.max(lr_j);
            prop_assert!((info.group.lr - lr_j).abs() <= 1e-15 * lr_j);
            prop_assert!((info.group.lr_max - lr_max).abs() <= 1e-15 * lr_max);
            let w = (j as f64).powf(r) * lr_max.powf(p);
            let z = opt.state_buffer("w", "z").expect("z");
            for (a, zi) in num.iter_mut().zip(&z) {
                *a += w * zi;
            }
            den += w;
            prop_assert!((info.group.weight_sum - den).abs() <= 1e-13 * den);
            let mean: Vec<f64> = num.iter().map(|a| a / den).collect();
            let x = x_of(&*opt, "w", &y);
            assert_close("x", &x, &mean, 1e-12 * max_abs(&[&mean, &z, &y]) / beta);
        }
    }

    /// Uniform weights (`r = 0`, `weight_lr_power = 0`) give `c = 1/(k+1)` whatever the lr.
    #[test]
    fn uniform_weights_give_one_over_k(table in prop::collection::vec(0.0..2.0_f64, 1..20), lr in 0.0..2.0_f64) {
        let sched = Tabulated::new(table).expect("valid table");
        let mut opt = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(), ScheduleFree { beta: 0.9, weights: AveragingWeights::UNIFORM, decoupling_c: 0.0, anneal: None, c_warmup: 0 }, DecoupledAtY, sched, group(lr, 0.0),
        ).expect("valid");
        opt.add_param("w", &[2]).expect("new");
        let mut y = vec![1.0, -1.0];
        for k in 0..30u64 {
            let g = y.clone();
            let info = opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train");
            prop_assert_eq!(info.group.c, 1.0 / (k + 1) as f64, "k = {}", k);
        }
    }

    /// With warmup `W`, `r = 0`, `p = 2`: `c_k = (k+1)² / Σ_{j≤k+1} j²` during warmup, and
    /// `c_k = 1/(k+1 − W + Σ_{j≤W} j²/W²)` after it (ALGORITHMS.md §2.6).
    #[test]
    fn warmup_weights(warmup in 1u64..40, lr in 1e-4..10.0_f64) {
        let mut opt = SgdScheduleFree { lr, warmup_steps: warmup, ..Default::default() }.build::<f64>().expect("valid");
        opt.add_param("w", &[1]).expect("new");
        let mut y = vec![1.0];
        let mut sq = 0.0;
        for k in 0..(warmup + 10) {
            let g = vec![0.0];
            let c = opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train").group.c;
            let want = if k < warmup {
                sq += ((k + 1) * (k + 1)) as f64;
                ((k + 1) * (k + 1)) as f64 / sq
            } else {
                1.0 / ((k + 1 - warmup) as f64 + sq / (warmup * warmup) as f64)
            };
            prop_assert!((c - want).abs() <= 1e-13 * want, "k = {}: c = {}, want {}", k, c, want);
        }
    }

    /// §12.1 item 11: with a decreasing external schedule `lr_max` stays at the first lr and
    /// the averaging weights never decrease.
    #[test]
    fn lr_max_is_monotone_under_decay(
        mut table in prop::collection::vec(1e-3..1.0_f64, 2..30), r in 0.0..2.0_f64, p in 0.0..3.0_f64,
    ) {
        table.sort_by(|a, b| b.total_cmp(a));
        let first = table[0];
        let mut opt = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(),
            ScheduleFree { beta: 0.9, weights: AveragingWeights { r, weight_lr_power: p }, decoupling_c: 0.0, anneal: None, c_warmup: 0 },
            DecoupledAtY,
            Tabulated::new(table.clone()).expect("valid"),
            group(1.0, 0.0),
        ).expect("valid");
        opt.add_param("w", &[1]).expect("new");
        let mut y = vec![1.0];
        let (mut prev_sum, mut prev_w) = (0.0, 0.0);
        for (k, &lr_k) in table.iter().enumerate() {
            let g = y.clone();
            let info = opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train").group;
            prop_assert_eq!(info.lr, lr_k);
            prop_assert_eq!(info.lr_max, first, "k = {}", k);
            let w = info.weight_sum - prev_sum;
            prop_assert!(w >= prev_w * (1.0 - 1e-12), "w_{} = {} < w_{} = {}", k, w, k.max(1) - 1, prev_w);
            // c = w / S with w = (k+1)^r · lr_max^p, independent of the current lr.
            let want = ((k + 1) as f64).powf(r) * first.powf(p);
            prop_assert!((w - want).abs() <= 1e-12 * want.max(prev_sum), "w = {}, want {}", w, want);
            prev_sum = info.weight_sum;
            prev_w = w;
        }
    }
}

// ---------------------------------------------------------------------------------------
// §1.4 / §12.1 item 7: momentum form.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With `w = 1` and constant β, `m_t = x_{t+1} − x_t` obeys
    /// `m_t = (t−1)/(t+1)·m_{t−1} + Δ_t/(t+1)` and `y_{t+1} − y_t = β m_t + (1−β) Δ_t`
    /// (theorem indexing: `x_t`, `y_t`, `z_t` are the iterates after update `t`, `x_1 = z_1`).
    #[test]
    fn momentum_form(beta in 0.1..=1.0_f64, lr in 1e-2..1.0_f64, n in 1usize..8, seed in any::<u64>()) {
        let mut opt = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(), ScheduleFree { beta, weights: AveragingWeights::UNIFORM, decoupling_c: 0.0, anneal: None, c_warmup: 0 }, DecoupledAtY, Constant, group(lr, 0.0),
        ).expect("valid");
        opt.add_param("w", &[n]).expect("new");
        let mut rng = SplitMix(seed);
        let mut y = rng.vec(n, 1.0);
        let (mut xs, mut ys, mut zs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..25 {
            let g: Vec<f64> = y.iter().map(|v| v + rng.sym(1.0)).collect();
            opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train");
            xs.push(x_of(&opt, "w", &y));
            ys.push(y.clone());
            zs.push(opt.state_buffer("w", "z").expect("z"));
        }
        // Index 0 of the vectors is t = 1.
        let diff = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a - b).collect() };
        prop_assert_eq!(bits(&xs[0]), bits(&zs[0]), "x_1 = z_1");
        let mut m_prev = vec![0.0; n];
        for i in 0..xs.len() - 1 {
            let t = (i + 1) as f64;
            let m = diff(&xs[i + 1], &xs[i]);
            let delta = diff(&zs[i + 1], &zs[i]);
            let scale = max_abs(&[&xs[i], &zs[i], &zs[i + 1], &ys[i]]);
            let want: Vec<f64> = m_prev.iter().zip(&delta).map(|(mp, d)| (t - 1.0) / (t + 1.0) * mp + d / (t + 1.0)).collect();
            assert_close("m_t", &m, &want, 1e-12 * scale / beta);
            let u = diff(&ys[i + 1], &ys[i]);
            let want_u: Vec<f64> = m.iter().zip(&delta).map(|(m, d)| beta * m + (1.0 - beta) * d).collect();
            assert_close("u_t", &u, &want_u, 1e-12 * scale / beta);
            m_prev = m;
        }
    }
}

// ---------------------------------------------------------------------------------------
// §12.1 item 9: the fused-lerp identities on scalars.
// ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn fused_lerp_identities(y in -10.0..10.0_f64, z in -10.0..10.0_f64, beta in 0.05..=1.0_f64, c in 0.0..=1.0_f64) {
        // y → x → averaged x → y' equals lerp(y, z, c).
        let x = lerp(y, z, 1.0 - 1.0 / beta);
        let lhs = lerp(lerp(x, z, c), z, 1.0 - beta);
        let rhs = lerp(y, z, c);
        let scale = y.abs().max(z.abs()).max(1e-300);
        prop_assert!((lhs - rhs).abs() <= 1e-14 * scale / beta, "{} vs {}", lhs, rhs);
        // lerp(lerp(x, z, c), z, 1 − β) = lerp(x, z, 1 − β(1 − c)).
        let x = y;
        let lhs = lerp(lerp(x, z, c), z, 1.0 - beta);
        let rhs = lerp(x, z, 1.0 - beta * (1.0 - c));
        prop_assert!((lhs - rhs).abs() <= 1e-14 * scale, "{} vs {}", lhs, rhs);
        // f32 too, with f32 tolerances.
        let (yf, zf, bf, cf) = (y as f32, z as f32, beta as f32, c as f32);
        let lhs = lerp(lerp(yf, zf, cf), zf, 1.0 - bf);
        let rhs = lerp(yf, zf, 1.0 - bf * (1.0 - cf));
        prop_assert!((lhs - rhs).abs() <= 1e-5 * (scale as f32), "{} vs {}", lhs, rhs);
    }
}

#[test]
fn lerp_endpoints_are_exact() {
    for (a, b) in [(0.3_f64, -7.1), (1e-30, 1e30), (-2.5, -2.5)] {
        assert_eq!(lerp(a, b, 0.0), a);
        assert_eq!(lerp(a, b, 1.0), b);
        assert_eq!(lerp(a as f32, b as f32, 1.0), b as f32);
    }
}

// ---------------------------------------------------------------------------------------
// §12.1 items 3–4: mode switches and the first step.
// ---------------------------------------------------------------------------------------

/// A stepped SF-AdamW over `T` with two tensors; returns (optimizer, buffers).
fn stepped<T: Element>(
    beta: f64,
    steps: usize,
    seed: u64,
) -> (
    schedulefree::presets::AdamWScheduleFreeOptimizer<T>,
    Vec<T>,
    Vec<T>,
) {
    let mut opt = schedulefree::AdamWScheduleFree {
        lr: 0.1,
        betas: (beta, 0.999),
        weight_decay: 0.01,
        warmup_steps: 3,
        ..Default::default()
    }
    .build::<T>()
    .expect("valid");
    opt.add_param("a", &[7]).expect("new");
    opt.add_param("b", &[2, 3]).expect("new");
    let mut rng = SplitMix(seed);
    let mut a: Vec<T> = rng.vec(7, 1.0).into_iter().map(T::of).collect();
    let mut b: Vec<T> = rng.vec(6, 1.0).into_iter().map(T::of).collect();
    for _ in 0..steps {
        let ga: Vec<T> = rng.vec(7, 1.0).into_iter().map(T::of).collect();
        let gb: Vec<T> = rng.vec(6, 1.0).into_iter().map(T::of).collect();
        opt.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
            .expect("train");
    }
    (opt, a, b)
}

fn round_trip<T: Element>(beta: f64, seed: u64, trips: usize, rel_per_trip: f64) {
    let (mut opt, mut a, mut b) = stepped::<T>(beta, 12, seed);
    let (a0, b0) = (a.clone(), b.clone());
    let (xa, xb) = (x_of(&opt, "a", &a), x_of(&opt, "b", &b));
    let za = opt.state_buffer("a", "z").expect("z");
    for trip in 1..=trips {
        opt.eval(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
            .expect("all passed");
        assert!(!opt.is_train_mode());
        // In eval mode the buffer is x (as eval_params_into computed it in train mode).
        if trip == 1 {
            assert_eq!(bits(&a), bits(&xa));
            assert_eq!(bits(&b), bits(&xb));
            // eval() twice changes nothing.
            opt.eval(&mut [Param::no_grad("b", &mut b), Param::no_grad("a", &mut a)])
                .expect("idempotent");
            assert_eq!(bits(&a), bits(&xa));
            // In eval mode eval_params_into returns the buffer itself.
            assert_eq!(bits(&x_of(&opt, "a", &a)), bits(&a));
        }
        opt.train(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
            .expect("all passed");
        if trip == 1 {
            let after = a.clone();
            opt.train(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
                .expect("idempotent");
            assert_eq!(bits(&a), bits(&after), "train() twice = once");
        }
        for (got, want) in [(&a, &a0), (&b, &b0)] {
            let scale = want
                .iter()
                .chain(&za)
                .fold(0.0_f64, |m, v| m.max(v.f64().abs()));
            for (g, w) in got.iter().zip(want.iter()) {
                let tol = rel_per_trip * trip as f64 * scale;
                assert!(
                    (g.f64() - w.f64()).abs() <= tol,
                    "trip {trip}: {g:?} vs {w:?} (tol {tol:e})"
                );
            }
        }
    }
    // z is never touched by the mode switches.
    assert_eq!(bits(&opt.state_buffer("a", "z").expect("z")), bits(&za));
}

#[test]
fn eval_train_round_trip_f64() {
    for (beta, seed) in [(0.9, 1), (0.5, 2), (0.98, 3), (1.0, 4), (0.2, 5)] {
        round_trip::<f64>(beta, seed, 200, 1e-13);
    }
}

#[test]
fn eval_train_round_trip_f32() {
    // A few ulps per trip (f32 ulp at 1 is 1.2e-7).
    for (beta, seed) in [(0.9, 1), (0.5, 2), (0.98, 3), (1.0, 4)] {
        round_trip::<f32>(beta, seed, 50, 4.0 * f64::from(f32::EPSILON));
    }
}

#[test]
fn first_step_makes_x_y_z_equal() {
    for reference in [false, true] {
        let cfg = SgdScheduleFree {
            lr: 0.37,
            momentum: 0.8,
            weight_decay: 0.1,
            warmup_steps: 3,
            ..Default::default()
        };
        let mut opt: Box<dyn DynOptimizer<f64>> = if reference {
            Box::new(cfg.build_reference::<f64>().expect("valid"))
        } else {
            Box::new(cfg.build::<f64>().expect("valid"))
        };
        opt.add_param_to(0, "w", &[3]).expect("new");
        let mut y = vec![0.5, -1.5, 2.0];
        let g = vec![1.0, 2.0, -3.0];
        let info = opt.step(&mut [Param::new("w", &mut y, &g)]).expect("train");
        assert_eq!(info.group.c, 1.0);
        let z = opt.state_buffer("w", "z").expect("z");
        assert_eq!(bits(&y), bits(&z), "reference = {reference}");
        assert_eq!(
            bits(&x_of(&*opt, "w", &y)),
            bits(&z),
            "reference = {reference}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// §12.2 item 5: a decaying schedule hits its end exactly at the horizon (the schedule module
// has its own tests; this checks the value the optimizer actually uses).
// ---------------------------------------------------------------------------------------

#[test]
fn linear_decay_hits_end_at_horizon() {
    let sched = Linear::new(3, 10, 0.0).expect("valid");
    assert_eq!(sched.horizon(), Some(10));
    let mut opt = schedulefree::AdamW {
        lr: 0.1,
        ..Default::default()
    }
    .build::<f64, _>(sched)
    .expect("valid");
    opt.add_param("w", &[1]).expect("new");
    let mut w = vec![1.0];
    let mut lrs = Vec::new();
    for _ in 0..10 {
        let g = vec![1.0];
        lrs.push(
            opt.step(&mut [Param::new("w", &mut w, &g)])
                .expect("train")
                .group
                .lr,
        );
    }
    assert_eq!(lrs[2], 0.1, "peak at update W");
    assert_eq!(lrs[9], 0.0, "update T uses the end value exactly: {lrs:?}");
}
