//! `sflab golden`: replay golden trajectories recorded from the reference PyTorch code.

/// Command-line arguments of `sflab golden`.
#[derive(Debug, Clone, clap::Args)]
pub struct GoldenArgs {}

/// Run the replay.
///
/// # Errors
/// Unreadable fixtures; a tolerance violation makes the process exit non-zero.
pub fn run(_args: &GoldenArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
