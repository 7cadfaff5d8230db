//! Errors raised when a schedule is constructed with invalid lengths or values.

/// Invalid schedule parameters, reported at construction (never at evaluation time).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A length that must be positive was zero.
    #[error("schedule field `{field}` must be > 0, got 0")]
    ZeroLength {
        /// Name of the offending field.
        field: &'static str,
    },
    /// The warmup (or another leading phase) is longer than the whole schedule.
    #[error("schedule phase `{field}` = {value} exceeds the total of {total} steps")]
    PhaseTooLong {
        /// Name of the offending field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The total number of steps it must fit in.
        total: u64,
    },
    /// A step-decay milestone inside the warmup, or 0 (milestones are update counts `≥ 1`
    /// from which on the lr is multiplied by `gamma`; the warmup has no multiplier, so they
    /// must be `≥ warmup`).
    #[error(
        "step-decay milestone {milestone} falls inside the warmup of {warmup} updates (milestones count updates and must be >= the warmup and >= 1)"
    )]
    MilestoneInWarmup {
        /// The first offending milestone.
        milestone: u64,
        /// The warmup length.
        warmup: u64,
    },
    /// A value (factor, floor, table entry) is negative, NaN or infinite.
    #[error("schedule field `{field}` = {value} is invalid: expected {expected}")]
    InvalidValue {
        /// Name of the offending field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What was expected, in words.
        expected: &'static str,
    },
}

/// `Ok(n)` if `n > 0`.
pub(crate) fn positive(field: &'static str, n: u64) -> Result<u64, ScheduleError> {
    if n == 0 {
        return Err(ScheduleError::ZeroLength { field });
    }
    Ok(n)
}

/// `Ok(value)` if a leading phase of `value` steps fits in `total` steps.
pub(crate) fn fits(field: &'static str, value: u64, total: u64) -> Result<u64, ScheduleError> {
    if value > total {
        return Err(ScheduleError::PhaseTooLong {
            field,
            value,
            total,
        });
    }
    Ok(value)
}

/// `Ok(value)` if it is a fraction of the peak lr, in `[0, 1]` (NaN fails).
pub(crate) fn fraction(field: &'static str, value: f64) -> Result<f64, ScheduleError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(ScheduleError::InvalidValue {
            field,
            value,
            expected: "a number in [0, 1]",
        });
    }
    Ok(value)
}
