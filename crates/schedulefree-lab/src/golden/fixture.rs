//! The golden fixture format (`golden/README.md`, "Fixture format"): serde types and loading.
//!
//! Unknown keys are ignored so that newer fixtures with extra fields still load. Numbers are
//! read as `f64` (`serde_json` with `float_roundtrip`, so every Python `repr` float parses to
//! the exact same bits); `float32` fixtures store values exactly representable in `f32`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Files in a fixture directory that are not trajectories.
pub const NON_FIXTURE_FILES: [&str; 2] = ["index.json", "schedules.json"];

/// Buffer dtype of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixtureDtype {
    /// IEEE binary64.
    Float64,
    /// IEEE binary32 (values stored as the `f64` numbers equal to them).
    Float32,
}

impl FixtureDtype {
    /// Parity tolerance: `|a − b| ≤ tol · max(1, |b|)` (README "Suggested tolerances").
    pub fn tolerance(self) -> f64 {
        match self {
            FixtureDtype::Float64 => 1e-12,
            FixtureDtype::Float32 => 1e-5,
        }
    }

    /// Name as written in the fixture.
    pub fn as_str(self) -> &'static str {
        match self {
            FixtureDtype::Float64 => "float64",
            FixtureDtype::Float32 => "float32",
        }
    }
}

/// What `y` / `x` / `params` of a step record mean (`record_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Schedule-Free train/eval class: `y` = training buffer, `x` = eval-mode point.
    SfY,
    /// `ScheduleFreeWrapper(+Reference)`: as [`RecordKind::SfY`], base state mixed in.
    Wrapper,
    /// Closure class: `x` = the parameter buffer, `y = lerp(x, z, 1 − β)` computed in torch.
    SfClosure,
    /// Plain optimizer (+ scheduler): `params` after the step.
    Plain,
    /// ScheduleFree+ (`step_func(f)`): as [`RecordKind::SfY`], each step fed the loss
    /// [`StepRecord::function_value`] at `y`.
    SfPlus,
}

impl RecordKind {
    /// Whether the record has separate `y` (gradient point) and `x` (returned point).
    pub fn is_schedule_free(self) -> bool {
        !matches!(self, RecordKind::Plain)
    }
}

/// One parameter tensor's shape and initial value.
#[derive(Debug, Clone, Deserialize)]
pub struct ParamSpec {
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Initial value, flattened row-major.
    pub init: Vec<f64>,
}

impl ParamSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The quadratic gradient model `g_i = A_i y_i − b_i + noise[t−1][i]`.
#[derive(Debug, Clone, Deserialize)]
pub struct GradientModel {
    /// `A[i][row][col]`, symmetric positive definite.
    #[serde(rename = "A")]
    pub a: Vec<Vec<Vec<f64>>>,
    /// `b[i][row]`.
    pub b: Vec<Vec<f64>>,
    /// `noise[t−1][i][row]`.
    pub noise: Vec<Vec<Vec<f64>>>,
    /// Constant added to the loss (`0.5·Σ bᵀA⁻¹b`, so the noiseless minimum is 0);
    /// ScheduleFree+ fixtures only.
    #[serde(default)]
    pub f_offset: Option<f64>,
}

/// The torch base optimizer of a `ScheduleFreeWrapper` case.
#[derive(Debug, Clone, Deserialize)]
pub struct BaseOptimizer {
    /// Python class, e.g. `torch.optim.sgd.SGD`.
    pub class: String,
    /// Constructor arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

/// A per-parameter state entry: a tensor, or a scalar such as torch's `step`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StateValue {
    /// A buffer, flattened row-major.
    Tensor(Vec<f64>),
    /// A scalar (`step`).
    Scalar(f64),
    /// Anything else (kept so that unexpected entries do not break loading).
    Other(Value),
}

/// The record of step `t` (1-based).
#[derive(Debug, Clone, Deserialize)]
pub struct StepRecord {
    /// Step number, 1-based.
    #[serde(default)]
    pub t: usize,
    /// Gradient fed at step `t`, per parameter.
    pub grad: Vec<Vec<f64>>,
    /// `group['lr']` when step `t` was taken, per group.
    pub lr_group_before_step: Vec<f64>,
    /// Training-mode parameters after the step (schedule-free kinds).
    #[serde(default)]
    pub y: Option<Vec<Vec<f64>>>,
    /// Eval-mode parameters after the step (schedule-free kinds).
    #[serde(default)]
    pub x: Option<Vec<Vec<f64>>>,
    /// Parameters after the step (plain kind).
    #[serde(default)]
    pub params: Option<Vec<Vec<f64>>>,
    /// Per-parameter optimizer state after the step.
    #[serde(default)]
    pub state: Vec<BTreeMap<String, StateValue>>,
    /// Per-group scalars after the step.
    #[serde(default)]
    pub groups: Vec<Map<String, Value>>,
    /// The loss at `y` fed to the step (record kind `sf_plus`).
    #[serde(default)]
    pub function_value: Option<f64>,
}

/// One golden trajectory (`<case>.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    /// Case name.
    pub name: String,
    /// Python class that produced it, e.g. `schedulefree.AdamWScheduleFree`.
    pub reference: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Constructor arguments.
    #[serde(default)]
    pub optimizer_kwargs: Map<String, Value>,
    /// `None`: one group with all params; else per group `{params: [...], overrides...}`.
    #[serde(default)]
    pub param_groups: Option<Vec<Map<String, Value>>>,
    /// Parameter indices per group.
    #[serde(default)]
    pub group_members: Option<Vec<Vec<usize>>>,
    /// Base optimizer of wrapper cases.
    #[serde(default)]
    pub base_optimizer: Option<BaseOptimizer>,
    /// torch lr scheduler description, if any.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// Buffer dtype.
    pub dtype: FixtureDtype,
    /// Parameter tensors.
    pub params: Vec<ParamSpec>,
    /// Gradient model (closed loop).
    pub gradient: GradientModel,
    /// Meaning of the per-step records.
    pub record_kind: RecordKind,
    /// Number of steps recorded (`steps` must hold exactly this many records).
    pub num_steps: usize,
    /// Per-step records, `steps[t−1]` for step `t`.
    pub steps: Vec<StepRecord>,
}

impl Fixture {
    /// Read and parse a fixture file.
    ///
    /// # Errors
    /// Unreadable file or malformed JSON.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parameter indices of each group (one group with everything when not given).
    pub fn members(&self) -> Vec<Vec<usize>> {
        if let Some(m) = &self.group_members {
            return m.clone();
        }
        match &self.param_groups {
            Some(groups) => groups
                .iter()
                .map(|g| {
                    g.get("params")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_u64)
                                .map(|i| i as usize)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect(),
            None => vec![(0..self.params.len()).collect()],
        }
    }

    /// Number of parameter groups.
    pub fn num_groups(&self) -> usize {
        self.members().len()
    }

    /// Check the shapes of the records against the parameter list: `num_steps ≥ 1` records,
    /// and per step one tensor of the right length per parameter in `grad`, in `y` and `x`
    /// (schedule-free kinds) or `params` (plain kind), and in the gradient model.
    ///
    /// # Errors
    /// A description of the first inconsistency.
    pub fn validate(&self) -> anyhow::Result<()> {
        let n = self.params.len();
        for (i, p) in self.params.iter().enumerate() {
            anyhow::ensure!(
                p.init.len() == p.len(),
                "params[{i}]: init has {} values, shape {:?}",
                p.init.len(),
                p.shape
            );
        }
        let mut seen = vec![false; n];
        for (g, m) in self.members().iter().enumerate() {
            for &i in m {
                anyhow::ensure!(i < n, "group {g} lists parameter {i}, there are {n}");
                anyhow::ensure!(!seen[i], "parameter {i} is in two groups");
                seen[i] = true;
            }
        }
        anyhow::ensure!(
            self.num_steps >= 1,
            "num_steps is {}, a trajectory needs at least one step",
            self.num_steps
        );
        anyhow::ensure!(
            self.steps.len() == self.num_steps,
            "steps has {} records, num_steps is {}",
            self.steps.len(),
            self.num_steps
        );
        anyhow::ensure!(
            self.gradient.a.len() == n && self.gradient.b.len() == n,
            "gradient model has the wrong number of tensors"
        );
        for (i, p) in self.params.iter().enumerate() {
            let (a, b) = (&self.gradient.a[i], &self.gradient.b[i]);
            anyhow::ensure!(
                a.len() == p.len()
                    && a.iter().all(|row| row.len() == p.len())
                    && b.len() == p.len(),
                "gradient model of params[{i}] does not match its length {}",
                p.len()
            );
        }
        let lens: Vec<usize> = self.params.iter().map(ParamSpec::len).collect();
        let sf = self.record_kind.is_schedule_free();
        for (s, rec) in self.steps.iter().enumerate() {
            anyhow::ensure!(
                rec.lr_group_before_step.len() == self.num_groups(),
                "steps[{s}].lr_group_before_step has {} entries, expected {}",
                rec.lr_group_before_step.len(),
                self.num_groups()
            );
            check_tensors(&format!("steps[{s}].grad"), Some(&rec.grad), &lens)?;
            check_tensors(
                &format!("gradient.noise[{s}]"),
                self.gradient.noise.get(s),
                &lens,
            )?;
            if self.record_kind == RecordKind::SfPlus {
                anyhow::ensure!(
                    rec.function_value.is_some() && self.gradient.f_offset.is_some(),
                    "steps[{s}]: a `sf_plus` record needs `function_value` (and the gradient model `f_offset`)"
                );
            }
            if sf {
                check_tensors(&format!("steps[{s}].y"), rec.y.as_ref(), &lens)?;
                check_tensors(&format!("steps[{s}].x"), rec.x.as_ref(), &lens)?;
            } else {
                check_tensors(&format!("steps[{s}].params"), rec.params.as_ref(), &lens)?;
            }
        }
        Ok(())
    }
}

/// Check that a recorded per-parameter quantity is present with one tensor of `lens[i]` values
/// per parameter `i`.
fn check_tensors(what: &str, v: Option<&Vec<Vec<f64>>>, lens: &[usize]) -> anyhow::Result<()> {
    let v = v.ok_or_else(|| anyhow::anyhow!("{what} is missing"))?;
    anyhow::ensure!(
        v.len() == lens.len(),
        "{what} has {} tensors, expected {}",
        v.len(),
        lens.len()
    );
    for (i, (t, &len)) in v.iter().zip(lens).enumerate() {
        anyhow::ensure!(
            t.len() == len,
            "{what}[{i}] has {} values, expected {len}",
            t.len()
        );
    }
    Ok(())
}

/// Expand command-line paths: a file stays as it is, a directory becomes its `*.json` files
/// (sorted, without `index.json` and `schedules.json`).
///
/// # Errors
/// An unreadable directory or a path that does not exist.
pub fn collect_fixture_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(p).with_context(|| format!("listing {}", p.display()))? {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if path.extension().is_some_and(|e| e == "json")
                    && !NON_FIXTURE_FILES.contains(&name)
                {
                    files.push(path);
                }
            }
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}
