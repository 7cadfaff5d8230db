//! `sflab`: the schedulefree lab. Subcommands run real-data experiments, replay golden
//! trajectories from the reference implementation and refine schedules from gradient norms.

use clap::{Parser, Subcommand};
use schedulefree_lab::refine::{self, rerun};
use schedulefree_lab::{convex, drift, golden, norms, pareto, train};

#[derive(Debug, Parser)]
#[command(
    name = "sflab",
    version,
    about = "Schedule-Free lab: experiments on real data, golden replay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Logistic regression on LIBSVM data: Schedule-Free vs schedules and averaging.
    Convex(Box<convex::ConvexArgs>),
    /// Replay golden trajectories (JSON fixtures) and report per-quantity errors.
    Golden(golden::GoldenArgs),
    /// Train one neural network (MLP, CNN, char transformer) on real data with any preset.
    Train(Box<train::TrainArgs>),
    /// Schedule-Free vs cosine and linear-decay runs of every budget: Pareto table, lr and β sweeps.
    Pareto(Box<pareto::ParetoArgs>),
    /// Refine a learning-rate schedule from a gradient-norm log (CSV): writes the schedule
    /// (JSON, usable as --schedule) and a PNG of norms and schedule next to it.
    Refine(refine::RefineArgs),
    /// Linear-decay run, refine its gradient norms, rerun with the refined schedule; writes
    /// both schedules, both loss curves and a summary.
    RefineRun(rerun::RefineRunArgs),
    /// Weight decay meets normalization on an MLP with LayerNorm (MNIST-10k): steady-state
    /// norms vs prediction, gradient norms at the end of decaying schedules (AdamW/AdamC/
    /// projection, SGD/SGDC/projection), magnitude-based learners under decay policies.
    Norms(Box<norms::NormsArgs>),
    /// f32 vs f64 Schedule-Free over long runs (open loop, same gradients): how far the
    /// returned point x and the training point y drift, on a quadratic and logistic regression.
    Drift(drift::DriftArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Convex(a) => convex::run(a),
        Command::Golden(a) => golden::run(a),
        Command::Train(a) => train::cli::run_cli(a),
        Command::Pareto(a) => pareto::run(a),
        Command::Refine(a) => refine::run(a),
        Command::RefineRun(a) => rerun::run(a),
        Command::Norms(a) => norms::run(a),
        Command::Drift(a) => drift::run(a),
    }
}
