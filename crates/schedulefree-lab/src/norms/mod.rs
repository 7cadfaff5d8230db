//! `sflab norms`: weight decay meets normalization on a real model (the
//! experiments of the AdamC paper, arXiv 2506.02285v2).
//!
//! # Model and data
//!
//! An MLP `784 → H → H → 10` on the bundled MNIST-10k (8000 training images, the 2000 test
//! images as held-out set), each hidden layer `Linear` **without bias** → LayerNorm → ReLU, so
//! each hidden weight matrix is exactly scale-invariant (up to LayerNorm's ε). Those matrices
//! are tagged `normalized` ([`runner::tag_rules`]); LayerNorm gains/shifts and biases get no
//! decay; the output layer's weight gets the base (decoupled) decay. Every run starts from the
//! same weights and sees the same minibatches (seed 0), so the runs of a table are paired.
//! Training images are translated by up to 2 pixels at random ([`augment`]): without it the
//! model memorises the 8000 images within the longer runs (training loss ~1e-3) and the
//! vanishing gradients hide the norm dynamics.
//! Norm diagnostics ([`schedulefree_burn::ModelOptimizer::diagnostics`]) are read after every
//! step; "‖g‖, ‖w‖" below are those of all normalized weights together (root-sum-of-squares).
//!
//! # Experiments
//!
//! 1. **Steady state** ([`steady`]): constant lr, a (γ, λ) grid for SGD (no momentum,
//!    decoupled decay), AdamW with β1 = 0 (the prediction's setting) and AdamW with β1 = 0.9,
//!    every relaxation time `1/(2γλ)` at most T/5 ([`config::MAX_RELAXATION_FRACTION`]);
//!    measured vs predicted `‖g‖/‖w‖` (SGD) and `‖w‖` (AdamW, from the measured Adam
//!    direction) over the last 25 %.
//! 2. **End of training** ([`end`]): linear-decay and cosine schedules with a 2 % warmup;
//!    AdamW vs AdamC vs projection, SGD vs SGDC vs projection, at one (γ, λ) per family with
//!    relaxation `1/(2γλ)` ≈ 104 steps (T/58); `‖g‖` of the last 10 % over the middle 10 %,
//!    final losses, traces.
//! 3. **Magnitude-based methods** ([`magnitude`]): Polyak, AdaGrad-Norm, COCOB, Prodigy (last
//!    iterate, constant multiplier) × {no decay, decoupled, corrected, projection}: stability,
//!    effective step, norms, losses.
//!
//! Runs are independent; `--jobs` (default 2) run at once, each on one thread
//! ([`runner::run_all`]). The default protocol (43 runs) took 373 s on 2 shared cores;
//! `--quick` a few seconds.
//!
//! # Outputs (under `--out`, default `sflab-out/norms`)
//!
//! `runs/<id>.csv` per run ([`csv_out`]), `steady.csv`, `end.csv`, `magnitude.csv` (table
//! rows), `summary.md` (the three tables), `config.json`, and the PNG plots `steady.png`,
//! `end_<schedule>.png`, `magnitude_<learner>.png` ([`plot`]).

pub mod args;
pub mod augment;
pub mod config;
pub mod csv_out;
pub mod end;
pub mod grid;
pub mod magnitude;
pub mod plot;
pub mod runner;
pub mod steady;
pub mod table;
pub mod trace;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::experiment::Finished;
use crate::output::{write_json, write_text};

pub use args::NormsArgs;
pub use config::NormsConfig;
pub use end::EndRow;
pub use grid::{DecayVariant, Experiment, LearnerKind, RunSpec, Shape};
pub use magnitude::{MagnitudeRow, Status};
pub use steady::SteadyRow;
pub use trace::Trace;

/// Default output folder.
pub const DEFAULT_OUT: &str = "sflab-out/norms";

/// The result of [`run_with`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The protocol that ran.
    pub config: NormsConfig,
    /// Every run, in table order.
    pub traces: Vec<Trace>,
    /// Experiment 1's rows (empty if it did not run).
    pub steady: Vec<SteadyRow>,
    /// Experiment 2's rows.
    pub end: Vec<EndRow>,
    /// Experiment 3's rows.
    pub magnitude: Vec<MagnitudeRow>,
    /// The summary (also in `summary.md`).
    pub markdown: String,
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// Why the plots could not be drawn, if they could not (every other output is complete).
    pub plot_error: Option<String>,
    /// Wall time of the runs.
    pub elapsed: Duration,
}

fn of(traces: &[Trace], e: Experiment) -> Vec<Trace> {
    traces
        .iter()
        .filter(|t| t.spec.experiment == e)
        .cloned()
        .collect()
}

/// Runs the protocol `args` select and writes every output; prints nothing (the progress bar
/// goes to stderr unless `--quiet`).
///
/// # Errors
/// Bad arguments, a steady-state grid point whose relaxation time is too long for its run,
/// data that cannot be loaded, a failed run (not divergence), unwritable output. A plotting
/// failure is not an error: see [`Outcome::plot_error`].
pub fn run_with(args: &NormsArgs) -> anyhow::Result<Outcome> {
    let config = NormsConfig::resolve(args)?;
    if let Some(s) = config.slow_steady_runs().first() {
        bail!(
            "steady-state run {s}: relaxation time {:.0} steps exceeds {} of the run",
            s.relaxation_steps(),
            config::MAX_RELAXATION_FRACTION
        );
    }
    let specs = config.specs();
    let start = Instant::now();
    let traces = runner::run_all(&config, &specs)?;
    let elapsed = start.elapsed();

    let out = &config.out;
    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    let mut files = Vec::new();
    for t in &traces {
        let path = runs_dir.join(format!("{}.csv", t.spec.id()));
        csv_out::write_run(&path, t)?;
        files.push(path);
    }
    let steady: Vec<SteadyRow> = of(&traces, Experiment::Steady)
        .iter()
        .map(steady::analyse)
        .collect();
    let end: Vec<EndRow> = of(&traces, Experiment::End)
        .iter()
        .map(end::analyse)
        .collect();
    let magnitude: Vec<MagnitudeRow> = of(&traces, Experiment::Magnitude)
        .iter()
        .map(magnitude::analyse)
        .collect();
    for (name, written) in [
        ("steady.csv", write_if(out, "steady.csv", &steady)?),
        ("end.csv", write_if(out, "end.csv", &end)?),
        ("magnitude.csv", write_if(out, "magnitude.csv", &magnitude)?),
    ] {
        if written {
            files.push(out.join(name));
        }
    }
    let config_path = out.join("config.json");
    write_json(&config_path, &config)?;
    files.push(config_path);

    let mut plot_error = None;
    match draw(out, &config, &traces, &steady) {
        Ok(p) => files.extend(p),
        Err(e) => plot_error = Some(format!("{e:#}")),
    }
    let markdown = summary(&config, &steady, &end, &magnitude, &traces, elapsed);
    let summary_path = out.join("summary.md");
    write_text(&summary_path, &markdown)?;
    files.push(summary_path);
    Ok(Outcome {
        config,
        traces,
        steady,
        end,
        magnitude,
        markdown,
        files,
        plot_error,
        elapsed,
    })
}

fn write_if<R: serde::Serialize>(out: &Path, name: &str, rows: &[R]) -> anyhow::Result<bool> {
    if rows.is_empty() {
        return Ok(false);
    }
    csv_out::write_rows(&out.join(name), rows)?;
    Ok(true)
}

fn draw(
    out: &Path,
    config: &NormsConfig,
    traces: &[Trace],
    steady: &[SteadyRow],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !steady.is_empty() {
        files.push(plot::steady(out, steady)?);
    }
    let end_traces = of(traces, Experiment::End);
    if !end_traces.is_empty() {
        files.extend(plot::end(out, &end_traces, &config.end.shapes)?);
    }
    let mag = of(traces, Experiment::Magnitude);
    if !mag.is_empty() {
        files.extend(plot::magnitude(out, &mag)?);
    }
    Ok(files)
}

/// The markdown summary: protocol, the three tables, notes.
pub fn summary(
    config: &NormsConfig,
    steady: &[SteadyRow],
    end: &[EndRow],
    magnitude: &[MagnitudeRow],
    traces: &[Trace],
    elapsed: Duration,
) -> String {
    let mut s = String::new();
    let m = &config.model;
    let _ = writeln!(
        s,
        "# sflab norms{}\n\nMLP 784 → {h} → {h} → 10 ({d} hidden layers: Linear without bias → LayerNorm → ReLU) \
         on MNIST-10k (bundled; 8000 train / 2000 test), batch {b}, seed {seed}. Normalized \
         weights: the hidden Linear weights; norms are those of all of them together. {n} runs, \
         {secs:.0} s wall time on {jobs} jobs.\n",
        if config.quick { " (quick)" } else { "" },
        h = m.hidden,
        d = m.depth,
        b = m.batch,
        seed = config.seed,
        n = traces.len(),
        secs = elapsed.as_secs_f64(),
        jobs = config.jobs,
    );
    if !steady.is_empty() {
        let _ = writeln!(
            s,
            "## 1. Steady state (constant lr, T = {}, averages over the last 25 %)\n\n\
             SGD: measured sqrt(E‖g‖²/E‖w‖²) vs sqrt(2κ − κ²)/γ, κ = γλ. AdamW: measured \
             sqrt(E‖w‖²) vs γ·sqrt(E‖u‖²)/sqrt(2κ − κ²) with Adam's measured direction u \
             (the prediction assumes u ⟂ w and steps uncorrelated over time: β1 = 0; with \
             momentum successive u are correlated and it does not apply). Every relaxation \
             time 1/(2γλ) ≤ T/5.\n\n{}",
            config.steady.steps,
            steady::table(steady).markdown()
        );
    }
    if !end.is_empty() {
        let _ = writeln!(
            s,
            "## 2. End of training (T = {}, warmup {}, decay to 0)\n\n\
             ‖g‖ of the normalized weights: mean over the last 10 % of steps / mean over \
             45–55 %; the same for ‖w‖ and for ‖g‖·‖w‖ (the gradient at unit weight norm: \
             the part of the change that is not the weight norm's). Train loss: mean \
             minibatch loss over the last 5 %.\n\n{}",
            config.end.steps,
            config.end.warmup,
            end::table(end).markdown()
        );
    }
    if !magnitude.is_empty() {
        let _ = writeln!(
            s,
            "## 3. Magnitude-based methods (last iterate, constant multiplier, T = {})\n\n\
             Status: DIVERGED = non-finite loss; BLOW-UP = last 5 % mean loss > {}× the best \
             5 % window (and > +{}); stalled = last window > {}× the first. γ = lr × learner \
             factor (Polyak step, 1/b, COCOB 1, Prodigy d·bc). λ per learner: λ·γ ≈ 5e-3 \
             (relaxation ≈ 100 steps) at the step it takes without decay. The output layer's \
             weight decays under every policy but \"no decay\".\n\n{}",
            config.magnitude.steps,
            magnitude::BLOW_UP_FACTOR,
            magnitude::BLOW_UP_MARGIN,
            magnitude::STALL_FRACTION,
            magnitude::table(magnitude).markdown()
        );
    }
    s
}

/// `sflab norms`: runs the protocol, writes the outputs, prints the summary (unless
/// `--quiet`) and a one-line summary to stderr.
///
/// # Errors
/// As [`run_with`].
pub fn run(args: &NormsArgs) -> anyhow::Result<()> {
    let o = run_with(args)?;
    Finished {
        command: "norms",
        markdown: &o.markdown,
        verbose: o.config.verbose,
        warnings: &[],
        plot_error: o.plot_error.as_deref(),
        what: &format!("{} runs", o.traces.len()),
        elapsed: o.elapsed,
        out: &o.config.out,
    }
    .print();
    Ok(())
}
