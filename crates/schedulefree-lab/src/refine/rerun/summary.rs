//! The numbers `sflab refine-run` reports (`summary.json`) and their markdown (`summary.md`).

use std::fmt::Write as _;

use anyhow::{Context, bail};
use schedulefree::PresetConfig;
use serde::Serialize;

use crate::output::table::Table;
use crate::refine::warmup_length;
use crate::train::{RunResult, TrainConfig};

/// Fractions of the run at which the schedules' values are reported.
pub const FRACTIONS: [f64; 5] = [0.10, 0.25, 0.50, 0.75, 0.90];

/// Shape of one schedule (multipliers, one per update).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleStats {
    /// Updates before the schedule first reaches its maximum (0: it starts at its peak).
    pub warmup_steps: usize,
    /// The same in % of the run.
    pub warmup_percent: f64,
    /// `(fraction of the run, multiplier)` at each of [`FRACTIONS`] (update `⌊f·T⌋`).
    pub values_at: Vec<(f64, f64)>,
}

impl ScheduleStats {
    /// Stats of `values` (empty: all zero).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let warmup = warmup_length(values);
        let values_at = FRACTIONS
            .iter()
            .map(|&f| {
                let i = ((f * n as f64).floor() as usize).min(n.saturating_sub(1));
                (f, values.get(i).copied().unwrap_or(0.0))
            })
            .collect();
        Self {
            warmup_steps: warmup,
            warmup_percent: 100.0 * warmup as f64 / n.max(1) as f64,
            values_at,
        }
    }
}

/// The final evaluation of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalEval {
    /// Held-out loss after the last step.
    pub eval_loss: f64,
    /// Held-out top-1 accuracy after the last step, in `[0, 1]`.
    pub eval_accuracy: f64,
    /// Wall time of the run in seconds.
    pub seconds: f64,
}

impl FinalEval {
    fn of(r: &RunResult) -> anyhow::Result<Self> {
        let last = r.last().context("a run ended without an evaluation")?;
        Ok(Self {
            eval_loss: last.eval_loss,
            eval_accuracy: last.eval_accuracy,
            seconds: r.seconds,
        })
    }
}

/// Everything `summary.md` states.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineRunSummary {
    /// Task name.
    pub task: String,
    /// Run length `T`.
    pub steps: u64,
    /// Peak lr of both runs.
    pub lr: f64,
    /// Minibatch size.
    pub batch_size: usize,
    /// Seed of both runs.
    pub seed: u64,
    /// Configured linear warmup of the linear-decay run, in steps.
    pub linear_decay_warmup: u64,
    /// The linear-decay run.
    pub linear_decay: FinalEval,
    /// The rerun with the refined ℓ1 schedule.
    pub refined: FinalEval,
    /// `100·(refined − linear decay)/linear decay` of the final held-out loss (negative:
    /// refinement helped).
    pub loss_change_percent: f64,
    /// Refined minus linear-decay final accuracy, in percentage points.
    pub accuracy_change_points: f64,
    /// The linear-decay schedule.
    pub linear_decay_schedule: ScheduleStats,
    /// The refined ℓ1 schedule (rerun).
    pub l1: ScheduleStats,
    /// The refined ℓ2 schedule (not run).
    pub l2: ScheduleStats,
}

/// The lr multipliers of a last-iterate preset for updates `0..steps`.
///
/// # Errors
/// A preset without a schedule, or an invalid schedule.
pub fn multipliers(preset: &PresetConfig, steps: u64) -> anyhow::Result<Vec<f64>> {
    let (PresetConfig::AdamW { schedule, .. } | PresetConfig::Sgd { schedule, .. }) = preset else {
        bail!("{} has no schedule", preset.name());
    };
    let s = schedule.build().context("building the schedule")?;
    Ok((0..steps).map(|k| s.value(k)).collect())
}

impl RefineRunSummary {
    /// The summary of a linear-decay run `ld` of `config`, its rerun `refined`, and the
    /// schedules (multipliers per update).
    ///
    /// # Errors
    /// A run without evaluations.
    pub fn new(
        config: &TrainConfig,
        ld: &RunResult,
        refined: &RunResult,
        ld_values: &[f64],
        l1: &[f64],
        l2: &[f64],
    ) -> anyhow::Result<Self> {
        let a = FinalEval::of(ld)?;
        let b = FinalEval::of(refined)?;
        Ok(Self {
            task: config.task.name().to_string(),
            steps: config.steps,
            lr: config.optimizer.lr(),
            batch_size: config.batch_size,
            seed: config.seed,
            linear_decay_warmup: match &config.optimizer {
                PresetConfig::AdamW {
                    schedule: schedulefree::schedule::ScheduleConfig::Linear { warmup, .. },
                    ..
                } => *warmup,
                _ => 0,
            },
            loss_change_percent: 100.0 * (b.eval_loss - a.eval_loss) / a.eval_loss,
            accuracy_change_points: 100.0 * (b.eval_accuracy - a.eval_accuracy),
            linear_decay: a,
            refined: b,
            linear_decay_schedule: ScheduleStats::of(ld_values),
            l1: ScheduleStats::of(l1),
            l2: ScheduleStats::of(l2),
        })
    }

    /// The markdown of `summary.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Schedule refinement on {}\n", self.task);
        let _ = writeln!(
            s,
            "AdamW (β = (0.9, 0.999), no weight decay), T = {} steps, batch {}, peak lr {}, seed {}. \
             Linear decay (warmup {} steps) was run, its per-step gradient ℓ1 norms refined into a \
             schedule (arXiv 2310.07831), and the same run repeated with that schedule.\n",
            self.steps, self.batch_size, self.lr, self.seed, self.linear_decay_warmup
        );
        let mut t =
            Table::new(["run", "final eval loss", "final eval accuracy", "seconds"]).right_from(1);
        for (name, r) in [
            ("linear decay", &self.linear_decay),
            ("refined ℓ1", &self.refined),
        ] {
            t.push([
                name.to_string(),
                format!("{:.4}", r.eval_loss),
                format!("{:.2} %", 100.0 * r.eval_accuracy),
                format!("{:.0}", r.seconds),
            ]);
        }
        s.push_str(&t.markdown());
        let _ = writeln!(
            s,
            "\nRefined vs linear decay: final eval loss {:+.2} % ({}), accuracy {:+.2} points.\n",
            self.loss_change_percent,
            if self.loss_change_percent < 0.0 {
                "lower"
            } else {
                "higher"
            },
            self.accuracy_change_points
        );
        let _ = writeln!(
            s,
            "Warmup that emerged (steps until the schedule first reaches its peak): ℓ1 {} steps \
             ({:.1} % of T), ℓ2 {} steps ({:.1} % of T).\n",
            self.l1.warmup_steps,
            self.l1.warmup_percent,
            self.l2.warmup_steps,
            self.l2.warmup_percent
        );
        let mut headers: Vec<String> = ["schedule", "warmup (steps)", "warmup (% of T)"]
            .map(String::from)
            .into();
        headers.extend(
            self.l1
                .values_at
                .iter()
                .map(|(f, _)| format!("at {:.0} %", 100.0 * f)),
        );
        let mut t = Table::new(headers).right_from(1);
        for (name, st) in [
            ("linear decay", &self.linear_decay_schedule),
            ("refined ℓ1 (rerun)", &self.l1),
            ("refined ℓ2", &self.l2),
        ] {
            let mut row = vec![
                name.to_string(),
                st.warmup_steps.to_string(),
                format!("{:.1}", st.warmup_percent),
            ];
            row.extend(st.values_at.iter().map(|(_, v)| format!("{v:.3}")));
            t.push(row);
        }
        s.push_str(&t.markdown());
        let _ = writeln!(
            s,
            "\nFiles: linear_decay.csv, refined_l1.csv (per-step metrics with grad_l1/grad_l2), \
             refined_l1.json, refined_l2.json (schedules, usable as --schedule), schedules.png/.svg, \
             curves.png/.svg."
        );
        s
    }
}
