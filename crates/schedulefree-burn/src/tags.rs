//! Which parameters of a burn module are tagged `normalized` (feed a normalization layer:
//! AdamC's corrected decay and the hypersphere projection act on them) or `no_decay` (norm
//! gains, biases), selected by module path, regex or layer type (ALGORITHMS.md §10.4).

use regex::Regex;
use schedulefree::ParamTags;

use crate::error::BurnAdapterError;
use crate::module_params::read_params;

/// Layer types whose parameters are gains and shifts of a normalization (burn's container
/// type names, without the `Struct:` prefix).
pub const NORM_LAYER_TYPES: [&str; 5] = ["LayerNorm", "BatchNorm", "RmsNorm", "GroupNorm", "InstanceNorm"];

/// One way of naming parameters.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Exactly this module path (`"layers.0.weight"`).
    Path(String),
    /// Paths matching this regex (anywhere in the path unless anchored).
    Regex(Regex),
    /// Parameters of modules of this burn type (`"Linear"`, `"Conv2d"`, `"LayerNorm"`; the
    /// innermost module that owns the parameter), optionally only the field `param`
    /// (`"weight"`, `"gamma"`, `"bias"`).
    LayerType {
        /// Module type name, as burn's `#[derive(Module)]` reports it, without `Struct:`.
        layer: String,
        /// Field name of the parameter inside that module; `None`: all of them.
        param: Option<String>,
    },
    /// Every parameter whose field name is this (`"bias"`).
    ParamName(String),
}

impl Selector {
    fn matches(&self, path: &str, owner: &str) -> bool {
        let field = path.rsplit('.').next().unwrap_or(path);
        match self {
            Selector::Path(p) => p == path,
            Selector::Regex(r) => r.is_match(path),
            Selector::LayerType { layer, param } => {
                owner == layer && param.as_deref().is_none_or(|p| p == field)
            }
            Selector::ParamName(n) => n == field,
        }
    }
}

/// Rules that tag parameters: a parameter is `normalized` if any `normalized` selector
/// matches and no `exclude` selector does; `no_decay` if any `no_decay` selector matches.
///
/// [`TagRules::standard`] is the usual convention: gains and shifts of normalization layers
/// and every bias get no decay; nothing is `normalized` until you say which weights feed a
/// normalization (burn modules do not record the graph), e.g. with
/// [`TagRules::normalized_layer_type`]`("Linear", "weight")` and
/// [`TagRules::exclude_path`] for the output layer (the AdamC paper's choice for LLMs).
/// [`select_tags`] lists what the rules select on a module.
#[derive(Debug, Clone, Default)]
pub struct TagRules {
    normalized: Vec<Selector>,
    exclude: Vec<Selector>,
    no_decay: Vec<Selector>,
}

impl TagRules {
    /// No tags at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// `no_decay` for every parameter of a normalization layer ([`NORM_LAYER_TYPES`]) and for
    /// every `bias`.
    pub fn standard() -> Self {
        let mut r = Self::new();
        for t in NORM_LAYER_TYPES {
            r.no_decay.push(Selector::LayerType { layer: t.to_string(), param: None });
        }
        r.no_decay.push(Selector::ParamName("bias".into()));
        r
    }

    /// Tag the parameter at `path` normalized.
    pub fn normalized_path(mut self, path: &str) -> Self {
        self.normalized.push(Selector::Path(path.to_string()));
        self
    }

    /// Tag parameters whose path matches `pattern` normalized.
    ///
    /// # Errors
    /// [`BurnAdapterError::Regex`] for an invalid pattern.
    pub fn normalized_regex(mut self, pattern: &str) -> Result<Self, BurnAdapterError> {
        self.normalized.push(Selector::Regex(regex(pattern)?));
        Ok(self)
    }

    /// Tag the field `param` of every module of type `layer` normalized (e.g.
    /// `("Linear", "weight")`).
    pub fn normalized_layer_type(mut self, layer: &str, param: &str) -> Self {
        self.normalized.push(Selector::LayerType { layer: layer.to_string(), param: Some(param.to_string()) });
        self
    }

    /// Never tag the parameter at `path` (or the parameters under the module at `path`)
    /// normalized: the output layer, which feeds the loss, not a normalization.
    pub fn exclude_path(mut self, path: &str) -> Self {
        let escaped = regex::escape(path);
        let r = Regex::new(&format!("^{escaped}(\\..*)?$")).expect("escaped path is a valid regex");
        self.exclude.push(Selector::Regex(r));
        self
    }

    /// Tag the parameter at `path` no-decay.
    pub fn no_decay_path(mut self, path: &str) -> Self {
        self.no_decay.push(Selector::Path(path.to_string()));
        self
    }

    /// Tag parameters whose path matches `pattern` no-decay.
    ///
    /// # Errors
    /// [`BurnAdapterError::Regex`] for an invalid pattern.
    pub fn no_decay_regex(mut self, pattern: &str) -> Result<Self, BurnAdapterError> {
        self.no_decay.push(Selector::Regex(regex(pattern)?));
        Ok(self)
    }

    /// Add any selector to the normalized ones.
    pub fn normalized(mut self, s: Selector) -> Self {
        self.normalized.push(s);
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
        ParamTags { normalized: any(&self.normalized) && !any(&self.exclude), no_decay: any(&self.no_decay) }
    }
}

fn regex(pattern: &str) -> Result<Regex, BurnAdapterError> {
    Regex::new(pattern).map_err(|e| BurnAdapterError::Regex { pattern: pattern.to_string(), message: e.to_string() })
}

/// What `rules` select on `module`: every float parameter's path, owning layer type and
/// tags, in module order (print it to check a configuration).
///
/// # Errors
/// [`BurnAdapterError::Tensor`], [`BurnAdapterError::DuplicatePath`].
pub fn select_tags<M: burn::module::Module>(
    module: &M,
    rules: &TagRules,
) -> Result<Vec<(String, String, ParamTags)>, BurnAdapterError> {
    Ok(read_params(module)?
        .into_iter()
        .map(|p| {
            let tags = rules.tags_for(&p.path, &p.owner);
            (p.path, p.owner, tags)
        })
        .collect())
}
