//! The shape shared by [`Linear`](super::Linear) and [`Cosine`](super::Cosine): linear
//! warmup over `W` updates, then a decay to `end` that ends exactly at update `T`.

/// Define a warmup-then-decay schedule type with the given cooldown shape; the types differ
/// only in the shape and their docs.
macro_rules! warmup_decay_schedule {
    ($(#[$doc:meta])* $name:ident, $shape:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        pub struct $name {
            warmup: u64,
            total: u64,
            end: f64,
        }

        impl $name {
            /// `total` updates, the first `warmup` of them warming up, decaying to `end` (a
            /// fraction of the peak lr).
            ///
            /// # Errors
            /// [`ScheduleError::ZeroLength`](super::ScheduleError::ZeroLength) if `total = 0`;
            /// [`ScheduleError::PhaseTooLong`](super::ScheduleError::PhaseTooLong) if
            /// `warmup > total`; [`ScheduleError::InvalidValue`](super::ScheduleError::InvalidValue)
            /// if `end` is not in `[0, 1]`.
            pub fn new(warmup: u64, total: u64, end: f64) -> Result<Self, super::ScheduleError> {
                super::error::positive("total", total)?;
                super::error::fits("warmup", warmup, total)?;
                super::error::fraction("end", end)?;
                Ok(Self { warmup, total, end })
            }
        }

        impl super::Schedule for $name {
            #[inline]
            fn value(&self, k: u64) -> f64 {
                super::wsd::phases(k, self.warmup, self.warmup, self.total, $shape, self.end)
            }
            fn horizon(&self) -> Option<u64> {
                Some(self.total)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Raw {
                    #[serde(default)]
                    warmup: u64,
                    total: u64,
                    #[serde(default)]
                    end: f64,
                }
                let r = Raw::deserialize(d)?;
                Self::new(r.warmup, r.total, r.end).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use warmup_decay_schedule;
