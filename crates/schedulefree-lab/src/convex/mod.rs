//! `sflab convex`: multinomial logistic regression on LIBSVM datasets, Schedule-Free vs
//! schedules and averaging — the Schedule-Free paper's Figure 7 protocol at small scale
//! (Defazio et al., "The Road Less Scheduled", arXiv 2405.15682, Figure 7 and Appendix H).
//!
//! # Protocol
//!
//! * **Model**: softmax regression (`C·d + C` parameters, zero init, `f32`), mean
//!   cross-entropy on minibatches of 16; features standardised with train-split statistics.
//!   No weight decay.
//! * **Methods** (each with an SGD and an Adam base; details in [`methods`]):
//!   constant lr, linear decay to 0 and cosine to 0, all returning the last iterate of a
//!   learner with momentum (SGD momentum 0.9 / Adam β = (0.9, 0.95)); Polyak–Ruppert
//!   averaging, primal averaging and Schedule-Free (β = 0.9) around a momentum-free learner
//!   (plain SGD / Adam β = (0, 0.95)), averaging weights `∝ lr_max²`.
//! * **Warmup**: every method warms up linearly (`(k+1)/W`) over the same `W = 5 %` of the
//!   run's updates, so the only difference between methods is the conversion and the decay
//!   (refined and `--schedule` schedules are used as is: they carry their own warmup).
//! * **Sweep**: the same power-of-two lr grid for every method of a base (default SGD
//!   `2^-8..2^6`, Adam `2^-10..2^3`: [`config::DEFAULT_SGD_EXPONENTS`],
//!   [`config::DEFAULT_ADAM_EXPONENTS`]), seeds `0..N` driving the per-epoch shuffle (shared by
//!   all methods and lrs). Each method's best lr is the one with the lowest mean final train
//!   loss.
//! * **Metric**: the returned point `x` (the optimizer's eval point) is evaluated after every
//!   epoch on the whole train split (loss, accuracy) and the test split if there is one.
//!   Tables report mean ± standard error over seeds at the best lr; the best cell per row is
//!   bold and counts as a win (ties all win).
//!
//! Defaults (no flags): datasets iris, wine, glass, vehicle, breast_cancer, dna, segment,
//! satimage (bundled in `data/libsvm`), 30 epochs, 3 seeds, lr grids SGD `2^-8..2^6` (15 points)
//! and Adam `2^-10..2^3` (14 points): 4176 runs. `--full` is the paper-sized protocol: 100
//! epochs, 10 seeds, 16 datasets, lr grids SGD `2^-9..2^7` (17 points) and Adam `2^-10..2^4`
//! (15 points) (hours). The numbers are the constants of [`config`]
//! ([`config::FULL_SGD_EXPONENTS`], ...); the `--help` text is built from them.
//!
//! # Schedule comparison (`--suite schedules`, arXiv 2310.07831)
//!
//! Methods constant, 1/√t, step (×0.1 after 50 % and ×0.01 after 75 % of the updates),
//! cosine, linear decay and refined (ℓ2 and ℓ1), all last-iterate with the momentum
//! learners above, on the same protocol and lr grids (output in `sflab-out/schedules`). The
//! refined methods are two-phase ([`refined`]): after the sweep of every other method, per
//! (dataset, base) linear decay is re-run at its best lr (seed 0) logging every update's
//! gradient norms, [`schedulefree::schedule::refine`] turns them into schedules of the same
//! length (peak 1, no warmup added: it emerges), and those are swept over the same lr grid
//! and seeds. The markdown adds the loss table by schedule, the check of the expected
//! ordering refined ≤ LD ≤ cosine and the mean relative difference refined vs LD
//! ([`schedule_report`]). With the default protocol it is 4872 runs (plus 16 logged runs);
//! about 1.5 minutes on 2 cores.
//!
//! `--schedule FILE` (a JSON `ScheduleConfig`, e.g. from `sflab refine`) adds the method
//! `custom`, which runs that schedule as is; a horizon different from a dataset's run length
//! is warned about on stderr (a shorter schedule keeps its last value).
//!
//! # Outputs (under `--out`, default `sflab-out/convex`)
//!
//! `curves.csv` (every evaluation of every run), `grid.csv` (every lr aggregated over
//! seeds), `summary.csv` (best lr per dataset × base × method), `summary.md` (the tables),
//! `config.json` (the resolved protocol) and `plots/<dataset>.png`. With refined methods,
//! also `refined/<dataset>_<base>_norms.csv` (`step, grad_l2, grad_l1` of the logged run,
//! readable by `sflab refine`), `refined/<dataset>_<base>_{l2,l1}.json` (the schedules,
//! usable as `--schedule`) and their `.png`.

pub mod config;
pub mod methods;
pub mod overrides;
pub mod plot;
pub mod refined;
pub mod report;
pub mod run;
pub mod schedule_report;
pub mod sweep;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::experiment::Finished;
use crate::output::{write_json, write_text};

pub use config::{Base, ConvexArgs, ConvexConfig, Method, Suite};
pub use refined::Refinement;
pub use report::Report;

/// Paths written by a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFiles {
    /// `curves.csv`.
    pub curves: PathBuf,
    /// `grid.csv`.
    pub grid: PathBuf,
    /// `summary.csv`.
    pub summary_csv: PathBuf,
    /// `summary.md`.
    pub summary_md: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// The PNG plots that were drawn.
    pub plots: Vec<PathBuf>,
    /// `refined/`, if refined methods ran (schedules, norm logs, their plots).
    pub refined_dir: Option<PathBuf>,
}

/// The result of [`run_with`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The resolved protocol.
    pub config: ConvexConfig,
    /// Aggregated results.
    pub report: Report,
    /// The markdown report (also in `summary.md`).
    pub markdown: String,
    /// Files written.
    pub files: OutputFiles,
    /// Why the plots could not be drawn, if they could not (the other outputs are written
    /// first and are complete).
    pub plot_error: Option<String>,
    /// The refined schedules, one entry per (dataset, base), if refined methods ran.
    pub refined: Vec<Refinement>,
    /// Warnings (a `--schedule` whose horizon is not the run length). Without `--quiet`
    /// they are printed on stderr as they arise; with it, [`run()`] prints them at the end
    /// ([`run_with`] does not).
    pub warnings: Vec<String>,
    /// Number of sweep runs (not counting the logged runs of the refinement).
    pub runs: usize,
    /// Wall time of loading, training and reporting.
    pub elapsed: Duration,
}

/// Run the sweep described by `args` and write every output; prints nothing with `--quiet`
/// (else the progress bar and warnings on stderr).
///
/// # Errors
/// Bad arguments, data that cannot be loaded, a failed run (not divergence), unwritable
/// output. A plotting failure is not an error: see [`Outcome::plot_error`].
pub fn run_with(args: &ConvexArgs) -> anyhow::Result<Outcome> {
    let config = ConvexConfig::resolve(args)?;
    match config.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .context("building the thread pool")?
            .install(|| execute(config)),
        None => execute(config),
    }
}

fn execute(config: ConvexConfig) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let datasets = sweep::load_datasets(&config)?;
    let warnings = horizon_warnings(&config, &datasets);
    if config.verbose {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    let out = &config.out;
    let specs = sweep::specs(&config, datasets.len());
    // Phase 1: every method whose schedule is known up front; phase 2: the refined methods,
    // whose schedules come from phase 1's linear-decay sweep.
    let (later, first): (Vec<usize>, Vec<usize>) =
        (0..specs.len()).partition(|&i| specs[i].method.refine_norm().is_some());
    let pick = |idx: &[usize]| idx.iter().map(|&i| specs[i]).collect::<Vec<_>>();
    let mut overrides =
        overrides::Overrides::new(config.schedule.as_ref().map(|s| s.config.clone()));
    let phase1 = sweep::run_all(&config, &datasets, &pick(&first), &overrides)?;
    let (refined, refined_dir, refine_plot_error) = if refined::wanted(&config) {
        let dir = out.join("refined");
        let (r, e) = refined::refine_all(&config, &datasets, &phase1, &dir, &mut overrides)?;
        (r, Some(dir), e)
    } else {
        (Vec::new(), None, None)
    };
    let phase2 = sweep::run_all(&config, &datasets, &pick(&later), &overrides)?;
    let mut slots: Vec<Option<run::RunResult>> = vec![None; specs.len()];
    for (i, r) in first.iter().zip(phase1).chain(later.iter().zip(phase2)) {
        slots[*i] = Some(r);
    }
    let results: Vec<run::RunResult> = slots.into_iter().flatten().collect();
    let report = Report::build(&config, &datasets, &results);

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = OutputFiles {
        curves: out.join("curves.csv"),
        grid: out.join("grid.csv"),
        summary_csv: out.join("summary.csv"),
        summary_md: out.join("summary.md"),
        config: out.join("config.json"),
        plots: Vec::new(),
        refined_dir,
    };
    report::write_curves(&files.curves, &report, &results)?;
    report::write_grid(&files.grid, &report)?;
    report::write_summary(&files.summary_csv, &report)?;
    let mut markdown = report::markdown(&config, &report);
    if schedule_report::wanted(&config) {
        markdown.push('\n');
        markdown.push_str(&schedule_report::markdown(&config, &report, &refined));
    }
    write_text(&files.summary_md, &markdown)?;
    write_json(&files.config, &config)?;

    let mut files = files;
    let mut plot_error = refine_plot_error;
    if config.plots {
        match plot::plot_all(&out.join("plots"), &config, &report) {
            Ok(p) => files.plots = p,
            Err(e) => plot_error = Some(format!("{e:#}")),
        }
    }
    Ok(Outcome {
        runs: specs.len(),
        elapsed: start.elapsed(),
        config,
        report,
        markdown,
        files,
        plot_error,
        refined,
        warnings,
    })
}

/// A warning per dataset whose run length differs from the `--schedule` file's horizon.
fn horizon_warnings(config: &ConvexConfig, datasets: &[run::Prepared]) -> Vec<String> {
    let Some(custom) = &config.schedule else {
        return Vec::new();
    };
    let Some(horizon) = custom.horizon else {
        return Vec::new();
    };
    let settings = config.settings();
    datasets
        .iter()
        .filter_map(|prep| {
            let total = run::total_steps(prep, &settings);
            (total != horizon).then(|| {
                format!(
                    "--schedule {} has a horizon of {horizon} updates but runs on {} have {total} \
                     ({}); the schedule is used as is",
                    custom.path.display(),
                    prep.data.name,
                    if horizon < total {
                        "its last value is kept to the end"
                    } else {
                        "the run stops before the schedule ends"
                    }
                )
            })
        })
        .collect()
}

/// `sflab convex`: run the sweep, write the outputs, print the markdown tables to stdout
/// (unless `--quiet`) and a one-line summary to stderr.
///
/// # Errors
/// As [`run_with`].
pub fn run(args: &ConvexArgs) -> anyhow::Result<()> {
    let o = run_with(args)?;
    Finished {
        command: "convex",
        markdown: &o.markdown,
        verbose: o.config.verbose,
        // Verbose runs printed their warnings before training.
        warnings: if o.config.verbose { &[] } else { &o.warnings },
        plot_error: o.plot_error.as_deref(),
        what: &format!("{} runs on {} datasets", o.runs, o.report.datasets.len()),
        elapsed: o.elapsed,
        out: &o.config.out,
    }
    .print();
    Ok(())
}
