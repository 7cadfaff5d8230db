//! One serde value naming any preset, for code that picks the method at run time: framework
//! adapters, config files and the lab. It owns no math; it only calls the presets' builders.

use super::composed::Composed;
use super::dynamic::DynOptimizer;
use crate::element::Element;
use crate::error::ConfigError;
use crate::presets::{
    AdamC, AdamW, AdamWScheduleFree, AdamWScheduleFreePaper, AdamWScheduleFreeReference,
    RAdamScheduleFree, ScheduleFreePlus, SgdC, SgdScheduleFree, SgdScheduleFreeReference, TorchSgd,
};
use crate::schedule::ScheduleConfig;

/// A preset and its hyperparameters, as one tagged value (`{"method": "adamw_schedule_free",
/// "lr": 0.0025, ...}` in JSON; `{"method": "adamw", "config": {...}, "schedule": {...}}` for the
/// last-iterate presets). Unknown keys are errors. Each variant's fields and defaults are those of the preset of
/// the same name (see [`crate::presets`]); the last-iterate presets also carry the schedule
/// that multiplies their `lr`.
///
/// ```
/// use schedulefree::{PresetConfig, AdamWScheduleFree};
/// let p: PresetConfig = serde_json::from_str(r#"{"method": "adamw_schedule_free", "lr": 0.01}"#).unwrap();
/// assert_eq!(p, PresetConfig::AdamWScheduleFree(AdamWScheduleFree { lr: 0.01, ..Default::default() }));
/// let mut opt = p.build_dyn::<f32>().unwrap();
/// opt.add_param_to(0, "w", &[3]).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PresetConfig {
    /// [`SgdScheduleFree`].
    SgdScheduleFree(SgdScheduleFree),
    /// [`SgdScheduleFreeReference`].
    SgdScheduleFreeReference(SgdScheduleFree),
    /// [`AdamWScheduleFree`].
    #[serde(rename = "adamw_schedule_free")]
    AdamWScheduleFree(AdamWScheduleFree),
    /// [`AdamWScheduleFreePaper`].
    #[serde(rename = "adamw_schedule_free_paper")]
    AdamWScheduleFreePaper(AdamWScheduleFree),
    /// [`AdamWScheduleFreeReference`].
    #[serde(rename = "adamw_schedule_free_reference")]
    AdamWScheduleFreeReference(AdamWScheduleFreeReference),
    /// [`RAdamScheduleFree`].
    #[serde(rename = "radam_schedule_free")]
    RAdamScheduleFree(RAdamScheduleFree),
    /// [`ScheduleFreePlus`] (steps need the loss: `step_with_loss`).
    #[serde(rename = "schedule_free_plus")]
    ScheduleFreePlus(ScheduleFreePlus),
    /// [`AdamW`] driven by `schedule`.
    #[serde(rename = "adamw")]
    AdamW {
        /// The optimizer's hyperparameters.
        #[serde(default)]
        config: AdamW,
        /// Multiplier of `lr` per update (default constant).
        #[serde(default = "constant")]
        schedule: ScheduleConfig,
    },
    /// [`TorchSgd`] driven by `schedule` (JSON name `"sgd"`, kept from before the preset's
    /// rename).
    Sgd {
        /// The optimizer's hyperparameters.
        #[serde(default)]
        config: TorchSgd,
        /// Multiplier of `lr` per update (default constant).
        #[serde(default = "constant")]
        schedule: ScheduleConfig,
    },
    /// [`AdamC`] driven by `schedule`.
    #[serde(rename = "adamc")]
    AdamC {
        /// The optimizer's hyperparameters.
        #[serde(default)]
        config: AdamC,
        /// Multiplier of `lr` per update (default constant).
        #[serde(default = "constant")]
        schedule: ScheduleConfig,
    },
    /// [`SgdC`] driven by `schedule`.
    #[serde(rename = "sgdc")]
    SgdC {
        /// The optimizer's hyperparameters.
        #[serde(default)]
        config: SgdC,
        /// Multiplier of `lr` per update (default constant).
        #[serde(default = "constant")]
        schedule: ScheduleConfig,
    },
    /// Any learner × conversion × decay policy ([`Composed`]).
    Composed(Composed),
}

fn constant() -> ScheduleConfig {
    ScheduleConfig::Constant {}
}

fn boxed<T: Element, O: DynOptimizer<T> + 'static>(
    o: Result<O, ConfigError>,
) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
    Ok(Box::new(o?))
}

impl PresetConfig {
    /// The preset's name as written in the `method` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SgdScheduleFree(_) => "sgd_schedule_free",
            Self::SgdScheduleFreeReference(_) => "sgd_schedule_free_reference",
            Self::AdamWScheduleFree(_) => "adamw_schedule_free",
            Self::AdamWScheduleFreePaper(_) => "adamw_schedule_free_paper",
            Self::AdamWScheduleFreeReference(_) => "adamw_schedule_free_reference",
            Self::RAdamScheduleFree(_) => "radam_schedule_free",
            Self::ScheduleFreePlus(_) => "schedule_free_plus",
            Self::AdamW { .. } => "adamw",
            Self::Sgd { .. } => "sgd",
            Self::AdamC { .. } => "adamc",
            Self::SgdC { .. } => "sgdc",
            Self::Composed(_) => "composed",
        }
    }

    /// Peak lr of group 0.
    pub fn lr(&self) -> f64 {
        match self {
            Self::SgdScheduleFree(c) | Self::SgdScheduleFreeReference(c) => c.lr,
            Self::AdamWScheduleFree(c) | Self::AdamWScheduleFreePaper(c) => c.lr,
            Self::AdamWScheduleFreeReference(c) => c.config.lr,
            Self::RAdamScheduleFree(c) => c.lr,
            Self::ScheduleFreePlus(c) => c.lr,
            Self::AdamW { config, .. } => config.lr,
            Self::Sgd { config, .. } => config.lr,
            Self::AdamC { config, .. } => config.lr,
            Self::SgdC { config, .. } => config.lr,
            Self::Composed(c) => c.lr,
        }
    }

    /// Set the peak lr of group 0.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Self::SgdScheduleFree(c) | Self::SgdScheduleFreeReference(c) => c.lr = lr,
            Self::AdamWScheduleFree(c) | Self::AdamWScheduleFreePaper(c) => c.lr = lr,
            Self::AdamWScheduleFreeReference(c) => c.config.lr = lr,
            Self::RAdamScheduleFree(c) => c.lr = lr,
            Self::ScheduleFreePlus(c) => c.lr = lr,
            Self::AdamW { config, .. } => config.lr = lr,
            Self::Sgd { config, .. } => config.lr = lr,
            Self::AdamC { config, .. } => config.lr = lr,
            Self::SgdC { config, .. } => config.lr = lr,
            Self::Composed(c) => c.lr = lr,
        }
    }

    /// Set the weight decay `λ` of group 0.
    pub fn set_weight_decay(&mut self, wd: f64) {
        match self {
            Self::SgdScheduleFree(c) | Self::SgdScheduleFreeReference(c) => c.weight_decay = wd,
            Self::AdamWScheduleFree(c) | Self::AdamWScheduleFreePaper(c) => c.weight_decay = wd,
            Self::AdamWScheduleFreeReference(c) => c.config.weight_decay = wd,
            Self::RAdamScheduleFree(c) => c.weight_decay = wd,
            Self::ScheduleFreePlus(c) => c.weight_decay = wd,
            Self::AdamW { config, .. } => config.weight_decay = wd,
            Self::Sgd { config, .. } => config.weight_decay = wd,
            Self::AdamC { config, .. } => config.weight_decay = wd,
            Self::SgdC { config, .. } => config.weight_decay = wd,
            Self::Composed(c) => c.weight_decay = wd,
        }
    }

    /// Whether the preset returns a point other than its training buffer (Schedule-Free:
    /// evaluate and checkpoint at `x`, not at `y`).
    pub fn has_modes(&self) -> bool {
        match self {
            Self::AdamW { .. } | Self::Sgd { .. } | Self::AdamC { .. } | Self::SgdC { .. } => false,
            Self::Composed(c) => c.has_modes(),
            _ => true,
        }
    }

    /// Build the optimizer behind the object-safe interface, with one group (index 0) holding
    /// the preset's `lr` and `weight_decay` and no parameters yet.
    ///
    /// # Errors
    /// The preset builder's [`ConfigError`] (out-of-range hyperparameters, invalid schedule).
    pub fn build_dyn<T: Element>(&self) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
        T::preset_dyn(self)
    }

    /// [`PresetConfig::build_dyn`], instantiated only by this crate's `Element` impls.
    pub(crate) fn build_dyn_here<T: Element>(
        &self,
    ) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
        match self {
            Self::SgdScheduleFree(c) => boxed(c.build::<T>()),
            Self::SgdScheduleFreeReference(c) => boxed(SgdScheduleFreeReference(*c).build::<T>()),
            Self::AdamWScheduleFree(c) => boxed(c.build::<T>()),
            Self::AdamWScheduleFreePaper(c) => boxed(AdamWScheduleFreePaper(*c).build::<T>()),
            Self::AdamWScheduleFreeReference(c) => boxed(c.build::<T>()),
            Self::RAdamScheduleFree(c) => boxed(c.build::<T>()),
            Self::ScheduleFreePlus(c) => boxed(c.build::<T>()),
            Self::AdamW { config, schedule } => boxed(config.build::<T, _>(schedule.build()?)),
            Self::Sgd { config, schedule } => boxed(config.build::<T, _>(schedule.build()?)),
            Self::AdamC { config, schedule } => boxed(config.build::<T, _>(schedule.build()?)),
            Self::SgdC { config, schedule } => boxed(config.build::<T, _>(schedule.build()?)),
            Self::Composed(c) => c.build_dyn::<T>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_and_builds() {
        let all = [
            PresetConfig::SgdScheduleFree(SgdScheduleFree::default()),
            PresetConfig::SgdScheduleFreeReference(SgdScheduleFree::default()),
            PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default()),
            PresetConfig::AdamWScheduleFreePaper(AdamWScheduleFree::default()),
            PresetConfig::AdamWScheduleFreeReference(AdamWScheduleFreeReference::default()),
            PresetConfig::RAdamScheduleFree(RAdamScheduleFree::default()),
            PresetConfig::ScheduleFreePlus(ScheduleFreePlus::default()),
            PresetConfig::AdamW {
                config: AdamW::default(),
                schedule: ScheduleConfig::Constant {},
            },
            PresetConfig::Sgd {
                config: TorchSgd::default(),
                schedule: ScheduleConfig::Cosine {
                    warmup: 2,
                    total: 10,
                    end: 0.0,
                },
            },
        ];
        for p in all {
            let json = serde_json::to_string(&p).expect("serializable");
            assert!(json.contains(p.name()), "{json}");
            let back: PresetConfig = serde_json::from_str(&json).expect("round trip");
            assert_eq!(back, p);
            let opt = p.build_dyn::<f32>().expect("defaults are valid");
            assert_eq!(opt.has_modes(), p.has_modes(), "{}", p.name());
            assert_eq!(opt.group_config(0).map(|g| g.lr), Some(p.lr()));
        }
    }

    #[test]
    fn invalid_values_and_unknown_keys_are_errors() {
        let p: PresetConfig =
            serde_json::from_str(r#"{"method": "adamw_schedule_free", "lr": -1.0}"#)
                .expect("parses");
        assert!(matches!(
            p.build_dyn::<f32>(),
            Err(ConfigError::OutOfRange { .. })
        ));
        let bad = serde_json::from_str::<PresetConfig>(
            r#"{"method": "adamw_schedule_free", "lrr": 1.0}"#,
        );
        assert!(bad.is_err());
        let s: PresetConfig = serde_json::from_str(
            r#"{"method": "adamw", "config": {"lr": 0.1}, "schedule": {"kind": "linear", "warmup": 20, "total": 10}}"#,
        )
        .expect("parses");
        assert!(matches!(
            s.build_dyn::<f32>(),
            Err(ConfigError::Schedule(_))
        ));
    }
}
