//! Aggregation over seeds, best-lr selection, wins, and the CSV / markdown outputs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::config::{Base, ConvexConfig, Method, Suite, fmt_lr};
use super::methods::{
    ADAM_BETA2_AVERAGING, ADAM_BETAS, ADAM_EPS, SF_BETA, SGD_MOMENTUM, STEP_GAMMA, STEP_MILESTONES,
};
use super::run::{Prepared, RunResult};
use crate::output::csv::{opt, short, write_rows};
use crate::output::table::{Table, bold_if};

/// Mean and standard error of the mean over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean (`+∞`/NaN if a run diverged).
    pub mean: f64,
    /// Standard error `s/√n` with the sample standard deviation (0 for one seed).
    pub se: f64,
    /// Number of values.
    pub n: usize,
}

impl Stat {
    /// Mean and standard error of `v`.
    pub fn of(v: &[f64]) -> Stat {
        let n = v.len();
        if n == 0 {
            return Stat {
                mean: f64::NAN,
                se: f64::NAN,
                n,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let se = if n < 2 || !mean.is_finite() {
            0.0
        } else {
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        };
        Stat { mean, se, n }
    }
}

/// One (dataset, base, method, lr) configuration aggregated over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Index into [`Report::datasets`].
    pub dataset: usize,
    /// Base learner.
    pub base: Base,
    /// Method.
    pub method: Method,
    /// Peak lr.
    pub lr: f64,
    /// Runs that diverged (their loss counts as `+∞`).
    pub diverged: usize,
    /// Final train loss of the returned point.
    pub train_loss: Stat,
    /// Final train accuracy.
    pub train_acc: Stat,
    /// Final test accuracy, if the dataset has a test split.
    pub test_acc: Option<Stat>,
}

/// The mean training curve of one method at its best lr.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanCurve {
    /// Index into [`Report::datasets`].
    pub dataset: usize,
    /// Base learner.
    pub base: Base,
    /// Method.
    pub method: Method,
    /// The lr (the method's best).
    pub lr: f64,
    /// `(step, mean train loss over the seeds that reached it)`.
    pub points: Vec<(u64, f64)>,
}

/// Facts about a dataset shown in the tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInfo {
    /// Name.
    pub name: String,
    /// Train rows.
    pub rows: usize,
    /// Test rows, if there is a test split.
    pub test_rows: Option<usize>,
    /// Features.
    pub d: usize,
    /// Classes.
    pub classes: usize,
}

/// Everything `sflab convex` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Datasets in report order.
    pub datasets: Vec<DatasetInfo>,
    /// Every (dataset, base, method, lr), in sweep order.
    pub grid: Vec<Aggregate>,
    /// The best lr of every (dataset, base, method), chosen by mean final train loss.
    pub best: Vec<Aggregate>,
    /// Mean curves at the best lrs (same order as `best`).
    pub curves: Vec<MeanCurve>,
}

fn finite_or_inf(v: f64) -> f64 {
    if v.is_nan() { f64::INFINITY } else { v }
}

impl Report {
    /// Aggregate `results` (any order) over seeds and pick each method's best lr: the lowest
    /// mean final train loss (a diverged seed makes the mean `+∞`; ties go to the earlier lr
    /// of the grid).
    pub fn build(cfg: &ConvexConfig, datasets: &[Prepared], results: &[RunResult]) -> Report {
        let infos = datasets
            .iter()
            .map(|p| DatasetInfo {
                name: p.data.name.clone(),
                rows: p.data.train.rows(),
                test_rows: p.data.test.as_ref().map(|t| t.rows()),
                d: p.data.d,
                classes: p.data.classes,
            })
            .collect();
        let mut groups: HashMap<(usize, Base, Method, u64), Vec<&RunResult>> = HashMap::new();
        for r in results {
            let s = &r.spec;
            groups
                .entry((s.dataset, s.base, s.method, s.lr.to_bits()))
                .or_default()
                .push(r);
        }
        let mut grid = Vec::new();
        let mut best = Vec::new();
        let mut curves = Vec::new();
        for dataset in 0..datasets.len() {
            for &base in &cfg.bases {
                for &method in &cfg.methods {
                    let mut candidates: Vec<(Aggregate, Vec<&RunResult>)> = Vec::new();
                    for &lr in cfg.lrs.of(base) {
                        let Some(runs) = groups.get(&(dataset, base, method, lr.to_bits())) else {
                            continue;
                        };
                        let agg = aggregate(dataset, base, method, lr, runs);
                        grid.push(agg.clone());
                        candidates.push((agg, runs.clone()));
                    }
                    let mut pick: Option<(Aggregate, Vec<&RunResult>)> = None;
                    for c in candidates {
                        let better = match &pick {
                            None => true,
                            Some(p) => {
                                finite_or_inf(c.0.train_loss.mean)
                                    < finite_or_inf(p.0.train_loss.mean)
                            }
                        };
                        if better {
                            pick = Some(c);
                        }
                    }
                    if let Some((agg, runs)) = pick {
                        curves.push(MeanCurve {
                            dataset,
                            base,
                            method,
                            lr: agg.lr,
                            points: mean_curve(&runs),
                        });
                        best.push(agg);
                    }
                }
            }
        }
        Report {
            datasets: infos,
            grid,
            best,
            curves,
        }
    }

    /// The best-lr aggregate of `(dataset, base, method)`.
    pub fn best_of(&self, dataset: usize, base: Base, method: Method) -> Option<&Aggregate> {
        self.best
            .iter()
            .find(|a| a.dataset == dataset && a.base == base && a.method == method)
    }

    /// Methods whose mean final train accuracy, rounded as displayed (0.01 %), is the best of
    /// `(dataset, base)`: the accuracy "winners" (ties all win).
    pub fn acc_winners(&self, dataset: usize, base: Base) -> Vec<Method> {
        winners(
            self.best
                .iter()
                .filter(|a| a.dataset == dataset && a.base == base),
            |a| Some(acc_key(a.train_acc.mean)),
        )
    }

    /// Methods with the lowest mean final train loss of `(dataset, base)`, compared as
    /// displayed (4 significant digits; ties all win).
    pub fn loss_winners(&self, dataset: usize, base: Base) -> Vec<Method> {
        winners(
            self.best
                .iter()
                .filter(|a| a.dataset == dataset && a.base == base),
            |a| loss_key(a.train_loss.mean).map(|k| -k),
        )
    }

    /// Methods with the best mean test accuracy of `(dataset, base)` (ties all win); empty
    /// without a test split.
    pub fn test_winners(&self, dataset: usize, base: Base) -> Vec<Method> {
        winners(
            self.best
                .iter()
                .filter(|a| a.dataset == dataset && a.base == base),
            |a| a.test_acc.map(|t| acc_key(t.mean)),
        )
    }
}

fn aggregate(
    dataset: usize,
    base: Base,
    method: Method,
    lr: f64,
    runs: &[&RunResult],
) -> Aggregate {
    let losses: Vec<f64> = runs.iter().map(|r| r.final_loss()).collect();
    let accs: Vec<f64> = runs
        .iter()
        .map(|r| {
            if r.diverged {
                f64::NAN
            } else {
                r.last().map_or(f64::NAN, |p| p.train_acc)
            }
        })
        .collect();
    let tests: Option<Vec<f64>> = runs
        .iter()
        .map(|r| {
            r.last()
                .and_then(|p| p.test_acc)
                .map(|t| if r.diverged { f64::NAN } else { t })
        })
        .collect();
    Aggregate {
        dataset,
        base,
        method,
        lr,
        diverged: runs.iter().filter(|r| r.diverged).count(),
        train_loss: Stat::of(&losses),
        train_acc: Stat::of(&accs),
        test_acc: tests.map(|t| Stat::of(&t)),
    }
}

fn mean_curve(runs: &[&RunResult]) -> Vec<(u64, f64)> {
    let len = runs.iter().map(|r| r.curve.len()).max().unwrap_or(0);
    (0..len)
        .filter_map(|i| {
            let pts: Vec<_> = runs
                .iter()
                .filter_map(|r| r.curve.get(i))
                .filter(|p| p.train_loss.is_finite())
                .collect();
            let first = pts.first()?;
            Some((
                first.step,
                pts.iter().map(|p| p.train_loss).sum::<f64>() / pts.len() as f64,
            ))
        })
        .collect()
}

fn acc_key(acc: f64) -> i64 {
    if acc.is_finite() {
        (acc * 1e4).round() as i64
    } else {
        i64::MIN
    }
}

/// Loss rounded to 4 significant digits, as an orderable integer key (mantissa and exponent).
fn loss_key(loss: f64) -> Option<i64> {
    if !loss.is_finite() {
        return None;
    }
    let s = format!("{loss:.3e}");
    let (m, e) = s.split_once('e')?;
    let m: f64 = m.parse().ok()?;
    let e: i64 = e.parse().ok()?;
    if m == 0.0 {
        return Some(i64::MIN / 2);
    }
    Some(e * 100_000 + (m * 1000.0).round() as i64)
}

fn winners<'a>(
    rows: impl Iterator<Item = &'a Aggregate>,
    key: impl Fn(&Aggregate) -> Option<i64>,
) -> Vec<Method> {
    let keyed: Vec<(Method, i64)> = rows.filter_map(|a| key(a).map(|k| (a.method, k))).collect();
    let Some(top) = keyed.iter().map(|(_, k)| *k).max() else {
        return Vec::new();
    };
    if top == i64::MIN {
        return Vec::new();
    }
    keyed
        .into_iter()
        .filter(|(_, k)| *k == top)
        .map(|(m, _)| m)
        .collect()
}

/// Write `curves.csv`: one row per evaluation of every run (`dataset, method, base, lr, seed,
/// step, epoch, train_loss, train_acc, test_acc`; `test_acc` empty without a test split).
///
/// # Errors
/// I/O errors.
pub fn write_curves(path: &Path, report: &Report, results: &[RunResult]) -> anyhow::Result<()> {
    let header = [
        "dataset",
        "method",
        "base",
        "lr",
        "seed",
        "step",
        "epoch",
        "train_loss",
        "train_acc",
        "test_acc",
    ];
    let rows = results.iter().flat_map(|r| {
        let s = &r.spec;
        let name = &report.datasets[s.dataset].name;
        r.curve.iter().map(move |p| {
            [
                name.clone(),
                s.method.name().to_string(),
                s.base.name().to_string(),
                s.lr.to_string(),
                s.seed.to_string(),
                p.step.to_string(),
                p.epoch.to_string(),
                short(p.train_loss),
                short(p.train_acc),
                p.test_acc.map(short).unwrap_or_default(),
            ]
        })
    });
    write_rows(path, header, rows)
}

fn aggregate_rows(
    path: &Path,
    report: &Report,
    rows: &[Aggregate],
    with_wins: bool,
) -> anyhow::Result<()> {
    let mut header = vec![
        "dataset",
        "base",
        "method",
        "lr",
        "seeds",
        "diverged",
        "train_loss_mean",
        "train_loss_se",
        "train_acc_mean",
        "train_acc_se",
        "test_acc_mean",
        "test_acc_se",
    ];
    if with_wins {
        header.extend(["acc_win", "loss_win"]);
    }
    let rows = rows.iter().map(|a| {
        let mut rec = vec![
            report.datasets[a.dataset].name.clone(),
            a.base.name().to_string(),
            a.method.name().to_string(),
            a.lr.to_string(),
            a.train_loss.n.to_string(),
            a.diverged.to_string(),
            a.train_loss.mean.to_string(),
            a.train_loss.se.to_string(),
            a.train_acc.mean.to_string(),
            a.train_acc.se.to_string(),
            opt(a.test_acc.map(|t| t.mean)),
            opt(a.test_acc.map(|t| t.se)),
        ];
        if with_wins {
            rec.push(
                report
                    .acc_winners(a.dataset, a.base)
                    .contains(&a.method)
                    .to_string(),
            );
            rec.push(
                report
                    .loss_winners(a.dataset, a.base)
                    .contains(&a.method)
                    .to_string(),
            );
        }
        rec
    });
    write_rows(path, header, rows)
}

/// Write `summary.csv`: one row per (dataset, base, method) at its best lr, with mean and
/// standard error over seeds and whether the method wins the row on accuracy / loss.
///
/// # Errors
/// I/O errors.
pub fn write_summary(path: &Path, report: &Report) -> anyhow::Result<()> {
    aggregate_rows(path, report, &report.best, true)
}

/// Write `grid.csv`: every (dataset, base, method, lr) aggregated over seeds (lr sensitivity).
///
/// # Errors
/// I/O errors.
pub fn write_grid(path: &Path, report: &Report) -> anyhow::Result<()> {
    aggregate_rows(path, report, &report.grid, false)
}

fn pct(s: Stat) -> String {
    if s.mean.is_finite() {
        format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.se)
    } else {
        "diverged".into()
    }
}

/// A loss for the tables: 4 decimals from 0.01 up, else 3 significant digits in scientific
/// form; `∞` for a non-finite value.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        "∞".into()
    } else if v == 0.0 {
        "0".into()
    } else if v.abs() >= 0.01 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

fn loss_cell(s: Stat) -> String {
    if s.mean.is_finite() {
        format!("{} ± {}", num(s.mean), num(s.se))
    } else {
        "diverged".into()
    }
}

fn dataset_cell(info: &DatasetInfo) -> String {
    let test = info
        .test_rows
        .map(|t| format!(", test {t}"))
        .unwrap_or_default();
    format!(
        "{} ({}×{}, {} cl.{test})",
        info.name, info.rows, info.d, info.classes
    )
}

/// One markdown table: rows datasets, columns methods, cells from `cell`, winners in bold,
/// and (with `winners`) a final row counting wins.
fn table(
    out: &mut String,
    cfg: &ConvexConfig,
    report: &Report,
    base: Base,
    rows: &[usize],
    cell: impl Fn(&Aggregate) -> String,
    winners: Option<&dyn Fn(usize) -> Vec<Method>>,
) {
    let mut t = Table::new(
        std::iter::once("dataset".to_string())
            .chain(cfg.methods.iter().map(|m| m.label().to_string())),
    );
    let mut wins: HashMap<Method, usize> = HashMap::new();
    for &d in rows {
        let win = winners.map(|w| w(d)).unwrap_or_default();
        for m in &win {
            *wins.entry(*m).or_default() += 1;
        }
        let mut row = vec![dataset_cell(&report.datasets[d])];
        for &m in &cfg.methods {
            row.push(
                report
                    .best_of(d, base, m)
                    .map(|a| bold_if(cell(a), win.contains(&m)))
                    .unwrap_or_default(),
            );
        }
        t.push(row);
    }
    if winners.is_some() {
        let mut row = vec![format!("*wins (of {})*", rows.len())];
        row.extend(
            cfg.methods
                .iter()
                .map(|m| wins.get(m).copied().unwrap_or(0).to_string()),
        );
        t.push(row);
    }
    out.push_str(&t.markdown());
    out.push('\n');
}

/// A short description of the protocol (also used in the markdown header).
pub fn protocol(cfg: &ConvexConfig) -> String {
    let grid = |b: Base| {
        let g = cfg.lrs.of(b);
        match (g.first(), g.last()) {
            (Some(a), Some(z)) if g.len() > 1 => {
                format!("{} values {}…{}", g.len(), fmt_lr(*a), fmt_lr(*z))
            }
            (Some(a), _) => fmt_lr(*a),
            _ => "—".into(),
        }
    };
    let bases: Vec<String> = cfg
        .bases
        .iter()
        .map(|b| format!("{} lr grid: {}", b.label(), grid(*b)))
        .collect();
    format!(
        "Multinomial logistic regression (softmax cross-entropy, zero init, f32, features standardised \
         with train-split statistics, no weight decay). Batch {batch}, {epochs} epochs, seeds 0..{seeds} \
         (the seed drives the per-epoch shuffle; all methods and lrs share it), linear warmup over \
         {warm}% of the updates for every method. {bases}. Last-iterate methods (Const, LD = linear decay \
         to 0, Cosine to 0) use SGD momentum {mom} / Adam β = ({b1}, {b2}); the averaging methods (PR = \
         Polyak–Ruppert, Primal, SF = Schedule-Free β = {sf}) use plain SGD / Adam β = (0, {b2a}), \
         averaging weights ∝ lr_max²; Adam ε = {eps:e}.{extra} The returned point x is evaluated. Best lr per \
         method = lowest mean final train loss; cells are mean ± standard error over seeds at that lr; \
         bold = best in the row (as displayed); wins count bold cells.",
        batch = cfg.batch,
        epochs = cfg.epochs,
        seeds = cfg.seeds,
        warm = 100.0 * cfg.warmup_fraction,
        bases = bases.join("; "),
        mom = SGD_MOMENTUM,
        b1 = ADAM_BETAS.0,
        b2 = ADAM_BETAS.1,
        sf = SF_BETA,
        b2a = ADAM_BETA2_AVERAGING,
        eps = ADAM_EPS,
        extra = other_methods(cfg),
    )
}

/// A sentence on the last-iterate methods outside the default set, if any ran.
fn other_methods(cfg: &ConvexConfig) -> String {
    let mut parts = Vec::new();
    for m in &cfg.methods {
        match m {
            Method::InverseSqrt => parts.push("1/√t = warmup then sqrt(W/(k+1))".to_string()),
            Method::Step => parts.push(format!(
                "Step = warmup then ×{STEP_GAMMA} after {:.0} % and {:.0} % of the updates",
                100.0 * STEP_MILESTONES[0],
                100.0 * STEP_MILESTONES[1]
            )),
            Method::RefinedL2 | Method::RefinedL1
                if !parts.iter().any(|p| p.starts_with("Refined")) =>
            {
                parts.push(
                    "Refined ℓ2 / ℓ1 = schedules refined from the gradient norms of an LD run at \
                     LD's best lr (seed 0), used as is"
                        .to_string(),
                );
            }
            Method::Custom => match &cfg.schedule {
                Some(s) => parts.push(format!("Custom = {} used as is", s.path.display())),
                None => parts.push("Custom = the --schedule file used as is".to_string()),
            },
            _ => {}
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(
            " Also last-iterate with the same momentum learners: {}.",
            parts.join("; ")
        )
    }
}

/// The markdown report: per base, tables of final train accuracy, final train loss, test
/// accuracy (datasets with a test split) and best lr.
pub fn markdown(cfg: &ConvexConfig, report: &Report) -> String {
    let mut out = String::new();
    out.push_str(match cfg.suite {
        Some(Suite::Schedules) => {
            "# sflab convex --suite schedules: learning-rate schedules on logistic regression \
             (arXiv 2310.07831)\n\n"
        }
        None => {
            "# sflab convex: Schedule-Free vs schedules and averaging (arXiv 2405.15682, Figure 7)\n\n"
        }
    });
    out.push_str(&protocol(cfg));
    out.push_str("\n\n");
    let all: Vec<usize> = (0..report.datasets.len()).collect();
    let with_test: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&d| report.datasets[d].test_rows.is_some())
        .collect();
    for &base in &cfg.bases {
        let _ = writeln!(out, "## {} base\n", base.label());
        let _ = writeln!(out, "### Final train accuracy (%), mean ± SE\n");
        table(
            &mut out,
            cfg,
            report,
            base,
            &all,
            |a| pct(a.train_acc),
            Some(&|d| report.acc_winners(d, base)),
        );
        let _ = writeln!(out, "### Final train loss, mean ± SE\n");
        table(
            &mut out,
            cfg,
            report,
            base,
            &all,
            |a| loss_cell(a.train_loss),
            Some(&|d| report.loss_winners(d, base)),
        );
        if !with_test.is_empty() {
            let _ = writeln!(
                out,
                "### Test accuracy (%), mean ± SE (at the lr chosen by train loss)\n"
            );
            table(
                &mut out,
                cfg,
                report,
                base,
                &with_test,
                |a| a.test_acc.map(pct).unwrap_or_default(),
                Some(&|d| report.test_winners(d, base)),
            );
        }
        let _ = writeln!(out, "### Best lr\n");
        table(
            &mut out,
            cfg,
            report,
            base,
            &all,
            |a| {
                let g = cfg.lrs.of(base);
                let edge = g.len() > 1 && (a.lr == g[0] || Some(&a.lr) == g.last());
                format!("{}{}", fmt_lr(a.lr), if edge { " (edge)" } else { "" })
            },
            None,
        );
    }
    out.push_str(
        "\"(edge)\" marks a best lr at the end of the grid (widen it with --lr-min/--lr-max). \
         Files: curves.csv (every evaluation of every run), grid.csv (every lr), summary.csv (best lrs), \
         plots/*.png (train loss of x vs step at the best lr, mean over seeds).\n",
    );
    out
}
