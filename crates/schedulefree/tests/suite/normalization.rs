//! ALGORITHMS.md §12.3 items 2–8: weight decay meeting a scale-invariant parameter, simulated
//! through the real optimizers (presets `TorchSgd`, `SgdC`, `AdamW`, `AdamC`), deterministic seeds.
//!
//! Model (§12.3): `x ∈ R^50`, gradient = (Gaussian vector of norm ≈ 1, projected orthogonal to
//! `x`) / `‖x‖` — the gradient of a scale-invariant loss — 20 000 steps, statistics averaged
//! over 200-step windows. Expected values: §10.2 (SGD `‖g‖/‖x‖ → sqrt(2λ/γ − λ²)`), §10.3 (Adam
//! `‖x‖ → sqrt(γd/(2λ))`), §10.4 (tail blow-up under linear decay, flat under AdamC/SGDC).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schedulefree::conversion::LastIterate;
use schedulefree::decay::Decoupled;
use schedulefree::learner::{Adam, BiasCorrection, StepCount};
use schedulefree::schedule::{Constant, Linear, Schedule};
use schedulefree::{
    AdamC, AdamW, DynOptimizer, GroupConfig, Optimizer, Param, ParamTags, SgdC, presets,
};

const D: usize = 50;
const STEPS: usize = 20_000;
const WINDOW: usize = 200;
const WINDOWS: usize = STEPS / WINDOW;

/// Window means of one simulated run.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// `‖g‖/‖x‖`, `x` the point the gradient was taken at.
    ratio: f64,
    /// `‖x‖`.
    x_norm: f64,
    /// `‖g‖`.
    g_norm: f64,
    /// Angle between consecutive iterates (radians).
    angle: f64,
    /// Angle divided by the step's effective lr.
    angle_per_lr: f64,
    /// Diagnostics: `‖g‖/‖w‖`, its predicted steady state, the predicted `‖w‖`, angular step.
    diag_ratio: f64,
    predicted_ratio: f64,
    predicted_weight_norm: f64,
    diag_angle: f64,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Standard normal by Box–Muller (deterministic given the generator).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: the logarithm stays finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The scale-invariant gradient at `x`: `ξ ~ N(0, I/d)` (norm ≈ 1) minus its component along
/// `x`, divided by `‖x‖` (ALGORITHMS.md §10.1: `⟨g, x⟩ = 0`, `g(cx) = g(x)/c`).
fn scale_invariant_grad(rng: &mut ChaCha8Rng, x: &[f64], g: &mut [f64]) {
    let s = 1.0 / (D as f64).sqrt();
    for v in g.iter_mut() {
        *v = s * gaussian(rng);
    }
    let nx = norm(x);
    let along = dot(g, x) / (nx * nx);
    for (v, xi) in g.iter_mut().zip(x) {
        *v = (*v - along * xi) / nx;
    }
}

/// A random starting point of norm 1.
fn start(rng: &mut ChaCha8Rng) -> Vec<f64> {
    let x: Vec<f64> = (0..D).map(|_| gaussian(rng)).collect();
    let n = norm(&x);
    x.into_iter().map(|v| v / n).collect()
}

/// Run `opt` (with parameter `"w"` of shape `[1, 50]` registered) for [`STEPS`] steps of the
/// scale-invariant model; window means of every statistic.
fn simulate(opt: &mut dyn DynOptimizer<f64>, seed: u64) -> Vec<Window> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = start(&mut rng);
    let mut g = vec![0.0; D];
    opt.set_diagnostics(true);
    let mut out = vec![Window::default(); WINDOWS];
    for t in 0..STEPS {
        scale_invariant_grad(&mut rng, &x, &mut g);
        let before = x.clone();
        let info = opt.step(&mut [Param::new("w", &mut x, &g)]).expect("step");
        let diag = opt.diagnostics();
        let d = diag.first().expect("diagnostics of w");
        // Angle through atan2 of the parts orthogonal and parallel to the old iterate:
        // accurate even for the tiny angles at the end of a decaying schedule.
        let nb = norm(&before);
        let par = dot(&x, &before) / nb;
        let orth = x
            .iter()
            .zip(&before)
            .map(|(a, b)| {
                let o = a - par * b / nb;
                o * o
            })
            .sum::<f64>()
            .sqrt();
        let angle = orth.atan2(par);
        let w = &mut out[t / WINDOW];
        let n = WINDOW as f64;
        w.ratio += norm(&g) / nb / n;
        w.x_norm += nb / n;
        w.g_norm += norm(&g) / n;
        w.angle += angle / n;
        w.angle_per_lr += angle / info.group.lr / n;
        w.diag_ratio += d.ratio() / n;
        w.predicted_ratio += d.predicted_ratio() / n;
        w.predicted_weight_norm += d.predicted_weight_norm() / n;
        w.diag_angle += d.angular_step() / n;
    }
    out
}

/// Mean of one statistic over the last quarter of the run.
fn last_quarter(w: &[Window], f: impl Fn(&Window) -> f64) -> f64 {
    let q = &w[3 * WINDOWS / 4..];
    q.iter().map(f).sum::<f64>() / q.len() as f64
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn tagged(opt: &mut dyn DynOptimizer<f64>, tags: ParamTags) {
    opt.add_param_tagged(0, "w", &[1, D], tags)
        .expect("new name");
}

/// Linear decay to 0 over the run (the last update has size 0).
fn linear_decay() -> Linear {
    Linear::new(0, STEPS as u64, 0.0).expect("valid schedule")
}

fn sgd<S: Schedule + 'static>(lr: f64, wd: f64, s: S) -> Box<dyn DynOptimizer<f64>> {
    let mut o = presets::TorchSgd {
        lr,
        weight_decay: wd,
        ..Default::default()
    }
    .build::<f64, _>(s)
    .expect("config");
    tagged(&mut o, ParamTags::default());
    Box::new(o)
}

fn adamw<S: Schedule + 'static>(s: S) -> Box<dyn DynOptimizer<f64>> {
    let mut o = AdamW {
        lr: 0.01,
        betas: (0.0, 0.999),
        eps: 1e-8,
        weight_decay: 0.1,
    }
    .build::<f64, _>(s)
    .expect("config");
    tagged(&mut o, ParamTags::default());
    Box::new(o)
}

fn adamc<S: Schedule + 'static>(s: S, tags: ParamTags) -> Box<dyn DynOptimizer<f64>> {
    let mut o = AdamC {
        lr: 0.01,
        betas: (0.0, 0.999),
        eps: 1e-8,
        weight_decay: 0.1,
        peak_lr: None,
    }
    .build::<f64, _>(s)
    .expect("config");
    tagged(&mut o, tags);
    Box::new(o)
}

/// Item 2: without decay SGD can only grow the norm, `‖x_{t+1}‖² − ‖x_t‖² = γ²‖g_t‖²`.
#[test]
fn norm_grows_by_the_squared_step_without_decay() {
    let gamma = 0.1;
    let mut opt = sgd(gamma, 0.0, Constant);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut x = start(&mut rng);
    let mut g = vec![0.0; D];
    let mut worst = 0.0_f64;
    for _ in 0..2000 {
        scale_invariant_grad(&mut rng, &x, &mut g);
        let before = x.clone();
        opt.step(&mut [Param::new("w", &mut x, &g)]).expect("step");
        // Difference of squares per element, so the increment is not lost to cancellation.
        let grown: f64 = x.iter().zip(&before).map(|(a, b)| (a - b) * (a + b)).sum();
        let want = gamma * gamma * dot(&g, &g);
        worst = worst.max(rel(grown, want));
    }
    println!("‖x‖² increments vs γ²‖g‖²: worst relative error {worst:e}");
    assert!(
        worst <= 1e-12,
        "‖x‖² increments off by {worst:e} (relative)"
    );
    assert!(norm(&x) > 1.5, "the norm grew: {}", norm(&x));
}

/// Item 3 (§10.2): SGD with decay settles at `‖g‖/‖x‖ = sqrt(2λ/γ − λ²)`; the diagnostics
/// predict the same value and measure the same ratio.
#[test]
fn sgd_steady_state_ratio() {
    let (gamma, lambda) = (0.1, 5e-3);
    let w = simulate(sgd(gamma, lambda, Constant).as_mut(), 3);
    let want = (2.0 * lambda / gamma - lambda * lambda).sqrt();
    let measured = last_quarter(&w, |w| w.ratio);
    let diag = last_quarter(&w, |w| w.diag_ratio);
    let predicted = last_quarter(&w, |w| w.predicted_ratio);
    println!(
        "SGD steady state: measured {measured:.5}, predicted {want:.5} (diagnostics {predicted:.5})"
    );
    assert!(rel(measured, want) < 0.03, "{measured} vs {want}");
    assert!(
        rel(predicted, want) < 1e-12,
        "diagnostics predict {predicted}"
    );
    assert!(rel(diag, measured) < 1e-12, "diagnostics measured {diag}");
    assert!(rel(diag, predicted) < 0.03);
}

/// Item 4 (§10.3): AdamW (β1 = 0, β2 = 0.999) settles at `‖x‖ = sqrt(γd/(2λ))`; the
/// diagnostics' predicted weight norm (from the measured `‖u‖`) agrees.
#[test]
fn adam_steady_state_weight_norm() {
    let w = simulate(adamw(Constant).as_mut(), 4);
    let want = (0.01 * D as f64 / (2.0 * 0.1)).sqrt();
    let measured = last_quarter(&w, |w| w.x_norm);
    let predicted = last_quarter(&w, |w| w.predicted_weight_norm);
    println!(
        "Adam steady state: ‖x‖ {measured:.4}, sqrt(γd/2λ) {want:.4}, diagnostics {predicted:.4}"
    );
    assert!(rel(measured, want) < 0.03, "{measured} vs {want}");
    assert!(rel(predicted, measured) < 0.03, "{predicted} vs {measured}");
    // Measured ratio vs the diagnostics' prediction of ‖u‖/‖w‖ (Adam: not ‖g‖/‖w‖).
    let pr = last_quarter(&w, |w| w.predicted_ratio);
    let ur = last_quarter(&w, |w| w.diag_angle) / 0.01;
    assert!(rel(ur, pr) < 0.03, "‖u‖/‖w‖ {ur} vs predicted {pr}");
}

/// Item 5 (§10.4): under linear decay to 0 the uncorrected methods blow up at the tail.
#[test]
fn tail_blow_up_under_linear_decay() {
    let s = simulate(sgd(0.1, 5e-3, linear_decay()).as_mut(), 5);
    let mid = s[WINDOWS / 2].ratio;
    let tail: Vec<f64> = s[95..].iter().map(|w| w.ratio).collect();
    println!("SGD ratio at 50%: {mid:.3}, at 95..99%: {tail:.3?}");
    for r in &tail {
        assert!(*r >= 1.5 * mid, "SGD ratio {r} at the tail vs {mid} at 50%");
    }

    let a = simulate(adamw(linear_decay()).as_mut(), 6);
    let (mid, end) = (a[WINDOWS / 2], a[WINDOWS - 1]);
    println!(
        "AdamW ‖g‖ {:.3} → {:.3}, ‖x‖ {:.3} → {:.3} (50% → 99%)",
        mid.g_norm, end.g_norm, mid.x_norm, end.x_norm
    );
    assert!(
        end.g_norm >= 1.5 * mid.g_norm,
        "{} vs {}",
        end.g_norm,
        mid.g_norm
    );
    assert!(
        end.x_norm <= 0.7 * mid.x_norm,
        "{} vs {}",
        end.x_norm,
        mid.x_norm
    );
}

/// Item 6 (§10.4): SGDC / AdamC keep the ratio and the weight norm flat under linear decay.
#[test]
fn corrected_decay_keeps_norms_flat() {
    let (gamma, lambda) = (0.1, 5e-3);
    let mut o = SgdC {
        lr: gamma,
        weight_decay: lambda,
        ..Default::default()
    }
    .build::<f64, _>(linear_decay())
    .expect("config");
    tagged(&mut o, ParamTags::NORMALIZED);
    let s = simulate(&mut o, 7);
    let want = (2.0 * lambda / gamma).sqrt();
    let ratios: Vec<f64> = s[50..].iter().map(|w| w.ratio).collect();
    let (lo, hi) = min_max(&ratios);
    println!("SGDC ratio 50..99%: {lo:.4}..{hi:.4} (target {want:.4})");
    for w in &s[50..] {
        assert!(
            rel(w.ratio, want) < 0.05,
            "SGDC ratio {} vs {want}",
            w.ratio
        );
    }
    // The diagnostics' κ follows λγ_t²/γ_max, so their prediction stays at the target (the
    // last window holds the zero-lr update, whose prediction is NaN by definition).
    for w in &s[50..WINDOWS - 1] {
        assert!(rel(w.predicted_ratio, want) < 1e-3, "{}", w.predicted_ratio);
    }

    let a = simulate(adamc(linear_decay(), ParamTags::NORMALIZED).as_mut(), 8);
    let want = (0.01 * D as f64 / (2.0 * 0.1)).sqrt();
    let xs: Vec<f64> = a[50..].iter().map(|w| w.x_norm).collect();
    let gs: Vec<f64> = a[50..].iter().map(|w| w.g_norm).collect();
    let ((xlo, xhi), (glo, ghi)) = (min_max(&xs), min_max(&gs));
    println!("AdamC ‖x‖ 50..99%: {xlo:.4}..{xhi:.4} (target {want:.4}); ‖g‖ {glo:.4}..{ghi:.4}");
    for x in &xs {
        assert!(rel(*x, want) < 0.05, "AdamC ‖x‖ {x} vs {want}");
    }
    assert!(ghi / glo < 1.05, "AdamC ‖g‖ varies {glo}..{ghi}");
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Runs `opt` on fixed pseudo-random non-orthogonal gradients and returns the final iterate.
fn run_bits(opt: &mut dyn DynOptimizer<f64>, steps: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut x = start(&mut rng);
    let mut g = vec![0.0; D];
    for _ in 0..steps {
        for v in g.iter_mut() {
            *v = gaussian(&mut rng);
        }
        opt.step(&mut [Param::new("w", &mut x, &g)]).expect("step");
    }
    x.iter().map(|v| v.to_bits()).collect()
}

/// Item 7: AdamC equals AdamW (with AdamC's denominator) bit for bit when the lr is constant at
/// the peak, and on parameters not tagged normalized whatever the schedule.
#[test]
fn adamc_is_adamw_at_constant_peak_lr_and_on_untagged_params() {
    let steps = 300;
    let tagged_const = run_bits(adamc(Constant, ParamTags::NORMALIZED).as_mut(), steps);
    let untagged_const = run_bits(adamc(Constant, ParamTags::default()).as_mut(), steps);
    assert_eq!(tagged_const, untagged_const, "constant lr at the peak");

    // AdamW with the reference's eps placement, composed by hand.
    let adamw_eps_first = || {
        let mut o = Optimizer::<f64, _, _, _, _>::new(
            Adam {
                beta1: 0.0,
                beta2: 0.999,
                eps: 1e-8,
                bias_correction: BiasCorrection::EpsBeforeCorrection,
                count: StepCount::Parameter,
            },
            LastIterate,
            Decoupled,
            Linear::new(0, steps as u64, 0.0).expect("schedule"),
            GroupConfig {
                lr: 0.01,
                weight_decay: 0.1,
            },
        )
        .expect("config");
        tagged(&mut o, ParamTags::default());
        o
    };
    let decaying = || Linear::new(0, steps as u64, 0.0).expect("schedule");
    let adamw_bits = run_bits(&mut adamw_eps_first(), steps);
    assert_eq!(run_bits(&mut adamw_eps_first(), steps), adamw_bits);
    let untagged = run_bits(adamc(decaying(), ParamTags::default()).as_mut(), steps);
    assert_eq!(untagged, adamw_bits, "untagged parameters decay as AdamW");
    // Control: under a decaying schedule the correction does change normalized parameters.
    let corrected = run_bits(adamc(decaying(), ParamTags::NORMALIZED).as_mut(), steps);
    assert_ne!(corrected, adamw_bits);
}

/// Item 8: the angular step at equilibrium is `sqrt(2λγ)` for constant lr (SGD) and `∝ γ_t`
/// under AdamC (`γ_t·sqrt(2λ/γ_max)`); the diagnostics' angular step matches the measured angle.
#[test]
fn angular_step_at_equilibrium() {
    let (gamma, lambda) = (0.1, 5e-3);
    let s = simulate(sgd(gamma, lambda, Constant).as_mut(), 10);
    let measured = last_quarter(&s, |w| w.angle);
    let diag = last_quarter(&s, |w| w.diag_angle);
    let want = (2.0 * lambda * gamma).sqrt();
    println!("SGD angular step {measured:.5} (diagnostics {diag:.5}), sqrt(2λγ) {want:.5}");
    assert!(rel(measured, want) < 0.03, "{measured} vs {want}");
    // atan(γ‖g‖/‖x‖) vs γ‖g‖/‖x‖: equal to third order in the angle.
    assert!(rel(diag, measured) < 1e-3, "{diag} vs {measured}");

    let a = simulate(adamc(linear_decay(), ParamTags::NORMALIZED).as_mut(), 11);
    let want = (2.0 * 0.1 / 0.01_f64).sqrt();
    let per_lr: Vec<f64> = a[50..99].iter().map(|w| w.angle_per_lr).collect();
    let (lo, hi) = min_max(&per_lr);
    println!("AdamC angle/γ_t 50..98%: {lo:.3}..{hi:.3} (sqrt(2λ/γ_max) = {want:.3})");
    for v in &per_lr {
        assert!(rel(*v, want) < 0.05, "AdamC angle/γ_t {v} vs {want}");
    }
}
