//! The sweep: datasets × bases × methods × lrs × seeds, run on the lab's [`Runner`].

use anyhow::Context;
use indicatif::ProgressBar;

use super::config::{ConvexConfig, DatasetSource};
use super::overrides::Overrides;
use super::run::{self, Prepared, RunResult, RunSpec, TrainOptions, TrainSettings};
use crate::data::libsvm::LibsvmOptions;
use crate::data::registry;
use crate::data::standardize::Standardizer;
use crate::experiment::{Runner, Task};
use crate::model::LogReg;

/// Load every dataset of `cfg` and standardise it with statistics of its train split.
///
/// # Errors
/// Unknown names (the message lists the directories searched), unreadable or malformed
/// files.
pub fn load_datasets(cfg: &ConvexConfig) -> anyhow::Result<Vec<Prepared>> {
    let mut out: Vec<Prepared> = Vec::with_capacity(cfg.datasets.len());
    for src in &cfg.datasets {
        let mut data = match src {
            DatasetSource::Named(name) => registry::load_named(name, cfg.data_dir.as_deref()).with_context(|| {
                format!("loading dataset {name:?} (pass --data-dir DIR for datasets outside data/libsvm)")
            })?,
            DatasetSource::User(spec) => registry::load_user_spec(spec, &LibsvmOptions::default())
                .with_context(|| format!("loading user data {spec:?}"))?,
        };
        if data.train.rows() == 0 {
            anyhow::bail!("dataset {:?} has an empty train split", data.name);
        }
        if out.iter().any(|p| p.data.name == data.name) {
            let base = data.name.clone();
            let mut k = 2;
            while out.iter().any(|p| p.data.name == format!("{base}_{k}")) {
                k += 1;
            }
            data.name = format!("{base}_{k}");
        }
        Standardizer::fit_apply(&mut data)
            .with_context(|| format!("standardising {:?}", data.name))?;
        let model = LogReg::new(data.d, data.classes)?;
        out.push(Prepared { data, model });
    }
    Ok(out)
}

/// Every run of the sweep, in report order (dataset, base, method, lr, seed).
pub fn specs(cfg: &ConvexConfig, n_datasets: usize) -> Vec<RunSpec> {
    let mut v = Vec::new();
    for dataset in 0..n_datasets {
        for &base in &cfg.bases {
            for &method in &cfg.methods {
                for &lr in cfg.lrs.of(base) {
                    for seed in 0..cfg.seeds {
                        v.push(RunSpec {
                            dataset,
                            method,
                            base,
                            lr,
                            seed,
                        });
                    }
                }
            }
        }
    }
    v
}

/// The sweep as a [`Task`]: one logistic-regression run with its schedule override.
struct Sweep<'a> {
    datasets: &'a [Prepared],
    settings: TrainSettings,
    overrides: &'a Overrides,
}

impl Task for Sweep<'_> {
    type Spec = RunSpec;
    type Output = RunResult;

    fn run(&self, spec: &RunSpec, _bar: &ProgressBar) -> anyhow::Result<RunResult> {
        let options = TrainOptions {
            schedule: self.overrides.get(spec),
            norms: None,
        };
        run::train_with(&self.datasets[spec.dataset], spec, &self.settings, options)
    }

    fn describe(&self, spec: &RunSpec) -> String {
        format!(
            "{} / {} / {} / lr {} / seed {}",
            self.datasets[spec.dataset].data.name, spec.base, spec.method, spec.lr, spec.seed
        )
    }

    /// Multiply-adds per epoch.
    fn cost(&self, spec: &RunSpec) -> u64 {
        let prep = &self.datasets[spec.dataset];
        (prep.data.train.rows().max(1) * prep.model.num_params().max(1)) as u64
    }
}

/// Run every spec on the lab's [`Runner`] (`--jobs` runs at once, or as many as the current
/// rayon pool has threads), each with its schedule from `overrides` (if any), and return the
/// results in the order of `specs`. Expensive runs start first so that the workers end
/// together.
///
/// # Errors
/// The first run that fails (construction or model errors, a refined or custom method
/// without its schedule; divergence is not an error).
pub fn run_all(
    cfg: &ConvexConfig,
    datasets: &[Prepared],
    specs: &[RunSpec],
    overrides: &Overrides,
) -> anyhow::Result<Vec<RunResult>> {
    let task = Sweep {
        datasets,
        settings: cfg.settings(),
        overrides,
    };
    let runner = Runner {
        jobs: cfg.threads.unwrap_or_else(rayon::current_num_threads),
        verbose: cfg.verbose,
        worker_bars: false,
        unit: "runs",
    };
    let done = runner.run(&task, specs.to_vec(), specs.len() as u64)?;
    Ok(done.into_iter().map(|(_, r)| r).collect())
}
