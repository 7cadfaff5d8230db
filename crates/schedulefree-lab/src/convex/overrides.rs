//! Per-run schedule overrides: the user's `--schedule` file for [`Method::Custom`] and the
//! refined schedules of [`Method::RefinedL2`] / [`Method::RefinedL1`], one per
//! (dataset, base).

use std::collections::HashMap;

use schedulefree::schedule::ScheduleConfig;

use super::config::{Base, Method};
use super::run::RunSpec;

/// The schedule each run uses instead of its method's own, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    custom: Option<ScheduleConfig>,
    refined: HashMap<(usize, Base, Method), ScheduleConfig>,
}

impl Overrides {
    /// Overrides holding only the `--schedule` file (if any).
    pub fn new(custom: Option<ScheduleConfig>) -> Self {
        Overrides {
            custom,
            refined: HashMap::new(),
        }
    }

    /// Set the refined schedule of `method` on `(dataset, base)`.
    pub fn set_refined(
        &mut self,
        dataset: usize,
        base: Base,
        method: Method,
        schedule: ScheduleConfig,
    ) {
        self.refined.insert((dataset, base, method), schedule);
    }

    /// The schedule `spec` runs with, if its method takes one from outside
    /// ([`Method::needs_schedule`]) and it is known.
    pub fn get(&self, spec: &RunSpec) -> Option<&ScheduleConfig> {
        match spec.method {
            Method::Custom => self.custom.as_ref(),
            Method::RefinedL2 | Method::RefinedL1 => {
                self.refined.get(&(spec.dataset, spec.base, spec.method))
            }
            _ => None,
        }
    }
}
