//! Plain `f64` oracles written straight from the papers' equations, one loop per equation
//! and no fusion, used by the tests to check the fused optimizers.
//! Public so that users can check their own compositions; not optimised.

mod schedule_free;

pub use schedule_free::{OracleConfig, OracleLearner, ScheduleFreeOracle};
