//! schedulefree-lab: data loading, models and experiments for the `schedulefree` crate.

pub mod data;
pub mod model;
