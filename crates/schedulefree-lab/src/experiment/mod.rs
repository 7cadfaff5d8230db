//! What every experiment of the lab shares: the [`runner`] that executes a sweep's runs
//! (`--jobs` workers, progress bars, results in submission order).

pub mod runner;

pub use runner::{Runner, Task};
