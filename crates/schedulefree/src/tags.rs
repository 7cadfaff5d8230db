//! Rules that tag parameters `normalized` (weights feeding a normalization layer: AdamC's
//! corrected decay and the hypersphere projection act on them) or `no_decay` (norm gains and
//! shifts, biases), by name and owner: the framework-free counterpart of PyTorch's parameter
//! groups built from `named_modules()` / `named_parameters()`.
//!
//! A parameter is named by its path (fields joined by `.`, list elements by their index:
//! `"blocks.0.fc.weight"`) and, where the framework records it, by the type of the innermost
//! module that owns it (`"Linear"`; `""` when unknown). burn's adapter passes module types;
//! candle's `VarMap` knows names only, so there the owner is `""` and the layer name (the
//! segment before the parameter's own name: `fc` above) stands in for the type.
//!
//! Why these tags matter (AdamC, arXiv 2506.02285v2, §3): for a weight whose outputs are
//! normalized the loss is scale-invariant, so weight decay sets its norm, where
//! `‖g‖/‖x‖ = sqrt(2λ/γ)` settles; gains, shifts and biases are not scale-invariant and are
//! customarily not decayed at all.

#[cfg(feature = "regex")]
use regex::Regex;

use crate::param::ParamTags;

/// Module types (burn's container type names, without `Struct:`) whose parameters are gains
/// and shifts of a normalization: every parameter of these is `no_decay` under
/// [`TagRules::standard`], including batch norm's running statistics (which get no gradient,
/// so the optimizer never moves them).
pub const NORM_LAYER_TYPES: [&str; 5] = [
    "LayerNorm",
    "BatchNorm",
    "RmsNorm",
    "GroupNorm",
    "InstanceNorm",
];

/// Names of normalization layers in [`TagRules::standard`] when the owner type is unknown,
/// matched against the layer name (the segment before the parameter's own name: `ln1` in
/// `blocks.0.ln1.weight`), case-insensitive: any name containing `norm` (`norm1`,
/// `layer_norm`, `LayerNorm`, `input_layernorm`, `final_norm`, `rms_norm`) and the
/// abbreviations `ln`, `bn`, `gn` alone or followed by digits or `_…` (`ln1`, `ln_f`, `bn2`).
/// candle-nn's `layer_norm`, `rms_norm`, `batch_norm` and `group_norm` name their vars
/// `weight`, `bias` (`gamma`/`beta` in old checkpoints), `running_mean` and `running_var`
/// under that layer name.
pub const NORM_LAYER_PATTERN: &str = r"(?i)(norm|^(ln|bn|gn)(\d+|_.*)?$)";

/// Own names (last path segment) that [`TagRules::standard`] exempts from decay when the
/// owner type is unknown: biases, LayerNorm shifts in the old `beta` naming, and batch-norm
/// statistics (candle-nn's `batch_norm` keeps them beside the weights; they get no gradient).
/// With a known owner type only `bias` is exempt by name; the rest are covered by
/// [`NORM_LAYER_TYPES`].
pub const NO_DECAY_VAR_NAMES: [&str; 4] = ["bias", "beta", "running_mean", "running_var"];

/// An invalid regular expression given to [`TagRules`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {message}")]
pub struct RegexError {
    /// The pattern as given.
    pub pattern: String,
    /// What the regex parser said.
    pub message: String,
}

/// One way of naming parameters by path and owner type ([module docs](self)).
#[derive(Debug, Clone)]
pub enum Selector {
    /// Exactly this path (`"layers.0.weight"`).
    Path(String),
    /// This path or any path under it (`"head"` selects `"head.weight"` and `"head.bias"`,
    /// not `"header.weight"`).
    Under(String),
    /// Paths matching this regex (anywhere in the path unless anchored with `^…$`).
    #[cfg(feature = "regex")]
    Regex(Regex),
    /// Parameters owned by modules of this type (`"Linear"`, `"Conv2d"`, `"LayerNorm"`: the
    /// innermost module that owns the parameter), optionally only the field `param`
    /// (`"weight"`, `"gamma"`, `"bias"`). Never matches an unknown owner.
    LayerType {
        /// Module type name without generics or `Struct:` (`"BatchNorm"`).
        layer: String,
        /// Own name of the parameter inside that module; `None`: all of them.
        param: Option<String>,
    },
    /// Parameters whose layer name (the segment before the last: `ln1` in
    /// `blocks.0.ln1.weight`; empty for a path without `.`) matches this regex.
    #[cfg(feature = "regex")]
    LayerName(Regex),
    /// Every parameter whose own name (last path segment) is this (`"bias"`).
    ParamName(String),
    /// What the inner selector selects among parameters whose owner type is unknown (`""`):
    /// name-based conventions that a known type makes unnecessary.
    UnknownOwner(Box<Selector>),
}

impl Selector {
    /// Whether the parameter at `path`, owned by a module of type `owner` (`""` if unknown),
    /// is selected.
    pub fn matches(&self, path: &str, owner: &str) -> bool {
        let mut segments = path.rsplit('.');
        let own = segments.next().unwrap_or(path);
        match self {
            Selector::Path(p) => p == path,
            Selector::Under(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.')),
            #[cfg(feature = "regex")]
            Selector::Regex(r) => r.is_match(path),
            Selector::LayerType { layer, param } => {
                !owner.is_empty() && owner == layer && param.as_deref().is_none_or(|p| p == own)
            }
            #[cfg(feature = "regex")]
            Selector::LayerName(r) => r.is_match(segments.next().unwrap_or("")),
            Selector::ParamName(n) => n == own,
            Selector::UnknownOwner(s) => owner.is_empty() && s.matches(path, owner),
        }
    }
}

/// Rules that tag parameters: a parameter is `normalized` if a `normalized` selector matches
/// it and no `exclude` selector does; `no_decay` if a `no_decay` selector matches it. A
/// parameter may be both: then it gets no decay, and the projection of
/// [`crate::decay::Projected`] still applies to it.
///
/// [`TagRules::standard`] is the usual convention (PyTorch users write it as two parameter
/// groups): every parameter of a normalization layer and every bias gets no decay and is
/// kept out of `normalized` (a gain or shift vector never is a weight matrix feeding a
/// normalization, and projecting it would pin each element's magnitude). Nothing is
/// `normalized` until you say which weights feed a normalization, since frameworks do not
/// record the graph: e.g. every hidden Linear except the output layer (the AdamC paper's
/// choice for LLMs, arXiv 2506.02285v2 §4):
///
/// ```
/// use schedulefree::tags::TagRules;
/// let rules = TagRules::standard().normalized_layer_type("Linear", "weight").exclude_path("head");
/// let t = rules.tags_for("blocks.0.fc.weight", "Linear");
/// assert!(t.normalized && !t.no_decay);
/// assert!(!rules.tags_for("head.weight", "Linear").normalized);
/// assert!(rules.tags_for("blocks.0.ln.gamma", "LayerNorm").no_decay);
/// ```
///
/// With the owner unknown (candle's `VarMap`), the layer name decides (this needs the default
/// `regex` feature; without it only the own names [`NO_DECAY_VAR_NAMES`] do):
///
#[cfg_attr(feature = "regex", doc = "```")]
#[cfg_attr(not(feature = "regex"), doc = "```ignore")]
/// use schedulefree::tags::TagRules;
/// let rules = TagRules::standard();
/// assert!(rules.tags_for("blocks.0.ln1.weight", "").no_decay);
/// assert!(!rules.tags_for("blocks.0.fc1.weight", "").no_decay);
/// ```
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

    /// `no_decay` (and never `normalized`) for every parameter of a normalization layer and
    /// every parameter named `bias`. A normalization layer is a module of a type in
    /// [`NORM_LAYER_TYPES`]; where the owner type is unknown, a layer whose name matches
    /// [`NORM_LAYER_PATTERN`] (with the `regex` feature), and then also the own names in
    /// [`NO_DECAY_VAR_NAMES`].
    pub fn standard() -> Self {
        #[cfg(feature = "regex")]
        let names = Some(Selector::LayerName(
            Regex::new(NORM_LAYER_PATTERN)
                .unwrap_or_else(|_| unreachable!("the constant pattern compiles")),
        ));
        #[cfg(not(feature = "regex"))]
        let names = None;
        Self::standard_from(names)
    }

    /// [`TagRules::standard`] with your own pattern for normalization-layer names where the
    /// owner type is unknown (e.g. `r"^(attn_norm|ffn_norm|final)$"`), matched against the
    /// layer-name segment. Where the owner type is known (burn) the pattern is not consulted:
    /// [`NORM_LAYER_TYPES`] decide there.
    ///
    /// # Errors
    /// [`RegexError`] for an invalid pattern.
    #[cfg(feature = "regex")]
    pub fn standard_with(norm_layer_pattern: &str) -> Result<Self, RegexError> {
        Ok(Self::standard_from(Some(Selector::LayerName(regex(
            norm_layer_pattern,
        )?))))
    }

    /// The standard rules with `norm_layer_names` (a [`Selector::LayerName`]) as the name-based
    /// test of a normalization layer where the owner type is unknown.
    fn standard_from(norm_layer_names: Option<Selector>) -> Self {
        let mut fixed = Self::by_type_and_bias();
        let by_name = norm_layer_names.into_iter().chain(
            NO_DECAY_VAR_NAMES
                .iter()
                .map(|n| Selector::ParamName(n.to_string())),
        );
        fixed.extend(by_name.map(|s| Selector::UnknownOwner(Box::new(s))));
        TagRules {
            normalized: Vec::new(),
            exclude: fixed.clone(),
            no_decay: fixed,
        }
    }

    /// Every parameter of a [`NORM_LAYER_TYPES`] module, and every `bias`.
    fn by_type_and_bias() -> Vec<Selector> {
        let mut v: Vec<Selector> = NORM_LAYER_TYPES
            .iter()
            .map(|t| Selector::LayerType {
                layer: t.to_string(),
                param: None,
            })
            .collect();
        v.push(Selector::ParamName("bias".into()));
        v
    }

    /// Tag the parameter at `path` normalized.
    pub fn normalized_path(self, path: &str) -> Self {
        self.normalized(Selector::Path(path.to_string()))
    }

    /// Tag parameters whose path matches `pattern` normalized.
    ///
    /// # Errors
    /// [`RegexError`] for an invalid pattern.
    #[cfg(feature = "regex")]
    pub fn normalized_regex(self, pattern: &str) -> Result<Self, RegexError> {
        Ok(self.normalized(Selector::Regex(regex(pattern)?)))
    }

    /// Tag the field `param` of every module of type `layer` normalized (e.g.
    /// `("Linear", "weight")`, `("Conv2d", "weight")`). Matches only where the owner type is
    /// known (burn); with candle's `VarMap` names use [`TagRules::normalized_regex`].
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
    /// [`RegexError`] for an invalid pattern.
    #[cfg(feature = "regex")]
    pub fn exclude_regex(self, pattern: &str) -> Result<Self, RegexError> {
        Ok(self.exclude(Selector::Regex(regex(pattern)?)))
    }

    /// Tag the parameter at `path` (or the parameters under the module at `path`) no-decay
    /// (e.g. `"embed"`).
    pub fn no_decay_path(self, path: &str) -> Self {
        self.no_decay(Selector::Under(path.to_string()))
    }

    /// Tag parameters whose path matches `pattern` no-decay.
    ///
    /// # Errors
    /// [`RegexError`] for an invalid pattern.
    #[cfg(feature = "regex")]
    pub fn no_decay_regex(self, pattern: &str) -> Result<Self, RegexError> {
        Ok(self.no_decay(Selector::Regex(regex(pattern)?)))
    }

    /// Tag every parameter of modules of type `layer` no-decay (e.g. `"Embedding"`). Matches
    /// only where the owner type is known (burn).
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

#[cfg(feature = "regex")]
fn regex(pattern: &str) -> Result<Regex, RegexError> {
    Regex::new(pattern).map_err(|e| RegexError {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_stops_at_segment_boundaries() {
        let s = Selector::Under("head".into());
        assert!(s.matches("head", ""));
        assert!(s.matches("head.weight", "Linear"));
        assert!(!s.matches("header.weight", "Linear"));
    }

    #[test]
    fn layer_type_never_matches_an_unknown_owner() {
        let s = Selector::LayerType {
            layer: String::new(),
            param: None,
        };
        assert!(!s.matches("w", ""));
    }

    #[cfg(feature = "regex")]
    #[test]
    fn standard_by_type_when_known_by_name_when_not() {
        let r = TagRules::standard();
        // Known owner: the type decides; names alone do not.
        assert!(r.tags_for("enc.norm_proj.beta", "Linear") == ParamTags::default());
        assert!(r.tags_for("enc.ln.gamma", "LayerNorm").no_decay);
        assert!(r.tags_for("enc.fc.bias", "Linear").no_decay);
        // Unknown owner: the layer and own names decide.
        for name in [
            "ln1.weight",
            "blocks.0.layer_norm.bias",
            "bn2.running_mean",
            "x.beta",
        ] {
            let t = r.tags_for(name, "");
            assert!(t.no_decay && !t.normalized, "{name}");
        }
        assert_eq!(r.tags_for("blocks.0.fc1.weight", ""), ParamTags::default());
    }

    #[cfg(feature = "regex")]
    #[test]
    fn exclusions_win_over_normalized() {
        let r = TagRules::standard()
            .normalized_regex(r"\.weight$")
            .expect("valid")
            .exclude_path("head");
        assert!(r.tags_for("fc.weight", "").normalized);
        assert!(!r.tags_for("head.weight", "").normalized);
        assert!(!r.tags_for("ln_f.weight", "").normalized);
    }

    #[cfg(feature = "regex")]
    #[test]
    fn invalid_regex_is_a_typed_error() {
        let e = TagRules::new().no_decay_regex("(").expect_err("invalid");
        assert_eq!(e.pattern, "(");
        assert!(TagRules::standard_with("[").is_err());
    }
}
