//! Command-line arguments of `sflab norms` and how they select the protocol.

use std::path::PathBuf;

use anyhow::bail;

use super::config::NormsConfig;
use super::grid::Experiment;

/// `sflab norms`: weight decay meets normalization on an MLP with LayerNorm (MNIST-10k).
#[derive(Debug, Clone, clap::Args)]
pub struct NormsArgs {
    /// Tiny protocol (a few seconds; for tests): smaller model, short runs, one grid point.
    #[arg(long)]
    pub quick: bool,
    /// Run only these experiments (repeatable; default all three).
    #[arg(long, value_enum)]
    pub only: Vec<Experiment>,
    /// Output folder (CSV per run, summary.md, PNG plots).
    #[arg(long, default_value = super::DEFAULT_OUT)]
    pub out: PathBuf,
    /// Runs at once, each on one thread (default 2).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Seed of the weights and the data order (shared by every run).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar and no printed tables.
    #[arg(long)]
    pub quiet: bool,
    /// Reuse the runs an earlier invocation with the same protocol finished (kept in
    /// OUT/finished/); without it every run is trained again.
    #[arg(long)]
    pub resume: bool,
}

impl NormsArgs {
    /// Default arguments (all experiments, default protocol) writing to `out`.
    pub fn new(out: PathBuf) -> Self {
        Self {
            quick: false,
            only: Vec::new(),
            out,
            jobs: 2,
            seed: 0,
            quiet: false,
            resume: false,
        }
    }
}

impl NormsConfig {
    /// The protocol `args` select.
    ///
    /// # Errors
    /// `--jobs 0`.
    pub fn resolve(args: &NormsArgs) -> anyhow::Result<Self> {
        if args.jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        let mut c = NormsConfig::protocol(args.quick);
        c.out.clone_from(&args.out);
        c.jobs = args.jobs;
        c.seed = args.seed;
        c.verbose = !args.quiet;
        c.resume = args.resume;
        if !args.only.is_empty() {
            c.experiments = Experiment::ALL
                .into_iter()
                .filter(|e| args.only.contains(e))
                .collect();
        }
        Ok(c)
    }
}
