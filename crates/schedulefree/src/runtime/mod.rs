//! Run-time selection: one serde value names the method, and building it gives a boxed
//! [`DynOptimizer`] over the monomorphised [`crate::Optimizer`] it picked. Used by config
//! files, the framework adapters and the lab. Nothing here owns math.
//!
//! - [`PresetConfig`]: any preset (the reference methods and torch-style baselines).
//! - [`composed::Composed`]: any learner × conversion × decay policy × schedule.
//! - [`DynOptimizer`]: the object-safe interface both build.
//!
//! The run-time configs of the decay policies ([`crate::decay::DecayConfig`]) and schedules
//! ([`crate::schedule::ScheduleConfig`]) stay beside the theory objects they build, where a
//! reader of one policy or schedule finds its serde form.

pub mod composed;
mod dynamic;
mod preset_config;

pub use dynamic::DynOptimizer;
pub use preset_config::PresetConfig;
