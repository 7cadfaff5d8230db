//! The three methods of `sflab pareto` and the core presets they map to (no optimizer math
//! here).
//!
//! | method | preset | lr multiplier |
//! | --- | --- | --- |
//! | `cosine` | [`AdamW`] β = ([`ADAM_BETA1`], [`ADAM_BETA2`]) | linear warmup, cosine to 0 at the run's end |
//! | `linear_decay` | same | linear warmup, linear to 0 at the run's end |
//! | `schedule_free` | [`AdamWScheduleFree`] β = (β, [`ADAM_BETA2`]) | linear warmup, then 1 |
//! | `custom` | [`AdamW`] as the schedules | the `--schedule FILE` schedule (only with that flag, only at `T`) |
//! | `schedule_free_plus` | [`ScheduleFreePlus`] (reference defaults) | its Polyak step × [`SF_PLUS_LR`] = 1, untuned, one run at `T` |
//!
//! Adam `ε` = [`ADAM_EPS`]; weight decay is the protocol's (default 0) for every method.

use std::fmt;

use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamW, AdamWScheduleFree, PresetConfig, ScheduleFreePlus};
use serde::{Deserialize, Serialize};

/// AdamW's first-moment decay for the scheduled baselines.
pub const ADAM_BETA1: f64 = 0.9;
/// Second-moment decay, for every method.
pub const ADAM_BETA2: f64 = 0.95;
/// Adam's denominator offset, for every method.
pub const ADAM_EPS: f64 = 1e-8;
/// Schedule-Free interpolation `β` of the Pareto comparison and the lr sweep.
pub const SF_BETA: f64 = 0.9;
/// ScheduleFree+'s lr multiplier: 1, as its authors run it (learning-rate free, no sweep).
pub const SF_PLUS_LR: f64 = 1.0;

/// A method compared by `sflab pareto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// AdamW, cosine decay to 0 at the run's own length (last iterate).
    Cosine,
    /// AdamW, linear decay to 0 at the run's own length (last iterate).
    LinearDecay,
    /// Schedule-Free AdamW, evaluated at `x`; one run serves every budget.
    ScheduleFree,
    /// AdamW with the `--schedule FILE` schedule (e.g. from `sflab refine`), run at `T`
    /// only; not in [`Method::ALL`] (it runs only when the flag is given).
    Custom,
    /// ScheduleFree+ at lr multiplier [`SF_PLUS_LR`], evaluated at `x`: one untuned run at
    /// `T` read at every budget; not in [`Method::ALL`] (no lr sweep).
    ScheduleFreePlus,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 3] = [Method::Cosine, Method::LinearDecay, Method::ScheduleFree];
    /// The scheduled baselines (one run per budget).
    pub const SCHEDULES: [Method; 2] = [Method::Cosine, Method::LinearDecay];

    /// Machine name used in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Method::Cosine => "cosine",
            Method::LinearDecay => "linear_decay",
            Method::ScheduleFree => "schedule_free",
            Method::Custom => "custom",
            Method::ScheduleFreePlus => "schedule_free_plus",
        }
    }

    /// Short label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Method::Cosine => "Cosine",
            Method::LinearDecay => "LD",
            Method::ScheduleFree => "SF",
            Method::Custom => "Custom",
            Method::ScheduleFreePlus => "SF+",
        }
    }

    /// The core preset for a run of `steps` updates at peak lr `lr` with `warmup` warmup
    /// updates, Schedule-Free interpolation `beta` (ignored by the schedules) and weight
    /// decay `weight_decay`. [`Method::Custom`] gets a constant schedule here:
    /// [`super::ParetoConfig::train_config`] puts the file's schedule in its place.
    pub fn preset(
        self,
        lr: f64,
        beta: f64,
        steps: u64,
        warmup: u64,
        weight_decay: f64,
    ) -> PresetConfig {
        let adamw = AdamW {
            lr,
            betas: (ADAM_BETA1, ADAM_BETA2),
            eps: ADAM_EPS,
            weight_decay,
        };
        match self {
            Method::Cosine => PresetConfig::AdamW {
                config: adamw,
                schedule: ScheduleConfig::Cosine {
                    warmup,
                    total: steps,
                    end: 0.0,
                },
            },
            Method::LinearDecay => PresetConfig::AdamW {
                config: adamw,
                schedule: ScheduleConfig::Linear {
                    warmup,
                    total: steps,
                    end: 0.0,
                },
            },
            Method::Custom => PresetConfig::AdamW {
                config: adamw,
                schedule: ScheduleConfig::Constant {},
            },
            Method::ScheduleFree => PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
                lr,
                betas: (beta, ADAM_BETA2),
                eps: ADAM_EPS,
                weight_decay,
                warmup_steps: warmup,
                ..Default::default()
            }),
            // Its own step size: no warmup, no schedule, no β.
            Method::ScheduleFreePlus => PresetConfig::ScheduleFreePlus(ScheduleFreePlus {
                lr,
                weight_decay,
                ..Default::default()
            }),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one run trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Method.
    pub method: Method,
    /// Length of the run in updates (a budget for the schedules, `T` for Schedule-Free).
    pub steps: u64,
    /// Peak lr.
    pub lr: f64,
    /// Schedule-Free interpolation `β` (the schedules record [`SF_BETA`]; it is unused).
    pub beta: f64,
    /// Seed of the initialisation and batch order (shared by every method and lr).
    pub seed: u64,
    /// Whether the run belongs to the β sweep rather than the lr grid.
    pub beta_sweep: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_free_plus_is_the_untuned_preset() {
        let p = Method::ScheduleFreePlus.preset(SF_PLUS_LR, SF_BETA, 80, 4, 0.0);
        assert_eq!(
            p,
            PresetConfig::ScheduleFreePlus(ScheduleFreePlus::default())
        );
        assert!(p.has_modes());
        assert!(!Method::ALL.contains(&Method::ScheduleFreePlus));
    }

    #[test]
    fn presets_build_and_carry_the_run_length() {
        for m in Method::ALL {
            let p = m.preset(1e-3, 0.95, 80, 4, 0.0);
            assert_eq!(p.lr(), 1e-3);
            assert_eq!(p.has_modes(), m == Method::ScheduleFree, "{m}");
            assert!(p.build_dyn::<f32>().is_ok(), "{m}");
            match p {
                PresetConfig::AdamW {
                    schedule: ScheduleConfig::Cosine { total, warmup, .. },
                    ..
                } => {
                    assert_eq!((m, total, warmup), (Method::Cosine, 80, 4));
                }
                PresetConfig::AdamW {
                    schedule: ScheduleConfig::Linear { total, warmup, .. },
                    ..
                } => {
                    assert_eq!((m, total, warmup), (Method::LinearDecay, 80, 4));
                }
                PresetConfig::AdamWScheduleFree(c) => {
                    assert_eq!(
                        (m, c.betas.0, c.warmup_steps),
                        (Method::ScheduleFree, 0.95, 4)
                    );
                }
                other => panic!("unexpected preset {other:?}"),
            }
        }
    }
}
