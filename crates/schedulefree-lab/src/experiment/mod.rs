//! What every experiment of the lab shares: the [`runner`] that executes a sweep's runs
//! (`--jobs` workers, progress bars, results in submission order), the [`store`] of
//! finished runs that lets an interrupted sweep resume, and how a sweep ends ([`finish`]).

pub mod finish;
pub mod runner;
pub mod store;

pub use finish::Finished;
pub use runner::{Runner, Task};
pub use store::RunStore;
