//! Per-step and per-evaluation metrics of a training run, written as CSV or JSON Lines.
//!
//! # CSV (`.csv`)
//!
//! One header row, then one row per step (`event = step`) and per evaluation
//! (`event = eval`). Columns: `event, step, train_loss, eval_loss, eval_accuracy, lr, c,
//! skipped, grad_l1, grad_l2` (the global gradient norms of the step, as
//! [`schedulefree::StepInfo`] reports them: the input of `sflab refine --log metrics.csv`,
//! which skips the evaluation rows), then `grad_norm:<param>` and `weight_norm:<param>` for every parameter (names
//! from the first step). Cells that do not apply to a row are empty; norms are empty when
//! the run records none.
//!
//! # JSON Lines (`.jsonl`)
//!
//! One object per line: `{"event": "step", "step", "train_loss", "lr", "c", "skipped",
//! "grad_l1", "grad_l2", "params": [{"name", "weight", "grad"}, ...]}` or `{"event": "eval", "step", "train_loss",
//! "eval_loss", "eval_accuracy", "lr", "c"}`. Non-finite numbers are written as `null`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use super::EvalRecord;
use crate::nn::norms::ParamNorm;

/// What one optimizer step reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMetrics {
    /// Completed steps after this one (1 for the first).
    pub step: u64,
    /// Minibatch loss at `y` (the point the gradient was taken at), before the update.
    pub train_loss: f64,
    /// Scheduled lr the step used.
    pub lr: f64,
    /// Averaging weight `c` of the step (1 for last-iterate presets).
    pub c: f64,
    /// Whether the optimizer skipped the step (non-finite gradient).
    pub skipped: bool,
    /// `‖g‖₁` over every gradient of the step (NaN if skipped; the input of ℓ1 refinement).
    pub grad_l1: f64,
    /// `‖g‖₂` over every gradient of the step (NaN if skipped; the input of ℓ2 refinement).
    pub grad_l2: f64,
    /// Weight and gradient norms per parameter, at `y` before the update (empty unless the
    /// run was asked for them).
    pub params: Vec<ParamNorm>,
}

/// Receives the metrics of a run as it goes.
pub trait MetricsSink {
    /// Records one step.
    ///
    /// # Errors
    /// Write failures.
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()>;

    /// Records one evaluation.
    ///
    /// # Errors
    /// Write failures.
    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()>;

    /// Flushes buffered output (called at the end of a run).
    ///
    /// # Errors
    /// Write failures.
    fn flush(&mut self) -> anyhow::Result<()>;

    /// Whether per-parameter norms should be computed for [`MetricsSink::step`] (they cost
    /// about one extra pass over the weights per step).
    fn wants_param_norms(&self) -> bool {
        true
    }
}

/// Keeps everything in memory (for tests and callers that post-process).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemorySink {
    /// Steps in order.
    pub steps: Vec<StepMetrics>,
    /// Evaluations in order.
    pub evals: Vec<EvalRecord>,
}

impl MetricsSink for MemorySink {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        self.steps.push(m.clone());
        Ok(())
    }
    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        self.evals.push(r.clone());
        Ok(())
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn cell(v: f64) -> String {
    // `{}` of f64 is the shortest string that parses back to the same value.
    format!("{v}")
}

/// CSV writer (format in the module docs).
#[derive(Debug)]
pub struct CsvSink<W: Write> {
    out: csv::Writer<W>,
    params: Option<Vec<String>>,
}

const CSV_FIXED: [&str; 10] = [
    "event",
    "step",
    "train_loss",
    "eval_loss",
    "eval_accuracy",
    "lr",
    "c",
    "skipped",
    "grad_l1",
    "grad_l2",
];

impl<W: Write> CsvSink<W> {
    /// A sink writing to `w`.
    pub fn new(w: W) -> Self {
        Self {
            out: csv::Writer::from_writer(w),
            params: None,
        }
    }

    fn header(&mut self, names: Vec<String>) -> anyhow::Result<()> {
        let mut row: Vec<String> = CSV_FIXED.iter().map(|s| s.to_string()).collect();
        row.extend(names.iter().map(|n| format!("grad_norm:{n}")));
        row.extend(names.iter().map(|n| format!("weight_norm:{n}")));
        self.out.write_record(&row)?;
        self.params = Some(names);
        Ok(())
    }

    fn width(&self) -> usize {
        self.params.as_ref().map_or(0, Vec::len)
    }
}

impl<W: Write> MetricsSink for CsvSink<W> {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        if self.params.is_none() {
            self.header(m.params.iter().map(|p| p.name.clone()).collect())?;
        }
        let n = self.width();
        let mut row = vec![
            "step".to_string(),
            m.step.to_string(),
            cell(m.train_loss),
            String::new(),
            String::new(),
            cell(m.lr),
            cell(m.c),
            m.skipped.to_string(),
            cell(m.grad_l1),
            cell(m.grad_l2),
        ];
        if m.params.len() == n {
            row.extend(m.params.iter().map(|p| cell(p.grad)));
            row.extend(m.params.iter().map(|p| cell(p.weight)));
        } else if m.params.is_empty() {
            row.extend(std::iter::repeat_n(String::new(), 2 * n));
        } else {
            bail!(
                "step {}: {} parameter norms, the CSV header has {n}",
                m.step,
                m.params.len()
            );
        }
        self.out.write_record(&row)?;
        Ok(())
    }

    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        if self.params.is_none() {
            self.header(Vec::new())?;
        }
        let mut row = vec![
            "eval".to_string(),
            r.step.to_string(),
            cell(r.train_loss),
            cell(r.eval_loss),
            cell(r.eval_accuracy),
            cell(r.lr),
            cell(r.c),
            String::new(),
            String::new(),
            String::new(),
        ];
        row.extend(std::iter::repeat_n(String::new(), 2 * self.width()));
        self.out.write_record(&row)?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// JSON Lines writer (format in the module docs).
#[derive(Debug)]
pub struct JsonlSink<W: Write> {
    out: W,
}

impl<W: Write> JsonlSink<W> {
    /// A sink writing to `w`.
    pub fn new(w: W) -> Self {
        Self { out: w }
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line<'a> {
    Step(&'a StepMetrics),
    Eval(&'a EvalRecord),
}

impl<W: Write> MetricsSink for JsonlSink<W> {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, &Line::Step(m))?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, &Line::Eval(r))?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// A CSV or JSON Lines sink writing to `path`, chosen by its extension (`.csv`, `.jsonl`);
/// parent folders are created.
///
/// # Errors
/// Another extension, or the file cannot be created.
pub fn open_sink(path: &Path) -> anyhow::Result<Box<dyn MetricsSink>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "jsonl") {
        bail!(
            "metrics file {} must end in .csv or .jsonl",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    Ok(if ext == "csv" {
        Box::new(CsvSink::new(file))
    } else {
        Box::new(JsonlSink::new(file))
    })
}
