//! A weight-decay policy chosen at run time (config files, the lab).

use super::{
    AnyDecay, Corrected, Decay, DecayContext, DecayScalars, NoDecay, Projected, Projection,
};
use crate::error::ConfigError;

/// What happens to the parameters tagged `normalized`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NormalizedPolicy {
    /// The base policy, like every other parameter (AdamW/SGD as usual).
    #[default]
    Standard,
    /// [`Corrected`]: AdamC / SGDC.
    Corrected {
        /// Explicit `γ_max`; absent: the running maximum of the lr.
        #[serde(default)]
        peak_lr: Option<f64>,
    },
    /// [`Projected`]: no decay, rows projected onto fixed-radius spheres.
    Projected(Projection),
    /// No decay (and no projection).
    NoDecay,
}

/// Any decay policy as one value: a base policy for ordinary parameters and a
/// [`NormalizedPolicy`] for the ones tagged `normalized`
/// (`{"base": "decoupled", "normalized": {"kind": "corrected"}}` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayConfig {
    /// Policy of ordinary parameters (and of normalized ones under `standard`).
    pub base: AnyDecay,
    /// Treatment of the normalized parameters.
    #[serde(default)]
    pub normalized: NormalizedPolicy,
}

impl DecayConfig {
    /// Plain `base` for every parameter.
    pub fn standard(base: AnyDecay) -> Self {
        DecayConfig {
            base,
            normalized: NormalizedPolicy::Standard,
        }
    }
}

impl Decay for DecayConfig {
    fn name(&self) -> &'static str {
        match self.normalized {
            NormalizedPolicy::Standard => self.base.name(),
            NormalizedPolicy::Corrected { .. } => "corrected",
            NormalizedPolicy::Projected(_) => "projected",
            NormalizedPolicy::NoDecay => "normalized_no_decay",
        }
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        match self.normalized {
            NormalizedPolicy::Standard => self.base.scalars(ctx),
            NormalizedPolicy::Corrected { peak_lr } => Corrected {
                base: self.base,
                peak_lr,
            }
            .scalars(ctx),
            NormalizedPolicy::Projected(projection) => Projected {
                base: self.base,
                projection,
            }
            .scalars(ctx),
            NormalizedPolicy::NoDecay if ctx.normalized => NoDecay.scalars(ctx),
            NormalizedPolicy::NoDecay => self.base.scalars(ctx),
        }
    }
    fn validate(&self) -> Result<(), ConfigError> {
        match self.normalized {
            NormalizedPolicy::Corrected { peak_lr } => Corrected {
                base: self.base,
                peak_lr,
            }
            .validate(),
            NormalizedPolicy::Projected(p) => p.validate(),
            _ => Ok(()),
        }
    }
    fn projection(&self) -> Option<Projection> {
        match self.normalized {
            NormalizedPolicy::Projected(p) => Some(p),
            _ => None,
        }
    }
}
