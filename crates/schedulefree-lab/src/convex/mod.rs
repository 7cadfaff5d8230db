//! `sflab convex`: multinomial logistic regression on LIBSVM datasets (ALGORITHMS.md §13.1).

/// Command-line arguments of `sflab convex`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvexArgs {}

/// Run the experiment.
///
/// # Errors
/// Any failure to load data or write results.
pub fn run(_args: &ConvexArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
