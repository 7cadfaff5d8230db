//! `sflab drift`: how far the returned point `x` (and the training point `y`) of an `f32`
//! Schedule-Free run drifts from the same run in `f64` over long runs.
//!
//! Why it can drift: the averaged iterate moves by `x ← x + c_t·(z − x)` with `c_t ≈ 1/t`
//! (Defazio et al., arXiv 2405.15682, Eq. 1 with `c_{t+1} = 1/(t+1)` at constant lr). Once
//! `c_t·|z − x|` falls below half an `f32` ulp of `x`, the update rounds away and `x` freezes
//! in `f32`; the memory-lean form stores `y` and `z` instead of `x`, so the same rounding
//! shows up in `y = lerp(y, z, c)` and in `x` derived from them. PyTorch's `schedulefree`
//! keeps the same `f32` buffers.
//!
//! The measurement is open loop: at every step the gradient is taken at the `f64` run's `y`
//! and given to both runs (rounded to `f32` for the `f32` one), so the difference is the
//! optimizer's own arithmetic, not a different trajectory of gradients. Reported at
//! log-spaced steps: `‖x₃₂ − x₆₄‖/‖x₆₄‖` (each `x` derived from that run's stored `y` and
//! `z`, as evaluation derives it, so the `f32` error includes that derivation's rounding), the
//! same for `y`, and the representation floor `‖round₃₂(x₆₄) − x₆₄‖/‖x₆₄‖` that no `f32`
//! buffer can beat. Every run warms the lr up over [`WARMUP_STEPS`].
//!
//! Problems: a noisy quadratic (`d = 64`, curvatures log-spaced in `[1e-3, 1]`, uniform
//! gradient noise) and softmax regression on a bundled LIBSVM dataset (standardised,
//! batch 16, reshuffled every epoch), each with Schedule-Free AdamW and SGD.

mod problem;

use std::path::PathBuf;

use anyhow::Context;
use schedulefree::{AdamWScheduleFree, DynOptimizer, Param, SgdScheduleFree};
use serde::Serialize;

use problem::Problem;

use crate::output::table::Table;

/// Command-line arguments of `sflab drift`.
#[derive(Debug, Clone, clap::Args)]
pub struct DriftArgs {
    /// Steps per run.
    #[arg(long, default_value_t = 1_000_000)]
    pub steps: u64,
    /// Bundled (or `--data-dir`) LIBSVM dataset of the logistic-regression problem.
    #[arg(long, default_value = "satimage")]
    pub dataset: String,
    /// Folder with a data manifest (default: the bundled data, then `../shared/data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output folder (`drift.csv`, `summary.md`).
    #[arg(long, default_value = "sflab-out/drift")]
    pub out: PathBuf,
    /// 20 000 steps instead of `--steps` (a smoke run).
    #[arg(long)]
    pub quick: bool,
}

/// The optimizers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Schedule-Free AdamW, lr 1e-2, β = (0.9, 0.999).
    SfAdamW,
    /// Schedule-Free SGD, lr 0.1, β = 0.9.
    SfSgd,
}

impl Method {
    /// Both, in report order.
    pub const ALL: [Method; 2] = [Method::SfAdamW, Method::SfSgd];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Method::SfAdamW => "SF-AdamW",
            Method::SfSgd => "SF-SGD",
        }
    }

    fn build<T: schedulefree::Element>(
        self,
        warmup_steps: u64,
    ) -> anyhow::Result<Box<dyn DynOptimizer<T>>> {
        Ok(match self {
            Method::SfAdamW => Box::new(
                AdamWScheduleFree {
                    lr: 1e-2,
                    warmup_steps,
                    ..Default::default()
                }
                .build::<T>()?,
            ),
            Method::SfSgd => Box::new(
                SgdScheduleFree {
                    lr: 0.1,
                    warmup_steps,
                    ..Default::default()
                }
                .build::<T>()?,
            ),
        })
    }
}

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct DriftPoint {
    /// Problem name.
    pub problem: String,
    /// Optimizer.
    pub method: Method,
    /// Completed steps.
    pub step: u64,
    /// `‖x₃₂ − x₆₄‖/‖x₆₄‖`.
    pub rel_err_x: f64,
    /// `‖y₃₂ − y₆₄‖/‖y₆₄‖`.
    pub rel_err_y: f64,
    /// `‖round₃₂(x₆₄) − x₆₄‖/‖x₆₄‖`: the error of storing the exact `x` in `f32`.
    pub floor_x: f64,
    /// The full objective at the `f64` run's `x` ([`Problem::loss`]).
    pub loss_x64: f64,
    /// The objective at the `f32` run's `x` minus [`DriftPoint::loss_x64`].
    pub loss_gap: f64,
}

/// Linear lr warmup of every run (fixed, so that a step's numbers do not depend on
/// `--steps`).
pub const WARMUP_STEPS: u64 = 1000;

/// Steps at which to measure: 1, 2, 5 × powers of ten up to `steps`, and `steps`.
pub fn checkpoints(steps: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..20)
        .flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)))
        .take_while(|&s| s < steps)
        .collect();
    v.push(steps);
    v
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Run `method` on `problem` for `steps` steps in both precisions (open loop) and measure
/// at [`checkpoints`].
///
/// # Errors
/// Optimizer construction or step errors.
pub fn run_one(
    problem: &mut Problem,
    method: Method,
    steps: u64,
) -> anyhow::Result<Vec<DriftPoint>> {
    const NAME: &str = "theta";
    let n = problem.dim();
    let warmup = WARMUP_STEPS.min(steps);
    let mut o64 = method.build::<f64>(warmup)?;
    let mut o32 = method.build::<f32>(warmup)?;
    o64.add_param(NAME, &[n])?;
    o32.add_param(NAME, &[n])?;
    let (mut y64, mut y32) = (problem.init(), vec![0.0f32; n]);
    for (a, b) in y32.iter_mut().zip(&y64) {
        *a = *b as f32;
    }
    let (mut g64, mut g32) = (vec![0.0f64; n], vec![0.0f32; n]);
    let (mut x64, mut x32) = (vec![0.0f64; n], vec![0.0f32; n]);
    let marks = checkpoints(steps);
    let mut next = 0;
    let mut out = Vec::with_capacity(marks.len());
    for step in 1..=steps {
        problem.grad(&y64, &mut g64)?;
        for (a, b) in g32.iter_mut().zip(&g64) {
            *a = *b as f32;
        }
        o64.step(&mut [Param::new(NAME, &mut y64, &g64)])?;
        o32.step(&mut [Param::new(NAME, &mut y32, &g32)])?;
        if step == marks[next] {
            next += 1;
            o64.x_into(NAME, &y64, &mut x64)?;
            o32.x_into(NAME, &y32, &mut x32)?;
            let up = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
            let rounded: Vec<f64> = x64.iter().map(|&a| f64::from(a as f32)).collect();
            let loss_x64 = problem.loss(&x64)?;
            let loss_gap = problem.loss(&up(&x32))? - loss_x64;
            out.push(DriftPoint {
                problem: problem.name().to_string(),
                method,
                step,
                rel_err_x: rel(&up(&x32), &x64),
                rel_err_y: rel(&up(&y32), &y64),
                floor_x: rel(&rounded, &x64),
                loss_x64,
                loss_gap,
            });
        }
    }
    Ok(out)
}

/// `sflab drift`: both problems × both optimizers, `drift.csv` and `summary.md` in `--out`.
///
/// # Errors
/// Data loading, optimizer or I/O errors.
pub fn run(args: &DriftArgs) -> anyhow::Result<()> {
    let steps = if args.quick { 20_000 } else { args.steps };
    anyhow::ensure!(steps > 0, "--steps must be positive");
    // A fresh problem per run: each optimizer sees the same noise and minibatch stream.
    let problems: [&dyn Fn() -> anyhow::Result<Problem>; 2] =
        [&|| Ok(Problem::quadratic()), &|| {
            Problem::logreg(&args.dataset, args.data_dir.as_deref())
        }];
    let mut points = Vec::new();
    for make in problems {
        for m in Method::ALL {
            let mut p = make()?;
            let t = std::time::Instant::now();
            points.extend(run_one(&mut p, m, steps)?);
            eprintln!(
                "{} {}: {:.1} s",
                p.name(),
                m.name(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    crate::output::csv::write_serialized(&args.out.join("drift.csv"), &points)?;
    let md = summary(&points, steps);
    crate::output::write_text(&args.out.join("summary.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// The markdown report: per problem and optimizer, the errors at each power of ten.
pub fn summary(points: &[DriftPoint], steps: u64) -> String {
    let mut t = Table::new([
        "problem",
        "optimizer",
        "step",
        "x error",
        "y error",
        "floor",
        "loss at f64 x",
        "loss gap",
    ]);
    for p in points {
        if p.step == steps || p.step == 10u64.pow(p.step.ilog10()) {
            t.push([
                p.problem.to_string(),
                p.method.name().to_string(),
                p.step.to_string(),
                format!("{:.2e}", p.rel_err_x),
                format!("{:.2e}", p.rel_err_y),
                format!("{:.2e}", p.floor_x),
                format!("{:.6}", p.loss_x64),
                format!("{:+.2e}", p.loss_gap),
            ]);
        }
    }
    format!(
        "# sflab drift: f32 vs f64 Schedule-Free, open loop, {steps} steps\n\n\
         Relative error of the f32 run's x (and y) against the f64 run fed the same gradients \
         (lr warmup {WARMUP_STEPS} steps; x is derived from the stored y and z in each \
         precision, as evaluation does); \
         `floor` is the error of storing the f64 x in f32; `loss gap` is the objective (full \
         train loss; the noiseless quadratic) at the f32 x minus that at the f64 x.\n\n{t}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_log_spaced_and_end_at_the_run_length() {
        assert_eq!(checkpoints(1), [1]);
        assert_eq!(checkpoints(30), [1, 2, 5, 10, 20, 30]);
        assert_eq!(checkpoints(100), [1, 2, 5, 10, 20, 50, 100]);
    }

    #[test]
    fn both_problems_start_at_f32_rounding_and_report_every_decade() {
        let mut problems = vec![
            Problem::quadratic(),
            Problem::logreg("iris", None).expect("bundled iris"),
        ];
        for p in &mut problems {
            for m in Method::ALL {
                let pts = run_one(p, m, 1000).expect("runs");
                assert_eq!(pts.len(), checkpoints(1000).len());
                let first = &pts[0];
                // One step from the same start with the same gradient: the runs differ by
                // f32 rounding only.
                assert!(first.rel_err_y < 1e-6, "{} {:?}: {first:?}", p.name(), m);
                for q in &pts {
                    assert!(q.rel_err_x.is_finite() && q.rel_err_y.is_finite());
                    assert!(q.floor_x <= 2f64.powi(-24), "{q:?}");
                }
            }
        }
        let pts = run_one(&mut Problem::quadratic(), Method::SfSgd, 100).expect("runs");
        let md = summary(&pts, 100);
        for step in ["| 1 |", "| 10 |", "| 100 |"] {
            assert!(md.contains(step), "{md}");
        }
        assert!(!md.contains("| 20 |"), "{md}");
    }
}
