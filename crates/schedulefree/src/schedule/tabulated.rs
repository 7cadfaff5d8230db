//! A schedule given as a table of per-update values (e.g. a refined schedule, [`super::refine`]).

use super::{Schedule, ScheduleError};
use serde::{Deserialize, Deserializer, Serialize};

/// Per-update multipliers from a table: `value(k) = values[min(k, len-1)]`.
///
/// Entry `k` is the multiplier of update `k+1`; after the table ends the last entry is kept.
/// Values are not required to be `<= 1`. Horizon: `len`.
///
/// Refined schedules (arXiv 2310.07831, §3) are tables. Panics: none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Tabulated {
    values: Vec<f64>,
}

impl Tabulated {
    /// A schedule that follows `values` and then keeps the last one.
    ///
    /// # Errors
    /// [`ScheduleError::ZeroLength`] if `values` is empty; [`ScheduleError::InvalidValue`] for
    /// the first entry that is negative, NaN or infinite.
    pub fn new(values: Vec<f64>) -> Result<Self, ScheduleError> {
        if values.is_empty() {
            return Err(ScheduleError::ZeroLength { field: "values" });
        }
        if let Some(&value) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(ScheduleError::InvalidValue {
                field: "values",
                value,
                expected: "finite and >= 0",
            });
        }
        Ok(Self { values })
    }

    /// The table, one entry per update.
    #[must_use]
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

impl Schedule for Tabulated {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        // Non-empty by construction, so `last` is a valid index.
        let last = self.values.len() - 1;
        self.values[usize::try_from(k).map_or(last, |i| i.min(last))]
    }
    fn horizon(&self) -> Option<u64> {
        Some(self.values.len() as u64)
    }
}

impl<'de> Deserialize<'de> for Tabulated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(Vec::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
