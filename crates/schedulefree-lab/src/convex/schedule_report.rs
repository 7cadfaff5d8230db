//! The schedule comparison's markdown section (the schedule comparison of arXiv 2310.07831): final train loss by
//! schedule, the expected ordering refined ≤ linear decay ≤ cosine, the mean relative
//! difference refined vs linear decay, and the refined schedules' facts.

use std::fmt::Write as _;

use super::config::{Base, ConvexConfig, Method, fmt_lr};
use super::methods::{STEP_GAMMA, STEP_MILESTONES};
use super::refined::Refinement;
use super::report::{Report, num};
use crate::output::table::{Table, bold_if};

/// Whether the sweep compares schedules: `--suite schedules`, or a method only that
/// comparison has (1/√t, step, refined, custom).
pub fn wanted(cfg: &ConvexConfig) -> bool {
    cfg.suite.is_some()
        || cfg.methods.iter().any(|m| {
            matches!(
                m,
                Method::InverseSqrt
                    | Method::Step
                    | Method::RefinedL2
                    | Method::RefinedL1
                    | Method::Custom
            )
        })
}

/// Mean final train loss of `method` at its best lr (`None` if it did not run or diverged).
fn loss(report: &Report, d: usize, base: Base, method: Method) -> Option<f64> {
    report
        .best_of(d, base, method)
        .map(|a| a.train_loss.mean)
        .filter(|v| v.is_finite())
}

/// `(a − b) / b` in percent, if both are finite and `b > 0`.
fn rel(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| 100.0 * (a - b) / b)
}

/// LD losses below this count as "separable" (the loss goes to 0, so relative differences
/// of losses like 1e-20 vs 1e-30 explode and would dominate a mean).
pub const SEPARABLE_LOSS: f64 = 1e-3;

fn signed_pct(v: f64) -> String {
    if v.abs() >= 1e4 {
        format!("{v:+.1e} %")
    } else {
        format!("{v:+.2} %")
    }
}

/// `mean (over N datasets)` of `v`, or `—`.
fn mean_cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "—".into();
    }
    let n = v.len();
    format!(
        "{} (over {n} dataset{})",
        signed_pct(v.iter().sum::<f64>() / n as f64),
        if n == 1 { "" } else { "s" }
    )
}

/// The refined methods and cosine compared with linear decay (those that ran).
fn refined_methods(cfg: &ConvexConfig) -> Vec<Method> {
    cfg.methods
        .iter()
        .copied()
        .filter(|m| m.refine_norm().is_some())
        .collect()
}

/// The section: a loss table (rows dataset × base, columns methods, best bold), one
/// ordering line per (dataset, base), the mean relative difference refined vs linear decay
/// per base, and the refined schedules.
pub fn markdown(cfg: &ConvexConfig, report: &Report, refined: &[Refinement]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Final train loss by schedule\n");
    let _ = writeln!(
        out,
        "Mean final train loss over seeds at each method's best lr; bold = lowest in the row (as \
         displayed). Schedules: Const = warmup then 1; 1/√t = warmup then sqrt(W/(k+1)); Step = \
         warmup then ×{STEP_GAMMA} after {:.0} % and ×{:.2} after {:.0} % of the updates; Cosine and \
         LD decay to 0; Refined ℓ2 / ℓ1 = refined (arXiv 2310.07831, smoothing 0.1, no warmup \
         added) from the gradient norms of one LD run (seed 0) at LD's best lr, then swept over \
         the same lr grid.\n",
        100.0 * STEP_MILESTONES[0],
        STEP_GAMMA * STEP_GAMMA,
        100.0 * STEP_MILESTONES[1],
    );
    let mut t = Table::new(
        ["dataset".to_string(), "base".to_string()]
            .into_iter()
            .chain(cfg.methods.iter().map(|m| m.label().to_string())),
    );
    for d in 0..report.datasets.len() {
        for &base in &cfg.bases {
            let win = report.loss_winners(d, base);
            let mut row = vec![report.datasets[d].name.clone(), base.label().to_string()];
            for &m in &cfg.methods {
                let cell = match report.best_of(d, base, m) {
                    Some(a) if a.train_loss.mean.is_finite() => num(a.train_loss.mean),
                    Some(_) => "diverged".into(),
                    None => String::new(),
                };
                row.push(bold_if(cell, win.contains(&m)));
            }
            t.push(row);
        }
    }
    out.push_str(&t.markdown());
    out.push('\n');
    ordering(&mut out, cfg, report);
    if !refined.is_empty() {
        schedules(&mut out, report, refined);
    }
    out
}

fn ordering(out: &mut String, cfg: &ConvexConfig, report: &Report) {
    let has = |m| cfg.methods.contains(&m);
    let refined = refined_methods(cfg);
    if !has(Method::LinearDecay) || (refined.is_empty() && !has(Method::Cosine)) {
        return;
    }
    let _ = writeln!(
        out,
        "### Expected ordering in final train loss: refined ≤ LD ≤ cosine\n\n\
         Relative differences are (loss − LD loss) / LD loss.\n"
    );
    let n = report.datasets.len();
    // (comparison, rows where it holds, rows compared)
    let mut tally: Vec<(String, usize, usize)> = Vec::new();
    let mut count = |name: String, holds: bool| match tally.iter_mut().find(|t| t.0 == name) {
        Some(t) => {
            t.1 += usize::from(holds);
            t.2 += 1;
        }
        None => tally.push((name, usize::from(holds), 1)),
    };
    for d in 0..n {
        for &base in &cfg.bases {
            let Some(ld) = loss(report, d, base, Method::LinearDecay) else {
                let _ = writeln!(
                    out,
                    "- {} / {}: LD diverged",
                    report.datasets[d].name,
                    base.label()
                );
                continue;
            };
            let mut parts = Vec::new();
            for &m in &refined {
                let r = loss(report, d, base, m);
                count(format!("{} ≤ LD", m.label()), r.is_some_and(|v| v <= ld));
                parts.push(match r {
                    Some(v) => format!(
                        "{} ≤ LD {} ({})",
                        m.label(),
                        if v <= ld { "✓" } else { "✗" },
                        rel(v, ld).map_or_else(|| "—".into(), signed_pct)
                    ),
                    None => format!("{} diverged ✗", m.label()),
                });
            }
            if has(Method::Cosine) {
                let c = loss(report, d, base, Method::Cosine);
                count("LD ≤ Cosine".into(), c.is_none_or(|v| ld <= v));
                parts.push(match c {
                    Some(v) => format!(
                        "LD ≤ Cosine {} (cosine {})",
                        if ld <= v { "✓" } else { "✗" },
                        rel(v, ld).map_or_else(|| "—".into(), signed_pct)
                    ),
                    None => "LD ≤ Cosine ✓ (cosine diverged)".into(),
                });
            }
            let _ = writeln!(
                out,
                "- {} / {}: {}",
                report.datasets[d].name,
                base.label(),
                parts.join("; ")
            );
        }
    }
    let held: Vec<String> = tally
        .iter()
        .map(|(name, holds, of)| format!("{name} on {holds} of {of}"))
        .collect();
    let _ = writeln!(out, "\nHolds (dataset × base rows): {}.\n", held.join("; "));
    if refined.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Refined vs linear decay\n\n\
         Mean over datasets of (refined loss − LD loss) / LD loss: over all datasets, and over \
         those where LD's loss is at least {SEPARABLE_LOSS:e} (on separable data the loss goes \
         to 0 and relative differences of tiny losses dominate the mean).\n"
    );
    let mut t = Table::new([
        "base".to_string(),
        "method".to_string(),
        "all datasets".to_string(),
        format!("LD loss ≥ {SEPARABLE_LOSS:e}"),
        "refined ≤ LD".to_string(),
    ]);
    for &base in &cfg.bases {
        for &m in &refined {
            let pairs: Vec<(f64, f64)> = (0..n)
                .filter_map(|d| {
                    let ld = loss(report, d, base, Method::LinearDecay)?;
                    Some((rel(loss(report, d, base, m)?, ld)?, ld))
                })
                .collect();
            let all: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let kept: Vec<f64> = pairs
                .iter()
                .filter(|p| p.1 >= SEPARABLE_LOSS)
                .map(|p| p.0)
                .collect();
            let holds = pairs.iter().filter(|p| p.0 <= 0.0).count();
            t.push([
                base.label().to_string(),
                m.label().to_string(),
                mean_cell(&all),
                mean_cell(&kept),
                format!("{holds} of {n}"),
            ]);
        }
    }
    out.push_str(&t.markdown());
    out.push('\n');
}

fn schedules(out: &mut String, report: &Report, refined: &[Refinement]) {
    let _ = writeln!(
        out,
        "### Refined schedules\n\n\
         Warmup = updates before the schedule's peak (it emerges from the norms: none is added). \
         Files in refined/: the norm log (`*_norms.csv`, readable by `sflab refine`) and the \
         schedules (`*_l2.json`, `*_l1.json`, usable as `--schedule`).\n"
    );
    let mut t = Table::new(["dataset", "base", "LD lr", "updates", "warmup"]);
    for r in refined {
        let warm: Vec<String> = r
            .schedules
            .iter()
            .map(|s| {
                format!(
                    "{} {} ({:.1} %)",
                    s.method.label(),
                    s.warmup,
                    100.0 * s.warmup as f64 / r.total.max(1) as f64
                )
            })
            .collect();
        t.push([
            report.datasets[r.dataset].name.clone(),
            r.base.label().to_string(),
            fmt_lr(r.lr),
            r.total.to_string(),
            warm.join(", "),
        ]);
    }
    out.push_str(&t.markdown());
    out.push('\n');
}
