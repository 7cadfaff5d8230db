//! The sweep: datasets × bases × methods × lrs × seeds, run in parallel with rayon behind an
//! indicatif progress bar.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::config::{ConvexConfig, DatasetSource};
use super::overrides::Overrides;
use super::run::{self, Prepared, RunResult, RunSpec, TrainOptions};
use crate::data::libsvm::LibsvmOptions;
use crate::data::registry;
use crate::data::standardize::Standardizer;
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

/// Relative cost of one run on `prep` (multiply-adds per epoch), for scheduling.
fn cost(prep: &Prepared) -> usize {
    prep.data.train.rows().max(1) * prep.model.num_params().max(1)
}

/// Run every spec (in parallel on the current rayon pool) with its schedule from
/// `overrides` (if any) and return the results in the order of `specs`. Expensive runs are
/// started first so that the pool ends together.
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
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let settings = cfg.settings();
    let pb = if cfg.verbose {
        ProgressBar::new(specs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} runs (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(250));
    pb.set_message(format!(
        "{} datasets on {} threads",
        datasets.len(),
        rayon::current_num_threads()
    ));

    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&datasets[specs[i].dataset])));
    let mut results: Vec<(usize, RunResult)> = order
        .par_iter()
        .with_max_len(1)
        .map(|&i| {
            let spec = &specs[i];
            let prep = &datasets[spec.dataset];
            let options = TrainOptions {
                schedule: overrides.get(spec),
                norms: None,
            };
            let r = run::train_with(prep, spec, &settings, options).with_context(|| {
                format!(
                    "run {} / {} / {} / lr {} / seed {}",
                    prep.data.name, spec.base, spec.method, spec.lr, spec.seed
                )
            });
            pb.inc(1);
            r.map(|r| (i, r))
        })
        .collect::<anyhow::Result<_>>()?;
    pb.finish_and_clear();
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}
