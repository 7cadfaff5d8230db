//! schedulefree-lab: real-data experiments, golden replay and plots for the `schedulefree`
//! crate. The lab owns no optimizer math: every update goes through the core crate.

pub mod convex;
pub mod data;
pub mod drift;
pub mod experiment;
pub mod golden;
pub mod model;
pub mod nn;
pub mod norms;
pub mod output;
pub mod pareto;
pub mod refine;
pub mod train;
