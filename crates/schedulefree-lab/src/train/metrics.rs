//! Per-step and per-evaluation metrics of a training run, written as CSV or JSON Lines.
//!
//! # CSV (`.csv`)
//!
//! One header row, then one row per step (`event = step`) and per evaluation
//! (`event = eval`). Columns: `event, step, train_loss, eval_loss, eval_accuracy, lr, c,
//! skipped, grad_l1, grad_l2` (the global gradient norms of the step, as
//! [`schedulefree::StepInfo`] reports them: the input of `sflab refine --log metrics.csv`,
//! which skips the evaluation rows), `lr_factor` (the learner's factor in `lr`), then
//! `grad_norm:<param>` and `weight_norm:<param>` for every parameter (names from the first
//! step). With norm diagnostics on ([`DiagnosticsLevel`]) six more columns per parameter
//! follow, named as the first step's diagnostics: `diag_grad_norm:<param>`,
//! `diag_weight_norm:<param>`, `diag_update_norm:<param>`, `diag_ratio:<param>`,
//! `diag_predicted_ratio:<param>`, `diag_lr:<param>` ([`LayerDiagnostics`]), filled in the
//! rows of the steps that measured them. Cells that do not apply to a row are empty; norms
//! are empty when the run records none.
//!
//! # JSON Lines (`.jsonl`)
//!
//! One object per line: `{"event": "step", "step", "train_loss", "lr", "lr_factor", "c",
//! "skipped", "grad_l1", "grad_l2", "params": [{"name", "weight", "grad"}, ...],
//! "diagnostics": [{"name", "normalized", "grad_norm", "weight_norm", "update_norm", "ratio",
//! "predicted_ratio", "lr", "kappa"}, ...]}` (`diagnostics` only in steps that measured them)
//! or `{"event": "eval", "step", "train_loss", "eval_loss", "eval_accuracy", "lr", "c"}`.
//! Non-finite numbers are written as `null`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use schedulefree::ParamDiagnostics;

use super::EvalRecord;
use crate::nn::norms::ParamNorm;

/// Which steps report norm diagnostics ([`schedulefree_burn::ModelOptimizer::diagnostics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiagnosticsLevel {
    /// None (the optimizer does not measure them).
    #[default]
    Off,
    /// The first step (whose diagnostics name the CSV columns) and every step that is
    /// followed by an evaluation.
    AtEvals,
    /// Every step.
    EveryStep,
}

/// Norm diagnostics of one parameter tensor in one step (Van Laarhoven, arXiv 1706.05350; AdamC,
/// arXiv 2506.02285v2), from
/// [`ParamDiagnostics`]: norms at the gradient point before the update, and the steady state
/// that weight decay predicts for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerDiagnostics {
    /// Module path (`hidden.0.weight`).
    pub name: String,
    /// Whether the parameter is tagged `normalized`.
    pub normalized: bool,
    /// `‖g‖₂` of its gradient.
    pub grad_norm: f64,
    /// `‖w‖₂` of its values.
    pub weight_norm: f64,
    /// `‖u‖₂` of the learner's direction (`= ‖g‖` for SGD without momentum).
    pub update_norm: f64,
    /// `‖g‖/‖w‖`.
    pub ratio: f64,
    /// Steady state of `‖u‖/‖w‖` that the step's decay predicts, `sqrt(2κ − κ²)/γ`
    /// ([`ParamDiagnostics::predicted_ratio`]; for SGD the prediction of `ratio`).
    pub predicted_ratio: f64,
    /// Effective step size `γ` (lr × schedule × learner factor).
    pub lr: f64,
    /// Per-step decay factor `κ`.
    pub kappa: f64,
}

impl From<&ParamDiagnostics> for LayerDiagnostics {
    fn from(d: &ParamDiagnostics) -> Self {
        Self {
            name: d.name.clone(),
            normalized: d.tags.normalized,
            grad_norm: d.grad_norm,
            weight_norm: d.weight_norm,
            update_norm: d.update_norm,
            ratio: d.ratio(),
            predicted_ratio: d.predicted_ratio(),
            lr: d.lr,
            kappa: d.kappa,
        }
    }
}

/// What one optimizer step reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMetrics {
    /// Completed steps after this one (1 for the first).
    pub step: u64,
    /// Minibatch loss at `y` (the point the gradient was taken at), before the update.
    pub train_loss: f64,
    /// Scheduled lr the step used (lr × schedule × learner factor).
    pub lr: f64,
    /// The learner's factor in `lr` ([`schedulefree::GroupStepInfo::lr_factor`]: 1 for
    /// SGD/Adam, `1/b` for AdaGrad-Norm, the Polyak step, Prodigy's `d·bc`).
    pub lr_factor: f64,
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
    /// Norm diagnostics per parameter, in name order (empty unless the sink's
    /// [`MetricsSink::diagnostics`] asks for this step's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<LayerDiagnostics>,
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

    /// Which steps should carry [`StepMetrics::diagnostics`] (turning them on makes the
    /// optimizer measure norms in every step: one extra pass over the weights).
    fn diagnostics(&self) -> DiagnosticsLevel {
        DiagnosticsLevel::Off
    }
}

/// Keeps everything in memory (for tests and callers that post-process).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemorySink {
    /// Steps in order.
    pub steps: Vec<StepMetrics>,
    /// Evaluations in order.
    pub evals: Vec<EvalRecord>,
    /// Which steps get norm diagnostics (default none).
    pub diagnostics: DiagnosticsLevel,
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
    fn diagnostics(&self) -> DiagnosticsLevel {
        self.diagnostics
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
    /// Parameter names of the norm columns (set with the header).
    params: Option<Vec<String>>,
    /// Parameter names of the diagnostics columns (set with the header).
    diag: Vec<String>,
    level: DiagnosticsLevel,
}

const CSV_FIXED: [&str; 11] = [
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
    "lr_factor",
];

/// Prefixes of the diagnostics columns, in column order.
const DIAG_COLUMNS: [&str; 6] = [
    "diag_grad_norm",
    "diag_weight_norm",
    "diag_update_norm",
    "diag_ratio",
    "diag_predicted_ratio",
    "diag_lr",
];

fn diag_cells(d: &LayerDiagnostics) -> [f64; 6] {
    [
        d.grad_norm,
        d.weight_norm,
        d.update_norm,
        d.ratio,
        d.predicted_ratio,
        d.lr,
    ]
}

impl<W: Write> CsvSink<W> {
    /// A sink writing to `w`, without diagnostics.
    pub fn new(w: W) -> Self {
        Self {
            out: csv::Writer::from_writer(w),
            params: None,
            diag: Vec::new(),
            level: DiagnosticsLevel::Off,
        }
    }

    /// The same sink asking for norm diagnostics at `level`.
    pub fn with_diagnostics(mut self, level: DiagnosticsLevel) -> Self {
        self.level = level;
        self
    }

    fn header(&mut self, names: Vec<String>, diag: Vec<String>) -> anyhow::Result<()> {
        let mut row: Vec<String> = CSV_FIXED.iter().map(|s| s.to_string()).collect();
        row.extend(names.iter().map(|n| format!("grad_norm:{n}")));
        row.extend(names.iter().map(|n| format!("weight_norm:{n}")));
        for prefix in DIAG_COLUMNS {
            row.extend(diag.iter().map(|n| format!("{prefix}:{n}")));
        }
        self.out.write_record(&row)?;
        self.params = Some(names);
        self.diag = diag;
        Ok(())
    }

    fn width(&self) -> usize {
        self.params.as_ref().map_or(0, Vec::len)
    }

    /// The diagnostics cells of a step row (all empty if the step measured none).
    fn diag_row(&self, m: &StepMetrics) -> anyhow::Result<Vec<String>> {
        let n = self.diag.len();
        if m.diagnostics.is_empty() {
            return Ok(vec![String::new(); DIAG_COLUMNS.len() * n]);
        }
        if m.diagnostics.len() != n
            || m.diagnostics
                .iter()
                .zip(&self.diag)
                .any(|(d, h)| d.name != *h)
        {
            bail!(
                "step {}: diagnostics of {:?}, the CSV header has {:?} (the first step's)",
                m.step,
                m.diagnostics
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>(),
                self.diag
            );
        }
        let cells: Vec<[f64; 6]> = m.diagnostics.iter().map(diag_cells).collect();
        Ok((0..DIAG_COLUMNS.len())
            .flat_map(|k| cells.iter().map(move |c| cell(c[k])))
            .collect())
    }
}

impl<W: Write> MetricsSink for CsvSink<W> {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        if self.params.is_none() {
            let diag = if self.level == DiagnosticsLevel::Off {
                Vec::new()
            } else {
                m.diagnostics.iter().map(|d| d.name.clone()).collect()
            };
            self.header(m.params.iter().map(|p| p.name.clone()).collect(), diag)?;
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
            cell(m.lr_factor),
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
        row.extend(self.diag_row(m)?);
        self.out.write_record(&row)?;
        Ok(())
    }

    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        if self.params.is_none() {
            self.header(Vec::new(), Vec::new())?;
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
            String::new(),
        ];
        row.extend(std::iter::repeat_n(
            String::new(),
            2 * self.width() + DIAG_COLUMNS.len() * self.diag.len(),
        ));
        self.out.write_record(&row)?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn diagnostics(&self) -> DiagnosticsLevel {
        self.level
    }
}

/// JSON Lines writer (format in the module docs).
#[derive(Debug)]
pub struct JsonlSink<W: Write> {
    out: W,
    level: DiagnosticsLevel,
}

impl<W: Write> JsonlSink<W> {
    /// A sink writing to `w`, without diagnostics.
    pub fn new(w: W) -> Self {
        Self {
            out: w,
            level: DiagnosticsLevel::Off,
        }
    }

    /// The same sink asking for norm diagnostics at `level`.
    pub fn with_diagnostics(mut self, level: DiagnosticsLevel) -> Self {
        self.level = level;
        self
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

    fn diagnostics(&self) -> DiagnosticsLevel {
        self.level
    }
}

/// A CSV or JSON Lines sink writing to `path`, chosen by its extension (`.csv`, `.jsonl`);
/// parent folders are created.
///
/// # Errors
/// Another extension, or the file cannot be created.
pub fn open_sink(path: &Path) -> anyhow::Result<Box<dyn MetricsSink>> {
    open_sink_with(path, DiagnosticsLevel::Off)
}

/// [`open_sink`] asking for norm diagnostics at `level`.
///
/// # Errors
/// As [`open_sink`].
pub fn open_sink_with(
    path: &Path,
    level: DiagnosticsLevel,
) -> anyhow::Result<Box<dyn MetricsSink>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "jsonl") {
        bail!("metrics file {} must end in .csv or .jsonl", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file =
        BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    Ok(if ext == "csv" {
        Box::new(CsvSink::new(file).with_diagnostics(level))
    } else {
        Box::new(JsonlSink::new(file).with_diagnostics(level))
    })
}
