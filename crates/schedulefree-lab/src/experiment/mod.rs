//! What every experiment of the lab shares: the [`runner`] that executes a sweep's runs
//! (`--jobs` workers, progress bars, results in submission order) and the [`store`] of
//! finished runs that lets an interrupted sweep resume.

pub mod runner;
pub mod store;

pub use runner::{Runner, Task};
pub use store::RunStore;
