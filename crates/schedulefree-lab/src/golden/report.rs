//! Per-quantity error statistics and per-fixture reports (human tables and JSON).

use std::fmt::Write as _;

use serde::Serialize;

use super::fixture::FixtureDtype;

/// Open loop (recorded gradients) or closed loop (gradients recomputed from our own `y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopMode {
    /// Feed `steps[t−1].grad`.
    Open,
    /// Recompute `g_i = A_i y_i − b_i + noise[t−1][i]` from our own `y`.
    Closed,
}

impl LoopMode {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoopMode::Open => "open",
            LoopMode::Closed => "closed",
        }
    }
}

/// Where the largest relative error of a quantity occurred.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Location {
    /// Step `t` (1-based).
    pub step: usize,
    /// Parameter index (tensors) or group index (group scalars).
    pub index: usize,
    /// Element within the tensor (0 for scalars).
    pub element: usize,
}

/// Error statistics of one recorded quantity over all steps and elements:
/// `abs = |ours − expected|`, `rel = abs / max(1, |expected|)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantityError {
    /// Quantity name: `y`, `x`, `params`, `state.<buffer>`, `group.<scalar>`, `grad`, ...
    pub name: String,
    /// Number of values compared.
    pub count: usize,
    /// Largest absolute error.
    pub max_abs: f64,
    /// Largest relative error.
    pub max_rel: f64,
    /// Where `max_rel` occurred (`None` before the first comparison).
    pub worst: Option<Location>,
}

impl QuantityError {
    /// The summary-table column this quantity belongs to.
    pub fn category(&self) -> Category {
        match self.name.as_str() {
            "y" | "y (train())" => Category::Y,
            "x" | "params" | "x (eval())" => Category::X,
            n if n.starts_with("state.") => Category::State,
            n if n.starts_with("group.") => Category::Groups,
            _ => Category::Other,
        }
    }
}

/// Columns of the summary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Training point `y`.
    Y,
    /// Returned point `x` or plain `params`.
    X,
    /// State buffers.
    State,
    /// Group scalars.
    Groups,
    /// Anything else (the closed-loop gradient).
    Other,
}

/// `|a − b|` and `|a − b| / max(1, |b|)`, with NaN/inf counted as infinitely wrong unless
/// both sides agree.
pub fn errors(got: f64, expected: f64) -> (f64, f64) {
    if got == expected || (got.is_nan() && expected.is_nan()) {
        return (0.0, 0.0);
    }
    let abs = (got - expected).abs();
    if !abs.is_finite() {
        return (f64::INFINITY, f64::INFINITY);
    }
    (abs, abs / expected.abs().max(1.0))
}

/// Quantities in first-seen order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorTable {
    quantities: Vec<QuantityError>,
}

impl ErrorTable {
    fn entry(&mut self, name: &str) -> &mut QuantityError {
        let pos = match self.quantities.iter().position(|q| q.name == name) {
            Some(p) => p,
            None => {
                self.quantities.push(QuantityError {
                    name: name.to_string(),
                    count: 0,
                    max_abs: 0.0,
                    max_rel: 0.0,
                    worst: None,
                });
                self.quantities.len() - 1
            }
        };
        &mut self.quantities[pos]
    }

    /// Compare one value.
    pub fn record(&mut self, name: &str, at: Location, got: f64, expected: f64) {
        let (abs, rel) = errors(got, expected);
        let q = self.entry(name);
        q.count += 1;
        q.max_abs = q.max_abs.max(abs);
        if q.worst.is_none() || rel > q.max_rel {
            q.max_rel = rel;
            q.worst = Some(at);
        }
    }

    /// Compare a tensor element by element (a length mismatch counts as an infinite error).
    pub fn record_tensor(
        &mut self,
        name: &str,
        step: usize,
        index: usize,
        got: &[f64],
        expected: &[f64],
    ) {
        if got.len() != expected.len() {
            self.record(
                name,
                Location {
                    step,
                    index,
                    element: 0,
                },
                f64::NAN,
                0.0,
            );
            return;
        }
        for (element, (g, e)) in got.iter().zip(expected).enumerate() {
            self.record(
                name,
                Location {
                    step,
                    index,
                    element,
                },
                *g,
                *e,
            );
        }
    }

    /// The collected statistics.
    pub fn into_vec(self) -> Vec<QuantityError> {
        self.quantities
    }
}

/// Our closed-form schedule (parsed from the fixture's scheduler description) against the
/// lrs torch used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleCheck {
    /// The fixture's description.
    pub description: String,
    /// `Ok(max |base·value(k) − lr_k|)` over steps and groups, or why it was not parsed.
    pub result: Result<f64, String>,
}

/// A fixture that was replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The preset and hyperparameters used (Rust `Debug` of the plan).
    pub mapping: String,
    /// Steps replayed.
    pub steps: usize,
    /// Per-quantity statistics.
    pub quantities: Vec<QuantityError>,
    /// Recorded quantities without a counterpart in our optimizer (and ours without one in
    /// the fixture).
    pub not_compared: Vec<String>,
    /// Closed-form schedule check, for torch cases with a scheduler.
    pub schedule_check: Option<ScheduleCheck>,
}

/// The result of replaying one fixture in one loop mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Replayed and compared.
    Compared(Comparison),
    /// Not supported (does not fail the run).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Could not be replayed although it should be (fails the run).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Pass/fail status of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Every quantity within tolerance.
    Pass,
    /// Some quantity beyond tolerance.
    Fail,
    /// Not supported.
    Skipped,
    /// Unreadable or unmappable.
    Error,
}

impl Status {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIPPED",
            Status::Error => "ERROR",
        }
    }
}

/// One fixture replayed in one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixtureReport {
    /// Path of the fixture file.
    pub file: String,
    /// Case name (file stem if unreadable).
    pub name: String,
    /// Reference class (empty if unreadable).
    pub reference: String,
    /// Buffer dtype (`None` if unreadable).
    pub dtype: Option<FixtureDtype>,
    /// Loop mode.
    pub mode: LoopMode,
    /// Relative tolerance applied.
    pub tolerance: f64,
    /// Status derived from the outcome.
    pub status: Status,
    /// What happened.
    pub outcome: Outcome,
}

impl FixtureReport {
    /// Assemble a report, deriving its status.
    pub fn new(
        file: String,
        name: String,
        reference: String,
        dtype: Option<FixtureDtype>,
        mode: LoopMode,
        outcome: Outcome,
    ) -> Self {
        let tolerance = dtype.map_or(0.0, FixtureDtype::tolerance);
        let status = match &outcome {
            Outcome::Compared(c) => {
                if c.quantities.iter().all(|q| q.max_rel <= tolerance) {
                    Status::Pass
                } else {
                    Status::Fail
                }
            }
            Outcome::Skipped { .. } => Status::Skipped,
            Outcome::Error { .. } => Status::Error,
        };
        FixtureReport {
            file,
            name,
            reference,
            dtype,
            mode,
            tolerance,
            status,
            outcome,
        }
    }

    /// Whether this report fails the run (a tolerance violation or an error).
    pub fn failed(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Error)
    }

    /// The comparison, if the fixture was replayed.
    pub fn comparison(&self) -> Option<&Comparison> {
        match &self.outcome {
            Outcome::Compared(c) => Some(c),
            _ => None,
        }
    }

    /// Largest relative error over the quantities of a category.
    pub fn max_rel(&self, cat: Category) -> Option<f64> {
        self.comparison()?
            .quantities
            .iter()
            .filter(|q| q.category() == cat)
            .map(|q| q.max_rel)
            .reduce(f64::max)
    }
}

fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2e}")
    }
}

fn loc(l: Option<Location>, name: &str) -> String {
    match l {
        None => String::new(),
        Some(l) if name.starts_with("group.") => format!("step {} group {}", l.step, l.index),
        Some(l) => format!("step {} p{}[{}]", l.step, l.index, l.element),
    }
}

/// Human-readable block for one report.
pub fn format_report(r: &FixtureReport, verbose: bool) -> String {
    let mut s = String::new();
    let dtype = r.dtype.map_or("?", FixtureDtype::as_str);
    let _ = writeln!(
        s,
        "{} [{}] {} {} {}",
        r.name,
        r.mode.as_str(),
        r.reference,
        dtype,
        r.status.as_str()
    );
    match &r.outcome {
        Outcome::Skipped { reason } => {
            let _ = writeln!(s, "    skipped: {reason}");
        }
        Outcome::Error { message } => {
            let _ = writeln!(s, "    error: {message}");
        }
        Outcome::Compared(c) => {
            if verbose {
                let _ = writeln!(s, "    mapping: {}", c.mapping);
            }
            let _ = writeln!(
                s,
                "    {:<22} {:>10} {:>10}  {}",
                "quantity",
                "max_abs",
                "max_rel",
                if verbose { "worst (rel)" } else { "" }
            );
            for q in &c.quantities {
                let flag = if q.max_rel > r.tolerance {
                    "  <-- exceeds tolerance"
                } else {
                    ""
                };
                let at = if (verbose && q.max_rel > 0.0) || !flag.is_empty() {
                    loc(q.worst, &q.name)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "    {:<22} {:>10} {:>10}  {at}{flag}",
                    q.name,
                    sci(q.max_abs),
                    sci(q.max_rel)
                );
            }
            if let Some(sc) = &c.schedule_check {
                match &sc.result {
                    Ok(d) => {
                        let _ = writeln!(
                            s,
                            "    closed-form schedule vs lr_group_before_step: max abs diff {}",
                            sci(*d)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(s, "    closed-form schedule: not parsed ({e})");
                    }
                }
            }
            if verbose && !c.not_compared.is_empty() {
                let _ = writeln!(s, "    not compared: {}", c.not_compared.join(", "));
            }
        }
    }
    s
}

/// The summary table over all reports, with a final count line.
pub fn format_summary(reports: &[FixtureReport]) -> String {
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$}  {:<6}  {:<7}  {:>9}  {:>9}  {:>9}  {:>9}",
        "fixture", "mode", "status", "y", "x/params", "state", "groups"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), sci);
    for r in reports {
        let _ = writeln!(
            s,
            "{:<width$}  {:<6}  {:<7}  {:>9}  {:>9}  {:>9}  {:>9}",
            r.name,
            r.mode.as_str(),
            r.status.as_str(),
            cell(r.max_rel(Category::Y)),
            cell(r.max_rel(Category::X)),
            cell(r.max_rel(Category::State)),
            cell(r.max_rel(Category::Groups)),
        );
    }
    let count = |st: Status| reports.iter().filter(|r| r.status == st).count();
    let _ = writeln!(
        s,
        "{} replays: {} passed, {} failed, {} errors, {} skipped (max relative errors; tolerance 1e-12 for float64, 1e-5 for float32)",
        reports.len(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Error),
        count(Status::Skipped)
    );
    s
}
