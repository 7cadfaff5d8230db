//! Which parameters of a burn module are tagged `normalized` (feed a normalization layer:
//! AdamC's corrected decay and the hypersphere projection act on them) or `no_decay` (norm
//! gains, biases), selected by module path, regex or layer type (ALGORITHMS.md §10.4–10.5).
//! The burn counterpart of PyTorch's parameter groups built from `named_modules()`.

use regex::Regex;
use schedulefree::ParamTags;

use crate::error::BurnAdapterError;
use crate::module_params::{check_unique, param_meta};

/// Layer types whose parameters are gains and shifts of a normalization (burn's container
/// type names, without the `Struct:` prefix): every parameter of these is `no_decay` under
/// [`TagRules::standard`], including batch norm's running statistics (which get no
/// gradient, so the optimizer never touches them anyway).
pub const NORM_LAYER_TYPES: [&str; 5] = [
    "LayerNorm",
    "BatchNorm",
    "RmsNorm",
    "GroupNorm",
    "InstanceNorm",
];

/// One way of naming parameters. A parameter is named by its module path (fields joined by
/// `.`, `Vec`/array/tuple elements by their index: `"blocks.0.layers.1.weight"`) and by the
/// type of the innermost module that owns it (`"Linear"` for that path).
#[derive(Debug, Clone)]
pub enum Selector {
    /// Exactly this module path (`"layers.0.weight"`).
    Path(String),
    /// This path or any path under it (`"head"` selects `"head.weight"` and `"head.bias"`,
    /// not `"header.weight"`).
    Under(String),
    /// Paths matching this regex (anywhere in the path unless anchored with `^…$`).
    Regex(Regex),
    /// Parameters of modules of this burn type (`"Linear"`, `"Conv2d"`, `"LayerNorm"`; the
    /// innermost module that owns the parameter, as burn's `#[derive(Module)]` names it),
    /// optionally only the field `param` (`"weight"`, `"gamma"`, `"bias"`).
    LayerType {
        /// Module type name without generics or `Struct:` (`"BatchNorm"`).
        layer: String,
        /// Field name of the parameter inside that module; `None`: all of them.
        param: Option<String>,
    },
    /// Every parameter whose field name (last path segment) is this (`"bias"`).
    ParamName(String),
}

impl Selector {
    /// Whether the parameter at `path`, owned by a module of type `owner`, is selected.
    pub fn matches(&self, path: &str, owner: &str) -> bool {
        let field = path.rsplit('.').next().unwrap_or(path);
        match self {
            Selector::Path(p) => p == path,
            Selector::Under(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.')),
            Selector::Regex(r) => r.is_match(path),
            Selector::LayerType { layer, param } => {
                owner == layer && param.as_deref().is_none_or(|p| p == field)
            }
            Selector::ParamName(n) => n == field,
        }
    }
}

/// Rules that tag parameters: a parameter is `normalized` if a `normalized` selector matches
/// it and no `exclude` selector does; `no_decay` if a `no_decay` selector matches it.
///
/// [`TagRules::standard`] is the usual convention (PyTorch users write it as two parameter
/// groups): gains and shifts of normalization layers and every bias get no decay, and are
/// kept out of `normalized` (a gain or shift vector never is a weight matrix feeding a
/// normalization, and projecting it would pin each element's magnitude). Nothing is
/// `normalized` until you say which weights feed a normalization, because burn modules do
/// not record the graph: e.g. [`TagRules::normalized_layer_type`]`("Linear", "weight")` with
/// [`TagRules::exclude_path`] for the output layer (the AdamC paper's choice for LLMs: every
/// linear layer except the output layer, ALGORITHMS.md §10.4).
///
/// ```
/// use schedulefree_burn::TagRules;
/// let rules = TagRules::standard().normalized_layer_type("Linear", "weight").exclude_path("head");
/// let t = rules.tags_for("blocks.0.fc.weight", "Linear");
/// assert!(t.normalized && !t.no_decay);
/// assert!(!rules.tags_for("head.weight", "Linear").normalized);
/// assert!(rules.tags_for("blocks.0.ln.gamma", "LayerNorm").no_decay);
/// ```
///
/// A parameter may be both: then it gets no decay, and the projection of
/// [`schedulefree::decay::Projected`] still applies to it. [`select_tags`] lists what the
/// rules select on a module; [`ModelOptimizer::with_tag_rules`](crate::ModelOptimizer::with_tag_rules)
/// applies them.
#[derive(Debug, Clone, Default)]
pub struct TagRules {
    normalized: Vec<Selector>,
    exclude: Vec<Selector>,
    no_decay: Vec<Selector>,
}

impl TagRules {
    /// No tags at all (every parameter decays by the base policy).
    pub fn new() -> Self {
        Self::default()
    }

    /// `no_decay` (and never `normalized`) for every parameter of a normalization layer
    /// ([`NORM_LAYER_TYPES`]) and for every parameter named `bias`.
    pub fn standard() -> Self {
        let mut fixed: Vec<Selector> = NORM_LAYER_TYPES
            .iter()
            .map(|t| Selector::LayerType {
                layer: t.to_string(),
                param: None,
            })
            .collect();
        fixed.push(Selector::ParamName("bias".into()));
        TagRules {
            normalized: Vec::new(),
            exclude: fixed.clone(),
            no_decay: fixed,
        }
    }

    /// Tag the parameter at `path` normalized.
    pub fn normalized_path(self, path: &str) -> Self {
        self.normalized(Selector::Path(path.to_string()))
    }

    /// Tag parameters whose path matches `pattern` normalized.
    ///
    /// # Errors
    /// [`BurnAdapterError::Regex`] for an invalid pattern.
    pub fn normalized_regex(self, pattern: &str) -> Result<Self, BurnAdapterError> {
        Ok(self.normalized(Selector::Regex(regex(pattern)?)))
    }

    /// Tag the field `param` of every module of type `layer` normalized (e.g.
    /// `("Linear", "weight")`, `("Conv2d", "weight")`).
    pub fn normalized_layer_type(self, layer: &str, param: &str) -> Self {
        self.normalized(Selector::LayerType {
            layer: layer.to_string(),
            param: Some(param.to_string()),
        })
    }

    /// Never tag the parameter at `path`, or the parameters of the module at `path`,
    /// normalized: the output layer, which feeds the loss, not a normalization.
    pub fn exclude_path(self, path: &str) -> Self {
        self.exclude(Selector::Under(path.to_string()))
    }

    /// Never tag parameters whose path matches `pattern` normalized.
    ///
    /// # Errors
    /// [`BurnAdapterError::Regex`] for an invalid pattern.
    pub fn exclude_regex(self, pattern: &str) -> Result<Self, BurnAdapterError> {
        Ok(self.exclude(Selector::Regex(regex(pattern)?)))
    }

    /// Tag the parameter at `path` (or the parameters under the module at `path`) no-decay.
    pub fn no_decay_path(self, path: &str) -> Self {
        self.no_decay(Selector::Under(path.to_string()))
    }

    /// Tag parameters whose path matches `pattern` no-decay.
    ///
    /// # Errors
    /// [`BurnAdapterError::Regex`] for an invalid pattern.
    pub fn no_decay_regex(self, pattern: &str) -> Result<Self, BurnAdapterError> {
        Ok(self.no_decay(Selector::Regex(regex(pattern)?)))
    }

    /// Tag every parameter of modules of type `layer` no-decay (e.g. `"Embedding"`).
    pub fn no_decay_layer_type(self, layer: &str) -> Self {
        self.no_decay(Selector::LayerType {
            layer: layer.to_string(),
            param: None,
        })
    }

    /// Add any selector to the normalized ones.
    pub fn normalized(mut self, s: Selector) -> Self {
        self.normalized.push(s);
        self
    }

    /// Add any selector to the exclusions from `normalized`.
    pub fn exclude(mut self, s: Selector) -> Self {
        self.exclude.push(s);
        self
    }

    /// Add any selector to the no-decay ones.
    pub fn no_decay(mut self, s: Selector) -> Self {
        self.no_decay.push(s);
        self
    }

    /// The tags of the parameter at `path` whose innermost owning module has type `owner`
    /// (`""` if unknown).
    pub fn tags_for(&self, path: &str, owner: &str) -> ParamTags {
        let any = |v: &[Selector]| v.iter().any(|s| s.matches(path, owner));
        ParamTags {
            normalized: any(&self.normalized) && !any(&self.exclude),
            no_decay: any(&self.no_decay),
        }
    }
}

fn regex(pattern: &str) -> Result<Regex, BurnAdapterError> {
    Regex::new(pattern).map_err(|e| BurnAdapterError::Regex {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

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
        let tags = match (self.tags.normalized, self.tags.no_decay) {
            (true, true) => "normalized, no_decay",
            (true, false) => "normalized",
            (false, true) => "no_decay",
            (false, false) => "-",
        };
        write!(f, "{} ({}) {:?}: {tags}", self.path, self.owner, self.shape)
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
