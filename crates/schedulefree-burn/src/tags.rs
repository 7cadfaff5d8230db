//! Which parameters of a burn module are tagged `normalized` or `no_decay`: the core's
//! [`TagRules`] over each parameter's module path and the burn type of the module that owns
//! it (`"Linear"`, `"Conv2d"`, `"LayerNorm"`), which [`select_tags`] lists and
//! [`ModelOptimizer::with_tag_rules`](crate::ModelOptimizer::with_tag_rules) applies. burn
//! records owner types, so [`TagRules::standard`] goes by [`NORM_LAYER_TYPES`] here.

use schedulefree::ParamTags;
pub use schedulefree::tags::{NORM_LAYER_TYPES, RegexError, Selector, TagRules};

use crate::error::BurnAdapterError;
use crate::module_params::{check_unique, param_meta};

/// One float parameter of a module and the tags that [`TagRules`] give it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedParam {
    /// Module path (`"blocks.0.fc.weight"`): the optimizer's state key.
    pub path: String,
    /// Type of the struct that declares the parameter field (`"Linear"` for
    /// `"blocks.0.fc.weight"`; the root module's type for its own fields).
    pub owner: String,
    /// Shape (burn's `Linear` weight is `[d_input, d_output]`).
    pub shape: Vec<usize>,
    /// The tags.
    pub tags: ParamTags,
}

impl std::fmt::Display for SelectedParam {
    /// `blocks.0.fc.weight (Linear) [4, 8]: normalized` (or `no_decay`, both, `-`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) {:?}: {}",
            self.path, self.owner, self.shape, self.tags
        )
    }
}

/// What `rules` select on `module`: every float parameter (including batch norm's running
/// statistics, which burn stores as float tensors but which get no gradient) with its owning
/// layer type, shape and tags, in module order. Print it to check a configuration before
/// training.
///
/// # Errors
/// [`BurnAdapterError::DuplicatePath`]. No tensor data is read.
pub fn select_tags<M: burn::module::Module>(
    module: &M,
    rules: &TagRules,
) -> Result<Vec<SelectedParam>, BurnAdapterError> {
    let params = param_meta(module);
    check_unique(params.iter().map(|p| p.path.as_str()))?;
    Ok(params
        .into_iter()
        .map(|p| SelectedParam {
            tags: rules.tags_for(&p.path, &p.owner),
            path: p.path,
            owner: p.owner,
            shape: p.shape,
        })
        .collect())
}
