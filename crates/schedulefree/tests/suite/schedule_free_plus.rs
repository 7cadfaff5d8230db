//! ScheduleFree+ (`ScheduleFreePlus`): the memory-lean form (y in the parameter; z, m, v
//! stored; x derived) against the reference's x/y/z form written out below over random
//! hyperparameters (annealing and `c_warmup` included), bit-exact resume mid-annealing and
//! mid-`c_warmup`, eval/train round trips, the Polyak step's edge cases and typed errors.
//! Golden parity with the official class is `sflab golden` (`crates/schedulefree-lab/tests`).

use proptest::prelude::*;
use schedulefree::learner::L1Ema;
use schedulefree::{ConfigError, OptimizerState, Param, ScheduleFreePlus, StepError, StepInputs};

/// The model: two tensors with `f_i(w) = Σ ½a·w² − b·w + const` (minimum 0 when noiseless),
/// plus a step-dependent linear noise term.
const SHAPES: [usize; 2] = [5, 3];

fn init(t: usize) -> Vec<f64> {
    (0..SHAPES[t])
        .map(|i| ((t * 7 + i) as f64 * 0.83).sin())
        .collect()
}

/// Gradient and loss of tensor `t` at `w`, step `s`.
fn grad_loss(t: usize, s: usize, w: &[f64]) -> (Vec<f64>, f64) {
    let mut loss = 0.0;
    let g = w
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let a = 0.5 + 0.3 * (t + i) as f64;
            let b = ((i + 2 * t) as f64 * 0.7).cos();
            let noise = (((s * 5 + i + t) % 7) as f64 - 3.0) * 0.02;
            loss += 0.5 * a * w * w - b * w + 0.5 * b * b / a + noise * w;
            a * w - b + noise
        })
        .collect();
    (g, loss)
}

/// The reference's update with x, y, z, m, v stored (ALGORITHMS.md §6; schedulefree's
/// `AdamCScheduleFreePlusPaper`).
struct Reference {
    c: ScheduleFreePlus,
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    z: Vec<Vec<f64>>,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    k: u64,
    lr_max: f64,
    weight_sum: f64,
    ema: f64,
}

impl Reference {
    fn new(c: ScheduleFreePlus) -> Self {
        let w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
        let zeros: Vec<Vec<f64>> = w.iter().map(|v| vec![0.0; v.len()]).collect();
        Reference {
            c,
            x: w.clone(),
            y: w.clone(),
            z: w,
            m: zeros.clone(),
            v: zeros,
            k: 0,
            lr_max: c.eps,
            weight_sum: 0.0,
            ema: 0.0,
        }
    }

    fn beta(&self, k: u64) -> f64 {
        let c = &self.c;
        if c.sf_beta1_anneal_steps == 0 {
            return c.sf_beta1;
        }
        let q = (k as f64 / c.sf_beta1_anneal_steps as f64).min(1.0);
        1.0 - ((1.0 - c.sf_beta1).ln() * (1.0 - q) + (1.0 - c.sf_beta1_max).ln() * q).exp()
    }

    #[allow(clippy::needless_range_loop)] // five buffers indexed alike
    fn step(&mut self, g: &[Vec<f64>], f: f64) {
        let c = self.c;
        let beta = self.beta(self.k);
        let l1: f64 = g.iter().flatten().map(|v| v.abs()).sum();
        let mut ip = 0.0;
        for t in 0..g.len() {
            for i in 0..g[t].len() {
                ip += beta * g[t][i] * (self.z[t][i] - self.x[t][i]);
            }
        }
        let pb = c.polyak_beta;
        let e = pb * self.ema + (1.0 - pb) * l1 * std::f64::consts::FRAC_PI_2.sqrt();
        let corr = e / (1.0 - pb.powf((self.k + 1) as f64));
        self.ema = if c.ema == L1Ema::Raw { e } else { corr };
        let gamma = c.lr.max(c.eps) * (f + ip).max(0.0) / corr;
        self.lr_max = self.lr_max.max(gamma);
        let ck = if self.k < c.c_warmup {
            1.0
        } else {
            let w = ((self.k + 1) as f64).powf(c.r) * self.lr_max.powf(c.weight_lr_power);
            self.weight_sum += w;
            w / self.weight_sum
        };
        let t1 = (self.k + 1) as f64;
        let (bc1, bc2) = (1.0 - c.betas.0.powf(t1), 1.0 - c.betas.1.powf(t1));
        for t in 0..g.len() {
            for i in 0..g[t].len() {
                let gi = g[t][i];
                self.z[t][i] -= gamma * gamma * c.weight_decay * self.y[t][i];
                self.m[t][i] = c.betas.0 * self.m[t][i] + (1.0 - c.betas.0) * gi;
                self.v[t][i] = c.betas.1 * self.v[t][i] + (1.0 - c.betas.1) * gi * gi;
                let d = (self.m[t][i] / bc1) / ((self.v[t][i] / bc2).sqrt() + c.eps);
                self.z[t][i] -= gamma * d;
                self.x[t][i] = (1.0 - ck) * self.x[t][i] + ck * self.z[t][i];
                self.y[t][i] = beta * self.x[t][i] + (1.0 - beta) * self.z[t][i];
            }
        }
        self.k += 1;
    }
}

const NAMES: [&str; 2] = ["w", "b"];

fn build(c: &ScheduleFreePlus) -> schedulefree::presets::ScheduleFreePlusOptimizer<f64> {
    let mut o = c.build::<f64>().expect("valid");
    for (n, s) in NAMES.iter().zip(SHAPES) {
        o.add_param(n, &[s]).expect("new");
    }
    o
}

/// One step of ours at `w` (the loss at `w` passed).
fn step_ours(
    o: &mut schedulefree::presets::ScheduleFreePlusOptimizer<f64>,
    w: &mut [Vec<f64>],
    s: usize,
) -> schedulefree::StepInfo {
    let gl: Vec<(Vec<f64>, f64)> = w
        .iter()
        .enumerate()
        .map(|(t, v)| grad_loss(t, s, v))
        .collect();
    let f = gl.iter().map(|(_, l)| l).sum();
    let g: Vec<&[f64]> = gl.iter().map(|(g, _)| g.as_slice()).collect();
    let mut params = with_grads(w, &g);
    o.step_with_loss(&mut params, f).expect("train mode")
}

/// The model's parameters with gradients `g`, in [`NAMES`] order.
fn with_grads<'a>(w: &'a mut [Vec<f64>], g: &[&'a [f64]]) -> Vec<Param<'a, f64>> {
    NAMES
        .iter()
        .zip(w.iter_mut())
        .zip(g.iter().copied())
        .map(|((n, v), g)| Param::new(n, v, g))
        .collect()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> Result<(), String> {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x - y).abs() > tol * y.abs().max(1.0) {
            return Err(format!("element {i}: {x} vs {y}"));
        }
    }
    Ok(())
}

fn config() -> impl Strategy<Value = ScheduleFreePlus> {
    (
        (0.0..0.95_f64, 0.5..0.999_f64, 0.5..0.95_f64, 0.0..0.05_f64),
        (0u64..15, 0u64..5, 0.0..2.0_f64, 0.0..2.5_f64),
        (0.0..0.95_f64, 0.0..1.0_f64, 0.2..2.0_f64, any::<bool>()),
    )
        .prop_map(
            |((b1, b2, sf, up), (anneal, cw, r, p), (pb, wd, lr, raw))| ScheduleFreePlus {
                lr,
                betas: (b1, b2),
                sf_beta1: sf,
                weight_decay: wd,
                r,
                polyak_beta: pb,
                c_warmup: cw,
                sf_beta1_anneal_steps: anneal,
                sf_beta1_max: (sf + up + 0.01).min(0.99),
                weight_lr_power: p,
                ema: if raw { L1Ema::Raw } else { L1Ema::Reference },
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The memory-lean form follows the reference's x/y/z form: y (the parameter), x
    /// (`x_into`, derived with the β that formed y) and z, to rounding.
    #[test]
    fn lean_form_matches_the_xyz_form(c in config()) {
        let mut reference = Reference::new(c);
        let mut o = build(&c);
        let mut w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
        for s in 0..25 {
            let gl: Vec<(Vec<f64>, f64)> =
                reference.y.iter().enumerate().map(|(t, v)| grad_loss(t, s, v)).collect();
            let g: Vec<Vec<f64>> = gl.iter().map(|(g, _)| g.clone()).collect();
            reference.step(&g, gl.iter().map(|(_, l)| l).sum());
            step_ours(&mut o, &mut w, s);
            for t in 0..SHAPES.len() {
                let mut x = vec![0.0; SHAPES[t]];
                let mut z = vec![0.0; SHAPES[t]];
                o.x_into(NAMES[t], &w[t], &mut x).expect("known");
                o.z_into(NAMES[t], &w[t], &mut z).expect("known");
                let at = |what| format!("step {s}, {what} of {}: ", NAMES[t]);
                close(&w[t], &reference.y[t], 1e-9).map_err(|e| TestCaseError::fail(at("y") + &e))?;
                close(&x, &reference.x[t], 1e-9).map_err(|e| TestCaseError::fail(at("x") + &e))?;
                close(&z, &reference.z[t], 1e-9).map_err(|e| TestCaseError::fail(at("z") + &e))?;
            }
        }
    }
}

fn annealed() -> ScheduleFreePlus {
    ScheduleFreePlus {
        weight_decay: 0.3,
        polyak_beta: 0.8,
        c_warmup: 6,
        sf_beta1_anneal_steps: 16,
        r: 1.0,
        ..Default::default()
    }
}

fn bits(v: &[Vec<f64>]) -> Vec<u64> {
    v.iter().flatten().map(|x| x.to_bits()).collect()
}

fn state_bits(st: &OptimizerState) -> String {
    // f64s in the JSON are written shortest-round-trip: equal text is equal bits.
    serde_json::to_string(st).expect("serializable")
}

/// Resuming mid-`c_warmup` (after 3 steps) and mid-annealing (after 10) continues bit for
/// bit: parameters and every state value, through JSON.
#[test]
fn resume_is_bit_exact_mid_warmup_and_mid_annealing() {
    let c = annealed();
    const N: usize = 22;
    let mut full = build(&c);
    let mut wf: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
    for s in 0..N {
        step_ours(&mut full, &mut wf, s);
    }
    for cut in [3, 10] {
        let mut first = build(&c);
        let mut w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
        for s in 0..cut {
            step_ours(&mut first, &mut w, s);
        }
        let json = serde_json::to_string(&first.state()).expect("serializable");
        let st: OptimizerState = serde_json::from_str(&json).expect("parses");
        let mut second = build(&c);
        second.load_state(&st).expect("same composition");
        for s in cut..N {
            step_ours(&mut second, &mut w, s);
        }
        assert_eq!(bits(&w), bits(&wf), "cut at {cut}");
        assert_eq!(
            state_bits(&second.state()),
            state_bits(&full.state()),
            "cut at {cut}"
        );
    }
}

/// `eval()` then `train()` after every step (x read in between, with the β that formed y
/// while β anneals) leaves the run where it was, to rounding, and eval mode holds `x`.
#[test]
fn eval_train_round_trips_change_nothing() {
    let c = annealed();
    let mut plain = build(&c);
    let mut switched = build(&c);
    let mut wp: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
    let mut ws = wp.clone();
    for s in 0..22 {
        step_ours(&mut plain, &mut wp, s);
        step_ours(&mut switched, &mut ws, s);
        let mut x = vec![0.0; SHAPES[0]];
        switched.x_into(NAMES[0], &ws[0], &mut x).expect("known");
        let mut params: Vec<Param<'_, f64>> = NAMES
            .iter()
            .zip(ws.iter_mut())
            .map(|(n, v)| Param::no_grad(n, v))
            .collect();
        switched.eval(&mut params).expect("all passed");
        close(params[0].value, &x, 1e-14).expect("eval mode holds x");
        switched.train(&mut params).expect("all passed");
    }
    for t in 0..SHAPES.len() {
        close(&ws[t], &wp[t], 1e-12).expect("round trips are exact to rounding");
    }
}

/// `f + I < 0` is a zero step (`lr_factor` 0, z does not move); a zero gradient too (the
/// reference divides by 0); neither gives a NaN.
#[test]
fn negative_numerator_and_zero_gradient_give_zero_steps() {
    let mut o = build(&ScheduleFreePlus::default());
    let mut w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
    let g: Vec<Vec<f64>> = w.iter().map(|v| vec![0.5; v.len()]).collect();
    let before = w.clone();
    let mut params = with_grads(&mut w, &g.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let info = o.step_with_loss(&mut params, -10.0).expect("steps");
    assert_eq!(info.group.lr_factor, 0.0);
    assert_eq!(info.group.lr, 0.0);
    assert_eq!(
        bits(&w),
        bits(&before),
        "first step: x = y = z, nothing moves"
    );

    let zero: Vec<Vec<f64>> = w.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut params = with_grads(&mut w, &zero.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let info = o.step_with_loss(&mut params, 3.0).expect("steps");
    assert_eq!(info.group.lr_factor, 0.0);
    assert!(w.iter().flatten().all(|v| v.is_finite()));
}

/// The learner's `⟨g, z − y⟩` travels with the gradient norms: one all-reduce call per step.
#[test]
fn one_all_reduce_call_per_step() {
    let mut o = build(&annealed());
    let mut w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
    let mut calls = Vec::new();
    for s in 0..5 {
        let gl: Vec<(Vec<f64>, f64)> = w
            .iter()
            .enumerate()
            .map(|(t, v)| grad_loss(t, s, v))
            .collect();
        let g: Vec<&[f64]> = gl.iter().map(|(g, _)| g.as_slice()).collect();
        let mut params = with_grads(&mut w, &g);
        let mut n = 0;
        let mut len = 0;
        let mut hook = |buf: &mut [f64]| {
            n += 1;
            len = buf.len();
        };
        let inputs = StepInputs {
            loss: Some(gl.iter().map(|(_, l)| l).sum()),
            all_reduce: Some(&mut hook as &mut (dyn FnMut(&mut [f64]) + Send)),
        };
        o.step_with(&mut params, inputs).expect("steps");
        calls.push((n, len));
    }
    // [non-finite count, ‖g‖₁, ‖g‖₂², ⟨g, z − y⟩] for one group.
    assert!(calls.iter().all(|&c| c == (1, 4)), "{calls:?}");
}

#[test]
fn bad_input_is_a_typed_error_naming_the_field() {
    let cases = [
        (
            "weight_decay",
            ScheduleFreePlus {
                weight_decay: -1.0,
                ..Default::default()
            },
        ),
        (
            "sf_beta1",
            ScheduleFreePlus {
                sf_beta1: 1.0,
                ..Default::default()
            },
        ),
        (
            "sf_beta1",
            ScheduleFreePlus {
                sf_beta1: 0.0,
                ..Default::default()
            },
        ),
        (
            "sf_beta1_max",
            ScheduleFreePlus {
                sf_beta1_max: 1.0,
                ..Default::default()
            },
        ),
        (
            "sf_beta1_max",
            ScheduleFreePlus {
                sf_beta1_max: -0.5,
                ..Default::default()
            },
        ),
        (
            "polyak_beta",
            ScheduleFreePlus {
                polyak_beta: 1.0,
                ..Default::default()
            },
        ),
        (
            "polyak_beta",
            ScheduleFreePlus {
                polyak_beta: -0.1,
                ..Default::default()
            },
        ),
    ];
    for (field, c) in cases {
        match c.build::<f32>() {
            Err(ConfigError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut o = build(&ScheduleFreePlus::default());
    let mut w: Vec<Vec<f64>> = (0..SHAPES.len()).map(init).collect();
    let g: Vec<Vec<f64>> = w.iter().map(|v| vec![0.5; v.len()]).collect();
    let before = bits(&w);
    let mut params = with_grads(&mut w, &g.iter().map(Vec::as_slice).collect::<Vec<_>>());
    assert!(matches!(
        o.step(&mut params),
        Err(StepError::LossRequired { .. })
    ));
    let info = o
        .step_with_loss(&mut params, f64::NAN)
        .expect("skipped, not refused");
    assert!(info.skipped.is_some());
    assert_eq!(bits(&w), before);
    assert_eq!(o.step_count(), 0);
}
