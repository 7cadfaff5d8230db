//! The general weighted last-iterate conversion (ALGORITHMS.md §1.2, §12.2 item 2) and the
//! momentum form of weighted averaging (§1.4), checked on the fused optimizer.

use proptest::prelude::*;
use schedulefree::conversion::{AveragingWeights, LastIterate, ScheduleFree, WeightedLastIterate};
use schedulefree::decay::NoDecay;
use schedulefree::learner::{Adam, BiasCorrection, Sgd, StepCount};
use schedulefree::schedule::{Constant, Linear};
use schedulefree::{GroupConfig, Optimizer, Param};

const A: [f64; 4] = [1.0, -2.0, 0.5, 3.0];
const H: [f64; 4] = [1.0, 0.5, 2.0, 0.1];

/// Gradient of `½ Σ h_i (w_i − a_i)²`, with a deterministic perturbation per step.
fn grad(w: &[f64], t: usize) -> Vec<f64> {
    w.iter()
        .zip(A)
        .zip(H)
        .enumerate()
        .map(|(i, ((w, a), h))| h * (w - a) + 0.1 * ((t * 7 + i * 3) % 5) as f64 - 0.2)
        .collect()
}

fn group(lr: f64) -> GroupConfig {
    GroupConfig {
        lr,
        weight_decay: 0.0,
    }
}

#[test]
fn uniform_weights_equal_linear_decay_step_by_step() {
    let t_total = 50;
    let mut general = Optimizer::<f64, _, _, _, _>::new(
        Sgd::plain(),
        WeightedLastIterate::uniform(t_total).expect("T > 0"),
        NoDecay,
        Constant,
        group(0.3),
    )
    .expect("config");
    let mut linear = Optimizer::<f64, _, _, _, _>::new(
        Sgd::plain(),
        LastIterate,
        NoDecay,
        Linear::new(0, t_total as u64, 0.0).expect("schedule"),
        group(0.3),
    )
    .expect("config");
    general.add_param("w", &[4]).expect("name");
    linear.add_param("w", &[4]).expect("name");
    let (mut x, mut y) = (vec![0.0; 4], vec![0.0; 4]);
    for t in 0..t_total + 5 {
        let (gx, gy) = (grad(&x, t), grad(&y, t));
        let a = general
            .step(&mut [Param::new("w", &mut x, &gx)])
            .expect("step");
        let b = linear
            .step(&mut [Param::new("w", &mut y, &gy)])
            .expect("step");
        assert!(
            (a.group.c * 0.3 - b.group.lr).abs() < 1e-15,
            "α_t γ is the scheduled lr"
        );
        for (u, v) in x.iter().zip(&y) {
            assert!(
                (u - v).abs() <= 1e-13 * (1.0 + v.abs()),
                "step {t}: {x:?} vs {y:?}"
            );
        }
    }
}

proptest! {
    /// Theorem 1's definition for any weights and a learner with state (Adam): `x` moves by
    /// `α_t Δ_t` where `Δ_t` is the step of `z`, and `z` evolves exactly as the learner's
    /// own iterate would on the same gradients.
    #[test]
    fn any_weights_follow_the_definition(weights in prop::collection::vec(0.0..10.0_f64, 1..30)) {
        prop_assume!(weights.iter().sum::<f64>() > 1e-6);
        let conv = WeightedLastIterate::new(weights.clone()).expect("valid weights");
        let adam = Adam { beta1: 0.9, beta2: 0.99, eps: 1e-8, bias_correction: BiasCorrection::Denominator, count: StepCount::Parameter };
        let mut opt = Optimizer::<f64, _, _, _, _>::new(adam, conv, NoDecay, Constant, group(0.05)).expect("config");
        // The learner alone (last iterate, constant lr) fed the same gradients gives z.
        let mut learner = Optimizer::<f64, _, _, _, _>::new(adam, LastIterate, NoDecay, Constant, group(0.05)).expect("config");
        opt.add_param("w", &[4]).expect("name");
        learner.add_param("w", &[4]).expect("name");
        let total: f64 = weights.iter().sum();
        let (mut x, mut z) = (vec![0.5; 4], vec![0.5; 4]);
        for t in 0..weights.len() + 3 {
            let g = grad(&x, t);
            let (x_old, z_old) = (x.clone(), z.clone());
            opt.step(&mut [Param::new("w", &mut x, &g)]).expect("step");
            learner.step(&mut [Param::new("w", &mut z, &g)]).expect("step");
            let alpha = weights.iter().skip(t + 1).sum::<f64>() / total;
            let z_state = opt.state_buffer("w", "z").expect("has state");
            for i in 0..4 {
                prop_assert!((z_state[i] - z[i]).abs() <= 1e-12 * (1.0 + z[i].abs()));
                let expected = x_old[i] + alpha * (z[i] - z_old[i]);
                prop_assert!((x[i] - expected).abs() <= 1e-12 * (1.0 + expected.abs()), "t {}: {} vs {}", t, x[i], expected);
            }
        }
        // α_T = 0: the last scheduled update does not move x.
        prop_assert_eq!(opt.conversion().alpha(weights.len() as u64 - 1), 0.0);
    }

    /// §1.4: with `m_j = X_{j+1} − X_j`, `Δ_j = Z_{j+1} − Z_j`, `u_j = Y_{j+1} − Y_j`,
    /// `m_j = W_{j+1} W_{1:j−1} / (W_j W_{1:j+1}) · m_{j−1} + W_{j+1}/W_{1:j+1} · Δ_j` and, for
    /// constant β, `u_j = β m_j + (1 − β) Δ_j` (Road Less Scheduled, Theorem 4).
    #[test]
    fn schedule_free_follows_the_momentum_form(beta in 0.05..1.0_f64, r in 0.0..3.0_f64) {
        let weights = AveragingWeights { r, weight_lr_power: 0.0 };
        let mut opt = Optimizer::<f64, _, _, _, _>::new(Sgd::plain(), ScheduleFree { beta, weights, decoupling_c: 0.0, anneal: None, c_warmup: 0 }, NoDecay, Constant, group(0.2)).expect("config");
        opt.add_param("w", &[4]).expect("name");
        let mut y = vec![0.0; 4];
        let (mut xs, mut ys, mut zs) = (Vec::new(), Vec::new(), Vec::new());
        for t in 0..25 {
            let g = grad(&y, t);
            opt.step(&mut [Param::new("w", &mut y, &g)]).expect("step");
            let mut x = vec![0.0; 4];
            opt.eval_params_into("w", &y, &mut x).expect("registered");
            xs.push(x);
            ys.push(y.clone());
            zs.push(opt.state_buffer("w", "z").expect("state"));
        }
        // Entry j − 1 holds X_j, Y_j, Z_j (after j steps); W_j = j^r.
        let w = |j: usize| (j as f64).powf(r);
        let wsum = |j: usize| (1..=j).map(w).sum::<f64>();
        for j in 2..xs.len() - 1 {
            for i in 0..4 {
                let m_prev = xs[j - 1][i] - xs[j - 2][i];
                let m = xs[j][i] - xs[j - 1][i];
                let delta = zs[j][i] - zs[j - 1][i];
                let u = ys[j][i] - ys[j - 1][i];
                let pred = w(j + 1) * wsum(j - 1) / (w(j) * wsum(j + 1)) * m_prev + w(j + 1) / wsum(j + 1) * delta;
                let scale = 1e-10 * (1.0 + m.abs() + delta.abs());
                prop_assert!((m - pred).abs() <= scale, "m_{}: {} vs {}", j, m, pred);
                prop_assert!((u - (beta * m + (1.0 - beta) * delta)).abs() <= scale, "u_{}", j);
            }
        }
    }
}

#[test]
fn invalid_weights_are_errors() {
    assert!(WeightedLastIterate::new(vec![]).is_err());
    assert!(WeightedLastIterate::new(vec![0.0, 0.0]).is_err());
    assert!(WeightedLastIterate::new(vec![1.0, -1.0]).is_err());
    assert!(WeightedLastIterate::new(vec![1.0, f64::NAN]).is_err());
    assert!(WeightedLastIterate::new(vec![f64::MAX, f64::MAX]).is_err());
    let c: WeightedLastIterate = serde_json::from_str(r#"{"weights": [1, 2, 3]}"#).expect("valid");
    assert_eq!(
        serde_json::to_string(&c).expect("serializable"),
        r#"{"weights":[1.0,2.0,3.0]}"#
    );
    assert!(serde_json::from_str::<WeightedLastIterate>(r#"{"weights": [-1]}"#).is_err());
}
