//! Which vars are tagged `normalized` (weights feeding a normalization layer: AdamC's
//! corrected decay and the hypersphere projection act on them) or `no_decay` (norm gains,
//! shifts and biases), selected by `VarMap` name (ALGORITHMS.md §10.4–10.5): the candle
//! counterpart of PyTorch's parameter groups built from `named_parameters()`.
//!
//! candle has no layer types at run time: a `VarMap` holds names and tensors only, and a
//! LayerNorm's gain is `ln1.weight` exactly as a Linear's matrix is `fc1.weight`. So the
//! standard convention here is name-based, with the layer-name pattern
//! [`NORM_LAYER_PATTERN`] (configurable with [`TagRules::standard_with`]).

use candle_core::DType;
use candle_nn::VarMap;
use regex::Regex;
use schedulefree::ParamTags;

use crate::error::CandleAdapterError;
use crate::optimizer::varmap_vars;

/// Names of normalization layers in [`TagRules::standard`], matched against the layer name
/// (the segment before the var's own name: `ln1` in `blocks.0.ln1.weight`), case-insensitive:
/// any name containing `norm` (`norm1`, `layer_norm`, `LayerNorm`, `input_layernorm`,
/// `final_norm`, `rms_norm`) and the abbreviations `ln`, `bn`, `gn` alone or followed by digits
/// or `_…` (`ln1`, `ln_f`, `bn2`). candle_nn's `layer_norm`, `rms_norm`, `batch_norm` and
/// `group_norm` name their vars `weight`, `bias` (`gamma`/`beta` in old checkpoints),
/// `running_mean` and `running_var` under that layer name.
pub const NORM_LAYER_PATTERN: &str = r"(?i)(norm|^(ln|bn|gn)(\d+|_.*)?$)";

/// Var names (last name segment) that [`TagRules::standard`] exempts from decay wherever
/// they are: biases, LayerNorm shifts in the old `beta` naming, and batch-norm statistics
/// (`candle_nn::batch_norm` keeps them in the `VarMap`; they get no gradient, so the
/// optimizer never moves them).
pub const NO_DECAY_VAR_NAMES: [&str; 4] = ["bias", "beta", "running_mean", "running_var"];

/// One way of naming vars by their `VarMap` name (`"blocks.0.fc1.weight"`).
#[derive(Debug, Clone)]
pub enum Selector {
    /// Exactly this name.
    Path(String),
    /// This name or any name under it (`"head"` selects `"head.weight"` and `"head.bias"`,
    /// not `"header.weight"`).
    Under(String),
    /// Names matching this regex (anywhere in the name unless anchored with `^…$`).
    Regex(Regex),
    /// Vars whose layer name (the segment before the last: `ln1` in `blocks.0.ln1.weight`;
    /// empty for a name without `.`) matches this regex.
    LayerName(Regex),
    /// Vars whose own name (the last segment) is this (`"bias"`).
    VarName(String),
}

impl Selector {
    /// Whether the var named `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        let mut segments = name.rsplit('.');
        let own = segments.next().unwrap_or(name);
        match self {
            Selector::Path(p) => p == name,
            Selector::Under(p) => name
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.')),
            Selector::Regex(r) => r.is_match(name),
            Selector::LayerName(r) => r.is_match(segments.next().unwrap_or("")),
            Selector::VarName(n) => n == own,
        }
    }
}

/// Rules that tag vars by name: a var is `normalized` if a `normalized` selector matches it
/// and no `exclude` selector does; `no_decay` if a `no_decay` selector matches it.
///
/// [`TagRules::standard`] is the usual convention (PyTorch users write it as two parameter
/// groups): every var of a normalization layer and every bias gets no decay, and those are
/// also excluded from `normalized` (a gain or shift vector never is a weight matrix feeding a
/// normalization, and projecting it would pin each element's magnitude). Nothing is
/// `normalized` until you name the weights that feed a normalization, e.g. every hidden
/// Linear except the output layer (the AdamC paper's choice for LLMs, ALGORITHMS.md §10.4):
///
/// ```
/// use schedulefree_candle::TagRules;
/// let rules = TagRules::standard().normalized_regex(r"\.weight$")?.exclude_path("head");
/// assert!(rules.tags_for("blocks.0.fc1.weight").normalized);
/// assert!(!rules.tags_for("head.weight").normalized);
/// let ln = rules.tags_for("blocks.0.ln1.weight");
/// assert!(ln.no_decay && !ln.normalized);
/// # Ok::<(), schedulefree_candle::CandleAdapterError>(())
/// ```
///
/// [`select_tags`] lists what the rules select on a `VarMap`;
/// [`ScheduleFreeOptimizer::from_varmap_tagged`](crate::ScheduleFreeOptimizer::from_varmap_tagged)
/// applies them when it registers the vars.
#[derive(Debug, Clone, Default)]
pub struct TagRules {
    normalized: Vec<Selector>,
    exclude: Vec<Selector>,
    no_decay: Vec<Selector>,
}

impl TagRules {
    /// No tags at all (every var decays by the base policy).
    pub fn new() -> Self {
        Self::default()
    }

    /// `no_decay` (and never `normalized`) for every var of a layer whose name matches
    /// [`NORM_LAYER_PATTERN`] and every var named as in [`NO_DECAY_VAR_NAMES`].
    pub fn standard() -> Self {
        Self::standard_from(
            Regex::new(NORM_LAYER_PATTERN)
                .unwrap_or_else(|_| unreachable!("the constant pattern compiles")),
        )
    }

    /// [`TagRules::standard`] with your own pattern for normalization-layer names (e.g.
    /// `r"^(attn_norm|ffn_norm|final)$"`), matched against the layer-name segment.
    ///
    /// # Errors
    /// [`CandleAdapterError::Regex`] for an invalid pattern.
    pub fn standard_with(norm_layer_pattern: &str) -> Result<Self, CandleAdapterError> {
        Ok(Self::standard_from(regex(norm_layer_pattern)?))
    }

    fn standard_from(norm_layers: Regex) -> Self {
        let mut r = Self::new();
        let mut fixed = vec![Selector::LayerName(norm_layers)];
        fixed.extend(
            NO_DECAY_VAR_NAMES
                .iter()
                .map(|n| Selector::VarName(n.to_string())),
        );
        r.exclude.extend(fixed.iter().cloned());
        r.no_decay = fixed;
        r
    }

    /// Tag the var named `name` normalized.
    pub fn normalized_path(self, name: &str) -> Self {
        self.normalized(Selector::Path(name.to_string()))
    }

    /// Tag the vars whose name matches `pattern` normalized.
    ///
    /// # Errors
    /// [`CandleAdapterError::Regex`] for an invalid pattern.
    pub fn normalized_regex(self, pattern: &str) -> Result<Self, CandleAdapterError> {
        Ok(self.normalized(Selector::Regex(regex(pattern)?)))
    }

    /// Never tag the var `name`, or the vars under the layer `name`, normalized: the output
    /// layer, which feeds the loss, not a normalization.
    pub fn exclude_path(self, name: &str) -> Self {
        self.exclude(Selector::Under(name.to_string()))
    }

    /// Never tag the vars whose name matches `pattern` normalized.
    ///
    /// # Errors
    /// [`CandleAdapterError::Regex`] for an invalid pattern.
    pub fn exclude_regex(self, pattern: &str) -> Result<Self, CandleAdapterError> {
        Ok(self.exclude(Selector::Regex(regex(pattern)?)))
    }

    /// Tag the var `name`, or the vars under the layer `name`, no-decay (e.g. `"embed"`).
    pub fn no_decay_path(self, name: &str) -> Self {
        self.no_decay(Selector::Under(name.to_string()))
    }

    /// Tag the vars whose name matches `pattern` no-decay.
    ///
    /// # Errors
    /// [`CandleAdapterError::Regex`] for an invalid pattern.
    pub fn no_decay_regex(self, pattern: &str) -> Result<Self, CandleAdapterError> {
        Ok(self.no_decay(Selector::Regex(regex(pattern)?)))
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

    /// The tags of the var named `name`.
    pub fn tags_for(&self, name: &str) -> ParamTags {
        let any = |v: &[Selector]| v.iter().any(|s| s.matches(name));
        ParamTags {
            normalized: any(&self.normalized) && !any(&self.exclude),
            no_decay: any(&self.no_decay),
        }
    }
}

fn regex(pattern: &str) -> Result<Regex, CandleAdapterError> {
    Regex::new(pattern).map_err(|e| CandleAdapterError::Regex {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

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
        let tags = match (self.tags.normalized, self.tags.no_decay) {
            (true, true) => "normalized, no_decay",
            (true, false) => "normalized",
            (false, true) => "no_decay",
            (false, false) => "-",
        };
        write!(f, "{} {:?}: {tags}", self.name, self.shape)
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
            tags: rules.tags_for(&name),
            shape: v.dims().to_vec(),
            dtype: v.dtype(),
            name,
        })
        .collect())
}
