//! Which vars are tagged `normalized` or `no_decay`: the core's [`TagRules`] over `VarMap`
//! names, which [`select_tags`] lists and
//! [`ScheduleFreeOptimizer::from_varmap_tagged`](crate::ScheduleFreeOptimizer::from_varmap_tagged)
//! applies.
//!
//! candle has no layer types at run time: a `VarMap` holds names and tensors only, and a
//! LayerNorm's gain is `ln1.weight` exactly as a Linear's matrix is `fc1.weight`. So every
//! var's owner type is unknown (`""` in [`TagRules::tags_for`]), and [`TagRules::standard`]
//! goes by layer names ([`NORM_LAYER_PATTERN`], configurable with
//! [`TagRules::standard_with`]) and var names ([`NO_DECAY_VAR_NAMES`]).

pub use schedulefree::tags::{
    NO_DECAY_VAR_NAMES, NORM_LAYER_PATTERN, RegexError, Selector, TagRules,
};

use candle_core::DType;
use candle_nn::VarMap;
use schedulefree::ParamTags;

use crate::error::CandleAdapterError;
use crate::optimizer::varmap_vars;

/// One var of a `VarMap` and the tags that [`TagRules`] give it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedVar {
    /// `VarMap` name (the optimizer's state key with
    /// [`ScheduleFreeOptimizer::from_varmap_tagged`](crate::ScheduleFreeOptimizer::from_varmap_tagged)).
    pub name: String,
    /// Shape (candle's `Linear` weight is `[out, in]`).
    pub shape: Vec<usize>,
    /// The var's dtype.
    pub dtype: DType,
    /// The tags.
    pub tags: ParamTags,
}

impl std::fmt::Display for SelectedVar {
    /// `fc1.weight [8, 3]: normalized` (or `no_decay`, both, `-`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.name, self.shape, self.tags)
    }
}

/// What `rules` select on `varmap`: every floating-point var with its shape, dtype and tags,
/// sorted by name (the optimizer's order). Print it to check a configuration before
/// training.
///
/// # Errors
/// [`CandleAdapterError::VarMapPoisoned`].
pub fn select_tags(
    varmap: &VarMap,
    rules: &TagRules,
) -> Result<Vec<SelectedVar>, CandleAdapterError> {
    Ok(varmap_vars(varmap)?
        .into_iter()
        .filter(|(_, v)| v.dtype().is_float())
        .map(|(name, v)| SelectedVar {
            tags: rules.tags_for(&name, ""),
            shape: v.dims().to_vec(),
            dtype: v.dtype(),
            name,
        })
        .collect())
}
